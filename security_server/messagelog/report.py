"""What ``xroad-mn node log search`` and ``node log verify`` print: a rich table or JSON, and the verdict.

Example::

    >>> start = parse_log_time("2027-01-05T12:00")  # naive times are UTC
    >>> start.isoformat()
    '2027-01-05T12:00:00+00:00'
    >>> print_search_page(page, console)  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from security_server.messagelog.bundle import BundleSummary
from security_server.messagelog.search import SearchPage
from security_server.messagelog.store import FailureOutcome
from security_server.messagelog.verify import LogVerification
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import format_id

__all__ = [
    "broken_error",
    "bundle_json",
    "parse_log_time",
    "print_search_page",
    "print_verification",
    "search_json",
    "verification_json",
]


def parse_log_time(text: str) -> datetime:
    """An ISO 8601 time (``2027-01-05``, ``2027-01-05T12:00:00+08:00``); naive times are UTC.
    ``invalid_request`` when it is none."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise XRoadError(
            FaultCode.INVALID_REQUEST, f"{text[:40]!r} is not an ISO 8601 time", kind=ErrorKind.BAD_INPUT
        ) from e
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def search_json(page: SearchPage) -> dict[str, Any]:
    return {"records": [r.as_json() for r in page.records], "next_after_id": page.next_after_id}


def bundle_json(summary: BundleSummary) -> dict[str, Any]:
    return {
        "records": summary.records,
        "containers": summary.containers,
        "skipped": summary.skipped,
        "complete": summary.complete,
        "next_after_id": summary.next_after_id,
        "bytes": summary.bytes_written,
    }


def _state(timestamped: bool, archived: bool, failure: FailureOutcome | None) -> str:
    failed = f", failed {escape(failure.code)} at {failure.time.astimezone(UTC):%H:%M:%S}" if failure else ""
    return "signed" + (", timestamped" if timestamped else "") + (", archived" if archived else "") + failed


def print_search_page(page: SearchPage, console: Console) -> None:
    """The page as a table, and how to ask for the next one."""
    table = Table(title=f"{len(page.records)} records", title_justify="left")
    for column in ("id", "X-Road id", "message", "client", "service", "logged (UTC)", "status", "state"):
        table.add_column(column, overflow="fold")
    for r in page.records:
        table.add_row(
            str(r.id),
            r.query_id,
            ("response" if r.response else "request") + (" (REST)" if r.rest else " (SOAP)"),
            format_id(r.client),
            format_id(r.service),
            r.logged_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            str(r.status) if r.status is not None else "",
            _state(r.timestamped, r.archived, r.failure),
        )
    console.print(table)
    if page.next_after_id is not None:
        console.print(f"more: add --after-id {page.next_after_id}")


def verification_json(result: LogVerification) -> dict[str, Any]:
    return {
        "valid": result.ok,
        "records": result.records,
        "timestamped": result.timestamped,
        "unstamped": result.unstamped,
        "in_flight": result.in_flight,
        "failed_exchanges": result.failed_exchanges,
        "failures": [
            {**f.outcome.as_json(), "archive": f.archive, "entry": f.entry} for f in result.failures
        ],
        "incomplete_exchanges": result.exchanges_incomplete,
        "archives": result.archives,
        "archived_containers": result.archived_containers,
        "broken_count": result.broken_count,
        "broken": [
            {
                "code": b.code,
                "reason": b.reason,
                "record_id": b.record_id,
                "x_road_id": b.query_id,
                "archive": b.archive,
                "entry": b.entry,
            }
            for b in result.broken
        ],
    }


def print_verification(result: LogVerification, console: Console) -> None:
    """Counts, then the broken records and archives (the first one first)."""
    mark = "[green]✓[/] message log verifies" if result.ok else "[bold red]✗ message log is broken[/]"
    table = Table(title=mark, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for label, value in (
        ("records", result.records),
        ("time-stamped", result.timestamped),
        ("waiting for a time-stamp", result.unstamped),
        ("exchanges still running", result.in_flight),
        ("failed exchanges", result.failed_exchanges),
        ("incomplete exchanges", result.exchanges_incomplete),
        ("archives", result.archives),
        ("archived containers", result.archived_containers),
        ("broken", result.broken_count),
    ):
        table.add_row(label, str(value))
    console.print(table)
    for f in result.failures:
        o = f.outcome
        where = f" in {f.archive}" if f.archive else ""
        console.print(
            f"  failed {o.time.astimezone(UTC):%Y-%m-%d %H:%M:%S} [bold]{escape(o.code)}[/] X-Road id "
            f"{escape(o.query_id)} (record {o.request_record_id}{escape(where)}): {escape(o.fault_string)}",
            markup=True, highlight=False,
        )  # fmt: skip
    if result.failed_exchanges > len(result.failures):
        console.print(f"  … and {result.failed_exchanges - len(result.failures)} more failed exchanges")
    for b in result.broken:
        console.print(f"  [bold]{b.code}[/] {b.name}: {b.reason}")
    if result.broken_count > len(result.broken):
        console.print(f"  … and {result.broken_count - len(result.broken)} more")


def broken_error(result: LogVerification) -> XRoadError | None:
    """The error naming the first broken record or archive, ``None`` when the log verifies."""
    first = result.first_broken
    if first is None:
        return None
    return XRoadError(
        first.code,
        f"{first.name}: {first.reason} ({result.broken_count} broken in all)",
        details={"record_id": first.record_id or "", "archive": first.archive or ""},
    )
