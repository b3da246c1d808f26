"""Evidence out in bulk: the records of a search (a time range, a client, a data subject...) as one zip of
ASiC-E containers and a ``manifest.json``.

:func:`write_bundle` walks :func:`~security_server.messagelog.search.search_log` pages and writes each
time-stamped record's container (named and built as
:func:`~security_server.messagelog.export.write_containers` makes them: they verify offline with
``xroad-mn asic verify``) into the zip as it goes, so memory holds one
page of :data:`BUNDLE_PAGE_RECORDS` records, never the whole export. Entries are stored (containers are zips
already). The manifest is the last entry::

    {"format": "xroad-mn-messagelog-export/1", "node": "SERVER:MN/GOV/9010001/ss1",
     "created_at": "...", "asked": {"from": "...", "to": "...", "data_subject_hash": "..."},
     "counts": {"records": 3, "containers": 2, "skipped": 1}, "complete": true, "next_after_id": null,
     "containers": [{"file": "...-request-....asice", "record_id": 7, "x_road_id": "...",
                     "message": "request", "sha256": "<hex of the file>", "bytes": 5120,
                     "state": {"signed": true, "timestamped": true, "archived": false}, ...}],
     "skipped": [{"record_id": 9, "x_road_id": "...", "message": "response",
                  "reason": "not_timestamped"}]}

``asked`` holds the search, a data subject only as its keyed hash. Records the timestamper has not reached
yet are **skipped and listed** under ``skipped`` (reason ``not_timestamped``): a container without a
time-stamp does not verify offline, and the next export after the timestamper's next run holds them (the
CLI says how many were skipped). With ``limit`` an export stops after that many records (containers and
skipped), with ``max_bytes`` once its containers reach that size (the container that crosses it included);
``complete`` is then false and ``next_after_id`` continues it as the search's cursor does. The
manifest's entry lists are spooled to temporary files while the containers are written.

Example::

    >>> with open("evidence.zip", "wb") as out:  # doctest: +SKIP
    ...     summary = await write_bundle(store, LogFilters(start=t0, end=t1), out, node=server, now=now)
    >>> summary.containers, summary.skipped  # doctest: +SKIP
    (118, 2)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Final

from security_server.messagelog.export import container_of
from security_server.messagelog.search import LogEntry, LogFilters, filters_json, search_log
from security_server.messagelog.store import MessageLogStore, StoredRecord
from xroad_mn.archive import asic_entry_name
from xroad_mn.asic import write_container
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import format_id

__all__ = [
    "BUNDLE_CONTENT_TYPE",
    "BUNDLE_FORMAT",
    "BUNDLE_PAGE_RECORDS",
    "MANIFEST_NAME",
    "NOT_TIMESTAMPED",
    "BundleSummary",
    "write_bundle",
]

BUNDLE_CONTENT_TYPE: Final = "application/zip"
BUNDLE_FORMAT: Final = "xroad-mn-messagelog-export/1"
MANIFEST_NAME: Final = "manifest.json"
BUNDLE_PAGE_RECORDS: Final = 100
"""Records whose messages are in memory at once while a bundle is written."""
NOT_TIMESTAMPED: Final = "not_timestamped"
"""Why a record was skipped: the timestamper has not reached it yet."""
GONE: Final = "gone"
"""Why a record was skipped: it was archived and cleaned away while the export ran."""


@dataclass(frozen=True)
class BundleSummary:
    """What a bundle holds (the manifest says it all again, per record)."""

    records: int
    """Records the search found and the export went through (containers and skipped ones)."""
    containers: int
    skipped: int
    complete: bool
    """False when ``limit`` stopped the export before the search's end."""
    next_after_id: int | None
    """Where the next export of the same search starts (``after_id``); ``None`` when complete."""
    bytes_written: int
    """Bytes of the containers (the zip's size is a little more)."""


def _state(entry: LogEntry) -> dict[str, bool]:
    return {"signed": entry.signed, "timestamped": entry.timestamped, "archived": entry.archived}


def _container_item(entry: LogEntry, name: str, data: bytes) -> dict[str, Any]:
    return {
        "file": name,
        "record_id": entry.id,
        "x_road_id": entry.query_id,
        "message": "response" if entry.response else "request",
        "client": format_id(entry.client),
        "service": format_id(entry.service),
        "logged_at": entry.logged_at.isoformat(),
        "timestamped_at": entry.timestamped_at.isoformat() if entry.timestamped_at else None,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "state": {**_state(entry), "timestamped": True},  # it was, when its container was made
    }


def _skipped_item(entry: LogEntry, reason: str) -> dict[str, Any]:
    return {
        "record_id": entry.id,
        "x_road_id": entry.query_id,
        "message": "response" if entry.response else "request",
        "logged_at": entry.logged_at.isoformat(),
        "state": _state(entry),
        "reason": reason,
    }


