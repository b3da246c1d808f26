"""The node's data layer on SQLite and PostgreSQL: migrations, identity, clients, IS certificates, service
descriptions, services, endpoints, access rights and the access decision, local groups, and token records."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from security_server.db import (
    HEAD_REVISION,
    MIGRATIONS_DIR,
    CertificateStatus,
    ClientState,
    ConnectionType,
    DescriptionType,
    KeyUsage,
    NewEndpoint,
    NewService,
    NodeStore,
    migrate,
)
from security_server.db.models import Base
from tests.security_server.conftest import OWNER
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import GlobalGroupId, LocalGroupId, MemberId
from xroad_mn.wire.faults import http_status_of

PROVIDER = OWNER.subsystem("civil-registry")
BANK = MemberId("MN", "COM", "9011223").subsystem("bank")
TAX = MemberId("MN", "GOV", "6012345").subsystem("tax")
ESTONIA = MemberId("EE", "GOV", "70000001").subsystem("xtee")
API = "https://civil-registry.internal/api"


async def _fails(aw: Awaitable[Any], code: str, status: int | None) -> XRoadError:
    with pytest.raises(XRoadError) as exc:
        await aw
    assert exc.value.has_code(code), exc.value
    assert http_status_of(exc.value) == status
    return exc.value


def _cert(name: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def _csr(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )


async def _rest_provider(store: NodeStore) -> int:
    """PROVIDER with a REST service ``people`` and an OpenAPI service ``documents`` with two endpoints."""
    await store.add_client(PROVIDER)
    await store.add_service_description(
        PROVIDER, DescriptionType.REST, url=API, services=[NewService("people", url=API)]
    )
    openapi = await store.add_service_description(
        PROVIDER,
        DescriptionType.OPENAPI3,
        document=b'{"openapi": "3.0.3"}',
        services=[NewService("documents", url=API + "/documents")],
        endpoints=[
            NewEndpoint("documents", "GET", "/documents/*"),
            NewEndpoint("documents", "post", "/documents"),
        ],
    )
    return openapi.id


# -- migrations -----------------------------------------------------------------------------------------


def _diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


def _downgrade(conn: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    command.downgrade(config, revision)


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_migrations_create_the_models_schema_and_are_idempotent(node_db: AsyncEngine) -> None:
    async with node_db.connect() as conn:
        assert await conn.run_sync(_diff) == []
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert version == HEAD_REVISION == "n0007_opmon_counters"
    await migrate(node_db)  # already at head: nothing happens
    async with node_db.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM alembic_version"))).scalar_one() == 1
        assert (await conn.execute(text("SELECT count(*) FROM clients"))).scalar_one() == 0


async def test_migration_downgrades_to_nothing_and_back(node_db: AsyncEngine) -> None:
    async with node_db.begin() as conn:
        await conn.run_sync(_downgrade, "base")
        assert await conn.run_sync(_tables) <= {"alembic_version"}
    await migrate(node_db)
    async with node_db.connect() as conn:
        assert await conn.run_sync(_diff) == []


# -- identity and clients -------------------------------------------------------------------------------


async def test_uninitialised_node_refuses_clients_and_initialises_once(node_db: AsyncEngine) -> None:
    store = NodeStore(node_db)
    await _fails(store.get_server(), FaultCode.CONFLICT, 409)
    await _fails(store.add_client(PROVIDER), FaultCode.CONFLICT, 409)
    await _fails(store.init_server(OWNER, "ss 1"), FaultCode.INVALID_IDENTIFIER, 400)
    identity = await store.init_server(OWNER, "ss1")
    assert identity.server == OWNER.server("ss1")
    assert identity.address is None
    await _fails(store.init_server(OWNER, "ss2"), FaultCode.CONFLICT, 409)
    owner = await store.get_client(OWNER)
    assert (owner.connection_type, owner.state) == (ConnectionType.SSLAUTH, ClientState.SAVED)


async def test_server_address_and_owner_change(store: NodeStore) -> None:
    assert (await store.set_server_address("ss1.example.mn")).address == "ss1.example.mn"
    other = MemberId("MN", "GOV", "6012345")
    await _fails(store.change_owner(other), FaultCode.NOT_FOUND, 404)
    await store.add_client(other)
    assert (await store.change_owner(other)).server == other.server("ss1")
    await store.delete_client(OWNER)  # no longer the owner
    await _fails(store.delete_client(other), FaultCode.CONFLICT, 409)


async def test_clients_are_hosted_once_in_the_nodes_instance(store: NodeStore) -> None:
    added = await store.add_client(PROVIDER)
    assert added.connection_type is ConnectionType.SSLAUTH  # X-Road's default
    assert added.state is ClientState.SAVED
    await _fails(store.add_client(PROVIDER), FaultCode.CONFLICT, 409)
    await _fails(store.add_client(ESTONIA), FaultCode.INVALID_REQUEST, 400)
    await _fails(
        store.add_client(OWNER.subsystem("civil registry")), FaultCode.INVALID_CLIENT_IDENTIFIER, 400
    )
    await store.add_client(BANK.member, connection_type=ConnectionType.NOSSL)
    assert [c.client for c in await store.list_clients()] == [BANK.member, OWNER, PROVIDER]
    changed = await store.set_connection_type(PROVIDER, ConnectionType.SSLNOAUTH)
    assert changed.connection_type is ConnectionType.SSLNOAUTH
    for state in ClientState:
        assert (await store.set_client_state(PROVIDER, state)).state is state
    await store.delete_client(PROVIDER)
    await _fails(store.get_client(PROVIDER), FaultCode.NOT_FOUND, 404)
    await _fails(store.delete_client(OWNER), FaultCode.CONFLICT, 409)


XYP_OPERATION = "WS100101_getCitizenIDCardInfo"
"""An XYP service name: X-Road's strict identifier checks refuse its ``_``."""
XYP_GATEWAY = OWNER.subsystem("xyp_gateway")


