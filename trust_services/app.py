"""The trust services over HTTP (aiohttp): CA, OCSP responder and TSA of one trust directory.

Routes:

* ``POST /ca/certificates?profile=auth|sign`` — a PKCS#10 request (PEM or DER) → the certificate (PEM, 201);
* ``GET /ca/certificates/{serial}`` — an issued certificate; ``GET /ca/ca.pem`` — the CA certificate;
* ``POST /ca/revocations`` — ``{"serial": <int>, "reason": "keyCompromise"}`` → the revocation (JSON);
* ``POST /ocsp`` and ``GET /ocsp/{base64 request}`` — RFC 6960 (``application/ocsp-response``);
* ``POST /tsa`` — RFC 3161, ``application/timestamp-query`` → ``application/timestamp-reply``.

Bad input gets HTTP 400 (404 for an unknown serial) in X-Road's REST error format. The handlers only do
I/O; the CA policy, OCSP and TSA logic are pure functions in :mod:`trust_services`. One exception: a
request aiohttp cannot parse at all (a request line or header over 8 KB, bytes that are no HTTP) never
reaches the application, so aiohttp answers it with its own plain-text 400; aiohttp offers no public hook
to render those errors, and replacing its low-level request handler would tie us to its internals.

Nobody authenticates to these services: anyone who reaches them can issue and revoke certificates. So
:func:`run_trust_service` binds only to a loopback address unless ``allow_remote`` is set
(``xroad-mn trust serve --allow-remote``), and warns in the log when it is. The TSA puts its certificate
in every token by default (``tsa_include_certificate = "always"``; see :mod:`trust_services.tsa` for why);
``"on_request"`` gives strict RFC 3161 behaviour.

Example::

    >>> settings = TrustSettings(dir=Path("trust"), port=0)
    >>> async with run_trust_service(settings) as service:  # doctest: +SKIP
    ...     print(service.urls.ocsp)
    http://127.0.0.1:41234/ocsp
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import structlog
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from pydantic import Field

from trust_services.ca import MAX_CSR_BYTES, Profile
from trust_services.ocsp_responder import MAX_OCSP_REQUEST_BYTES
from trust_services.store import TrustServiceStore, parse_reason
from trust_services.tsa import MAX_TIMESTAMP_QUERY_BYTES, CertificateInclusion
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.transport.server import (
    ServerTimeoutSettings,
    TimedSite,
    app_runner,
    read_body,
    read_json,
    require_content_type,
    xroad_error_middleware,
)

__all__ = [
    "CLOCK_KEY",
    "LOCK_KEY",
    "MAX_BODY_BYTES",
    "SETTINGS_KEY",
    "STORE_KEY",
    "RunningTrustService",
    "ServiceUrls",
    "TrustSettings",
    "check_bind_address",
    "create_app",
    "run_trust_service",
]

log = structlog.get_logger(__name__)

MAX_BODY_BYTES: Final = 64 * 1024
"""Largest request body any trust route accepts."""
MAX_REVOCATION_JSON_BYTES: Final = 4 * 1024
CSR_CONTENT_TYPES: Final = (
    "application/pkcs10",
    "application/x-pkcs10",
    "application/x-pem-file",
    "application/octet-stream",
    "text/plain",
)
OCSP_REQUEST_TYPE: Final = "application/ocsp-request"
OCSP_RESPONSE_TYPE: Final = "application/ocsp-response"
TIMESTAMP_QUERY_TYPE: Final = "application/timestamp-query"
TIMESTAMP_REPLY_TYPE: Final = "application/timestamp-reply"
PEM_TYPE: Final = "application/x-pem-file"
_SERIAL_PATTERN: Final = re.compile(r"[0-9]{1,40}")
"""A serial in a URL: ASCII decimal digits only, at most 40 (RFC 5280 serials are at most 20 octets)."""
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.", "ip6-localhost"})


class TrustSettings(ServerTimeoutSettings):
    """Settings of ``xroad-mn trust serve`` (file section / ``XROAD_MN_TRUST__*``), with the read timeouts
    of :class:`~xroad_mn.transport.server.ServerTimeoutSettings`."""

    dir: Path
    host: str = "127.0.0.1"
    port: int = Field(default=8899, ge=0, le=65535)
    allow_remote: bool = False
    """Allow binding to a non-loopback address. The services authenticate nobody: whoever reaches them
    can issue and revoke certificates."""
    tsa_include_certificate: CertificateInclusion = "always"
    """``always``: every time-stamp token carries the TSA certificate (X-Road's practice; the acceptance
    check ``openssl ts -verify ... -CAfile tsa.pem`` needs it); ``on_request``: strict RFC 3161, only
    when the query sets ``certReq``."""


def utc_now() -> datetime:
    return datetime.now(UTC)


SETTINGS_KEY: Final = web.AppKey("trust_settings", TrustSettings)
STORE_KEY: Final = web.AppKey("trust_store", TrustServiceStore)
LOCK_KEY: Final = web.AppKey("trust_store_lock", asyncio.Lock)
"""Serialises the store's writes (issuing, revoking)."""
CLOCK_KEY: Final = web.AppKey[Callable[[], datetime]]("trust_clock")


