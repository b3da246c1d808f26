"""aiohttp plumbing shared by every xroad-mn server: the X-Road error middleware and bounded body reading.

:func:`xroad_error_middleware` turns any :class:`~xroad_mn.errors.XRoadError` a handler raises into X-Road's
REST error (JSON ``{"type", "message", "detail"}`` or XML, with the ``X-Road-Error`` header), aiohttp's own
HTTP errors (404, 405, ...) into the same format, and anything unexpected into a 500
``server.internal_error`` whose traceback goes to the log, never to the client. A code without a
``client.``/``server.`` prefix gets ``client.`` for 4xx statuses and ``server.`` otherwise.

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
"""

from __future__ import annotations

from typing import Final

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.wire.faults import render_rest_error

__all__ = ["READ_CHUNK_BYTES", "read_body", "require_content_type", "xroad_error_middleware"]

log = structlog.get_logger(__name__)

READ_CHUNK_BYTES: Final = 64 * 1024
_PREFIXES: Final = ("client", "server", "signer")
_HTTP_STATUS_CODES: Final = {
    404: FaultCode.NOT_FOUND,
    405: FaultCode.INVALID_HTTP_METHOD,
    413: FaultCode.REQUEST_TOO_LARGE,
    415: FaultCode.INVALID_CONTENT_TYPE,
}


def _status(err: XRoadError) -> int:
    if err.http_status is not None:
        return err.http_status
    return 400 if err.code.startswith("client.") else 500


def _prefixed(err: XRoadError) -> XRoadError:
    if err.code.split(".", 1)[0] in _PREFIXES:
        return err
    return err.with_prefix("client" if 400 <= _status(err) < 500 else "server")


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
        err = _prefixed(e)
        status = _status(err)
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
        err = _prefixed(XRoadError(code, e.reason, http_status=e.status))
        log.info("request_refused", method=request.method, path=request.path, code=err.code, status=e.status)
        return _response(request, err)
    except Exception:
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
    body = bytearray()
    async for chunk in request.content.iter_chunked(READ_CHUNK_BYTES):
        body += chunk
        if len(body) > limit:
            raise too_large()
    return bytes(body)


def require_content_type(request: web.Request, *allowed: str) -> None:
    """Refuse (HTTP 400 ``invalid_content_type``) a request whose media type is not one of ``allowed``."""
    if request.content_type.lower() not in allowed:
        raise XRoadError(
            FaultCode.INVALID_CONTENT_TYPE,
            f"content type {request.content_type!r} is not accepted here; send {' or '.join(allowed)}",
            http_status=400,
        )