def _xyp_wsdl(version: str = "v1", code: str = XYP_OPERATION) -> dict[str, Any]:
    return {"url": API + "/xyp.wsdl", "services": [NewService(code, version=version, url=API + "/xyp")]}


async def test_strict_mode_refuses_what_only_it_forbids_and_names_the_setting(store: NodeStore) -> None:
    await store.add_client(PROVIDER)
    for refused, code in (
        (store.add_client(XYP_GATEWAY), FaultCode.INVALID_CLIENT_IDENTIFIER),
        (
            store.add_service_description(PROVIDER, DescriptionType.WSDL, **_xyp_wsdl()),
            FaultCode.INVALID_IDENTIFIER,
        ),
        (
            store.add_service_description(PROVIDER, DescriptionType.WSDL, **_xyp_wsdl("v_1", "getCitizen")),
            FaultCode.INVALID_IDENTIFIER,
        ),
        (store.add_local_group(PROVIDER, "kyc_officers", "KYC officers"), FaultCode.INVALID_IDENTIFIER),
    ):
        error = await _fails(refused, code, 400)
        assert "'_' which X-Road identifiers do not allow in strict mode" in error.message
        assert error.message.endswith("(node setting strict_identifier_checks = true)")
        assert error.details["setting"] == "strict_identifier_checks"
    assert await store.list_service_descriptions(PROVIDER) == ()
    assert await store.list_local_groups(PROVIDER) == ()


