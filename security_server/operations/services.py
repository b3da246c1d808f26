"""Service descriptions, services and endpoints of the node's clients.

A REST description is one service at a base URL and needs no reading. An OpenAPI 3 or WSDL description is
read by a :class:`DescriptionReader`: it turns the document into the services (and, for OpenAPI 3, the
endpoints) the store records. :func:`read_description` is the reader of :mod:`security_server.servicedesc`
(what the admin API and the CLI use); without a reader those kinds are refused (``invalid_request``)::

    >>> await add_service_description(ctx, provider, DescriptionType.REST,
    ...                               url="https://civil-registry.internal/api", service_code="people")
    ... # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from security_server.db import (
    DescriptionType,
    Endpoint,
    NewEndpoint,
    NewService,
    Service,
    ServiceDescription,
)
from security_server.operations.context import NodeContext
from security_server.servicedesc import DescriptionLoader, parse_openapi, parse_rest
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import ClientId

__all__ = [
    "DescriptionReader",
    "ReadDescription",
    "add_endpoint",
    "add_service_description",
    "delete_endpoint",
    "delete_service_description",
    "list_endpoints",
    "list_service_descriptions",
    "read_description",
    "refresh_service_description",
    "set_service_description_disabled",
    "update_endpoint",
    "update_service",
]


@dataclass(frozen=True)
class ReadDescription:
    """What a description yields: its services and (OpenAPI 3) endpoints; ``document`` is the uploaded
    document to keep (``None`` for a description by URL)."""

    services: tuple[NewService, ...]
    endpoints: tuple[NewEndpoint, ...] = ()
    document: bytes | None = None


class DescriptionReader(Protocol):
    """Reads an OpenAPI 3 document (by ``url`` or uploaded ``document``) or a WSDL (by ``url``).

    ``service_code`` is the code an OpenAPI 3 description's one service gets (WSDL: one service per
    operation); ``strict`` is the node's ``strict_identifier_checks``, the mode service codes and versions
    are checked in. Errors are X-Road errors with HTTP 400 (a document that is not what it claims) or 502
    (a URL that does not answer)."""

    async def __call__(
        self,
        type: DescriptionType,
        *,
        url: str | None,
        document: bytes | None,
        service_code: str | None,
        session: aiohttp.ClientSession,
        strict: bool,
    ) -> ReadDescription: ...


def _invalid(message: str) -> XRoadError:
    return XRoadError(FaultCode.INVALID_REQUEST, message, http_status=400)


async def read_description(
    type: DescriptionType,
    *,
    url: str | None,
    document: bytes | None,
    service_code: str | None,
    session: aiohttp.ClientSession,
    strict: bool = True,
) -> ReadDescription:
    """The :class:`DescriptionReader` of :mod:`security_server.servicedesc`: a WSDL from its URL (its
    operations as services), an OpenAPI 3 document from its URL or as uploaded ``document`` (one service
    ``service_code`` with the document's endpoints)."""
    loader = DescriptionLoader(session, strict=strict)
    if type is DescriptionType.WSDL:
        if url is None or document is not None or service_code is not None:
            raise _invalid("a WSDL description is read from its URL; its services are its operations")
        parsed = await loader.wsdl(url)
    elif type is DescriptionType.OPENAPI3:
        if service_code is None:
            raise _invalid("an OpenAPI 3 description needs the code of its service")
        if url is not None and document is None:
            parsed = await loader.openapi(url, service_code=service_code)
        elif document is not None and url is None:
            parsed = await asyncio.to_thread(
                parse_openapi, document, service_code=service_code, strict=strict
            )
        else:
            raise _invalid("an OpenAPI 3 description is read from its URL or from a document, one of them")
    else:
        raise _invalid(f"a {type.value} description needs no reading")
    return ReadDescription(parsed.services, parsed.endpoints, parsed.document)


async def _read(
    ctx: NodeContext,
    type: DescriptionType,
    *,
    url: str | None,
    document: bytes | None,
    service_code: str | None,
    reader: DescriptionReader | None,
) -> ReadDescription:
    if type is DescriptionType.REST:
        if service_code is None or url is None or document is not None:
            raise _invalid("a REST description has a base URL and a service code")
        parsed = parse_rest(url, service_code=service_code, strict=ctx.settings.strict_identifier_checks)
        return ReadDescription(parsed.services)
    if reader is None:
        raise _invalid(f"this node cannot read {type.value} descriptions yet; add the service as REST")
    return await reader(
        type,
        url=url,
        document=document,
        service_code=service_code,
        session=ctx.session,
        strict=ctx.settings.strict_identifier_checks,
    )


async def list_service_descriptions(ctx: NodeContext, client: ClientId) -> tuple[ServiceDescription, ...]:
    return await ctx.store.list_service_descriptions(client)


async def add_service_description(
    ctx: NodeContext,
    client: ClientId,
    type: DescriptionType,
    *,
    url: str | None = None,
    document: bytes | None = None,
    service_code: str | None = None,
    reader: DescriptionReader | None = None,
) -> ServiceDescription:
    """Read the description (REST: nothing to read) and add it with its services and endpoints, at once
    (``conflict`` when the client has the URL or a service code already; nothing is added then)."""
    await ctx.store.get_client(client)  # not_found before anything is downloaded
    read = await _read(ctx, type, url=url, document=document, service_code=service_code, reader=reader)
    return await ctx.store.add_service_description(
        client,
        type,
        url=url,
        document=read.document if url is None else None,
        services=read.services,
        endpoints=read.endpoints,
    )


async def refresh_service_description(
    ctx: NodeContext, description_id: int, *, document: bytes | None = None, reader: DescriptionReader | None
) -> ServiceDescription:
    """Read a description again (its URL, or a newly uploaded ``document``) and apply what changed."""
    current = await ctx.store.get_service_description(description_id)
    if current.type is DescriptionType.REST:
        return current  # a base URL has nothing to re-read
    code = current.services[0].code if current.type is DescriptionType.OPENAPI3 else None
    read = await _read(
        ctx,
        current.type,
        url=current.url,
        document=document if current.url is None else None,
        service_code=code,
        reader=reader,
    )
    return await ctx.store.refresh_service_description(
        description_id, services=read.services, endpoints=read.endpoints, document=read.document
    )


async def delete_service_description(ctx: NodeContext, description_id: int) -> None:
    await ctx.store.delete_service_description(description_id)


async def set_service_description_disabled(
    ctx: NodeContext, description_id: int, disabled: bool, notice: str | None = None
) -> ServiceDescription:
    return await ctx.store.set_service_description_disabled(description_id, disabled, notice)


async def update_service(
    ctx: NodeContext,
    client: ClientId,
    code: str,
    version: str | None = None,
    *,
    url: str | None = None,
    timeout_seconds: int | None = None,
    ssl_authentication: bool | None = None,
    enabled: bool | None = None,
) -> Service:
    """Change a service's URL, timeout, provider TLS authentication or enabled flag."""
    return await ctx.store.update_service(
        client,
        code,
        version,
        url=url,
        timeout_seconds=timeout_seconds,
        ssl_authentication=ssl_authentication,
        enabled=enabled,
    )


async def list_endpoints(
    ctx: NodeContext, client: ClientId, service_code: str | None = None
) -> tuple[Endpoint, ...]:
    return await ctx.store.list_endpoints(client, service_code)


async def add_endpoint(
    ctx: NodeContext, client: ClientId, service_code: str, method: str, path: str
) -> Endpoint:
    return await ctx.store.add_endpoint(client, NewEndpoint(service_code, method, path))


async def update_endpoint(ctx: NodeContext, endpoint_id: int, method: str, path: str) -> Endpoint:
    return await ctx.store.update_endpoint(endpoint_id, method, path)


async def delete_endpoint(ctx: NodeContext, endpoint_id: int) -> None:
    await ctx.store.delete_endpoint(endpoint_id)


def services_of(descriptions: Sequence[ServiceDescription]) -> tuple[Service, ...]:
    return tuple(s for d in descriptions for s in d.services)
