"""Message log search and whole-log verification on SQLite and PostgreSQL: every filter (the data subject by
its keyed hash), keyset pages, no registration number in clear outside message bodies, and verify_log
naming a changed byte, a deleted response, a broken time-stamp and a broken archive."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, delete, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

from security_server.cli import app as node_cli
from security_server.home import create_home, globalconf_dir, open_home
from security_server.messagelog import (
    ExchangeFacts,
    ExchangeFailure,
    LogRecord,
    MessageLog,
    MessageLogStore,
    SubjectKey,
    rest_facts,
    soap_facts,
)
from security_server.messagelog.export import export_exchange
from security_server.messagelog.models import ExchangeFailureRow, MessageRecordRow, TimestampRecordRow
from security_server.messagelog.search import LogFilters, search_log
from security_server.messagelog.subjects import SUBJECT_KEY_FILE
from security_server.messagelog.verify import MISSING_REQUEST, MISSING_RESPONSE, verify_log
from security_server.operations import open_node_store
from tests.security_server.test_messagelog_timestamper import _write_conf
from tests.test_signature import Evidence, build_evidence
from xroad_mn.archive import write_archive
from xroad_mn.asic import build_timestamp_hash_chains
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.hashchain import MessagePart
from xroad_mn.signature import embed_timestamp, sign, sign_batch, timestamp_input
from xroad_mn.wire.rest import build_rest_request, build_rest_response
from xroad_mn.wire.soap import parse_soap_message
from xroad_mn.wire.subject import EXTENSIONS_NS

from .messagelog_fixtures import CLIENT, SERVICE, record_for, soap_message

SUBJECT = "УБ99112233"
OTHER_SUBJECT = "ЧЖ88010112"
REST_SERVICE = CLIENT.subsystem("registry").service("people")
"""Provided by the client member too: the dev PKI holds one member's signing key."""
T0 = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def evidence() -> Evidence:
    return build_evidence()


@pytest.fixture
def key() -> SubjectKey:
    return SubjectKey(os.urandom(32))


def _rest_request(query_id: str, subject: str | None, user_id: str | None = None) -> bytes:
    headers = [("X-Road-Client", "MN/GOV/5012345")]
    if subject is not None:
        headers.append(("X-MN-Data-Subject", subject))
    if user_id is not None:
        headers.append(("X-Road-UserId", user_id))
    return build_rest_request(
        "GET",
        "/r1/MN/GOV/5012345/registry/people/1",
        headers,
        query_id=query_id,
        request_id=f"xreq-{query_id}",
    ).to_bytes()


def _rest_pair(
    evidence: Evidence, query_id: str, subject: str | None, *, status: int = 200
) -> list[LogRecord]:
    """A REST request and its response, both signed by the client's key (the dev PKI holds one member)."""
    header_part = _rest_request(query_id, subject, "EE1")
    request = build_rest_request(
        "GET", "/r1/MN/GOV/5012345/registry/people/1", [("X-Road-Client", "MN/GOV/5012345")],
        query_id=query_id, request_id=f"xreq-{query_id}",
    )  # fmt: skip
    response = build_rest_response(status, "R", [], request=request, request_hash="aGFzaA==").to_bytes()
    facts = ExchangeFacts(subject, "EE1", None)
    out = []
    for message, is_response in ((header_part, False), (response, True)):
        signature = sign([MessagePart("/message.xml", message)], evidence.key)
        out.append(
            LogRecord(
                query_id,
                f"xreq-{query_id}",
                CLIENT,
                REST_SERVICE,
                is_response,
                True,
                message,
                (),
                signature,
                facts,
            )
        )
    return out


def _soap_with_subject(query_id: str, subject: str) -> bytes:
    element = f'<mn:dataSubject xmlns:mn="{EXTENSIONS_NS}">{subject}</mn:dataSubject>'.encode()
    return soap_message(query_id).replace(b"</SOAP-ENV:Header>", element + b"</SOAP-ENV:Header>")


