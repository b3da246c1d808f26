"""Access rights to the node's services and the local groups of its clients.

A right is to the whole service (its base endpoint ``* **``) or, for REST, to one endpoint named by its
method and path pattern exactly as the service lists it::

    >>> await grant_access(ctx, provider, "people", [parse_subject("MN:COM:9011223:bank")])  # doctest: +SKIP
    >>> await grant_access(ctx, provider, "people", [parse_subject("LOCALGROUP:auditors")],
    ...                    method="GET", path="/people/*")  # doctest: +SKIP

A service, endpoint or local group that does not exist is ``not_found`` (404) and nothing is granted.
"""

from __future__ import annotations

from collections.abc import Sequence

from security_server.db import AccessRight, AccessSubject, LocalGroup
from security_server.endpoints import normalize_method
from security_server.operations.context import NodeContext
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, format_id

__all__ = [
    "add_local_group",
    "add_local_group_members",
    "delete_local_group",
    "grant_access",
    "list_access_rights",
    "list_local_groups",
    "remove_local_group_members",
    "revoke_access",
    "set_local_group_description",
]


async def _endpoint_id(
    ctx: NodeContext, provider: ClientId, service_code: str, method: str | None, path: str | None
) -> int | None:
    if method is None and path is None:
        return None
    if method is None or path is None:
        raise XRoadError(
            FaultCode.INVALID_REQUEST, "name an endpoint by its method and its path, both", http_status=400
        )
    try:
        wanted = normalize_method(method)
    except ValueError as e:
        raise XRoadError(FaultCode.INVALID_REQUEST, str(e), http_status=400) from e
    endpoints = await ctx.store.list_endpoints(provider, service_code)
    if not endpoints:
        raise XRoadError(
            FaultCode.NOT_FOUND,
            f"{format_id(provider)} has no service {service_code!r}",
            details={"service": service_code},
            http_status=404,
        )
    for endpoint in endpoints:
        if endpoint.method == wanted and endpoint.path == path:
            return endpoint.id
    raise XRoadError(
        FaultCode.NOT_FOUND,
        f"service {service_code!r} has no endpoint {wanted} {path[:200]}; add it first",
        details={"service": service_code, "method": wanted, "path": path[:200]},
        http_status=404,
    )


async def grant_access(
    ctx: NodeContext,
    provider: ClientId,
    service_code: str,
    subjects: Sequence[AccessSubject],
    *,
    method: str | None = None,
    path: str | None = None,
) -> tuple[AccessRight, ...]:
    """Give ``subjects`` the service (or its endpoint ``method path``); all or nothing."""
    endpoint_id = await _endpoint_id(ctx, provider, service_code, method, path)
    return await ctx.store.grant_access(provider, service_code, subjects, endpoint_id=endpoint_id)


async def revoke_access(
    ctx: NodeContext,
    provider: ClientId,
    service_code: str,
    subjects: Sequence[AccessSubject],
    *,
    method: str | None = None,
    path: str | None = None,
) -> None:
    endpoint_id = await _endpoint_id(ctx, provider, service_code, method, path)
    await ctx.store.revoke_access(provider, service_code, subjects, endpoint_id=endpoint_id)


async def list_access_rights(
    ctx: NodeContext, provider: ClientId, service_code: str | None = None
) -> tuple[AccessRight, ...]:
    return await ctx.store.list_access_rights(provider, service_code)


async def list_local_groups(ctx: NodeContext, client: ClientId) -> tuple[LocalGroup, ...]:
    return await ctx.store.list_local_groups(client)


async def add_local_group(ctx: NodeContext, client: ClientId, code: str, description: str) -> LocalGroup:
    return await ctx.store.add_local_group(client, code, description)


async def set_local_group_description(
    ctx: NodeContext, client: ClientId, code: str, description: str
) -> LocalGroup:
    return await ctx.store.set_local_group_description(client, code, description)


async def delete_local_group(ctx: NodeContext, client: ClientId, code: str) -> None:
    await ctx.store.delete_local_group(client, code)


async def add_local_group_members(
    ctx: NodeContext, client: ClientId, code: str, members: Sequence[ClientId]
) -> LocalGroup:
    return await ctx.store.add_local_group_members(client, code, members)


async def remove_local_group_members(
    ctx: NodeContext, client: ClientId, code: str, members: Sequence[ClientId]
) -> LocalGroup:
    return await ctx.store.remove_local_group_members(client, code, members)
