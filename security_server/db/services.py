"""Service descriptions, their services, and the endpoints of a client's services.

A description is a WSDL (by URL, one service per operation), an OpenAPI 3 document (by URL or uploaded,
one service, its operations as generated endpoints) or a REST base URL (one service). Every service code
gets a generated base endpoint ``* **``, the target of service-wide access rights, as in X-Road.

Example::

    >>> async def publish(store: ServiceStore, client: SubsystemId) -> None:
    ...     await store.add_service_description(
    ...         client,
    ...         DescriptionType.OPENAPI3,
    ...         url="https://civil-registry.internal/openapi.json",
    ...         services=[NewService("people", url="https://civil-registry.internal/api")],
    ...         endpoints=[NewEndpoint("people", "GET", "/people/{id}")],
    ...     )
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from security_server.db.base import StoreBase, client_of
from security_server.db.checks import (
    check_code,
    check_method,
    check_path,
    check_seconds,
    check_text,
    check_url,
    conflict,
    invalid,
    not_found,
)
from security_server.db.models import (
    ClientRow,
    DescriptionType,
    EndpointRow,
    ServiceDescriptionRow,
    ServiceRow,
)
from security_server.db.records import Endpoint, NewEndpoint, NewService, Service, ServiceDescription
from security_server.endpoints import ANY_METHOD, ANY_PATH, is_base_endpoint
from xroad_mn.identifiers import ClientId, format_id

__all__ = ["MAX_DOCUMENT_BYTES", "ServiceStore"]

MAX_DOCUMENT_BYTES: Final = 10 * 1024 * 1024
"""Largest uploaded OpenAPI document."""
_SINGLE_SERVICE: Final = frozenset({DescriptionType.REST, DescriptionType.OPENAPI3})


def _service(row: ServiceRow) -> Service:
    return Service(
        code=row.service_code,
        version=row.service_version,
        url=row.url,
        timeout_seconds=row.timeout_seconds,
        ssl_authentication=row.ssl_authentication,
        enabled=row.enabled,
        title=row.title,
        description_id=row.description_id,
    )


def _endpoint(row: EndpointRow, client: ClientId) -> Endpoint:
    return Endpoint(row.id, client, row.service_code, row.method, row.path, row.generated)


def _version_is(version: str | None) -> ColumnElement[bool]:
    if version is None:
        return ServiceRow.service_version.is_(None)
    return ServiceRow.service_version == version


def _check_service(service: NewService, strict: bool) -> NewService:
    check_code("serviceCode", service.code, strict=strict)
    if service.version is not None:
        check_code("serviceVersion", service.version, strict=strict)
    if service.url is not None:
        check_url("service URL", service.url)
    if service.title is not None:
        check_text("service title", service.title)
    check_seconds("timeout_seconds", service.timeout_seconds)
    return service


def _check_description(
    type: DescriptionType,
    url: str | None,
    document: bytes | None,
    services: Sequence[NewService],
    endpoints: Sequence[NewEndpoint],
    *,
    strict: bool,
) -> None:
    if url is not None:
        check_url("service description URL", url)
    if document is not None and len(document) > MAX_DOCUMENT_BYTES:
        raise invalid(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
    if type is DescriptionType.OPENAPI3:
        if (url is None) == (document is None):
            raise invalid("an OpenAPI 3 description has a URL or an uploaded document, one of them")
    elif url is None or document is not None:
        raise invalid(f"a {type.value} description has a URL and no uploaded document")
    if type in _SINGLE_SERVICE and len(services) != 1:
        raise invalid(f"a {type.value} description has exactly one service")
    if type is DescriptionType.WSDL and not services:
        raise invalid("a WSDL description has at least one service (operation)")
    if endpoints and type is not DescriptionType.OPENAPI3:
        raise invalid("only an OpenAPI 3 description brings endpoints of its own")
    for service in services:
        _check_service(service, strict)
    keys = [(s.code, s.version) for s in services]
    if len(set(keys)) != len(keys):
        raise invalid("a service appears twice in the description")
    codes = {s.code for s in services}
    for e in endpoints:
        if e.service_code not in codes:
            raise invalid(f"endpoint of {e.service_code!r}, which is not a service of the description")
        check_method(e.method)
        check_path(e.path)


class ServiceStore(StoreBase):
    """Service descriptions, services and endpoints of the node's clients."""

    # -- descriptions -------------------------------------------------------------------------------------

    async def add_service_description(
        self,
        client: ClientId,
        type: DescriptionType,
        *,
        url: str | None = None,
        document: bytes | None = None,
        services: Sequence[NewService],
        endpoints: Sequence[NewEndpoint] = (),
    ) -> ServiceDescription:
        """Add a description with its services (and, for OpenAPI 3, its operations as generated endpoints).

        409 when the client already has the URL or one of the services (code and version).
        """
        _check_description(type, url, document, services, endpoints, strict=self._strict)
        async with self._tx() as s:
            owner = await self._client_row(s, client)
            if url is not None:
                same = select(ServiceDescriptionRow.id).where(
                    ServiceDescriptionRow.client_id == owner.id, ServiceDescriptionRow.url == url
                )
                if (await s.scalars(same)).first() is not None:
                    raise conflict(f"{format_id(client)} already has a description at {url[:80]}")
            row = ServiceDescriptionRow(
                client_id=owner.id,
                type=type,
                url=url,
                document=document,
                disabled=False,
                disabled_notice=None,
                refreshed_at=self._clock(),
            )
            s.add(row)
            await s.flush()
            await self._add_services(s, owner, row, services)
            await self._add_generated(s, owner, endpoints)
            return await self._description(s, row, client)

    async def get_service_description(self, description_id: int) -> ServiceDescription:
        async with self._tx() as s:
            row = await self._description_row(s, description_id)
            return await self._description(s, row, client_of(await s.get_one(ClientRow, row.client_id)))

    async def list_service_descriptions(self, client: ClientId) -> tuple[ServiceDescription, ...]:
        async with self._tx() as s:
            owner = await self._client_row(s, client)
            query = (
                select(ServiceDescriptionRow)
                .where(ServiceDescriptionRow.client_id == owner.id)
                .order_by(ServiceDescriptionRow.id)
            )
            return tuple([await self._description(s, r, client) for r in await s.scalars(query)])

    async def set_service_description_disabled(
        self, description_id: int, disabled: bool, notice: str | None = None
    ) -> ServiceDescription:
        """Disable (with the notice a caller of its services sees) or enable a description's services."""
        if notice is not None:
            check_text("disabled notice", notice)
        async with self._tx() as s:
            row = await self._description_row(s, description_id)
            row.disabled = disabled
            row.disabled_notice = notice if disabled else None
            return await self._description(s, row, client_of(await s.get_one(ClientRow, row.client_id)))

    async def refresh_service_description(
        self,
        description_id: int,
        *,
        services: Sequence[NewService],
        endpoints: Sequence[NewEndpoint] = (),
        document: bytes | None = None,
    ) -> ServiceDescription:
        """Apply a fresh read of the description: services still present keep their settings (URL,
        timeout, flags) and access rights; new ones are added; gone ones are removed with their endpoints
        and access rights. Generated endpoints are replaced by ``endpoints`` (those that stay keep their
        access rights); the base endpoint stays. ``document`` replaces the uploaded document of an OpenAPI
        description added from a file (a description by URL keeps none).
        """
        async with self._tx() as s:
            row = await self._description_row(s, description_id)
            new_document = document if document is not None else row.document
            _check_description(row.type, row.url, new_document, services, endpoints, strict=self._strict)
            owner = await s.get_one(ClientRow, row.client_id)
            current = {(r.service_code, r.service_version): r for r in await self._service_rows(s, row.id)}
            wanted = {(n.code, n.version): n for n in services}
            for key, old in current.items():
                if key not in wanted:
                    await s.delete(old)
                elif wanted[key].title != old.title:
                    old.title = wanted[key].title
            await s.flush()
            await self._add_services(s, owner, row, [n for k, n in wanted.items() if k not in current])
            await self._drop_orphan_endpoints(s, owner.id)
            keep = {(e.service_code, check_method(e.method), e.path) for e in endpoints}
            codes = {code for code, _ in current} | {n.code for n in services}
            generated = select(EndpointRow).where(
                EndpointRow.client_id == owner.id, EndpointRow.service_code.in_(codes), EndpointRow.generated
            )
            for endpoint in await s.scalars(generated):
                found = (endpoint.service_code, endpoint.method, endpoint.path)
                if not is_base_endpoint(endpoint.method, endpoint.path) and found not in keep:
                    await s.delete(endpoint)
            await s.flush()
            await self._add_generated(s, owner, endpoints)
            row.document = new_document
            row.refreshed_at = self._clock()
            return await self._description(s, row, client_of(owner))

    async def delete_service_description(self, description_id: int) -> None:
        """Remove a description, its services and (unless another description keeps the service code)
        their endpoints and access rights."""
        async with self._tx() as s:
            row = await self._description_row(s, description_id)
            client_id = row.client_id
            await s.delete(row)
            await s.flush()
            await self._drop_orphan_endpoints(s, client_id)

    # -- services -----------------------------------------------------------------------------------------

    async def get_service(self, client: ClientId, code: str, version: str | None = None) -> Service:
        async with self._tx() as s:
            return _service(await self._service_row(s, client, code, version))

    async def update_service(
        self,
        client: ClientId,
        code: str,
        version: str | None = None,
        *,
        url: str | None = None,
        timeout_seconds: int | None = None,
        ssl_authentication: bool | None = None,
        enabled: bool | None = None,
    ) -> Service:
        """Change a service's URL, timeout, TLS authentication of the provider or enabled flag (``None``
        leaves a value as it is)."""
        if url is not None:
            check_url("service URL", url)
        if timeout_seconds is not None:
            check_seconds("timeout_seconds", timeout_seconds)
        async with self._tx() as s:
            row = await self._service_row(s, client, code, version)
            if url is not None:
                row.url = url
            if timeout_seconds is not None:
                row.timeout_seconds = timeout_seconds
            if ssl_authentication is not None:
                row.ssl_authentication = ssl_authentication
            if enabled is not None:
                row.enabled = enabled
            return _service(row)

    # -- endpoints ----------------------------------------------------------------------------------------

    async def add_endpoint(self, client: ClientId, endpoint: NewEndpoint) -> Endpoint:
        """Add an endpoint an administrator defines (not generated) to one of the client's services."""
        method, path = check_method(endpoint.method), check_path(endpoint.path)
        async with self._tx() as s:
            owner = await self._client_row(s, client)
            await self._require_service_code(s, owner, endpoint.service_code)
            await self._refuse_duplicate_endpoint(s, owner.id, endpoint.service_code, method, path)
            row = EndpointRow(
                client_id=owner.id,
                service_code=endpoint.service_code,
                method=method,
                path=path,
                generated=False,
            )
            s.add(row)
            await s.flush()
            return _endpoint(row, client)

    async def list_endpoints(self, client: ClientId, service_code: str | None = None) -> tuple[Endpoint, ...]:
        async with self._tx() as s:
            owner = await self._client_row(s, client)
            query = select(EndpointRow).where(EndpointRow.client_id == owner.id)
            if service_code is not None:
                query = query.where(EndpointRow.service_code == service_code)
            rows = await s.scalars(query.order_by(EndpointRow.service_code, EndpointRow.id))
            return tuple(_endpoint(r, client) for r in rows)

    async def update_endpoint(self, endpoint_id: int, method: str, path: str) -> Endpoint:
        """Change an endpoint's method and path (409 for a generated endpoint); its access rights stay."""
        method, path = check_method(method), check_path(path)
        async with self._tx() as s:
            row = await self._editable_endpoint(s, endpoint_id)
            if (row.method, row.path) != (method, path):
                await self._refuse_duplicate_endpoint(s, row.client_id, row.service_code, method, path)
            row.method, row.path = method, path
            return _endpoint(row, client_of(await s.get_one(ClientRow, row.client_id)))

    async def delete_endpoint(self, endpoint_id: int) -> None:
        """Remove an endpoint and its access rights (409 for a generated endpoint)."""
        async with self._tx() as s:
            await s.delete(await self._editable_endpoint(s, endpoint_id))

    # -- inside a transaction -----------------------------------------------------------------------------

    async def _description_row(self, s: AsyncSession, description_id: int) -> ServiceDescriptionRow:
        row = await s.get(ServiceDescriptionRow, description_id)
        if row is None:
            raise not_found(f"service description {description_id} does not exist", id=description_id)
        return row

    @staticmethod
    async def _service_rows(s: AsyncSession, description_id: int) -> list[ServiceRow]:
        query = (
            select(ServiceRow)
            .where(ServiceRow.description_id == description_id)
            .order_by(ServiceRow.service_code, ServiceRow.service_version)
        )
        return list((await s.scalars(query)).all())

    async def _description(
        self, s: AsyncSession, row: ServiceDescriptionRow, client: ClientId
    ) -> ServiceDescription:
        return ServiceDescription(
            id=row.id,
            client=client,
            type=row.type,
            url=row.url,
            document=row.document,
            disabled=row.disabled,
            disabled_notice=row.disabled_notice,
            refreshed_at=row.refreshed_at,
            services=tuple(_service(r) for r in await self._service_rows(s, row.id)),
        )

    async def _add_services(
        self,
        s: AsyncSession,
        owner: ClientRow,
        description: ServiceDescriptionRow,
        services: Sequence[NewService],
    ) -> None:
        for new in services:
            same = select(ServiceRow.id).where(
                ServiceRow.client_id == owner.id,
                ServiceRow.service_code == new.code,
                _version_is(new.version),
            )
            if (await s.scalars(same)).first() is not None:
                shown = new.code if new.version is None else f"{new.code}/{new.version}"
                raise conflict(f"{format_id(client_of(owner))} already has service {shown}", service=shown)
            s.add(
                ServiceRow(
                    description_id=description.id,
                    client_id=owner.id,
                    service_code=new.code,
                    service_version=new.version,
                    title=new.title,
                    url=new.url,
                    timeout_seconds=new.timeout_seconds,
                    ssl_authentication=new.ssl_authentication,
                    enabled=new.enabled,
                )
            )
            await self._ensure_endpoint(s, owner.id, new.code, ANY_METHOD, ANY_PATH)
        await s.flush()

    async def _add_generated(
        self, s: AsyncSession, owner: ClientRow, endpoints: Sequence[NewEndpoint]
    ) -> None:
        for e in endpoints:
            await self._ensure_endpoint(s, owner.id, e.service_code, check_method(e.method), e.path)

    @staticmethod
    async def _ensure_endpoint(s: AsyncSession, client_id: int, code: str, method: str, path: str) -> None:
        """A generated endpoint, unless the client has one of that service code, method and path."""
        query = select(EndpointRow.id).where(
            EndpointRow.client_id == client_id,
            EndpointRow.service_code == code,
            EndpointRow.method == method,
            EndpointRow.path == path,
        )
        if (await s.scalars(query)).first() is None:
            s.add(
                EndpointRow(client_id=client_id, service_code=code, method=method, path=path, generated=True)
            )
            await s.flush()

    @staticmethod
    async def _drop_orphan_endpoints(s: AsyncSession, client_id: int) -> None:
        """Remove the endpoints (and so the access rights) of service codes the client no longer has."""
        codes = select(ServiceRow.service_code).where(ServiceRow.client_id == client_id)
        orphans = delete(EndpointRow).where(
            EndpointRow.client_id == client_id, EndpointRow.service_code.not_in(codes)
        )
        await s.execute(orphans)

    async def _service_row(
        self, s: AsyncSession, client: ClientId, code: str, version: str | None
    ) -> ServiceRow:
        owner = await self._client_row(s, client)
        query = select(ServiceRow).where(
            ServiceRow.client_id == owner.id,
            ServiceRow.service_code == code,
            _version_is(version),
        )
        row: ServiceRow = await self._one(
            s, query, not_found(f"{format_id(client)} has no service {code!r}", service=code)
        )
        return row

    @staticmethod
    async def _require_service_code(s: AsyncSession, owner: ClientRow, code: str) -> None:
        query = select(ServiceRow.id).where(ServiceRow.client_id == owner.id, ServiceRow.service_code == code)
        if (await s.scalars(query)).first() is None:
            raise not_found(f"{format_id(client_of(owner))} has no service {code!r}", service=code)

    @staticmethod
    async def _refuse_duplicate_endpoint(
        s: AsyncSession, client_id: int, code: str, method: str, path: str
    ) -> None:
        query = select(EndpointRow.id).where(
            EndpointRow.client_id == client_id,
            EndpointRow.service_code == code,
            EndpointRow.method == method,
            EndpointRow.path == path,
        )
        if (await s.scalars(query)).first() is not None:
            raise conflict(f"service {code!r} already has the endpoint {method} {path}")

    async def _editable_endpoint(self, s: AsyncSession, endpoint_id: int) -> EndpointRow:
        row = await s.get(EndpointRow, endpoint_id)
        if row is None:
            raise not_found(f"endpoint {endpoint_id} does not exist", id=endpoint_id)
        if row.generated:
            raise conflict(f"endpoint {endpoint_id} comes from the service description and cannot be changed")
        return row
