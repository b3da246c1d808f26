"""An adapter: a set of typed REST and SOAP operations, served as one aiohttp application.

Example::

    >>> from pydantic import BaseModel, Field
    >>> from typing import Annotated
    >>> adapter = Adapter("Civil registry", namespace="http://civil-registry.mn/xroad")
    >>> class Citizen(BaseModel):
    ...     regnum: str
    ...     name: str
    >>> @adapter.get("/citizens/{regnum}")
    ... async def citizen(ctx: XRoadContext, regnum: Annotated[str, Field(max_length=10)]) -> Citizen:
    ...     return Citizen(regnum=regnum, name="Батбаяр")
    >>> class GetCitizen(BaseModel):
    ...     regnum: str
    >>> @adapter.soap(version="v1")
    ... async def getCitizen(ctx: XRoadContext, request: GetCitizen) -> Citizen:
    ...     return Citizen(regnum=request.regnum, name="Батбаяр")
    >>> sorted(adapter.openapi()["paths"])
    ['/citizens/{regnum}']
    >>> app = create_app(adapter)  # serve with xroad_mn.transport.server.serve, or AppRunner in tests

The application serves each REST operation at its path, the SOAP operations at :attr:`Adapter.soap_path`
(``/soap``), the OpenAPI document at :attr:`Adapter.openapi_path` (``/openapi.json``) and the WSDL at
:attr:`Adapter.wsdl_path` (``/wsdl``). Errors are X-Road's: REST errors through the core's
:func:`~xroad_mn.transport.server.xroad_error_middleware`, SOAP faults by the SOAP endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final, TypeVar

from aiohttp import web

from adapters.sdk.context import XRoadContext
from adapters.sdk.declare import Handler, declaration_error
from adapters.sdk.openapi import openapi_document
from adapters.sdk.rest import RestOperation, rest_operation
from adapters.sdk.soap import (
    SoapOperation,
    response_name_clash,
    soap_endpoint,
    soap_operation,
    wsdl_document,
    wsdl_name,
)
from xroad_mn.transport.server import xroad_error_middleware
from xroad_mn.wire.soap import RESPONSE_SUFFIX

__all__ = [
    "ADAPTER_KEY",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_PARAMETER_CHARS",
    "Adapter",
    "XRoadContext",
    "base_url",
    "create_app",
]

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
"""Largest request body an adapter reads unless told otherwise."""
DEFAULT_MAX_PARAMETER_CHARS: Final = 1024
"""Longest path or query parameter value, before the declared types are checked."""

_F = TypeVar("_F", bound=Handler)


class Adapter:
    """The declared operations of one information system's X-Road services."""

    def __init__(
        self,
        title: str,
        version: str = "1.0.0",
        *,
        namespace: str | None = None,
        description: str = "",
        server_url: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_parameter_chars: int = DEFAULT_MAX_PARAMETER_CHARS,
        soap_path: str = "/soap",
        openapi_path: str = "/openapi.json",
        wsdl_path: str = "/wsdl",
    ) -> None:
        self.title = title
        self.version = version
        self.namespace = namespace
        """The target namespace of the SOAP operations (required once one is declared)."""
        self.description = description
        self.server_url = server_url
        """The adapter's base URL as the security server reaches it (the OpenAPI ``servers`` entry and the
        WSDL's address); when ``None``, taken from each request for the documents."""
        self.max_body_bytes = max_body_bytes
        self.max_parameter_chars = max_parameter_chars
        self.soap_path = soap_path
        self.openapi_path = openapi_path
        self.wsdl_path = wsdl_path
        self.rest_operations: list[RestOperation] = []
        self.soap_operations: dict[str, SoapOperation] = {}

    # -- declaring --------------------------------------------------------------------------------------

    def add_rest(self, op: RestOperation) -> None:
        """Declare a REST operation (a method and path once)."""
        if any(o.method == op.method and o.path == op.path for o in self.rest_operations):
            raise declaration_error(f"{op.method} {op.path} is declared twice")
        if any(o.operation_id == op.operation_id for o in self.rest_operations):
            raise declaration_error(f"operation id {op.operation_id!r} is declared twice")
        self.rest_operations.append(op)

    def rest(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        summary: str | None = None,
        operation_id: str | None = None,
        tag: str | None = None,
    ) -> Callable[[_F], _F]:
        """Decorate an async handler as the REST operation ``method path``."""

        def register(handler: _F) -> _F:
            self.add_rest(
                rest_operation(
                    method, path, handler, status=status, summary=summary, operation_id=operation_id, tag=tag
                )
            )
            return handler

        return register

    def get(self, path: str, **options: Any) -> Callable[[_F], _F]:
        return self.rest("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[_F], _F]:
        return self.rest("POST", path, **options)

    def put(self, path: str, **options: Any) -> Callable[[_F], _F]:
        return self.rest("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[_F], _F]:
        return self.rest("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[_F], _F]:
        return self.rest("DELETE", path, **options)

    def soap(self, name: str | None = None, *, version: str | None = None) -> Callable[[_F], _F]:
        """Decorate an async handler as a SOAP operation (its function name unless ``name`` is given)."""

        def register(handler: _F) -> _F:
            if self.namespace is None:
                raise declaration_error("a SOAP operation needs the adapter's target namespace")
            op = soap_operation(handler, name=name, version=version)
            if op.name in self.soap_operations:
                raise declaration_error(f"SOAP operation {op.name!r} is declared twice")
            clash = response_name_clash([*self.soap_operations, op.name])
            if clash is not None:
                of = clash.removesuffix(RESPONSE_SUFFIX)
                raise declaration_error(f"SOAP operation {clash!r} has the name of the response of {of!r}")
            self.soap_operations[op.name] = op
            return handler

        return register

    # -- documents --------------------------------------------------------------------------------------

    def openapi(self, server_url: str | None = None) -> dict[str, Any]:
        """The OpenAPI 3.0 document of the REST operations."""
        return openapi_document(
            self.rest_operations,
            title=self.title,
            version=self.version,
            description=self.description,
            server_url=server_url or self.server_url,
        )

    def wsdl(self, server_url: str | None = None) -> bytes:
        """The WSDL 1.1 document of the SOAP operations, its address ``server_url + soap_path``."""
        if self.namespace is None:
            raise declaration_error("the adapter declares no SOAP target namespace")
        base = (server_url or self.server_url or "http://localhost").rstrip("/")
        return wsdl_document(
            self.soap_operations.values(),
            name=wsdl_name(self.title),
            namespace=self.namespace,
            location=base + self.soap_path,
        )


ADAPTER_KEY: Final = web.AppKey("adapter", Adapter)
"""The adapter an application serves."""


def base_url(request: web.Request, server_url: str | None) -> str:
    """An adapter's base URL as the security server reaches it, for the documents it serves: the configured
    ``server_url``, else the scheme and host ``request`` (the security server fetching a document) came by."""
    return server_url or f"{request.scheme}://{request.host}"


def create_app(adapter: Adapter) -> web.Application:
    """The aiohttp application serving ``adapter``'s operations and documents."""
    app = web.Application(middlewares=[xroad_error_middleware], client_max_size=adapter.max_body_bytes + 1)
    app[ADAPTER_KEY] = adapter
    for op in adapter.rest_operations:
        app.router.add_route(
            op.method,
            op.path,
            op.route_handler(
                max_body_bytes=adapter.max_body_bytes, max_parameter_chars=adapter.max_parameter_chars
            ),
            name=op.operation_id,
        )

    async def openapi(request: web.Request) -> web.Response:
        document = adapter.openapi(base_url(request, adapter.server_url))
        return web.Response(
            text=json.dumps(document, ensure_ascii=False, indent=2), content_type="application/json"
        )

    if adapter.rest_operations:
        app.router.add_get(adapter.openapi_path, openapi)
    if adapter.soap_operations:
        assert adapter.namespace is not None

        async def wsdl(request: web.Request) -> web.Response:
            document = adapter.wsdl(base_url(request, adapter.server_url))
            return web.Response(body=document, content_type="text/xml")

        app.router.add_post(
            adapter.soap_path,
            soap_endpoint(adapter.soap_operations, adapter.namespace, max_body_bytes=adapter.max_body_bytes),
        )
        app.router.add_get(adapter.wsdl_path, wsdl)
    return app
