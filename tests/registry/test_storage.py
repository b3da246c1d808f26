"""The registry's data layer on SQLite and PostgreSQL: migrations, CRUD of every entity, conflicts,
management request transitions, signing key rotation, concurrency and the global configuration snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from sqlalchemy import Connection, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from registry.db import (
    MIGRATIONS_DIR,
    ConfigurationSigningKey,
    KeyKind,
    ManagementRequestRecord,
    RegistryStore,
    RequestAction,
    RequestEffects,
    RequestState,
    ServerClient,
    migrate,
)
from registry.db.models import Base, ManagementRequestRow
from registry.db.records import to_generator_key
from registry.db.store import MAX_PAYLOAD_BYTES
from registry.signing import create_token
from tests.xroad_xsd import schema_within
from trust_services.pki import CertifiedKey, DevPki
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.params import (
    ApprovedCAEntry,
    ApprovedTSAEntry,
    CaInfo,
    GlobalGroup,
    Member,
    MemberClass,
    OcspInfo,
    SecurityServer,
    Subsystem,
    auth_cert_hash,
    build_private_params,
    build_shared_params,
    parse_private_params,
    parse_shared_params,
)
from xroad_mn.identifiers import GlobalGroupId, MemberId, SecurityServerId, format_id
from xroad_mn.management import (
    AddressChangeRequest,
    AuthCertRegRequest,
    ClientRegRequest,
    MaintenanceModeEnableRequest,
    ManagementRequestType,
    OwnerChangeRequest,
)
from xroad_mn.tokens import KeyUsage, SoftwareToken
from xroad_mn.wire.faults import http_status_of

GOV = MemberId("MN", "GOV", "5012345")
COM = MemberId("MN", "COM", "9011223")
SS1 = GOV.server("ss1")
PROFILE = "ee.ria.xroad.common.certificateprofile.impl.BasicCertificateProfileInfoProvider"


async def _fails(aw: Awaitable[Any], code: str, status: int) -> XRoadError:
    with pytest.raises(XRoadError) as exc:
        await aw
    assert exc.value.has_code(code), exc.value
    assert http_status_of(exc.value) == status
    return exc.value


def _der(key: CertifiedKey) -> bytes:
    return key.certificate.public_bytes(Encoding.DER)


async def _members(store: RegistryStore) -> None:
    await store.add_member_class("GOV", "Government")
    await store.add_member_class("COM", "Commercial")
    await store.add_member(GOV, "Ministry")
    await store.add_member(COM, "Company")
    await store.add_subsystem(GOV.subsystem("mgmt"), "Management services")
    await store.add_subsystem(GOV.subsystem("civil-registry"))


# -- migrations -----------------------------------------------------------------------------------------


def _diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


async def test_migrations_create_the_models_schema_and_are_idempotent(registry_db: AsyncEngine) -> None:
    async with registry_db.connect() as conn:
        assert await conn.run_sync(_diff) == []
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert version == "r0004"
    await migrate(registry_db)  # already at head: nothing happens
    async with registry_db.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM alembic_version"))).scalar_one() == 1
        assert (await conn.execute(text("SELECT count(*) FROM members"))).scalar_one() == 0


def _downgrade(conn: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    command.downgrade(config, revision)


def _client_columns(conn: Connection) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns("security_server_clients")}


async def test_migration_r0002_enables_the_clients_registered_before_it(registry_db: AsyncEngine) -> None:
    async with registry_db.begin() as conn:
        await conn.run_sync(_downgrade, "r0001")
        assert "enabled" not in await conn.run_sync(_client_columns)
    store = RegistryStore(registry_db)
    await store.init_instance("MN")
    await _members(store)
    await store.add_security_server(SS1)
    async with registry_db.begin() as conn:  # a client registered under r0001 (no enabled column)
        await conn.execute(
            text(
                "INSERT INTO security_server_clients (server_id, member_id) "
                "SELECT s.id, m.id FROM security_servers s, members m WHERE m.code = :code"
            ),
            {"code": COM.member_code},
        )
    await migrate(registry_db)
    async with registry_db.connect() as conn:
        assert "enabled" in await conn.run_sync(_client_columns)
        assert await conn.run_sync(_diff) == []
    assert await store.list_server_clients(SS1) == (ServerClient(COM, enabled=True),)
    assert (await store.get_security_server(SS1)).clients == (COM,)


# -- instance and settings ------------------------------------------------------------------------------


async def test_uninitialised_registry_refuses_changes(registry_db: AsyncEngine) -> None:
    store = RegistryStore(registry_db)
    await _fails(store.get_settings(), FaultCode.CONFLICT, 409)
    await _fails(store.add_member_class("GOV", "Government"), FaultCode.CONFLICT, 409)
    await _fails(store.init_instance("M/N"), FaultCode.INVALID_CLIENT_IDENTIFIER, 400)
    settings = await store.init_instance("MN")
    assert settings.instance == "MN"
    assert await store.init_instance("MN") == settings
    await _fails(store.init_instance("EE"), FaultCode.CONFLICT, 409)


async def test_settings_defaults_and_updates(store: RegistryStore, pki: DevPki) -> None:
    settings = await store.get_settings()
    assert (settings.ocsp_freshness_seconds, settings.timestamping_interval_seconds) == (3600, 60)
    assert settings.configuration_expiry_seconds == 600
    assert settings.management_service_provider is None
    await _members(store)
    provider = GOV.subsystem("mgmt")
    updated = await store.update_settings(
        ocsp_freshness_seconds=1200,
        timestamping_interval_seconds=30,
        configuration_expiry_seconds=900,
        management_service_provider=provider,
        management_service_address="https://cs.example.mn:4001/managementservice/",
        management_service_cert=pki.root.certificate,
    )
    assert updated == await store.get_settings()
    assert updated.ocsp_freshness_seconds == 1200
    assert updated.timestamping_interval_seconds == 30
    assert updated.configuration_expiry_seconds == 900
    assert updated.management_service_provider == provider
    assert updated.management_service_cert == pki.root.certificate
    assert (await store.update_settings(ocsp_freshness_seconds=60)).timestamping_interval_seconds == 30
    await _fails(store.update_settings(ocsp_freshness_seconds=0), FaultCode.INVALID_REQUEST, 400)
    await _fails(store.update_settings(configuration_expiry_seconds=2**40), FaultCode.INVALID_REQUEST, 400)
    await _fails(store.update_settings(management_service_address="ftp://x"), FaultCode.INVALID_REQUEST, 400)
    await _fails(
        store.update_settings(management_service_provider=GOV.subsystem("nope")), FaultCode.NOT_FOUND, 404
    )
    assert (await store.get_settings()).ocsp_freshness_seconds == 60


# -- members --------------------------------------------------------------------------------------------


async def test_member_classes_members_and_subsystems(store: RegistryStore) -> None:
    await _members(store)
    gov, com = MemberClass("GOV", "Government"), MemberClass("COM", "Commercial")
    assert await store.list_member_classes() == (com, gov)
    assert await store.update_member_class("COM", "Companies") == MemberClass("COM", "Companies")
    members = await store.list_members()
    assert [m.id("MN") for m in members] == [COM, GOV]
    assert await store.get_member(GOV) == Member(
        gov, "5012345", "Ministry", (Subsystem("civil-registry"), Subsystem("mgmt", "Management services"))
    )
    assert (await store.rename_member(COM, "Company LLC")).name == "Company LLC"
    renamed = await store.rename_subsystem(GOV.subsystem("civil-registry"), "Civil registry")
    assert renamed == Subsystem("civil-registry", "Civil registry")
    assert Subsystem("civil-registry", "Civil registry") in (await store.get_member(GOV)).subsystems

    await _fails(store.add_member_class("GOV", "again"), FaultCode.CONFLICT, 409)
    await _fails(store.add_member(GOV, "again"), FaultCode.CONFLICT, 409)
    await _fails(store.add_subsystem(GOV.subsystem("mgmt")), FaultCode.CONFLICT, 409)
    await _fails(store.add_member(MemberId("MN", "NGO", "1"), "x"), FaultCode.NOT_FOUND, 404)
    await _fails(store.add_member(MemberId("EE", "GOV", "1"), "x"), FaultCode.INVALID_REQUEST, 400)
    await _fails(
        store.add_member(MemberId("MN", "GOV", "a b"), "x"), FaultCode.INVALID_CLIENT_IDENTIFIER, 400
    )
    await _fails(store.add_member(MemberId("MN", "GOV", "7"), ""), FaultCode.INVALID_REQUEST, 400)
    await _fails(store.add_subsystem(MemberId("MN", "GOV", "7").subsystem("s")), FaultCode.NOT_FOUND, 404)
    await _fails(store.get_member(MemberId("MN", "GOV", "7")), FaultCode.NOT_FOUND, 404)
    await _fails(store.update_member_class("NGO", "x"), FaultCode.NOT_FOUND, 404)


# -- security servers -----------------------------------------------------------------------------------


async def test_security_servers_auth_certs_and_clients(store: RegistryStore, pki: DevPki) -> None:
    await _members(store)
    assert await store.add_security_server(SS1, "ss1.example.mn") == SecurityServer(
        GOV, "ss1", "ss1.example.mn"
    )
    await store.add_security_server(COM.server("ss2"))
    await _fails(store.add_security_server(SS1), FaultCode.CONFLICT, 409)
    await _fails(store.add_security_server(GOV.server("bad code")), FaultCode.INVALID_SECURITY_SERVER, 400)
    await _fails(store.get_security_server(GOV.server("ss9")), FaultCode.NOT_FOUND, 404)

    auth = pki.member_auth.certificate
    assert await store.add_auth_cert(SS1, auth) == auth_cert_hash(auth)
    await _fails(store.add_auth_cert(SS1, auth), FaultCode.CONFLICT, 409)
    await _fails(store.add_auth_cert(COM.server("ss2"), auth), FaultCode.CONFLICT, 409)
    await store.add_auth_cert(SS1, pki.member_sign.certificate)
    assert await store.list_auth_certs(SS1) == (auth, pki.member_sign.certificate)

    await store.register_client(SS1, GOV)
    await store.register_client(SS1, GOV.subsystem("mgmt"))
    server = await store.register_client(SS1, COM)
    assert server.clients == (COM, GOV, GOV.subsystem("mgmt"))
    await _fails(store.register_client(SS1, COM), FaultCode.CONFLICT, 409)
    await _fails(store.register_client(SS1, GOV.subsystem("mgmt")), FaultCode.CONFLICT, 409)
    await _fails(store.register_client(SS1, COM.subsystem("none")), FaultCode.NOT_FOUND, 404)
    await _fails(store.unregister_client(SS1, GOV), FaultCode.CONFLICT, 409)  # the owner stays
    assert (await store.unregister_client(SS1, GOV.subsystem("mgmt"))).clients == (COM, GOV)
    await _fails(store.unregister_client(SS1, GOV.subsystem("mgmt")), FaultCode.NOT_FOUND, 404)

    await store.remove_auth_cert(SS1, auth_cert_hash(pki.member_sign.certificate))
    await _fails(store.remove_auth_cert(SS1, b"\0" * 32), FaultCode.NOT_FOUND, 404)

    maintenance = await store.set_maintenance_mode(SS1, True, "upgrade")
    assert (maintenance.in_maintenance_mode, maintenance.maintenance_message) == (True, "upgrade")
    assert (await store.set_server_address(SS1, "10.0.0.1")).address == "10.0.0.1"
    assert await store.get_security_server(SS1) == SecurityServer(
        GOV, "ss1", "10.0.0.1", (auth_cert_hash(auth),), (COM, GOV), True, "upgrade"
    )
    assert not (await store.set_maintenance_mode(SS1, False)).in_maintenance_mode

    await _fails(store.change_server_owner(COM.server("ss2"), GOV), FaultCode.CONFLICT, 409)  # not a client
    moved = await store.change_server_owner(SS1, COM)
    assert (moved.owner, moved.server_code) == (COM, "ss1")
    await _fails(store.get_security_server(SS1), FaultCode.NOT_FOUND, 404)
    assert [(s.owner, s.server_code) for s in await store.list_security_servers()] == [
        (COM, "ss1"),
        (COM, "ss2"),
    ]


# -- global groups --------------------------------------------------------------------------------------


async def test_disabled_client_stays_registered_and_leaves_global_configuration(store: RegistryStore) -> None:
    await _members(store)
    await store.update_settings(
        management_service_provider=GOV.subsystem("mgmt"),
        management_service_address="https://cs.example.mn:4001/managementservice/",
    )
    await store.add_security_server(SS1, "ss1.example.mn")
    await store.register_client(SS1, GOV)
    await store.register_client(SS1, COM)
    registry = GOV.subsystem("civil-registry")
    await store.register_client(SS1, registry)

    disabled = await store.set_client_enabled(SS1, registry, False)
    assert disabled.clients == (COM, GOV)
    assert await store.list_server_clients(SS1) == (
        ServerClient(COM),
        ServerClient(GOV),
        ServerClient(registry, enabled=False),
    )
    (in_conf,) = (await store.snapshot(["cs.example.mn"])).shared.security_servers
    assert in_conf.clients == (COM, GOV)  # X-Road lists enabled server clients only
    err = await _fails(store.register_client(SS1, registry), FaultCode.CONFLICT, 409)
    assert "disabled" in err.message
    await _fails(store.set_client_enabled(SS1, registry, False), FaultCode.CONFLICT, 409)
    await _fails(store.set_client_enabled(SS1, GOV, False), FaultCode.CONFLICT, 409)  # the owner
    await _fails(store.set_client_enabled(SS1, COM, True), FaultCode.CONFLICT, 409)
    await _fails(store.set_client_enabled(SS1, GOV.subsystem("mgmt"), True), FaultCode.NOT_FOUND, 404)
    await _fails(store.set_client_enabled(GOV.server("ss9"), COM, True), FaultCode.NOT_FOUND, 404)

    assert (await store.set_client_enabled(SS1, registry, True)).clients == (COM, GOV, registry)
    (in_conf,) = (await store.snapshot(["cs.example.mn"])).shared.security_servers
    assert in_conf.clients == (COM, GOV, registry)
    await store.set_client_enabled(SS1, COM, False)
    assert (await store.unregister_client(SS1, COM)).clients == (GOV, registry)  # disabled ones go too
    assert [c.client for c in await store.list_server_clients(SS1)] == [GOV, registry]
    await store.register_client(SS1, COM)  # registered afresh: enabled
    assert ServerClient(COM) in await store.list_server_clients(SS1)


async def test_global_groups(store: RegistryStore) -> None:
    await _members(store)
    owners = GlobalGroupId("MN", "security-server-owners")
    assert await store.add_global_group(owners, "Owners") == GlobalGroup("security-server-owners", "Owners")
    await store.add_global_group(GlobalGroupId("MN", "banks"), "Banks")
    await _fails(store.add_global_group(owners, "again"), FaultCode.CONFLICT, 409)
    await _fails(store.add_global_group(GlobalGroupId("MN", "a b"), "x"), FaultCode.INVALID_IDENTIFIER, 400)
    await store.add_group_member(owners, GOV)
    group = await store.add_group_member(owners, GOV.subsystem("mgmt"))
    assert group.members == (GOV, GOV.subsystem("mgmt"))
    await _fails(store.add_group_member(owners, GOV), FaultCode.CONFLICT, 409)
    await _fails(store.add_group_member(owners, MemberId("MN", "COM", "1")), FaultCode.NOT_FOUND, 404)
    await _fails(store.add_group_member(GlobalGroupId("MN", "none"), GOV), FaultCode.NOT_FOUND, 404)
    assert (await store.remove_group_member(owners, GOV)).members == (GOV.subsystem("mgmt"),)
    await _fails(store.remove_group_member(owners, GOV), FaultCode.NOT_FOUND, 404)
    assert [g.code for g in await store.list_global_groups()] == ["banks", "security-server-owners"]
    assert await store.get_global_group(owners) == GlobalGroup(
        "security-server-owners", "Owners", (GOV.subsystem("mgmt"),)
    )


# -- approved CAs and TSAs ------------------------------------------------------------------------------


def _ca_entry(pki: DevPki, name: str = "MN dev CA") -> ApprovedCAEntry:
    return ApprovedCAEntry(
        name=name,
        top_ca=CaInfo(pki.root.certificate, (OcspInfo("http://ocsp.example.mn/root"),)),
        certificate_profile_info=PROFILE,
        intermediate_cas=(
            CaInfo(
                pki.intermediate.certificate,
                (
                    OcspInfo("http://ocsp.example.mn", pki.ocsp_responder.certificate),
                    OcspInfo("https://ocsp2.example.mn"),
                ),
            ),
        ),
        authentication_only=False,
    )


async def test_approved_cas_and_tsas(store: RegistryStore, pki: DevPki) -> None:
    entry = _ca_entry(pki)
    assert await store.add_ca(entry) == entry
    auth_only = ApprovedCAEntry(
        "Auth CA", CaInfo(pki.intermediate.certificate), PROFILE, authentication_only=True
    )
    await store.add_ca(auth_only)
    assert await store.list_cas() == (auth_only, entry)
    assert await store.get_ca("MN dev CA") == entry
    await _fails(store.add_ca(entry), FaultCode.CONFLICT, 409)
    not_a_ca = ApprovedCAEntry("Leaf", CaInfo(pki.member_sign.certificate), PROFILE)
    await _fails(store.add_ca(not_a_ca), FaultCode.INVALID_REQUEST, 400)
    bad_url = ApprovedCAEntry("Bad", CaInfo(pki.root.certificate, (OcspInfo("ocsp.example.mn"),)), PROFILE)
    await _fails(store.add_ca(bad_url), FaultCode.INVALID_REQUEST, 400)
    await store.delete_ca("Auth CA")
    await _fails(store.delete_ca("Auth CA"), FaultCode.NOT_FOUND, 404)
    await _fails(store.get_ca("Auth CA"), FaultCode.NOT_FOUND, 404)

    tsa = ApprovedTSAEntry("MN TSA", "http://tsa.example.mn", pki.tsa.certificate)
    assert await store.add_tsa(tsa) == tsa
    await _fails(store.add_tsa(tsa), FaultCode.CONFLICT, 409)
    await _fails(
        store.add_tsa(ApprovedTSAEntry("x", "tsa", pki.tsa.certificate)), FaultCode.INVALID_REQUEST, 400
    )
    assert await store.list_tsas() == (tsa,)
    await store.delete_tsa("MN TSA")
    assert await store.list_tsas() == ()
    await _fails(store.delete_tsa("MN TSA"), FaultCode.NOT_FOUND, 404)


# -- signing keys ---------------------------------------------------------------------------------------


@pytest.fixture
def key_token(tmp_path: Path) -> SoftwareToken:
    """A logged-in software token holding the registry's keys (here, keys of the dev PKI imported)."""
    token = SoftwareToken(tmp_path / "token")
    create_token(token, "1234")
    return token