def _bad_request(code: FaultCode, message: str) -> XRoadError:
    return XRoadError(code, message, http_status=400)


def _pem_response(data: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=data, content_type=PEM_TYPE, headers=headers)


async def issue_certificate(request: web.Request) -> web.Response:
    raw_profile = request.query.get("profile")
    try:
        profile = Profile(raw_profile or "")
    except ValueError as e:
        raise _bad_request(
            FaultCode.BAD_REQUEST, f"query parameter profile must be 'auth' or 'sign', not {raw_profile!r}"
        ) from e
    require_content_type(request, *CSR_CONTENT_TYPES)
    csr = await read_body(request, min(MAX_BODY_BYTES, MAX_CSR_BYTES))
    if not csr:
        raise _bad_request(FaultCode.INVALID_CSR, "the request body holds no certificate signing request")
    store = request.app[STORE_KEY]
    now = request.app[CLOCK_KEY]()
    async with request.app[LOCK_KEY]:
        cert = await asyncio.to_thread(store.issue, csr, profile, now=now)
    location = request.app.router["certificate"].url_for(serial=str(cert.serial_number))
    return _pem_response(
        cert.public_bytes(serialization.Encoding.PEM),
        status=201,
        headers={"Location": str(location), "X-Serial-Number": str(cert.serial_number)},
    )


def _serial_from_path(request: web.Request) -> int:
    text = request.match_info["serial"]
    if _SERIAL_PATTERN.fullmatch(text) is None:
        shown = text if len(text) <= 50 else f"{text[:50]}..."
        raise _bad_request(
            FaultCode.BAD_REQUEST, f"serial {shown!r} is not a decimal integer of at most 40 digits"
        )
    return int(text)


async def get_certificate(request: web.Request) -> web.Response:
    cert = request.app[STORE_KEY].certificate(_serial_from_path(request))
    return _pem_response(cert.public_bytes(serialization.Encoding.PEM))


async def get_ca_certificate(request: web.Request) -> web.Response:
    return _pem_response(request.app[STORE_KEY].ca.certificate_pem())


def _parse_revocation(data: object) -> tuple[int, str]:
    if not isinstance(data, dict):
        raise _bad_request(FaultCode.INVALID_BODY, "revocation body must be a JSON object")
    unknown = set(data) - {"serial", "reason"}
    if unknown:
        raise _bad_request(
            FaultCode.INVALID_BODY, f"unknown revocation field(s): {', '.join(sorted(unknown))}"
        )
    serial = data.get("serial")
    if isinstance(serial, bool) or not isinstance(serial, int) or serial <= 0:
        raise _bad_request(FaultCode.INVALID_BODY, "revocation field 'serial' must be a positive integer")
    reason = data.get("reason", "unspecified")
    if not isinstance(reason, str):
        raise _bad_request(FaultCode.INVALID_BODY, "revocation field 'reason' must be a string")
    return serial, reason


async def revoke_certificate(request: web.Request) -> web.Response:
    data = await read_json(request, MAX_REVOCATION_JSON_BYTES, what="revocation body")
    serial, reason_name = _parse_revocation(data)
    reason = parse_reason(reason_name)
    store = request.app[STORE_KEY]
    now = request.app[CLOCK_KEY]()
    async with request.app[LOCK_KEY]:
        revocation = await asyncio.to_thread(store.revoke, serial, reason, now=now)
    return web.json_response(
        {
            "serial": revocation.serial,
            "reason": revocation.reason.value,
            "revoked_at": revocation.revoked_at.isoformat(),
        }
    )


def _ocsp_response(request: web.Request, request_der: bytes) -> web.Response:
    if not request_der:
        raise _bad_request(FaultCode.INVALID_OCSP_REQUEST, "the request holds no OCSP request")
    der = request.app[STORE_KEY].ocsp_response(request_der, now=request.app[CLOCK_KEY]())
    return web.Response(body=der, content_type=OCSP_RESPONSE_TYPE)


async def ocsp_post(request: web.Request) -> web.Response:
    require_content_type(request, OCSP_REQUEST_TYPE)
    return _ocsp_response(request, await read_body(request, min(MAX_BODY_BYTES, MAX_OCSP_REQUEST_BYTES)))


async def ocsp_get(request: web.Request) -> web.Response:
    encoded = request.match_info["request"]
    if len(encoded) > MAX_OCSP_REQUEST_BYTES * 4 // 3 + 4:
        raise XRoadError(FaultCode.REQUEST_TOO_LARGE, "OCSP request in the URL is too large", http_status=400)
    try:
        request_der = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as e:
        raise _bad_request(
            FaultCode.INVALID_OCSP_REQUEST, f"OCSP request in the URL is not base64: {e}"
        ) from e
    return _ocsp_response(request, request_der)


