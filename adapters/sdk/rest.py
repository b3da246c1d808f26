"""REST operations: a method, a path template and a typed handler, served as an aiohttp route.

Each call is checked before the handler runs, in this order: 1. the X-Road context (``X-Road-Client`` is
mandatory: only a security server calls the service), 2. path parameters, 3. query parameters (unknown or
repeated ones refused), 4. the body (JSON, at most the adapter's body limit, validated against the
declared model). Any failure is answered in X-Road's REST error format (``{"type", "message", "detail"}``
with the ``X-Road-Error`` header, HTTP 400, ``client.bad_request`` or the core's code). The handler's answer
is checked against its return annotation and serialised to JSON with the declared status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import structlog
from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from adapters.sdk.context import rest_context
from adapters.sdk.declare import (
    Handler,
    HandlerParams,
    declaration_error,
    fill,
    read_params,
    validation_error,
)
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.transport.server import parse_json, read_body, require_content_type

__all__ = ["PATH_PARAM", "RestOperation", "rest_operation"]

log = structlog.get_logger(__name__)

PATH_PARAM: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SEGMENT: Final = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|\{[A-Za-z_][A-Za-z0-9_]*\})*"
_PATH_TEMPLATE: Final = re.compile(rf"(?:/{_SEGMENT})+")
METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class RestOperation:
    """One declared REST operation."""

    method: str
    path: str
    """OpenAPI path template (``/citizens/{regnum}``), relative to the adapter's base."""
    handler: Handler
    operation_id: str
    summary: str
    description: str
    status: int
    params: HandlerParams
    tag: str | None = None

    def route_handler(self, *, max_body_bytes: int, max_parameter_chars: int) -> Handler:
        """The aiohttp handler that checks a call and runs :attr:`handler`."""
        params = self.params
        response = (
            None if params.response_type is None or params.raw_response else TypeAdapter(params.response_type)
        )
        body_adapter = None if params.body_type is None else TypeAdapter(params.body_type)

        async def handle(request: web.Request) -> web.StreamResponse:
            # 1. context
            headers = [(k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in request.raw_headers]
            context = rest_context(headers)
            kwargs: dict[str, Any] = {}
            if params.context:
                kwargs[params.context] = context
            if params.request:
                kwargs[params.request] = request
            # 2. path
            path_values = dict(request.match_info)
            _bounded(path_values.items(), "path parameter", max_parameter_chars)
            try:
                kwargs |= fill(params.path_model.model_validate(path_values))
            except ValidationError as e:
                raise validation_error(e, "path parameter") from e
            # 3. query
            query: dict[str, Any] = {}
            for name in request.query:
                values = request.query.getall(name)
                _bounded(((name, v) for v in values), "query parameter", max_parameter_chars)
                if name in params.query_lists:
                    query[name] = values
                elif len(values) > 1:
                    raise XRoadError(
                        FaultCode.BAD_REQUEST,
                        f"query parameter {name[:60]!r} is given {len(values)} times; it takes one value",
                        kind=ErrorKind.BAD_INPUT,
                    )
                else:
                    query[name] = values[0]
            try:
                kwargs |= fill(params.query_model.model_validate(query))
            except ValidationError as e:
                raise validation_error(e, "query parameter") from e
            # 4. body
            if params.body is not None and body_adapter is not None:
                require_content_type(request, "application/json")
                document = parse_json(await read_body(request, max_body_bytes))
                try:
                    kwargs[params.body] = body_adapter.validate_python(document)
                except ValidationError as e:
                    raise validation_error(e, "request body field") from e
            result = await self.handler(**kwargs)
            return self._answer(result, response)

        return handle

    def _answer(self, result: object, response: TypeAdapter[Any] | None) -> web.StreamResponse:
        if isinstance(result, web.StreamResponse):
            return result
        if response is None:
            if result is not None:
                raise XRoadError(
                    FaultCode.INTERNAL_ERROR, f"{self.operation_id} answered a body it declares none"
                )
            return web.Response(status=self.status if self.status != 200 else 204)
        try:
            value = response.validate_python(result, from_attributes=True)
        except ValidationError as e:
            log.warning("response_invalid", operation=self.operation_id, errors=e.error_count())
            raise XRoadError(
                FaultCode.INTERNAL_ERROR,
                f"the service's answer does not match the type {self.operation_id} declares",
            ) from e
        body = response.dump_json(value, by_alias=True)
        return web.Response(status=self.status, body=body, content_type="application/json", charset="utf-8")


def _bounded(values: Any, where: str, limit: int) -> None:
    for name, value in values:
        if len(value) > limit:
            raise XRoadError(
                FaultCode.BAD_REQUEST,
                f"{where} {str(name)[:60]!r} is longer than {limit} characters",
                kind=ErrorKind.BAD_INPUT,
            )


def rest_operation(
    method: str,
    path: str,
    handler: Handler,
    *,
    status: int = 200,
    summary: str | None = None,
    operation_id: str | None = None,
    tag: str | None = None,
    params: HandlerParams | None = None,
) -> RestOperation:
    """Declare ``handler`` as ``method path`` (see :mod:`adapters.sdk.declare` for its parameters); with
    ``params``, the handler takes those instead of what its signature says."""
    method = method.upper()
    op_id = operation_id or handler.__name__
    if method not in METHODS:
        raise declaration_error(f"{op_id}: method {method!r} is not one of {sorted(METHODS)}")
    if not _PATH_TEMPLATE.fullmatch(path):
        raise declaration_error(f"{op_id}: {path!r} is not a path template (/citizens/{{regnum}})")
    names = PATH_PARAM.findall(path)
    if len(set(names)) != len(names):
        raise declaration_error(f"{op_id}: {path!r} names a path parameter twice")
    if not 200 <= status <= 299:
        raise declaration_error(f"{op_id}: the success status {status} is not 2xx")
    if params is None:
        params = read_params(handler, operation_id=op_id, path_names=frozenset(names), method=method)
    elif set(names) != {str(f.alias) for f in params.path_model.model_fields.values()}:
        raise declaration_error(f"{op_id}: the path parameters of {path!r} are not those declared")
    doc = (handler.__doc__ or "").strip()
    first, _, rest = doc.partition("\n")
    return RestOperation(
        method=method,
        path=path,
        handler=handler,
        operation_id=op_id,
        summary=summary or first.strip() or op_id,
        description=rest.strip(),
        status=status,
        params=params,
        tag=tag,
    )
