"""aiohttp plumbing shared by every xroad-mn server: the X-Road error middleware, bounded body and JSON
reading, and the read timeouts of every listening socket.

:func:`xroad_error_middleware` turns any :class:`~xroad_mn.errors.XRoadError` a handler raises into X-Road's
REST error (JSON ``{"type", "message", "detail"}`` or XML, with the ``X-Road-Error`` header), aiohttp's own
HTTP errors (404, 405, ...) into the same format, and anything unexpected into a 500
``server.internal_error`` whose traceback goes to the log, never to the client. A code without a
``client.``/``server.`` prefix gets one by :func:`xroad_mn.wire.faults.as_sent` (the rule SOAP faults follow
too). A client that goes away mid-request is logged at info level, not as a crash.

Serve an application with :func:`app_runner` and :class:`TimedSite` so slow clients cannot hold sockets:
a request head (request line and headers) must arrive within ``header_read_seconds`` of the connection
opening or of the previous response (idle keep-alive connections close then too), and :func:`read_body`
waits at most ``body_read_seconds`` for each piece of a body (HTTP 408 ``timeout`` after that).

An application with several sockets (the registry's admin and public ports, a node's admin API and OCSP
responder) binds them first with :func:`listening` (port 0: a free port, so its settings can name the port
actually bound), then serves one application on each with :func:`serve`::

    >>> with listening(("127.0.0.1", 0), ("127.0.0.1", 0)) as (admin_sock, public_sock):  # doctest: +SKIP
    ...     admin = create_app(settings)
    ...     async with serve([Served(lambda: admin, admin_sock),
    ...                       Served(lambda: create_public_app(admin), public_sock, tls)], timeouts):
    ...         print(http_url("127.0.0.1", admin_sock.getsockname()[1]))

Example::

    >>> from aiohttp import web
    >>> from xroad_mn.errors import FaultCode, XRoadError
    >>> async def handler(request: web.Request) -> web.Response:
    ...     body = await read_body(request, limit=64 * 1024)
    ...     if not body:
    ...         raise XRoadError(FaultCode.MISSING_BODY, "empty request", http_status=400)
    ...     return web.Response(body=body)
    >>> app = web.Application(middlewares=[xroad_error_middleware])
    >>> _ = app.router.add_post("/echo", handler)
    >>> runner = app_runner(app, ServerTimeouts(header_read_seconds=10, body_read_seconds=30))
    >>> # await runner.setup(); await TimedSite(runner, sock, ServerTimeouts()).start()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import Field

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.settings import SettingsModel
from xroad_mn.wire.faults import as_sent, http_status_of, render_rest_error

__all__ = [
    "DEFAULT_BODY_READ_TIMEOUT_SECONDS",
    "DEFAULT_HEADER_READ_TIMEOUT_SECONDS",
    "LISTEN_BACKLOG",
    "MAX_JSON_DEPTH",
    "READ_CHUNK_BYTES",
    "TIMEOUTS_KEY",
    "Served",
    "ServerTimeoutSettings",
    "ServerTimeouts",
    "TimedSite",
    "app_runner",
    "http_url",
    "listen",
    "listening",
    "parse_json",
    "read_body",
    "read_json",
    "require_content_type",
    "serve",
    "xroad_error_middleware",
]

log = structlog.get_logger(__name__)

READ_CHUNK_BYTES: Final = 64 * 1024
MAX_JSON_DEPTH: Final = 64
"""Deepest nesting of arrays and objects a JSON request body may have (Python's parser recurses)."""
DEFAULT_HEADER_READ_TIMEOUT_SECONDS: Final = 10.0
"""How long a request head may take, from the connection opening or the previous response."""
DEFAULT_BODY_READ_TIMEOUT_SECONDS: Final = 30.0
"""How long :func:`read_body` waits for the next piece of a request body."""
LISTEN_BACKLOG: Final = 128
"""Connections a listening socket queues before they are accepted."""
_HTTP_STATUS_CODES: Final = {
    404: FaultCode.NOT_FOUND,
    405: FaultCode.INVALID_HTTP_METHOD,
    413: FaultCode.REQUEST_TOO_LARGE,
    415: FaultCode.INVALID_CONTENT_TYPE,
}


@dataclass(frozen=True, slots=True)
class ServerTimeouts:
    """Read timeouts of a served application (see the module docstring)."""

    header_read_seconds: float = DEFAULT_HEADER_READ_TIMEOUT_SECONDS
    body_read_seconds: float = DEFAULT_BODY_READ_TIMEOUT_SECONDS


TIMEOUTS_KEY: Final = web.AppKey("server_timeouts", ServerTimeouts)
"""The timeouts :func:`read_body` applies; set by :func:`app_runner` (defaults when absent)."""
_DEFAULT_TIMEOUTS: Final = ServerTimeouts()


class ServerTimeoutSettings(SettingsModel):
    """The read-timeout settings every server application's settings model inherits."""

    header_read_timeout_seconds: float = Field(default=DEFAULT_HEADER_READ_TIMEOUT_SECONDS, gt=0, le=3600)
    """Seconds a client has to send a request's line and headers (and an idle keep-alive connection
    lives)."""
    body_read_timeout_seconds: float = Field(default=DEFAULT_BODY_READ_TIMEOUT_SECONDS, gt=0, le=3600)
    """Seconds a client may pause while sending a request body."""

    def server_timeouts(self) -> ServerTimeouts:
        return ServerTimeouts(self.header_read_timeout_seconds, self.body_read_timeout_seconds)


def app_runner(app: web.Application, timeouts: ServerTimeouts) -> web.AppRunner:
    """An ``AppRunner`` for ``app`` that closes connections idle for ``timeouts.header_read_seconds``
    between requests (aiohttp's keep-alive timeout, which also bounds a later request's head) and makes
    :func:`read_body` wait at most ``timeouts.body_read_seconds`` for each piece of a body. Serve it with
    :class:`TimedSite`, which bounds the first request's head too."""
    app[TIMEOUTS_KEY] = timeouts
    return web.AppRunner(app, access_log=None, keepalive_timeout=timeouts.header_read_seconds)


_HEAD_END: Final = re.compile(rb"\r?\n\r?\n")


class _HeadDeadline(asyncio.Protocol):
    """Wraps aiohttp's protocol for one connection and closes the connection when the first request's head
    has not arrived within ``timeout`` seconds (a slowloris client sending a byte now and then).

    aiohttp waits for a first request without limit in older versions; after the first head its keep-alive
    timeout (``app_runner``) bounds the wait for each next head, so this watch ends at the first blank line.
    """

    def __init__(self, inner: asyncio.Protocol, timeout: float) -> None:
        self._inner = inner
        self._timeout = timeout
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._expire)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            window = self._tail + data
            if _HEAD_END.search(window):
                self._stop()
            else:
                self._tail = window[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._tail = b""

    def _expire(self) -> None:
        self._timer = None
        if self._transport is None or self._transport.is_closing():
            return
        peer = self._transport.get_extra_info("peername")
        log.info("client_too_slow", phase="request head", timeout=self._timeout, peer=str(peer))
        self._transport.close()


class TimedSite(web.BaseSite):
    """Serve an :func:`app_runner` runner on a listening socket, closing connections whose first request
    head is not complete within ``timeouts.header_read_seconds`` (TLS handshakes included)."""

    __slots__ = ("_sock", "_timeouts")

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        timeouts: ServerTimeouts,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = LISTEN_BACKLOG,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._sock = sock
        self._timeouts = timeouts

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return http_url(str(host), int(port), "https" if self._ssl_context else "http")

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        if server is None:
            raise RuntimeError("call runner.setup() before starting a site")
        timeout = self._timeouts.header_read_seconds

        def protocol() -> asyncio.Protocol:
            return _HeadDeadline(server(), timeout)

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            protocol,
            sock=self._sock,
            ssl=self._ssl_context,
            backlog=self._backlog,
            ssl_handshake_timeout=timeout if self._ssl_context is not None else None,
        )


