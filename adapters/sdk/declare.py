"""Typed handlers read into operations: which parameter is the context, a path or query value, the body.

A handler is an ``async def`` whose parameters say what it needs, by annotation and by name:

* ``XRoadContext`` — the X-Road context of the call (:mod:`adapters.sdk.context`);
* ``aiohttp.web.Request`` — the request itself (for application resources: ``request.app[KEY]``);
* a name in the path template (``/citizens/{regnum}``) — a path parameter;
* a pydantic model (REST ``POST``/``PUT``/``PATCH``, and every SOAP operation) — the body;
* anything else — a query parameter (a ``list[...]`` one may repeat).

``Annotated[int, Field(ge=1, le=100)]`` constrains a value as pydantic does; the return annotation is the
response type. Declaration mistakes are found when the operation is declared, not when it is called.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Union

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from adapters.sdk.context import XRoadContext
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError

__all__ = [
    "MAX_REPORTED_PROBLEMS",
    "Handler",
    "HandlerParams",
    "declaration_error",
    "explicit_params",
    "fill",
    "is_model",
    "read_params",
    "strip_annotated",
    "validation_error",
]

Handler = Callable[..., Awaitable[Any]]
MAX_REPORTED_PROBLEMS: Final = 10
"""Most validation problems named in one error message."""
_NO_BODY_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


def declaration_error(message: str) -> XRoadError:
    """A mistake in a service's declaration (found at start-up, never at a call)."""
    return XRoadError(FaultCode.INTERNAL_ERROR, message)


def strip_annotated(tp: Any) -> Any:
    """``tp`` without ``Annotated[...]`` metadata."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def is_model(tp: Any) -> bool:
    """True for a pydantic model class."""
    tp = strip_annotated(tp)
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def is_sequence(tp: Any) -> bool:
    """True for ``list[...]``, ``tuple[...]``, ``set[...]`` (possibly optional)."""
    tp = strip_annotated(tp)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(is_sequence(arg) for arg in typing.get_args(tp) if arg is not type(None))
    return origin in (list, tuple, set, frozenset)


def validation_error(err: ValidationError, where: str, *, code: str = FaultCode.BAD_REQUEST) -> XRoadError:
    """``err`` as the caller's fault (HTTP 400, ``client.bad_request``): each problem with its location
    (``query parameter 'limit'``) and pydantic's message; the rejected input itself is never echoed."""
    problems = []
    errors = err.errors(include_url=False, include_input=False, include_context=False)
    for problem in errors[:MAX_REPORTED_PROBLEMS]:
        loc = ".".join(str(p) for p in problem["loc"])
        problems.append(f"{where} {loc!r}: {problem['msg']}" if loc else f"{where}: {problem['msg']}")
    if len(errors) > MAX_REPORTED_PROBLEMS:
        problems.append(f"and {len(errors) - MAX_REPORTED_PROBLEMS} more")
    first = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
    return XRoadError(
        code,
        "; ".join(problems) or f"{where} is invalid",
        details={"location": f"{where} {first}".strip(), "problems": len(errors)},
        kind=ErrorKind.BAD_INPUT,
    )


@dataclass(frozen=True)
class HandlerParams:
    """How a handler's parameters are filled."""

    context: str | None
    request: str | None
    path_model: type[BaseModel]
    """Path parameters (every field aliased to its parameter name)."""
    query_model: type[BaseModel]
    """Query parameters; unknown ones are refused."""
    query_lists: frozenset[str]
    """Query parameters that take repeated values."""
    body: str | None
    body_type: Any
    response_type: Any
    """The return annotation: a type pydantic serialises, ``None`` (no body) or a web response class."""

    @property
    def raw_response(self) -> bool:
        tp = strip_annotated(self.response_type)
        return isinstance(tp, type) and issubclass(tp, web.StreamResponse)


def _params_model(name: str, fields: dict[str, tuple[Any, Any]]) -> type[BaseModel]:
    # Fields are named p0, p1, ... and aliased to the parameter's name, so that a parameter may be called
    # ``json`` or ``copy`` without shadowing BaseModel's attributes.
    spec: dict[str, Any] = {
        f"p{i}": (typing.Annotated[tp, Field(alias=alias)], default)
        for i, (alias, (tp, default)) in enumerate(fields.items())
    }
    model: type[BaseModel] = create_model(
        name, __config__=ConfigDict(extra="forbid", populate_by_name=False), **spec
    )
    return model