class _JsonLines:
    """A JSON array's items spooled to a temporary file, one a line."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close(), after the manifest)
        self.count = 0

    def add(self, item: dict[str, Any]) -> None:
        self.file.write((",\n" if self.count else "\n").encode())
        self.file.write(json.dumps(item, ensure_ascii=False).encode("utf-8"))
        self.count += 1

    def copy_to(self, out: IO[bytes]) -> None:
        self.file.seek(0)
        while chunk := self.file.read(256 * 1024):
            out.write(chunk)
        out.write(b"\n" if self.count else b"")

    def close(self) -> None:
        self.file.close()


@dataclass
class _Writer:
    """The zip being written and the manifest's lists (used from one worker thread at a time)."""

    zf: zipfile.ZipFile
    containers: _JsonLines
    skipped: _JsonLines
    bytes_written: int = 0

    def add_page(
        self, entries: Sequence[LogEntry], stored: dict[int, StoredRecord], max_bytes: int | None
    ) -> int:
        """Add the page's records until the containers reach ``max_bytes``; how many records were taken."""
        for taken, entry in enumerate(entries):
            if max_bytes is not None and self.bytes_written >= max_bytes:
                return taken
            record = stored.get(entry.id)
            if record is None:
                self.skipped.add(_skipped_item(entry, GONE))
                continue
            if not record.timestamped:
                self.skipped.add(_skipped_item(entry, NOT_TIMESTAMPED))
                continue
            name = asic_entry_name(record.query_id, response=record.response, record_id=record.id)
            data = write_container(container_of(record), created=record.time)
            self.zf.writestr(name, data)
            self.containers.add(_container_item(entry, name, data))
            self.bytes_written += len(data)
        return len(entries)

    def finish(self, head: dict[str, Any]) -> None:
        """Write ``manifest.json``: ``head``'s fields, then the two lists."""
        text = json.dumps(head, ensure_ascii=False, indent=1)
        with self.zf.open(MANIFEST_NAME, "w", force_zip64=True) as out:
            out.write(text[:-2].encode("utf-8"))  # without the closing "\n}"
            out.write(b',\n "containers": [')
            self.containers.copy_to(out)
            out.write(b'],\n "skipped": [')
            self.skipped.copy_to(out)
            out.write(b"]\n}\n")


async def write_bundle(
    store: MessageLogStore,
    filters: LogFilters,
    out: IO[bytes],
    *,
    node: str,
    now: datetime,
    after_id: int | None = None,
    limit: int | None = None,
    max_bytes: int | None = None,
) -> BundleSummary:
    """Write the zip of the records matching ``filters`` (above ``after_id``; at most ``limit`` of them, and
    containers up to about ``max_bytes``) to ``out`` (seekable or not), with the manifest naming ``node``
    and ``now``. Zip writing runs in worker threads. ``invalid_request`` for a ``limit`` below 1."""
    if limit is not None and limit < 1:
        raise XRoadError(
            FaultCode.INVALID_REQUEST,
            f"an export holds at least 1 record, not {limit}",
            kind=ErrorKind.BAD_INPUT,
        )
    asked = filters_json(store, filters)
    writer = _Writer(zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED), _JsonLines(), _JsonLines())
    try:
        records, cursor, more = 0, after_id, True
        while more and (limit is None or records < limit):
            if max_bytes is not None and writer.bytes_written >= max_bytes:
                break
            size = BUNDLE_PAGE_RECORDS if limit is None else min(BUNDLE_PAGE_RECORDS, limit - records)
            page = await search_log(store, filters, limit=size, after_id=cursor)
            if not page.records:
                more = False
                break
            stored = await store.records_by_id([e.id for e in page.records])
            by_id = {r.id: r for r in stored}
            taken = await asyncio.to_thread(writer.add_page, page.records, by_id, max_bytes)
            if taken:
                records += taken
                cursor = page.records[taken - 1].id
            more = taken < len(page.records) or page.next_after_id is not None
        complete = not more
        head = {
            "format": BUNDLE_FORMAT,
            "node": node,
            "created_at": now.isoformat(),
            "asked": {**asked, **({"after_id": after_id} if after_id is not None else {})},
            "counts": {
                "records": records,
                "containers": writer.containers.count,
                "skipped": writer.skipped.count,
            },
            "complete": complete,
            "next_after_id": None if complete else cursor,
        }
        await asyncio.to_thread(writer.finish, head)
        await asyncio.to_thread(writer.zf.close)
    finally:
        writer.containers.close()
        writer.skipped.close()
    return BundleSummary(
        records=records,
        containers=writer.containers.count,
        skipped=writer.skipped.count,
        complete=complete,
        next_after_id=None if complete else cursor,
        bytes_written=writer.bytes_written,
    )
