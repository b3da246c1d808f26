"""RFC 3161 over HTTP: the aiohttp implementation of :class:`~xroad_mn.timestamp.TimestampTransport`.

Example::

    >>> from xroad_mn.timestamp import request_timestamp
    >>> from xroad_mn.transport.timestamp import AiohttpTimestampTransport
    >>> token = await request_timestamp(  # doctest: +SKIP
    ...     data, [AiohttpTimestampTransport("http://tsa:8899/tsa", session)], tsa_certs)
"""

from __future__ import annotations

import aiohttp

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.timestamp import (
    _ACCEPTED_REPLY_CONTENT_TYPES,
    DEFAULT_TSA_TIMEOUT_SECONDS,
    MAX_TIMESTAMP_BYTES,
    TIMESTAMP_QUERY_CONTENT_TYPE,
)

__all__ = ["AiohttpTimestampTransport"]


class AiohttpTimestampTransport:
    """RFC 3161 over HTTP: POST ``application/timestamp-query``, expect ``application/timestamp-reply``."""

    def __init__(
        self, url: str, session: aiohttp.ClientSession, timeout: float = DEFAULT_TSA_TIMEOUT_SECONDS
    ) -> None:
        self.url = url
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        return f"AiohttpTimestampTransport({self.url!r})"

    async def send(self, request: bytes) -> bytes:
        try:
            async with self._session.post(
                self.url,
                data=request,
                headers={"Content-Type": TIMESTAMP_QUERY_CONTENT_TYPE},
                timeout=self._timeout,
            ) as response:
                if response.status != 200:
                    raise XRoadError(
                        FaultCode.TIMESTAMPER_FAILED,
                        f"TSA {self.url} answered HTTP {response.status}",
                        details={"url": self.url, "status": response.status},
                    )
                if response.content_type not in _ACCEPTED_REPLY_CONTENT_TYPES:
                    raise XRoadError(
                        FaultCode.TIMESTAMPER_FAILED,
                        f"TSA {self.url} answered with content type {response.content_type!r}",
                        details={"url": self.url, "content_type": response.content_type},
                    )
                body = await response.content.read(MAX_TIMESTAMP_BYTES + 1)
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise XRoadError(
                FaultCode.NETWORK_ERROR,
                f"cannot reach TSA {self.url}: {type(e).__name__}: {e}",
                details={"url": self.url},
            ) from e
        if len(body) > MAX_TIMESTAMP_BYTES:
            raise XRoadError(
                FaultCode.TIMESTAMPER_FAILED,
                f"TSA {self.url} response is larger than {MAX_TIMESTAMP_BYTES} bytes",
                details={"url": self.url},
            )
        return body
