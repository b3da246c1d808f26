"""The registry's admin REST API over real HTTP, on SQLite and PostgreSQL: set up through the API, the
next global configuration shows it and verifies against the exported anchor, key rotation reaches a client
holding the old anchor, and authentication, roles, rate limits, body limits, errors and the audit log
behave as X-Road's. One test calls every operation the OpenAPI document lists and checks each got a 2xx."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from multidict import CIMultiDictProxy

from registry.api import DEFAULT_PAGE_LIMIT
from registry.app import RunningRegistry, run_registry
from registry.context import PUBLISHER_KEY, STORE_KEY
from registry.home import ADMIN_ROLES
from registry.operations import init_registry, open_store
from registry.requests import submit_request
from registry.settings import RegistrySettings
from tests.registry.conftest import new_token
from trust_services.pki import DevPki
from xroad_mn.admin import (
    API_KEYS_KEY,
    MAX_AUDITED_PATH_CHARS,
    ApiKeyRing,
    RateLimiter,
    Role,
    create_api_key,
    revoke_api_key,
)
from xroad_mn.confclient.client import ConfigurationClient
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.anchor import anchor_hash, parse_anchor
from xroad_mn.globalconf.directory import parse_signed_directory, verify_part_content, verify_signed_directory
from xroad_mn.globalconf.params import auth_cert_hash, parse_shared_params
from xroad_mn.identifiers import MemberId
from xroad_mn.management import ClientRegRequest
from xroad_mn.transport.globalconf import AiohttpConfigurationTransport

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
OWNER = MemberId("MN", "GOV", "1000001")
MEMBER = MemberId("MN", "GOV", "5012345")
PROFILE = "ee.ria.xroad.common.certificateprofile.impl.FiVRKCertificateProfileInfoProvider"
GENEROUS = {"rate_limit_per_second": 10_000, "rate_limit_per_minute": 100_000}


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()


@dataclass
class Harness:
    """A running registry with API keys and an HTTP client that records which operations got a 2xx."""

    running: RunningRegistry
    session: aiohttp.ClientSession
    tokens: dict[str, str]
    called: set[tuple[str, str]] = field(default_factory=set)

    @property
    def settings(self) -> RegistrySettings:
        return self.running.settings

    def audit_lines(self) -> list[dict[str, Any]]:
        path = self.settings.audit_log_path()
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    async def raw(
        self, method: str, path: str, *, key: str | None = "admin", body: bytes | None = None,
        content_type: str = "application/json", headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, CIMultiDictProxy[str]]:  # fmt: skip
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Authorization"] = f"X-Road-ApiKey token={self.tokens[key]}"
        if body is not None:
            all_headers["Content-Type"] = content_type
        url = self.running.admin_url + "/api/v1" + path
        async with self.session.request(method, url, data=body, headers=all_headers) as resp:
            return resp.status, await resp.read(), resp.headers

    async def call(
        self, method: str, template: str, *, params: dict[str, str] | None = None, json_body: Any = None,
        key: str = "admin", query: str = "", expect: int | None = None,
    ) -> Any:  # fmt: skip
        path = template.format(**{k: quote(v, safe="") for k, v in (params or {}).items()})
        body = json.dumps(json_body).encode() if json_body is not None else None
        status, data, headers = await self.raw(method, path + query, key=key, body=body)
        if expect is not None:
            assert status == expect, data
        else:
            assert 200 <= status < 300, (method, path, status, data)
        if 200 <= status < 300:
            self.called.add((method.lower(), "/api/v1" + template))
        if not data:
            return None
        if "json" in str(headers.get("Content-Type", "")):
            return json.loads(data)
        return data


@pytest.fixture
def start_registry(
    database: dict[str, Any], tmp_path: Path
) -> Callable[..., AbstractAsyncContextManager[Harness]]:
    """Start an initialised registry (as ``registry init`` makes it) with ``overrides`` on free ports."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Harness]:
        settings = RegistrySettings(
            home=tmp_path / "home",
            regenerate_interval_seconds=3600,
            **{"admin_port": 0, "public_port": 0, **GENEROUS, **database, **overrides},
        )
        now = datetime.now(UTC)
        async with open_store(settings) as store:
            await init_registry(
                store,
                settings,
                new_token(settings),
                instance="MN",
                owner=OWNER,
                owner_name="Registry",
                now=now,
            )
        tokens = {
            "admin": create_api_key(settings.api_keys_path(), ADMIN_ROLES, now).token,
            "observer": create_api_key(settings.api_keys_path(), {Role.OBSERVER}, now).token,
            "officer": create_api_key(settings.api_keys_path(), {Role.REGISTRATION_OFFICER}, now).token,
        }
        async with run_registry(settings) as running, aiohttp.ClientSession() as session:
            yield Harness(running, session, tokens)

    return start


