"""The provider node's call to its own information system: the service's URL, timeout and connection type.

REST: ``<service URL> + path + "?" + query`` (X-Road's ``concatPath``) with the request's method, the
headers :func:`~xroad_mn.wire.rest.provider_is_headers` keeps, and the body; redirects come back as they
are, never followed. SOAP: a POST of the exact SOAP bytes (with attachments, as ``multipart/related``) with
``Content-Type`` and ``SOAPAction``. Failures are coded as X-Road's ``ErrorCodes.translateException``
codes the HTTP client's exceptions (REST as they are; SOAP prefixed ``service_failed.``, as X-Road's
``DefaultServiceHandlerImpl`` does): an IS that cannot be reached or drops
the connection (a ``SocketException``) is ``network_error``; one slower than the service's timeout (a
``SocketTimeoutException``) or answering broken HTTP (any other ``IOException``) is ``io_error``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

import aiohttp
from yarl import URL

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.transport.client import request_payload

__all__ = ["MAX_IS_RESPONSE_BYTES", "IsResponse", "call_information_system", "concat_path"]

MAX_IS_RESPONSE_BYTES: Final = 64 * 1024 * 1024
"""Largest response body a provider information system may return (X-Road logs up to 10 MiB bodies)."""


@dataclass(frozen=True)
class IsResponse:
    """What the information system answered: status line, headers in order and case, and the body."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def concat_path(base: str, path: str, query: str) -> str:
    """``base`` joined to ``path`` with exactly one slash (X-Road's ``concatPath``), then ``?query``."""
    url = base
    if path:
        if base.endswith("/") and path.startswith("/"):
            url = base + path[1:]
        elif not base.endswith("/") and not path.startswith("/"):
            url = base + "/" + path
        else:
            url = base + path
    if query:
        url += "?" + query
    return url


def _service_failed(message: str) -> XRoadError:
    return XRoadError(FaultCode.SERVICE_FAILED, message)


_NETWORK_FAILURES: Final = (
    aiohttp.ClientConnectionError,  # refused, reset, disconnected, unresolvable (X-Road's SocketException)
    aiohttp.InvalidURL,  # X-Road's MalformedURLException
)


async def call_information_system(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes | None,
    *,
    timeout_seconds: float,
    verify_tls: bool,
    limit: int = MAX_IS_RESPONSE_BYTES,
) -> IsResponse:
    """Call the information system: ``network_error`` when it cannot be reached or drops the connection,
    ``io_error`` when it does not answer within ``timeout_seconds`` or answers broken HTTP,
    ``service_failed`` when it answers more than ``limit`` bytes."""
    timeout = aiohttp.ClientTimeout(total=timeout_seconds if timeout_seconds > 0 else None)
    try:
        async with session.request(
            method,
            URL(url, encoded=True),
            headers=headers,
            data=request_payload(body) if body else None,
            allow_redirects=False,
            timeout=timeout,
            ssl=verify_tls,
            skip_auto_headers=("Content-Type", "User-Agent", "Accept-Encoding", "Accept"),
            auto_decompress=False,
        ) as resp:
            data = bytearray()
            async for chunk in resp.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > limit:
                    raise _service_failed(f"the information system's response is larger than {limit} bytes")
            raw = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.raw_headers)
            return IsResponse(resp.status, resp.reason or "", raw, bytes(data))
    except TimeoutError as e:
        raise XRoadError(
            FaultCode.IO_ERROR,
            f"the information system did not answer in {timeout_seconds} s: read timed out",
        ) from e
    except asyncio.CancelledError:
        raise
    except aiohttp.InvalidURL as e:  # its text is the URL
        raise XRoadError(
            FaultCode.NETWORK_ERROR, f"the information system's URL at {_origin(url)} is invalid"
        ) from e
    except _NETWORK_FAILURES as e:
        raise XRoadError(
            FaultCode.NETWORK_ERROR, f"cannot reach the information system at {_origin(url)}: {e}"
        ) from e
    except aiohttp.ClientError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"the information system at {_origin(url)} failed: {e}") from e


def _origin(url: str) -> str:
    """Where the IS is, for a fault: scheme, host and port only. The path and query of the call name what
    was asked (a citizen's registration number in ``/people/УБ99112233``) and a fault string travels back to
    the consumer and into both nodes' logs and operational data in clear."""
    try:
        return str(URL(url, encoded=True).origin())
    except ValueError:
        return "its configured address"
