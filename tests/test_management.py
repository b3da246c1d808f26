"""Management requests: build → parse/verify round trips, refusals, the registry's answer, fuzzing."""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.crafted import (
    HOSTILE_SIGNATURE_ALGORITHMS,
    HOSTILE_VARIANTS,
    dsa_public_key,
    hostile,
    oids,
    with_public_key,
    with_signature_algorithm,
)
from trust_services.ocsp_responder import build_ocsp_response, status_lookup
from trust_services.pki import (
    CertifiedKey,
    DevPki,
    build_dev_pki,
    generate_rsa_key,
    issue_certificate,
    member_subject,
    sign_profile_extensions,
)
from xroad_mn import management
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import ApprovedCA, OcspResponder, TrustMaterial
from xroad_mn.identifiers import MemberId, SubsystemId
from xroad_mn.management import (
    MAX_MANAGEMENT_REQUEST_BYTES,
    XROAD_NS,
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
    ManagementHeader,
    ManagementRequest,
    ManagementRequestType,
    MemberSigner,
    OwnerChangeRequest,
    build_management_request,
    build_management_response,
    build_management_soap,
    parse_management_request,
    parse_management_response,
    required_signer,
    verify_management_request,
    xml_depth_exceeds,
)
from xroad_mn.ocsp import build_ocsp_request
from xroad_mn.wire.faults import render_soap_fault

NOW = datetime(2025, 1, 1, tzinfo=UTC)
PROVIDER = MemberId("MN", "GOV", "1000001").subsystem("management")
OTHER_MEMBER = MemberId("MN", "COM", "7777777")
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


@pytest.fixture(scope="module")
def interop_soap() -> Path:
    return Path(__file__).resolve().parent / "data" / "xroad" / "soap"


@dataclass(frozen=True)
class World:
    pki: DevPki
    trust: TrustMaterial
    owner_signer: MemberSigner
    other: CertifiedKey
    other_signer: MemberSigner
    ec_signer: MemberSigner

    @property
    def owner(self) -> MemberId:
        return self.pki.member


def _ocsp(pki: DevPki, cert: CertifiedKey, issued: set[int], now: datetime = NOW) -> bytes:
    return build_ocsp_response(
        build_ocsp_request(cert.certificate, pki.intermediate.certificate),
        issuer=pki.intermediate,
        responder=pki.ocsp_responder,
        status_of=status_lookup(pki.revocations, issued),
        now=now,
    )


@pytest.fixture(scope="module")
def world() -> World:
    pki = build_dev_pki(NOW)
    key = generate_rsa_key()
    other = CertifiedKey(
        issue_certificate(
            pki.intermediate,
            subject=member_subject(OTHER_MEMBER),
            public_key=key.public_key(),
            not_before=NOW - timedelta(days=30),
            not_after=NOW + timedelta(days=365),
            extensions=sign_profile_extensions(),
        ),
        key,
        (pki.intermediate.certificate,),
    )
    issued = {c.certificate.serial_number for c in pki.issued_by_intermediate} | {other.serial}
    ca = ApprovedCA(
        name="dev",
        top_ca=pki.root.certificate,
        intermediates=(pki.intermediate.certificate,),
        ocsp_responders=(),
        certificate_profile_info="xroad_mn",
        authentication_only=False,
        instance=pki.instance,
        intermediate_ocsp_responders=((OcspResponder("http://ocsp.test/", pki.ocsp_responder.certificate),),),
    )
    trust = TrustMaterial(pki.instance, (ca,), (), 3600, None)

    def signer(c: CertifiedKey) -> MemberSigner:
        return MemberSigner(c.private_key, c.certificate, _ocsp(pki, c, issued))

    return World(pki, trust, signer(pki.member_sign), other, signer(other), signer(pki.member_sign_ec))


def auth_der(w: World) -> bytes:
    return w.pki.member_auth.certificate.public_bytes(Encoding.DER)