@pytest.fixture
async def registry(
    start_registry: Callable[..., AbstractAsyncContextManager[Harness]],
) -> AsyncIterator[Harness]:
    async with start_registry() as harness:
        yield harness


async def _fetch_configuration(h: Harness, anchor_xml: bytes) -> dict[str, bytes]:
    """GET /internalconf?version=6 over HTTP, verify it against the anchor and fetch its content files."""
    anchor = parse_anchor(anchor_xml)
    async with h.session.get(h.running.public_url + "/internalconf?version=6") as resp:
        assert resp.status == 200
        data = await resp.read()
    directory = parse_signed_directory(data)
    verify_signed_directory(directory, anchor.verification_certs, at=datetime.now(UTC))
    files = {}
    for part in directory.parts:
        async with h.session.get(h.running.public_url + part.content_location) as resp:
            assert resp.status == 200
            content = await resp.read()
        verify_part_content(part, content)
        files[part.content_identifier] = content
    return files


# -- the whole API ------------------------------------------------------------------------------------


async def test_every_documented_operation_end_to_end(registry: Harness, pki: DevPki, tmp_path: Path) -> None:
    h = registry
    sub = MEMBER.subsystem("civil-registry")

    # Instance and settings.
    assert (await h.call("GET", "/instance"))["instance_identifier"] == "MN"
    assert (await h.call("GET", "/global-settings"))[
        "management_service_provider"
    ] == "MN:GOV:1000001:MANAGEMENT"
    patched = await h.call("PATCH", "/global-settings", json_body={"ocsp_freshness_seconds": 900})
    assert patched["ocsp_freshness_seconds"] == 900

    # Member classes, members, subsystems.
    await h.call("POST", "/member-classes", json_body={"code": "EDU", "description": "Schools"}, expect=201)
    await h.call("PATCH", "/member-classes/{code}", params={"code": "EDU"}, json_body={"description": "Edu"})
    assert "EDU" in [c["code"] for c in await h.call("GET", "/member-classes")]
    body = {"member_class": "GOV", "member_code": "5012345", "name": "Ministry"}
    assert (await h.call("POST", "/members", json_body=body, expect=201))["member_id"] == "MN:GOV:5012345"
    await h.call(
        "PATCH",
        "/members/{member_id}",
        params={"member_id": "MN:GOV:5012345"},
        json_body={"name": "Ministry of Digital Development"},
    )
    await h.call(
        "POST",
        "/members/{member_id}/subsystems",
        params={"member_id": "MN:GOV:5012345"},
        json_body={"subsystem_code": "civil-registry"},
        expect=201,
    )
    await h.call(
        "PATCH",
        "/subsystems/{subsystem_id}",
        params={"subsystem_id": "MN:GOV:5012345:civil-registry"},
        json_body={"name": "Civil registry"},
    )
    got = await h.call("GET", "/members/{member_id}", params={"member_id": "MN:GOV:5012345"})
    assert got["name"] == "Ministry of Digital Development"
    assert got["subsystems"] == [
        {
            "subsystem_id": "MN:GOV:5012345:civil-registry",
            "subsystem_code": "civil-registry",
            "name": "Civil registry",
        }
    ]
    assert len(await h.call("GET", "/members")) == 2

    # Security server, its authentication certificate and a client.
    sid = {"server_id": "MN:GOV:5012345:ss1"}
    await h.call(
        "POST",
        "/security-servers",
        expect=201,
        json_body={"owner_id": "MN:GOV:5012345", "server_code": "ss1", "address": "ss1.old.mn"},
    )
    await h.call(
        "PATCH", "/security-servers/{server_id}", params=sid, json_body={"address": "ss1.example.mn"}
    )
    cert = await h.call(
        "POST",
        "/security-servers/{server_id}/auth-certs",
        params=sid,
        expect=201,
        json_body={"certificate": _pem(pki.member_auth.certificate)},
    )
    assert [
        c["sha256"] for c in await h.call("GET", "/security-servers/{server_id}/auth-certs", params=sid)
    ] == [cert["sha256"]]
    await h.call(
        "POST",
        "/security-servers/{server_id}/clients",
        params=sid,
        expect=201,
        json_body={"client_id": "MN:GOV:5012345:civil-registry"},
    )
    ss = await h.call("GET", "/security-servers/{server_id}", params=sid)
    assert ss["address"] == "ss1.example.mn"
    assert "MN:GOV:5012345:civil-registry" in ss["clients"]
    assert [s["security_server_id"] for s in await h.call("GET", "/security-servers")] == [
        "MN:GOV:5012345:ss1"
    ]

    # Global group.
    await h.call(
        "POST",
        "/global-groups",
        json_body={"code": "security-server-owners", "description": "Owners"},
        expect=201,
    )
    gid = {"group_code": "security-server-owners"}
    await h.call(
        "POST",
        "/global-groups/{group_code}/members",
        params=gid,
        json_body={"client_id": "MN:GOV:5012345"},
        expect=201,
    )
    assert (await h.call("GET", "/global-groups/{group_code}", params=gid))["members"] == ["MN:GOV:5012345"]
    assert len(await h.call("GET", "/global-groups")) == 1

    # Trust services: the CA (PEM, an intermediate with its OCSP responder as base64 DER) and the TSA.
    ca_body = {
        "certificate": _pem(pki.root.certificate),
        "certificate_profile_info": PROFILE,
        "intermediate_cas": [
            {
                "certificate": _b64(pki.intermediate.certificate),
                "ocsp_responders": [
                    {"url": "http://ocsp.example.mn", "certificate": _b64(pki.ocsp_responder.certificate)}
                ],
            }
        ],
    }
    ca = await h.call("POST", "/certification-services", json_body=ca_body, expect=201)
    assert ca["name"] == "MN dev root CA"
    assert ca["intermediate_cas"][0]["ocsp_responders"][0]["url"] == "http://ocsp.example.mn"
    await h.call("GET", "/certification-services/{name}", params={"name": ca["name"]})
    assert len(await h.call("GET", "/certification-services")) == 1
    tsa_body = {"url": "http://tsa.example.mn", "certificate": _b64(pki.tsa.certificate)}
    tsa = await h.call("POST", "/timestamping-services", json_body=tsa_body, expect=201)
    assert [t["name"] for t in await h.call("GET", "/timestamping-services")] == [tsa["name"]]

    # Management requests (recorded by the workflow the management service uses), approved and rejected.
    store = h.running.app[STORE_KEY]
    tax = MEMBER.subsystem("tax")
    first = await submit_request(
        store,
        ClientRegRequest(MEMBER.server("ss1"), tax, "Tax"),
        raw=None,
        auto_approve=frozenset(),
        user=str(MEMBER),
    )
    second = await submit_request(
        store,
        ClientRegRequest(MEMBER.server("ss1"), MEMBER.subsystem("health")),
        raw=None,
        auto_approve=frozenset(),
        user=str(MEMBER),
    )
    third = await submit_request(
        store,
        ClientRegRequest(MEMBER.server("ss1"), MEMBER.subsystem("education")),
        raw=None,
        auto_approve=frozenset(),
        user=str(MEMBER),
    )
    pending = await h.call("GET", "/management-requests", query="?state=submitted")
    assert [r["id"] for r in pending] == [first.id, second.id, third.id]
    revoked = await h.call(
        "POST",
        "/management-requests/{request_id}/revoke",
        params={"request_id": str(third.id)},
        json_body={"comment": "withdrawn by the owner"},
    )
    assert revoked["state"] == "revoked"
    assert [e["to_state"] for e in revoked["history"]] == ["submitted", "revoked"]
    await h.call(  # only a submitted request can be revoked
        "POST",
        "/management-requests/{request_id}/revoke",
        params={"request_id": str(third.id)},
        json_body={},
        expect=409,
    )
    await h.call(
        "POST",
        "/management-requests/{request_id}/approve",
        params={"request_id": str(first.id)},
        json_body={"comment": "ok"},
    )
    await h.call(
        "POST",
        "/management-requests/{request_id}/reject",
        params={"request_id": str(second.id)},
        json_body={},
    )
    approved = await h.call("GET", "/management-requests/{request_id}", params={"request_id": str(first.id)})
    assert approved["state"] == "approved"
    assert [e["to_state"] for e in approved["history"]] == ["submitted", "approved"]
    assert approved["history"][-1]["comment"] == "ok"

    # Anchors and the configuration served over HTTP show all of it.
    anchor = await h.call("GET", "/configuration-anchors/{kind}", params={"kind": "internal"})
    anchor_xml = await h.call("GET", "/configuration-anchors/{kind}/download", params={"kind": "internal"})
    assert anchor_hash(anchor["xml"].encode()) == anchor["hash"]
    assert (
        parse_anchor(anchor_xml).verification_certs == parse_anchor(anchor["xml"].encode()).verification_certs
    )
    external = await h.call("GET", "/configuration-anchors/{kind}", params={"kind": "external"})
    assert external["hash"] != anchor["hash"]
    assert len(anchor["hash"].split(":")) == 28
    regenerated = await h.call("POST", "/global-configuration/regenerate")
    assert (await h.call("GET", "/global-configuration"))["generated_at"] == regenerated["generated_at"]
    files = await _fetch_configuration(h, anchor_xml)
    shared = parse_shared_params(files["SHARED-PARAMETERS"])
    assert shared.ocsp_freshness_seconds == 900
    ministry = next(m for m in shared.members if m.member_code == "5012345")
    assert {s.code for s in ministry.subsystems} == {"civil-registry", "tax"}
    (ss1,) = shared.security_servers
    assert ss1.address == "ss1.example.mn"
    assert ss1.auth_cert_hashes == (auth_cert_hash(pki.member_auth.certificate),)
    assert set(ss1.clients) == {sub, tax}
    assert shared.global_groups[0].members == (MEMBER,)
    assert shared.approved_cas[0].top_ca.cert == pki.root.certificate
    assert shared.approved_cas[0].intermediate_cas[0].ocsp[0].cert == pki.ocsp_responder.certificate
    assert shared.approved_tsas[0].cert == pki.tsa.certificate
    assert b"authCertRegServiceAddress>" + h.running.public_url.encode() in files["PRIVATE-PARAMETERS"]

    # Key rotation without a new anchor: a client holding the old anchor follows it.
    client = ConfigurationClient(
        parse_anchor(anchor_xml), tmp_path / "client", AiohttpConfigurationTransport(h.session)
    )
    await client.refresh()
    old_keys = await h.call("GET", "/configuration-signing-keys", query="?kind=internal")
    new_key = await h.call("POST", "/configuration-signing-keys", json_body={"kind": "internal"}, expect=201)
    assert new_key["active"] is False
    both = parse_anchor(
        (await h.call("GET", "/configuration-anchors/{kind}", params={"kind": "internal"}))["xml"].encode()
    )
    assert len(both.verification_certs) == 2
    await h.call("POST", "/global-configuration/regenerate")
    shared = parse_shared_params((await _fetch_configuration(h, anchor_xml))["SHARED-PARAMETERS"])
    assert len(shared.sources[0].internal_verification_certs) == 2
    await client.refresh()  # installs the configuration that announces the new key
    await h.call(
        "POST", "/configuration-signing-keys/{key_id}/activate", params={"key_id": new_key["key_id"]}
    )
    keys = await h.call("GET", "/configuration-signing-keys", query="?kind=internal")
    assert [(k["key_id"], k["active"]) for k in keys] == [(new_key["key_id"], True)]
    assert old_keys[0]["key_id"] != new_key["key_id"]
    await h.call("POST", "/global-configuration/regenerate")
    with pytest.raises(XRoadError) as refused:
        await _fetch_configuration(h, anchor_xml)
    assert refused.value.has_code(FaultCode.GLOBAL_CONF_INVALID)  # the old anchor alone no longer verifies it
    result = await client.refresh()  # ... but the installed sources do
    assert result.own.expire_date > datetime.now(UTC)
    spare = await h.call("POST", "/configuration-signing-keys", json_body={"kind": "external"}, expect=201)
    await h.call(
        "DELETE", "/configuration-signing-keys/{key_id}", params={"key_id": spare["key_id"]}, expect=204
    )

    # Deletions.
    await h.call(
        "DELETE",
        "/security-servers/{server_id}/clients/{client_id}",
        params={**sid, "client_id": "MN:GOV:5012345:tax"},
        expect=204,
    )
    await h.call(
        "DELETE",
        "/security-servers/{server_id}/auth-certs/{cert_hash}",
        params={**sid, "cert_hash": cert["sha256"]},
        expect=204,
    )
    await h.call(
        "DELETE",
        "/global-groups/{group_code}/members/{client_id}",
        params={**gid, "client_id": "MN:GOV:5012345"},
        expect=204,
    )
    await h.call("DELETE", "/timestamping-services/{name}", params={"name": tsa["name"]}, expect=204)
    await h.call("DELETE", "/certification-services/{name}", params={"name": ca["name"]}, expect=204)
    assert await h.call("GET", "/certification-services") == []

    # Every operation of the document was called with a 2xx.
    async with h.session.get(h.running.admin_url + "/api/v1/openapi.json") as resp:
        assert resp.status == 200
        document = await resp.json()
    assert document["openapi"].startswith("3.")
    documented = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert documented - h.called == set()
    assert h.called <= documented

    # Every change is in the audit log, with the API key's id as the user.
    events = [line["event"] for line in h.audit_lines()]
    for event in (
        "Add member",
        "Add certification service",
        "Approve management request",
        "Revoke management request",
        "Revoke management request failed",
        "Activate configuration signing key",
        "Delete certification service",
    ):
        assert event in events