async def timestamp(request: web.Request) -> web.Response:
    require_content_type(request, TIMESTAMP_QUERY_TYPE)
    query = await read_body(request, min(MAX_BODY_BYTES, MAX_TIMESTAMP_QUERY_BYTES))
    if not query:
        raise _bad_request(FaultCode.INVALID_TIMESTAMP_REQUEST, "the request holds no time-stamp query")
    reply = request.app[STORE_KEY].timestamp_reply(
        query,
        now=request.app[CLOCK_KEY](),
        include_certificate=request.app[SETTINGS_KEY].tsa_include_certificate,
    )
    return web.Response(body=reply, content_type=TIMESTAMP_REPLY_TYPE)


def create_app(settings: TrustSettings, *, clock: Callable[[], datetime] = utc_now) -> web.Application:
    """The trust services' aiohttp application for the trust directory ``settings.dir``."""
    app = web.Application(middlewares=[xroad_error_middleware], client_max_size=MAX_BODY_BYTES)
    app[CLOCK_KEY] = clock
    app[SETTINGS_KEY] = settings

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        app[STORE_KEY] = await asyncio.to_thread(TrustServiceStore.open, settings.dir)
        app[LOCK_KEY] = asyncio.Lock()
        yield

    app.cleanup_ctx.append(store_ctx)
    app.router.add_post("/ca/certificates", issue_certificate)
    app.router.add_get("/ca/certificates/{serial}", get_certificate, name="certificate")
    app.router.add_get("/ca/ca.pem", get_ca_certificate)
    app.router.add_post("/ca/revocations", revoke_certificate)
    app.router.add_post("/ocsp", ocsp_post)
    app.router.add_get("/ocsp/{request:.+}", ocsp_get)
    app.router.add_post("/tsa", timestamp)
    return app


@dataclass(frozen=True)
class ServiceUrls:
    """Where the running services answer."""

    base: str

    @property
    def ca(self) -> str:
        return f"{self.base}/ca/certificates"

    @property
    def revocations(self) -> str:
        return f"{self.base}/ca/revocations"

    @property
    def ocsp(self) -> str:
        return f"{self.base}/ocsp"

    @property
    def tsa(self) -> str:
        return f"{self.base}/tsa"


@dataclass(frozen=True)
class RunningTrustService:
    """A started trust service: its bound address, URLs and trust directory."""

    host: str
    port: int
    urls: ServiceUrls
    directory: Path


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name (other than localhost) or "" (every interface)


def check_bind_address(host: str, *, allow_remote: bool) -> None:
    """Refuse (``invalid_settings``) to serve on a non-loopback ``host`` unless ``allow_remote``."""
    if _is_loopback(host):
        return
    if not allow_remote:
        raise XRoadError(
            FaultCode.INVALID_SETTINGS,
            f"refusing to serve the trust services on {host or 'every interface'!r}: they authenticate "
            "nobody, so anyone who reaches them can issue and revoke certificates. Bind to 127.0.0.1, or "
            "pass --allow-remote (setting allow_remote = true, XROAD_MN_TRUST__ALLOW_REMOTE=true) "
            "to accept that",
            details={"host": host},
        )
    log.warning(
        "trust_services_remote",
        host=host,
        reason="the trust services authenticate nobody; anyone who reaches them can issue and revoke",
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@asynccontextmanager
async def run_trust_service(
    settings: TrustSettings, *, clock: Callable[[], datetime] = utc_now
) -> AsyncIterator[RunningTrustService]:
    """Serve :func:`create_app` on ``settings.host:settings.port`` (port 0: any free one) in the block.

    A non-loopback ``host`` is refused unless ``settings.allow_remote`` (see :func:`check_bind_address`).
    """
    check_bind_address(settings.host, allow_remote=settings.allow_remote)
    try:
        sock = socket.create_server((settings.host, settings.port))
    except OSError as e:
        raise XRoadError(
            FaultCode.IO_ERROR, f"cannot listen on {settings.host}:{settings.port}: {e.strerror or e}"
        ) from e
    timeouts = settings.server_timeouts()
    runner = app_runner(create_app(settings, clock=clock), timeouts)
    try:
        await runner.setup()
        await TimedSite(runner, sock, timeouts).start()
        address = runner.addresses[0]
        host, port = str(address[0]), int(address[1])
        urls = ServiceUrls(f"http://{_url_host(host)}:{port}")
        log.info(
            "trust_services_started", ca=urls.ca, ocsp=urls.ocsp, tsa=urls.tsa, directory=str(settings.dir)
        )
        yield RunningTrustService(host, port, urls, settings.dir)
    finally:
        await runner.cleanup()
        sock.close()
