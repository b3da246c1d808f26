"""An application's admin REST API: operations declared once, mounted with X-Road's request pipeline.

An application builds one :class:`AdminApi` over its own :class:`Call` subclass (which reads the app's
resources from ``request.app``), declares each operation with :meth:`AdminApi.operation` and mounts them
with :meth:`AdminApi.mount`, which also serves ``GET <prefix>/openapi.json`` (:meth:`AdminApi.document`).
Each call goes through the same steps, in this order:

1. authentication: ``Authorization: X-Road-ApiKey token=<key>``, checked against the hashed keys of the
   app's :class:`~xroad_mn.admin.apikeys.ApiKeyRing` (401 ``unauthorized``, written to the audit log as
   ``<authentication event> failed``);
2. rate limit per API key (per remote address without one), :class:`~xroad_mn.admin.ratelimit.RateLimiter`
   (429);
3. authorisation: each changing operation names the roles allowed; a read may name its roles too (a
   read of sensitive data, such as the message log), else it is open to the app's *reading roles* (every
   role of the app unless the app names fewer) (403);
4. the body: at most ``max_body_bytes`` (413), JSON valid against the operation's model (400
   ``invalid_body``);
5. the operation;
6. for an operation with an audit event (every change; a read that names one): an audit record (``event``,
   ``user`` = API key id, ``ipaddress``, ``auth``, ``url``, ``data``); for a change, the app's change
   callback. A refused call (steps 3–5) is audited as ``<event> failed`` with the reason, as X-Road does.
7. the reply: JSON of the operation's response type, bytes of another media type as they are, or a
   :class:`FileBody` streamed from its file in :data:`FILE_CHUNK_BYTES` chunks (a large export).

The app holds its resources under :data:`AUDIT_KEY`, :data:`API_KEYS_KEY` and :data:`LIMITER_KEY`. Errors
are X-Road REST errors from :func:`xroad_mn.transport.server.xroad_error_middleware`, which the app installs.
See :mod:`xroad_mn.admin` for an example.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any, Final, Generic, TypeVar, overload

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from xroad_mn.admin.apikeys import ApiKey, ApiKeyRing, Role
from xroad_mn.admin.audit import API_KEY_AUTH, AuditData, AuditLog, AuditOrigin
from xroad_mn.admin.openapi import ApiSpec, Method, Operation, QueryParam
from xroad_mn.admin.ratelimit import RateLimiter
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.transport.server import read_body
from xroad_mn.wire.faults import as_sent

__all__ = [
    "API_KEYS_KEY",
    "API_PREFIX",
    "AUDIT_KEY",
    "AUTH_SCHEME",
    "FILE_CHUNK_BYTES",
    "LIMITER_KEY",
    "MAX_AUDITED_PATH_CHARS",
    "OPENAPI_DOCUMENT",
    "AdminApi",
    "Call",
    "FileBody",
    "Handler",
    "Reply",
]

API_PREFIX: Final = "/api/v1"
OPENAPI_DOCUMENT: Final = "/openapi.json"
"""Where, under the API's prefix, the OpenAPI document is served."""
AUTH_SCHEME: Final = "X-Road-ApiKey"
MAX_AUDITED_PATH_CHARS: Final = 256
"""A request's path is cut to this length in the audit log (a path may be ~8 KB)."""
FILE_CHUNK_BYTES: Final = 256 * 1024
"""A :class:`FileBody` is read and sent this much at a time."""

AUDIT_KEY: Final = web.AppKey("admin_audit", AuditLog)
API_KEYS_KEY: Final = web.AppKey("admin_api_keys", ApiKeyRing)
LIMITER_KEY: Final = web.AppKey("admin_rate_limiter", RateLimiter)

_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


@dataclass(frozen=True)
class Call:
    """What a handler gets: the request, the caller's key and the validated body. An application subclasses
    it with properties that read its resources from ``request.app``."""

    request: web.Request
    key: ApiKey
    body: BaseModel | None

    @property
    def user(self) -> str:
        return self.key.key_id

    def param(self, name: str) -> str:
        return self.request.match_info[name]

    def query(self, name: str) -> str | None:
        return self.request.query.get(name)

    def typed_body(self, model: type[_M]) -> _M:
        if not isinstance(self.body, model):
            raise XRoadError(FaultCode.INTERNAL_ERROR, f"handler expected a {model.__name__} body")
        return self.body