# -- refusals -----------------------------------------------------------------------------------------


def _error(data: bytes) -> dict[str, str]:
    body: dict[str, str] = json.loads(data)
    assert set(body) == {"type", "message", "detail"}
    return body


async def test_authentication_and_roles(registry: Harness) -> None:
    h = registry
    status, data, headers = await h.raw("GET", "/members", key=None)
    assert status == 401
    assert _error(data)["type"] == "client.unauthorized"
    assert headers["X-Road-Error"] == "client.unauthorized"
    status, data, _ = await h.raw(
        "GET", "/members", key=None, headers={"Authorization": "X-Road-ApiKey token=nope"}
    )
    assert status == 401
    status, _, _ = await h.raw(
        "GET", "/members", key=None, headers={"Authorization": "Bearer " + h.tokens["admin"]}
    )
    assert status == 401

    assert await h.call("GET", "/members", key="observer")
    body = json.dumps({"member_class": "GOV", "member_code": "42", "name": "X"}).encode()
    status, data, _ = await h.raw("POST", "/members", key="observer", body=body)
    assert status == 403
    assert _error(data)["type"] == "client.forbidden"
    ca = json.dumps({"certificate": "x", "certificate_profile_info": PROFILE}).encode()
    status, _, _ = await h.raw("POST", "/certification-services", key="officer", body=ca)
    assert status == 403  # trust services are the security officer's
    await h.call(
        "POST",
        "/members",
        key="officer",
        expect=201,
        json_body={"member_class": "GOV", "member_code": "42", "name": "X"},
    )
    assert await h.call("GET", "/members", key="observer") is not None

    lines = h.audit_lines()
    assert any(line["event"] == "API key authentication failed" and line["user"] is None for line in lines)
    refused = [line for line in lines if line["event"] == "Add member failed"]
    assert refused
    assert refused[0]["data"]["reason"]["code"] == "client.forbidden"
    added = [line for line in lines if line["event"] == "Add member"]
    assert added[0]["data"]["member_id"] == "MN:GOV:42"
    assert added[0]["user"] != "observer"
    assert {"event", "user", "time", "data"} <= set(added[0])

    # The public socket does not serve the admin API; the admin socket does not need to serve globalconf.
    async with h.session.get(h.running.public_url + "/api/v1/members") as resp:
        assert resp.status == 404
    async with h.session.get(h.running.public_url + "/internalconf?version=6") as resp:
        assert resp.status == 200


