"""A client of a CA that issues certificates over HTTP as our development CA does (``trust_services``):
``POST {base}/ca/certificates?profile=auth|sign`` with a PKCS#10 request, answered by the certificate in
PEM (HTTP 201). Example::

    >>> async with aiohttp.ClientSession() as session:  # doctest: +SKIP
    ...     cert = await request_certificate(session, "http://127.0.0.1:8899", csr, KeyUsage.SIGNING)

Anything but one certificate in the answer is refused with ``incorrect_certificate`` (an error status with
the CA's message is ``service_failed``, an unreachable CA ``network_error``), so the node never records
what a CA did not issue. The certificate still goes through
:func:`security_server.certs.import_.import_certificate` before the node holds it.
"""

from __future__ import annotations

import json
from typing import Final

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from yarl import URL

from security_server.db import KeyUsage
from xroad_mn.certs import MAX_CERTIFICATE_BYTES, load_certificate
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError

__all__ = ["CA_CERTIFICATES_PATH", "DEFAULT_CA_TIMEOUT", "request_certificate"]

CA_CERTIFICATES_PATH: Final = "/ca/certificates"
DEFAULT_CA_TIMEOUT: Final = aiohttp.ClientTimeout(total=60, sock_connect=20)
"""X-Road's signer client timeout is 60 s."""
_PKCS10: Final = "application/pkcs10"
_MAX_ERROR_CHARS: Final = 300


def _endpoint(base_url: str) -> URL:
    url = URL(base_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise XRoadError(
            FaultCode.INVALID_REQUEST,
            f"CA URL {base_url[:100]!r} is not an http(s) URL",
            kind=ErrorKind.BAD_INPUT,
        )
    return url.with_path(url.path.rstrip("/") + CA_CERTIFICATES_PATH)


def _error_text(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:_MAX_ERROR_CHARS].decode("utf-8", "replace")
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or data)[:_MAX_ERROR_CHARS]
    return str(data)[:_MAX_ERROR_CHARS]


async def request_certificate(
    session: aiohttp.ClientSession,
    base_url: str,
    csr: x509.CertificateSigningRequest,
    usage: KeyUsage,
    *,
    timeout: aiohttp.ClientTimeout = DEFAULT_CA_TIMEOUT,  # noqa: ASYNC109 -- aiohttp's own timeout
) -> x509.Certificate:
    """Submit ``csr`` for a certificate of profile ``usage`` to the CA at ``base_url`` (e.g.
    ``http://127.0.0.1:8899``) and return the certificate it answers with."""
    url = _endpoint(base_url)
    try:
        async with session.post(
            url,
            params={"profile": usage.value},
            data=csr.public_bytes(Encoding.DER),
            headers={"Content-Type": _PKCS10},
            timeout=timeout,
        ) as resp:
            body = await resp.content.read(MAX_CERTIFICATE_BYTES + 1)
            status = resp.status
    except aiohttp.ClientError as e:
        raise XRoadError(FaultCode.NETWORK_ERROR, f"CA {url} unreachable: {e}") from e
    except TimeoutError as e:
        raise XRoadError(FaultCode.NETWORK_ERROR, f"CA {url} did not answer in time") from e
    if status not in (200, 201):
        raise XRoadError(
            FaultCode.SERVICE_FAILED,
            f"CA {url} refused the request (HTTP {status}): {_error_text(body)}",
            details={"http_status": status},
        )
    if len(body) > MAX_CERTIFICATE_BYTES:
        raise XRoadError(FaultCode.INCORRECT_CERTIFICATE, f"CA {url} answered more than a certificate")
    try:
        cert = load_certificate(body)
    except XRoadError as e:
        raise XRoadError(
            FaultCode.INCORRECT_CERTIFICATE, f"CA {url} did not answer with a certificate: {e.message}"
        ) from e
    if _spki(cert.public_key()) != _spki(csr.public_key()):
        raise XRoadError(
            FaultCode.INCORRECT_CERTIFICATE, f"CA {url} answered with a certificate for another key"
        )
    return cert


def _spki(key: object) -> bytes:
    public_bytes = getattr(key, "public_bytes", None)
    data: bytes = (
        b"" if public_bytes is None else public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    return data
