"""Whole-log verification: every record still in the database, the archives, and that no exchange lost half.

:func:`verify_log` walks the message records in id order and verifies each as the ASiC-E container it
exports as (:func:`xroad_mn.asic.verify_container`): its time-stamp (single, inside the signature, or batch:
the token over ``ts-hashchainresult.xml`` and the record's ``ts-hashchain.xml``), then its signature, the
signature's hash chains over the message and attachments and the signer's certificate and OCSP response,
all at the time-stamp's ``genTime`` against the node's global configuration. A record the timestamper has
not reached yet is verified at ``now``. Then it checks that every ``x-road-request-id`` has both its
request and its response (a request younger than ``in_flight`` may still be waiting for its answer; one whose
exchange is logged as failed, :class:`~security_server.messagelog.models.ExchangeFailureRow`, is counted and
listed as a failed exchange, not as broken). With
``archives``, every ``mlog-*.zip`` there is verified too, chain by chain from the first
(:func:`xroad_mn.archive.verify_archive_chain`, every container with ``verify_container``), and an exchange
half archived and half still in the database counts as whole.

A record logged with body logging off does not verify (its message no longer matches its signature, as in
X-Road). The outcome names the first broken record or archive and counts the rest.

Example::

    >>> result = await verify_log(store, trust, now=datetime.now(UTC))  # doctest: +SKIP
    >>> result.ok, result.records, result.first_broken  # doctest: +SKIP
    (True, 1200, None)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from sqlalchemy import Integer, case, func, select

from security_server.messagelog.export import container_of
from security_server.messagelog.models import MessageRecordRow
from security_server.messagelog.store import FailureOutcome, MessageLogStore, StoredRecord
from xroad_mn.archive import ArchiveVerification, escape_query_id, linked_previous, verify_archive_chain
from xroad_mn.asic import verify_container, write_container
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import read_archive, read_archives
from xroad_mn.globalconf.trust import TrustMaterial
from xroad_mn.validation import CertificateValidator

__all__ = [
    "IN_FLIGHT",
    "MAX_REPORTED_BROKEN",
    "VERIFY_PAGE_RECORDS",
    "BrokenItem",
    "FailedExchange",
    "LogVerification",
    "verify_log",
]

VERIFY_PAGE_RECORDS: Final = 500
"""Records read (with their attachments) per database round trip."""
MAX_REPORTED_BROKEN: Final = 100
"""Broken records and archives listed in a :class:`LogVerification`; the rest are only counted."""
IN_FLIGHT: Final = timedelta(minutes=10)
"""A request younger than this may be unanswered: its exchange may still be running."""
MISSING_RESPONSE: Final = "missing_response"
MISSING_REQUEST: Final = "missing_request"
_ARCHIVE_NAME: Final = re.compile(
    r"mlog-(?:(?P<group>.+)-)?(?P<start>\d{14})-(?P<end>\d{14})-[0-9a-f]{16}\.zip"
)
_ENTRY_NAME: Final = re.compile(r"(?P<query>.+)-(?P<kind>request|response)-(?P<id>[0-9a-v]+)\.asice")


@dataclass(frozen=True)
class BrokenItem:
    """A record (``record_id``) or an archive (``archive``, and ``entry`` inside it) that failed."""

    code: str
    reason: str
    record_id: int | None = None
    query_id: str | None = None
    archive: str | None = None
    entry: str | None = None

    @property
    def name(self) -> str:
        """How the report names it."""
        if self.record_id is not None:
            return f"record {self.record_id} (X-Road id {self.query_id})"
        where = f"{self.archive}" + (f" entry {self.entry}" if self.entry else "")
        return f"archive {where}"


@dataclass(frozen=True)
class FailedExchange:
    """An exchange that failed after its request was logged: not broken, reported with its outcome. The
    request is in the database, or in ``archive`` as ``entry``."""

    outcome: FailureOutcome
    archive: str | None = None
    entry: str | None = None


@dataclass
class LogVerification:
    """What :func:`verify_log` found."""

    records: int = 0
    """Records verified in the database."""
    timestamped: int = 0
    unstamped: int = 0
    """Records without a time-stamp yet, verified at ``now``."""
    exchanges_incomplete: int = 0
    in_flight: int = 0
    """Requests younger than ``in_flight`` still without a response (not counted as broken)."""
    failed_exchanges: int = 0
    """Requests without a response whose exchange is logged as failed (not counted as broken)."""
    failures: list[FailedExchange] = field(default_factory=list)
    """The first :data:`MAX_REPORTED_BROKEN` failed exchanges."""
    archives: int = 0
    archived_containers: int = 0
    broken_count: int = 0
    broken: list[BrokenItem] = field(default_factory=list)
    """The first :data:`MAX_REPORTED_BROKEN` broken records and archives, in the order found."""

    @property
    def ok(self) -> bool:
        return self.broken_count == 0

    @property
    def first_broken(self) -> BrokenItem | None:
        return self.broken[0] if self.broken else None

    def add_failed(self, item: FailedExchange) -> None:
        self.failed_exchanges += 1
        if len(self.failures) < MAX_REPORTED_BROKEN:
            self.failures.append(item)

    def add(self, item: BrokenItem) -> None:
        self.broken_count += 1
        if len(self.broken) < MAX_REPORTED_BROKEN:
            self.broken.append(item)


def _verify_record(record: StoredRecord, validator: CertificateValidator, now: datetime) -> None:
    container = write_container(container_of(record), created=record.time)
    verify_container(container, trust=validator, at=None if record.timestamped else now)


def _verify_page(
    records: list[StoredRecord], validator: CertificateValidator, now: datetime, out: LogVerification
) -> None:
    for record in records:
        out.records += 1
        if record.timestamped:
            out.timestamped += 1
        else:
            out.unstamped += 1
        try:
            _verify_record(record, validator, now)
        except XRoadError as e:
            out.add(BrokenItem(e.code, e.message, record_id=record.id, query_id=record.query_id))


@dataclass(frozen=True)
class _HalfExchange:
    """An ``x-road-request-id`` with only requests or only responses in the database."""

    x_request_id: str
    query_id: str
    first_id: int
    last_time: datetime
    has_response: bool


async def _half_exchanges(store: MessageLogStore) -> list[_HalfExchange]:
    m = MessageRecordRow
    responses = func.sum(case((m.response.is_(True), 1), else_=0), type_=Integer)
    query = (
        select(m.x_request_id, func.min(m.query_id), func.min(m.id), func.max(m.time), responses)
        .group_by(m.x_request_id)
        .having((responses == 0) | (responses == func.count()))
        .order_by(func.min(m.id))
    )
    rows = await store.fetch_all(query)
    return [_HalfExchange(str(r[0]), str(r[1]), int(r[2]), r[3], bool(r[4])) for r in rows]


def _chains(directory: Path) -> Iterator[tuple[str, list[Path]]]:
    """The archives of ``directory`` per group (``""``: not grouped), each chain oldest first."""
    groups: dict[str, list[tuple[str, str, Path]]] = {}
    for path in directory.glob("mlog-*.zip"):
        match = _ARCHIVE_NAME.fullmatch(path.name)
        if match is None:
            continue
        groups.setdefault(match["group"] or "", []).append((match["start"], match["end"], path))
    for group in sorted(groups):
        yield group, _linked_order([p for _, _, p in sorted(groups[group])])


def _linked_order(by_time: list[Path]) -> list[Path]:
    """A group's archives in chain order: from the one that links to no archive here, each followed by the
    one whose ``linkinginfo`` names it (archives rotated within one second carry the same times in their
    names). An archive that cannot be read, or a chain that forks or breaks, keeps the time order: the
    verification that follows names the break."""
    try:
        previous = {p.name: linked_previous(read_archive(p)) for p in by_time}
    except XRoadError:
        return by_time
    by_name = {p.name: p for p in by_time}
    following: dict[str | None, list[Path]] = {}
    for path in by_time:
        link = previous[path.name]
        following.setdefault(link if link in by_name else None, []).append(path)
    order: list[Path] = []
    key: str | None = None
    while len(following.get(key, ())) == 1:
        nxt = following[key][0]
        order.append(nxt)
        key = nxt.name
    return order if len(order) == len(by_time) else by_time


class _ArchivedHalves:
    """Archived containers whose other half (same query id, other direction) is not seen yet."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, bool], tuple[str, str]] = {}
        """``(escaped query id, response?)`` → archive and entry."""

    def see(self, archive: str, entry: str) -> None:
        match = _ENTRY_NAME.fullmatch(entry)
        if match is None:
            return
        query, response = match["query"], match["kind"] == "response"
        if self.pending.pop((query, not response), None) is None:
            self.pending[(query, response)] = (archive, entry)

    def unanswered_requests(self) -> dict[int, tuple[str, str]]:
        """The archived requests still without a response, by record id: their archive and entry."""
        out: dict[int, tuple[str, str]] = {}
        for (_query, response), (archive, entry) in self.pending.items():
            match = _ENTRY_NAME.fullmatch(entry)
            if not response and match is not None:
                out[int(match["id"], 32)] = (archive, entry)
        return out

    def take(self, query_id: str, response: bool) -> bool:
        """Whether the archives hold a ``response`` (or request) container of ``query_id``; consumes it."""
        return self.pending.pop((escape_query_id(query_id), response), None) is not None