async def test_bodies_and_errors(registry: Harness) -> None:
    h = registry
    big = json.dumps({"member_class": "GOV", "member_code": "1", "name": "x" * 60_000}).encode()
    status, data, _ = await h.raw("POST", "/members", body=big)
    assert status == 413
    assert _error(data)["type"] == "client.request_too_large"
    status, data, _ = await h.raw("POST", "/members", body=b'{"member_class": "GOV",')
    assert status == 400
    error = _error(data)
    assert error["type"] == "client.invalid_body"
    assert "not valid JSON" in error["message"]
    status, data, _ = await h.raw(
        "POST", "/members", body=b'{"member_class": "GOV", "member_code": "1", "name": "x", "extra": 1}'
    )
    assert status == 400
    assert "extra" in _error(data)["message"]
    status, data, _ = await h.raw("POST", "/members", body=b"[]")
    assert status == 400
    body = json.dumps({"member_class": "GOV", "member_code": "1000001", "name": "dup"}).encode()
    status, data, _ = await h.raw("POST", "/members", body=body)
    assert status == 409
    assert _error(data)["type"] == "client.conflict"
    status, data, _ = await h.raw("GET", "/members/MN:GOV:404")
    assert status == 404
    status, data, _ = await h.raw("GET", "/members/not-an-id")
    assert status == 400
    status, data, _ = await h.raw(
        "POST", "/timestamping-services", body=b'{"url": "http://tsa", "certificate": "bm90IGEgY2VydA=="}'
    )
    assert status == 400
    assert "certificate" in _error(data)["message"]
    status, _, _ = await h.raw("GET", "/configuration-anchors/sideways")
    assert status == 404
    status, data, _ = await h.raw("POST", "/management-requests/12345/approve", body=b"{}")
    assert status == 404
    status, data, _ = await h.raw("GET", "/members", headers={"Accept": "text/xml"})
    assert status == 200
    status, data, _ = await h.raw("GET", "/nowhere", headers={"Accept": "text/xml"})
    assert status == 404
    assert data.startswith(b"<?xml")

    failed = [line for line in h.audit_lines() if line["event"] == "Add member failed"]
    codes = [line["data"]["reason"]["code"] for line in failed]
    assert codes == ["client.request_too_large", "client.invalid_body", "client.invalid_body",
                     "client.invalid_body", "client.conflict"]  # fmt: skip