async def test_without_strict_checks_the_store_takes_xyp_names_but_no_delimiters(
    node_db: AsyncEngine,
) -> None:
    store = NodeStore(node_db, strict_identifier_checks=False)
    assert (await store.init_server(OWNER, "ss_1")).server == OWNER.server("ss_1")
    await store.add_client(XYP_GATEWAY)
    added = await store.add_service_description(XYP_GATEWAY, DescriptionType.WSDL, **_xyp_wsdl("v_1"))
    assert [(s.code, s.version) for s in added.services] == [(XYP_OPERATION, "v_1")]
    await store.add_local_group(XYP_GATEWAY, "kyc_officers", "KYC officers")
    await store.add_local_group_members(XYP_GATEWAY, "kyc_officers", [BANK])
    await store.grant_access(XYP_GATEWAY, XYP_OPERATION, [LocalGroupId("kyc_officers")])
    assert await store.is_allowed(XYP_GATEWAY, XYP_OPERATION, BANK)
    assert not await store.is_allowed(XYP_GATEWAY, XYP_OPERATION, TAX)
    for refused in (  # the delimiters of X-Road's encodings: in no mode
        store.add_service_description(
            XYP_GATEWAY, DescriptionType.REST, url=API, services=[NewService("WS:1", url=API)]
        ),
        store.add_local_group(XYP_GATEWAY, "kyc/officers", "KYC officers"),
    ):
        error = await _fails(refused, FaultCode.INVALID_IDENTIFIER, 400)
        assert "strict" not in error.message
        assert "setting" not in error.details


async def test_information_system_certificates(store: NodeStore) -> None:
    await store.add_client(PROVIDER)
    cert = _cert("civil-registry-is")
    digest = await store.add_is_cert(PROVIDER, cert)
    assert digest == hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()
    await _fails(store.add_is_cert(PROVIDER, cert), FaultCode.CONFLICT, 409)
    await store.add_is_cert(OWNER, cert)  # the same certificate may serve another client
    assert await store.list_is_certs(PROVIDER) == (cert,)
    await store.delete_is_cert(PROVIDER, digest)
    assert await store.list_is_certs(PROVIDER) == ()
    await _fails(store.delete_is_cert(PROVIDER, digest), FaultCode.NOT_FOUND, 404)


# -- service descriptions, services and endpoints -------------------------------------------------------


async def test_descriptions_of_each_type_with_their_services_and_endpoints(store: NodeStore) -> None:
    await _rest_provider(store)
    wsdl = await store.add_service_description(
        PROVIDER,
        DescriptionType.WSDL,
        url="http://civil-registry.internal/registry.wsdl",
        services=[
            NewService("getPerson", "v1", url="http://civil-registry.internal/soap", title="A person"),
            NewService("getPerson", "v2", url="http://civil-registry.internal/soap"),
            NewService("listPeople", url="http://civil-registry.internal/soap", timeout_seconds=5),
        ],
    )
    assert [(s.code, s.version) for s in wsdl.services] == [
        ("getPerson", "v1"),
        ("getPerson", "v2"),
        ("listPeople", None),
    ]
    assert wsdl.services[2].timeout_seconds == 5
    assert wsdl.services[0].enabled
    assert wsdl.services[0].ssl_authentication
    descriptions = await store.list_service_descriptions(PROVIDER)
    assert [d.type for d in descriptions] == [
        DescriptionType.REST,
        DescriptionType.OPENAPI3,
        DescriptionType.WSDL,
    ]
    assert descriptions[1].document == b'{"openapi": "3.0.3"}'
    assert descriptions[1].url is None
    endpoints = {
        (e.service_code, e.method, e.path, e.generated) for e in await store.list_endpoints(PROVIDER)
    }
    assert endpoints == {
        ("people", "*", "**", True),
        ("documents", "*", "**", True),
        ("documents", "GET", "/documents/*", True),
        ("documents", "POST", "/documents", True),
        ("getPerson", "*", "**", True),
        ("listPeople", "*", "**", True),
    }
    assert await store.get_service_description(wsdl.id) == descriptions[2]


