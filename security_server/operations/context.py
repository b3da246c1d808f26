"""What every node operation works on: :class:`NodeContext`, and opening the node's token and database.

The admin API builds one context per request from its application's resources; the CLI builds one for a
command. Both call the same functions of :mod:`security_server.operations`::

    >>> async with open_node_store(settings) as store, aiohttp.ClientSession() as session:  # doctest: +SKIP
    ...     token = await login_token(open_node_token(settings))       # PIN from XROAD_MN_TOKEN_PIN
    ...     ctx = NodeContext(settings, store, token, session)
    ...     print((await node_status(ctx)).server_id)
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from security_server.db import NodeStore, migrate
from security_server.home import globalconf_dir, secure_database_files, token_dir
from security_server.management_client import ManagementTransport
from security_server.ocsp import OcspRefresher, OwnOcspCache
from security_server.registration import Registrar
from security_server.settings import NodeSettings
from xroad_mn.confclient.installed import load_trust_material
from xroad_mn.database import open_migrated
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import TrustMaterial
from xroad_mn.tokens import Token, login_with_pin, open_token

__all__ = [
    "NodeContext",
    "globalconf_ssl_context",
    "login_token",
    "open_node_store",
    "open_node_token",
    "utc_now",
]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NodeContext:
    """The node's settings, database, token (logged in for operations that sign) and an HTTP session for
    the CA, OCSP responders and the registry. A running node adds its OCSP cache and refresher, so that
    status shows what port 5577 serves and a new certificate is fetched for at once."""

    settings: NodeSettings
    store: NodeStore
    token: Token
    session: aiohttp.ClientSession
    clock: Callable[[], datetime] = utc_now
    ocsp_cache: OwnOcspCache | None = None
    ocsp_refresher: OcspRefresher | None = None
    management_transport: ManagementTransport | None = None
    """Replaces the pinned HTTPS transport to the registry built from global configuration (tests)."""

    async def trust(self) -> TrustMaterial:
        """The trust material of the installed global configuration."""
        return await asyncio.to_thread(load_trust_material, globalconf_dir(self.settings.home))

    def registrar(self) -> Registrar:
        return Registrar(
            self.settings,
            self.store,
            self.token,
            self.session,
            clock=self.clock,
            transport=self.management_transport,
        )

    def certificates_changed(self) -> None:
        """A certificate came or went: fetch OCSP responses now (a running node)."""
        if self.ocsp_refresher is not None:
            self.ocsp_refresher.wake()


def globalconf_ssl_context(settings: NodeSettings) -> ssl.SSLContext | bool:
    """How ``https`` configuration sources are verified: against ``globalconf_ca_file`` (TLS 1.2 or later)
    when set, else with the system's CAs (``True``). A file that holds no certificate is
    ``invalid_settings``."""
    path = settings.globalconf_ca_file
    if path is None:
        return True
    try:
        context = ssl.create_default_context(cafile=str(path))
    except FileNotFoundError as e:
        raise XRoadError(
            FaultCode.INVALID_SETTINGS, f"globalconf_ca_file {str(path)[:200]}: no such file"
        ) from e
    except (OSError, ssl.SSLError) as e:
        raise XRoadError(
            FaultCode.INVALID_SETTINGS,
            f"globalconf_ca_file {str(path)[:200]} holds no PEM certificate: {e}",
        ) from e
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def open_node_token(settings: NodeSettings) -> Token:
    """The token ``settings.token`` names, logged out: by default the software token in ``HOME/token``."""
    return open_token(settings.token, default_directory=token_dir(settings.home))


async def login_token(token: Token, pin: str | None = None, *, env: Mapping[str, str] | None = None) -> Token:
    """Log ``token`` in with ``pin`` (default: ``XROAD_MN_TOKEN_PIN`` or a prompt). A wrong PIN is
    ``signer.pin_incorrect``, an uninitialised token ``signer.token_not_initialized`` (run ``node init``)."""
    return await asyncio.to_thread(login_with_pin, token, pin, env=env)


@asynccontextmanager
async def open_node_store(
    settings: NodeSettings, *, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[NodeStore]:
    """The node's database migrated to the current schema (on PostgreSQL with ``database_schema``, the
    schema created when missing), closed after the block; its store checks identifiers in the settings'
    ``strict_identifier_checks`` mode."""
    secure_database_files(settings)
    async with open_migrated(
        settings.database(), migrate, schema=settings.database_schema, **settings.engine_options()
    ) as engine:
        secure_database_files(settings)  # the side files WAL mode created
        strict = settings.strict_identifier_checks
        yield (
            NodeStore(engine, strict_identifier_checks=strict)
            if clock is None
            else NodeStore(engine, clock=clock, strict_identifier_checks=strict)
        )