async def test_rate_limit(start_registry: Callable[..., AbstractAsyncContextManager[Harness]]) -> None:
    async with start_registry(rate_limit_per_second=5, rate_limit_per_minute=600) as h:
        statuses = [(await h.raw("GET", "/instance"))[0] for _ in range(8)]
        assert statuses[:5] == [200] * 5
        assert 429 in statuses[5:]
        status, data, _ = await h.raw("GET", "/instance")
        assert status == 429
        assert _error(data)["type"] == "client.rate_limit_exceeded"
        # Per API key: another key still gets through.
        assert (await h.raw("GET", "/instance", key="observer"))[0] == 200


def test_token_buckets() -> None:
    now = [0.0]
    limiter = RateLimiter(per_second=20, per_minute=600, clock=lambda: now[0])
    assert all(limiter.allow("k") for _ in range(20))
    assert not limiter.allow("k")
    allowed = 20
    for _ in range(59):  # one minute at 20/s would be 1200: the per-minute bucket stops it at 600
        now[0] += 1.0
        allowed += sum(limiter.allow("k") for _ in range(20))
    assert 600 <= allowed <= 600 + 60 * 10
    assert limiter.check("k") is not None
    now[0] += 120
    assert limiter.allow("k")


def _iter_paths(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def test_openapi_document_shape() -> None:
    from registry.api import API

    document = API.document()
    ids = [op["operationId"] for _, _, op in _iter_paths(document)]
    assert len(ids) == len(set(ids))
    for path, method, op in _iter_paths(document):
        for name in [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]:
            assert "{" + name + "}" in path
        if method != "get":
            assert "Roles:" in op["description"]
    assert document["components"]["securitySchemes"]["ApiKeyAuth"]["name"] == "Authorization"


def _port_free_on(*hosts: str) -> int:
    """A port no socket listens on at any of ``hosts`` (found by binding port 0 on the first)."""
    for _ in range(20):
        with socket.create_server((hosts[0], 0)) as probe:
            port = int(probe.getsockname()[1])
        try:
            for host in hosts[1:]:
                socket.create_server((host, port)).close()
        except OSError:
            continue
        return port
    raise AssertionError("no common free port")


async def test_admin_api_is_never_on_the_public_socket_even_on_the_same_port(
    start_registry: Callable[..., AbstractAsyncContextManager[Harness]],
) -> None:
    """Admin 127.0.0.1:P and public 127.0.0.37:P: the public socket serves only distribution and the
    registration service, whatever the addresses."""
    port = _port_free_on("127.0.0.1", "127.0.0.37")
    async with start_registry(
        admin_host="127.0.0.1", admin_port=port, public_host="127.0.0.37", public_port=port
    ) as h:
        assert h.running.public_url == f"http://127.0.0.37:{port}"
        await h.call("GET", "/members")  # the admin socket
        auth = {"Authorization": f"X-Road-ApiKey token={h.tokens['admin']}"}
        for method, path in (("GET", "/api/v1/members"), ("POST", "/managementservice/manage/")):
            async with h.session.request(method, h.running.public_url + path, headers=auth) as resp:
                assert resp.status == 404, path
                assert resp.headers["X-Road-Error"] == "client.not_found"
        async with h.session.get(h.running.public_url + "/internalconf?version=6") as resp:
            assert resp.status == 200


def test_admin_and_public_sockets_must_differ(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must differ"):
        RegistrySettings(home=tmp_path, admin_port=8080, public_port=8080)
    RegistrySettings(home=tmp_path, admin_port=8080, public_host="127.0.0.2", public_port=8080)
    RegistrySettings(home=tmp_path, admin_port=0, public_port=0)  # two free ports


async def test_management_requests_are_paginated_without_raw(registry: Harness) -> None:
    h = registry
    store = h.running.app[STORE_KEY]
    ids = [
        (
            await store.submit_request(
                ClientRegRequest(MEMBER.server("ss1"), MEMBER.subsystem(f"s{i}")), raw=b"<raw/>" * 100
            )
        ).id
        for i in range(5)
    ]
    assert [r["id"] for r in await h.call("GET", "/management-requests")] == ids
    page = await h.call("GET", "/management-requests", query="?limit=2&offset=1")
    assert [r["id"] for r in page] == ids[1:3]
    assert await h.call("GET", "/management-requests", query="?offset=5") == []
    for bad in ("?limit=1001", "?limit=-1", "?limit=x", "?offset=1.5"):
        await h.call("GET", "/management-requests", query=bad, expect=400)
    assert [r.raw for r in await store.list_requests(limit=1000)] == [None] * 5
    assert (await store.get_request(ids[0])).raw == b"<raw/>" * 100
    assert [r.id for r in await store.list_requests(limit=2, offset=3)] == ids[3:]


async def test_default_page_is_limited(registry: Harness) -> None:
    store = registry.running.app[STORE_KEY]
    for i in range(DEFAULT_PAGE_LIMIT + 1):
        await store.submit_request(ClientRegRequest(MEMBER.server("ss1"), MEMBER.subsystem(f"s{i}")))
    assert len(await registry.call("GET", "/management-requests")) == DEFAULT_PAGE_LIMIT


async def test_failed_login_audits_a_truncated_path(registry: Harness) -> None:
    h = registry
    status, _, _ = await h.raw("GET", "/members/" + "x" * 7000, key=None)
    assert status == 401
    (line,) = [a for a in h.audit_lines() if a["event"] == "API key authentication failed"]
    assert len(line["data"]["path"]) == MAX_AUDITED_PATH_CHARS
    assert line["data"]["path"].startswith("/api/v1/members/xxx")


async def test_configuration_expiry_must_outlive_two_regenerations(registry: Harness, tmp_path: Path) -> None:
    h = registry  # regenerate_interval_seconds=3600
    status, body, _ = await h.raw(
        "PATCH", "/global-settings", body=json.dumps({"configuration_expiry_seconds": 1}).encode()
    )
    assert status == 400
    assert "twice" in json.loads(body)["message"]
    assert (await h.call("GET", "/global-settings"))["configuration_expiry_seconds"] != 1
    updated = await h.call("PATCH", "/global-settings", json_body={"configuration_expiry_seconds": 7200})
    assert updated["configuration_expiry_seconds"] == 7200
    with pytest.raises(ValueError, match="twice"):
        RegistrySettings(home=tmp_path, configuration_expiry_seconds=1)
    with pytest.raises(ValueError, match="twice"):
        RegistrySettings(home=tmp_path, configuration_expiry_seconds=119, regenerate_interval_seconds=60)
    RegistrySettings(home=tmp_path, configuration_expiry_seconds=120, regenerate_interval_seconds=60)


def test_sources_name_host_and_port_only(tmp_path: Path) -> None:
    """``public_addresses`` with a scheme: shared-params ``source`` gets host[:port] (X-Road builds
    ``https://ADDRESS/internalconf`` from it); anchors keep the scheme."""
    settings = RegistrySettings(
        home=tmp_path,
        public_addresses=("https://cs.example.mn:8443", "http://cs2.example.mn/", "cs3.example.mn"),
    )
    assert settings.source_addresses() == ("cs.example.mn:8443", "cs2.example.mn", "cs3.example.mn")
    assert settings.anchor_addresses() == (
        "https://cs.example.mn:8443",
        "http://cs2.example.mn/",
        "cs3.example.mn",
    )
    assert settings.management_service_address() == "https://cs.example.mn:8443/managementservice/"


async def test_published_source_address_has_no_scheme(
    start_registry: Callable[..., AbstractAsyncContextManager[Harness]],
) -> None:
    async with start_registry(public_addresses=("https://cs.example.mn:8443",)) as h:
        conf = h.running.app[PUBLISHER_KEY].current()
        shared_xml = next(
            d for loc, d in conf.versions[6].files.items() if loc.endswith("/shared-params.xml")
        )
        shared = parse_shared_params(shared_xml)
        assert [s.address for s in shared.sources] == ["cs.example.mn:8443"]
        anchor = parse_anchor(
            await h.call("GET", "/configuration-anchors/{kind}/download", params={"kind": "internal"})
        )
        assert [s.download_url for s in anchor.sources] == ["https://cs.example.mn:8443/internalconf"]


async def test_a_revoked_api_key_stops_working_at_once_despite_the_cache(registry: Harness) -> None:
    h = registry
    path = h.settings.api_keys_path()
    created = create_api_key(path, {Role.OBSERVER}, datetime.now(UTC))
    h.tokens["temporary"] = created.token
    for _ in range(3):  # verified once, then answered from the cache
        await h.call("GET", "/members", key="temporary")
    assert h.running.app[API_KEYS_KEY].cached >= 1
    revoke_api_key(path, created.key.key_id)
    status, body, _ = await h.raw("GET", "/members", key="temporary")
    assert status == 401, body
    await h.call("GET", "/members", key="observer")  # the other keys keep working
    with pytest.raises(XRoadError) as exc:
        revoke_api_key(path, created.key.key_id)
    assert exc.value.code == FaultCode.NOT_FOUND


async def test_the_api_key_cache_is_bounded_and_emptied_by_any_change(tmp_path: Path) -> None:
    path = tmp_path / "api-keys.json"
    ring = ApiKeyRing(path, cache_size=2)
    assert await ring.authenticate("no keys file yet") is None
    now = datetime.now(UTC)
    created = [create_api_key(path, {Role.OBSERVER}, now) for _ in range(3)]
    for c in created:
        assert await ring.authenticate(c.token) == c.key
    assert ring.cached == 2
    assert await ring.authenticate(created[0].token) == created[0].key  # evicted, verified again
    assert await ring.authenticate("x" + created[0].token) is None
    assert await ring.authenticate("") is None
    newer = create_api_key(path, {Role.SECURITY_OFFICER}, now)
    assert await ring.authenticate(newer.token) == newer.key
    assert ring.cached == 1  # the change emptied the cache
    path.unlink()
    assert await ring.authenticate(newer.token) is None
