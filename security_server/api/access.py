"""Access rights and local groups (service administrator)."""

from __future__ import annotations

from security_server.api.call import NodeCall
from security_server.api.clients import client_param
from security_server.api.events import NodeEvent
from security_server.api.models import (
    AccessRightOut,
    AccessRightsIn,
    LocalGroupIn,
    LocalGroupOut,
    LocalGroupUpdate,
    MembersIn,
    group_out,
    right_out,
)
from security_server.api.spec import SVC, operation
from security_server.ids import format_for_people, parse_client_id, parse_subject
from security_server.operations import access
from xroad_mn.admin import QueryParam, Reply


@operation(
    "GET", "/clients/{client_id}/access-rights", "List access rights to a client's services",
    tag="access rights", response=list[AccessRightOut],
    query=(QueryParam("service_code", "Only the rights to this service"),),
)  # fmt: skip
async def list_access_rights(call: NodeCall) -> Reply[list[AccessRightOut]]:
    found = await access.list_access_rights(call.ctx, client_param(call), call.query("service_code"))
    return Reply([right_out(r) for r in found])


@operation(
    "POST", "/clients/{client_id}/services/{service_code}/access-rights", "Give access to a service",
    tag="access rights", roles=SVC, event=NodeEvent.ADD_SERVICE_ACCESS_RIGHTS, body=AccessRightsIn,
    response=list[AccessRightOut], status=201,
)  # fmt: skip
async def grant_access(call: NodeCall) -> Reply[list[AccessRightOut]]:
    body = call.typed_body(AccessRightsIn)
    client, code = client_param(call), call.param("service_code")
    subjects = [parse_subject(s, strict=call.strict) for s in body.subjects]
    granted = await access.grant_access(call.ctx, client, code, subjects, method=body.method, path=body.path)
    out = [right_out(r) for r in granted]
    audit = {
        "client_id": format_for_people(client),
        "service_code": code,
        "subjects": [r.subject for r in out],
        "method": body.method,
        "path": body.path,
    }
    return Reply(out, audit=audit)


@operation(
    "POST", "/clients/{client_id}/services/{service_code}/access-rights/delete",
    "Take access to a service away", tag="access rights", roles=SVC,
    event=NodeEvent.REMOVE_SERVICE_ACCESS_RIGHTS, body=AccessRightsIn,
)  # fmt: skip
async def revoke_access(call: NodeCall) -> Reply[None]:
    body = call.typed_body(AccessRightsIn)
    client, code = client_param(call), call.param("service_code")
    subjects = [parse_subject(s, strict=call.strict) for s in body.subjects]
    await access.revoke_access(call.ctx, client, code, subjects, method=body.method, path=body.path)
    return Reply(
        None, audit={"client_id": format_for_people(client), "service_code": code, "subjects": body.subjects}
    )


@operation(
    "GET", "/clients/{client_id}/local-groups", "List a client's local groups", tag="local groups",
    response=list[LocalGroupOut],
)  # fmt: skip
async def list_local_groups(call: NodeCall) -> Reply[list[LocalGroupOut]]:
    return Reply([group_out(g) for g in await access.list_local_groups(call.ctx, client_param(call))])


@operation(
    "POST", "/clients/{client_id}/local-groups", "Add a local group", tag="local groups", roles=SVC,
    event=NodeEvent.ADD_LOCAL_GROUP, body=LocalGroupIn, response=LocalGroupOut, status=201,
)  # fmt: skip
async def add_local_group(call: NodeCall) -> Reply[LocalGroupOut]:
    body = call.typed_body(LocalGroupIn)
    client = client_param(call)
    group = await access.add_local_group(call.ctx, client, body.code, body.description)
    return Reply(group_out(group), audit={"client_id": format_for_people(client), "code": body.code})


@operation(
    "GET", "/clients/{client_id}/local-groups/{code}", "Get a local group", tag="local groups",
    response=LocalGroupOut,
)  # fmt: skip
async def get_local_group(call: NodeCall) -> Reply[LocalGroupOut]:
    return Reply(group_out(await call.ctx.store.get_local_group(client_param(call), call.param("code"))))


@operation(
    "PATCH", "/clients/{client_id}/local-groups/{code}", "Change a local group's description",
    tag="local groups", roles=SVC, event=NodeEvent.EDIT_LOCAL_GROUP_DESC, body=LocalGroupUpdate,
    response=LocalGroupOut,
)  # fmt: skip
async def update_local_group(call: NodeCall) -> Reply[LocalGroupOut]:
    body = call.typed_body(LocalGroupUpdate)
    client, code = client_param(call), call.param("code")
    group = await access.set_local_group_description(call.ctx, client, code, body.description)
    return Reply(group_out(group), audit={"client_id": format_for_people(client), "code": code})


@operation(
    "DELETE", "/clients/{client_id}/local-groups/{code}", "Delete a local group", tag="local groups",
    roles=SVC, event=NodeEvent.DELETE_LOCAL_GROUP,
)  # fmt: skip
async def delete_local_group(call: NodeCall) -> Reply[None]:
    client, code = client_param(call), call.param("code")
    await access.delete_local_group(call.ctx, client, code)
    return Reply(None, audit={"client_id": format_for_people(client), "code": code})


@operation(
    "POST", "/clients/{client_id}/local-groups/{code}/members", "Add members to a local group",
    tag="local groups", roles=SVC, event=NodeEvent.ADD_LOCAL_GROUP_MEMBERS, body=MembersIn,
    response=LocalGroupOut,
)  # fmt: skip
async def add_local_group_members(call: NodeCall) -> Reply[LocalGroupOut]:
    body = call.typed_body(MembersIn)
    client, code = client_param(call), call.param("code")
    members = [parse_client_id(m, strict=call.strict) for m in body.members]
    group = await access.add_local_group_members(call.ctx, client, code, members)
    return Reply(
        group_out(group),
        audit={"client_id": format_for_people(client), "code": code, "members": body.members},
    )


@operation(
    "POST", "/clients/{client_id}/local-groups/{code}/members/delete", "Remove members from a local group",
    tag="local groups", roles=SVC, event=NodeEvent.REMOVE_LOCAL_GROUP_MEMBERS, body=MembersIn,
    response=LocalGroupOut,
)  # fmt: skip
async def remove_local_group_members(call: NodeCall) -> Reply[LocalGroupOut]:
    body = call.typed_body(MembersIn)
    client, code = client_param(call), call.param("code")
    members = [parse_client_id(m, strict=call.strict) for m in body.members]
    group = await access.remove_local_group_members(call.ctx, client, code, members)
    return Reply(
        group_out(group),
        audit={"client_id": format_for_people(client), "code": code, "members": body.members},
    )
