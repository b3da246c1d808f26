"""Registering the node and its clients at the registry (:class:`security_server.registration.Registrar`).

    >>> request_id = await register_server(ctx)  # authCertReg of the newest saved auth certificate
    ... # doctest: +SKIP
    >>> await register_client(ctx, parse_subsystem_id("MN:GOV:9010001:civil-registry"))  # doctest: +SKIP

The registry's refusal comes back as its X-Road fault and changes no state on the node.
:func:`add_and_register_client` is ``node client add``: the client is hosted and registered at once, or
not hosted at all.
"""

from __future__ import annotations

import contextlib

from security_server.db import Client, ConnectionType
from security_server.operations.clients import add_client
from security_server.operations.context import NodeContext
from security_server.registration import StateChange
from xroad_mn.errors import XRoadError
from xroad_mn.identifiers import ClientId

__all__ = ["add_and_register_client", "register_client", "register_server", "sync_registration"]


async def register_server(
    ctx: NodeContext, sha256: bytes | None = None, *, address: str | None = None
) -> int:
    """Send ``authCertReg`` for the authentication certificate ``sha256`` (default: the newest one in
    state ``saved``) at ``address`` (default the node's); the registry's request id."""
    return await ctx.registrar().register_auth_certificate(sha256, address=address)


async def register_client(ctx: NodeContext, client: ClientId, *, subsystem_name: str | None = None) -> int:
    """Send ``clientReg`` for a hosted client; the registry's request id."""
    return await ctx.registrar().register_client(client, subsystem_name=subsystem_name)


async def sync_registration(ctx: NodeContext) -> list[StateChange]:
    """Update certificate and client states from the installed global configuration."""
    return await ctx.registrar().sync()


async def add_and_register_client(
    ctx: NodeContext,
    client: ClientId,
    *,
    subsystem_name: str | None = None,
    connection_type: ConnectionType = ConnectionType.SSLAUTH,
) -> tuple[Client, int]:
    """Host ``client`` and send its ``clientReg``: the client (now ``registration_in_progress``) and the
    registry's request id. A client hosted already is ``conflict`` and nothing is sent; when the request
    cannot be sent or the registry refuses it, the client is not hosted either."""
    await add_client(ctx, client, connection_type=connection_type)
    try:
        request_id = await register_client(ctx, client, subsystem_name=subsystem_name)
    except BaseException:
        with contextlib.suppress(XRoadError):
            await ctx.store.delete_client(client)
        raise
    return await ctx.store.get_client(client), request_id