def _soap_pair(evidence: Evidence, query_id: str, facts: ExchangeFacts) -> list[LogRecord]:
    messages = [
        _soap_with_subject(query_id, facts.data_subject) if facts.data_subject else soap_message(query_id),
        soap_message(query_id),
    ]
    signatures = sign_batch([[MessagePart("/message.xml", m)] for m in messages], evidence.key)
    return [
        dataclasses.replace(record_for(query_id, s, message=m, response=i == 1), facts=facts)
        for i, (m, s) in enumerate(zip(messages, signatures, strict=True))
    ]


async def _ids(store: MessageLogStore, **filters: object) -> list[int]:
    page = await search_log(store, LogFilters(**filters), limit=1000)  # type: ignore[arg-type]
    return [r.id for r in page.records]


async def test_search_by_every_filter(node_db: AsyncEngine, evidence: Evidence, key: SubjectKey) -> None:
    store = MessageLogStore(node_db, subject_key=key)
    subsystem = CLIENT.subsystem("crm")
    first = _rest_pair(evidence, "q-rest", SUBJECT, status=404)
    second = _soap_pair(evidence, "q-soap", ExchangeFacts(OTHER_SUBJECT, "EE2", "case-7"))
    third = [dataclasses.replace(r, client=subsystem) for r in _soap_pair(evidence, "q-sub", ExchangeFacts())]
    rest_ids = await store.insert_records(first, at=T0)
    soap_ids = await store.insert_records(second, at=T0 + timedelta(hours=1))
    sub_ids = await store.insert_records(third, at=T0 + timedelta(hours=2))
    everything = rest_ids + soap_ids + sub_ids

    assert await _ids(store) == everything
    assert await _ids(store, data_subject=f" {SUBJECT} ") == rest_ids
    assert await _ids(store, data_subject=OTHER_SUBJECT) == soap_ids
    assert await _ids(store, data_subject="АА00000000") == []
    assert await _ids(store, start=T0 + timedelta(minutes=30), end=T0 + timedelta(hours=2)) == soap_ids
    assert await _ids(store, client=CLIENT) == rest_ids + soap_ids
    assert await _ids(store, client=subsystem) == sub_ids
    assert await _ids(store, service=REST_SERVICE) == rest_ids
    assert await _ids(store, query_id="q-soap") == soap_ids
    assert await _ids(store, x_request_id="xreq-q-sub") == sub_ids
    assert await _ids(store, user_id="EE1") == rest_ids
    assert await _ids(store, issue="case-7") == soap_ids
    assert await _ids(store, status=404) == [rest_ids[1]]
    assert await _ids(store, response=False, service=SERVICE) == [soap_ids[0], sub_ids[0]]

    page = await search_log(store, LogFilters(), limit=4)
    assert [r.id for r in page.records] == everything[:4]
    rest = await search_log(store, LogFilters(), limit=4, after_id=page.next_after_id)
    assert [r.id for r in rest.records] == everything[4:]
    assert rest.next_after_id is None
    entry = page.records[1]
    assert (entry.query_id, entry.response, entry.rest, entry.status, entry.provider) == (
        "q-rest", True, True, 404, REST_SERVICE.client,
    )  # fmt: skip
    assert entry.as_json()["timestamped"] is False
    assert "subject" not in json.dumps(entry.as_json())


async def test_search_refuses_bad_pages_and_subjects_without_a_key(node_db: AsyncEngine) -> None:
    store = MessageLogStore(node_db)
    for limit in (0, 1001):
        with pytest.raises(XRoadError) as err:
            await search_log(store, LogFilters(), limit=limit)
        assert err.value.code == FaultCode.INVALID_REQUEST
    with pytest.raises(XRoadError) as err:
        await search_log(store, LogFilters(data_subject=SUBJECT))
    assert err.value.code == FaultCode.INVALID_SETTINGS


async def test_a_subject_is_never_written_without_a_key(node_db: AsyncEngine, evidence: Evidence) -> None:
    with pytest.raises(XRoadError) as err:
        await MessageLogStore(node_db).insert_records(_rest_pair(evidence, "q-1", SUBJECT), at=T0)
    assert err.value.code == FaultCode.LOGGING_FAILED


