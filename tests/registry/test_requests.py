"""The management-request workflow on both database backends: business checks, recording, approval effects,
auto-approval, rejection, revocation and refused transitions."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from registry.db import ManagementRequestRecord, RegistryStore, RequestState, ServerClient
from registry.requests import (
    AUTO_APPROVE_USER,
    SECURITY_SERVER_OWNERS_GROUP,
    approve_request,
    reject_request,
    revoke_request,
    submit_request,
)
from trust_services.pki import DevPki
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.params import auth_cert_hash
from xroad_mn.identifiers import GlobalGroupId, MemberId
from xroad_mn.management import (
    AddressChangeRequest,
    AuthCertDeletionRequest,
    AuthCertRegRequest,
    ClientDeletionRequest,
    ClientDisableRequest,
    ClientEnableRequest,
    ClientRegRequest,
    ClientRenameRequest,
    MaintenanceModeDisableRequest,
    MaintenanceModeEnableRequest,
    ManagementRequestType,
    OwnerChangeRequest,
)
from xroad_mn.wire.faults import http_status_of

OWNER = MemberId("MN", "GOV", "5012345")
OTHER = MemberId("MN", "COM", "7777777")
SERVER = OWNER.server("ss1")
NONE: frozenset[ManagementRequestType] = frozenset()


async def _populate(store: RegistryStore) -> None:
    await store.add_member_class("GOV", "Government")
    await store.add_member_class("COM", "Commercial")
    await store.add_member(OWNER, "Ministry")
    await store.add_member(OTHER, "Company")
    await store.add_subsystem(OTHER.subsystem("tax"), "Tax")


def _auth_der(pki: DevPki) -> bytes:
    return pki.member_auth.certificate.public_bytes(Encoding.DER)


async def _registered_server(store: RegistryStore, pki: DevPki) -> None:
    record = await submit_request(
        store,
        AuthCertRegRequest(SERVER, "ss1.example.mn", _auth_der(pki)),
        raw=None,
        auto_approve=NONE,
        user="ss",
    )
    await approve_request(store, record.id, user="admin")


async def _expect(code: str, call: object) -> XRoadError:
    with pytest.raises(XRoadError) as e:
        await call  # type: ignore[misc]
    assert e.value.code == code, e.value
    return e.value


async def test_auth_cert_reg_submit_and_approve(store: RegistryStore, pki: DevPki) -> None:
    await _populate(store)
    await store.add_global_group(GlobalGroupId("MN", SECURITY_SERVER_OWNERS_GROUP), "Owners")
    record = await submit_request(
        store,
        AuthCertRegRequest(SERVER, "ss1.example.mn", _auth_der(pki)),
        raw=b"<raw/>",
        auto_approve=NONE,
        user=str(OWNER),
    )
    assert record.state is RequestState.SUBMITTED
    assert record.type is ManagementRequestType.AUTH_CERT_REG
    assert record.raw == b"<raw/>"
    assert record.client is None
    assert await store.list_security_servers() == ()  # nothing applied yet
    approved = await approve_request(store, record.id, user="admin", comment="ok")
    assert approved.state is RequestState.APPROVED
    assert [(e.from_state, e.to_state, e.user) for e in approved.history] == [
        (None, RequestState.SUBMITTED, str(OWNER)),
        (RequestState.SUBMITTED, RequestState.APPROVED, "admin"),
    ]
    server = await store.get_security_server(SERVER)
    assert server.address == "ss1.example.mn"
    assert server.auth_cert_hashes == (auth_cert_hash(pki.member_auth.certificate),)
    group = await store.get_global_group(GlobalGroupId("MN", SECURITY_SERVER_OWNERS_GROUP))
    assert group.members == (OWNER,)


async def test_auth_cert_reg_for_unknown_owner_is_refused(store: RegistryStore, pki: DevPki) -> None:
    await _populate(store)
    stranger = MemberId("MN", "GOV", "9999999").server("ss1")
    await _expect(
        FaultCode.UNKNOWN_MEMBER,
        submit_request(
            store,
            AuthCertRegRequest(stranger, "ss.example.mn", _auth_der(pki)),
            raw=None,
            auto_approve=NONE,
            user="x",
        ),
    )
    assert await store.list_requests() == ()


async def test_duplicate_auth_cert_is_a_conflict(store: RegistryStore, pki: DevPki) -> None:
    await _populate(store)
    request = AuthCertRegRequest(SERVER, "ss1.example.mn", _auth_der(pki))
    first = await submit_request(store, request, raw=None, auto_approve=NONE, user="ss")
    # pending with the same certificate
    await _expect(FaultCode.CONFLICT, submit_request(store, request, raw=None, auto_approve=NONE, user="ss"))
    await approve_request(store, first.id, user="admin")
    # registered already (also for another server of the same owner)
    other_server = AuthCertRegRequest(OWNER.server("ss2"), "ss2.example.mn", _auth_der(pki))
    err = await _expect(
        FaultCode.CONFLICT, submit_request(store, other_server, raw=None, auto_approve=NONE, user="ss")
    )
    assert http_status_of(err) == 409
    assert len(await store.list_requests()) == 1


async def test_client_reg_creates_the_subsystem_of_an_existing_member(
    store: RegistryStore, pki: DevPki
) -> None:
    await _populate(store)
    await _registered_server(store, pki)
    new_sub = OWNER.subsystem("civil-registry")
    record = await submit_request(
        store, ClientRegRequest(SERVER, new_sub, "Civil registry"), raw=None, auto_approve=NONE, user="ss"
    )
    assert record.client == new_sub
    await approve_request(store, record.id, user="admin")
    member = await store.get_member(OWNER)
    assert [(s.code, s.name) for s in member.subsystems] == [("civil-registry", "Civil registry")]
    assert new_sub in (await store.get_security_server(SERVER)).clients


async def test_client_reg_business_rules(store: RegistryStore, pki: DevPki) -> None:
    await _populate(store)
    unknown_server = ClientRegRequest(OWNER.server("nope"), OTHER.subsystem("tax"))
    await _expect(
        FaultCode.INVALID_SECURITY_SERVER,
        submit_request(store, unknown_server, raw=None, auto_approve=NONE, user="ss"),
    )
    await _registered_server(store, pki)
    unknown_member = ClientRegRequest(SERVER, MemberId("MN", "COM", "0000000").subsystem("x"))
    await _expect(
        FaultCode.UNKNOWN_MEMBER,
        submit_request(store, unknown_member, raw=None, auto_approve=NONE, user="ss"),
    )
    await _expect(
        FaultCode.INVALID_REQUEST,
        submit_request(store, ClientRegRequest(SERVER, OWNER), raw=None, auto_approve=NONE, user="ss"),
    )
    tax = ClientRegRequest(SERVER, OTHER.subsystem("tax"))
    pending = await submit_request(store, tax, raw=None, auto_approve=NONE, user="ss")
    await _expect(FaultCode.CONFLICT, submit_request(store, tax, raw=None, auto_approve=NONE, user="ss"))
    await approve_request(store, pending.id, user="admin")
    await _expect(FaultCode.CONFLICT, submit_request(store, tax, raw=None, auto_approve=NONE, user="ss"))
    assert len(await store.list_requests(type=ManagementRequestType.CLIENT_REG)) == 1


async def test_auto_approve(store: RegistryStore, pki: DevPki) -> None:
    await _populate(store)
    auto = frozenset({ManagementRequestType.AUTH_CERT_REG, ManagementRequestType.CLIENT_REG})
    record = await submit_request(
        store,
        AuthCertRegRequest(SERVER, "ss1.example.mn", _auth_der(pki)),
        raw=None,
        auto_approve=auto,
        user="ss",
    )
    assert record.state is RequestState.APPROVED
    assert record.history[-1].user == AUTO_APPROVE_USER
    client = await submit_request(
        store, ClientRegRequest(SERVER, OTHER.subsystem("tax")), raw=None, auto_approve=auto, user="ss"
    )
    assert client.state is RequestState.APPROVED
    assert (await store.get_security_server(SERVER)).clients == (OTHER.subsystem("tax"),)
    # a type not in the set stays submitted
    change = await submit_request(
        store, AddressChangeRequest(SERVER, "10.0.0.7"), raw=None, auto_approve=auto, user="ss"
    )
    assert change.state is RequestState.SUBMITTED


async def test_every_effect(store: RegistryStore, pki: DevPki) -> None:
    await _populate(store)
    await _registered_server(store, pki)
    tax = OTHER.subsystem("tax")

    async def run(request: object) -> None:
        record = await submit_request(store, request, raw=None, auto_approve=NONE, user="ss")  # type: ignore[arg-type]
        await approve_request(store, record.id, user="admin")

    await run(ClientRegRequest(SERVER, tax))
    await run(ClientRegRequest(SERVER, OTHER))
    await run(AddressChangeRequest(SERVER, "10.0.0.7"))
    assert (await store.get_security_server(SERVER)).address == "10.0.0.7"
    await run(MaintenanceModeEnableRequest(SERVER, "upgrading"))
    server = await store.get_security_server(SERVER)
    assert server.in_maintenance_mode
    assert server.maintenance_message == "upgrading"
    await run(MaintenanceModeDisableRequest(SERVER))
    assert not (await store.get_security_server(SERVER)).in_maintenance_mode
    await run(ClientRenameRequest(SERVER, tax, "Tax board"))
    assert (await store.get_member(OTHER)).subsystems[0].name == "Tax board"
    # enabling a client that was never disabled is refused
    await _expect(
        FaultCode.CONFLICT,
        submit_request(store, ClientEnableRequest(SERVER, tax), raw=None, auto_approve=NONE, user="ss"),
    )
    await run(ClientDisableRequest(SERVER, tax))
    assert tax not in (await store.get_security_server(SERVER)).clients  # nor in global configuration
    assert ServerClient(tax, enabled=False) in await store.list_server_clients(SERVER)
    for refused in (ClientDisableRequest(SERVER, tax), ClientRegRequest(SERVER, tax)):
        await _expect(
            FaultCode.CONFLICT, submit_request(store, refused, raw=None, auto_approve=NONE, user="ss")
        )
    await run(ClientEnableRequest(SERVER, tax))
    assert tax in (await store.get_security_server(SERVER)).clients
    assert ServerClient(tax) in await store.list_server_clients(SERVER)
    await _expect(
        FaultCode.NOT_FOUND,
        submit_request(
            store, ClientEnableRequest(SERVER, OWNER.subsystem("x")), raw=None, auto_approve=NONE, user="ss"
        ),
    )
    await store.register_client(SERVER, OWNER)  # the owner member as a client: it cannot be disabled
    await _expect(
        FaultCode.INVALID_REQUEST,
        submit_request(store, ClientDisableRequest(SERVER, OWNER), raw=None, auto_approve=NONE, user="ss"),
    )
    await run(ClientDisableRequest(SERVER, tax))  # a disabled client can be deleted
    await run(ClientDeletionRequest(SERVER, tax))
    assert (await store.get_security_server(SERVER)).clients == (OTHER, OWNER)
    await _expect(
        FaultCode.NOT_FOUND,
        submit_request(store, ClientDeletionRequest(SERVER, tax), raw=None, auto_approve=NONE, user="ss"),
    )
    await run(OwnerChangeRequest(SERVER, OTHER))
    moved = OTHER.server("ss1")
    assert (await store.get_security_server(moved)).owner == OTHER
    await run(AuthCertDeletionRequest(moved, _auth_der(pki)))
    assert (await store.get_security_server(moved)).auth_cert_hashes == ()
    await _expect(
        FaultCode.NOT_FOUND,
        submit_request(
            store, AuthCertDeletionRequest(moved, _auth_der(pki)), raw=None, auto_approve=NONE, user="ss"
        ),
    )


async def test_owner_change_rules(store: RegistryStore, pki: DevPki) -> None:
    await _populate(store)
    await _registered_server(store, pki)
    await _expect(
        FaultCode.INVALID_REQUEST,
        submit_request(store, OwnerChangeRequest(SERVER, OTHER), raw=None, auto_approve=NONE, user="ss"),
    )
    await _expect(
        FaultCode.INVALID_REQUEST,
        submit_request(store, OwnerChangeRequest(SERVER, OWNER), raw=None, auto_approve=NONE, user="ss"),
    )


async def test_reject_revoke_and_refused_transitions(store: RegistryStore, pki: DevPki) -> None:
    await _populate(store)
    await _registered_server(store, pki)
    a = await submit_request(
        store, AddressChangeRequest(SERVER, "a.example.mn"), raw=None, auto_approve=NONE, user="ss"
    )
    b = await submit_request(
        store, AddressChangeRequest(SERVER, "b.example.mn"), raw=None, auto_approve=NONE, user="ss"
    )
    rejected = await reject_request(store, a.id, user="admin", comment="no")
    assert rejected.state is RequestState.REJECTED
    assert rejected.history[-1].comment == "no"
    revoked = await revoke_request(store, b.id, user="ss")
    assert revoked.state is RequestState.REVOKED
    for call in (
        approve_request(store, a.id, user="admin"),
        reject_request(store, a.id, user="admin"),
        revoke_request(store, a.id, user="admin"),
        approve_request(store, b.id, user="admin"),
    ):
        err = await _expect(FaultCode.CONFLICT, call)
        assert http_status_of(err) == 409
    assert (await store.get_security_server(SERVER)).address == "ss1.example.mn"  # nothing applied
    approved = (await store.list_requests(type=ManagementRequestType.AUTH_CERT_REG))[0]
    await _expect(FaultCode.CONFLICT, approve_request(store, approved.id, user="admin"))
    await _expect(FaultCode.NOT_FOUND, approve_request(store, 10_000, user="admin"))


async def test_approval_rechecks_the_rules(store: RegistryStore, pki: DevPki) -> None:
    """A request whose rules stopped holding while it waited is not applied and stays submitted."""
    await _populate(store)
    await _registered_server(store, pki)
    first = await submit_request(
        store, ClientRegRequest(SERVER, OTHER.subsystem("tax")), raw=None, auto_approve=NONE, user="ss"
    )
    await store.register_client(SERVER, OTHER.subsystem("tax"))  # e.g. registered by an administrator
    await _expect(FaultCode.CONFLICT, approve_request(store, first.id, user="admin"))
    assert (await store.get_request(first.id)).state is RequestState.SUBMITTED


async def test_concurrent_approvals_apply_the_effect_once(store: RegistryStore, pki: DevPki) -> None:
    await _populate(store)
    await store.add_global_group(GlobalGroupId("MN", SECURITY_SERVER_OWNERS_GROUP), "Owners")
    record = await submit_request(
        store,
        AuthCertRegRequest(SERVER, "ss1.example.mn", _auth_der(pki)),
        raw=None,
        auto_approve=NONE,
        user="ss",
    )
    results = await asyncio.gather(
        approve_request(store, record.id, user="alice"),
        approve_request(store, record.id, user="bob"),
        return_exceptions=True,
    )
    approved = [r for r in results if isinstance(r, ManagementRequestRecord)]
    refused = [r for r in results if isinstance(r, XRoadError)]
    assert len(approved) == len(refused) == 1, results
    assert refused[0].code == FaultCode.CONFLICT
    assert http_status_of(refused[0]) == 409
    (server,) = await store.list_security_servers()
    assert server.auth_cert_hashes == (auth_cert_hash(pki.member_auth.certificate),)
    group = await store.get_global_group(GlobalGroupId("MN", SECURITY_SERVER_OWNERS_GROUP))
    assert group.members == (OWNER,)
    final = await store.get_request(record.id)
    assert final.state is RequestState.APPROVED
    assert [e.user for e in final.history] == ["ss", approved[0].history[-1].user]


async def test_an_effect_failing_midway_applies_nothing(store: RegistryStore, pki: DevPki) -> None:
    """``authCertReg`` of a known server registers the certificate, then sets the address; an address the
    registry refuses (400) takes the registered certificate back with it and leaves the request submitted."""
    await _populate(store)
    await _registered_server(store, pki)
    second = pki.member_sign.certificate.public_bytes(Encoding.DER)
    record = await submit_request(
        store, AuthCertRegRequest(SERVER, "x" * 2000, second), raw=None, auto_approve=NONE, user="ss"
    )
    err = await _expect(FaultCode.INVALID_REQUEST, approve_request(store, record.id, user="admin"))
    assert http_status_of(err) == 400
    server = await store.get_security_server(SERVER)
    assert server.auth_cert_hashes == (auth_cert_hash(pki.member_auth.certificate),)
    assert server.address == "ss1.example.mn"
    unchanged = await store.get_request(record.id)
    assert unchanged.state is RequestState.SUBMITTED
    assert len(unchanged.history) == 1
