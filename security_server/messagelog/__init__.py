"""The node's message log: every signed request and response committed during the exchange, time-stamped
in batches, and exported as ASiC-E evidence.

- :class:`LogRecord` (:mod:`.records`): what the proxies log, with its exchange's :class:`ExchangeFacts`
  (:func:`rest_facts`, :func:`soap_facts`: user id, issue, data subject).
- :class:`SubjectKey` (:mod:`.subjects`): the node secret the data subject index is keyed with.
- :func:`~.search.search_log` and :func:`~.verify.verify_log`: what auditors ask of the log.
- :class:`MessageLog` (:mod:`.writer`): the group-commit writer; ``await log(record)`` returns the committed
  record's id.
- :class:`Timestamper` (:mod:`.timestamper`): RFC 3161 time-stamps from the approved TSAs, single or batch.
- :func:`loggable_record` (:mod:`.bodylog`): a record without its body when body logging is off.
- :func:`export_exchange` and :func:`asic_response` (:mod:`.export`): containers out.
- :func:`open_message_log`: all of it for a running node.

Example (in the node application's ``cleanup_ctx``)::

    >>> async with open_message_log(settings, store.engine, load_trust, session) as message_log:
    ...     record_id = await message_log.log(record)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from security_server.messagelog.archiver import Archiver
from security_server.messagelog.bodylog import BodyLoggingPolicy, loggable_record
from security_server.messagelog.export import AsicResponse, asic_response, export_exchange
from security_server.messagelog.records import (
    ExchangeFacts,
    ExchangeFailure,
    LogRecord,
    rest_facts,
    soap_facts,
)
from security_server.messagelog.store import MessageLogStore
from security_server.messagelog.subjects import SubjectKey
from security_server.messagelog.timestamper import Timestamper
from security_server.messagelog.writer import MessageLog
from security_server.settings import NodeSettings
from xroad_mn.globalconf.trust import TrustMaterial

__all__ = [
    "AsicResponse",
    "BodyLoggingPolicy",
    "ExchangeFacts",
    "ExchangeFailure",
    "LogRecord",
    "MessageLog",
    "MessageLogStore",
    "SubjectKey",
    "Timestamper",
    "asic_response",
    "export_exchange",
    "loggable_record",
    "open_message_log",
    "rest_facts",
    "soap_facts",
]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def open_message_log(
    settings: NodeSettings,
    engine: AsyncEngine,
    load_trust: Callable[[], TrustMaterial],
    session: aiohttp.ClientSession,
    *,
    clock: Callable[[], datetime] = _utc_now,
    timestamping: bool = True,
) -> AsyncIterator[MessageLog]:
    """The message log of a running node: its writer and (with ``timestamping``, in the one process of the
    node that time-stamps) its timestamper and archiver tasks, all stopped after the block. The timestamper is
    ``message_log.timestamper``; the archiver records its rounds in its state file, which monitoring reads."""
    subject_key = await asyncio.to_thread(SubjectKey.open, settings.home)
    store = MessageLogStore(engine, subject_key=subject_key)
    timestamper = Timestamper.from_settings(settings, store, load_trust, session, clock=clock)
    archiver = Archiver(store, settings, clock=clock) if timestamping else None
    message_log = MessageLog(
        store,
        timestamper=timestamper,
        body_logging=BodyLoggingPolicy.from_settings(settings),
        clock=clock,
    )
    try:
        async with message_log.running():
            if archiver is not None:
                async with timestamper.running(), archiver.running():
                    yield message_log
            else:
                yield message_log
    finally:
        store.close()
