"""The node's applications: the admin API and the OCSP responder, and :func:`run_node` that serves them.

:func:`create_admin_app` builds the admin application; its ``cleanup_ctx`` opens the database (migrating it),
an HTTP client session, the OCSP cache and its refresh task (``ocsp_fetch_interval_seconds``), and the
global configuration task (:class:`~security_server.globalconf_task.GlobalconfRefresher`: the anchor in the
home, every ``globalconf_update_interval_seconds``, the registration states synchronised after every
download). :func:`run_node` logs the token in (the PIN from ``XROAD_MN_TOKEN_PIN`` or a prompt; a wrong PIN
is ``signer.pin_incorrect`` before anything listens), serves the admin application and the OCSP responder
(:func:`security_server.ocsp.create_ocsp_responder_app`, port 5577) with one ``AppRunner`` each, and logs
the token out at the end. The proxies come with message exchange.

Listening addresses: every listener binds the node's ``address`` on its port (X-Road's defaults), so nodes
share a machine on different loopback addresses (127.0.0.2, 127.0.0.3, ...). The admin API binds
:meth:`~security_server.settings.NodeSettings.admin_bind_host`: ``admin_host`` when set, else ``address``
when that is a loopback address, else 127.0.0.1 — never beyond the machine unless the operator says so
(X-Road's admin UI listens on every interface).

Example::

    >>> settings = open_home(Path("ss1"))  # doctest: +SKIP
    >>> async with run_node(settings) as node:  # doctest: +SKIP
    ...     print(node.admin_url, node.ocsp_url)
    http://127.0.0.2:4000 http://127.0.0.2:5577
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import aiohttp
import structlog
from aiohttp import web

from security_server.api import add_admin_routes
from security_server.api.call import (
    CLOCK_KEY,
    DESCRIPTION_READER_KEY,
    EXCHANGE_KEY,
    MANAGEMENT_TRANSPORT_KEY,
    OCSP_CACHE_KEY,
    OCSP_REFRESHER_KEY,
    SESSION_KEY,
    SETTINGS_KEY,
    STORE_KEY,
    TOKEN_KEY,
)
from security_server.exchange.tls import NodeTlsContexts
from security_server.globalconf_task import GlobalconfRefresher
from security_server.home import anchor_file, api_keys_file, audit_log_file, globalconf_dir
from security_server.management_client import ManagementTransport
from security_server.ocsp import OcspRefresher, OwnOcspCache, create_ocsp_responder_app, ocsp_dir
from security_server.operations import (
    DescriptionReader,
    NodeContext,
    globalconf_ssl_context,
    login_token,
    open_node_store,
    open_node_token,
    read_description,
    utc_now,
)
from security_server.proxy.client_proxy import create_client_proxy_app
from security_server.proxy.internal_tls import client_proxy_ssl_context, internal_tls_identity
from security_server.proxy.runtime import ExchangeRuntime, open_exchange
from security_server.proxy.server_proxy import create_server_proxy_app
from security_server.settings import NodeSettings
from xroad_mn.admin import API_KEYS_KEY, AUDIT_KEY, LIMITER_KEY, ApiKeyRing, AuditLog, RateLimiter
from xroad_mn.confclient.client import ConfigurationClient
from xroad_mn.confclient.installed import load_trust_material
from xroad_mn.globalconf.anchor import parse_anchor
from xroad_mn.tokens import Token
from xroad_mn.transport.globalconf import AiohttpConfigurationTransport
from xroad_mn.transport.server import Served, http_url, listening, serve, xroad_error_middleware

__all__ = ["EXCHANGE_KEY", "GLOBALCONF_KEY", "RunningNode", "create_admin_app", "create_ocsp_app", "run_node"]

log = structlog.get_logger(__name__)

GLOBALCONF_KEY: Final = web.AppKey("node_globalconf", GlobalconfRefresher)


def _globalconf_refresher(
    app: web.Application, ctx: NodeContext, ssl_context: ssl.SSLContext | bool, runtime: ExchangeRuntime
) -> GlobalconfRefresher | None:
    settings = ctx.settings
    path = anchor_file(settings.home)
    if not path.is_file():
        log.warning("no_configuration_anchor", path=str(path))
        return None
    client = ConfigurationClient(
        parse_anchor(path.read_bytes()),
        globalconf_dir(settings.home),
        AiohttpConfigurationTransport(ctx.session, ssl_context=ssl_context),
        allowed_federations=settings.allowed_federations,
        clock=ctx.clock,
    )
    refresher = app.get(OCSP_REFRESHER_KEY)
    registrar = ctx.registrar()

    async def on_refresh() -> Sequence[object]:
        changes = await registrar.sync()
        await runtime.refresh()
        return changes

    return GlobalconfRefresher(
        client,
        on_refresh=on_refresh,
        on_change=refresher.wake if refresher is not None else lambda: None,
        interval_seconds=settings.globalconf_update_interval_seconds,
    )


def create_admin_app(
    settings: NodeSettings,
    token: Token,
    *,
    clock: Callable[[], datetime] = utc_now,
    globalconf_ssl: ssl.SSLContext | bool | None = None,
    description_reader: DescriptionReader | None = read_description,
    management_transport: ManagementTransport | None = None,
    tls: NodeTlsContexts | None = None,
    is_tls: ssl.SSLContext | None = None,
) -> web.Application:
    """The admin application of the node in ``settings`` with its logged-in ``token``.

    ``globalconf_ssl`` verifies ``https`` configuration sources (default: the settings'
    ``globalconf_ca_file``, else the system's CAs); the configuration itself is verified with the anchor's
    keys whatever the channel. ``description_reader`` reads OpenAPI 3 and WSDL descriptions (``None``: REST
    only). ``tls`` receives the node's authentication key and approved CAs for port 5500 (the message
    exchange runs in the application's ``cleanup_ctx`` as :data:`EXCHANGE_KEY`)."""
    if globalconf_ssl is None:
        globalconf_ssl = globalconf_ssl_context(settings)
    app = web.Application(middlewares=[xroad_error_middleware])
    app[SETTINGS_KEY] = settings
    app[TOKEN_KEY] = token
    app[CLOCK_KEY] = clock
    app[DESCRIPTION_READER_KEY] = description_reader
    app[MANAGEMENT_TRANSPORT_KEY] = management_transport
    app[AUDIT_KEY] = AuditLog(audit_log_file(settings.home), clock=clock)
    app[API_KEYS_KEY] = ApiKeyRing(api_keys_file(settings.home))
    app[LIMITER_KEY] = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_per_minute)

    async def node_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_node_store(settings, clock=clock) as store, aiohttp.ClientSession() as session:
            app[STORE_KEY] = store
            app[SESSION_KEY] = session
            cache = OwnOcspCache(ocsp_dir(settings.home))
            ocsp = OcspRefresher(
                store,
                cache,
                lambda: load_trust_material(globalconf_dir(settings.home)),
                interval_seconds=settings.ocsp_fetch_interval_seconds,
                clock=clock,
            )
            app[OCSP_CACHE_KEY] = cache
            app[OCSP_REFRESHER_KEY] = ocsp
            ctx = NodeContext(
                settings, store, token, session, clock=clock, management_transport=management_transport
            )
            async with (
                asynccontextmanager(ocsp.cleanup_ctx)(app),
                open_exchange(
                    settings,
                    store,
                    token,
                    session,
                    cache,
                    tls or NodeTlsContexts.empty(),
                    is_tls=is_tls,
                    clock=clock,
                ) as runtime,
            ):
                app[EXCHANGE_KEY] = runtime
                ocsp.listeners.append(runtime.ocsp_changed)
                globalconf = _globalconf_refresher(app, ctx, globalconf_ssl, runtime)
                task: asyncio.Task[None] | None = None
                if globalconf is not None:
                    app[GLOBALCONF_KEY] = globalconf
                    task = asyncio.create_task(globalconf.run(), name="globalconf-refresh")
                try:
                    yield
                finally:
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task

    app.cleanup_ctx.append(node_ctx)
    add_admin_routes(app)
    return app