async def _add_key(
    store: RegistryStore, token: SoftwareToken, kind: KeyKind, key_id: str, key: CertifiedKey
) -> ConfigurationSigningKey:
    info = token.import_key(key.private_key, key_id, KeyUsage.SIGNING)
    return await store.add_signing_key(kind, key_id, info.key_id, key.certificate)


async def test_signing_key_two_phase_rotation(
    store: RegistryStore, pki: DevPki, key_token: SoftwareToken
) -> None:
    first = await _add_key(store, key_token, KeyKind.INTERNAL, "int-1", pki.member_sign)
    assert first.active
    assert key_token.key(first.token_key_id).label == "int-1"  # the database names the token's key
    await _add_key(store, key_token, KeyKind.EXTERNAL, "ext-1", pki.tsa)
    # Phase one: a new key is pending, and distributed in every source next to the active one.
    await _add_key(store, key_token, KeyKind.INTERNAL, "int-2", pki.member_sign_ec)
    keys = await store.list_signing_keys(KeyKind.INTERNAL)
    assert [(k.key_id, k.active) for k in keys] == [("int-1", True), ("int-2", False)]
    await _members(store)
    await store.update_settings(
        management_service_provider=GOV.subsystem("mgmt"), management_service_address="https://cs.example.mn/"
    )
    snap = await store.snapshot(["cs1.example.mn", "cs2.example.mn"])
    assert snap.active_key(KeyKind.INTERNAL).key_id == "int-1"
    assert [s.address for s in snap.shared.sources] == ["cs1.example.mn", "cs2.example.mn"]
    for source in snap.shared.sources:
        assert source.internal_verification_certs == (
            pki.member_sign.certificate,
            pki.member_sign_ec.certificate,
        )
        assert source.external_verification_certs == (pki.tsa.certificate,)

    await _fails(store.delete_signing_key("int-1"), FaultCode.CONFLICT, 409)
    await _fails(
        _add_key(store, key_token, KeyKind.INTERNAL, "int-2", pki.ocsp_responder), FaultCode.CONFLICT, 409
    )
    # The token's key must be the certificate's: checked where the key signs (the store has no key).
    with pytest.raises(XRoadError) as mismatch:
        to_generator_key(replace(first, certificate=pki.tsa.certificate), key_token)
    assert mismatch.value.code == FaultCode.INTERNAL_ERROR
    await _fails(
        store.add_signing_key(KeyKind.INTERNAL, "int-3", "", pki.tsa.certificate),
        FaultCode.INVALID_REQUEST,
        400,
    )
    # Phase two: the new key signs and the old one is deleted.
    activated = await store.activate_signing_key("int-2")
    assert activated.active
    assert activated.certificate == pki.member_sign_ec.certificate
    assert [(k.key_id, k.active) for k in await store.list_signing_keys()] == [
        ("ext-1", True),
        ("int-2", True),
    ]
    assert (await store.activate_signing_key("int-2")).active  # activating the active key changes nothing
    await _fails(store.activate_signing_key("int-1"), FaultCode.NOT_FOUND, 404)
    await _add_key(store, key_token, KeyKind.EXTERNAL, "ext-2", pki.ocsp_responder)
    await store.delete_signing_key("ext-2")
    await _fails(store.delete_signing_key("ext-2"), FaultCode.NOT_FOUND, 404)
    snap = await store.snapshot(["cs1.example.mn"])
    assert snap.shared.sources[0].internal_verification_certs == (pki.member_sign_ec.certificate,)
    assert snap.active_key(KeyKind.EXTERNAL).key_id == "ext-1"
    generator_keys = snap.generator_keys(key_token)
    assert [(k.key_id, k.kind, k.active) for k in generator_keys] == [
        ("ext-1", "external", True),
        ("int-2", "internal", True),
    ]
    assert [k.signer.public_key() for k in generator_keys] == [
        pki.tsa.certificate.public_key(),
        pki.member_sign_ec.certificate.public_key(),
    ]


