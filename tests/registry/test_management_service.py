"""The management service over HTTP on a real socket, on both database backends: signed requests built with
:mod:`xroad_mn.management` are verified against the registry's own trust, recorded and (auto-)approved; bad
signatures, wrong proof of possession, revoked certificates, malformed XML and business-rule violations are
answered with X-Road SOAP faults and change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding

from registry import management_service
from registry.context import CHANGED_KEY, CLOCK_KEY, STORE_KEY
from registry.db import RegistryStore, RequestState
from registry.management_service import MANAGE_PATH, REGISTRATION_PATH, add_management_routes
from registry.requests import approve_request
from registry.trust import registry_trust
from trust_services.ocsp_responder import build_ocsp_response, status_lookup
from trust_services.pki import CertifiedKey, DevPki, generate_rsa_key
from xroad_mn.admin import RateLimiter
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.params import ApprovedCAEntry, ApprovedTSAEntry, CaInfo, OcspInfo
from xroad_mn.identifiers import MemberId, SecurityServerId, SubsystemId
from xroad_mn.management import (
    AddressChangeRequest,
    AuthCertDeletionRequest,
    AuthCertRegRequest,
    BuiltManagementRequest,
    ClientDeletionRequest,
    ClientDisableRequest,
    ClientEnableRequest,
    ClientRegRequest,
    ClientRenameRequest,
    MaintenanceModeDisableRequest,
    MaintenanceModeEnableRequest,
    ManagementRequest,
    ManagementRequestType,
    MemberSigner,
    build_management_request,
    parse_management_response,
    required_signer,
)
from xroad_mn.ocsp import build_ocsp_request

PROVIDER: SubsystemId = MemberId("MN", "GOV", "1000001").subsystem("management")
PROFILE = "xroad_mn"
SOURCE = "127.0.0.1"


# -- the registry's world (shared with test_e2e) ------------------------------------------------------------


def ca_entry(pki: DevPki, ocsp_url: str = "http://127.0.0.1:9/ocsp") -> ApprovedCAEntry:
    """The dev PKI as an approved CA: root on top, the intermediate with its delegated OCSP responder."""
    return ApprovedCAEntry(
        name="MN dev CA",
        top_ca=CaInfo(pki.root.certificate),
        certificate_profile_info=PROFILE,
        intermediate_cas=(
            CaInfo(pki.intermediate.certificate, (OcspInfo(ocsp_url, pki.ocsp_responder.certificate),)),
        ),
    )


def tsa_entry(pki: DevPki, url: str = "http://127.0.0.1:9/tsa") -> ApprovedTSAEntry:
    return ApprovedTSAEntry("MN dev TSA", url, pki.tsa.certificate)


def ocsp_der(pki: DevPki, cert: CertifiedKey, at: datetime | None = None) -> bytes:
    """The dev OCSP responder's answer about ``cert`` at ``at`` (default: the PKI's now)."""
    issued = {c.certificate.serial_number for c in pki.issued_by_intermediate}
    return build_ocsp_response(
        build_ocsp_request(cert.certificate, pki.intermediate.certificate),
        issuer=pki.intermediate,
        responder=pki.ocsp_responder,
        status_of=status_lookup(pki.revocations, issued),
        now=at if at is not None else pki.now,
    )


def signer_of(pki: DevPki, cert: CertifiedKey | None = None) -> MemberSigner:
    chosen = cert if cert is not None else pki.member_sign
    return MemberSigner(chosen.private_key, chosen.certificate, ocsp_der(pki, chosen))


def auth_der(pki: DevPki) -> bytes:
    return pki.member_auth.certificate.public_bytes(Encoding.DER)


def build(
    pki: DevPki, request: ManagementRequest, *, signer: MemberSigner | None = None
) -> BuiltManagementRequest:
    """A management request from the dev PKI's member (the server owner), signed by its signing key and,
    for ``authCertReg``, by the authentication key."""
    return build_management_request(
        request,
        sender=pki.member,
        service_provider=PROVIDER,
        signer=signer if signer is not None else signer_of(pki),
        auth_key=pki.member_auth.private_key,  # type: ignore[arg-type]
    )


async def setup_registry(store: RegistryStore, pki: DevPki, *, with_owner: bool = True) -> None:
    """Member classes, the management service provider, the server owner (unless told not to), CA and TSA."""
    await store.add_member_class("GOV", "Government")
    await store.add_member(PROVIDER.member, "Registry authority")
    await store.add_subsystem(PROVIDER, "Management services")
    await store.update_settings(
        management_service_provider=PROVIDER, management_service_address="http://127.0.0.1/managementservice"
    )
    if with_owner:
        await store.add_member(pki.member, "Ministry")
    await store.add_ca(ca_entry(pki))
    await store.add_tsa(tsa_entry(pki))


# -- the service on a real socket ---------------------------------------------------------------------------


@dataclass
class Service:
    app: web.Application
    store: RegistryStore
    session: aiohttp.ClientSession
    base: str

    async def post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        async with self.session.post(
            self.base + path, data=body, headers={"Content-Type": content_type}
        ) as r:
            return r.status, await r.read()

    @property
    def changed(self) -> asyncio.Event:
        return self.app[CHANGED_KEY]


@asynccontextmanager
async def running_service(
    store: RegistryStore,
    clock: Callable[[], datetime],
    auto_approve: frozenset[ManagementRequestType] = frozenset(),
    *,
    internal: bool = True,
    limiter: RateLimiter | None = None,
) -> AsyncIterator[Service]:
    app = web.Application()
    app[STORE_KEY] = store
    app[CHANGED_KEY] = asyncio.Event()
    app[CLOCK_KEY] = clock
    add_management_routes(app, internal=internal, auto_approve=auto_approve, limiter=limiter)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as session:
            yield Service(app, store, session, f"http://{host}:{port}")
    finally:
        await runner.cleanup()


@pytest.fixture
async def service(store: RegistryStore, pki: DevPki) -> AsyncIterator[Service]:
    await setup_registry(store, pki)
    async with running_service(store, lambda: pki.now, frozenset({ManagementRequestType.CLIENT_REG})) as s:
        yield s


def fault_of(body: bytes) -> XRoadError:
    with pytest.raises(XRoadError) as e:
        parse_management_response(body)
    return e.value


async def assert_refused(
    service: Service, path: str, body: bytes, content_type: str, code: str
) -> XRoadError:
    """POST and expect a SOAP fault with ``code``, prefixed ``client.`` or ``server.`` (HTTP 500), and an
    unchanged registry."""
    before = await service.store.snapshot([SOURCE])
    requests_before = await service.store.list_requests()
    status, answer = await service.post(path, body, content_type)
    assert status == 500, answer
    err = fault_of(answer)
    side, _, bare = err.code.partition(".")
    assert (side in ("client", "server"), bare) == (True, code), err
    assert await service.store.snapshot([SOURCE]) == before
    assert await service.store.list_requests() == requests_before
    assert not service.changed.is_set()
    return err


def _swap(body: bytes, old: bytes, new: bytes) -> bytes:
    assert body.count(old) == 1
    return body.replace(old, new)


def _part_bodies(built: BuiltManagementRequest) -> list[bytes]:
    boundary = built.content_type.rsplit("boundary=", 1)[1].encode()
    chunks = built.body.split(b"--" + boundary)
    return [c.split(b"\r\n\r\n", 1)[1][: -len(b"\r\n")] for c in chunks[1:-1]]


# -- tests --------------------------------------------------------------------------------------------------


async def test_registry_trust_is_the_stores_cas(store: RegistryStore, pki: DevPki) -> None:
    await setup_registry(store, pki)
    trust = await registry_trust(store)
    assert trust.instance == "MN"
    assert [ca.name for ca in trust.approved_cas] == ["MN dev CA"]
    assert trust.approved_cas[0].intermediates == (pki.intermediate.certificate,)
    assert trust.ocsp_responder_certs_for(pki.intermediate.certificate) == (pki.ocsp_responder.certificate,)
    assert trust.tsa_certificates == (pki.tsa.certificate,)
    assert trust.ocsp_freshness_seconds == 3600
    assert trust.time_stamping_interval_seconds == 60


async def test_auth_cert_reg_then_client_reg(service: Service, pki: DevPki) -> None:
    server = pki.member.server("ss1")
    built = build(pki, AuthCertRegRequest(server, "ss1.example.mn", auth_der(pki)))
    status, answer = await service.post(REGISTRATION_PATH, built.body, built.content_type)
    assert status == 200, answer
    response = parse_management_response(answer, request=built.header)
    record = await service.store.get_request(response.request_id or -1)
    assert record.type is ManagementRequestType.AUTH_CERT_REG
    assert record.state is RequestState.SUBMITTED
    assert record.raw == built.body
    assert record.history[0].user == str(pki.member)
    assert not service.changed.is_set()  # submitted only: global configuration does not change
    await approve_request(service.store, record.id, user="admin")
    assert (await service.store.get_security_server(server)).address == "ss1.example.mn"

    client = pki.member.subsystem("civil-registry")
    built = build(pki, ClientRegRequest(server, client, "Civil registry"))
    status, answer = await service.post(MANAGE_PATH + "/", built.body, built.content_type)
    assert status == 200, answer
    response = parse_management_response(answer, request=built.header)
    reg = await service.store.get_request(response.request_id or -1)
    assert reg.state is RequestState.APPROVED  # auto-approved
    assert service.changed.is_set()
    assert (await service.store.get_security_server(server)).clients == (client,)


async def test_auth_cert_reg_is_also_taken_by_the_manage_path(service: Service, pki: DevPki) -> None:
    built = build(pki, AuthCertRegRequest(pki.member.server("ss1"), "ss1.example.mn", auth_der(pki)))
    status, answer = await service.post(MANAGE_PATH, built.body, built.content_type)
    assert status == 200, answer
    assert parse_management_response(answer).request_id is not None


async def _registered_client(service: Service, pki: DevPki) -> tuple[SecurityServerId, SubsystemId]:
    """Server ss1 (authCertReg, approved) with subsystem civil-registry (clientReg), both through the
    public path."""
    server, client = pki.member.server("ss1"), pki.member.subsystem("civil-registry")
    built = build(pki, AuthCertRegRequest(server, "ss1.example.mn", auth_der(pki)))
    status, answer = await service.post(REGISTRATION_PATH, built.body, built.content_type)
    assert status == 200, answer
    await approve_request(service.store, parse_management_response(answer).request_id or -1, user="admin")
    built = build(pki, ClientRegRequest(server, client, "Civil registry"))
    status, answer = await service.post(REGISTRATION_PATH, built.body, built.content_type)
    assert status == 200, answer
    record = await service.store.get_request(parse_management_response(answer).request_id or -1)
    assert (record.type, record.state) == (ManagementRequestType.CLIENT_REG, RequestState.APPROVED)
    assert (await service.store.get_security_server(server)).clients == (client,)
    return server, client


async def test_public_path_takes_every_member_signed_type(store: RegistryStore, pki: DevPki) -> None:
    """The public socket's service (no ``/manage`` route) takes, besides ``authCertReg``, every request
    type a member signs — the interim path until node-to-node messaging exists — verified and recorded as
    the internal endpoint records them."""
    await setup_registry(store, pki)
    auto = frozenset({ManagementRequestType.CLIENT_REG, ManagementRequestType.CLIENT_DISABLE})
    async with running_service(store, lambda: pki.now, auto, internal=False) as service:
        server, client = await _registered_client(service, pki)
        signed: list[ManagementRequest] = [
            ClientRenameRequest(server, client, "Civil registry II"),
            ClientDisableRequest(server, client),  # auto-approved, so clientEnable is allowed next
            ClientEnableRequest(server, client),
            AddressChangeRequest(server, "10.0.0.7"),
            MaintenanceModeEnableRequest(server, "upgrade"),
            MaintenanceModeDisableRequest(server),
        ]
        for request in signed:
            assert required_signer(request) == pki.member
            built = build(pki, request)
            status, answer = await service.post(REGISTRATION_PATH + "/", built.body, built.content_type)
            assert status == 200, (request.TYPE, answer)
            response = parse_management_response(answer, request=built.header)
            record = await store.get_request(response.request_id or -1)
            assert (record.type, record.request, record.raw) == (request.TYPE, request, built.body)
            assert record.history[0].user == str(pki.member)
        service.changed.clear()
        # Verified exactly as on the internal endpoint: a bad signature is refused.
        built = build(pki, AddressChangeRequest(server, "10.0.0.8"))
        sig = _part_bodies(built)[1]
        forged = _swap(built.body, sig, sig[:-1] + bytes([sig[-1] ^ 1]))
        await assert_refused(
            service, REGISTRATION_PATH, forged, built.content_type, FaultCode.INVALID_SIGNATURE_VALUE
        )
        # ... and so is a request signed by a member other than the one that must sign.
        stranger = build(pki, ClientRegRequest(server, MemberId("MN", "GOV", "7000001").subsystem("x")))
        await assert_refused(
            service, REGISTRATION_PATH, stranger.body, stranger.content_type, FaultCode.INVALID_REQUEST
        )


async def test_public_path_refuses_unsigned_types(store: RegistryStore, pki: DevPki) -> None:
    """``clientDeletion`` and ``authCertDeletion`` carry no member signature: the public path refuses them
    (``invalid_request``) and nothing changes; only the internal ``/manage`` endpoint takes them."""
    await setup_registry(store, pki)
    async with running_service(
        store, lambda: pki.now, frozenset({ManagementRequestType.CLIENT_REG})
    ) as service:
        server, client = await _registered_client(service, pki)
        service.changed.clear()
        unsigned: list[ManagementRequest] = [
            ClientDeletionRequest(server, client),
            AuthCertDeletionRequest(server, auth_der(pki)),
        ]
        for request in unsigned:
            assert required_signer(request) is None
            built = build(pki, request)
            for path in (REGISTRATION_PATH, REGISTRATION_PATH + "/"):
                err = await assert_refused(
                    service, path, built.body, built.content_type, FaultCode.INVALID_REQUEST
                )
                assert "no member signature" in err.message
            status, answer = await service.post(MANAGE_PATH, built.body, built.content_type)
            assert status == 200, answer  # the internal endpoint takes it


async def test_bad_signature_is_refused(service: Service, pki: DevPki) -> None:
    built = build(pki, AuthCertRegRequest(pki.member.server("ss1"), "ss1.example.mn", auth_der(pki)))
    owner_sig = _part_bodies(built)[2]
    forged = _swap(built.body, owner_sig, owner_sig[:-1] + bytes([owner_sig[-1] ^ 1]))
    await assert_refused(
        service, REGISTRATION_PATH, forged, built.content_type, FaultCode.INVALID_SIGNATURE_VALUE
    )
    tampered = _swap(built.body, b"ss1.example.mn", b"ss9.example.mn")
    await assert_refused(
        service, REGISTRATION_PATH, tampered, built.content_type, FaultCode.INVALID_SIGNATURE_VALUE
    )


async def test_wrong_proof_of_possession_is_refused(service: Service, pki: DevPki) -> None:
    built = build(pki, AuthCertRegRequest(pki.member.server("ss1"), "ss1.example.mn", auth_der(pki)))
    auth_sig = _part_bodies(built)[1]
    stranger = generate_rsa_key().sign(built.soap, padding.PKCS1v15(), hashes.SHA512())
    forged = _swap(built.body, auth_sig, stranger)
    err = await assert_refused(
        service, REGISTRATION_PATH, forged, built.content_type, FaultCode.INVALID_SIGNATURE_VALUE
    )
    assert "auth" in err.message


async def test_revoked_certificate_is_refused(service: Service, pki: DevPki) -> None:
    built = build(
        pki,
        AuthCertRegRequest(pki.member.server("ss1"), "ss1.example.mn", auth_der(pki)),
        signer=signer_of(pki, pki.revoked_sign),
    )
    err = await assert_refused(
        service, REGISTRATION_PATH, built.body, built.content_type, FaultCode.CERT_VALIDATION
    )
    assert "revoked" in err.message


async def test_expired_certificate_is_refused(service: Service, pki: DevPki) -> None:
    built = build(
        pki,
        AuthCertRegRequest(pki.member.server("ss1"), "ss1.example.mn", auth_der(pki)),
        signer=signer_of(pki, pki.expired_sign),
    )
    status, answer = await service.post(REGISTRATION_PATH, built.body, built.content_type)
    assert status == 500
    assert fault_of(answer).code.startswith(("server.cert_validation", "server.invalid_cert_path"))
    assert await service.store.list_requests() == ()


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"<SOAP-ENV:Envelope", "text/xml", FaultCode.INVALID_SOAP),
        (b"<a/>", "text/xml; charset=UTF-8", FaultCode.INVALID_SOAP),
        (b"{}", "application/json", FaultCode.INVALID_CONTENT_TYPE),
        (
            b"--x\r\nContent-Type: text/xml\r\n\r\n<oops\r\n--x--\r\n",
            "multipart/related; boundary=x",
            FaultCode.INVALID_SOAP,
        ),
    ],
)
async def test_malformed_xml_is_refused(service: Service, body: bytes, content_type: str, code: str) -> None:
    await assert_refused(service, MANAGE_PATH, body, content_type, code)


async def test_xxe_is_refused(service: Service, pki: DevPki) -> None:
    built = build(pki, AddressChangeRequest(pki.member.server("ss1"), "10.0.0.7"))
    evil = built.body.replace(
        b"<?xml version='1.0' encoding='UTF-8'?>",
        b"<?xml version='1.0' encoding='UTF-8'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>",
        1,
    )
    assert evil != built.body
    status, answer = await service.post(MANAGE_PATH, evil, built.content_type)
    assert status == 500
    assert b"root:" not in answer
    assert await service.store.list_requests() == ()


async def test_auth_cert_reg_for_owner_who_is_no_member_is_refused(store: RegistryStore, pki: DevPki) -> None:
    await setup_registry(store, pki, with_owner=False)
    async with running_service(store, lambda: pki.now) as service:
        built = build(pki, AuthCertRegRequest(pki.member.server("ss1"), "ss1.example.mn", auth_der(pki)))
        await assert_refused(
            service, REGISTRATION_PATH, built.body, built.content_type, FaultCode.UNKNOWN_MEMBER
        )


async def test_duplicate_auth_cert_is_a_conflict(service: Service, pki: DevPki) -> None:
    built = build(pki, AuthCertRegRequest(pki.member.server("ss1"), "ss1.example.mn", auth_der(pki)))
    status, _ = await service.post(REGISTRATION_PATH, built.body, built.content_type)
    assert status == 200
    again = build(pki, AuthCertRegRequest(pki.member.server("ss2"), "ss2.example.mn", auth_der(pki)))
    await assert_refused(service, REGISTRATION_PATH, again.body, again.content_type, FaultCode.CONFLICT)


async def test_client_reg_for_unknown_member_or_server_is_refused(service: Service, pki: DevPki) -> None:
    server = pki.member.server("ss1")
    built = build(pki, ClientRegRequest(server, pki.member.subsystem("civil-registry")))
    await assert_refused(
        service, MANAGE_PATH, built.body, built.content_type, FaultCode.INVALID_SECURITY_SERVER
    )


async def test_stale_ocsp_is_refused(store: RegistryStore, pki: DevPki) -> None:
    """The verification time comes from the app's clock: two hours on, the OCSP response is stale."""
    await setup_registry(store, pki)
    from datetime import timedelta

    async with running_service(store, lambda: pki.now + timedelta(hours=2)) as service:
        built = build(pki, AuthCertRegRequest(pki.member.server("ss1"), "ss1.example.mn", auth_der(pki)))
        await assert_refused(
            service, REGISTRATION_PATH, built.body, built.content_type, FaultCode.INCORRECT_VALIDATION_INFO
        )


