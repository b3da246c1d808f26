"""Search the message log: who asked whom for what, when — metadata only, a page at a time.

:func:`search_log` finds the records (requests and responses) matching every given :class:`LogFilters`
field, in id order, at most ``limit`` per :class:`SearchPage`; the next page starts after
:attr:`SearchPage.next_after_id` (keyset pagination, so a page costs the same deep in a large log). Each
filter is served by an index of ``message_records`` (``n0003_search``). A request whose exchange failed after
it was logged carries the failure (:attr:`LogEntry.failure`). A data subject is given in clear
and looked up by its keyed hash (:class:`~security_server.messagelog.subjects.SubjectKey` of the store):
the log never holds it in clear outside the message bodies, which a search never returns.

A data subject may also be given as that hash (``subject_hash``, as the audit log and export manifests
record a search), so a search can be repeated without the registration number. :func:`log_entry` reads one
record's metadata; :func:`filters_json` describes a search without the subject in clear.

Example::

    >>> page = await search_log(store, LogFilters(data_subject="УБ99112233"), limit=50)  # doctest: +SKIP
    >>> [(r.query_id, "response" if r.response else "request") for r in page.records]  # doctest: +SKIP
    [('MN-5c1f...', 'request'), ('MN-5c1f...', 'response')]
    >>> more = await search_log(store, filters, limit=50, after_id=page.next_after_id)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.engine import Row

from security_server.messagelog.models import (
    SEARCHED_VALUE_LENGTH,
    SUBJECT_HASH_LENGTH,
    MessageRecordRow,
    TimestampRecordRow,
)
from security_server.messagelog.store import FailureOutcome, MessageLogStore
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, MemberId, ServiceId, SubsystemId, format_id, parse_id

__all__ = [
    "DEFAULT_SEARCH_LIMIT",
    "MAX_SEARCH_LIMIT",
    "LogEntry",
    "LogFilters",
    "SearchPage",
    "filters_json",
    "log_entry",
    "search_log",
]

DEFAULT_SEARCH_LIMIT: Final = 100
MAX_SEARCH_LIMIT: Final = 1000
"""Most records one page holds."""


@dataclass(frozen=True)
class LogFilters:
    """What the records must match (every field given); all ``None``: every record."""

    start: datetime | None = None
    """Logged at or after (inclusive)."""
    end: datetime | None = None
    """Logged before (exclusive)."""
    client: ClientId | None = None
    """The exchange's client, exactly (a member does not match its subsystems)."""
    service: ServiceId | None = None
    query_id: str | None = None
    """The X-Road id (SOAP ``id``, REST ``X-Road-Id``)."""
    x_request_id: str | None = None
    user_id: str | None = None
    issue: str | None = None
    status: int | None = None
    """A REST response's HTTP status (only responses have one)."""
    data_subject: str | None = None
    """In clear; looked up by its keyed hash."""
    subject_hash: str | None = None
    """The data subject's keyed hash (64 lower-case hex digits), as the audit log and manifests record it."""
    response: bool | None = None
    """True: responses only; False: requests only."""

    def __post_init__(self) -> None:
        h = self.subject_hash
        if h is not None and (len(h) != SUBJECT_HASH_LENGTH or h.strip("0123456789abcdef")):
            raise XRoadError(
                FaultCode.INVALID_REQUEST,
                f"a data subject hash is {SUBJECT_HASH_LENGTH} lower-case hex digits",
                kind=ErrorKind.BAD_INPUT,
            )