# -- management requests --------------------------------------------------------------------------------


async def test_management_requests_and_history(store: RegistryStore, pki: DevPki) -> None:
    client = GOV.subsystem("civil-registry")
    # A request without its client, or with one it does not take, cannot be built: the store takes typed
    # requests (xroad_mn.management), so those two refusals of the untyped store are now mypy's.
    await _fails(
        store.submit_request(ClientRegRequest(SecurityServerId("EE", "GOV", "1", "ss"), client)),
        FaultCode.INVALID_REQUEST,
        400,
    )
    await _fails(
        store.submit_request(AddressChangeRequest(SS1, "x" * (MAX_PAYLOAD_BYTES + 1))),
        FaultCode.INVALID_REQUEST,
        400,
    )
    reg = await store.submit_request(
        ClientRegRequest(SS1, client, "Civil registry"), raw=b"--multipart--", user="ss1"
    )
    assert (reg.state, reg.client, reg.security_server, reg.raw) == (
        RequestState.SUBMITTED,
        client,
        SS1,
        b"--multipart--",
    )
    assert reg.request == ClientRegRequest(SS1, client, "Civil registry")
    assert reg.payload == {"subsystem_name": "Civil registry"}
    assert [(e.from_state, e.to_state, e.user) for e in reg.history] == [
        (None, RequestState.SUBMITTED, "ss1")
    ]
    auth = await store.submit_request(AuthCertRegRequest(SS1, "ss1.example.mn", _der(pki.member_auth)))
    maint = await store.submit_request(MaintenanceModeEnableRequest(GOV.server("ss2")))

    approved = await store.transition_request(reg.id, RequestAction.APPROVE, user="admin", comment="ok")
    assert approved.state is RequestState.APPROVED
    assert [(e.from_state, e.to_state, e.user, e.comment) for e in approved.history] == [
        (None, RequestState.SUBMITTED, "ss1", None),
        (RequestState.SUBMITTED, RequestState.APPROVED, "admin", "ok"),
    ]
    assert approved.updated_at >= approved.created_at
    assert approved.updated_at.tzinfo is not None
    assert await store.get_request(reg.id) == approved
    await _fails(store.transition_request(reg.id, RequestAction.APPROVE), FaultCode.CONFLICT, 409)
    rejected = await store.transition_request(auth.id, RequestAction.REJECT, user="admin")
    assert rejected.state is RequestState.REJECTED
    err = await _fails(store.transition_request(auth.id, RequestAction.APPROVE), FaultCode.CONFLICT, 409)
    assert err.details == {"state": "rejected", "action": "approve"}
    assert (await store.transition_request(maint.id, RequestAction.REVOKE)).state is RequestState.REVOKED
    await _fails(store.transition_request(maint.id, RequestAction.REJECT), FaultCode.CONFLICT, 409)
    await _fails(store.transition_request(99999, RequestAction.APPROVE), FaultCode.NOT_FOUND, 404)
    await _fails(store.get_request(99999), FaultCode.NOT_FOUND, 404)

    assert [r.id for r in await store.list_requests()] == [reg.id, auth.id, maint.id]
    assert [r.id for r in await store.list_requests(state=RequestState.REJECTED)] == [auth.id]
    assert [r.id for r in await store.list_requests(type=ManagementRequestType.CLIENT_REG)] == [reg.id]
    assert [r.id for r in await store.list_requests(security_server=GOV.server("ss2"))] == [maint.id]
    assert len((await store.get_request(auth.id)).history) == 2


