"""The registry application: admin API, global configuration distribution and the management service.

:func:`create_app` builds the aiohttp application from :class:`~registry.settings.RegistrySettings`; its
``cleanup_ctx`` opens the database (migrating it to the current schema), then generates global
configuration before serving and regenerates it every ``regenerate_interval_seconds`` and at once after
every change. :func:`run_registry` serves it with ``AppRunner`` on the admin socket and, when it differs,
the public socket (``/internalconf``, ``/externalconf``, the content files and ``/managementservice/``);
the admin API answers on the admin socket only. With ``public_tls_cert`` and ``public_tls_key`` the public
socket speaks TLS (1.2 or later; :func:`public_ssl_context`), so ``authCertReg`` reaches the registry by
direct HTTPS as in X-Road, and the certificate is published as ``authCertRegServiceCert``.

Example::

    >>> settings = RegistrySettings(home=Path("registry-home"), admin_port=0, public_port=0)
    >>> async with run_registry(settings) as registry:  # doctest: +SKIP
    ...     print(registry.admin_url, registry.public_url)
    http://127.0.0.1:41873 http://127.0.0.1:39021
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from registry.api import (
    API_KEYS_KEY,
    API_PREFIX,
    AUDIT_KEY,
    LIMITER_KEY,
    SETTINGS_KEY,
    add_admin_routes,
)
from registry.audit import AuditLog
from registry.context import CLOCK_KEY, STORE_KEY
from registry.distribution import ConfigurationPublisher, setup_publishing
from registry.globalconf_gen import GeneratedConfiguration
from registry.home import ApiKeyRing
from registry.management_service import add_management_routes
from registry.operations import build_configuration, open_store, sync_management_address
from registry.ratelimit import RateLimiter
from registry.settings import RegistrySettings
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.web import xroad_error_middleware

__all__ = ["ADMIN_ONLY_KEY", "RunningRegistry", "create_app", "public_ssl_context", "run_registry", "utc_now"]

log = structlog.get_logger(__name__)

ADMIN_ONLY_KEY: Final = web.AppKey[int]("registry_public_port")
"""The public port, when it differs from the admin port: the admin API is not served there."""
_LISTEN_BACKLOG: Final = 128


def utc_now() -> datetime:
    return datetime.now(UTC)


@web.middleware
async def _admin_socket_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    public_port = request.app.get(ADMIN_ONLY_KEY)
    if public_port is not None and request.path.startswith(API_PREFIX):
        sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
        if sockname is not None and int(sockname[1]) == public_port:
            raise XRoadError(FaultCode.NOT_FOUND, "the admin API is not served here", http_status=404)
    return await handler(request)


def create_app(settings: RegistrySettings, *, clock: Callable[[], datetime] = utc_now) -> web.Application:
    """The registry's aiohttp application for ``settings`` (resources live in the app's ``cleanup_ctx``)."""
    app = web.Application(middlewares=[xroad_error_middleware, _admin_socket_only])
    app[SETTINGS_KEY] = settings
    app[CLOCK_KEY] = clock
    app[AUDIT_KEY] = AuditLog(settings.audit_log_path(), clock=clock)
    app[API_KEYS_KEY] = ApiKeyRing(settings.api_keys_path())
    app[LIMITER_KEY] = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_per_minute)
    if settings.admin_port != settings.public_port:
        app[ADMIN_ONLY_KEY] = settings.public_port

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_store(settings, clock=clock) as store:
            await sync_management_address(store, settings)
            app[STORE_KEY] = store
            yield

    async def build() -> GeneratedConfiguration:
        return await build_configuration(app[STORE_KEY], settings, now=clock())

    app.cleanup_ctx.append(store_ctx)  # before the regeneration task, which needs the store
    setup_publishing(
        app, ConfigurationPublisher(build), asyncio.Event(), interval=settings.regenerate_interval_seconds
    )
    add_management_routes(app, auto_approve=settings.auto_approve)
    add_admin_routes(app)
    return app


@dataclass(frozen=True)
class RunningRegistry:
    """A started registry: where it answers, and the settings with the ports actually bound."""

    admin_url: str
    public_url: str
    settings: RegistrySettings
    app: web.Application


def _listen(host: str, port: int) -> socket.socket:
    try:
        sock = socket.create_server((host, port), backlog=_LISTEN_BACKLOG)
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    sock.setblocking(False)
    return sock


def _url(host: str, port: int, scheme: str = "http") -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def public_ssl_context(settings: RegistrySettings) -> ssl.SSLContext | None:
    """The public socket's TLS server context (TLS 1.2 or later, no client certificate asked), or None
    when ``public_tls_cert`` is not set."""
    if settings.public_tls_cert is None or settings.public_tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.public_tls_cert, settings.public_tls_key)
    except (OSError, ssl.SSLError) as e:
        raise XRoadError(
            FaultCode.INVALID_SETTINGS,
            f"cannot load the public TLS certificate {settings.public_tls_cert} and key "
            f"{settings.public_tls_key}: {e}",
        ) from e
    return context


@asynccontextmanager
async def run_registry(
    settings: RegistrySettings, *, clock: Callable[[], datetime] = utc_now
) -> AsyncIterator[RunningRegistry]:
    """Serve :func:`create_app` in the block. Port 0 binds a free port; with no ``public_addresses`` the
    bound public address is what anchors and global configuration announce. With TLS on the public
    socket, a shared admin and public socket speaks TLS too."""
    tls = public_ssl_context(settings)
    same = (settings.admin_host, settings.admin_port) == (settings.public_host, settings.public_port)
    sockets = [_listen(settings.admin_host, settings.admin_port)]
    try:
        if not same or settings.admin_port == 0:
            sockets.append(_listen(settings.public_host, settings.public_port))
        admin_port = int(sockets[0].getsockname()[1])
        public_port = int(sockets[-1].getsockname()[1])
        resolved = settings.model_copy(update={"admin_port": admin_port, "public_port": public_port})
        app = create_app(resolved, clock=clock)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            for i, sock in enumerate(sockets):
                public = i == len(sockets) - 1
                await web.SockSite(runner, sock, ssl_context=tls if public else None).start()
            scheme = resolved.public_scheme()
            admin_scheme = scheme if len(sockets) == 1 else "http"
            running = RunningRegistry(
                _url(settings.admin_host, admin_port, admin_scheme),
                _url(settings.public_host, public_port, scheme),
                resolved,
                app,
            )
            log.info("registry_started", admin=running.admin_url, public=running.public_url)
            yield running
        finally:
            await runner.cleanup()
    finally:
        for sock in sockets:
            sock.close()