_C = TypeVar("_C", bound=Call)


@dataclass(frozen=True)
class Reply(Generic[_T_co]):
    """A handler's result: the value (serialised with the operation's declared response type; the body
    itself for a non-JSON media type), its audit data, and extra response headers."""

    value: _T_co
    audit: AuditData = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FileBody:
    """A reply body too large to hold in memory (an operation of a non-JSON media type replies one): an open
    binary file, positioned at its start, of ``size`` bytes. The pipeline streams it and closes it."""

    file: IO[bytes]
    size: int


Handler = Callable[[_C], Awaitable[Reply[_T]]]
"""An operation's handler: the app's call in; its reply's type is the operation's declared response type."""


class AdminApi(Generic[_C]):
    """The operations of one application's admin API, over its call type ``_C``, with the app's roles.

    ``roles`` are the roles that exist for the application; an operation may name only them.
    ``read_roles`` (default: all of ``roles``) may call every read that names no roles of its own: roles
    made for one kind of data (the message log's auditors) need not read the rest.
    ``authentication_event`` is the app's audit event of API key authentication (a refused key is audited
    as ``<event> failed``).
    """

    def __init__(
        self,
        call: type[_C],
        *,
        title: str,
        version: str,
        roles: frozenset[Role],
        authentication_event: StrEnum,
        read_roles: frozenset[Role] | None = None,
        prefix: str = API_PREFIX,
        description: str = "",
    ) -> None:
        if not roles:
            raise XRoadError(FaultCode.INTERNAL_ERROR, f"{title} declares no roles")
        if read_roles is not None and not (read_roles and read_roles <= roles):
            raise XRoadError(
                FaultCode.INTERNAL_ERROR, f"{title}: the reading roles must be some of its roles"
            )
        self.call_type = call
        self.roles = roles
        self.read_roles = read_roles if read_roles is not None else roles
        self.authentication_event = authentication_event
        self.spec = ApiSpec[Handler[_C, object]](title, version, prefix=prefix, description=description)

    @property
    def openapi_path(self) -> str:
        return self.spec.prefix + OPENAPI_DOCUMENT

    def document(self) -> dict[str, Any]:
        """The OpenAPI 3 document of every declared operation."""
        return self.spec.document()

    @overload
    def operation(
        self,
        method: Method,
        path: str,
        summary: str,
        *,
        tag: str,
        roles: frozenset[Role] | None = None,
        event: StrEnum | None = None,
        body: type[BaseModel] | None = None,
        response: type[_T],
        status: int | None = None,
        query: Sequence[QueryParam] = (),
        media_type: str = "application/json",
        read: bool = False,
    ) -> Callable[[Handler[_C, _T]], Handler[_C, _T]]: ...

    @overload
    def operation(
        self,
        method: Method,
        path: str,
        summary: str,
        *,
        tag: str,
        roles: frozenset[Role] | None = None,
        event: StrEnum | None = None,
        body: type[BaseModel] | None = None,
        response: None = None,
        status: int | None = None,
        query: Sequence[QueryParam] = (),
        read: bool = False,
    ) -> Callable[[Handler[_C, None]], Handler[_C, None]]: ...

    def operation(
        self,
        method: Method,
        path: str,
        summary: str,
        *,
        tag: str,
        roles: frozenset[Role] | None = None,
        event: StrEnum | None = None,
        body: type[BaseModel] | None = None,
        response: type[_T] | None = None,
        status: int | None = None,
        query: Sequence[QueryParam] = (),
        media_type: str = "application/json",
        read: bool = False,
    ) -> Callable[[Handler[_C, _T]], Handler[_C, _T]]:
        """Declare an operation (see :class:`~xroad_mn.admin.openapi.Operation`); mypy checks that the
        handler replies with ``response``'s type (``Reply[None]`` without a response body). Changing
        operations name the roles allowed (of the app's) and their audit event. A read is open to the app's
        reading roles unless it names its own ``roles``; with an ``event`` it is audited too.
        ``read`` declares a ``POST`` that changes nothing (criteria that must not travel in a URL)."""
        if roles is not None and not roles <= self.roles:
            foreign = ", ".join(sorted(roles - self.roles))
            raise XRoadError(
                FaultCode.INTERNAL_ERROR, f"{method} {path}: no such role in this API: {foreign}"
            )

        def register(handler: Handler[_C, _T]) -> Handler[_C, _T]:
            op = Operation[Handler[_C, object]](
                method=method,
                path=path,
                summary=summary,
                tag=tag,
                operation_id=handler.__name__,
                handler=handler,
                status=status if status is not None else (200 if response is not None else 204),
                roles=roles,
                event=event,
                body=body,
                response=response,
                query=tuple(query),
                media_type=media_type,
                read=read,
            )
            self.spec.add(op)
            return handler

        return register

    def mount(
        self,
        app: web.Application,
        *,
        max_body_bytes: int,
        on_change: Callable[[web.Application], None] | None = None,
    ) -> None:
        """Route every declared operation, through the pipeline, and ``GET <prefix>/openapi.json`` on
        ``app``, which holds :data:`AUDIT_KEY`, :data:`API_KEYS_KEY` and :data:`LIMITER_KEY`. ``on_change``
        runs after every audited change."""
        document = self.document()

        async def openapi(request: web.Request) -> web.Response:
            return web.json_response(document)

        app.router.add_get(self.openapi_path, openapi)
        for op in self.spec:
            handle = _Pipeline(self, op, max_body_bytes, on_change).handle
            app.router.add_route(op.method, self.spec.full_path(op), handle, name=op.operation_id)