async def test_a_malformed_stored_request_is_an_internal_error(
    store: RegistryStore, registry_db: AsyncEngine, pki: DevPki
) -> None:
    """A row changed behind the registry's back is refused when read, never returned half-typed."""
    await _members(store)
    tax = GOV.subsystem("civil-registry")
    reg = await store.submit_request(ClientRegRequest(SS1, tax))
    auth = await store.submit_request(AuthCertRegRequest(SS1, "ss1.example.mn", _der(pki.member_auth)))
    owner = await store.submit_request(OwnerChangeRequest(SS1, COM))
    row = ManagementRequestRow
    corruptions: list[tuple[int, dict[str, object], str]] = [
        (reg.id, {"client": None}, "without a client"),
        (auth.id, {"client": format_id(COM)}, "with a client"),
        (auth.id, {"payload": {"address": "a"}}, "lacks the text 'auth_cert'"),
        (auth.id, {"payload": {"address": "a", "auth_cert": "%%"}}, "not base64"),
        (owner.id, {"client": format_id(tax)}, "is not a member"),
        (owner.id, {"security_server": "x"}, "is not an identifier"),
        (owner.id, {"security_server": format_id(COM)}, "not a security server identifier"),
    ]
    for request_id, change, reason in corruptions:
        columns = (row.client, row.payload, row.security_server)
        async with registry_db.begin() as conn:
            before = (await conn.execute(select(*columns).where(row.id == request_id))).one()
            await conn.execute(update(row).where(row.id == request_id).values(**change))
        with pytest.raises(XRoadError) as exc:
            await store.get_request(request_id)
        assert exc.value.code == FaultCode.INTERNAL_ERROR, change
        assert reason in exc.value.message, exc.value.message
        async with registry_db.begin() as conn:
            restore = dict(zip(("client", "payload", "security_server"), before, strict=True))
            await conn.execute(update(row).where(row.id == request_id).values(**restore))
        assert (await store.get_request(request_id)).id == request_id