def all_requests(w: World) -> list[ManagementRequest]:
    server = w.owner.server("ss1")
    own_sub = w.owner.subsystem("civil-registry")
    return [
        AuthCertRegRequest(server, "ss1.example.mn", auth_der(w)),
        AuthCertDeletionRequest(server, auth_der(w)),
        ClientRegRequest(server, own_sub, "Civil registry"),
        ClientRegRequest(server, OTHER_MEMBER.subsystem("tax")),
        ClientDeletionRequest(server, own_sub),
        ClientDisableRequest(server, own_sub),
        ClientEnableRequest(server, own_sub),
        ClientRenameRequest(server, own_sub, "Civil registry (new name)"),
        OwnerChangeRequest(server, OTHER_MEMBER),
        AddressChangeRequest(server, "10.0.0.7"),
        MaintenanceModeEnableRequest(server, "upgrading to 7.8"),
        MaintenanceModeEnableRequest(server),
        MaintenanceModeDisableRequest(server),
    ]


def signer_for(w: World, request: ManagementRequest) -> MemberSigner | None:
    member = required_signer(request)
    if member is None:
        return None
    return w.owner_signer if member == w.owner else w.other_signer


def build(w: World, request: ManagementRequest, **kw: object) -> BuiltManagementRequest:
    args: dict[str, object] = {
        "sender": w.owner,
        "service_provider": PROVIDER,
        "signer": signer_for(w, request),
        "auth_key": w.pki.member_auth.private_key,
    }
    args.update(kw)
    return build_management_request(request, **args)  # type: ignore[arg-type]


def verify(w: World, body: bytes, content_type: str, at: datetime = NOW) -> object:
    return verify_management_request(body, content_type, trust=w.trust, service_provider=PROVIDER, at=at)


def expect(code: str, call: Callable[[], object], words: str | None = None) -> XRoadError:
    with pytest.raises(XRoadError, match=words) as e:
        call()
    assert e.value.code == code, e.value
    return e.value


def mime_part_bodies(built: BuiltManagementRequest) -> list[bytes]:
    boundary = built.content_type.rsplit("boundary=", 1)[1].encode()
    chunks = built.body.split(b"--" + boundary)
    return [c.split(b"\r\n\r\n", 1)[1][: -len(b"\r\n")] for c in chunks[1:-1]]


# ------------------------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("index", range(13))
def test_round_trip_every_request_type(world: World, index: int) -> None:
    request = all_requests(world)[index]
    built = build(world, request)
    verified = verify_management_request(
        built.body, built.content_type, trust=world.trust, service_provider=PROVIDER, at=NOW
    )
    assert verified.request == request
    assert verified.header == built.header
    assert verified.soap == built.soap
    assert verified.signer == required_signer(request)
    assert verified.header.service == PROVIDER.service(str(request.TYPE))
    assert verified.header.client == world.owner
    assert verified.header.protocol_version == "4.0"


def test_every_type_is_covered(world: World) -> None:
    assert {r.TYPE for r in all_requests(world)} == set(ManagementRequestType)