@dataclass(frozen=True)
class LogEntry:
    """One record's metadata: never its message, attachments or data subject."""

    id: int
    query_id: str
    x_request_id: str
    client: ClientId
    service: ServiceId
    response: bool
    rest: bool
    logged_at: datetime
    timestamped_at: datetime | None
    """The time-stamp's ``genTime``; ``None`` while the record waits for the timestamper."""
    archived: bool
    status: int | None
    user_id: str | None
    issue: str | None
    signed: bool = True
    """Every logged message carries its signature (the log refuses unsigned ones)."""
    failure: FailureOutcome | None = None
    """A request whose exchange failed after it was logged: the fault code, fault string and time."""

    @property
    def provider(self) -> ClientId:
        """The other party: the service's provider."""
        return self.service.client

    @property
    def timestamped(self) -> bool:
        return self.timestamped_at is not None

    def as_json(self) -> dict[str, Any]:
        """The entry in the admin API's and the CLI's JSON shape."""
        return {
            "id": self.id,
            "x_road_id": self.query_id,
            "x_request_id": self.x_request_id,
            "client": format_id(self.client),
            "provider": format_id(self.provider),
            "service": format_id(self.service),
            "message": "response" if self.response else "request",
            "protocol": "REST" if self.rest else "SOAP",
            "logged_at": self.logged_at.isoformat(),
            "timestamped_at": self.timestamped_at.isoformat() if self.timestamped_at else None,
            "status": self.status,
            "user_id": self.user_id,
            "issue": self.issue,
            "signed": self.signed,
            "timestamped": self.timestamped,
            "archived": self.archived,
            "failure": None
            if self.failure is None
            else {
                "code": self.failure.code,
                "fault_string": self.failure.fault_string,
                "failed_at": self.failure.time.isoformat(),
            },
        }


@dataclass(frozen=True)
class SearchPage:
    """A page of results; ``next_after_id`` is ``None`` on the last page."""

    records: tuple[LogEntry, ...]
    next_after_id: int | None


def _client_clause(client: ClientId) -> list[ColumnElement[bool]]:
    m = MessageRecordRow
    subsystem = client.subsystem_code if isinstance(client, SubsystemId) else None
    return [
        m.instance == client.instance,
        m.member_class == client.member_class,
        m.member_code == client.member_code,
        m.subsystem_code.is_(None) if subsystem is None else m.subsystem_code == subsystem,
    ]


def _searched(value: str) -> str:
    return value[:SEARCHED_VALUE_LENGTH]


def _clauses(store: MessageLogStore, f: LogFilters) -> list[ColumnElement[bool]]:
    m = MessageRecordRow
    out: list[ColumnElement[bool]] = []
    if f.start is not None:
        out.append(m.time >= f.start)
    if f.end is not None:
        out.append(m.time < f.end)
    if f.client is not None:
        out.extend(_client_clause(f.client))
    if f.service is not None:
        out.append(m.service == format_id(f.service))
    for column, value in (
        (m.query_id, f.query_id),
        (m.x_request_id, f.x_request_id),
        (m.user_id, _searched(f.user_id) if f.user_id is not None else None),
        (m.issue, _searched(f.issue) if f.issue is not None else None),
    ):
        if value is not None:
            out.append(column == value)
    if f.status is not None:
        out.append(m.status == f.status)
    if f.response is not None:
        out.append(m.response == f.response)
    if f.data_subject is not None:
        out.append(m.subject_hash == _subject_hash(store, f.data_subject))
    if f.subject_hash is not None:
        out.append(m.subject_hash == f.subject_hash)
    return out


def _subject_hash(store: MessageLogStore, subject: str) -> str:
    if store.subject_key is None:
        raise XRoadError(FaultCode.INVALID_SETTINGS, "the message log has no data subject key to search with")
    return store.subject_key.hash(subject)


