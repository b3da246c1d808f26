"""Route registration that writes the OpenAPI 3 document as it goes, so routes and document cannot drift.

Every admin API operation is declared once, as an :class:`Operation` (which
:meth:`xroad_mn.admin.api.AdminApi.operation` builds from its decorator's arguments): method, path, summary,
the roles that may call it, its audit event, and its request and response types (pydantic models, or types
such as ``list[Model]``). :meth:`ApiSpec.document` builds the OpenAPI document from those declarations
(schemas from pydantic), and :class:`xroad_mn.admin.api.AdminApi` mounts the same declarations as aiohttp
routes, validating bodies against the same models and serialising responses with them.

Example::

    >>> from pydantic import BaseModel
    >>> spec = ApiSpec("Node admin API", "1.0.0", prefix="/api/v1")
    >>> class MemberOut(BaseModel):
    ...     member_id: str
    >>> async def list_members(call):
    ...     ...
    >>> spec.add(Operation("GET", "/members", "List members", tag="members", operation_id="list_members",
    ...                    handler=list_members, status=200, response=list[MemberOut]))
    >>> sorted(spec.document()["paths"])
    ['/api/v1/members']
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Generic, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter

from xroad_mn.admin.apikeys import Role
from xroad_mn.errors import FaultCode, XRoadError

__all__ = [
    "ERROR_STATUSES",
    "OPENAPI_VERSION",
    "SECURITY_SCHEME",
    "ApiSpec",
    "Method",
    "Operation",
    "QueryParam",
]

OPENAPI_VERSION: Final = "3.1.0"
"""3.1: its schemas are JSON Schema 2020-12, which pydantic writes."""
SECURITY_SCHEME: Final = "ApiKeyAuth"
ERROR_STATUSES: Final[Mapping[int, str]] = {
    400: "Bad request: malformed JSON, invalid or oversized input",
    401: "No valid API key (Authorization: X-Road-ApiKey token=...)",
    403: "The API key's roles do not allow this operation",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Request body too large",
    429: "Too many requests (rate limit)",
}
_PATH_PARAM: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REF_TEMPLATE: Final = "#/components/schemas/{model}"

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]

_H = TypeVar("_H", bound=Callable[..., Awaitable[object]])
"""The handler type of an API (:mod:`xroad_mn.admin.api`: a call in, a typed reply out)."""


@dataclass(frozen=True)
class QueryParam:
    name: str
    description: str
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation(Generic[_H]):
    """One documented and routed admin API operation."""

    method: Method
    path: str
    """Relative to the spec's prefix, OpenAPI path template syntax (``/members/{member_id}``)."""
    summary: str
    tag: str
    operation_id: str
    handler: _H
    status: int
    """The success status: 200 with a response, 204 without, or e.g. 201."""
    roles: frozenset[Role] | None = None
    """Roles allowed to call the operation; None for a read open to the application's reading roles."""
    event: StrEnum | None = None
    """The audit event of a changing operation, or of an audited read (a member of the application's event
    enum)."""
    body: type[BaseModel] | None = None
    response: Any = None
    """The response's type (pydantic model or e.g. ``list[Model]``); None for no body (204)."""
    query: tuple[QueryParam, ...] = ()
    media_type: str = "application/json"
    """The success response's media type; non-JSON responses are returned by the handler as they are."""
    read: bool = False
    """A ``POST`` that changes nothing: a search whose criteria belong in a body, not in a URL (a data
    subject in clear)."""

    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)

    @property
    def changes(self) -> bool:
        return self.method != "GET" and not self.read


