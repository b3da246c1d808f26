"""The admin API's :class:`NodeCall` and the node application's resources, as typed aiohttp keys.

Every resource is created and closed in the application's ``cleanup_ctx`` (:mod:`security_server.app`);
a handler reads them through its call, whose :attr:`NodeCall.ctx` is the
:class:`~security_server.operations.NodeContext` the operations take.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import aiohttp
from aiohttp import web

from security_server.db import NodeStore
from security_server.management_client import ManagementTransport
from security_server.ocsp import OcspRefresher, OwnOcspCache
from security_server.operations import DescriptionReader, NodeContext
from security_server.proxy.runtime import ExchangeRuntime
from security_server.settings import NodeSettings
from xroad_mn import admin
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.tokens import Token

__all__ = [
    "CLOCK_KEY",
    "DESCRIPTION_READER_KEY",
    "EXCHANGE_KEY",
    "MANAGEMENT_TRANSPORT_KEY",
    "OCSP_CACHE_KEY",
    "OCSP_REFRESHER_KEY",
    "SESSION_KEY",
    "SETTINGS_KEY",
    "STORE_KEY",
    "TOKEN_KEY",
    "NodeCall",
    "hex_param",
    "int_param",
    "node_context",
]

SETTINGS_KEY: Final = web.AppKey("node_settings", NodeSettings)
STORE_KEY: Final = web.AppKey("node_store", NodeStore)
TOKEN_KEY: Final = web.AppKey("node_token", Token)
SESSION_KEY: Final = web.AppKey("node_session", aiohttp.ClientSession)
OCSP_CACHE_KEY: Final = web.AppKey("node_ocsp_cache", OwnOcspCache)
OCSP_REFRESHER_KEY: Final = web.AppKey("node_ocsp_refresher", OcspRefresher)
CLOCK_KEY: web.AppKey[Callable[[], datetime]] = web.AppKey("node_clock")
DESCRIPTION_READER_KEY: web.AppKey[DescriptionReader | None] = web.AppKey("node_description_reader")
"""Reads OpenAPI 3 and WSDL descriptions (:mod:`security_server.servicedesc`); ``None``: REST only."""
EXCHANGE_KEY: Final = web.AppKey("node_exchange", ExchangeRuntime)
"""The message exchange of the node's main process (set once the application has started)."""
MANAGEMENT_TRANSPORT_KEY: web.AppKey[ManagementTransport | None] = web.AppKey("node_management_transport")
"""Replaces the pinned HTTPS transport to the registry (tests); normally ``None``."""


def node_context(app: web.Application) -> NodeContext:
    """The operations' context of the running node whose admin application is ``app``."""
    return NodeContext(
        app[SETTINGS_KEY],
        app[STORE_KEY],
        app[TOKEN_KEY],
        app[SESSION_KEY],
        clock=app[CLOCK_KEY],
        ocsp_cache=app.get(OCSP_CACHE_KEY),
        ocsp_refresher=app.get(OCSP_REFRESHER_KEY),
        management_transport=app.get(MANAGEMENT_TRANSPORT_KEY),
    )


@dataclass(frozen=True)
class NodeCall(admin.Call):
    """A handler's view of the request, the caller's key, the validated body and the node."""

    @property
    def ctx(self) -> NodeContext:
        return node_context(self.request.app)

    @property
    def settings(self) -> NodeSettings:
        return self.request.app[SETTINGS_KEY]

    @property
    def strict(self) -> bool:
        """The node's ``strict_identifier_checks``: the mode identifiers in the request are read in."""
        return self.settings.strict_identifier_checks

    @property
    def node_store(self) -> NodeStore:
        """The node's database (the message log's operations need nothing else)."""
        return self.request.app[STORE_KEY]

    @property
    def now(self) -> datetime:
        return self.request.app[CLOCK_KEY]()

    @property
    def reader(self) -> DescriptionReader | None:
        return self.request.app.get(DESCRIPTION_READER_KEY)


def int_param(call: NodeCall, name: str, what: str) -> int:
    """A path parameter that is a database id; anything else is the ``not_found`` of that id."""
    text = call.param(name)
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise XRoadError(FaultCode.NOT_FOUND, f"{what} {text[:20]!r} does not exist", http_status=404)
    return int(text)


def hex_param(call: NodeCall, name: str) -> bytes:
    text = call.param(name)
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise XRoadError(
            FaultCode.NOT_FOUND, f"{text[:80]!r} is no SHA-256 of a certificate here", http_status=404
        )
    return value
