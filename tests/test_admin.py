"""xroad_mn.admin for an application other than the registry: a node-like API with X-Road's security server
roles, served over real HTTP. Roles of another server are refused, every change and refusal is audited with
X-Road's fields, and the body limit, the OpenAPI document and the change callback come from the one
declaration of each operation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from xroad_mn.admin import (
    API_KEYS_KEY,
    AUDIT_KEY,
    LIMITER_KEY,
    SECURITY_SERVER_ROLES,
    AdminApi,
    ApiKeyRing,
    AuditLog,
    Call,
    RateLimiter,
    Reply,
    Role,
    create_api_key,
)
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.transport.server import xroad_error_middleware

CLIENTS_KEY: Final = web.AppKey("test_clients", list[str])
CHANGES_KEY: Final = web.AppKey("test_changes", list[str])


class Event(StrEnum):
    API_KEY_AUTHENTICATION = "API key authentication"
    ADD_CLIENT = "Add client"


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_id: str


class ClientOut(BaseModel):
    client_id: str


@dataclass(frozen=True)
class NodeCall(Call):
    @property
    def clients(self) -> list[str]:
        return self.request.app[CLIENTS_KEY]


API: Final = AdminApi(
    NodeCall,
    title="node",
    version="1",
    roles=SECURITY_SERVER_ROLES,
    authentication_event=Event.API_KEY_AUTHENTICATION,
)


@API.operation("GET", "/clients", "List clients", tag="clients", response=list[ClientOut])
async def list_clients(call: NodeCall) -> Reply[list[ClientOut]]:
    return Reply([ClientOut(client_id=c) for c in call.clients])


@API.operation(
    "POST",
    "/clients",
    "Add a client",
    tag="clients",
    roles=frozenset({Role.XROAD_SERVICE_ADMINISTRATOR}),
    event=Event.ADD_CLIENT,
    body=ClientIn,
    response=ClientOut,
    status=201,
)
async def add_client(call: NodeCall) -> Reply[ClientOut]:
    body = call.typed_body(ClientIn)
    if body.client_id in call.clients:
        raise XRoadError(FaultCode.CONFLICT, f"{body.client_id} exists", http_status=409)
    call.clients.append(body.client_id)
    return Reply(ClientOut(client_id=body.client_id), audit={"client_id": body.client_id})


@dataclass
class Node:
    url: str
    session: aiohttp.ClientSession
    app: web.Application
    tokens: dict[str, str]
    audit_path: Path

    async def request(
        self, method: str, path: str, *, key: str | None, body: bytes | None = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"X-Road-ApiKey token={self.tokens[key]}"
        async with self.session.request(method, self.url + path, data=body, headers=headers) as resp:
            data = await resp.read()
            return resp.status, json.loads(data) if data else None

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    keys = tmp_path / "api-keys.json"
    now = datetime.now(UTC)
    tokens = {
        "admin": create_api_key(keys, {Role.XROAD_SERVICE_ADMINISTRATOR}, now).token,
        "observer": create_api_key(keys, {Role.XROAD_SECURITYSERVER_OBSERVER}, now).token,
        "central": create_api_key(keys, {Role.SYSTEM_ADMINISTRATOR, Role.OBSERVER}, now).token,
    }
    app = web.Application(middlewares=[xroad_error_middleware])
    app[AUDIT_KEY] = AuditLog(tmp_path / "audit.log")
    app[API_KEYS_KEY] = ApiKeyRing(keys)
    app[LIMITER_KEY] = RateLimiter(1000, 10_000)
    app[CLIENTS_KEY] = []
    app[CHANGES_KEY] = []
    API.mount(app, max_body_bytes=200, on_change=lambda a: a[CHANGES_KEY].append("changed"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            yield Node(f"http://127.0.0.1:{port}/api/v1", session, app, tokens, tmp_path / "audit.log")
    finally:
        await runner.cleanup()


async def test_security_server_roles_changes_and_refusals_are_audited(node: Node) -> None:
    body = json.dumps({"client_id": "SUBSYSTEM:MN/GOV/1/tax"}).encode()
    assert await node.request("POST", "/clients", key="admin", body=body) == (
        201,
        {"client_id": "SUBSYSTEM:MN/GOV/1/tax"},
    )
    assert (await node.request("GET", "/clients", key="observer"))[0] == 200
    status, error = await node.request("POST", "/clients", key="observer", body=body)
    assert (status, error["type"]) == (403, "client.forbidden")
    status, error = await node.request("POST", "/clients", key="admin", body=body)
    assert (status, error["type"]) == (409, "client.conflict")
    assert (await node.request("GET", "/clients", key=None))[0] == 401

    added, refused, conflict, login = node.audit()
    assert node.app[CHANGES_KEY] == ["changed"]  # only the change that went through
    assert added["event"] == "Add client"
    assert added["data"] == {"path": "/api/v1/clients", "client_id": "SUBSYSTEM:MN/GOV/1/tax"}
    assert {k: added[k] for k in ("ipaddress", "auth", "url")} == {
        "ipaddress": "127.0.0.1",
        "auth": "ApiKey",
        "url": "/api/v1/clients",
    }
    assert (refused["event"], refused["data"]["reason"]["code"]) == ("Add client failed", "client.forbidden")
    assert refused["user"] != added["user"]
    assert (conflict["event"], conflict["data"]["reason"]["code"]) == ("Add client failed", "client.conflict")
    assert (login["event"], login["user"], login["auth"]) == ("API key authentication failed", None, "ApiKey")


async def test_roles_of_another_server_give_no_access(node: Node) -> None:
    """A key holding the central server's roles, in a node's key file, may not even read."""
    status, error = await node.request("GET", "/clients", key="central")
    assert (status, error["type"]) == (403, "client.forbidden")


async def test_body_limit_and_validation(node: Node) -> None:
    big = json.dumps({"client_id": "x" * 300}).encode()
    status, error = await node.request("POST", "/clients", key="admin", body=big)
    assert (status, error["type"]) == (413, "client.request_too_large")
    status, error = await node.request("POST", "/clients", key="admin", body=b'{"client": "x"}')
    assert (status, error["type"]) == (400, "client.invalid_body")
    assert node.app[CLIENTS_KEY] == []
    assert [a["event"] for a in node.audit()] == ["Add client failed"] * 2


async def test_openapi_document_is_served_with_the_roles(node: Node) -> None:
    status, document = await node.request("GET", "/openapi.json", key=None)
    assert status == 200
    post = document["paths"]["/api/v1/clients"]["post"]
    assert post["description"] == "Roles: xroad-service-administrator"
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ClientIn"
    }
    assert set(document["paths"]["/api/v1/clients"]) == {"get", "post"}


def test_an_operation_may_name_only_the_apps_roles() -> None:
    api = AdminApi(
        NodeCall,
        title="node",
        version="1",
        roles=SECURITY_SERVER_ROLES,
        authentication_event=Event.ADD_CLIENT,
    )
    with pytest.raises(XRoadError, match="no such role in this API: security-officer"):
        api.operation(
            "POST", "/x", "X", tag="x", roles=frozenset({Role.SECURITY_OFFICER}), event=Event.ADD_CLIENT
        )

    async def delete_x(call: NodeCall) -> Reply[None]:
        return Reply(None)

    with pytest.raises(XRoadError, match="needs roles and an audit event"):
        api.operation("DELETE", "/x", "X", tag="x")(delete_x)
    api.operation("DELETE", "/x", "X", tag="x", roles=SECURITY_SERVER_ROLES, event=Event.ADD_CLIENT)(delete_x)
    with pytest.raises(XRoadError, match="declared twice"):
        api.operation("DELETE", "/x", "Y", tag="x", roles=SECURITY_SERVER_ROLES, event=Event.ADD_CLIENT)(
            delete_x
        )