def filters_json(store: MessageLogStore, f: LogFilters) -> dict[str, Any]:
    """The filters given, as JSON for the audit log and export manifests: a data subject only as its keyed
    hash (``data_subject_hash``), never in clear."""
    subject_hash = f.subject_hash
    if f.data_subject is not None:
        subject_hash = _subject_hash(store, f.data_subject)
    values: dict[str, Any] = {
        "from": f.start.isoformat() if f.start is not None else None,
        "to": f.end.isoformat() if f.end is not None else None,
        "client": format_id(f.client) if f.client is not None else None,
        "service": format_id(f.service) if f.service is not None else None,
        "x_road_id": f.query_id,
        "x_request_id": f.x_request_id,
        "user_id": f.user_id,
        "issue": f.issue,
        "status": f.status,
        "data_subject_hash": subject_hash,
        "message": None if f.response is None else ("response" if f.response else "request"),
    }
    return {k: v for k, v in values.items() if v is not None}


def _entries() -> Select[*tuple[Any, ...]]:
    m, t = MessageRecordRow, TimestampRecordRow
    return (
        select(
            m.id, m.query_id, m.x_request_id, m.instance, m.member_class, m.member_code, m.subsystem_code,
            m.service, m.response, m.rest, m.time, m.archived, m.status, m.user_id, m.issue,
            t.time.label("timestamped_at"),
        )
        .outerjoin(t, m.timestamp_id == t.id)
    )  # fmt: skip


def _query(
    store: MessageLogStore, filters: LogFilters, limit: int, after_id: int | None
) -> Select[*tuple[Any, ...]]:
    m = MessageRecordRow
    query = _entries().where(*_clauses(store, filters)).order_by(m.id).limit(limit + 1)
    if after_id is not None:
        query = query.where(m.id > after_id)
    return query


def _service(text: str) -> ServiceId:
    service = parse_id(text, strict=False)
    if not isinstance(service, ServiceId):
        raise XRoadError(
            FaultCode.INTERNAL_ERROR, f"logged service {text[:80]!r} is not a service identifier"
        )
    return service


def _entry(r: Row[*tuple[Any, ...]]) -> LogEntry:
    member = MemberId(r.instance, r.member_class, r.member_code)
    return LogEntry(
        id=int(r.id),
        query_id=str(r.query_id),
        x_request_id=str(r.x_request_id),
        client=member.subsystem(r.subsystem_code) if r.subsystem_code is not None else member,
        service=_service(r.service),
        response=bool(r.response),
        rest=bool(r.rest),
        logged_at=r.time,
        timestamped_at=r.timestamped_at,
        archived=bool(r.archived),
        status=r.status,
        user_id=r.user_id,
        issue=r.issue,
    )


async def search_log(
    store: MessageLogStore,
    filters: LogFilters,
    *,
    limit: int = DEFAULT_SEARCH_LIMIT,
    after_id: int | None = None,
) -> SearchPage:
    """The records matching ``filters`` with an id above ``after_id``, at most ``limit`` (1 to
    :data:`MAX_SEARCH_LIMIT`, else ``invalid_request``), in id order."""
    if not 1 <= limit <= MAX_SEARCH_LIMIT:
        raise XRoadError(
            FaultCode.INVALID_REQUEST,
            f"a page holds 1 to {MAX_SEARCH_LIMIT} records, not {limit}",
            kind=ErrorKind.BAD_INPUT,
        )
    query = _query(store, filters, limit, after_id)
    rows = await store.fetch_all(query)
    entries = tuple(_entry(r) for r in rows[:limit])
    failures = await store.failures_of([e.id for e in entries if not e.response])
    if failures:
        entries = tuple(replace(e, failure=failures.get(e.id)) for e in entries)
    more = len(rows) > limit
    return SearchPage(entries, entries[-1].id if more and entries else None)


async def log_entry(store: MessageLogStore, record_id: int) -> LogEntry:
    """The metadata of record ``record_id``; ``not_found`` (404) when there is none (never logged, or
    archived and cleaned away)."""
    rows = await store.fetch_all(_entries().where(MessageRecordRow.id == record_id))
    if not rows:
        raise XRoadError(
            FaultCode.NOT_FOUND,
            f"message log record {record_id} does not exist",
            kind=ErrorKind.NOT_FOUND,
            details={"record_id": record_id},
        )
    return _entry(rows[0])
