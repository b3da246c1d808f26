"""The HTTP adapter: an existing REST API put behind X-Road, with path and header mapping, no code.

Configured by TOML::

    kind = "http"
    title = "Vehicle register"
    port = 8092
    upstream = "https://vehicles.internal/api/v2"

    [[routes]]
    path = "/vehicles/{plate}"            # what X-Road consumers call (after the service code)
    upstream_path = "/cars/{plate}"       # where the upstream API has it (default: the same path)
    methods = ["GET"]

    [headers]
    set = { Authorization = "Bearer s3cr3t" }          # sent to the upstream on every call
    forward = ["Accept", "Accept-Language", "Content-Type"]
    context = { client = "X-Consumer", user_id = "X-Operator", query_id = "X-Request-Ref" }
    response = ["Content-Type", "Cache-Control", "ETag"]

A call is handled in this order: 1. the X-Road context (``X-Road-Client`` mandatory: only a security server
calls the adapter), 2. the route (method and path template; each path value one segment, at most
``max_parameter_chars``), 3. the upstream URL (each value percent-encoded as one segment, so ``../`` or
``%2F`` in a value can never climb out of its segment; the raw query passed on), 4. the upstream headers
(only ``forward``-listed request headers, the ``context`` fields under the names given, then ``set``),
5. the body (at most ``max_body_bytes``), 6. the answer (status and body as the upstream gave them, only
``response``-listed headers). An upstream that cannot be reached is ``server.network_error``, one that does
not answer within ``timeout_seconds`` ``server.timeout`` (HTTP 504), both in X-Road's error format.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal
from urllib.parse import quote

import aiohttp
from aiohttp import web
from pydantic import Field, field_validator
from yarl import URL

from adapters.ready.upstream import SESSION_KEY, UpstreamSettings, calling_upstream, with_upstream_session
from adapters.sdk.context import XRoadContext, rest_context
from adapters.sdk.rest import PATH_PARAM
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.settings import SettingsModel
from xroad_mn.transport.client import read_limited, request_payload
from xroad_mn.transport.server import read_body, xroad_error_middleware

__all__ = ["HttpAdapterSettings", "HttpHeaders", "Route", "create_http_app"]


_TOKEN: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_NEVER_PASSED_BACK: Final = frozenset(
    {"content-encoding", "content-length", "transfer-encoding", "connection"}
)
"""The upstream's body is decoded here and sent afresh: its framing headers never cross."""
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _header_names(names: list[str]) -> list[str]:
    bad = [n for n in names if not _TOKEN.match(n)]
    if bad:
        raise ValueError(f"not HTTP header names: {bad}")
    return names


class HttpHeaders(SettingsModel):
    """Which headers cross the adapter, and which it adds."""

    set: dict[str, str] = Field(default_factory=dict)
    forward: list[str] = Field(default_factory=lambda: ["Accept", "Accept-Language", "Content-Type"])
    context: dict[
        Literal["client", "service", "query_id", "request_id", "user_id", "issue", "data_subject"], str
    ] = Field(default_factory=dict)
    response: list[str] = Field(default_factory=lambda: ["Content-Type", "Cache-Control", "ETag", "Location"])

    @field_validator("forward", "response")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return _header_names(value)

    @field_validator("set")
    @classmethod
    def _set(cls, value: dict[str, str]) -> dict[str, str]:
        """One value per header, whatever the case of its name: a later one (an environment override, whose
        names arrive in lower case) replaces an earlier one under the earlier spelling."""
        _header_names(list(value))
        if any(re.search("[\r\n\x00]", v) for v in value.values()):
            raise ValueError("a header value holds a line break or NUL")
        spelled: dict[str, str] = {}
        merged: dict[str, str] = {}
        for name, header_value in value.items():
            merged[spelled.setdefault(name.lower(), name)] = header_value
        return merged


