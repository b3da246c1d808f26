"""The OpenAPI 3.0 document of an adapter's REST operations, built from the same declarations it serves.

Pydantic writes JSON Schema 2020-12; OpenAPI 3.0 (the version X-Road's own tooling reads best) takes a
subset of JSON Schema draft 5 with ``nullable``. :func:`openapi30_schema` translates: ``anyOf: [X, null]``
becomes ``X`` with ``nullable: true``, ``const`` an ``enum`` of one, numeric ``exclusiveMinimum`` a
``minimum`` with ``exclusiveMinimum: true``, ``examples`` one ``example``; ``$defs`` move to
``components/schemas``. Every operation documents X-Road's error responses (``ErrorInfo``: ``type``,
``message``, ``detail``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

from pydantic import BaseModel, TypeAdapter

from adapters.sdk.declare import strip_annotated
from adapters.sdk.rest import RestOperation

__all__ = ["OPENAPI_VERSION", "openapi30_schema", "openapi_document"]

OPENAPI_VERSION: Final = "3.0.3"
_REF: Final = "#/components/schemas/{model}"
_DROPPED: Final = frozenset(
    {"$schema", "$id", "$comment", "prefixItems", "propertyNames", "unevaluatedProperties"}
)
ERROR_SCHEMA: Final = {
    "type": "object",
    "description": "X-Road's REST error; its type is also in the X-Road-Error response header.",
    "required": ["type", "message", "detail"],
    "properties": {
        "type": {"type": "string", "example": "client.bad_request"},
        "message": {"type": "string"},
        "detail": {"type": "string", "description": "The fault-detail id, also in the service's log."},
    },
}
_ERRORS: Final = {
    "400": "Invalid input (wrong types, missing or unknown fields, oversized values) or not called by X-Road",
    "500": "The service failed",
}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return {"allOf": [schema], "nullable": True}
    return {**schema, "nullable": True}


def openapi30_schema(schema: Any) -> Any:
    """``schema`` (pydantic's JSON Schema) as an OpenAPI 3.0 Schema Object."""
    if isinstance(schema, list):
        return [openapi30_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "examples":
            if isinstance(value, list) and value:
                out["example"] = value[0]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            out["type"] = kinds[0] if len(kinds) == 1 else "string"
            if "null" in value:
                out["nullable"] = True
        elif key in ("properties", "patternProperties"):
            out[key] = {name: openapi30_schema(s) for name, s in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = openapi30_schema(value) if not isinstance(value, bool) else value
        elif key in ("anyOf", "oneOf", "allOf"):
            options = [openapi30_schema(s) for s in value]
            kept = [s for s in options if s != {"type": "null"}]
            if len(kept) < len(options):  # X | None
                if len(kept) == 1:
                    out.update(_nullable(kept[0]))
                    continue
                out["nullable"] = True
            out[key] = kept
        else:
            out[key] = value
    if "$ref" in out and len(out) > 1:  # 3.0 ignores a $ref's siblings: keep them beside an allOf
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}, *out.get("allOf", [])]
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {}
    return out


def _schema(tp: Any, schemas: dict[str, Any], mode: Literal["validation", "serialization"]) -> dict[str, Any]:
    schema = TypeAdapter(tp).json_schema(ref_template=_REF, mode=mode, by_alias=True)
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = openapi30_schema(definition)
    bare = strip_annotated(tp)
    if isinstance(bare, type) and issubclass(bare, BaseModel):
        schemas[bare.__name__] = openapi30_schema(schema)
        return {"$ref": _REF.format(model=bare.__name__)}
    converted: dict[str, Any] = openapi30_schema(schema)
    return converted


def _parameters(model: type[BaseModel], where: str, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF, by_alias=True)
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = openapi30_schema(definition)
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = openapi30_schema(prop)
        param: dict[str, Any] = {"name": name, "in": where, "required": where == "path" or name in required}
        if "description" in prop:
            param["description"] = prop.pop("description")
        prop.pop("title", None)
        param["schema"] = prop
        out.append(param)
    return out


def _operation(op: RestOperation, schemas: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if op.description:
        doc["description"] = op.description
    if op.tag:
        doc["tags"] = [op.tag]
    params = _parameters(op.params.path_model, "path", schemas) + _parameters(
        op.params.query_model, "query", schemas
    )
    if params:
        doc["parameters"] = params
    if op.params.body_type is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(op.params.body_type, schemas, "validation")}},
        }
    success: dict[str, Any] = {"description": op.summary}
    status = op.status
    if op.params.raw_response:
        success["content"] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    elif op.params.response_type is not None:
        content = {"schema": _schema(op.params.response_type, schemas, "serialization")}
        success["content"] = {"application/json": content}
    elif status == 200:
        status = 204
    doc["responses"] = {
        str(status): success,
        **{code: {"$ref": f"#/components/responses/Error{code}"} for code in _ERRORS},
    }
    return doc


def openapi_document(
    operations: Iterable[RestOperation],
    *,
    title: str,
    version: str,
    description: str = "",
    server_url: str | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.0 document of ``operations``; ``server_url`` is where the adapter is reached (the
    security server's service address), ``/`` when not given."""
    schemas: dict[str, Any] = {"ErrorInfo": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schemas)
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "servers": [{"url": server_url or "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": {
                f"Error{code}": {
                    "description": text,
                    "headers": {
                        "X-Road-Error": {"description": "The fault code", "schema": {"type": "string"}}
                    },
                    "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorInfo")}}},
                }
                for code, text in _ERRORS.items()
            },
        },
    }