def test_the_subject_key_is_made_once_and_private(tmp_path: Path) -> None:
    first = SubjectKey.open(tmp_path)
    path = tmp_path / SUBJECT_KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert SubjectKey.open(tmp_path).hash(SUBJECT) == first.hash(SUBJECT)
    assert [p.name for p in tmp_path.iterdir()] == [SUBJECT_KEY_FILE]
    path.write_bytes(b"short")
    with pytest.raises(XRoadError) as err:
        SubjectKey.open(tmp_path)
    assert err.value.code == FaultCode.INVALID_SETTINGS


_BODY_COLUMNS = {"message_records": ("message",), "message_attachments": ("data",)}


def _columns(conn: Connection, table: str) -> list[str]:
    return [column["name"] for column in inspect(conn).get_columns(table)]


async def _rows_without_bodies(engine: AsyncEngine) -> list[str]:
    """Every row of every table as text, message bodies left out (bytea/blob rendered as hex)."""
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        out: list[str] = []
        for table in tables:
            columns = await conn.run_sync(_columns, table)
            kept = [c for c in columns if c not in _BODY_COLUMNS.get(table, ())]
            rows = (await conn.execute(text(f"SELECT {', '.join(kept)} FROM {table}"))).all()
            for row in rows:
                out.extend(v.hex() if isinstance(v, bytes) else str(v) for v in row)
    return out


async def test_no_registration_number_in_clear_outside_bodies(
    node_db: AsyncEngine, evidence: Evidence, key: SubjectKey, tmp_path: Path
) -> None:
    store = MessageLogStore(node_db, subject_key=key)
    records = _rest_pair(evidence, "q-rest", SUBJECT) + _soap_pair(evidence, "q-soap", ExchangeFacts(SUBJECT))
    await store.insert_records(records, at=T0)
    store.close()
    encoded = SUBJECT.encode("utf-8")
    # The bodies hold it (so the greps below can find it) ...
    async with node_db.connect() as conn:
        bodies = (await conn.execute(select(MessageRecordRow.message))).scalars().all()
        hashes = (await conn.execute(select(MessageRecordRow.subject_hash))).scalars().all()
    assert sum(encoded in bytes(b) for b in bodies) == 2
    assert hashes == [key.hash(SUBJECT)] * 4
    # ... and nothing else does, in clear or as hex.
    values = await _rows_without_bodies(node_db)
    assert values
    assert not [v for v in values if SUBJECT in v or encoded.hex() in v]
    if node_db.dialect.name == "sqlite":
        database = Path(str(node_db.url.database))
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
        at = [i for i in range(len(raw)) if raw.startswith(encoded, i)]
        assert at, "the SQLite file holds the bodies"
        for i in at:  # each occurrence is the value of the REST header or of the SOAP element
            before = raw[max(0, i - 80) : i]
            assert before.endswith(b"X-MN-Data-Subject:") or before.endswith(
                f'xmlns:mn="{EXTENSIONS_NS}">'.encode()
            )


# ------------------------------------------------------------------------------------------------------------
# verify_log


async def _logged_and_stamped(store: MessageLogStore, evidence: Evidence) -> dict[str, list[int]]:
    """Three exchanges: SOAP batch-signed with a batch time-stamp, REST with single time-stamps, SOAP
    unstamped."""
    batch = _soap_pair(evidence, "q-batch", ExchangeFacts(SUBJECT))
    rest = _rest_pair(evidence, "q-rest", SUBJECT)
    waiting = _soap_pair(evidence, "q-wait", ExchangeFacts())
    ids = {
        "batch": await store.insert_records(batch, at=evidence.now),
        "rest": await store.insert_records(rest, at=evidence.now),
        "wait": await store.insert_records(waiting, at=evidence.now),
    }
    chains = build_timestamp_hash_chains([r.signature.signature_xml for r in batch])
    await store.save_batch_timestamp(
        ids["batch"], token=evidence.timestamp(chains.result_xml), gen_time=evidence.now,
        hash_chain_result=chains.result_xml, hash_chains=chains.chains,
    )  # fmt: skip
    for record_id, record in zip(ids["rest"], rest, strict=True):
        signature = record.signature.signature_xml
        token = evidence.timestamp(timestamp_input(signature))
        await store.save_single_timestamp(
            record_id, token=token, gen_time=evidence.now, signature_xml=embed_timestamp(signature, token)
        )
    return ids


