"""The registry application: admin API, global configuration distribution and the management service.

:func:`create_app` builds the aiohttp application from :class:`~registry.settings.RegistrySettings`; its
``cleanup_ctx`` logs in to the token holding the configuration signing keys (``[token]``; the PIN from
``XROAD_MN_TOKEN_PIN`` or a prompt), opens the database (migrating it to the current schema), then
generates global configuration before serving and regenerates it every ``regenerate_interval_seconds``
and at once after every change. :func:`run_registry` serves it with one ``AppRunner`` on the admin socket
and serves :func:`create_public_app` with another on the public socket. The public application holds only
``/internalconf``, ``/externalconf``, the content files and the registration service
``POST /managementservice/``: the admin API and the internal ``/managementservice/manage/`` are not routes
of it, so they answer 404 on the public socket whatever its address (the two sockets must differ). With
``public_tls_cert`` and ``public_tls_key`` the public socket speaks TLS (1.2 or later;
:func:`public_ssl_context`), so ``authCertReg`` reaches the registry by direct HTTPS as in X-Road, and the
certificate is published as ``authCertRegServiceCert``. Both sockets drop clients that send a request head
or body too slowly (``header_read_timeout_seconds``, ``body_read_timeout_seconds``;
:mod:`xroad_mn.transport.server`).

Example::

    >>> settings = RegistrySettings(home=Path("registry-home"), admin_port=0, public_port=0)
    >>> async with run_registry(settings) as registry:  # doctest: +SKIP
    ...     print(registry.admin_url, registry.public_url)
    http://127.0.0.1:41873 http://127.0.0.1:39021
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from aiohttp import web

from registry.api import SETTINGS_KEY, add_admin_routes
from registry.context import CHANGED_KEY, CLOCK_KEY, PUBLISHER_KEY, STORE_KEY, TOKEN_KEY
from registry.distribution import ConfigurationPublisher, add_distribution_routes, setup_publishing
from registry.globalconf_gen import GeneratedConfiguration
from registry.management_service import (
    AUTO_APPROVE_KEY,
    MANAGEMENT_LIMITER_KEY,
    VERIFY_SLOTS_KEY,
    add_management_routes,
)
from registry.operations import build_configuration, open_store, sync_management_address
from registry.settings import RegistrySettings
from registry.signing import TokenLogin, registry_token
from xroad_mn.admin import API_KEYS_KEY, AUDIT_KEY, LIMITER_KEY, ApiKeyRing, AuditLog, RateLimiter
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.transport.server import Served, http_url, listening, serve, xroad_error_middleware

__all__ = [
    "RunningRegistry",
    "create_app",
    "create_public_app",
    "public_ssl_context",
    "run_registry",
    "utc_now",
]

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: RegistrySettings, *, clock: Callable[[], datetime] = utc_now, pin: str | None = None
) -> web.Application:
    """The registry's aiohttp application for ``settings`` (resources live in the app's ``cleanup_ctx``).

    At start it logs in to the token ``[token]`` names with ``pin``, by default the PIN of
    :func:`~xroad_mn.tokens.read_pin` (``XROAD_MN_TOKEN_PIN`` or a prompt): a wrong or missing PIN fails the
    start with the signer's fault code. It logs out at cleanup."""
    app = web.Application(middlewares=[xroad_error_middleware])
    app[SETTINGS_KEY] = settings
    app[CLOCK_KEY] = clock
    app[AUDIT_KEY] = AuditLog(settings.audit_log_path(), clock=clock)
    app[API_KEYS_KEY] = ApiKeyRing(settings.api_keys_path())
    app[LIMITER_KEY] = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_per_minute)

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        login = TokenLogin(registry_token(settings), pin=pin)
        try:
            if await asyncio.to_thread(lambda: login.initialized):
                await asyncio.to_thread(login)  # a wrong PIN is an error here, at start
            # A registry from before tokens has none yet: the migration of its keys creates it.
            async with open_store(settings, clock=clock, token=login.for_migration) as store:
                app[TOKEN_KEY] = await asyncio.to_thread(login)  # no token at all: an error at start too
                log.info("registry_token_login", token=repr(login.token))
                await sync_management_address(store, settings)
                app[STORE_KEY] = store
                yield
        finally:
            await asyncio.to_thread(login.logout)

    async def build() -> GeneratedConfiguration:
        return await build_configuration(app[STORE_KEY], settings, app[TOKEN_KEY], now=clock())

    app.cleanup_ctx.append(store_ctx)  # before the regeneration task, which needs the store
    setup_publishing(
        app, ConfigurationPublisher(build), asyncio.Event(), interval=settings.regenerate_interval_seconds
    )
    limiter = RateLimiter(
        settings.management_rate_limit_per_second, settings.management_rate_limit_per_minute
    )
    add_management_routes(app, internal=True, auto_approve=settings.auto_approve, limiter=limiter)
    add_admin_routes(app)
    return app


def create_public_app(admin: web.Application) -> web.Application:
    """The public socket's application: global configuration distribution and the registration service
    (``authCertReg``) only, sharing the store, clock, audit log, publisher and management-service limits of
    ``admin`` (a :func:`create_app` application already set up, so its store is open)."""
    app = web.Application(middlewares=[xroad_error_middleware])
    app[STORE_KEY] = admin[STORE_KEY]
    app[CLOCK_KEY] = admin[CLOCK_KEY]
    app[CHANGED_KEY] = admin[CHANGED_KEY]
    app[AUDIT_KEY] = admin[AUDIT_KEY]
    add_distribution_routes(app, admin[PUBLISHER_KEY].current)
    add_management_routes(
        app,
        internal=False,
        auto_approve=admin[AUTO_APPROVE_KEY],
        limiter=admin[MANAGEMENT_LIMITER_KEY],
        verify_slots=admin[VERIFY_SLOTS_KEY],
    )
    return app


@dataclass(frozen=True)
class RunningRegistry:
    """A started registry: where it answers, and the settings with the ports actually bound."""

    admin_url: str
    public_url: str
    settings: RegistrySettings
    app: web.Application


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
    settings: RegistrySettings, *, clock: Callable[[], datetime] = utc_now, pin: str | None = None
) -> AsyncIterator[RunningRegistry]:
    """Serve :func:`create_app` in the block. Port 0 binds a free port; with no ``public_addresses`` the
    bound public address is what anchors and global configuration announce. The admin socket speaks plain
    HTTP (keep it on loopback); the public one TLS when configured. ``pin``: the token's PIN, by default
    from ``XROAD_MN_TOKEN_PIN`` or a prompt."""
    tls = public_ssl_context(settings)
    with listening(
        (settings.admin_host, settings.admin_port), (settings.public_host, settings.public_port)
    ) as (admin_sock, public_sock):
        admin_port = int(admin_sock.getsockname()[1])
        public_port = int(public_sock.getsockname()[1])
        resolved = settings.model_copy(update={"admin_port": admin_port, "public_port": public_port})
        app = create_app(resolved, clock=clock, pin=pin)
        served = [  # the admin app's setup opens the store, which the public app shares
            Served(lambda: app, admin_sock),
            Served(lambda: create_public_app(app), public_sock, tls),
        ]
        async with serve(served, resolved.server_timeouts()):
            running = RunningRegistry(
                http_url(settings.admin_host, admin_port),
                http_url(settings.public_host, public_port, resolved.public_scheme()),
                resolved,
                app,
            )
            log.info("registry_started", admin=running.admin_url, public=running.public_url)
            yield running