def test_auth_cert_reg_layout_follows_x_road(world: World) -> None:
    request = AuthCertRegRequest(world.owner.server("ss1"), "ss1.example.mn", auth_der(world), dry_run=True)
    built = build(world, request, boundary="jetty113950090iemuz6a3")
    assert built.content_type == (
        'multipart/related; type="application/octet-stream"; charset=UTF-8; boundary=jetty113950090iemuz6a3'
    )
    assert built.body.startswith(b"--jetty113950090iemuz6a3\r\nContent-Type: text/xml; charset=UTF-8\r\n\r\n")
    assert built.body.endswith(b"\r\n--jetty113950090iemuz6a3--\r\n")
    headers = re.findall(rb"--jetty113950090iemuz6a3\r\n(.*?)\r\n\r\n", built.body, re.DOTALL)
    assert headers[1:] == [
        b"Content-Type: application/octet-stream\r\nsignature-algorithm-id: SHA512withRSA",
        b"Content-Type: application/octet-stream\r\nsignature-algorithm-id: SHA512withRSA",
        b"Content-Type: application/octet-stream",
        b"Content-Type: application/octet-stream",
        b"Content-Type: application/octet-stream",
    ]
    soap, auth_sig, owner_sig, cert, owner_cert, ocsp_der = mime_part_bodies(built)
    assert soap == built.soap
    assert cert == auth_der(world)
    assert owner_cert == world.pki.member_sign.certificate.public_bytes(Encoding.DER)
    assert ocsp_der == world.owner_signer.ocsp_response
    # Both signatures are plain PKCS#1 v1.5 SHA-512 over the SOAP part bytes.
    for signer_cert, sig in (
        (world.pki.member_auth.certificate, auth_sig),
        (world.pki.member_sign.certificate, owner_sig),
    ):
        key = signer_cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(sig, soap, padding.PKCS1v15(), hashes.SHA512())
    root = etree.fromstring(soap)
    body = root.find(f"{{{SOAP_ENV}}}Body/{{{XROAD_NS}}}authCertReg")
    assert body is not None
    assert [etree.QName(c).localname for c in body] == ["server", "address", "authCert", "dryRun"]
    verified = verify(world, built.body, built.content_type)
    assert verified.request == request  # type: ignore[attr-defined]


def test_deletion_requests_are_plain_soap(world: World) -> None:
    built = build(world, ClientDeletionRequest(world.owner.server("ss1"), world.owner.subsystem("x")))
    assert built.content_type == "text/xml; charset=UTF-8"
    assert built.body == built.soap
    assert b"<xroad:clientDeletion>" in built.soap


def test_ec_signing_key_and_pss(world: World) -> None:
    request = AddressChangeRequest(world.owner.server("ss1"), "ss1.example.mn")
    built = build(world, request, signer=world.ec_signer)
    assert b"signature-algorithm-id: SHA512withECDSA" in built.body
    assert verify(world, built.body, built.content_type).request == request  # type: ignore[attr-defined]
    pss = build(world, request, rsa_pss=True, digest="SHA256")
    assert b"signature-algorithm-id: SHA256withRSAandMGF1" in pss.body
    assert verify(world, pss.body, pss.content_type).request == request  # type: ignore[attr-defined]


def test_parser_accepts_lf_line_ends_and_multiline_base64(world: World) -> None:
    request = AuthCertDeletionRequest(world.owner.server("ss1"), auth_der(world))
    soap = build(world, request).soap
    b64 = base64.b64encode(auth_der(world))
    wrapped = b"\n                ".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    parsed = parse_management_request(soap.replace(b64, wrapped), "text/xml")
    assert parsed.request == request


# ------------------------------------------------------------------------------------------------------------
# Refusals


def _swap(body: bytes, old: bytes, new: bytes) -> bytes:
    assert body.count(old) == 1
    return body.replace(old, new)


def test_bad_owner_signature_is_refused(world: World) -> None:
    built = build(world, ClientRegRequest(world.owner.server("ss1"), world.owner.subsystem("a")))
    sig = mime_part_bodies(built)[1]
    forged = _swap(built.body, sig, sig[:-1] + bytes([sig[-1] ^ 1]))
    expect(FaultCode.INVALID_SIGNATURE_VALUE, lambda: verify(world, forged, built.content_type))


def test_tampered_soap_is_refused(world: World) -> None:
    built = build(world, AddressChangeRequest(world.owner.server("ss1"), "10.0.0.7"))
    tampered = _swap(built.body, b"10.0.0.7", b"10.0.0.8")
    expect(FaultCode.INVALID_SIGNATURE_VALUE, lambda: verify(world, tampered, built.content_type))