async def test_verify_log_passes_a_good_log(
    node_db: AsyncEngine, evidence: Evidence, key: SubjectKey
) -> None:
    store = MessageLogStore(node_db, subject_key=key)
    await _logged_and_stamped(store, evidence)
    result = await verify_log(store, evidence.trust, now=evidence.now + timedelta(minutes=1))
    assert result.broken == []
    assert (result.ok, result.records, result.timestamped, result.unstamped) == (True, 6, 4, 2)
    assert result.first_broken is None


async def test_verify_log_names_a_changed_byte(
    node_db: AsyncEngine, evidence: Evidence, key: SubjectKey
) -> None:
    store = MessageLogStore(node_db, subject_key=key)
    ids = await _logged_and_stamped(store, evidence)
    target = ids["rest"][0]
    async with node_db.begin() as conn:
        message = bytes(
            (
                await conn.execute(select(MessageRecordRow.message).where(MessageRecordRow.id == target))
            ).scalar_one()
        )
        changed = message.replace(b"people/1", b"people/2")
        assert changed != message
        await conn.execute(
            update(MessageRecordRow).where(MessageRecordRow.id == target).values(message=changed)
        )
    result = await verify_log(store, evidence.trust, now=evidence.now)
    assert not result.ok
    assert result.broken_count == 1
    broken = result.first_broken
    assert broken is not None
    assert broken.record_id == target
    assert broken.query_id == "q-rest"
    assert broken.code == FaultCode.INVALID_REFERENCE or "digest" in broken.reason.lower()


async def test_verify_log_names_a_deleted_response(
    node_db: AsyncEngine, evidence: Evidence, key: SubjectKey
) -> None:
    store = MessageLogStore(node_db, subject_key=key)
    ids = await _logged_and_stamped(store, evidence)
    async with node_db.begin() as conn:
        await conn.execute(delete(MessageRecordRow).where(MessageRecordRow.id == ids["batch"][1]))
    now = evidence.now + timedelta(minutes=1)
    young = await verify_log(store, evidence.trust, now=now)  # the exchange may still be running
    assert young.ok
    assert young.in_flight == 1
    result = await verify_log(store, evidence.trust, now=now, in_flight=timedelta(0))
    assert (result.records, result.broken_count, result.exchanges_incomplete) == (5, 1, 1)
    broken = result.first_broken
    assert broken is not None
    assert (broken.code, broken.record_id, broken.query_id) == (MISSING_RESPONSE, ids["batch"][0], "q-batch")


async def test_verify_log_names_a_broken_timestamp(
    node_db: AsyncEngine, evidence: Evidence, key: SubjectKey
) -> None:
    store = MessageLogStore(node_db, subject_key=key)
    ids = await _logged_and_stamped(store, evidence)
    async with node_db.begin() as conn:
        row = (
            await conn.execute(
                select(TimestampRecordRow.id, TimestampRecordRow.token).where(
                    TimestampRecordRow.hash_chain_result.is_not(None)
                )
            )
        ).one()
        token = bytearray(row.token)
        token[-40] ^= 0x01  # inside the TSA's signature value
        await conn.execute(
            update(TimestampRecordRow).where(TimestampRecordRow.id == row.id).values(token=bytes(token))
        )
    result = await verify_log(store, evidence.trust, now=evidence.now)
    assert [b.record_id for b in result.broken] == ids["batch"]
    assert all(
        b.code in (FaultCode.TIMESTAMP_VALIDATION, FaultCode.MALFORMED_SIGNATURE) for b in result.broken
    )


