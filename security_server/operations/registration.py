"""Registering the node and its clients at the registry (:class:`security_server.registration.Registrar`).

    >>> request_id = await register_server(ctx)  # authCertReg of the newest saved auth certificate
    ... # doctest: +SKIP
    >>> await register_client(ctx, parse_subsystem_id("MN:GOV:9010001:civil-registry"))  # doctest: +SKIP

The registry's refusal comes back as its X-Road fault and changes no state on the node.
"""

from __future__ import annotations

from security_server.operations.context import NodeContext
from security_server.registration import StateChange
from xroad_mn.identifiers import ClientId

__all__ = ["register_client", "register_server", "sync_registration"]


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