@pytest.mark.parametrize(
    ("type", "kwargs"),
    [
        (DescriptionType.REST, {"services": [NewService("a"), NewService("b")]}),  # REST: one service
        (DescriptionType.REST, {"services": [NewService("a")], "document": b"{}"}),
        (DescriptionType.OPENAPI3, {"url": API, "document": b"{}", "services": [NewService("a")]}),
        (DescriptionType.OPENAPI3, {"services": [NewService("a")]}),  # neither URL nor document
        (DescriptionType.WSDL, {"services": []}),
        (DescriptionType.WSDL, {"services": [NewService("a"), NewService("a")]}),
        (DescriptionType.WSDL, {"services": [NewService("a")], "endpoints": [NewEndpoint("a", "GET", "/")]}),
        (DescriptionType.OPENAPI3, {"document": b"{}", "services": [NewService("a")],
                                    "endpoints": [NewEndpoint("b", "GET", "/")]}),
        (DescriptionType.OPENAPI3, {"document": b"{}", "services": [NewService("a")],
                                    "endpoints": [NewEndpoint("a", "FETCH", "/")]}),
        (DescriptionType.OPENAPI3, {"document": b"{}", "services": [NewService("a")],
                                    "endpoints": [NewEndpoint("a", "GET", "relative")]}),
        (DescriptionType.REST, {"url": "ftp://x/y", "services": [NewService("a")]}),
        (DescriptionType.REST, {"services": [NewService("a", timeout_seconds=0)]}),
        (DescriptionType.REST, {"services": [NewService("a", url="file:///etc/passwd")]}),
        (DescriptionType.REST, {"services": [NewService("a b")]}),
    ],
)  # fmt: skip
async def test_malformed_descriptions_are_refused(
    store: NodeStore, type: DescriptionType, kwargs: dict[str, Any]
) -> None:
    await store.add_client(PROVIDER)
    if type is not DescriptionType.OPENAPI3 and "url" not in kwargs:
        kwargs = {**kwargs, "url": API}
    with pytest.raises(XRoadError) as exc:
        await store.add_service_description(PROVIDER, type, **kwargs)
    assert http_status_of(exc.value) == 400
    assert await store.list_service_descriptions(PROVIDER) == ()


async def test_duplicate_urls_and_service_codes_conflict(store: NodeStore) -> None:
    await _rest_provider(store)
    other = API + "/v2"
    await _fails(
        store.add_service_description(PROVIDER, DescriptionType.REST, url=API, services=[NewService("x")]),
        FaultCode.CONFLICT,
        409,
    )
    await _fails(
        store.add_service_description(
            PROVIDER, DescriptionType.REST, url=other, services=[NewService("people")]
        ),
        FaultCode.CONFLICT,
        409,
    )
    assert len(await store.list_service_descriptions(PROVIDER)) == 2  # nothing of the refused ones is kept
    await store.add_client(OWNER.subsystem("other"))  # another client may use the same URL and codes
    await store.add_service_description(
        OWNER.subsystem("other"), DescriptionType.REST, url=API, services=[NewService("people")]
    )


async def test_services_disabled_descriptions_and_updates(store: NodeStore) -> None:
    await _rest_provider(store)
    people = await store.get_service(PROVIDER, "people")
    updated = await store.update_service(
        PROVIDER, "people", url=API + "/v2", timeout_seconds=120, ssl_authentication=False, enabled=False
    )
    assert (updated.url, updated.timeout_seconds, updated.ssl_authentication, updated.enabled) == (
        API + "/v2",
        120,
        False,
        False,
    )
    assert updated.description_id == people.description_id
    await _fails(store.update_service(PROVIDER, "people", timeout_seconds=-1), FaultCode.INVALID_REQUEST, 400)
    await _fails(store.get_service(PROVIDER, "people", "v9"), FaultCode.NOT_FOUND, 404)
    disabled = await store.set_service_description_disabled(people.description_id, True, "Back on Monday")
    assert (disabled.disabled, disabled.disabled_notice) == (True, "Back on Monday")
    enabled = await store.set_service_description_disabled(people.description_id, False)
    assert (enabled.disabled, enabled.disabled_notice) == (False, None)
    await _fails(store.set_service_description_disabled(999, True), FaultCode.NOT_FOUND, 404)