async def test_verify_log_checks_archives_and_pairs_across_them(
    node_db: AsyncEngine, evidence: Evidence, key: SubjectKey, tmp_path: Path
) -> None:
    store = MessageLogStore(node_db, subject_key=key)
    ids = await _logged_and_stamped(store, evidence)
    # The batch exchange's request moves to an archive; its response stays in the database.
    (request,) = [(n, d) for n, d in await export_exchange(store, "q-batch") if "-request-" in n]
    archive = write_archive([request], previous=None, start=evidence.now, end=evidence.now)
    (tmp_path / archive.filename).write_bytes(archive.data)
    async with node_db.begin() as conn:
        await conn.execute(delete(MessageRecordRow).where(MessageRecordRow.id == ids["batch"][0]))
    now = evidence.now + timedelta(minutes=1)
    result = await verify_log(store, evidence.trust, now=now, archives=tmp_path, in_flight=timedelta(0))
    assert (result.ok, result.archives, result.archived_containers, result.records) == (True, 1, 1, 5)
    # Without the archive the response has lost its request.
    alone = await verify_log(store, evidence.trust, now=now, in_flight=timedelta(0))
    assert alone.first_broken is not None
    assert alone.first_broken.record_id == ids["batch"][1]
    # A byte changed in the archive is named by the archive's name.
    data = bytearray(archive.data)
    data[200] ^= 0x01
    (tmp_path / archive.filename).write_bytes(bytes(data))
    broken = await verify_log(store, evidence.trust, now=now, archives=tmp_path, in_flight=timedelta(0))
    assert broken.first_broken is not None
    assert broken.first_broken.archive == archive.filename


async def test_a_failed_exchange_is_counted_apart_also_once_archived(
    node_db: AsyncEngine, evidence: Evidence, key: SubjectKey, tmp_path: Path
) -> None:
    store = MessageLogStore(node_db, subject_key=key)
    await _logged_and_stamped(store, evidence)
    request, _response = _rest_pair(evidence, "q-failed", None)
    other = _rest_pair(evidence, "q-other", None)
    message_log = MessageLog(store, clock=lambda: evidence.now)
    async with message_log.running():
        request_id = await message_log.log(request)
        failure = ExchangeFailure(request_id, "q-failed", "xreq-q-failed", "server.service_failed", "down")
        commits = message_log.commits
        await asyncio.gather(*map(message_log.log, other), message_log.log_failure(failure))
        assert message_log.commits == commits + 1, "the failure rides in the group commit"
    signature = request.signature.signature_xml
    token = evidence.timestamp(timestamp_input(signature))
    await store.save_single_timestamp(
        request_id, token=token, gen_time=evidence.now, signature_xml=embed_timestamp(signature, token)
    )
    now = evidence.now + timedelta(minutes=1)
    result = await verify_log(store, evidence.trust, now=now, in_flight=timedelta(0))
    assert (result.failed_exchanges, result.exchanges_incomplete, result.broken_count) == (1, 0, 0)
    (failed,) = result.failures
    assert (failed.outcome.request_record_id, failed.outcome.code, failed.archive) == (
        request_id, "server.service_failed", None,
    )  # fmt: skip
    assert failed.outcome.time == evidence.now
    page = await search_log(store, LogFilters(query_id="q-failed"), limit=10)
    assert [r.failure.code if r.failure else None for r in page.records] == ["server.service_failed"]

    # Archived and deleted from the database, the request is still known as a failed exchange.
    (container,) = await export_exchange(store, "q-failed")
    archive = write_archive([container], previous=None, start=evidence.now, end=evidence.now)
    (tmp_path / archive.filename).write_bytes(archive.data)
    async with node_db.begin() as conn:
        await conn.execute(delete(MessageRecordRow).where(MessageRecordRow.id == request_id))
    archived = await verify_log(store, evidence.trust, now=now, archives=tmp_path, in_flight=timedelta(0))
    assert (archived.ok, archived.failed_exchanges, archived.archived_containers) == (True, 1, 1)
    assert (archived.failures[0].archive, archived.failures[0].entry) == (archive.filename, container[0])

    # Without its outcome the archived request has lost its response.
    async with node_db.begin() as conn:
        await conn.execute(delete(ExchangeFailureRow))
    lost = await verify_log(store, evidence.trust, now=now, archives=tmp_path, in_flight=timedelta(0))
    assert lost.failed_exchanges == 0
    assert lost.first_broken is not None
    assert (lost.first_broken.code, lost.first_broken.entry) == (MISSING_RESPONSE, container[0])


