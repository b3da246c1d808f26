"""The message log's storage: group inserts, the timestamper's queries and the lookups of evidence export.

Every method is one transaction on the node's engine (SQLite in WAL mode or PostgreSQL, as the node store).
Database failures are ``logging_failed`` (X-Road's code when the message log cannot write)::

    >>> store = MessageLogStore(node_store.engine)  # doctest: +SKIP
    >>> ids = await store.insert_records([record_a, record_b], at=now)  # one commit  # doctest: +SKIP
    >>> waiting = await store.unstamped(limit=10000)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Engine, Select, and_, bindparam, case, delete, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row, RowMapping
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from security_server.messagelog.models import (
    FAULT_STRING_LENGTH,
    SEARCHED_VALUE_LENGTH,
    X_REQUEST_ID_LENGTH,
    ExchangeFailureRow,
    MessageAttachmentRow,
    MessageRecordRow,
    MessageSignatureRow,
    TimestampRecordRow,
)
from security_server.messagelog.records import ExchangeFailure, LogRecord
from security_server.messagelog.subjects import SubjectKey
from xroad_mn.asic import BatchTimestamp
from xroad_mn.database import completing_calls, sqlite_writer_engine, transaction
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, MemberId, SubsystemId, format_id
from xroad_mn.signature import SignatureData

__all__ = [
    "ID_CHUNK",
    "ArchivableRecord",
    "FailureOutcome",
    "MessageLogStore",
    "StampingBacklog",
    "StoredRecord",
    "WaitingRecord",
    "rest_status",
    "signature_hash",
]

ID_CHUNK: Final = 5000
"""Most record ids one statement names (bound parameters are limited: SQLite 32766, PostgreSQL 32767)."""

_STATUS: Final = re.compile(rb"[1-9][0-9]{2}")
_STATUS_LINE_BYTES: Final = 8


def signature_hash(signature_xml: bytes) -> str:
    """X-Road's ``signaturehash``: base64 SHA-512 of the signature document."""
    return base64.b64encode(hashlib.sha512(signature_xml).digest()).decode("ascii")


@dataclass(frozen=True)
class WaitingRecord:
    """A record the timestamper has yet to stamp."""

    id: int
    signature_xml: bytes


@dataclass(frozen=True)
class StoredRecord:
    """A logged message as evidence export reads it."""

    id: int
    query_id: str
    response: bool
    time: datetime
    message: bytes
    attachments: tuple[bytes, ...]
    signature: SignatureData
    timestamped: bool
    batch_timestamp: BatchTimestamp | None
    """The batch time-stamp covering the record (a single time-stamp sits inside its signature)."""
    x_request_id: str = ""
    """The exchange's ``x-road-request-id``."""


@dataclass(frozen=True)
class FailureOutcome:
    """How a failed exchange ended, as the log keeps it beside its request's record."""

    request_record_id: int
    query_id: str
    time: datetime
    code: str
    fault_string: str

    def as_json(self) -> dict[str, object]:
        return {
            "request_record_id": self.request_record_id,
            "x_road_id": self.query_id,
            "failed_at": self.time.isoformat(),
            "code": self.code,
            "fault_string": self.fault_string,
        }


@dataclass(frozen=True)
class ArchivableRecord:
    """A time-stamped record waiting for the archiver, with the exchange's client (its archive group)."""

    record: StoredRecord
    client: ClientId


@dataclass(frozen=True)
class StampingBacklog:
    """How far time-stamping is behind (``/metrics``)."""

    unstamped: int
    """Records waiting for a time-stamp."""
    last_timestamp: datetime | None
    """The ``genTime`` of the newest time-stamp, ``None`` before the first."""


def _client(r: RowMapping) -> ClientId:
    member = MemberId(str(r["instance"]), str(r["member_class"]), str(r["member_code"]))
    subsystem = r["subsystem_code"]
    return member.subsystem(str(subsystem)) if subsystem is not None else member


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + ID_CHUNK] for i in range(0, len(ids), ID_CHUNK)]