async def test_endpoints_added_by_hand_and_generated_ones_are_protected(store: NodeStore) -> None:
    await _rest_provider(store)
    added = await store.add_endpoint(PROVIDER, NewEndpoint("people", "get", "/people/**"))
    assert (added.method, added.path, added.generated) == ("GET", "/people/**", False)
    await _fails(
        store.add_endpoint(PROVIDER, NewEndpoint("people", "GET", "/people/**")), FaultCode.CONFLICT, 409
    )
    await _fails(store.add_endpoint(PROVIDER, NewEndpoint("nope", "GET", "/")), FaultCode.NOT_FOUND, 404)
    await _fails(
        store.add_endpoint(PROVIDER, NewEndpoint("people", "GET", "/a?b")), FaultCode.INVALID_REQUEST, 400
    )
    await _fails(
        store.add_endpoint(PROVIDER, NewEndpoint("people", "GET", "/" + "a" * 255)),
        FaultCode.INVALID_REQUEST,
        400,
    )
    moved = await store.update_endpoint(added.id, "PUT", "/people/*")
    assert (moved.method, moved.path) == ("PUT", "/people/*")
    generated = [e for e in await store.list_endpoints(PROVIDER, "people") if e.generated]
    assert [(e.method, e.path) for e in generated] == [("*", "**")]
    await _fails(store.update_endpoint(generated[0].id, "GET", "/"), FaultCode.CONFLICT, 409)
    await _fails(store.delete_endpoint(generated[0].id), FaultCode.CONFLICT, 409)
    await store.delete_endpoint(added.id)
    await _fails(store.delete_endpoint(added.id), FaultCode.NOT_FOUND, 404)


async def test_refresh_keeps_settings_and_rights_of_kept_services(store: NodeStore) -> None:
    openapi_id = await _rest_provider(store)
    await store.update_service(PROVIDER, "documents", timeout_seconds=7)
    kept = next(e for e in await store.list_endpoints(PROVIDER, "documents") if e.path == "/documents/*")
    await store.grant_access(PROVIDER, "documents", [BANK], endpoint_id=kept.id)
    await store.grant_access(PROVIDER, "documents", [TAX])  # base endpoint
    refreshed = await store.refresh_service_description(
        openapi_id,
        services=[NewService("documents", url="https://elsewhere.internal")],
        endpoints=[NewEndpoint("documents", "GET", "/documents/*"), NewEndpoint("documents", "DELETE", "/x")],
        document=b'{"openapi": "3.1.0"}',
    )
    assert refreshed.document == b'{"openapi": "3.1.0"}'
    assert refreshed.services[0].timeout_seconds == 7  # the administrator's setting stays
    assert refreshed.services[0].url == API + "/documents"
    paths = {(e.method, e.path) for e in await store.list_endpoints(PROVIDER, "documents")}
    assert paths == {("*", "**"), ("GET", "/documents/*"), ("DELETE", "/x")}
    rights = {
        (str(r.subject), r.endpoint.path) for r in await store.list_access_rights(PROVIDER, "documents")
    }
    assert rights == {(str(BANK), "/documents/*"), (str(TAX), "**")}
    # a refresh without the service removes it with its endpoints and rights
    gone = await store.refresh_service_description(
        openapi_id, services=[NewService("papers", url=API)], endpoints=[NewEndpoint("papers", "GET", "/p")]
    )
    assert [s.code for s in gone.services] == ["papers"]
    assert await store.list_endpoints(PROVIDER, "documents") == ()
    assert await store.list_access_rights(PROVIDER, "documents") == ()
    assert await store.list_endpoints(PROVIDER, "people") != ()  # the other description is untouched