async def test_an_overlong_request_id_does_not_fail_its_group(
    node_db: AsyncEngine, evidence: Evidence, key: SubjectKey
) -> None:
    """The provider node takes ``x-road-request-id`` from the consumer node; one too long for its column
    (PostgreSQL enforces ``varchar(255)``) must not fail the group commit of every other exchange."""
    store = MessageLogStore(node_db, subject_key=key)
    long_id = "x" * 300
    records = [dataclasses.replace(r, x_request_id=long_id) for r in _rest_pair(evidence, "q-long", None)]
    records.append(_rest_pair(evidence, "q-next", None)[0])
    ids = await store.insert_records(records, at=evidence.now)
    assert len(ids) == 3
    page = await search_log(store, LogFilters(query_id="q-long"), limit=10)
    assert {r.x_request_id for r in page.records} == {long_id[:255]}


# ------------------------------------------------------------------------------------------------------------
# The CLI


async def test_node_log_search_and_verify_commands(evidence: Evidence, tmp_path: Path) -> None:
    home = create_home(tmp_path / "node", {"address": "127.0.0.2"})
    settings = open_home(home)
    async with open_node_store(settings) as node_store:
        store = MessageLogStore(node_store.engine, subject_key=SubjectKey.open(home))
        ids = await _logged_and_stamped(store, evidence)
        store.close()
    _write_conf(evidence.trust, globalconf_dir(home))
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(node_cli, ["log", *args, "--dir", str(home), "--json"])

    found = await asyncio.to_thread(run, "search", "--subject", SUBJECT, "--from", evidence.now.isoformat())
    assert found.exit_code == 0, found.output
    records = json.loads(found.stdout)["records"]
    assert [r["id"] for r in records] == ids["batch"] + ids["rest"]
    assert {r["x_road_id"] for r in records} == {"q-batch", "q-rest"}
    table = await asyncio.to_thread(
        runner.invoke, node_cli, ["log", "search", "--dir", str(home), "--limit", "2"]
    )
    assert table.exit_code == 0, table.output
    assert "q-batch" in table.stdout
    assert f"--after-id {ids['batch'][1]}" in table.stdout

    verified = await asyncio.to_thread(run, "verify")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["records"] == 6

    async with open_node_store(settings) as node_store, node_store.engine.begin() as conn:
        await conn.execute(delete(MessageRecordRow).where(MessageRecordRow.id == ids["rest"][0]))
    broken = await asyncio.to_thread(run, "verify")
    assert broken.exit_code == 1
    verdict = json.loads(broken.stdout)
    assert verdict["code"] == MISSING_REQUEST
    assert verdict["broken"][0]["record_id"] == ids["rest"][1]


def test_exchange_facts_come_from_the_request() -> None:
    rest = build_rest_request(
        "GET", "/r1/MN/GOV/5012345/registry/people/1",
        [("X-Road-Client", "MN/GOV/5012345"), ("X-Road-UserId", "EE1"), ("X-Road-Issue", "c-9"),
         ("X-MN-Data-Subject", SUBJECT)],
        query_id="q-1", request_id="r-1",
    )  # fmt: skip
    assert rest_facts(rest) == ExchangeFacts(SUBJECT, "EE1", "c-9")
    soap = parse_soap_message(_soap_with_subject("q-2", f" {OTHER_SUBJECT} "))
    assert soap_facts(soap) == ExchangeFacts(OTHER_SUBJECT, None, None)
    assert soap_facts(parse_soap_message(soap_message("q-3"))) == ExchangeFacts()
