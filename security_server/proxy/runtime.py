"""Assembling the message exchange of a running node, and keeping it current.

:func:`open_exchange` builds, for one event loop, everything the client and server proxies use — the
configuration holder, the batch signer, peer trust and the peer connector, the message log (with its
timestamper in the one process that stamps) — and closes it all after the block.
:meth:`ExchangeRuntime.refresh` runs after every global configuration download and certificate change: it
reloads the configuration view, hands the new approved CAs and the active authentication key to the TLS
contexts, and makes the signer resolve its keys again. Example::

    >>> tls = NodeTlsContexts.empty()  # doctest: +SKIP
    >>> async with open_exchange(settings, store, token, session, cache, tls) as runtime:  # doctest: +SKIP
    ...     app = create_client_proxy_app(runtime.node)
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import structlog
from cryptography import x509

from security_server.db import NodeStore
from security_server.exchange.peers import PeerConnector, PeerTrust
from security_server.exchange.signer import BatchSigner
from security_server.exchange.tls import NodeTlsContexts, active_authentication_key, intermediate_chain
from security_server.home import globalconf_dir
from security_server.messagelog import open_message_log
from security_server.ocsp import OwnOcspCache
from security_server.opmonitoring import OpMonitor, OpMonitoringStore
from security_server.proxy.configuration import ConfigurationHolder
from security_server.proxy.internal_tls import trust_is_certificates
from security_server.proxy.node import ExchangeNode, utc_now
from security_server.proxy.serverconf import ServerConfCache
from security_server.settings import NodeSettings
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.params import SharedParameters
from xroad_mn.globalconf.trust import TrustMaterial
from xroad_mn.tokens import Token

__all__ = ["ExchangeRuntime", "open_exchange"]

log = structlog.get_logger(__name__)

DEFAULT_OCSP_FRESHNESS_SECONDS = 3600


def _no_trust() -> tuple[TrustMaterial, SharedParameters]:
    """What a node trusts before it has any global configuration: nobody."""
    trust = TrustMaterial("", (), (), DEFAULT_OCSP_FRESHNESS_SECONDS, None)
    return trust, SharedParameters(instance="", ocsp_freshness_seconds=DEFAULT_OCSP_FRESHNESS_SECONDS)


@dataclass
class ExchangeRuntime:
    """The exchange of one event loop: :attr:`node` for the proxies, :attr:`tls` for the sockets."""

    node: ExchangeNode
    tls: NodeTlsContexts
    token: Token
    is_tls: ssl.SSLContext | None = None
    """The client proxy's HTTPS context, trusting the registered IS certificates."""
    applied_generation: int = -1
    """The configuration generation whose CAs and servers the TLS contexts and peer trust hold."""
    not_ready: str | None = None
    """Why the node's TLS could not be keyed at the last refresh (logged when it changes, not at every
    refresh: a node waiting for its authentication certificate refreshes every few seconds)."""

    async def refresh(self) -> None:
        """A new global configuration or certificate: reload, re-key, re-trust (never raises: a failure is
        logged and the previous state kept)."""
        node = self.node
        await asyncio.to_thread(node.holder.reload, only_if_changed=True)
        view = node.holder.view
        if view is None:
            return
        fresh = node.holder.generation != self.applied_generation
        self.applied_generation = node.holder.generation
        if fresh:
            node.peer_trust.update(view.trust, view.shared)
        try:
            if fresh:
                self.tls.update_trust(view.trust)
            key = await active_authentication_key(node.store, node.server_id)
            if self.tls.key is None or self.tls.key.certificate != key.certificate:
                await asyncio.to_thread(self.tls.update_key, self.token, key, view.trust)
                log.info("tls_authentication_key", key_id=key.key_id)
            self.not_ready = None
        except XRoadError as e:
            if e.message != self.not_ready:
                # No registered authentication key yet is where every new node starts (info); anything
                # else keeps a node that could exchange from doing so (warning).
                waiting = e.code.endswith(FaultCode.KEY_NOT_FOUND.value)
                (log.info if waiting else log.warning)("exchange_tls_not_ready", code=e.code, error=e.message)
            self.not_ready = e.message
        if self.is_tls is not None:
            await self.trust_is_certificates()
        node.signer.invalidate()

    async def trust_is_certificates(self) -> None:
        """Load every registered IS certificate into the client proxy's HTTPS context."""
        if self.is_tls is None:
            return
        store = self.node.store
        certs = [
            cert for client in await store.list_clients() for cert in await store.list_is_certs(client.client)
        ]
        trust_is_certificates(self.is_tls, certs)

    def ocsp_changed(self) -> None:
        self.node.signer.invalidate()


def _own_ocsp(
    tls: NodeTlsContexts, cache: OwnOcspCache, holder: ConfigurationHolder
) -> Callable[[], tuple[bytes, ...]]:
    """The OCSP responses of the authentication certificate and its intermediates (request parts)."""

    def responses() -> tuple[bytes, ...]:
        if tls.key is None:
            return ()
        certs: list[x509.Certificate] = [tls.key.certificate]
        try:
            view = holder.current(utc_now())
            certs.extend(intermediate_chain(tls.key.certificate, view.trust))
        except XRoadError:
            pass
        out = []
        for cert in certs:
            state = cache.status(cert)
            if state is not None and state.response is not None:
                out.append(state.response)
        return tuple(out)

    return responses


@asynccontextmanager
async def open_exchange(
    settings: NodeSettings,
    store: NodeStore,
    token: Token,
    session: aiohttp.ClientSession,
    ocsp_cache: OwnOcspCache,
    tls: NodeTlsContexts,
    *,
    is_tls: ssl.SSLContext | None = None,
    clock: Callable[[], datetime] = utc_now,
    timestamping: bool = True,
) -> AsyncIterator[ExchangeRuntime]:
    """The exchange of a running node (one per event loop), closed after the block; ``timestamping`` in
    exactly one process of the node."""
    holder = ConfigurationHolder(globalconf_dir(settings.home))
    view = await asyncio.to_thread(holder.reload)
    trust, shared = (view.trust, view.shared) if view is not None else _no_trust()

    def current_trust() -> TrustMaterial:
        return holder.current(clock()).trust

    identity = await store.get_server()
    signer = BatchSigner(store, token, ocsp_cache, current_trust, clock=clock)
    peer_trust = PeerTrust(trust, shared)
    async with (
        PeerConnector(
            tls.client,
            peer_trust,
            clock=clock,
            fastest_connecting_uri_cache_seconds=settings.fastest_connection_cache_seconds,
        ) as connector,
        open_message_log(
            settings, store.engine, current_trust, session, clock=clock, timestamping=timestamping
        ) as message_log,
        OpMonitor(OpMonitoringStore(store.engine), settings, clock=clock).running(
            retention=timestamping
        ) as opmon,
    ):
        node = ExchangeNode(
            settings=settings,
            store=store,
            identity=identity,
            holder=holder,
            signer=signer,
            peer_trust=peer_trust,
            connector=connector,
            message_log=message_log,
            session=session,
            serverconf=ServerConfCache(store, settings.server_conf_cache_seconds),
            own_ocsp=_own_ocsp(tls, ocsp_cache, holder),
            opmon=opmon,
            clock=clock,
        )
        runtime = ExchangeRuntime(node, tls, token, is_tls)
        await runtime.refresh()
        try:
            yield runtime
        finally:
            await signer.aclose()