async def test_deleting_a_description_removes_its_services_endpoints_and_rights(store: NodeStore) -> None:
    openapi_id = await _rest_provider(store)
    await store.grant_access(PROVIDER, "documents", [BANK])
    await store.grant_access(PROVIDER, "people", [BANK])
    await store.delete_service_description(openapi_id)
    assert [d.type for d in await store.list_service_descriptions(PROVIDER)] == [DescriptionType.REST]
    assert await store.list_endpoints(PROVIDER, "documents") == ()
    assert [r.endpoint.service_code for r in await store.list_access_rights(PROVIDER)] == ["people"]
    await _fails(store.delete_service_description(openapi_id), FaultCode.NOT_FOUND, 404)


# -- access rights and local groups ---------------------------------------------------------------------


async def test_access_rights_are_given_once_and_taken_back(store: NodeStore) -> None:
    await _rest_provider(store)
    given = await store.grant_access(PROVIDER, "people", [BANK, GlobalGroupId("MN", "banks")])
    assert [str(r.subject) for r in given] == [str(BANK), "GLOBALGROUP:MN/banks"]
    assert all(r.endpoint.path == "**" for r in given)
    await _fails(store.grant_access(PROVIDER, "people", [BANK]), FaultCode.CONFLICT, 409)
    await _fails(store.grant_access(PROVIDER, "nope", [BANK]), FaultCode.NOT_FOUND, 404)
    await _fails(store.grant_access(PROVIDER, "people", [BANK], endpoint_id=999), FaultCode.NOT_FOUND, 404)
    await _fails(store.grant_access(PROVIDER, "people", [LocalGroupId("nope")]), FaultCode.NOT_FOUND, 404)
    await _fails(store.grant_access(PROVIDER, "people", []), FaultCode.INVALID_REQUEST, 400)
    await store.revoke_access(PROVIDER, "people", [BANK])
    await _fails(store.revoke_access(PROVIDER, "people", [BANK]), FaultCode.NOT_FOUND, 404)
    assert [str(r.subject) for r in await store.list_access_rights(PROVIDER)] == ["GLOBALGROUP:MN/banks"]


async def test_access_is_denied_unless_granted(store: NodeStore) -> None:
    await _rest_provider(store)
    doc = "/documents/42"
    assert not await store.is_allowed(PROVIDER, "documents", BANK, method="GET", path=doc)
    assert not await store.is_allowed(PROVIDER, "documents", BANK)  # SOAP
    assert not await store.is_allowed(OWNER.subsystem("unknown"), "documents", BANK, method="GET", path=doc)
    denied = store.check_access(PROVIDER, "documents", BANK, method="GET", path=doc)
    await _fails(denied, FaultCode.ACCESS_DENIED, 403)
    await _fails(store.is_allowed(PROVIDER, "documents", BANK, method="GET"), FaultCode.INVALID_REQUEST, 400)


async def test_endpoint_rights_match_method_and_path_and_never_serve_soap(store: NodeStore) -> None:
    await _rest_provider(store)
    by_path = {e.path: e for e in await store.list_endpoints(PROVIDER, "documents")}
    await store.grant_access(PROVIDER, "documents", [BANK], endpoint_id=by_path["/documents/*"].id)
    assert await store.is_allowed(PROVIDER, "documents", BANK, method="GET", path="/documents/42")
    await store.check_access(PROVIDER, "documents", BANK, method="get", path="/documents/42")
    assert not await store.is_allowed(PROVIDER, "documents", BANK, method="POST", path="/documents/42")
    assert not await store.is_allowed(PROVIDER, "documents", BANK, method="GET", path="/documents/42/pages")
    assert not await store.is_allowed(
        PROVIDER, "documents", BANK, method="GET", path="/documents/1/../../admin"
    )
    assert not await store.is_allowed(PROVIDER, "documents", BANK)  # SOAP needs the whole service
    assert not await store.is_allowed(PROVIDER, "people", BANK, method="GET", path="/documents/42")
    assert not await store.is_allowed(PROVIDER, "documents", BANK.member, method="GET", path="/documents/42")
    await store.grant_access(PROVIDER, "documents", [TAX])
    assert await store.is_allowed(PROVIDER, "documents", TAX, method="DELETE", path="/anything/at/all")
    assert await store.is_allowed(PROVIDER, "documents", TAX)