@dataclass
class _ChainWalk:
    """One chain's archives read one at a time, each container verified and its name noted."""

    validator: CertificateValidator
    halves: _ArchivedHalves
    current: str = ""

    def read(self, chain: list[Path]) -> Iterator[tuple[str, bytes]]:
        for name, data in read_archives(chain):
            self.current = name
            yield name, data

    def check(self, entry: str, data: bytes) -> None:
        verify_container(data, trust=self.validator)
        self.halves.see(self.current, entry)


def _verify_archives(
    directory: Path, validator: CertificateValidator, out: LogVerification, halves: _ArchivedHalves
) -> None:
    if not directory.is_dir():
        raise XRoadError(FaultCode.IO_ERROR, f"{directory} is not a directory of archives")
    for _group, paths in _chains(directory):
        walk = _ChainWalk(validator, halves)
        try:
            results: list[ArchiveVerification] = verify_archive_chain(
                walk.read(paths), first=True, verify_container=walk.check
            )
        except XRoadError as e:
            out.add(BrokenItem(e.code, e.message, archive=str(e.details.get("archive", walk.current))))
            continue
        out.archives += len(results)
        out.archived_containers += sum(len(r.entries) for r in results)


def _check_exchanges(
    halves_in_db: list[_HalfExchange],
    archived: _ArchivedHalves,
    failures: dict[int, FailureOutcome],
    now: datetime,
    in_flight: timedelta,
    out: LogVerification,
) -> None:
    counted: set[int] = set()
    """Failed requests counted from the database (not again from an archive holding them too)."""
    for half in halves_in_db:
        if archived.take(half.query_id, not half.has_response):
            continue
        failure = None if half.has_response else failures.get(half.first_id)
        if failure is not None:
            out.add_failed(FailedExchange(failure))
            counted.add(half.first_id)
            continue
        if not half.has_response and half.last_time > now - in_flight:
            out.in_flight += 1
            continue
        out.exchanges_incomplete += 1
        code, what = (MISSING_REQUEST, "request") if half.has_response else (MISSING_RESPONSE, "response")
        out.add(
            BrokenItem(
                code,
                f"exchange {half.x_request_id} has no {what} in the log",
                record_id=half.first_id,
                query_id=half.query_id,
            )
        )
    failed_in_archives = {
        (archive, entry): failures[record_id]
        for record_id, (archive, entry) in archived.unanswered_requests().items()
        if record_id in failures
    }
    for (_query, response), (archive, entry) in archived.pending.items():
        failure = failed_in_archives.get((archive, entry))
        if failure is not None:
            if failure.request_record_id not in counted:
                out.add_failed(FailedExchange(failure, archive, entry))
            continue
        out.exchanges_incomplete += 1
        what = "request" if response else "response"
        out.add(BrokenItem(MISSING_REQUEST if response else MISSING_RESPONSE,
                           f"{entry} has no {what} in the log", archive=archive, entry=entry))  # fmt: skip


async def verify_log(
    store: MessageLogStore,
    trust: TrustMaterial | CertificateValidator,
    *,
    now: datetime,
    archives: Path | None = None,
    in_flight: timedelta = IN_FLIGHT,
) -> LogVerification:
    """Verify every record in the database (and every archive in ``archives``); see the module. Database
    failures raise ``logging_failed``; what is broken is reported, not raised."""
    validator = trust if isinstance(trust, CertificateValidator) else CertificateValidator(trust)
    out = LogVerification()
    after = 0
    while True:
        page = await store.records_after(after, limit=VERIFY_PAGE_RECORDS)
        if not page:
            break
        await asyncio.to_thread(_verify_page, page, validator, now, out)
        after = page[-1].id
    halves = _ArchivedHalves()
    if archives is not None:
        await asyncio.to_thread(_verify_archives, archives, validator, out, halves)
    halves_in_db = await _half_exchanges(store)
    unanswered = [h.first_id for h in halves_in_db if not h.has_response]
    failures = await store.failures_of([*unanswered, *halves.unanswered_requests()])
    _check_exchanges(halves_in_db, halves, failures, now, in_flight, out)
    return out