async def test_unconfigured_management_service_refuses(store: RegistryStore, pki: DevPki) -> None:
    await store.add_member_class("GOV", "Government")
    await store.add_member(pki.member, "Ministry")
    async with running_service(store, lambda: pki.now) as service:
        built = build(pki, AuthCertRegRequest(pki.member.server("ss1"), "ss1.example.mn", auth_der(pki)))
        status, answer = await service.post(REGISTRATION_PATH, built.body, built.content_type)
        assert status == 500
        assert fault_of(answer).code == f"server.{FaultCode.INTERNAL_ERROR}"
        assert await store.list_requests() == ()


async def test_public_service_has_no_manage_endpoint(store: RegistryStore, pki: DevPki) -> None:
    """``internal=False`` (the public socket): ``/managementservice/manage`` is no route, so an unsigned
    ``clientDeletion`` there is a 404 and changes nothing; the registration service still answers."""
    await setup_registry(store, pki)
    async with running_service(store, lambda: pki.now, internal=False) as service:
        deletion = build(pki, ClientDeletionRequest(pki.member.server("ss1"), pki.member.subsystem("x")))
        before = await store.snapshot([SOURCE])
        for path in (MANAGE_PATH, MANAGE_PATH + "/"):
            status, _ = await service.post(path, deletion.body, deletion.content_type)
            assert status == 404
        assert await store.snapshot([SOURCE]) == before
        assert await store.list_requests() == ()
        built = build(pki, AuthCertRegRequest(pki.member.server("ss1"), "ss1.example.mn", auth_der(pki)))
        status, answer = await service.post(REGISTRATION_PATH + "/", built.body, built.content_type)
        assert status == 200, answer