def read_params(
    handler: Handler,
    *,
    operation_id: str,
    path_names: frozenset[str],
    method: str,
    body_required: bool = False,
) -> HandlerParams:
    """Read ``handler``'s signature into :class:`HandlerParams` (``declaration_error`` for a mistake)."""
    if not inspect.iscoroutinefunction(handler):
        raise declaration_error(f"{operation_id}: the handler must be an async function")
    try:
        hints = typing.get_type_hints(handler, include_extras=True)
    except (NameError, TypeError) as e:
        raise declaration_error(f"{operation_id}: cannot read the handler's annotations: {e}") from e
    if "return" not in hints:
        raise declaration_error(f"{operation_id}: the handler needs a return annotation (its response type)")
    context = request = body = None
    body_type: Any = None
    path_fields: dict[str, tuple[Any, Any]] = {}
    query_fields: dict[str, tuple[Any, Any]] = {}
    for name, param in inspect.signature(handler).parameters.items():
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise declaration_error(
                f"{operation_id}: parameter {name!r} must be a plain or keyword parameter"
            )
        if name not in hints:
            raise declaration_error(f"{operation_id}: parameter {name!r} needs a type annotation")
        tp = hints[name]
        bare = strip_annotated(tp)
        default = ... if param.default is param.empty else param.default
        if bare is XRoadContext:
            context = name
        elif isinstance(bare, type) and issubclass(bare, web.Request):
            request = name
        elif name in path_names:
            if default is not ...:
                raise declaration_error(f"{operation_id}: path parameter {name!r} cannot have a default")
            path_fields[name] = (tp, default)
        elif is_model(tp):
            if method in _NO_BODY_METHODS:
                raise declaration_error(f"{operation_id}: a {method} request has no body for {name!r}")
            if body is not None:
                raise declaration_error(f"{operation_id}: two body parameters, {body!r} and {name!r}")
            body, body_type = name, tp
        else:
            if is_model(bare) or (is_sequence(tp) and any(is_model(a) for a in typing.get_args(bare))):
                raise declaration_error(f"{operation_id}: query parameter {name!r} cannot be a model")
            query_fields[name] = (tp, default)
    missing = path_names - set(path_fields)
    if missing:
        raise declaration_error(f"{operation_id}: the handler has no parameter for {sorted(missing)}")
    if body_required and body is None:
        raise declaration_error(f"{operation_id}: the handler needs a pydantic model parameter (the request)")
    return explicit_params(
        operation_id,
        path_fields=path_fields,
        query_fields=query_fields,
        response_type=hints["return"],
        body=body,
        body_type=body_type,
        context=context,
        request=request,
    )


def explicit_params(
    operation_id: str,
    *,
    path_fields: dict[str, tuple[Any, Any]],
    query_fields: dict[str, tuple[Any, Any]],
    response_type: Any,
    body: str | None = None,
    body_type: Any = None,
    context: str | None = None,
    request: str | None = None,
) -> HandlerParams:
    """:class:`HandlerParams` from declared fields (``name: (type, default)``, ``...`` for required), for a
    handler that takes them as keyword arguments (the ready adapters build operations from configuration)."""
    pascal = "".join(part[:1].upper() + part[1:] for part in operation_id.replace("-", "_").split("_"))
    try:
        path_model = _params_model(f"{pascal}Path", path_fields)
        query_model = _params_model(f"{pascal}Query", query_fields)
        if body_type is not None:
            TypeAdapter(body_type)
        if response_type is not None:
            TypeAdapter(response_type)
    except Exception as e:  # pydantic's schema errors: an annotation it cannot validate
        raise declaration_error(f"{operation_id}: a parameter type cannot be validated: {e}") from e
    return HandlerParams(
        context=context,
        request=request,
        path_model=path_model,
        query_model=query_model,
        query_lists=frozenset(name for name, (tp, _) in query_fields.items() if is_sequence(tp)),
        body=body,
        body_type=body_type,
        response_type=None if response_type is type(None) else response_type,
    )


def fill(model: BaseModel) -> dict[str, Any]:
    """The keyword arguments a validated path or query model gives (by parameter name)."""
    return {str(field.alias): getattr(model, name) for name, field in type(model).model_fields.items()}
