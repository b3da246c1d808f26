"""Configuration download over HTTP(S): the aiohttp implementation of
:class:`~xroad_mn.confclient.client.ConfigurationTransport`.

Example::

    >>> import aiohttp
    >>> from xroad_mn.transport.globalconf import AiohttpConfigurationTransport
    >>> async with aiohttp.ClientSession() as session:  # doctest: +SKIP
    ...     body, content_type = await AiohttpConfigurationTransport(session).get("http://cs/internalconf")
"""

from __future__ import annotations

import ssl
from typing import Final

import aiohttp

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import MAX_PARAMS_BYTES

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "MAX_DOWNLOAD_BYTES",
    "READ_TIMEOUT_SECONDS",
    "AiohttpConfigurationTransport",
]

CONNECT_TIMEOUT_SECONDS: Final = 10.0
READ_TIMEOUT_SECONDS: Final = 30.0
MAX_DOWNLOAD_BYTES: Final = MAX_PARAMS_BYTES
"""Largest response read from a configuration source."""


class AiohttpConfigurationTransport:
    """GETs with an aiohttp session the caller owns; timeouts 10 s connect and 30 s read, as X-Road's."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = READ_TIMEOUT_SECONDS,
        ssl_context: ssl.SSLContext | bool = True,
    ) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout, sock_read=read_timeout)
        self._ssl = ssl_context

    async def get(self, url: str) -> tuple[bytes, str]:
        try:
            async with self._session.get(
                url, timeout=self._timeout, ssl=self._ssl, allow_redirects=False
            ) as resp:
                if resp.status != 200:
                    raise XRoadError(
                        FaultCode.HTTP_ERROR,
                        f"configuration source {url} answered HTTP {resp.status}",
                        details={"status": resp.status, "url": url},
                    )
                if resp.content_length is not None and resp.content_length > MAX_DOWNLOAD_BYTES:
                    raise XRoadError(FaultCode.MALFORMED_GLOBALCONF, f"{url} is larger than allowed")
                body = await resp.content.read(MAX_DOWNLOAD_BYTES + 1)
                content_type = resp.headers.get("Content-Type", "")
        except aiohttp.ClientError as e:
            raise XRoadError(
                FaultCode.NETWORK_ERROR, f"configuration source {url} unreachable: {e}", details={"url": url}
            ) from e
        except TimeoutError as e:
            raise XRoadError(
                FaultCode.TIMEOUT, f"configuration source {url} timed out", details={"url": url}
            ) from e
        if len(body) > MAX_DOWNLOAD_BYTES:
            raise XRoadError(FaultCode.MALFORMED_GLOBALCONF, f"{url} is larger than allowed")
        return body, content_type
