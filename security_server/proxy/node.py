"""What both proxies of a node share: its identity, database, signer, peers, message log and configuration.

:class:`ExchangeNode` is built once per running node (per worker process) by the application's
``cleanup_ctx`` and handed to the client proxy (IS-facing, ports 8080/8443) and the server proxy (node-facing,
port 5500). It holds no per-request state. Example::

    >>> node = ExchangeNode(settings, store, identity, holder, signer, peers, connector, message_log,
    ...                     session)  # doctest: +SKIP
    >>> view = node.configuration()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import structlog

from security_server.db import NodeStore
from security_server.db.records import ServerIdentity
from security_server.exchange.peers import PeerConnector, PeerTrust
from security_server.exchange.signer import BatchSigner
from security_server.messagelog import ExchangeFailure, LogRecord, MessageLog, loggable_record
from security_server.opmonitoring import OpMonitor
from security_server.proxy.configuration import ConfigurationHolder, ConfigurationView
from security_server.proxy.serverconf import ServerConfCache
from security_server.settings import NodeSettings
from xroad_mn.errors import XRoadError
from xroad_mn.identifiers import SecurityServerId

__all__ = ["ExchangeNode", "utc_now"]

_log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ExchangeNode:
    """The parts of a running node the message exchange uses."""

    settings: NodeSettings
    store: NodeStore
    identity: ServerIdentity
    holder: ConfigurationHolder
    signer: BatchSigner
    peer_trust: PeerTrust
    connector: PeerConnector
    message_log: MessageLog
    session: aiohttp.ClientSession
    """For calls to the node's own information systems."""
    serverconf: ServerConfCache
    """Hosted clients, services and access decisions, cached for ``server_conf_cache_seconds``."""
    own_ocsp: Callable[[], tuple[bytes, ...]]
    """The OCSP responses of the node's authentication certificate chain (sent in every request)."""
    opmon: OpMonitor
    """Operational data of this process's exchanges (buffered, written by its task)."""
    clock: Callable[[], datetime] = utc_now
    server_id: SecurityServerId = field(init=False)

    def __post_init__(self) -> None:
        self.server_id = self.identity.server

    async def log(self, record: LogRecord, *, local_producer: bool) -> int:
        """Commit ``record`` to the message log (its body dropped when body logging is off for the
        service on this side); its record id. ``logging_failed`` or ``timestamper_failed`` fail the
        exchange."""
        log = self.message_log
        return await log.log(loggable_record(record, log.body_logging, local_producer=local_producer))

    async def note_failure(self, request: LogRecord, request_record_id: int, error: XRoadError) -> None:
        """Note in the message log that the exchange whose request was logged as ``request_record_id``
        failed with ``error`` (so that ``node log verify`` does not take it for a lost response). A log
        that cannot take it is logged, never raised: the exchange's own error is what the caller sees."""
        failure = ExchangeFailure(
            request_record_id, request.query_id, request.x_request_id, error.code, error.message
        )
        try:
            await self.message_log.log_failure(failure)
        except XRoadError as e:
            _log.warning(
                "exchange_failure_not_logged", record_id=request_record_id, code=e.code, error=e.message
            )

    @asynccontextmanager
    async def failures_noted(self, logged: Callable[[], tuple[LogRecord, int] | None]) -> AsyncIterator[None]:
        """Run an exchange's block; when it raises an ``XRoadError`` after its request was logged
        (``logged()`` gives the request and its record id then), note the failure first."""
        try:
            yield
        except XRoadError as e:
            request = logged()
            if request is not None:
                await self.note_failure(*request, e)
            raise

    def configuration(self) -> ConfigurationView:
        """The current global configuration; ``global_conf_outdated`` when it expired or is missing."""
        return self.holder.current(self.clock())
