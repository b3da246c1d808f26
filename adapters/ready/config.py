"""Which ready adapter a configuration file describes, and the application that serves it.

The file's ``kind`` (``sql`` when absent) picks the settings model; the file is read by the core's
:func:`~xroad_mn.settings.load_settings` (unknown keys refused, ``XROAD_MN_ADAPTER__<KEY>`` environment
overrides).

Example::

    >>> ready = load_ready_adapter(Path("configs/adapters/civil-registry.toml"))  # doctest: +SKIP
    >>> app = ready.create_app()
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from aiohttp import web

from adapters.ready.http import HttpAdapterSettings, create_http_app
from adapters.ready.soap import SoapAdapterSettings, create_soap_app
from adapters.ready.sql import SqlAdapterSettings, create_sql_app, sql_adapter
from adapters.sdk import Adapter
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.settings import load_settings

__all__ = ["KINDS", "ReadyAdapter", "load_ready_adapter"]

KINDS: Final = ("sql", "http", "soap")
"""The ready adapters this version serves."""


@dataclass(frozen=True)
class ReadyAdapter:
    """A loaded ready adapter: its settings, its SDK declaration and its application factory."""

    kind: str
    title: str
    host: str
    port: int
    create_app: Callable[[], web.Application]
    adapter: Callable[[], Adapter] | None = None
    """The SDK declaration (and so an OpenAPI document) of an adapter that has one."""
    published_as: Literal["openapi", "wsdl", "rest"] = "openapi"
    """How a security server adds its services: from its OpenAPI document, its WSDL, or as a REST base URL."""
    description_path: str | None = "/openapi.json"
    """Where it serves that description (``None``: it serves none)."""

    def registration_hint(self, base: str) -> str:
        """What to tell its operator about adding the adapter served at ``base`` to a security server."""
        add = "xroad-mn node service add --dir NODE --client SUBSYSTEM"
        if self.published_as == "rest":
            return f"  REST service at {base}  (register it: {add} --rest {base} --code CODE)"
        if self.description_path is None:
            return "  no WSDL: set namespace in the configuration for a WSDL a node can add the services from"
        url = base + self.description_path
        if self.published_as == "wsdl":
            return f"  WSDL {url}  (register it: {add} --wsdl {url})"
        return f"  OpenAPI {url}  (register it: {add} --openapi {url} --code CODE)"


def load_ready_adapter(
    path: Path, *, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> ReadyAdapter:
    """The ready adapter ``path`` configures (``invalid_settings`` for an unknown kind or a bad file)."""
    try:
        kind = tomllib.loads(path.read_text(encoding="utf-8")).get("kind", "sql")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise XRoadError(FaultCode.INVALID_SETTINGS, f"cannot read adapter configuration {path}: {e}") from e
    if kind == "http":
        http = load_settings(HttpAdapterSettings, app="adapter", path=path, env=env, overrides=overrides)
        return ReadyAdapter(
            "http", http.title, http.host, http.port, lambda: create_http_app(http),
            published_as="rest", description_path=None,
        )  # fmt: skip
    if kind == "soap":
        soap = load_settings(SoapAdapterSettings, app="adapter", path=path, env=env, overrides=overrides)
        return ReadyAdapter(
            "soap", soap.title, soap.host, soap.port, lambda: create_soap_app(soap),
            published_as="wsdl", description_path=soap.wsdl_path if soap.namespace else None,
        )  # fmt: skip
    if kind != "sql":
        raise XRoadError(
            FaultCode.INVALID_SETTINGS, f"adapter kind {str(kind)[:40]!r} is not one of {', '.join(KINDS)}"
        )
    settings = load_settings(SqlAdapterSettings, app="adapter", path=path, env=env, overrides=overrides)
    return ReadyAdapter(
        "sql", settings.title, settings.host, settings.port,
        create_app=lambda: create_sql_app(settings), adapter=lambda: sql_adapter(settings)[0],
    )  # fmt: skip
