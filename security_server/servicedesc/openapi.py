"""OpenAPI 3 descriptions (3.0 and 3.1, JSON or YAML) read as X-Road's ``OpenApiParser`` reads them.

The service code is the administrator's; each operation (path and method) of ``paths`` becomes an endpoint
of that service, its ``{parameter}`` templates turned into ``*`` globs (X-Road's
``path.replaceAll("\\{[^/]*}", "*")``); the service URL is the first server's URL, resolved against the
document's own URL, unless the administrator gives one.

Example::

    >>> from security_server.servicedesc.openapi import parse_openapi
    >>> document = b'''
    ... openapi: 3.0.3
    ... info: {title: Civil registration, version: "1"}
    ... servers: [{url: /api/v1}]
    ... paths:
    ...   /citizens/{regnum}:
    ...     get: {responses: {"200": {description: OK}}}
    ... '''
    >>> parsed = parse_openapi(document, service_code="citizens", source_url="https://khur.internal/openapi.yaml")
    >>> parsed.services[0].url
    'https://khur.internal/api/v1'
    >>> [(e.method, e.path) for e in parsed.endpoints]
    [('GET', '/citizens/*')]

Hard bounds (refused with ``openapi_parsing_error``): :data:`MAX_DESCRIPTION_BYTES` of input, nesting
deeper than :data:`MAX_NESTING`, more than :data:`MAX_YAML_ALIASES` YAML aliases (SnakeYAML's default that
X-Road's Jackson reader applies; it stops alias bombs), more than :data:`MAX_ENDPOINTS` operations, and
duplicate keys in a mapping (which one would win is the parser's choice, not the author's). References
(``$ref``) to path items are followed inside the document only. A literal ``*`` or ``\\`` in a path is
escaped, so it matches only itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urljoin

import yaml

from security_server.db.models import DescriptionType
from security_server.db.records import NewEndpoint, NewService
from security_server.endpoints import validate_path_pattern
from security_server.servicedesc.model import (
    MAX_DESCRIPTION_BYTES,
    ParsedDescription,
    check_admin_service_code,
    check_service_url,
    description_error,
)
from xroad_mn.errors import FaultCode, XRoadError

__all__ = [
    "MAX_ENDPOINTS",
    "MAX_NESTING",
    "MAX_YAML_ALIASES",
    "OPERATION_METHODS",
    "parse_openapi",
    "path_glob",
]

MAX_NESTING: Final = 100
"""Deepest nesting of mappings and sequences read."""
MAX_YAML_ALIASES: Final = 50
"""Most YAML aliases (``*anchor``) in one document (SnakeYAML's ``maxAliasesForCollections``)."""
MAX_ENDPOINTS: Final = 5000
"""Most operations (path and method pairs) in one description."""
MAX_REF_HOPS: Final = 8
"""Longest chain of ``$ref`` from a path item to the path item it stands for."""
OPERATION_METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
"""The operations of an OpenAPI path item, in X-Road's (swagger-parser's ``readOperationsMap``) order."""

_VERSION: Final = re.compile(r"3\.[01](?:\.\d{1,4})?(?:-[0-9A-Za-z.-]{1,32})?")
_TEMPLATE: Final = re.compile(r"\{[^/]*\}")
_SERVER_VARIABLE: Final = re.compile(r"\{([^{}]*)\}")


def _parsing_error(message: str, **details: str | int | None) -> XRoadError:
    return description_error(FaultCode.OPENAPI_PARSING, message, **details)


# -- reading JSON or YAML ---------------------------------------------------------------------------------


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with X-Road's alias bound, a nesting bound and no duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise _parsing_error(f"the document has more than {MAX_YAML_ALIASES} YAML aliases")
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise _parsing_error(f"the document is nested deeper than {MAX_NESTING} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise _parsing_error(f"the key {key_node.value[:80]!r} appears twice in one mapping")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _parsing_error(f"the key {key[:80]!r} appears twice in one object")
        out[key] = value
    return out


def _depth_within(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def _load(document: bytes) -> object:
    if len(document) > MAX_DESCRIPTION_BYTES:
        raise _parsing_error(f"the document is larger than {MAX_DESCRIPTION_BYTES} bytes")
    try:
        text = document.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _parsing_error(f"the document is not UTF-8: {e}") from e
    try:
        if text.lstrip().startswith("{"):
            try:
                loaded: object = json.loads(text, object_pairs_hook=_no_duplicate_keys)
            except json.JSONDecodeError:
                pass  # a YAML flow mapping, perhaps
            else:
                if not _depth_within(loaded, MAX_NESTING):
                    raise _parsing_error(f"the document is nested deeper than {MAX_NESTING} levels")
                return loaded
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader with bounds)
    except XRoadError:
        raise
    except RecursionError as e:
        raise _parsing_error(f"the document is nested deeper than {MAX_NESTING} levels") from e
    except (yaml.YAMLError, ValueError, TypeError) as e:
        raise _parsing_error(f"the document is neither JSON nor YAML: {str(e)[:300]}") from e


# -- the OpenAPI object -----------------------------------------------------------------------------------


def _check_version(root: Mapping[Any, Any]) -> None:
    version = root.get("openapi")
    if version is None:
        if "swagger" in root:
            raise description_error(
                FaultCode.UNSUPPORTED_OPENAPI_VERSION,
                f"Swagger {str(root['swagger'])[:20]} is not supported: X-Road takes OpenAPI 3.0 and 3.1",
            )
        raise _parsing_error("the document has no 'openapi' version field: it is not an OpenAPI document")
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        shown = str(version)[:40]
        raise description_error(
            FaultCode.UNSUPPORTED_OPENAPI_VERSION,
            f"OpenAPI version {shown} not supported (3.0 and 3.1 are)",
            version=shown,
        )


def path_glob(path: str) -> str:
    """An OpenAPI path as an endpoint's path pattern: every ``{parameter}`` becomes ``*`` (X-Road's
    ``\\{[^/]*}`` replacement), a literal ``*`` or ``\\`` is escaped to match only itself."""
    literals = _TEMPLATE.split(path)
    escaped = [part.replace("\\", "\\\\").replace("*", "\\*") for part in literals]
    return "*".join(escaped)


def _resolve_ref(root: Mapping[Any, Any], item: object, path: str) -> object:
    hops = 0
    while isinstance(item, dict) and "$ref" in item:
        ref = item["$ref"]
        hops += 1
        if hops > MAX_REF_HOPS:
            raise _parsing_error(f"path {path[:80]!r}: more than {MAX_REF_HOPS} $ref hops", path=path[:200])
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise _parsing_error(
                f"path {path[:80]!r} refers to {str(ref)[:80]!r}: only references inside the document "
                "are followed",
                path=path[:200],
            )
        target: object = root
        for token in ref[2:].split("/"):
            key = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or key not in target:
                raise _parsing_error(
                    f"path {path[:80]!r}: $ref {ref[:80]!r} does not resolve", path=path[:200]
                )
            target = target[key]
        item = target
    return item


def _endpoints(root: Mapping[Any, Any], service_code: str) -> tuple[NewEndpoint, ...]:
    paths = root.get("paths")
    if paths is None:
        return ()
    if not isinstance(paths, dict):
        raise _parsing_error("'paths' is not an object")
    out: dict[tuple[str, str], NewEndpoint] = {}
    for path, raw_item in paths.items():
        if not isinstance(path, str) or not path.startswith("/"):
            raise _parsing_error(f"path {str(path)[:80]!r} does not start with '/'")
        item = _resolve_ref(root, raw_item, path)
        if item is None:
            continue
        if not isinstance(item, dict):
            raise _parsing_error(f"path {path[:80]!r} is not a path item object", path=path[:200])
        for method in OPERATION_METHODS:
            if method not in item:
                continue
            if not isinstance(item[method], dict):
                raise _parsing_error(f"{method} {path[:80]!r} is not an operation object", path=path[:200])
            try:
                pattern = validate_path_pattern(path_glob(path))
            except ValueError as e:
                raise _parsing_error(f"path {path[:80]!r}: {e}", path=path[:200]) from e
            out.setdefault((method, pattern), NewEndpoint(service_code, method.upper(), pattern))
            if len(out) > MAX_ENDPOINTS:
                raise _parsing_error(f"the document has more than {MAX_ENDPOINTS} operations")
    return tuple(out.values())


def _server_url(root: Mapping[Any, Any], source_url: str | None) -> str:
    servers = root.get("servers")
    variables: object = None
    if servers is None or servers == []:
        raw = "/"  # OpenAPI: no servers means one server at "/"
    elif (
        not isinstance(servers, list)
        or not isinstance(servers[0], dict)
        or not isinstance(servers[0].get("url"), str)
    ):
        raise _parsing_error("'servers' is not a list of server objects with a 'url'")
    else:
        raw = servers[0]["url"]
        variables = servers[0].get("variables")

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        variable = variables.get(name) if isinstance(variables, dict) else None
        default = variable.get("default") if isinstance(variable, dict) else None
        if not isinstance(default, str):
            raise _parsing_error(
                f"the server URL {raw[:120]!r} has variable {name[:40]!r} without a default: "
                "give the service URL",
            )
        return default

    url = _SERVER_VARIABLE.sub(substitute, raw)
    if source_url is not None:
        url = urljoin(source_url, url)
    elif "://" not in url:
        raise _parsing_error(
            f"the server URL {url[:120]!r} is relative and the document has no URL to resolve it: "
            "give the service URL"
        )
    return check_service_url(url)


def parse_openapi(
    document: bytes,
    *,
    service_code: str,
    source_url: str | None = None,
    service_url: str | None = None,
    strict: bool = True,
) -> ParsedDescription:
    """Read an OpenAPI 3 ``document`` (JSON or YAML) as the description of the service ``service_code``
    (checked by :func:`~security_server.servicedesc.model.check_admin_service_code` in ``strict`` mode).

    ``source_url`` is the URL it was read from (``None`` for an uploaded file, kept as the description's
    ``document``); ``service_url`` overrides the service URL taken from ``servers``. Raises ``XRoadError``:
    ``unsupported_openapi_version`` for anything but 3.0 and 3.1, ``openapi_parsing_error`` for a document
    that cannot be read or resolved, ``invalid_service_url``, or the code's own errors.
    """
    check_admin_service_code(service_code, strict=strict)
    if service_url is not None:
        check_service_url(service_url)
    root = _load(document)
    if not isinstance(root, dict):
        raise _parsing_error("the document is not an OpenAPI object")
    _check_version(root)
    endpoints = _endpoints(root, service_code)
    url = service_url if service_url is not None else _server_url(root, source_url)
    return ParsedDescription(
        DescriptionType.OPENAPI3,
        source_url,
        None if source_url is not None else document,
        (NewService(service_code, url=url),),
        endpoints,
    )