@dataclass
class ApiSpec(Generic[_H]):
    """The set of operations of one API (with handlers of type ``_H``), and its OpenAPI document."""

    title: str
    version: str
    prefix: str = ""
    description: str = ""
    operations: list[Operation[_H]] = field(default_factory=list)

    def __iter__(self) -> Iterator[Operation[_H]]:
        return iter(self.operations)

    def full_path(self, op: Operation[_H]) -> str:
        return self.prefix + op.path

    def add(self, op: Operation[_H]) -> None:
        """Declare ``op``: a change names its roles and audit event; a method and path are declared once."""
        if op.changes and (op.roles is None or op.event is None):
            raise XRoadError(
                FaultCode.INTERNAL_ERROR, f"{op.method} {op.path} needs roles and an audit event"
            )
        if op.read and op.method != "POST":
            raise XRoadError(
                FaultCode.INTERNAL_ERROR, f"{op.method} {op.path}: only a POST is declared a read"
            )
        if any(o.method == op.method and o.path == op.path for o in self.operations):
            raise XRoadError(FaultCode.INTERNAL_ERROR, f"{op.method} {op.path} is declared twice")
        self.operations.append(op)

    # -- document ---------------------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The OpenAPI 3 document of every declared operation."""
        schemas: dict[str, Any] = {
            "ErrorInfo": {
                "type": "object",
                "description": "X-Road REST error (also in the X-Road-Error response header).",
                "required": ["type", "message", "detail"],
                "properties": {
                    "type": {"type": "string", "example": "client.not_found"},
                    "message": {"type": "string"},
                    "detail": {"type": "string", "description": "Fault-detail id, also in the log."},
                },
            }
        }
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            paths.setdefault(self.full_path(op), {})[op.method.lower()] = self._operation_doc(op, schemas)
        return {
            "openapi": OPENAPI_VERSION,
            "info": {"title": self.title, "version": self.version, "description": self.description},
            "servers": [{"url": "/"}],
            "security": [{SECURITY_SCHEME: []}],
            "tags": [{"name": t} for t in sorted({op.tag for op in self.operations})],
            "paths": paths,
            "components": {
                "schemas": dict(sorted(schemas.items())),
                "securitySchemes": {
                    SECURITY_SCHEME: {
                        "type": "apiKey",
                        "in": "header",
                        "name": "Authorization",
                        "description": "`X-Road-ApiKey token=<api key>`",
                    }
                },
                "responses": {
                    str(status): {
                        "description": text,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorInfo"}}
                        },
                    }
                    for status, text in ERROR_STATUSES.items()
                },
            },
        }

    @staticmethod
    def _schema(tp: Any, schemas: dict[str, Any], mode: Literal["validation", "serialization"]) -> Any:
        schema = TypeAdapter(tp).json_schema(ref_template=_REF_TEMPLATE, mode=mode)
        schemas.update(schema.pop("$defs", {}))
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            schemas[tp.__name__] = schema
            return {"$ref": _REF_TEMPLATE.format(model=tp.__name__)}
        return schema

    def _operation_doc(self, op: Operation[_H], schemas: dict[str, Any]) -> dict[str, Any]:
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in op.path_params()
        ]
        for q in op.query:
            schema: dict[str, Any] = {"type": "string"}
            if q.enum:
                schema["enum"] = list(q.enum)
            params.append(
                {
                    "name": q.name,
                    "in": "query",
                    "required": False,
                    "description": q.description,
                    "schema": schema,
                }
            )
        doc: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
        }
        if op.roles is not None:
            doc["description"] = "Roles: " + ", ".join(sorted(r.value for r in op.roles))
        if params:
            doc["parameters"] = params
        if op.body is not None:
            doc["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": self._schema(op.body, schemas, "validation")}},
            }
        success: dict[str, Any] = {"description": op.summary}
        if op.response is not None:
            if op.media_type == "application/json":
                content_schema = self._schema(op.response, schemas, "serialization")
            else:
                content_schema = {"type": "string"}
            success["content"] = {op.media_type: {"schema": content_schema}}
        if op.changes:
            statuses = [400, 401, 403, 404, 409, 413, 429]
        elif op.body is not None:
            statuses = [400, 401, 403, 404, 413, 429]
        else:
            statuses = [401, 403, 404, 429]
        doc["responses"] = {
            str(op.status): success,
            **{str(s): {"$ref": f"#/components/responses/{s}"} for s in statuses},
        }
        return doc