def test_wrong_proof_of_possession_is_refused(world: World) -> None:
    request = AuthCertRegRequest(world.owner.server("ss1"), "ss1.example.mn", auth_der(world))
    built = build(world, request)
    auth_sig = mime_part_bodies(built)[1]
    stranger = generate_rsa_key()
    forged_sig = stranger.sign(built.soap, padding.PKCS1v15(), hashes.SHA512())
    forged = _swap(built.body, auth_sig, forged_sig)
    expect(FaultCode.INVALID_SIGNATURE_VALUE, lambda: verify(world, forged, built.content_type), "auth")


def test_builder_refuses_auth_key_of_another_certificate(world: World) -> None:
    request = AuthCertRegRequest(world.owner.server("ss1"), "ss1.example.mn", auth_der(world))
    expect(FaultCode.CANNOT_CREATE_SIGNATURE, lambda: build(world, request, auth_key=generate_rsa_key()))


def test_proof_of_possession_must_be_rsa(world: World) -> None:
    request = AuthCertRegRequest(world.owner.server("ss1"), "ss1.example.mn", auth_der(world))
    built = build(world, request)
    renamed = built.body.replace(
        b"signature-algorithm-id: SHA512withRSA", b"signature-algorithm-id: SHA512withECDSA", 1
    )
    expect(FaultCode.INVALID_REQUEST, lambda: verify(world, renamed, built.content_type), "RSA")


def test_revoked_owner_certificate_is_refused(world: World) -> None:
    revoked = world.pki.revoked_sign
    issued = {c.certificate.serial_number for c in world.pki.issued_by_intermediate}
    signer = MemberSigner(revoked.private_key, revoked.certificate, _ocsp(world.pki, revoked, issued))
    built = build(world, MaintenanceModeDisableRequest(world.owner.server("ss1")), signer=signer)
    expect(FaultCode.CERT_VALIDATION, lambda: verify(world, built.body, built.content_type), "revoked")


def test_stale_ocsp_is_refused(world: World) -> None:
    built = build(world, MaintenanceModeDisableRequest(world.owner.server("ss1")))
    later = NOW + timedelta(hours=2)
    expect(FaultCode.INCORRECT_VALIDATION_INFO, lambda: verify(world, built.body, built.content_type, later))


def test_signing_certificate_of_another_member_is_refused(world: World) -> None:
    request = AddressChangeRequest(world.owner.server("ss1"), "ss1.example.mn")
    built = build(world, request, signer=world.other_signer)
    expect(
        FaultCode.INVALID_REQUEST,
        lambda: verify(world, built.body, built.content_type),
        "does not match the member that must sign",
    )
    client_req = ClientRegRequest(world.owner.server("ss1"), OTHER_MEMBER.subsystem("tax"))
    built = build(world, client_req, signer=world.owner_signer)
    expect(FaultCode.INVALID_REQUEST, lambda: verify(world, built.body, built.content_type), "does not match")


def test_auth_cert_reg_signed_by_another_member_is_refused(world: World) -> None:
    request = AuthCertRegRequest(world.owner.server("ss1"), "ss1.example.mn", auth_der(world))
    built = build(world, request, signer=world.other_signer)
    expect(FaultCode.INVALID_REQUEST, lambda: verify(world, built.body, built.content_type), "does not match")


def test_non_signing_certificate_is_refused(world: World) -> None:
    bad = world.pki.wrong_key_usage_sign
    issued = {c.certificate.serial_number for c in world.pki.issued_by_intermediate}
    signer = MemberSigner(bad.private_key, bad.certificate, _ocsp(world.pki, bad, issued))
    built = build(world, MaintenanceModeDisableRequest(world.owner.server("ss1")), signer=signer)
    expect(FaultCode.CERT_VALIDATION, lambda: verify(world, built.body, built.content_type))


