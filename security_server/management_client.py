"""The node's client of the registry's management service: HTTPS pinned to the certificate global
configuration publishes, nothing else trusted.

X-Road's security server sends ``authCertReg`` by direct HTTPS to ``authCertRegServiceAddress`` and trusts
exactly one certificate there: ``authCertRegServiceCert`` from private-params. Its ``ManagementRequestClient``
accepts the TLS server certificate only when it *equals* that certificate — no CA chain, no host name check
(the address may be an IP address the certificate does not name). :class:`PinnedManagementTransport` does
the same with aiohttp's certificate pinning: the connection is refused before any byte of the request is
sent unless the server's certificate has the SHA-256 of the published one (the TLS handshake proves the
server holds that certificate's key).

:func:`management_transport` builds it from global configuration and fails closed: a management service
address that is not ``https`` or a configuration that publishes no certificate is an error, never a
fallback to plain HTTP or to the system's CAs.

Example::

    >>> transport = management_transport(private_params.management_service, session)  # doctest: +SKIP
    >>> answer = await transport.send(built.body, built.content_type)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from typing import Final, Protocol
from urllib.parse import urlsplit

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.params import ManagementService
from xroad_mn.management import MAX_SOAP_BYTES
from xroad_mn.mime import split_header_params

__all__ = [
    "ManagementTransport",
    "PinnedManagementTransport",
    "management_transport",
]

DEFAULT_TIMEOUT: Final = aiohttp.ClientTimeout(sock_connect=20, sock_read=60)
"""Connect and read timeouts of a management request (the registry verifies signatures and OCSP first)."""
_SOAP_TYPES: Final = frozenset({"text/xml", "application/xml"})


class ManagementTransport(Protocol):
    """Sends one management request (body and its ``Content-Type``) and returns the registry's SOAP answer,
    a response or a fault, for :func:`xroad_mn.management.parse_management_response` to read."""

    async def send(self, body: bytes, content_type: str) -> bytes: ...


class PinnedManagementTransport:
    """POSTs to ``url`` over HTTPS, accepting only a server whose TLS certificate is ``pinned``."""

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        *,
        pinned: x509.Certificate,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> None:
        if urlsplit(url).scheme.lower() != "https":
            raise XRoadError(
                FaultCode.INVALID_REQUEST,
                f"the management service address {url[:200]!r} is not https: a management request is sent "
                "only over TLS pinned to the certificate global configuration publishes",
            )
        self.url = url
        self._session = session
        self._fingerprint = aiohttp.Fingerprint(hashlib.sha256(pinned.public_bytes(Encoding.DER)).digest())
        self._timeout = timeout or DEFAULT_TIMEOUT

    async def send(self, body: bytes, content_type: str) -> bytes:
        try:
            async with self._session.post(
                self.url,
                data=body,
                headers={"Content-Type": content_type, "Accept": "text/xml"},
                ssl=self._fingerprint,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                mime, _ = split_header_params(resp.headers.get("Content-Type", ""))
                if mime.lower() not in _SOAP_TYPES:
                    raise XRoadError(
                        FaultCode.HTTP_ERROR,
                        f"management service {self.url} answered HTTP {resp.status} with "
                        f"{mime[:60] or 'no content type'!r}, not a SOAP message",
                    )
                answer = await resp.content.read(MAX_SOAP_BYTES + 1)
        except aiohttp.ServerFingerprintMismatch as e:
            raise XRoadError(
                FaultCode.SSL_AUTH_FAILED,
                f"the TLS certificate of {self.url} is not the management service certificate global "
                "configuration publishes (authCertRegServiceCert)",
            ) from e
        except aiohttp.ClientError as e:
            raise XRoadError(
                FaultCode.NETWORK_ERROR, f"management service {self.url} unreachable: {e}"
            ) from e
        except TimeoutError as e:
            raise XRoadError(FaultCode.TIMEOUT, f"management service {self.url} timed out") from e
        if len(answer) > MAX_SOAP_BYTES:
            raise XRoadError(
                FaultCode.REQUEST_TOO_LARGE, f"the answer of {self.url} is larger than {MAX_SOAP_BYTES} bytes"
            )
        return answer


def management_transport(
    service: ManagementService,
    session: aiohttp.ClientSession,
    *,
    timeout: aiohttp.ClientTimeout | None = None,
) -> PinnedManagementTransport:
    """The transport to ``authCertRegServiceAddress``, pinned to ``authCertRegServiceCert`` (both from the
    installed private-params); ``invalid_request`` when the address is not https, ``malformed_global_conf``
    when global configuration publishes no certificate to pin."""
    if service.auth_cert_reg_service_cert is None:
        raise XRoadError(
            FaultCode.MALFORMED_GLOBALCONF,
            "global configuration publishes no management service certificate (authCertRegServiceCert): "
            "there is nothing to trust the registry's TLS certificate by",
        )
    return PinnedManagementTransport(
        service.auth_cert_reg_service_address,
        session,
        pinned=service.auth_cert_reg_service_cert,
        timeout=timeout,
    )