class Route(SettingsModel):
    """One mapped path."""

    path: str
    upstream_path: str | None = None
    methods: list[str] = Field(default_factory=lambda: ["GET"], min_length=1)

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        upper = [m.upper() for m in value]
        bad = [m for m in upper if m not in _METHODS]
        if bad:
            raise ValueError(f"unknown methods: {bad}")
        return upper

    @field_validator("path", "upstream_path")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@{}]*)+", value):
            raise ValueError(f"{value!r} is not a path template (/vehicles/{{plate}})")
        return value

    def target(self) -> str:
        return self.upstream_path or self.path


class HttpAdapterSettings(UpstreamSettings):
    """An HTTP adapter's configuration file."""

    kind: Literal["http"] = "http"
    port: int = Field(default=8092, ge=0, le=65535)
    max_response_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    max_parameter_chars: int = Field(default=1024, ge=1, le=65536)
    headers: HttpHeaders = Field(default_factory=HttpHeaders)
    routes: list[Route] = Field(min_length=1)

    @field_validator("routes")
    @classmethod
    def _same_params(cls, routes: list[Route]) -> list[Route]:
        for route in routes:
            if set(PATH_PARAM.findall(route.target())) - set(PATH_PARAM.findall(route.path)):
                raise ValueError(f"{route.target()} uses a value {route.path} does not name")
        return routes


def _context_value(ctx: XRoadContext, name: str) -> str | None:
    value = getattr(ctx, name)
    return None if value is None else str(value)


def _handler(settings: HttpAdapterSettings, route: Route) -> Any:
    forwarded = {n.lower() for n in settings.headers.forward}
    passed_back = {n.lower() for n in settings.headers.response} - _NEVER_PASSED_BACK
    base = settings.upstream.rstrip("/")

    async def handle(request: web.Request) -> web.StreamResponse:
        # 1. context
        headers_in = [(k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in request.raw_headers]
        ctx = rest_context(headers_in)
        # 2-3. path values, each one encoded segment of the upstream path
        values = dict(request.match_info)
        for name, value in values.items():
            if len(value) > settings.max_parameter_chars:
                raise XRoadError(
                    FaultCode.BAD_REQUEST,
                    f"path parameter {name!r} is longer than {settings.max_parameter_chars} characters",
                    kind=ErrorKind.BAD_INPUT,
                )
        path = PATH_PARAM.sub(lambda m: quote(values[m.group(1)], safe=""), route.target())
        url = base + path + (f"?{request.query_string}" if request.query_string else "")
        # 4. headers
        out = [(k, v) for k, v in headers_in if k.lower() in forwarded]
        for field, header in settings.headers.context.items():
            context_value = _context_value(ctx, field)
            if context_value is not None:
                out.append((header, context_value))
        out += list(settings.headers.set.items())
        # 5. body
        body = await read_body(request, settings.max_body_bytes) if request.can_read_body else b""
        # 6. the upstream's answer
        async with (
            calling_upstream(settings, "the upstream API"),
            request.app[SESSION_KEY].request(
                request.method,
                URL(url, encoded=True),
                headers=out,
                data=request_payload(body) if body else None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=settings.timeout_seconds),
                ssl=settings.verify_tls,
                skip_auto_headers=("Content-Type",),
            ) as resp,
        ):
            data = await read_limited(resp.content, settings.max_response_bytes)
            if data is None:
                raise XRoadError(FaultCode.SERVICE_FAILED, "the upstream's answer is too large")
            answer_headers = [(k, v) for k, v in resp.headers.items() if k.lower() in passed_back]
            return web.Response(status=resp.status, body=data, headers=answer_headers)

    return handle


def create_http_app(settings: HttpAdapterSettings) -> web.Application:
    """The HTTP adapter's application; its client session opens and closes with it."""
    app = web.Application(middlewares=[xroad_error_middleware], client_max_size=settings.max_body_bytes + 1)
    for route in settings.routes:
        handler = _handler(settings, route)
        for method in route.methods:
            app.router.add_route(method, route.path, handler)

    return with_upstream_session(app)