async def test_global_and_local_group_rights(store: NodeStore) -> None:
    await _rest_provider(store)
    banks = GlobalGroupId("MN", "banks")
    await store.grant_access(PROVIDER, "people", [banks])
    assert await store.is_allowed(PROVIDER, "people", BANK, global_groups=[banks])
    assert not await store.is_allowed(PROVIDER, "people", BANK, global_groups=[GlobalGroupId("EE", "banks")])
    assert not await store.is_allowed(PROVIDER, "people", BANK)

    group = await store.add_local_group(PROVIDER, "auditors", "Audit office")
    assert group.members == ()
    await _fails(store.add_local_group(PROVIDER, "auditors", "again"), FaultCode.CONFLICT, 409)
    await store.grant_access(PROVIDER, "documents", [LocalGroupId("auditors")])
    assert not await store.is_allowed(PROVIDER, "documents", TAX)
    group = await store.add_local_group_members(PROVIDER, "auditors", [TAX, ESTONIA])
    assert group.members == (TAX, ESTONIA)
    await _fails(store.add_local_group_members(PROVIDER, "auditors", [TAX]), FaultCode.CONFLICT, 409)
    assert await store.is_allowed(PROVIDER, "documents", TAX, method="GET", path="/documents/1")
    assert await store.is_allowed(PROVIDER, "documents", ESTONIA)
    # another client's group of the same code gives nothing on PROVIDER's services
    await store.add_local_group(OWNER, "auditors", "Owner's auditors")
    await store.add_local_group_members(OWNER, "auditors", [BANK])
    assert not await store.is_allowed(PROVIDER, "documents", BANK)
    # a global group check cannot be smuggled in as a local group
    with pytest.raises(XRoadError):
        await store.is_allowed(PROVIDER, "documents", BANK, global_groups=[LocalGroupId("auditors")])  # type: ignore[list-item]

    group = await store.remove_local_group_members(PROVIDER, "auditors", [TAX])
    assert group.members == (ESTONIA,)
    assert not await store.is_allowed(PROVIDER, "documents", TAX)
    await _fails(store.remove_local_group_members(PROVIDER, "auditors", [TAX]), FaultCode.NOT_FOUND, 404)
    renamed = await store.set_local_group_description(PROVIDER, "auditors", "Auditors")
    assert renamed.description == "Auditors"
    assert [g.code for g in await store.list_local_groups(PROVIDER)] == ["auditors"]
    await store.delete_local_group(PROVIDER, "auditors")
    assert [str(r.subject) for r in await store.list_access_rights(PROVIDER)] == ["GLOBALGROUP:MN/banks"]
    await _fails(store.get_local_group(PROVIDER, "auditors"), FaultCode.NOT_FOUND, 404)
    # a group created again under the old code does not inherit the old rights
    await store.add_local_group(PROVIDER, "auditors", "New auditors")
    await store.add_local_group_members(PROVIDER, "auditors", [ESTONIA])
    assert not await store.is_allowed(PROVIDER, "documents", ESTONIA)


async def test_deleting_a_client_removes_everything_it_had(store: NodeStore, node_db: AsyncEngine) -> None:
    await _rest_provider(store)
    await store.add_is_cert(PROVIDER, _cert("is"))
    await store.add_local_group(PROVIDER, "auditors", "Audit office")
    await store.add_local_group_members(PROVIDER, "auditors", [TAX])
    await store.grant_access(PROVIDER, "people", [BANK, LocalGroupId("auditors")])
    await store.delete_client(PROVIDER)
    async with node_db.connect() as conn:
        for table in ("services", "service_descriptions", "endpoints", "access_rights", "is_certs",
                      "local_groups", "local_group_members"):  # fmt: skip
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0, table