async def test_requests_are_rate_limited_per_remote_address(store: RegistryStore, pki: DevPki) -> None:
    await setup_registry(store, pki)
    limiter = RateLimiter(2, 600, clock=lambda: 0.0)
    async with running_service(store, lambda: pki.now, limiter=limiter) as service:
        for _ in range(2):
            status, answer = await service.post(MANAGE_PATH, b"<oops", "text/xml")
            assert (status, fault_of(answer).code) == (500, f"server.{FaultCode.INVALID_SOAP}")
        status, answer = await service.post(REGISTRATION_PATH, b"<oops", "text/xml")
        assert status == 429
        assert fault_of(answer).code == f"client.{FaultCode.RATE_LIMIT_EXCEEDED}"
        assert not limiter.allow("addr:127.0.0.1")


async def test_unexpected_failure_is_a_soap_fault(
    service: Service, pki: DevPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(store: RegistryStore) -> object:
        raise RuntimeError("database went away")

    monkeypatch.setattr(management_service, "registry_trust", broken)
    built = build(pki, AuthCertRegRequest(pki.member.server("ss1"), "ss1.example.mn", auth_der(pki)))
    status, answer = await service.post(REGISTRATION_PATH, built.body, built.content_type)
    assert status == 500
    assert answer.lstrip().startswith(b"<?xml")
    err = fault_of(answer)
    assert err.code == "server.internal_error"
    assert "database" not in err.message
    assert await service.store.list_requests() == ()


async def test_repeated_pending_request_of_any_type_is_a_conflict(service: Service, pki: DevPki) -> None:
    server, client = pki.member.server("ss1"), pki.member.subsystem("civil-registry")
    built = build(pki, AuthCertRegRequest(server, "ss1.example.mn", auth_der(pki)))
    status, answer = await service.post(REGISTRATION_PATH, built.body, built.content_type)
    assert status == 200, answer
    await approve_request(service.store, parse_management_response(answer).request_id or -1, user="admin")
    built = build(pki, ClientRegRequest(server, client, "Civil registry"))
    assert (await service.post(MANAGE_PATH, built.body, built.content_type))[0] == 200  # auto-approved
    service.changed.clear()

    deletion = build(pki, ClientDeletionRequest(server, client))
    status, answer = await service.post(MANAGE_PATH, deletion.body, deletion.content_type)
    assert status == 200, answer
    again = build(pki, ClientDeletionRequest(server, client))
    err = await assert_refused(service, MANAGE_PATH, again.body, again.content_type, FaultCode.CONFLICT)
    assert "waits for approval" in err.message
    rename = build(pki, ClientRenameRequest(server, client, "Civil registry II"))
    for expected in (200, 500):  # a different request is taken once, then it is the duplicate
        status, answer = await service.post(MANAGE_PATH, rename.body, rename.content_type)
        assert status == expected, answer
