"""xroad_mn.admin for an application other than the registry: a node-like API with X-Road's security server
roles, served over real HTTP. Roles of another server are refused, every change and refusal is audited with
X-Road's fields, and the body limit, the OpenAPI document and the change callback come from the one
declaration of each operation."""

from __future__ import annotations

import asyncio
import io
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
    FileBody,
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
    READ_SECRETS = "Read secrets"
    SEARCH_CLIENTS = "Search clients"


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: str


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


OFFICER: Final = frozenset({Role.XROAD_SECURITY_OFFICER})
EXPORT_BYTES: Final = 3 * 256 * 1024 + 17
"""More than three chunks of a streamed file body."""


@API.operation(
    "GET", "/secrets", "Read the secrets", tag="secrets", roles=OFFICER, event=Event.READ_SECRETS,
    response=list[str],
)  # fmt: skip
async def read_secrets(call: NodeCall) -> Reply[list[str]]:
    return Reply(["s3cret"], audit={"count": 1})


@API.operation(
    "POST", "/clients/search", "Search clients", tag="clients", roles=OFFICER, event=Event.SEARCH_CLIENTS,
    body=SearchIn, response=list[ClientOut], read=True,
)  # fmt: skip
async def search_clients(call: NodeCall) -> Reply[list[ClientOut]]:
    prefix = call.typed_body(SearchIn).prefix
    return Reply([ClientOut(client_id=c) for c in call.clients if c.startswith(prefix)])


def _pattern(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


@API.operation(
    "GET", "/export", "Export everything", tag="secrets", roles=OFFICER, response=FileBody,
    media_type="application/zip",
)  # fmt: skip
async def export(call: NodeCall) -> Reply[FileBody]:
    file = _ExportFile(_pattern(EXPORT_BYTES))
    call.request.app[FILES_KEY].append(file)
    return Reply(
        FileBody(file, EXPORT_BYTES), headers={"Content-Disposition": 'attachment; filename="x.zip"'}
    )


class _ExportFile(io.BytesIO):
    """The exported file; says when the pipeline closes it (after the last byte was sent, so a client may
    hold the whole body a moment before)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.closed_event = asyncio.Event()

    def close(self) -> None:
        super().close()
        self.closed_event.set()


FILES_KEY: Final = web.AppKey("test_files", list[_ExportFile])


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
        "officer": create_api_key(keys, OFFICER, now).token,
    }
    app = web.Application(middlewares=[xroad_error_middleware])
    app[AUDIT_KEY] = AuditLog(tmp_path / "audit.log")
    app[API_KEYS_KEY] = ApiKeyRing(keys)
    app[LIMITER_KEY] = RateLimiter(1000, 10_000)
    app[CLIENTS_KEY] = []
    app[CHANGES_KEY] = []
    app[FILES_KEY] = []
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


async def test_a_read_naming_its_roles_is_refused_to_the_others_and_audited(node: Node) -> None:
    assert await node.request("GET", "/secrets", key="officer") == (200, ["s3cret"])
    for other in ("admin", "observer"):
        status, error = await node.request("GET", "/secrets", key=other)
        assert (status, error["type"]) == (403, "client.forbidden")
    assert (await node.request("GET", "/secrets", key=None))[0] == 401
    # A read without roles of its own stays open to every role.
    assert (await node.request("GET", "/clients", key="officer"))[0] == 200
    events = [(a["event"], a["data"].get("count")) for a in node.audit()]
    assert events == [
        ("Read secrets", 1),
        ("Read secrets failed", None),
        ("Read secrets failed", None),
        ("API key authentication failed", None),
    ]
    assert node.app[CHANGES_KEY] == []  # an audited read is no change


async def test_a_post_declared_a_read_is_audited_but_changes_nothing(node: Node) -> None:
    node.app[CLIENTS_KEY].extend(["MN:GOV:1:tax", "MN:COM:2:bank"])
    body = json.dumps({"prefix": "MN:GOV"}).encode()
    status, found = await node.request("POST", "/clients/search", key="officer", body=body)
    assert (status, found) == (200, [{"client_id": "MN:GOV:1:tax"}])
    assert (await node.request("POST", "/clients/search", key="admin", body=body))[0] == 403
    status, error = await node.request("POST", "/clients/search", key="officer", body=b'{"x": 1}')
    assert (status, error["type"]) == (400, "client.invalid_body")
    assert [a["event"] for a in node.audit()] == ["Search clients"] + ["Search clients failed"] * 2
    assert node.app[CHANGES_KEY] == []
    document = API.document()
    assert document["paths"]["/api/v1/clients/search"]["post"]["description"] == (
        "Roles: xroad-security-officer"
    )


async def test_a_file_body_is_streamed_and_closed(node: Node) -> None:
    headers = {"Authorization": f"X-Road-ApiKey token={node.tokens['officer']}"}
    async with node.session.get(node.url + "/export", headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/zip"
        assert resp.content_length == EXPORT_BYTES
        assert resp.headers["Content-Disposition"] == 'attachment; filename="x.zip"'
        data = await resp.read()
    assert data == _pattern(EXPORT_BYTES)
    (file,) = node.app[FILES_KEY]
    await asyncio.wait_for(file.closed_event.wait(), 10)  # the handler ends after the client has the body
    assert file.closed
    assert (await node.request("GET", "/export", key="admin"))[0] == 403


def test_reading_roles_are_some_of_the_apps_roles() -> None:
    api = AdminApi(
        NodeCall, title="node", version="1", roles=SECURITY_SERVER_ROLES,
        authentication_event=Event.API_KEY_AUTHENTICATION, read_roles=OFFICER,
    )  # fmt: skip
    assert api.read_roles == OFFICER
    for wrong in (frozenset(), frozenset({Role.OBSERVER})):
        with pytest.raises(XRoadError, match="reading roles"):
            AdminApi(
                NodeCall, title="node", version="1", roles=SECURITY_SERVER_ROLES,
                authentication_event=Event.API_KEY_AUTHENTICATION, read_roles=wrong,
            )  # fmt: skip

    async def get_x(call: NodeCall) -> Reply[None]:
        return Reply(None)

    with pytest.raises(XRoadError, match="only a POST is declared a read"):
        api.operation("GET", "/x", "X", tag="x", read=True)(get_x)
