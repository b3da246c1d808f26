"""What the ready adapters in front of an existing service share: their settings for the upstream service,
the client session they call it with, and the X-Road faults a failed call becomes.

:class:`UpstreamSettings` is the base of the HTTP and SOAP adapters' settings (title, listening address,
the upstream URL, the call's time limit, TLS verification and body bounds). :func:`with_upstream_session`
gives an application the client session its calls use, opened and closed with it.
:func:`calling_upstream` turns a call that times out into ``server.timeout`` (HTTP 504) and one that cannot
reach the service into ``server.network_error``, both naming what was called, never its URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import aiohttp
import structlog
from aiohttp import web
from pydantic import Field

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.settings import SettingsModel

__all__ = ["SESSION_KEY", "UpstreamSettings", "calling_upstream", "with_upstream_session"]

log = structlog.get_logger(__name__)

SESSION_KEY: Final = web.AppKey("upstream_session", aiohttp.ClientSession)


class UpstreamSettings(SettingsModel):
    """An adapter in front of an existing service: where it listens and how it calls the service."""

    title: str
    host: str = "127.0.0.1"
    upstream: str = Field(pattern=r"^https?://")
    """The existing service's URL."""
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    verify_tls: bool = True
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=0)
    """Largest request body taken from the security server."""
    max_response_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    """Largest answer read from the upstream service."""


def with_upstream_session(app: web.Application) -> web.Application:
    """``app`` with a client session at :data:`SESSION_KEY`, opened and closed with it."""

    async def session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as client:
            app[SESSION_KEY] = client
            yield

    app.cleanup_ctx.append(session)
    return app


@asynccontextmanager
async def calling_upstream(settings: UpstreamSettings, what: str) -> AsyncIterator[None]:
    """Map a failed call to ``what`` (``the upstream API``) in the block to X-Road's faults."""
    try:
        yield
    except TimeoutError as e:
        raise XRoadError(
            FaultCode.TIMEOUT, f"{what} did not answer in {settings.timeout_seconds:g} s", http_status=504
        ) from e
    except aiohttp.ClientError as e:
        log.warning("upstream_failed", upstream=what, reason=str(e))
        raise XRoadError(FaultCode.NETWORK_ERROR, f"cannot reach {what}") from e
