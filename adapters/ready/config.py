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
from typing import Any, Final

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
        return ReadyAdapter("http", http.title, http.host, http.port, lambda: create_http_app(http))
    if kind == "soap":
        soap = load_settings(SoapAdapterSettings, app="adapter", path=path, env=env, overrides=overrides)
        return ReadyAdapter("soap", soap.title, soap.host, soap.port, lambda: create_soap_app(soap))
    if kind != "sql":
        raise XRoadError(
            FaultCode.INVALID_SETTINGS, f"adapter kind {str(kind)[:40]!r} is not one of {', '.join(KINDS)}"
        )
    settings = load_settings(SqlAdapterSettings, app="adapter", path=path, env=env, overrides=overrides)
    return ReadyAdapter(
        "sql", settings.title, settings.host, settings.port,
        create_app=lambda: create_sql_app(settings), adapter=lambda: sql_adapter(settings)[0],
    )  # fmt: skip
