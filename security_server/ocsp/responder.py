"""The node's OCSP responder on port 5577: other security servers download the OCSP responses of this
node's certificates here (PR-MESSTRANSP §5.2).

* ``GET /?cert=<hex SHA-1 of the certificate DER>[&cert=...]`` — X-Road 7.8 clients also send
  ``cert_hash=<hex SHA-256>``; either is accepted, repeated, in any mix. The answer is ``multipart/related``
  with one part per certificate asked for (in the order asked, duplicates once), each
  ``Content-Type: application/ocsp-response`` with the DER response as its body.
* ``HEAD /`` — 200, a heartbeat.
* A certificate this node holds no response for is an X-Road error (HTTP 404, ``ocsp_failed``), as is a
  request without a hash or with a malformed one (HTTP 400).

Example::

    >>> app = create_ocsp_responder_app(cache, refresher=refresher)  # doctest: +SKIP
    >>> async with run_ocsp_responder(app, settings.address, settings.ocsp_responder_port) as bound:
    ...     print(bound)  # doctest: +SKIP
    ('127.0.0.2', 5577)
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from aiohttp import web

from security_server.ocsp.cache import OwnOcspCache
from security_server.ocsp.refresh import OcspRefresher
from security_server.settings import NodeSettings
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.ocsp import OCSP_RESPONSE_CONTENT_TYPE
from xroad_mn.transport.server import xroad_error_middleware

__all__ = [
    "MAX_CERTS_PER_REQUEST",
    "OCSP_CACHE_KEY",
    "OCSP_REFRESHER_KEY",
    "create_ocsp_responder_app",
    "run_node_ocsp_responder",
    "run_ocsp_responder",
]

MAX_CERTS_PER_REQUEST: Final = 100
"""Most certificates one download asks for (a security server has a few)."""
MAX_QUERY_CHARS: Final = 16 * 1024
_SHA1_HEX: Final = re.compile(r"^[0-9A-Fa-f]{40}$")
_SHA256_HEX: Final = re.compile(r"^[0-9A-Fa-f]{64}$")

OCSP_CACHE_KEY: Final = web.AppKey("ocsp_cache", OwnOcspCache)
OCSP_REFRESHER_KEY: Final = web.AppKey("ocsp_refresher", OcspRefresher)


def _bad(message: str) -> XRoadError:
    return XRoadError(FaultCode.BAD_REQUEST, message, http_status=400)


def _wanted(request: web.Request) -> list[tuple[str, str]]:
    if len(request.query_string) > MAX_QUERY_CHARS:
        raise _bad(f"query is longer than {MAX_QUERY_CHARS} characters")
    wanted: list[tuple[str, str]] = []
    for name, value in request.query.items():
        if name == "cert":
            if not _SHA1_HEX.match(value):
                raise _bad(f"cert={value[:80]!r} is not a hex SHA-1 hash")
        elif name == "cert_hash":
            if not _SHA256_HEX.match(value):
                raise _bad(f"cert_hash={value[:80]!r} is not a hex SHA-256 hash")
        else:
            continue
        item = (name, value.lower())
        if item not in wanted:
            wanted.append(item)
    if not wanted:
        raise _bad("name at least one certificate: ?cert=<hex SHA-1> or ?cert_hash=<hex SHA-256>")
    if len(wanted) > MAX_CERTS_PER_REQUEST:
        raise _bad(f"at most {MAX_CERTS_PER_REQUEST} certificates per request")
    return wanted


def _multipart(responses: list[bytes]) -> tuple[bytes, str]:
    boundary = "ocsp" + secrets.token_hex(16)
    while any(boundary.encode("ascii") in r for r in responses):  # astronomically unlikely
        boundary = "ocsp" + secrets.token_hex(16)
    out = bytearray()
    for der in responses:
        out += f"--{boundary}\r\nContent-Type: {OCSP_RESPONSE_CONTENT_TYPE}\r\n\r\n".encode("ascii")
        out += der + b"\r\n"
    out += f"--{boundary}--\r\n".encode("ascii")
    return bytes(out), f"multipart/related; boundary={boundary}"


async def download(request: web.Request) -> web.Response:
    if request.method == "HEAD":
        return web.Response()
    cache = request.app[OCSP_CACHE_KEY]
    responses: list[bytes] = []
    for name, digest in _wanted(request):
        der = cache.response_by_sha1(digest) if name == "cert" else cache.response_by_sha256(digest)
        if der is None:
            raise XRoadError(
                FaultCode.OCSP_FAILED,
                f"this security server holds no OCSP response for certificate {name}={digest}",
                details={name: digest},
                http_status=404,
            )
        responses.append(der)
    body, content_type = _multipart(responses)
    return web.Response(body=body, headers={"Content-Type": content_type})


def create_ocsp_responder_app(
    cache: OwnOcspCache, *, refresher: OcspRefresher | None = None
) -> web.Application:
    """The port 5577 application serving ``cache``; with ``refresher``, it also owns the refresh task
    (started and stopped with the application)."""
    app = web.Application(middlewares=[xroad_error_middleware], client_max_size=1024)
    app[OCSP_CACHE_KEY] = cache
    if refresher is not None:
        app[OCSP_REFRESHER_KEY] = refresher
        app.cleanup_ctx.append(refresher.cleanup_ctx)
    app.router.add_get("/", download)  # aiohttp answers HEAD through a GET route too
    return app


@asynccontextmanager
async def run_ocsp_responder(app: web.Application, host: str, port: int) -> AsyncIterator[tuple[str, int]]:
    """Serve ``app`` on ``host:port`` (0: a free port) in the block; yields the bound address."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as e:
            raise XRoadError(FaultCode.IO_ERROR, f"cannot listen on {host}:{port}: {e.strerror or e}") from e
        address = runner.addresses[0]
        yield str(address[0]), int(address[1])
    finally:
        await runner.cleanup()


@asynccontextmanager
async def run_node_ocsp_responder(
    settings: NodeSettings, app: web.Application
) -> AsyncIterator[tuple[str, int]]:
    """Serve ``app`` on the node's own address and OCSP responder port (X-Road's 5577 by default)."""
    async with run_ocsp_responder(app, settings.address, settings.ocsp_responder_port) as bound:
        yield bound