# -- concurrency ----------------------------------------------------------------------------------------


async def test_concurrent_writers_conflict_cleanly(store: RegistryStore) -> None:
    await _members(store)
    same = await asyncio.gather(
        *(store.add_member(MemberId("MN", "GOV", "42"), "x") for _ in range(6)), return_exceptions=True
    )
    assert sum(isinstance(r, Member) for r in same) == 1
    assert all(
        isinstance(r, XRoadError) and http_status_of(r) == 409 for r in same if not isinstance(r, Member)
    )
    await asyncio.gather(*(store.add_member(MemberId("MN", "COM", f"c{i}"), f"C{i}") for i in range(8)))
    assert len(await store.list_members()) == 3 + 8

    request = await store.submit_request(AddressChangeRequest(SS1, "ss1.example.mn"))
    actions = [RequestAction.APPROVE, RequestAction.REJECT, RequestAction.REVOKE] * 2
    results = await asyncio.gather(
        *(store.transition_request(request.id, a, user=f"u{i}") for i, a in enumerate(actions)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, XRoadError) and http_status_of(r) == 409 for r in results if r not in winners)
    final = await store.get_request(request.id)
    assert final.state is winners[0].state
    assert len(final.history) == 2


async def test_apply_request_runs_the_effect_once_under_concurrent_approvals(
    store: RegistryStore, pki: DevPki
) -> None:
    await _members(store)
    request = await store.submit_request(AuthCertRegRequest(SS1, "ss1.example.mn", _der(pki.member_auth)))
    seen: list[RequestState] = []

    async def register(fx: RequestEffects, locked: ManagementRequestRecord) -> None:
        seen.append(locked.state)
        await fx.add_security_server(SS1, "ss1.example.mn")
        await asyncio.sleep(0.05)  # the other approval is waiting for the request row meanwhile
        await fx.add_auth_cert(SS1, pki.member_auth.certificate)

    results = await asyncio.gather(
        *(store.apply_request(request.id, RequestAction.APPROVE, effect=register, user=u) for u in "ab"),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, ManagementRequestRecord)]
    losers = [r for r in results if isinstance(r, XRoadError)]
    assert len(winners) == len(losers) == 1, results
    assert losers[0].has_code(FaultCode.CONFLICT)
    assert http_status_of(losers[0]) == 409
    assert seen == [RequestState.SUBMITTED]  # the effect ran once
    (server,) = await store.list_security_servers()
    assert server.auth_cert_hashes == (auth_cert_hash(pki.member_auth.certificate),)
    final = await store.get_request(request.id)
    assert final.state is RequestState.APPROVED
    assert len(final.history) == 2


