"""The node's admin API, served by ``run_node``, against the real registry and dev trust services: every
documented operation is called over HTTP (on SQLite and PostgreSQL), with X-Road's security server roles,
audited; bad input gets a clear X-Road error and changes nothing."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.api import API
from security_server.api.call import OCSP_REFRESHER_KEY, STORE_KEY
from security_server.app import GLOBALCONF_KEY, run_node
from security_server.certs import request_certificate
from security_server.db import KeyUsage
from security_server.home import audit_log_file
from security_server.messagelog import MessageLogStore
from security_server.operations import InitResult
from tests.registry.test_e2e import pinned_context
from tests.security_server.conftest import BACKENDS
from tests.security_server.messagelog_fixtures import record_for
from tests.security_server.node_world import PIN, Admin, database_settings, init_test_node
from tests.security_server.test_registration import GENEROUS, World, running_world
from xroad_mn.signature import SignatureData

SUBSYSTEM = "MN:GOV:9010001:civil-registry"
PEOPLE = "people"


async def _next_globalconf(admin_app: Any) -> None:
    """One more configuration round (download, then registration states) of the running node."""
    refresher = admin_app[GLOBALCONF_KEY]
    rounds = refresher.rounds
    refresher.wake()
    await refresher.wait_for_round(rounds)


async def _next_ocsp(admin_app: Any) -> None:
    refresher = admin_app[OCSP_REFRESHER_KEY]
    rounds = refresher.refreshes
    refresher.wake()
    await refresher.wait_for_round(rounds)


async def _keys_and_certificates(api: Admin, world: World) -> None:
    for usage in ("sign", "auth"):
        imported = await api.call(
            "POST",
            "/certificates/request",
            body={"usage": usage, "ca_url": world.trust.urls.base},
            expect=201,
        )
        assert imported["status"] == ("registered" if usage == "sign" else "saved")
    # A key, then its CSR; the CSR deleted, the key deleted.
    key = await api.call(
        "POST", "/keys", body={"usage": "sign", "member_id": "MEMBER:MN/GOV/9010001"}, expect=201
    )
    assert key["member_id"] == "MN:GOV:9010001"
    csr = await api.call("POST", "/keys/{key_id}/csrs", params={"key_id": key["key_id"]}, body={}, expect=201)
    assert any(c["id"] == csr["id"] for c in await api.call("GET", "/csrs", expect=200))
    await api.call("DELETE", "/csrs/{csr_id}", params={"csr_id": str(csr["id"])}, expect=204)
    await api.call("DELETE", "/keys/{key_id}", params={"key_id": key["key_id"]}, expect=204)
    # Key and CSR at once; the CA answers out of band; the certificate is imported, disabled, deleted.
    csr = await api.call("POST", "/csrs", body={"usage": "sign"}, expect=201)
    request = x509.load_der_x509_csr(base64.b64decode(csr["der_base64"]))
    cert = await request_certificate(api.session, world.trust.urls.base, request, KeyUsage.SIGNING)
    pem = cert.public_bytes(Encoding.PEM).decode()
    imported = await api.call("POST", "/certificates", body={"certificate": pem}, expect=201)
    sha = imported["certificate"]["sha256"]
    assert imported["member_id"] == "MN:GOV:9010001"
    await api.call(
        "PATCH", "/certificates/{sha256}", params={"sha256": sha}, body={"active": False}, expect=200
    )
    await api.call("DELETE", "/certificates/{sha256}", params={"sha256": sha}, expect=204)
    await api.call("DELETE", "/keys/{key_id}", params={"key_id": csr["key_id"]}, expect=204)
    assert len(await api.call("GET", "/certificates", expect=200)) == 2
    assert len(await api.call("GET", "/keys", expect=200)) == 2
    # Something that is not a certificate is refused; nothing changes.
    refused = await api.call("POST", "/certificates", body={"certificate": "bm90IGEgY2VydA=="}, expect=400)
    assert refused["type"] == "client.incorrect_certificate"
    assert len(await api.call("GET", "/certificates", expect=200)) == 2


async def _clients_and_registration(api: Admin, world: World, app: Any) -> None:
    answer = await api.call("POST", "/registration/auth-certificate", body={}, expect=202)
    await world.approve(answer["request_id"])
    added = await api.call("POST", "/clients", key="registration", body={"client_id": SUBSYSTEM}, expect=201)
    assert added == {"client_id": SUBSYSTEM, "connection_type": "SSLAUTH", "state": "saved"}
    # A duplicate, in the other form, is refused and changes nothing.
    before = await api.call("GET", "/clients", expect=200)
    dup = await api.call(
        "POST", "/clients", body={"client_id": "SUBSYSTEM:MN/GOV/9010001/civil-registry"}, expect=409
    )
    assert dup["type"] == "client.conflict"
    assert await api.call("GET", "/clients", expect=200) == before
    params = {"client_id": SUBSYSTEM}
    answer = await api.call("POST", "/clients/{client_id}/register", params=params, body={}, expect=202)
    await world.approve(answer["request_id"])
    await _next_globalconf(app)
    await api.call("POST", "/registration/sync", key="system", expect=200)
    client = await api.call("GET", "/clients/{client_id}", params=params, expect=200)
    assert client["state"] == "registered"
    changed = await api.call(
        "PATCH",
        "/clients/{client_id}",
        key="system",
        params=params,
        body={"connection_type": "NOSSL"},
        expect=200,
    )
    assert changed["connection_type"] == "NOSSL"
    tls = world.tls_cert.public_bytes(Encoding.PEM).decode()
    out = await api.call(
        "POST", "/clients/{client_id}/tls-certificates", params=params, body={"certificate": tls}, expect=201
    )
    assert len(await api.call("GET", "/clients/{client_id}/tls-certificates", params=params, expect=200)) == 1
    await api.call(
        "DELETE",
        "/clients/{client_id}/tls-certificates/{sha256}",
        params={**params, "sha256": out["sha256"]},
        expect=204,
    )
    other = {"client_id": "SUBSYSTEM:MN/GOV/9010001/archive"}
    await api.call("POST", "/clients", body={"client_id": other["client_id"]}, expect=201)
    await api.call("DELETE", "/clients/{client_id}", params=other, expect=204)


async def _services_and_access(api: Admin) -> None:
    params = {"client_id": SUBSYSTEM}
    svc = {**params, "service_code": PEOPLE}
    desc = await api.call(
        "POST",
        "/clients/{client_id}/service-descriptions",
        key="services",
        params=params,
        body={"type": "REST", "url": "http://127.0.0.1:9/people", "service_code": PEOPLE},
        expect=201,
    )
    did = {"description_id": str(desc["id"])}
    # A REST service may not take a metaservice's code: X-Road's reserved codes hold here as in a description.
    reserved = await api.call(
        "POST",
        "/clients/{client_id}/service-descriptions",
        key="services",
        params=params,
        body={"type": "REST", "url": "http://127.0.0.1:9/meta", "service_code": "listMethods"},
        expect=400,
    )
    assert reserved["type"] == "client.invalid_service_identifier"
    assert "reserved for X-Road's metaservices" in reserved["message"]
    assert (
        len(await api.call("GET", "/clients/{client_id}/service-descriptions", params=params, expect=200))
        == 1
    )
    await api.call("GET", "/service-descriptions/{description_id}", params=did, expect=200)
    disabled = await api.call(
        "PATCH", "/service-descriptions/{description_id}", params=did,
        body={"disabled": True, "disabled_notice": "maintenance"}, expect=200,
    )  # fmt: skip
    assert disabled["disabled"] is True
    await api.call("POST", "/service-descriptions/{description_id}/refresh", params=did, body={}, expect=200)
    await api.call("GET", "/clients/{client_id}/services/{service_code}", params=svc, expect=200)
    service = await api.call(
        "PATCH",
        "/clients/{client_id}/services/{service_code}",
        params=svc,
        body={"timeout_seconds": 30},
        expect=200,
    )
    assert service["timeout_seconds"] == 30
    endpoint = await api.call(
        "POST", "/clients/{client_id}/services/{service_code}/endpoints", params=svc,
        body={"method": "get", "path": "/people/*"}, expect=201,
    )  # fmt: skip
    eid = {"endpoint_id": str(endpoint["id"])}
    await api.call(
        "PATCH",
        "/endpoints/{endpoint_id}",
        params=eid,
        body={"method": "GET", "path": "/people/**"},
        expect=200,
    )
    endpoints = await api.call(
        "GET", "/clients/{client_id}/services/{service_code}/endpoints", params=svc, expect=200
    )
    assert {(e["method"], e["path"]) for e in endpoints} == {("*", "**"), ("GET", "/people/**")}

    # Local groups.
    group = {**params, "code": "auditors"}
    await api.call(
        "POST", "/clients/{client_id}/local-groups", params=params,
        body={"code": "auditors", "description": "Audit office"}, expect=201,
    )  # fmt: skip
    await api.call(
        "PATCH",
        "/clients/{client_id}/local-groups/{code}",
        params=group,
        body={"description": "Audit"},
        expect=200,
    )
    members = {"members": ["MN:COM:9011223:bank", "MEMBER:MN/GOV/9010001"]}
    added = await api.call(
        "POST", "/clients/{client_id}/local-groups/{code}/members", params=group, body=members, expect=200
    )
    assert added["members"] == ["MN:COM:9011223:bank", "MN:GOV:9010001"]
    removed = await api.call(
        "POST", "/clients/{client_id}/local-groups/{code}/members/delete", params=group,
        body={"members": ["MN:GOV:9010001"]}, expect=200,
    )  # fmt: skip
    assert removed["members"] == ["MN:COM:9011223:bank"]
    assert (await api.call("GET", "/clients/{client_id}/local-groups/{code}", params=group, expect=200))[
        "code"
    ] == "auditors"
    assert len(await api.call("GET", "/clients/{client_id}/local-groups", params=params, expect=200)) == 1

    # Access rights: the whole service, one endpoint, a local group.
    rights = "/clients/{client_id}/services/{service_code}/access-rights"
    await api.call("POST", rights, params=svc, body={"subjects": ["MN:COM:9011223:bank"]}, expect=201)
    await api.call(
        "POST", rights, params=svc,
        body={"subjects": ["LOCALGROUP:auditors", "GLOBALGROUP:MN/security-server-owners"], "method": "GET",
              "path": "/people/**"},
        expect=201,
    )  # fmt: skip
    listed = await api.call("GET", "/clients/{client_id}/access-rights", params=params, expect=200)
    assert len(listed) == 3
    # A service that does not exist: not_found, nothing granted.
    missing = await api.call(
        "POST",
        rights,
        params={**params, "service_code": "nosuch"},
        body={"subjects": ["MN:COM:9011223:bank"]},
        expect=404,
    )
    assert missing["type"] == "client.not_found"
    no_endpoint = await api.call(
        "POST",
        rights,
        params=svc,
        body={"subjects": ["MN:COM:9011223:bank"], "method": "POST", "path": "/x"},
        expect=404,
    )
    assert no_endpoint["type"] == "client.not_found"
    assert await api.call("GET", "/clients/{client_id}/access-rights", params=params, expect=200) == listed
    await api.call(
        "POST", rights + "/delete", params=svc, body={"subjects": ["MN:COM:9011223:bank"]}, expect=204
    )
    await api.call("DELETE", "/clients/{client_id}/local-groups/{code}", params=group, expect=204)
    assert await api.call("GET", "/clients/{client_id}/access-rights", params=params, expect=200) == [
        r for r in listed if r["subject"] == "GLOBALGROUP:MN/security-server-owners"
    ]
    await api.call("DELETE", "/endpoints/{endpoint_id}", params=eid, expect=204)
    await api.call("DELETE", "/service-descriptions/{description_id}", params=did, expect=204)


async def _message_log(api: Admin, app: Any) -> None:
    """The log's operations on the running node: only xroad-mn's log roles read it (records logged
    directly; their signatures are not checked here, and unstamped records are listed, not exported)."""
    log = MessageLogStore(app[STORE_KEY].engine)
    try:
        ids = await log.insert_records(
            [record_for("q-1", SignatureData(b"<sig/>", None, None), response=r) for r in (False, True)],
            at=datetime.now(UTC),
        )
    finally:
        log.close()
    page = await api.call("POST", "/messagelog/search", key="auditor", body={"x_road_id": "q-1"}, expect=200)
    assert [r["id"] for r in page["records"]] == ids
    record = {"record_id": str(ids[0])}
    await api.call("GET", "/messagelog/records/{record_id}", key="auditor", params=record, expect=200)
    await api.call(
        "GET", "/messagelog/records/{record_id}/body", key="body_reader", params=record, expect=200
    )
    await api.call("GET", "/messagelog/records/{record_id}/body", key="auditor", params=record, expect=403)
    headers = {"Authorization": f"X-Road-ApiKey token={api.tokens['body_reader']}"}
    async with api.session.post(
        api.base + "/api/v1/messagelog/export", json={"x_road_id": "q-1"}, headers=headers
    ) as resp:
        assert resp.status == 200
        with zipfile.ZipFile(io.BytesIO(await resp.read())) as zf:
            manifest = json.loads(zf.read("manifest.json"))
    api.called.add(("POST", "/api/v1/messagelog/export"))
    assert manifest["node"] == "SERVER:MN/GOV/9010001/ss1"
    assert [s["record_id"] for s in manifest["skipped"]] == ids
    for key in ("admin", "security", "system", "observer"):
        await api.call("POST", "/messagelog/search", key=key, body={}, expect=403)
    await api.call("GET", "/clients", key="auditor", expect=403)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_every_documented_operation_over_http(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    async with running_world(tmp_path) as world, database_settings(backend, request) as db:
        home = tmp_path / "ss1"
        init: InitResult = await init_test_node(
            world, home, "127.0.0.36", settings={"admin_port": 0, "ocsp_responder_port": 0, **GENEROUS, **db}
        )
        assert (init.server.server_code, init.instance) == ("ss1", "MN")
        async with run_node(init.settings, pin=PIN, globalconf_ssl=pinned_context(world.tls_cert)) as node:
            assert node.admin_url.startswith("http://127.0.0.36:")
            api = Admin.with_role_keys(world.session, node.admin_url, home, init.api_key)
            document = await api.call("GET", "/openapi.json", expect=200)
            status = await api.call("GET", "/status", key="observer", expect=200)
            assert status["server_id"] == "MN:GOV:9010001:ss1"
            assert status["token"]["state"] == "logged_in"
            assert status["global_configuration"]["instance"] == "MN"
            assert status["clients"] == [
                {"client_id": "MN:GOV:9010001", "connection_type": "SSLAUTH", "state": "saved"}
            ]
            await api.call("GET", "/token", expect=200)
            metrics = await api.call("GET", "/metrics", key="observer", expect=200)
            assert b"\nxroad_globalconf_valid 1.0\n" in metrics

            await _keys_and_certificates(api, world)
            await _clients_and_registration(api, world, node.app)
            await _services_and_access(api)
            await _message_log(api, node.app)

            await _next_ocsp(node.app)
            status = await api.call("GET", "/status", expect=200)
            auth = [c for c in status["certificates"] if c["usage"] == "auth"]
            assert [(c["status"], c["ocsp_status"]) for c in auth] == [("registered", "good")]
            assert {c["client_id"]: c["state"] for c in status["clients"]} == {
                "MN:GOV:9010001": "registered",
                SUBSYSTEM: "registered",
            }

            # Roles: an observer reads only; a service administrator holds no keys.
            forbidden = await api.call("POST", "/keys", key="observer", body={"usage": "auth"}, expect=403)
            assert forbidden["type"] == "client.forbidden"
            await api.call(
                "POST", "/clients", key="services", body={"client_id": "MN:GOV:9010001:x"}, expect=403
            )

        documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
        assert documented == {(op.method, API.spec.full_path(op)) for op in API.spec}
        assert api.called - {("GET", "/api/v1/openapi.json")} == documented

    audit = [json.loads(line) for line in audit_log_file(home).read_text().splitlines()]
    events = {a["event"] for a in audit}
    assert {
        "Add client",
        "Register client",
        "Register authentication certificate",
        "Request certificate",
    } <= events
    assert {"Add client failed", "Add access rights to service failed", "Generate key failed"} <= events
    assert all(a["user"] is not None for a in audit if a["event"] == "Add client failed")