@completing_calls
class MessageLogStore:
    """The message log tables on ``engine``."""

    def __init__(self, engine: AsyncEngine, *, subject_key: SubjectKey | None = None) -> None:
        self.engine = engine
        self.subject_key = subject_key
        """Hashes data subjects into ``subject_hash``; without it a record naming a subject is refused."""
        self._sqlite_writer = sqlite_writer_engine(engine)
        """On SQLite, inserts run as one call in a worker thread (see :meth:`insert_records`)."""

    @property
    def writing_engine(self) -> Engine:
        """The engine whose transactions commit inserted records (SQLite's writer engine, else the
        async engine's)."""
        return self._sqlite_writer if self._sqlite_writer is not None else self.engine.sync_engine

    def close(self) -> None:
        """Release the SQLite writer's connections (the async engine is its owner's to dispose)."""
        if self._sqlite_writer is not None:
            self._sqlite_writer.dispose()

    def _tx(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return transaction(self.engine, code=FaultCode.LOGGING_FAILED, what="message log")

    async def fetch_all(self, query: Select[*tuple[Any, ...]]) -> Sequence[Row[*tuple[Any, ...]]]:
        """The rows of a read-only ``query`` (searches and verification)."""
        async with self._tx() as conn:
            result = await conn.execute(query)
            return result.all()

    async def insert_records(
        self, records: Sequence[LogRecord], *, at: datetime, failures: Sequence[ExchangeFailure] = ()
    ) -> list[int]:
        """Insert ``records`` (and the outcomes of ``failures``, failed ``at``) in one transaction; the
        records' ids in order. All or none are written."""
        if not records and not failures:
            return []
        rows, shared = _rows(records, at, self.subject_key)
        failed = [_failure_row(f, at) for f in failures]
        if self._sqlite_writer is not None:
            return await asyncio.to_thread(_insert_sync, self._sqlite_writer, records, rows, shared, failed)
        async with self._tx() as conn:
            if shared:
                await conn.execute(postgresql.insert(MessageSignatureRow).on_conflict_do_nothing(), shared)
            ids: list[int] = []
            if rows:
                result = await conn.execute(
                    insert(MessageRecordRow).returning(MessageRecordRow.id, sort_by_parameter_order=True),
                    rows,
                )
                ids = [int(i) for i in result.scalars().all()]
            attachments = _attachment_rows(ids, records)
            if attachments:
                await conn.execute(insert(MessageAttachmentRow), attachments)
            if failed:
                await conn.execute(insert(ExchangeFailureRow), failed)
        return ids

    async def failures_of(self, request_record_ids: Sequence[int]) -> dict[int, FailureOutcome]:
        """The outcomes of the failed exchanges among the requests ``request_record_ids``, by record id."""
        f = ExchangeFailureRow
        out: dict[int, FailureOutcome] = {}
        async with self._tx() as conn:
            for chunk in _chunks(list(request_record_ids)):
                found = await conn.execute(select(f).where(f.request_record_id.in_(chunk)))
                for r in found.mappings():
                    out[int(r["request_record_id"])] = FailureOutcome(
                        int(r["request_record_id"]), str(r["query_id"]), r["time"], str(r["code"]),
                        str(r["fault_string"]),
                    )  # fmt: skip
        return out

    async def unstamped(self, limit: int) -> list[WaitingRecord]:
        """Up to ``limit`` records without a time-stamp, oldest first."""
        m = MessageRecordRow
        query = (
            _with_shared_signature(select(m.id, _signature_document()))
            .where(m.timestamp_id.is_(None))
            .order_by(m.id)
            .limit(limit)
        )
        async with self._tx() as conn:
            rows = (await conn.execute(query)).all()
        return [WaitingRecord(int(r.id), bytes(r.signature)) for r in rows]

    async def stamping_backlog(self) -> StampingBacklog:
        """Records without a time-stamp and the newest time-stamp's time: two indexed queries (the partial
        index of unstamped records, the index on ``timestamp_records.time``)."""
        unstamped = (
            select(func.count()).select_from(MessageRecordRow).where(MessageRecordRow.timestamp_id.is_(None))
        )
        async with self._tx() as conn:
            count = (await conn.execute(unstamped)).scalar_one()
            last = (await conn.execute(select(func.max(TimestampRecordRow.time)))).scalar_one_or_none()
        return StampingBacklog(int(count), last)

    async def _insert_timestamp(
        self, conn: AsyncConnection, token: bytes, gen_time: datetime, result_xml: bytes | None
    ) -> int:
        result = await conn.execute(
            insert(TimestampRecordRow)
            .values(time=gen_time, token=token, hash_chain_result=result_xml, archived=False)
            .returning(TimestampRecordRow.id)
        )
        return int(result.scalar_one())

    async def save_single_timestamp(
        self, record_id: int, *, token: bytes, gen_time: datetime, signature_xml: bytes
    ) -> int:
        """Record a single time-stamp: the token, and the record's signature with the token embedded (a
        shared signature becomes the record's own, its hash-chain result with it)."""
        m, s = MessageRecordRow, MessageSignatureRow
        shared_result = select(s.hash_chain_result).where(s.hash == m.signature_hash).scalar_subquery()
        async with self._tx() as conn:
            ts_id = await self._insert_timestamp(conn, token, gen_time, None)
            await conn.execute(
                update(m)
                .where(m.id == record_id)
                .values(
                    timestamp_id=ts_id,
                    signature=signature_xml,
                    signature_hash=signature_hash(signature_xml),
                    # SET reads the row as it was: the result of the signature being replaced.
                    hash_chain_result=case(
                        (func.length(m.signature) == 0, shared_result), else_=m.hash_chain_result
                    ),
                )
            )
        return ts_id

    async def save_batch_timestamp(
        self,
        record_ids: Sequence[int],
        *,
        token: bytes,
        gen_time: datetime,
        hash_chain_result: bytes,
        hash_chains: Sequence[bytes],
    ) -> int:
        """Record a batch time-stamp: the token and ``ts-hashchainresult.xml``, each record's chain."""
        m = MessageRecordRow
        stamp = (
            update(m)
            .where(m.id == bindparam("record_id"))
            .values(timestamp_id=bindparam("ts_id"), timestamp_hash_chain=bindparam("chain"))
        )
        async with self._tx() as conn:
            ts_id = await self._insert_timestamp(conn, token, gen_time, hash_chain_result)
            await conn.execute(
                stamp,
                [
                    {"record_id": record_id, "ts_id": ts_id, "chain": chain}
                    for record_id, chain in zip(record_ids, hash_chains, strict=True)
                ],
            )
        return ts_id

    async def _attachments(self, conn: AsyncConnection, ids: Sequence[int]) -> dict[int, list[bytes]]:
        attachments: dict[int, list[bytes]] = {i: [] for i in ids}
        a = MessageAttachmentRow
        for chunk in _chunks(ids):
            found = await conn.execute(
                select(a.record_id, a.data).where(a.record_id.in_(chunk)).order_by(a.record_id, a.number)
            )
            for record_id, data in found.all():
                attachments[int(record_id)].append(bytes(data))
        return attachments

    # -- archiving and cleaning (X-Road's LogArchiver and LogCleaner) ----------------------------------------

    async def archivable(self, limit: int) -> list[ArchivableRecord]:
        """Up to ``limit`` time-stamped records not archived yet, oldest first, with their attachments."""
        m = MessageRecordRow
        query = _stored_query().where(m.archived.is_(False), m.timestamp_id.is_not(None)).limit(limit)
        async with self._tx() as conn:
            rows = (await conn.execute(query)).all()
            attachments = await self._attachments(conn, [int(r.id) for r in rows])
        return [
            ArchivableRecord(_stored(r._mapping, tuple(attachments[int(r.id)])), _client(r._mapping))
            for r in rows
        ]

    async def mark_archived(self, record_ids: Sequence[int]) -> None:
        """Mark ``record_ids`` archived in one transaction (again is harmless), and every time-stamp record
        whose messages are all archived now."""
        m, t = MessageRecordRow, TimestampRecordRow
        async with self._tx() as conn:
            for chunk in _chunks(record_ids):
                await conn.execute(update(m).where(m.id.in_(chunk)).values(archived=True))
                stamps = select(m.timestamp_id).where(m.id.in_(chunk), m.timestamp_id.is_not(None))
                waiting = exists().where(m.timestamp_id == t.id, m.archived.is_(False))
                await conn.execute(
                    update(t).where(t.id.in_(stamps.scalar_subquery()), ~waiting).values(archived=True)
                )

    async def delete_archived(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` archived records logged before ``before`` with their attachments, and the
        archived time-stamp records and shared signatures no message refers to any more, in one
        transaction; how many records went. Records not archived are never deleted."""
        m, t, a, s = MessageRecordRow, TimestampRecordRow, MessageAttachmentRow, MessageSignatureRow
        async with self._tx() as conn:
            found = await conn.execute(
                select(m.id).where(m.archived.is_(True), m.time < before).order_by(m.id).limit(limit)
            )
            ids = [int(i) for i in found.scalars()]
            for chunk in _chunks(ids):
                await conn.execute(delete(a).where(a.record_id.in_(chunk)))
                await conn.execute(delete(m).where(m.id.in_(chunk), m.archived.is_(True)))
            referred = exists().where(m.timestamp_id == t.id)
            await conn.execute(delete(t).where(t.archived.is_(True), ~referred))
            if ids:
                signed = exists().where(m.signature_hash == s.hash)
                await conn.execute(delete(s).where(~signed))
        return len(ids)

    async def find(
        self, query_id: str, *, client: ClientId | None = None, response: bool | None = None
    ) -> list[StoredRecord]:
        """The records of ``query_id`` (of ``client``; only requests or responses when ``response`` is
        given), in the order they were logged."""
        m = MessageRecordRow
        query = _stored_query().where(m.query_id == query_id)
        if client is not None:
            subsystem = client.subsystem_code if isinstance(client, SubsystemId) else None
            query = query.where(
                m.instance == client.instance,
                m.member_class == client.member_class,
                m.member_code == client.member_code,
                m.subsystem_code.is_(None) if subsystem is None else m.subsystem_code == subsystem,
            )
        if response is not None:
            query = query.where(m.response == response)
        return await self._load(query)

    async def records_by_id(self, record_ids: Sequence[int]) -> list[StoredRecord]:
        """The records of ``record_ids`` that exist, in id order (an export reads a search page's bodies)."""
        m = MessageRecordRow
        out: list[StoredRecord] = []
        for chunk in _chunks(sorted(record_ids)):
            out += await self._load(_stored_query().where(m.id.in_(chunk)))
        return out

    async def records_after(self, after_id: int, *, limit: int) -> list[StoredRecord]:
        """Up to ``limit`` records with an id above ``after_id``, in id order (a whole-log walk)."""
        m = MessageRecordRow
        return await self._load(_stored_query().where(m.id > after_id).limit(limit))

    async def _load(self, query: Select[*tuple[Any, ...]]) -> list[StoredRecord]:
        async with self._tx() as conn:
            rows = (await conn.execute(query)).all()
            attachments = await self._attachments(conn, [int(r.id) for r in rows])
        return [_stored(r._mapping, tuple(attachments[int(r.id)])) for r in rows]


def _signature_document() -> Any:
    """The record's signature document, its own or the shared one (``signature``)."""
    m, s = MessageRecordRow, MessageSignatureRow
    return case((func.length(m.signature) == 0, s.document), else_=m.signature).label("signature")


def _with_shared_signature(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    m, s = MessageRecordRow, MessageSignatureRow
    return query.outerjoin(s, and_(func.length(m.signature) == 0, s.hash == m.signature_hash))


def _stored_query() -> Select[*tuple[Any, ...]]:
    m, t, s = MessageRecordRow, TimestampRecordRow, MessageSignatureRow
    own = [c for c in m.__table__.c if c.name not in ("signature", "hash_chain_result")]
    chain_result = case((func.length(m.signature) == 0, s.hash_chain_result), else_=m.hash_chain_result)
    return (
        _with_shared_signature(
            select(
                *own,
                _signature_document(),
                chain_result.label("hash_chain_result"),
                t.token,
                t.hash_chain_result.label("ts_result"),
            )
        )
        .outerjoin(t, m.timestamp_id == t.id)
        .order_by(m.id)
    )


def _attachment_rows(ids: Sequence[int], records: Sequence[LogRecord]) -> list[dict[str, object]]:
    return [
        {"record_id": record_id, "number": number, "data": data}
        for record_id, record in zip(ids, records, strict=True)
        for number, data in enumerate(record.attachments, start=1)
    ]


def _insert_sync(
    engine: Engine,
    records: Sequence[LogRecord],
    rows: list[dict[str, object]],
    shared: list[dict[str, object]],
    failed: list[dict[str, object]],
) -> list[int]:
    """:meth:`MessageLogStore.insert_records` on SQLite: one transaction, one thread hop for the batch."""
    try:
        with engine.begin() as conn:
            if shared:
                conn.execute(sqlite.insert(MessageSignatureRow).on_conflict_do_nothing(), shared)
            # The transaction began IMMEDIATE: no other writer can insert until it ends, so the ids after
            # the largest are ours, and one executemany (no RETURNING, which SQLite runs row by row) writes
            # them.
            ids: list[int] = []
            if rows:
                last = conn.execute(select(func.coalesce(func.max(MessageRecordRow.id), 0))).scalar_one()
                ids = list(range(int(last) + 1, int(last) + 1 + len(rows)))
                conn.execute(
                    insert(MessageRecordRow), [{**row, "id": i} for row, i in zip(rows, ids, strict=True)]
                )
            attachments = _attachment_rows(ids, records)
            if attachments:
                conn.execute(insert(MessageAttachmentRow), attachments)
            if failed:
                conn.execute(insert(ExchangeFailureRow), failed)
    except SQLAlchemyError as e:
        raise XRoadError(
            FaultCode.LOGGING_FAILED, f"message log database error: {type(e).__name__}: {e}"
        ) from e
    return ids


def _failure_row(failure: ExchangeFailure, at: datetime) -> dict[str, object]:
    return {
        "request_record_id": failure.request_record_id,
        "query_id": failure.query_id,
        "x_request_id": failure.x_request_id[:X_REQUEST_ID_LENGTH],
        "time": at,
        "code": failure.code[:SEARCHED_VALUE_LENGTH],
        "fault_string": failure.fault_string[:FAULT_STRING_LENGTH],
    }


def _searched(value: str | None) -> str | None:
    return value[:SEARCHED_VALUE_LENGTH] if value is not None else None


def rest_status(header_part: bytes) -> int | None:
    """The HTTP status of a REST response's header part (its first line), ``None`` for anything else."""
    first = header_part[:_STATUS_LINE_BYTES].split(b"\r\n", 1)[0]
    return int(first) if _STATUS.fullmatch(first) else None


def _subject_hash(record: LogRecord, key: SubjectKey | None) -> str | None:
    subject = record.facts.data_subject
    if subject is None:
        return None
    if key is None:
        raise XRoadError(FaultCode.LOGGING_FAILED, "the message log has no data subject key")
    return key.hash(subject)


def _rows(
    records: Sequence[LogRecord], at: datetime, key: SubjectKey | None
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The rows of ``records`` and of the signatures they share: a batch signature used by more than one
    of them is kept once (:class:`MessageSignatureRow`) and their rows keep an empty ``signature``."""
    hashes: dict[bytes, str] = {}
    uses: dict[str, int] = {}
    for record in records:
        xml = record.signature.signature_xml
        if xml not in hashes:
            hashes[xml] = signature_hash(xml)
        uses[hashes[xml]] = uses.get(hashes[xml], 0) + 1
    rows: list[dict[str, object]] = []
    shared: dict[str, dict[str, object]] = {}
    for record in records:
        row = _row(record, at, key, hashes[record.signature.signature_xml])
        digest = str(row["signature_hash"])
        if uses[digest] > 1 and record.signature.hash_chain_result is not None:
            shared.setdefault(
                digest,
                {"hash": digest, "document": row["signature"], "hash_chain_result": row["hash_chain_result"]},
            )
            row["signature"] = b""
            row["hash_chain_result"] = None
        rows.append(row)
    return rows, list(shared.values())


def _row(record: LogRecord, at: datetime, key: SubjectKey | None, digest: str) -> dict[str, object]:
    client = record.client
    facts = record.facts
    return {
        "time": at,
        "query_id": record.query_id,
        # The provider node takes it from the consumer node's header: cut to its column, so that one overlong
        # id cannot fail the group commit of every exchange beside it (PostgreSQL enforces the length).
        "x_request_id": record.x_request_id[:X_REQUEST_ID_LENGTH],
        "instance": client.instance,
        "member_class": client.member_class,
        "member_code": client.member_code,
        "subsystem_code": client.subsystem_code if isinstance(client, SubsystemId) else None,
        "service": format_id(record.service),
        "response": record.response,
        "rest": record.rest,
        "message": record.message,
        "signature": record.signature.signature_xml,
        "signature_hash": digest,
        "hash_chain_result": record.signature.hash_chain_result,
        "hash_chain": record.signature.hash_chain,
        "timestamp_id": None,
        "timestamp_hash_chain": None,
        "archived": False,
        "subject_hash": _subject_hash(record, key),
        "user_id": _searched(facts.user_id),
        "issue": _searched(facts.issue),
        "status": rest_status(record.message) if record.rest and record.response else None,
    }


def _optional(value: bytes | None) -> bytes | None:
    return bytes(value) if value is not None else None


def _stored(r: RowMapping, attachments: tuple[bytes, ...]) -> StoredRecord:
    batch: BatchTimestamp | None = None
    token = _optional(r["token"])
    ts_result = _optional(r["ts_result"])
    ts_chain = _optional(r["timestamp_hash_chain"])
    if token is not None and ts_result is not None and ts_chain is not None:
        batch = BatchTimestamp(token, ts_result, ts_chain)
    return StoredRecord(
        id=int(r["id"]),
        query_id=str(r["query_id"]),
        response=bool(r["response"]),
        time=r["time"],
        message=bytes(r["message"]),
        attachments=attachments,
        signature=SignatureData(
            bytes(r["signature"]), _optional(r["hash_chain_result"]), _optional(r["hash_chain"])
        ),
        timestamped=r["timestamp_id"] is not None,
        batch_timestamp=batch,
        x_request_id=str(r["x_request_id"]),
    )