async def test_apply_request_keeps_nothing_of_an_effect_that_fails(store: RegistryStore, pki: DevPki) -> None:
    await _members(store)
    await store.add_security_server(COM.server("ss2"))
    await store.add_auth_cert(COM.server("ss2"), pki.member_auth.certificate)
    request = await store.submit_request(AuthCertRegRequest(SS1, "ss1.example.mn", _der(pki.member_auth)))

    async def register(fx: RequestEffects, locked: ManagementRequestRecord) -> None:
        await fx.add_security_server(SS1, "ss1.example.mn")  # first write succeeds
        assert (await fx.get_security_server(SS1)).address == "ss1.example.mn"
        await fx.add_auth_cert(SS1, pki.member_auth.certificate)  # held by ss2: 409

    await _fails(
        store.apply_request(request.id, RequestAction.APPROVE, effect=register, user="admin"),
        FaultCode.CONFLICT,
        409,
    )
    assert [s.server_code for s in await store.list_security_servers()] == ["ss2"]
    unchanged = await store.get_request(request.id)
    assert unchanged.state is RequestState.SUBMITTED
    assert len(unchanged.history) == 1

    async def not_applicable(fx: RequestEffects, locked: ManagementRequestRecord) -> None:
        raise AssertionError("an effect must not run for a request that cannot move")

    await store.transition_request(request.id, RequestAction.REJECT, user="admin")
    await _fails(
        store.apply_request(request.id, RequestAction.APPROVE, effect=not_applicable),
        FaultCode.CONFLICT,
        409,
    )
    await _fails(
        store.apply_request(10_000, RequestAction.APPROVE, effect=not_applicable), FaultCode.NOT_FOUND, 404
    )