def http_url(host: str, port: int, scheme: str = "http") -> str:
    """The base URL of ``host:port`` (an IPv6 address in brackets)."""
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A non-blocking socket listening on ``host:port`` (port 0: a free one); failure is ``io_error``.
    ``reuse_port`` lets the node's worker processes listen on the same port (``SO_REUSEPORT``: the kernel
    spreads connections over them)."""
    try:
        sock = socket.create_server((host, port), backlog=LISTEN_BACKLOG, reuse_port=reuse_port)
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    sock.setblocking(False)
    return sock


@contextlib.contextmanager
def listening(*addresses: tuple[str, int], reuse_port: bool = False) -> Iterator[list[socket.socket]]:
    """Sockets listening on ``addresses`` (``(host, port)`` each, in order), closed after the block; when
    one cannot be bound, those bound before it are closed."""
    sockets: list[socket.socket] = []
    try:
        for host, port in addresses:
            sockets.append(listen(host, port, reuse_port=reuse_port))
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


@dataclass(frozen=True)
class Served:
    """One application of :func:`serve` and its listening socket (TLS with ``ssl_context``)."""

    app: Callable[[], web.Application]
    """Builds the application once the applications before it are set up (one may share another's
    resources, which its ``cleanup_ctx`` opens)."""
    sock: socket.socket
    ssl_context: ssl.SSLContext | None = None


@contextlib.asynccontextmanager
async def serve(served: Sequence[Served], timeouts: ServerTimeouts) -> AsyncIterator[None]:
    """Serve each application on its socket in the block, with ``timeouts``: every runner is set up in
    order before any site starts, and all are cleaned up in reverse order afterwards."""
    async with contextlib.AsyncExitStack() as stack:
        runners: list[web.AppRunner] = []
        for one in served:
            runner = app_runner(one.app(), timeouts)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            runners.append(runner)
        for runner, one in zip(runners, served, strict=True):
            await TimedSite(runner, one.sock, timeouts, ssl_context=one.ssl_context).start()
        yield


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _response(request: web.Request, err: XRoadError) -> web.Response:
    rendered = render_rest_error(err, accept=request.headers.get("Accept"))
    headers = {**rendered.headers, "Content-Type": rendered.content_type}
    return web.Response(status=rendered.status, body=rendered.body, headers=headers)


@web.middleware
async def xroad_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error leaving ``handler`` as an X-Road REST error; never a traceback."""
    try:
        return await handler(request)
    except XRoadError as e:
        err = as_sent(e)
        status = http_status_of(err)
        if status >= 500:
            log.exception(
                "request_failed",
                method=request.method,
                path=request.path,
                code=err.code,
                detail=err.detail,
            )
        else:
            log.info(
                "request_refused",
                method=request.method,
                path=request.path,
                code=err.code,
                message=err.message,
            )
        return _response(request, err)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = _HTTP_STATUS_CODES.get(
            e.status, FaultCode.BAD_REQUEST if e.status < 500 else FaultCode.INTERNAL_ERROR
        )
        err = as_sent(XRoadError(code, e.reason, http_status=e.status))
        log.info("request_refused", method=request.method, path=request.path, code=err.code, status=e.status)
        return _response(request, err)
    except Exception as e:
        if isinstance(e, ConnectionError) and _client_gone(request):
            log.info("client_disconnected", method=request.method, path=request.path, reason=str(e))
            return web.Response(status=400)  # nobody reads it; aiohttp drops it quietly
        err = XRoadError(f"server.{FaultCode.INTERNAL_ERROR}", "Internal error", http_status=500)
        log.exception("request_crashed", method=request.method, path=request.path, detail=err.detail)
        return _response(request, err)