def create_ocsp_app(admin: web.Application) -> web.Application:
    """The port 5577 application serving the OCSP cache of ``admin`` (set up, so the cache exists); the
    refresh task stays the admin application's."""
    return create_ocsp_responder_app(admin[OCSP_CACHE_KEY])


@dataclass(frozen=True)
class RunningNode:
    """A started node: where it answers, its settings with the ports actually bound, its admin app."""

    admin_url: str
    ocsp_url: str
    settings: NodeSettings
    app: web.Application


@asynccontextmanager
async def run_node(
    settings: NodeSettings,
    *,
    token: Token | None = None,
    pin: str | None = None,
    clock: Callable[[], datetime] = utc_now,
    globalconf_ssl: ssl.SSLContext | bool | None = None,
    description_reader: DescriptionReader | None = read_description,
    management_transport: ManagementTransport | None = None,
) -> AsyncIterator[RunningNode]:
    """Serve the node in the block. ``token`` is a logged-in token (default: the settings' token, logged in
    with ``pin``, else ``XROAD_MN_TOKEN_PIN`` or a prompt, and logged out at the end). Port 0 binds a free
    port (tests)."""
    own_token = token is None
    node_token = token if token is not None else await login_token(open_node_token(settings), pin)
    try:
        admin_host = settings.admin_bind_host()
        with (
            listening(
                (admin_host, settings.admin_port), (settings.address, settings.ocsp_responder_port)
            ) as (
                admin_sock,
                ocsp_sock,
            ),
            listening(
                (settings.address, settings.client_http_port),
                (settings.address, settings.client_https_port),
                (settings.address, settings.server_proxy_port),
                reuse_port=settings.worker_count() > 1,
            ) as (client_sock, client_tls_sock, server_sock),
        ):
            resolved = settings.model_copy(
                update={
                    "admin_port": int(admin_sock.getsockname()[1]),
                    "ocsp_responder_port": int(ocsp_sock.getsockname()[1]),
                    "client_http_port": int(client_sock.getsockname()[1]),
                    "client_https_port": int(client_tls_sock.getsockname()[1]),
                    "server_proxy_port": int(server_sock.getsockname()[1]),
                }
            )
            tls = NodeTlsContexts.empty()
            is_tls = client_proxy_ssl_context(*internal_tls_identity(settings.home, settings.address))
            app = create_admin_app(
                resolved,
                node_token,
                clock=clock,
                globalconf_ssl=globalconf_ssl,
                description_reader=description_reader,
                management_transport=management_transport,
                tls=tls,
                is_tls=is_tls,
            )
            served = [
                Served(lambda: app, admin_sock),
                Served(lambda: create_ocsp_app(app), ocsp_sock),
                Served(lambda: create_client_proxy_app(app[EXCHANGE_KEY].node), client_sock),
                Served(lambda: create_client_proxy_app(app[EXCHANGE_KEY].node), client_tls_sock, is_tls),
                Served(lambda: create_server_proxy_app(app[EXCHANGE_KEY].node), server_sock, tls.server),
            ]
            async with serve(served, resolved.server_timeouts()):
                running = RunningNode(
                    http_url(admin_host, resolved.admin_port),
                    http_url(settings.address, resolved.ocsp_responder_port),
                    resolved,
                    app,
                )
                log.info("node_started", admin=running.admin_url, ocsp=running.ocsp_url)
                yield running
    finally:
        if own_token:
            await asyncio.to_thread(node_token.logout)
