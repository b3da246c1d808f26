"""Status and the token (read only)."""

from __future__ import annotations

import asyncio

from security_server.api.call import NodeCall
from security_server.api.models import StatusOut, TokenOut, status_out
from security_server.api.spec import operation
from security_server.operations import node_status
from xroad_mn.admin import Reply


@operation("GET", "/status", "The node's status", tag="status", response=StatusOut)
async def get_status(call: NodeCall) -> Reply[StatusOut]:
    return Reply(status_out(await node_status(call.ctx)))


@operation("GET", "/token", "The token's state", tag="keys", response=TokenOut)
async def get_token(call: NodeCall) -> Reply[TokenOut]:
    info = await asyncio.to_thread(call.ctx.token.info)
    return Reply(TokenOut(type=info.type, label=info.label, state=info.state, key_count=info.key_count))