def test_sender_must_be_server_owner(world: World) -> None:
    request = ClientDeletionRequest(OTHER_MEMBER.server("ss9"), OTHER_MEMBER.subsystem("x"))
    expect(FaultCode.INVALID_REQUEST, lambda: build(world, request))
    own = build(world, ClientDeletionRequest(world.owner.server("ss1"), world.owner.subsystem("x")))
    header_client = (
        b"<id:memberClass>GOV</id:memberClass><id:memberCode>5012345</id:memberCode></xroad:client>"
    )
    forged = own.body.replace(
        header_client,
        b"<id:memberClass>COM</id:memberClass><id:memberCode>7777777</id:memberCode></xroad:client>",
    )
    assert forged != own.body
    expect(FaultCode.INVALID_REQUEST, lambda: verify(world, forged, own.content_type), "owner")


def test_wrong_management_service_is_refused(world: World) -> None:
    request = ClientDeletionRequest(world.owner.server("ss1"), world.owner.subsystem("x"))
    built = build(world, request, service_provider=MemberId("MN", "GOV", "666").subsystem("management"))
    expect(FaultCode.INVALID_REQUEST, lambda: verify(world, built.body, built.content_type), "address")


def test_service_code_must_match_body(world: World) -> None:
    built = build(world, ClientDeletionRequest(world.owner.server("ss1"), world.owner.subsystem("x")))
    forged = built.body.replace(b"<id:serviceCode>clientDeletion<", b"<id:serviceCode>clientReg<")
    expect(FaultCode.INVALID_REQUEST, lambda: verify(world, forged, built.content_type), "does not match")


def test_invalid_address_is_refused(world: World) -> None:
    for address in ("", "bad address", "-x.example", "a..b", "x" * 300):
        built = build(world, AddressChangeRequest(world.owner.server("ss1"), address))
        expect(FaultCode.INVALID_REQUEST, partial(verify, world, built.body, built.content_type), "address")


def test_missing_and_extra_parts_are_refused(world: World) -> None:
    built = build(world, ClientRegRequest(world.owner.server("ss1"), world.owner.subsystem("a")))
    boundary = built.content_type.rsplit("=", 1)[1].encode()
    close = b"\r\n--" + boundary + b"--\r\n"
    last_part = built.body.rindex(b"\r\n--" + boundary + b"\r\n")
    truncated = built.body[:last_part] + close
    expect(FaultCode.INVALID_REQUEST, lambda: verify(world, truncated, built.content_type), "parts")
    extra = built.body[: -len(close)] + b"\r\n--" + boundary + b"\r\n\r\nmore" + close
    expect(FaultCode.INVALID_REQUEST, lambda: verify(world, extra, built.content_type), "parts")
    no_alg = built.body.replace(b"signature-algorithm-id: SHA512withRSA\r\n", b"")
    expect(FaultCode.INVALID_REQUEST, lambda: verify(world, no_alg, built.content_type), "algorithm")
    unsigned = build(world, ClientDeletionRequest(world.owner.server("ss1"), world.owner.subsystem("a")))
    as_multipart = (
        b"--b\r\nContent-Type: text/xml\r\n\r\n" + unsigned.soap + b"\r\n--b\r\n\r\nextra\r\n--b--\r\n"
    )
    expect(FaultCode.INVALID_REQUEST, lambda: verify(world, as_multipart, "multipart/related; boundary=b"))


def test_malformed_xml_is_refused(world: World) -> None:
    expect(FaultCode.INVALID_SOAP, lambda: parse_management_request(b"<SOAP-ENV:Envelope", "text/xml"))
    expect(FaultCode.INVALID_SOAP, lambda: parse_management_request(b"<a/>", "text/xml"))
    expect(FaultCode.INVALID_CONTENT_TYPE, lambda: parse_management_request(b"{}", "application/json"))


def _nested(depth: int, siblings: int) -> bytes:
    """A SOAP envelope with ``depth`` nested elements in its body and ``siblings`` leaves at the bottom."""
    env = "http://schemas.xmlsoap.org/soap/envelope/"
    inner = "<a>" * depth + "<b/>" * siblings + "</a>" * depth
    return f'<e:Envelope xmlns:e="{env}"><e:Header/><e:Body>{inner}</e:Body></e:Envelope>'.encode()


