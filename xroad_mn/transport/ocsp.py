"""OCSP over HTTP: the aiohttp implementation of :class:`~xroad_mn.ocsp.OcspTransport`.

Example::

    >>> from xroad_mn.ocsp import build_ocsp_request
    >>> from xroad_mn.transport.ocsp import AiohttpOcspTransport
    >>> response = await AiohttpOcspTransport("http://ca:8888/", session).send(  # doctest: +SKIP
    ...     build_ocsp_request(cert, issuer))
"""

from __future__ import annotations

import aiohttp

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.ocsp import MAX_OCSP_RESPONSE_BYTES, OCSP_REQUEST_CONTENT_TYPE, OCSP_RESPONSE_CONTENT_TYPE

__all__ = ["AiohttpOcspTransport"]


class AiohttpOcspTransport:
    """POSTs ``application/ocsp-request`` to ``url`` with an aiohttp session the caller owns."""

    def __init__(
        self, url: str, session: aiohttp.ClientSession, *, timeout: aiohttp.ClientTimeout | None = None
    ) -> None:
        self.url = url
        self._session = session
        self._timeout = timeout or aiohttp.ClientTimeout(sock_connect=20, sock_read=30)

    async def send(self, request: bytes) -> bytes:
        try:
            async with self._session.post(
                self.url,
                data=request,
                headers={"Content-Type": OCSP_REQUEST_CONTENT_TYPE, "Accept": OCSP_RESPONSE_CONTENT_TYPE},
                timeout=self._timeout,
            ) as resp:
                if resp.status != 200:
                    raise XRoadError(
                        FaultCode.OCSP_FAILED, f"OCSP responder {self.url} answered HTTP {resp.status}"
                    )
                if resp.content_length is not None and resp.content_length > MAX_OCSP_RESPONSE_BYTES:
                    raise XRoadError(FaultCode.OCSP_FAILED, f"OCSP response from {self.url} is too large")
                body = await resp.content.read(MAX_OCSP_RESPONSE_BYTES + 1)
        except aiohttp.ClientError as e:
            raise XRoadError(FaultCode.OCSP_FAILED, f"OCSP responder {self.url} unreachable: {e}") from e
        except TimeoutError as e:
            raise XRoadError(FaultCode.OCSP_FAILED, f"OCSP responder {self.url} timed out") from e
        if len(body) > MAX_OCSP_RESPONSE_BYTES:
            raise XRoadError(FaultCode.OCSP_FAILED, f"OCSP response from {self.url} is too large")
        return body