# -- token records ----------------------------------------------------------------------------------------


async def test_keys_certificates_and_csrs(store: NodeStore) -> None:
    auth = await store.add_key("a1b2", KeyUsage.AUTHENTICATION, label="auth")
    assert (auth.usage, auth.member) == (KeyUsage.AUTHENTICATION, None)
    sign = await store.add_key("c3d4", KeyUsage.SIGNING, member=OWNER)
    assert sign.member == OWNER
    await _fails(store.add_key("a1b2", KeyUsage.AUTHENTICATION), FaultCode.CONFLICT, 409)
    await _fails(store.add_key("e5", KeyUsage.SIGNING), FaultCode.INVALID_REQUEST, 400)
    await _fails(store.add_key("e5", KeyUsage.AUTHENTICATION, member=OWNER), FaultCode.INVALID_REQUEST, 400)
    await _fails(store.add_key("e5", KeyUsage.SIGNING, member=PROVIDER), FaultCode.INVALID_REQUEST, 400)  # type: ignore[arg-type]
    assert [k.key_id for k in await store.list_keys()] == ["a1b2", "c3d4"]
    assert [k.key_id for k in await store.list_keys(KeyUsage.SIGNING)] == ["c3d4"]
    assert (await store.set_key_label("c3d4", "sign-2026")).label == "sign-2026"

    cert = _cert("ss1-auth")
    added = await store.add_certificate("a1b2", cert)
    assert (added.status, added.active, added.certificate) == (CertificateStatus.SAVED, False, cert)
    await _fails(store.add_certificate("c3d4", cert), FaultCode.CONFLICT, 409)
    await _fails(store.add_certificate("nope", _cert("x")), FaultCode.NOT_FOUND, 404)
    registered = await store.set_certificate_status(added.sha256, CertificateStatus.REGISTERED)
    assert registered.status is CertificateStatus.REGISTERED
    assert (await store.set_certificate_active(added.sha256, True)).active
    fetched = await store.get_certificate(added.sha256)
    assert (fetched.status, fetched.active) == (CertificateStatus.REGISTERED, True)
    assert await store.list_certificates("a1b2") == (fetched,)
    assert [c.key_id for c in await store.list_certificates()] == ["a1b2"]

    csr = await store.add_csr("c3d4", _csr("5012345"), subject_name="CN=5012345", member=OWNER)
    assert (csr.key_id, csr.member) == ("c3d4", OWNER)
    await _fails(
        store.add_csr("c3d4", b"not a csr", subject_name="CN=x", member=OWNER), FaultCode.INVALID_CSR, 400
    )
    await _fails(store.add_csr("c3d4", _csr("x"), subject_name="CN=x"), FaultCode.INVALID_REQUEST, 400)
    assert await store.list_csrs("c3d4") == (csr,)
    await store.delete_csr(csr.id)
    await _fails(store.delete_csr(csr.id), FaultCode.NOT_FOUND, 404)

    await store.add_csr("a1b2", _csr("ss1"), subject_name="CN=ss1")
    await store.delete_key("a1b2")  # its certificate and CSR go with it
    assert await store.list_certificates() == ()
    assert await store.list_csrs() == ()
    await _fails(store.get_certificate(added.sha256), FaultCode.NOT_FOUND, 404)
    await _fails(store.get_key("a1b2"), FaultCode.NOT_FOUND, 404)


# -- concurrency ----------------------------------------------------------------------------------------


async def test_concurrent_writers_conflict_cleanly(store: NodeStore) -> None:
    results = await asyncio.gather(*(store.add_client(PROVIDER) for _ in range(5)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 4
    assert all(isinstance(e, XRoadError) and e.has_code(FaultCode.CONFLICT) for e in errors)
    assert [c.client for c in await store.list_clients()] == [OWNER, PROVIDER]