async def read_body(request: web.Request, limit: int) -> bytes:
    """Read the request body, refusing (HTTP 400 ``request_too_large``) one larger than ``limit`` bytes."""

    def too_large() -> XRoadError:
        return XRoadError(
            FaultCode.REQUEST_TOO_LARGE, f"request body is larger than {limit} bytes", http_status=400
        )

    if request.content_length is not None and request.content_length > limit:
        raise too_large()
    wait = request.app.get(TIMEOUTS_KEY, _DEFAULT_TIMEOUTS).body_read_seconds
    body = bytearray()
    while True:
        try:
            async with asyncio.timeout(wait):
                chunk = await request.content.read(READ_CHUNK_BYTES)
        except TimeoutError as e:
            log.info("client_too_slow", phase="request body", timeout=wait, path=request.path)
            raise XRoadError(
                FaultCode.TIMEOUT, f"no part of the request body arrived for {wait:g} s", http_status=408
            ) from e
        except ConnectionError as e:
            log.info("client_disconnected", method=request.method, path=request.path, reason=str(e))
            raise XRoadError(
                FaultCode.IO_ERROR,
                "the client closed the connection before sending the whole body",
                http_status=400,
            ) from e
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limit:
            raise too_large()


_JSON_NESTING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]')
"""Strings (skipped whole, so brackets inside them do not count) and the brackets that nest."""


def parse_json(data: bytes, *, what: str = "request body", max_depth: int = MAX_JSON_DEPTH) -> object:
    """Parse a JSON document from the network: ``invalid_body`` (HTTP 400) when it is not JSON or nests
    deeper than ``max_depth``, checked before parsing so the parser's recursion is never reached."""

    def refused(message: str) -> XRoadError:
        return XRoadError(FaultCode.INVALID_BODY, message, http_status=400)

    depth = 0
    for token in _JSON_NESTING.finditer(data):
        first = token.group()[:1]
        if first in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise refused(f"{what} nests deeper than {max_depth} levels")
        elif first in (b"]", b"}"):
            depth -= 1
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise refused(f"{what} is not JSON: {e}") from e


async def read_json(request: web.Request, limit: int, *, what: str = "request body") -> object:
    """Read a JSON request body (``application/json``, at most ``limit`` bytes) and parse it with
    :func:`parse_json`."""
    require_content_type(request, "application/json")
    return parse_json(await read_body(request, limit), what=what)


def require_content_type(request: web.Request, *allowed: str) -> None:
    """Refuse (HTTP 400 ``invalid_content_type``) a request whose media type is not one of ``allowed``."""
    if request.content_type.lower() not in allowed:
        raise XRoadError(
            FaultCode.INVALID_CONTENT_TYPE,
            f"content type {request.content_type!r} is not accepted here; send {' or '.join(allowed)}",
            http_status=400,
        )