# ---------------------------------------------------------------------------------------------------------
# The pipeline: authentication → rate limit → authorisation → body → operation → audit


def _token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, rest = header.strip().partition(" ")
    name, sep, token = rest.strip().partition("=")
    if scheme.lower() != AUTH_SCHEME.lower() or not sep or name.strip().lower() != "token":
        return None
    return token.strip() or None


def _origin(request: web.Request) -> AuditOrigin:
    return AuditOrigin(ipaddress=request.remote, auth=API_KEY_AUTH, url=request.path[:MAX_AUDITED_PATH_CHARS])


_BAD_INPUT_CODES: Final = frozenset(
    {
        FaultCode.INVALID_CLIENT_IDENTIFIER,
        FaultCode.INVALID_SECURITY_SERVER,
        FaultCode.INVALID_IDENTIFIER,
        FaultCode.INVALID_REQUEST,
        FaultCode.INVALID_BODY,
    }
)
"""Codes of errors caused by the caller's input: HTTP 400 when the raiser named no status."""


def _with_status(err: XRoadError) -> XRoadError:
    if err.http_status is not None or err.code not in _BAD_INPUT_CODES:
        return err
    return XRoadError(err.code, err.message, details=err.details, detail=err.detail, http_status=400)


def _as_sent(err: XRoadError) -> XRoadError:
    """The error with the prefix the client sees (what the audit log records)."""
    return as_sent(err)


