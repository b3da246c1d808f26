"""The message log for auditors: search, one record, one record's body, and bulk export — what the admin API's
``/messagelog`` operations and ``xroad-mn node log search|export`` both call.

They need only the node's settings and database (no token, no running node). The data subject key
(:class:`~security_server.messagelog.SubjectKey`) is opened only when a search names a subject in clear.
Audit data (:func:`audit_of_search`) never holds a subject in clear: :func:`filters_json` gives its keyed
hash instead.

Example::

    >>> page = await search(settings, store, LogFilters(issue="case-7"), limit=50)  # doctest: +SKIP
    >>> with open("evidence.zip", "wb") as out:  # doctest: +SKIP
    ...     summary = await export(settings, store, LogFilters(start=t0, end=t1), out, now=now)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from security_server.db import NodeStore
from security_server.messagelog import MessageLogStore, SubjectKey
from security_server.messagelog.bundle import BundleSummary, write_bundle
from security_server.messagelog.search import (
    LogEntry,
    LogFilters,
    SearchPage,
    filters_json,
    log_entry,
    search_log,
)
from security_server.messagelog.store import StoredRecord
from security_server.settings import NodeSettings
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import format_id

__all__ = [
    "LoggedMessage",
    "export",
    "filters_audit",
    "message",
    "message_of",
    "node_name",
    "open_log",
    "record",
    "search",
]


@asynccontextmanager
async def open_log(
    settings: NodeSettings, store: NodeStore, filters: LogFilters | None = None
) -> AsyncIterator[MessageLogStore]:
    """The message log on the node's database, with the data subject key when ``filters`` name a subject in
    clear (the key is made the first time a node needs it)."""
    key = None
    if filters is not None and filters.data_subject is not None:
        key = await asyncio.to_thread(SubjectKey.open, settings.home)
    log = MessageLogStore(store.engine, subject_key=key)
    try:
        yield log
    finally:
        log.close()


async def node_name(store: NodeStore) -> str | None:
    """The node's server id (``SERVER:MN/GOV/9010001/ss1``), ``None`` before ``node init`` set it."""
    try:
        return format_id((await store.get_server()).server)
    except XRoadError as e:
        if e.has_code(FaultCode.CONFLICT):
            return None
        raise


async def filters_audit(settings: NodeSettings, store: NodeStore, filters: LogFilters) -> dict[str, Any]:
    """``filters`` as the audit log records them (a data subject as its keyed hash)."""
    async with open_log(settings, store, filters) as log:
        return filters_json(log, filters)


async def search(
    settings: NodeSettings,
    store: NodeStore,
    filters: LogFilters,
    *,
    limit: int,
    after_id: int | None = None,
) -> SearchPage:
    """A page of the records matching ``filters`` (metadata only)."""
    async with open_log(settings, store, filters) as log:
        return await search_log(log, filters, limit=limit, after_id=after_id)


async def record(settings: NodeSettings, store: NodeStore, record_id: int) -> LogEntry:
    """One record's metadata (``not_found`` when there is none)."""
    async with open_log(settings, store) as log:
        return await log_entry(log, record_id)


@dataclass(frozen=True)
class LoggedMessage:
    """A record's metadata and its logged message: the SOAP message or REST header part, and the
    attachments (a REST body is attachment 1)."""

    entry: LogEntry
    message: bytes
    attachments: tuple[bytes, ...]


def message_of(entry: LogEntry, stored: StoredRecord) -> LoggedMessage:
    return LoggedMessage(entry, stored.message, stored.attachments)


async def message(settings: NodeSettings, store: NodeStore, record_id: int) -> LoggedMessage:
    """Record ``record_id`` with its message (``not_found`` when there is none)."""
    async with open_log(settings, store) as log:
        entry = await log_entry(log, record_id)
        found = await log.records_by_id([record_id])
    if not found:
        raise XRoadError(
            FaultCode.NOT_FOUND,
            f"message log record {record_id} does not exist",
            kind=ErrorKind.NOT_FOUND,
            details={"record_id": record_id},
        )
    return message_of(entry, found[0])


async def export(
    settings: NodeSettings,
    store: NodeStore,
    filters: LogFilters,
    out: IO[bytes],
    *,
    now: datetime,
    after_id: int | None = None,
    limit: int | None = None,
    max_bytes: int | None = None,
) -> BundleSummary:
    """Write the zip of ASiC-E containers and ``manifest.json`` of the records matching ``filters`` to
    ``out`` (:func:`~security_server.messagelog.bundle.write_bundle`)."""
    name = await node_name(store)
    async with open_log(settings, store, filters) as log:
        return await write_bundle(
            log, filters, out, node=name or "", now=now, after_id=after_id, limit=limit, max_bytes=max_bytes
        )