class _CountingWalk:
    """Counts the events the depth check's tree walk yields (its work, instead of a wall clock)."""

    def __init__(self) -> None:
        self.events = 0
        self._walk = etree.iterwalk

    def __call__(self, *args: Any, **kwargs: Any) -> Iterator[object]:
        for item in self._walk(*args, **kwargs):
            self.events += 1
            yield item


def test_deep_and_wide_xml_is_refused_in_one_bounded_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """250 levels with 30,000 siblings at the bottom (≈120 KB) took ~7.5 million ancestor steps with a
    per-element ancestor count; the walk stops at the first element past the limit."""
    body = _nested(250, 30_000)
    assert len(body) <= MAX_MANAGEMENT_REQUEST_BYTES
    walk = _CountingWalk()
    monkeypatch.setattr(etree, "iterwalk", walk)  # the lxml module xroad_mn.management uses
    err = expect(FaultCode.INVALID_SOAP, lambda: parse_management_request(body, "text/xml"), "nests deeper")
    assert "16 levels" in err.message
    assert walk.events <= management.MAX_XML_DEPTH + 4  # Envelope, Header (start, end), Body, then <a>s


def test_depth_check_is_linear_in_the_elements(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide tree just inside the limit is walked once: two events per element."""
    root = etree.fromstring(_nested(management.MAX_XML_DEPTH - 2, 30_000))
    walk = _CountingWalk()
    monkeypatch.setattr(etree, "iterwalk", walk)  # the lxml module xroad_mn.management uses
    assert not xml_depth_exceeds(root, management.MAX_XML_DEPTH)
    elements = sum(1 for _ in root.iter())
    assert walk.events == 2 * elements
    assert xml_depth_exceeds(root, management.MAX_XML_DEPTH - 1)
    assert not xml_depth_exceeds(etree.fromstring(b"<a/>"), 0)
    assert xml_depth_exceeds(etree.fromstring(b"<a><b/></a>"), 0)


def test_xxe_is_refused(world: World, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    soap = build(world, AddressChangeRequest(world.owner.server("ss1"), "10.0.0.7")).soap
    doctype = f'<!DOCTYPE e [<!ENTITY x SYSTEM "file://{secret}">]>'.encode()
    evil = soap.replace(b"?>", b"?>" + doctype, 1).replace(b"10.0.0.7", b"&x;")
    error = expect(FaultCode.INVALID_SOAP, lambda: parse_management_request(evil, "text/xml"))
    assert "TOP-SECRET" not in str(error)
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<l>&b;</l>"
    )
    expect(FaultCode.INVALID_SOAP, lambda: parse_management_request(bomb, "text/xml"))


def test_oversize_is_refused(world: World) -> None:
    big = b"x" * (MAX_MANAGEMENT_REQUEST_BYTES + 1)
    expect(FaultCode.REQUEST_TOO_LARGE, lambda: parse_management_request(big, "text/xml"))
    soap = build(world, MaintenanceModeEnableRequest(world.owner.server("ss1"), "m")).soap
    padded = soap.replace(b"<xroad:message>m<", b"<xroad:message>" + b"m" * 200_000 + b"<")
    expect(FaultCode.REQUEST_TOO_LARGE, lambda: parse_management_request(padded, "text/xml"))


def test_body_schema_is_enforced(world: World) -> None:
    soap = build(world, ClientRenameRequest(world.owner.server("ss1"), world.owner.subsystem("a"), "N")).soap
    no_name = re.sub(rb"<xroad:subsystemName>N</xroad:subsystemName>", b"", soap)
    expect(FaultCode.INVALID_REQUEST, lambda: parse_management_request(no_name, "text/xml"), "subsystemName")
    extra = soap.replace(b"</xroad:clientRename>", b"<xroad:bogus/></xroad:clientRename>")
    expect(FaultCode.INVALID_REQUEST, lambda: parse_management_request(extra, "text/xml"), "unexpected")
    bad_server = soap.replace(b"<id:serverCode>ss1</id:serverCode>", b"<id:serverCode>s/1</id:serverCode>")
    expect(FaultCode.INVALID_CLIENT_IDENTIFIER, lambda: parse_management_request(bad_server, "text/xml"))
    old_version = soap.replace(b">4.0<", b">3.1<")
    expect(FaultCode.INVALID_PROTOCOL_VERSION, lambda: parse_management_request(old_version, "text/xml"))


def test_owner_change_to_a_subsystem_is_refused(world: World) -> None:
    soap = build(world, OwnerChangeRequest(world.owner.server("ss1"), OTHER_MEMBER)).soap
    bad = soap.replace(
        b'<xroad:client id:objectType="MEMBER"><id:xRoadInstance>MN</id:xRoadInstance>'
        b"<id:memberClass>COM</id:memberClass><id:memberCode>7777777</id:memberCode></xroad:client>",
        b'<xroad:client id:objectType="SUBSYSTEM"><id:xRoadInstance>MN</id:xRoadInstance>'
        b"<id:memberClass>COM</id:memberClass><id:memberCode>7777777</id:memberCode>"
        b"<id:subsystemCode>x</id:subsystemCode></xroad:client>",
    )
    assert bad != soap
    expect(FaultCode.INVALID_CLIENT_IDENTIFIER, lambda: parse_management_request(bad, "text/xml"))


# ------------------------------------------------------------------------------------------------------------
# Responses


def test_response_echoes_request_and_adds_request_id(world: World) -> None:
    request = AuthCertRegRequest(world.owner.server("ss1"), "ss1.example.mn", auth_der(world))
    built = build(world, request)
    answer = build_management_response(built.soap, 392)
    response = parse_management_response(answer, request=built.header)
    assert (response.request_type, response.request_id, response.header) == (
        ManagementRequestType.AUTH_CERT_REG,
        392,
        built.header,
    )
    body = etree.fromstring(answer).find(f"{{{SOAP_ENV}}}Body/{{{XROAD_NS}}}authCertRegResponse")
    assert body is not None
    assert [etree.QName(c).localname for c in body] == ["server", "address", "authCert", "requestId"]
    other = replace(built.header, query_id="another-id")
    expect(FaultCode.INCONSISTENT_RESPONSE, lambda: parse_management_response(answer, request=other))


def test_fault_answer_raises_its_error() -> None:
    fault = render_soap_fault(XRoadError(FaultCode.INVALID_SIGNATURE_VALUE, "Owner signature failed"))
    error = expect("server.invalid_signature_value", lambda: parse_management_response(fault))
    assert error.message == "Owner signature failed"


def test_real_x_road_response_parses_and_matches_ours(interop_soap: Path) -> None:
    """proxy-core-queries/response-with-requestId.answer: a central server's clientReg answer."""
    data = (interop_soap / "proxy-core-queries" / "response-with-requestId.answer").read_bytes()
    response = parse_management_response(data)
    owner = MemberId("EE", "GOV", "TS1OWNER")
    provider = SubsystemId("EE", "GOV", "TS1OWNER", "mgmt service provider")
    header = ManagementHeader(owner, provider.service("clientReg"), "d9e5b4e0-052c-42f9-9ed7-b003f97f0f5f")
    assert response.request_type is ManagementRequestType.CLIENT_REG
    assert response.request_id == 413
    assert response.header == header
    # Our registry answers the same request with the same fields in the same order.
    request = ClientRegRequest(owner.server("TS1"), SubsystemId("EE", "COM", "terminaator", "III"))
    soap = build_management_soap(header, request)
    answer = build_management_response(soap, 413)
    assert parse_management_response(answer, request=header) == response

    def shape(xml: bytes) -> list[tuple[str, str]]:
        body = etree.fromstring(xml).find(f"{{{SOAP_ENV}}}Body")
        assert body is not None
        return [
            (etree.QName(e).localname, (e.text or "").strip()) for e in body.iter() if isinstance(e.tag, str)
        ]

    assert shape(answer) == shape(data)


_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# ------------------------------------------------------------------------------------------------------------
# Hostile certificates: every verdict is an X-Road fault


def _client_reg(world: World, signer: MemberSigner) -> BuiltManagementRequest:
    request = ClientRegRequest(world.owner.server("ss1"), world.owner.subsystem("civil-registry"))
    return build(world, request, signer=signer)


@pytest.mark.parametrize("variant", HOSTILE_VARIANTS)
def test_hostile_signing_certificate_is_refused(world: World, variant: str) -> None:
    """An unknown signature OID or odd RSA-PSS parameters (no path to the CA) or an X25519 key (which
    cannot have made the RSA signature) on the owner's signing certificate."""
    s = world.owner_signer
    built = _client_reg(world, MemberSigner(s.private_key, hostile(s.certificate, variant), s.ocsp_response))
    code = FaultCode.INVALID_REQUEST if variant == "x25519-key" else FaultCode.INVALID_CERT_PATH
    expect(code, lambda: verify(world, built.body, built.content_type))


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_dsa_signing_certificate_where_rsa_signed_is_refused(world: World) -> None:
    s = world.owner_signer
    cert = with_public_key(s.certificate, dsa_public_key())
    built = _client_reg(world, MemberSigner(s.private_key, cert, s.ocsp_response))
    expect(FaultCode.INVALID_REQUEST, lambda: verify(world, built.body, built.content_type), "does not fit")


@pytest.mark.parametrize("variant", HOSTILE_SIGNATURE_ALGORITHMS)
def test_hostile_auth_certificate_is_refused(world: World, variant: str) -> None:
    auth = hostile(world.pki.member_auth.certificate, variant).public_bytes(Encoding.DER)
    built = build(world, AuthCertRegRequest(world.owner.server("ss1"), "ss1.example.mn", auth))
    expect(FaultCode.CERT_VALIDATION, lambda: verify(world, built.body, built.content_type))


@_SETTINGS
@given(oid=oids())
def test_fuzz_signing_certificate_signature_oids(world: World, oid: str) -> None:
    """Any signatureAlgorithm OID on the signing certificate: a verdict, never a library exception."""
    s = world.owner_signer
    cert = with_signature_algorithm(s.certificate, oid)
    built = _client_reg(world, MemberSigner(s.private_key, cert, s.ocsp_response))
    with contextlib.suppress(XRoadError):
        verify(world, built.body, built.content_type)


# ------------------------------------------------------------------------------------------------------------
# Fuzzing: only XRoadError escapes


@_SETTINGS
@given(
    data=st.binary(max_size=2048), content_type=st.sampled_from(["text/xml", "multipart/related; boundary=b"])
)
def test_fuzz_parser_random_bytes(data: bytes, content_type: str) -> None:
    with contextlib.suppress(XRoadError):
        parse_management_request(data, content_type)


@_SETTINGS
@given(data=st.data())
def test_fuzz_verifier_mutated_requests(world: World, data: st.DataObject) -> None:
    requests = all_requests(world)
    built = build(world, requests[data.draw(st.integers(0, len(requests) - 1))])
    body = bytearray(built.body)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(body) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip":
            body[pos] ^= data.draw(st.integers(1, 255))
        elif action == "delete":
            del body[pos : pos + data.draw(st.integers(1, 64))]
        else:
            body[pos:pos] = data.draw(
                st.sampled_from([b"<", b"&x;", b"\r\n", b"--", b"<!DOCTYPE a>", b"\x00"])
            )
    with contextlib.suppress(XRoadError):
        verify(world, bytes(body), built.content_type)


@_SETTINGS
@given(data=st.binary(max_size=1024))
def test_fuzz_response_parser(data: bytes) -> None:
    with contextlib.suppress(XRoadError):
        parse_management_response(data)