@dataclass(frozen=True)
class _Pipeline(Generic[_C]):
    """The route of one operation."""

    api: AdminApi[_C]
    op: Operation[Handler[_C, object]]
    max_body_bytes: int
    on_change: Callable[[web.Application], None] | None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        app, op = request.app, self.op
        origin = _origin(request)
        # 1-2. Authentication and the rate limit.
        key = await self._authenticate(request, origin)
        audit_data: AuditData = {"path": origin.url}
        try:
            # 3. Authorisation: the operation's roles, else (a read) the app's reading roles.
            self._authorize(key)
            # 4-5. The body and the operation.
            body = await self._read_body(request)
            reply = await op.handler(self.api.call_type(request, key, body))
        except XRoadError as e:
            err = _with_status(e)
            if op.event is not None:
                await app[AUDIT_KEY].record_failure(
                    op.event, key.key_id, audit_data, _as_sent(err), origin=origin
                )
            if err is e:
                raise
            raise err from e
        try:
            # 6. Audit and the change callback.
            if op.event is not None:
                await app[AUDIT_KEY].record(
                    op.event, key.key_id, {**audit_data, **reply.audit}, origin=origin
                )
                if op.changes and self.on_change is not None:
                    self.on_change(app)
            # 7. The reply.
            return await self._respond(request, reply)
        finally:
            if isinstance(reply.value, FileBody):
                reply.value.file.close()

    async def _authenticate(self, request: web.Request, origin: AuditOrigin) -> ApiKey:
        app = request.app
        token = _token(request)
        key = await app[API_KEYS_KEY].authenticate(token) if token is not None else None
        # 2. The rate limit applies per key, and per remote address to requests without a valid key.
        caller = f"key:{key.key_id}" if key is not None else f"addr:{request.remote}"
        wait = app[LIMITER_KEY].check(caller)
        if wait is not None:
            raise XRoadError(
                FaultCode.RATE_LIMIT_EXCEEDED,
                f"too many requests; retry in {wait:.1f} s",
                details={"retry_after": round(wait, 3)},
                http_status=429,
            )
        if key is None:
            err = XRoadError(
                FaultCode.UNAUTHORIZED,
                f"a valid API key is required (Authorization: {AUTH_SCHEME} token=...)",
                http_status=401,
            )
            data = {"method": self.op.method, "path": origin.url, "remote": request.remote}
            await app[AUDIT_KEY].record_failure(
                self.api.authentication_event, None, data, _as_sent(err), origin=origin
            )
            raise err
        return key

    def _authorize(self, key: ApiKey) -> None:
        op = self.op
        allowed = op.roles if op.roles is not None else self.api.read_roles
        if not key.roles & allowed:
            raise XRoadError(
                FaultCode.FORBIDDEN,
                f"the API key's roles may not {op.summary[0].lower()}{op.summary[1:]}",
                details={"roles": ",".join(sorted(r.value for r in key.roles))},
                http_status=403,
            )

    async def _read_body(self, request: web.Request) -> BaseModel | None:
        model = self.op.body
        if model is None:
            return None
        try:
            raw = await read_body(request, self.max_body_bytes)
        except XRoadError as e:
            if not e.has_code(FaultCode.REQUEST_TOO_LARGE):
                raise  # a body too slow (408) or cut off stays what it is
            raise XRoadError(e.code, e.message, http_status=413) from e
        if request.content_type not in ("application/json", "application/octet-stream") and raw:
            raise XRoadError(
                FaultCode.INVALID_CONTENT_TYPE, "send the request body as application/json", http_status=415
            )
        try:
            return model.model_validate_json(raw or b"{}")
        except ValidationError as e:
            errors = e.errors(include_url=False, include_input=False)
            if any(err["type"] == "json_invalid" for err in errors):
                message = "request body is not valid JSON"
            else:
                message = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in errors[:10]
                )
            raise XRoadError(FaultCode.INVALID_BODY, message, http_status=400) from e

    async def _respond(self, request: web.Request, reply: Reply[object]) -> web.StreamResponse:
        op = self.op
        if op.response is None:
            return web.Response(status=op.status, headers=reply.headers)
        if op.media_type != "application/json" and isinstance(reply.value, FileBody):
            return await self._stream(request, reply.value, reply.headers)
        if op.media_type != "application/json":
            if not isinstance(reply.value, bytes):
                raise XRoadError(
                    FaultCode.INTERNAL_ERROR, f"{op.operation_id} replied no {op.media_type} body"
                )
            return web.Response(
                status=op.status, body=reply.value, content_type=op.media_type, headers=reply.headers
            )
        data = TypeAdapter(op.response).dump_json(reply.value)
        return web.Response(
            status=op.status, body=data, content_type="application/json", headers=reply.headers
        )

    async def _stream(
        self, request: web.Request, body: FileBody, headers: Mapping[str, str]
    ) -> web.StreamResponse:
        """Send ``body``'s file in chunks, each read in a worker thread."""
        response = web.StreamResponse(status=self.op.status, headers=headers)
        response.content_type = self.op.media_type
        response.content_length = body.size
        await response.prepare(request)
        while chunk := await asyncio.to_thread(body.file.read, FILE_CHUNK_BYTES):
            await response.write(chunk)
        await response.write_eof()
        return response