# -- snapshot -> global configuration -------------------------------------------------------------------

XSD_ROOT = Path(__file__).resolve().parents[1] / "data" / "xroad" / "globalconf" / "xsd"


def _schema(rel: str) -> etree.XMLSchema:
    return schema_within(XSD_ROOT / rel, XSD_ROOT.parent)


async def test_snapshot_is_xsd_valid_v6_global_configuration(
    store: RegistryStore, pki: DevPki, key_token: SoftwareToken
) -> None:
    await _fails(store.snapshot(["cs.example.mn"]), FaultCode.CONFLICT, 409)  # no management service yet
    await _members(store)
    await store.update_settings(
        management_service_provider=GOV.subsystem("mgmt"),
        management_service_address="https://cs.example.mn:4001/managementservice/",
        management_service_cert=pki.root.certificate,
        timestamping_interval_seconds=120,
    )
    await _add_key(store, key_token, KeyKind.INTERNAL, "int-1", pki.member_sign)
    await _add_key(store, key_token, KeyKind.EXTERNAL, "ext-1", pki.member_sign_ec)
    await store.add_ca(_ca_entry(pki))
    await store.add_tsa(ApprovedTSAEntry("MN TSA", "http://tsa.example.mn", pki.tsa.certificate))
    await store.add_security_server(SS1, "ss1.example.mn")
    await store.add_auth_cert(SS1, pki.member_auth.certificate)
    await store.register_client(SS1, GOV)
    await store.register_client(SS1, GOV.subsystem("civil-registry"))
    await store.set_maintenance_mode(SS1, True, "upgrade")
    await store.add_security_server(COM.server("ss2"))
    owners = GlobalGroupId("MN", "security-server-owners")
    await store.add_global_group(owners, "Security server owners")
    await store.add_group_member(owners, GOV)
    await store.add_group_member(owners, GOV.subsystem("mgmt"))
    await _fails(store.snapshot([]), FaultCode.INVALID_REQUEST, 400)

    snap = await store.snapshot(["cs.example.mn"])
    shared, private = snap.shared, snap.private
    assert shared.instance == private.instance == "MN"
    assert shared.ocsp_freshness_seconds == 3600
    assert private.time_stamping_interval_seconds == 120
    assert private.management_service.management_request_service_provider_id == GOV.subsystem("mgmt")
    assert [m.code for m in shared.member_classes] == ["COM", "GOV"]
    assert shared.security_servers[1].auth_cert_hashes == (auth_cert_hash(pki.member_auth.certificate),)
    assert snap.active_key(KeyKind.EXTERNAL).key_id == "ext-1"

    shared_xml = build_shared_params(shared, version=6)
    doc = etree.fromstring(shared_xml)
    schema = _schema("v6/shared-parameters.xsd")
    assert schema.validate(doc), schema.error_log
    private_xml = build_private_params(private)
    private_schema = _schema("v3/private-parameters.xsd")
    assert private_schema.validate(etree.fromstring(private_xml)), private_schema.error_log
    assert parse_shared_params(shared_xml) == shared
    assert parse_private_params(private_xml) == private
    assert isinstance(private.management_service.auth_cert_reg_service_cert, x509.Certificate)
