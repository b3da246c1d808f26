"""Message signatures: interop verdicts, what we sign checked by xmlsec1 and openssl, and tampering."""

from __future__ import annotations

import base64
import copy
import dataclasses
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.crafted import (
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
    _issue_leaf,
    build_dev_pki,
    generate_rsa_key,
    member_subject,
    sign_profile_extensions,
)
from trust_services.tsa import build_timestamp_reply
from xroad_mn.certs import XROAD_MN_PROFILE
from xroad_mn.confclient.installed import load_trust_material
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import ApprovedCA, ApprovedTSA, OcspResponder, TrustMaterial
from xroad_mn.hashchain import MessagePart
from xroad_mn.identifiers import MemberId
from xroad_mn.ocsp import build_ocsp_request
from xroad_mn.signature import (
    SignatureData,
    SigningKey,
    embed_timestamp,
    parse_signature,
    sign,
    sign_batch,
    timestamp_input,
    verify_signature,
)
from xroad_mn.timestamp import build_timestamp_request, verify_timestamp_response
from xroad_mn.xades import ASIC_NS, DS_NS, XADES_NS, XSI_NS

INTEROP = Path(__file__).resolve().parent / "data" / "xroad"
SIGS = INTEROP / "signatures"
GOOD_V2 = INTEROP / "globalconf" / "dirs" / "globalconf_good_v2"
GOOD2_V3 = INTEROP / "globalconf" / "dirs" / "globalconf_good2_v3"
XMLSEC_ID_ATTR = "--id-attr:Id"
XMLSEC_SIGNED_PROPERTIES = "http://uri.etsi.org/01903/v1.3.2#:SignedProperties"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# ----------------------------------------------------------------------------------------------------------
# Dev PKI evidence (shared with test_asic.py)


@dataclass(frozen=True)
class Evidence:
    """A dev PKI, the trust material that approves it, and signing keys with fresh OCSP responses."""

    pki: DevPki
    trust: TrustMaterial
    key: SigningKey
    key_ec: SigningKey
    now: datetime

    def timestamp(self, data: bytes, serial: int = 1) -> bytes:
        """A real RFC 3161 token from the dev TSA over ``data``."""
        query = build_timestamp_request(data)
        reply = build_timestamp_reply(query, tsa=self.pki.tsa, serial=serial, now=self.now)
        return verify_timestamp_response(reply, query)


def ocsp_for(pki: DevPki, subject: CertifiedKey, now: datetime) -> tuple[bytes, ...]:
    """OCSP responses for ``subject`` (by the delegated responder) and its intermediate (by the root)."""
    issued = [c.certificate.serial_number for c in pki.issued_by_intermediate]
    leaf = build_ocsp_response(
        build_ocsp_request(subject.certificate, pki.intermediate.certificate),
        issuer=pki.intermediate,
        responder=pki.ocsp_responder,
        status_of=status_lookup(pki.revocations, issued),
        now=now,
    )
    intermediate = build_ocsp_response(
        build_ocsp_request(pki.intermediate.certificate, pki.root.certificate),
        issuer=pki.root,
        responder=pki.root,
        status_of=status_lookup({}, [pki.intermediate.certificate.serial_number]),
        now=now,
    )
    return (leaf, intermediate)


def signing_key(pki: DevPki, subject: CertifiedKey, now: datetime) -> SigningKey:
    return SigningKey(subject.private_key, subject.certificate, ocsp_for(pki, subject, now), subject.chain)


def dev_trust(pki: DevPki, freshness: int = 3600) -> TrustMaterial:
    ca = ApprovedCA(
        name="xroad-mn dev CA",
        top_ca=pki.root.certificate,
        intermediates=(pki.intermediate.certificate,),
        ocsp_responders=(),
        certificate_profile_info=XROAD_MN_PROFILE,
        authentication_only=False,
        instance=pki.instance,
        intermediate_ocsp_responders=(
            (OcspResponder("http://127.0.0.1:1/ocsp", pki.ocsp_responder.certificate),),
        ),
    )
    tsa = ApprovedTSA("xroad-mn dev TSA", "http://127.0.0.1:1/tsa", pki.tsa.certificate, pki.instance)
    return TrustMaterial(pki.instance, (ca,), (tsa,), freshness, 60)


def build_evidence() -> Evidence:
    now = datetime.now(UTC).replace(microsecond=0)
    pki = build_dev_pki(now)
    return Evidence(
        pki,
        dev_trust(pki),
        signing_key(pki, pki.member_sign, now),
        signing_key(pki, pki.member_sign_ec, now),
        now,
    )


@pytest.fixture(scope="session")
def evidence() -> Evidence:
    return build_evidence()


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# ----------------------------------------------------------------------------------------------------------
# 1. The interop corpus


@pytest.fixture(scope="session")
def ee_trust() -> TrustMaterial:
    """EE test configuration (``globalconf_good_v2``): CA CN=Cyber, OCSP responder CN=consumer,
    TestCertificateProfileInfoProvider (member class BUSINESS, code = CN), ocspFreshnessSeconds 42."""
    return load_trust_material(GOOD_V2)


@pytest.fixture(scope="session")
def dev2024_trust() -> TrustMaterial:
    """DEV-2024 trust: ``globalconf_good2_v3`` (Test CA/OCSP/TSA 2024, FiVRK profile)."""
    return load_trust_material(GOOD2_V3)


EE_CONSUMER = MemberId("EE", "BUSINESS", "consumer")
DEV_4321 = MemberId("DEV", "COM", "4321")
# sign-0's OCSP response has thisUpdate 2017-09-09T09:15:11Z and EE's freshness is 42 s.
SIGN0_AT = utc(2017, 9, 9, 9, 15, 30)


def _msg0() -> list[MessagePart]:
    return [MessagePart("/message.xml", (SIGS / "common-test/message-0.xml").read_bytes())]


def _nonbatch(attachment: bytes | None = None) -> list[MessagePart]:
    d = SIGS / "globalconf-impl/non-batch-sig"
    att = (d / "attachment1").read_bytes() if attachment is None else attachment
    return [MessagePart("/message.xml", (d / "message.xml").read_bytes()), MessagePart("/attachment1", att)]


@dataclass(frozen=True)
class SigCase:
    fixture: str
    trust: str  # "ee" or "dev2024"
    member: MemberId
    at: datetime
    expected: str | None  # None = VALID, else the fault code
    why: str
    parts: str = "msg0"  # msg0 | msg0-foo | nonbatch | nonbatch-bad | batch
    chain: tuple[str, str] | None = None


SIG_CASES: Sequence[SigCase] = (
    SigCase(
        "common-test/sign-0.xml", "ee", EE_CONSUMER, SIGN0_AT, None, "native signature over message-0.xml"
    ),
    SigCase(
        "common-test/sign-0-old-format.xml",
        "ee",
        EE_CONSUMER,
        utc(2015, 6, 4, 10, 15, 0),
        None,
        "backward-compatible layout (asic v1.1.1, references without Id)",
    ),
    SigCase(
        "common-test/sign-0.xml",
        "ee",
        MemberId("EE", "BUSINESS", "FOORBAR"),
        SIGN0_AT,
        FaultCode.INCORRECT_CERTIFICATE,
        "certificate names EE/BUSINESS/consumer, not the expected signer FOORBAR",
    ),
    SigCase(
        "common-test/sign-0.xml",
        "ee",
        EE_CONSUMER,
        SIGN0_AT,
        FaultCode.INVALID_SIGNATURE_VALUE,
        "the signed part /message.xml is not among the parts given (only 'foo')",
        parts="msg0-foo",
    ),
    SigCase(
        "globalconf-impl/batch-sig.xml",
        "ee",
        EE_CONSUMER,
        utc(2015, 6, 4, 10, 23, 40),
        None,
        "batch signature: hash-chain-result.xml + hash-chain-1.xml over message-1.xml and 'blaah'",
        parts="batch",
        chain=("globalconf-impl/hash-chain-result.xml", "globalconf-impl/hash-chain-1.xml"),
    ),
    SigCase(
        "globalconf-impl/non-batch-sig/signatures.xml",
        "dev2024",
        DEV_4321,
        utc(2024, 7, 9, 7, 38, 53),
        None,
        "EU-DSS dialect (exclusive C14N, SigningCertificateV2) over message.xml + attachment1",
        parts="nonbatch",
    ),
    SigCase(
        "globalconf-impl/non-batch-sig/signatures.xml",
        "dev2024",
        DEV_4321,
        utc(2024, 7, 9, 7, 38, 53),
        FaultCode.INVALID_SIGNATURE_VALUE,
        "attachment1 replaced by {0x01}: its digest does not match the reference",
        parts="nonbatch-bad",
    ),
    SigCase(
        "globalconf-impl/empty.xml", "ee", EE_CONSUMER, SIGN0_AT, FaultCode.INVALID_XML, "an empty document"
    ),
    SigCase(
        "globalconf-impl/sign-0-malformed-xml.xml",
        "ee",
        EE_CONSUMER,
        SIGN0_AT,
        FaultCode.INVALID_XML,
        "truncated XML is not well-formed",
    ),
    SigCase(
        "globalconf-impl/sign-0-invalid-signature-value.xml",
        "ee",
        EE_CONSUMER,
        SIGN0_AT,
        FaultCode.INVALID_SIGNATURE_VALUE,
        "SignatureValue altered: RSA verification fails",
    ),
    SigCase(
        "globalconf-impl/sign-0-no-objectcontainer.xml",
        "ee",
        EE_CONSUMER,
        SIGN0_AT,
        FaultCode.MALFORMED_SIGNATURE,
        "no ds:Object/QualifyingProperties",
    ),
    SigCase(
        "globalconf-impl/sign-0-no-signature.xml",
        "ee",
        EE_CONSUMER,
        SIGN0_AT,
        FaultCode.MALFORMED_SIGNATURE,
        "XAdESSignatures without ds:Signature",
    ),
    SigCase(
        "globalconf-impl/sign-0-no-signing-cert.xml",
        "ee",
        EE_CONSUMER,
        SIGN0_AT,
        FaultCode.MALFORMED_SIGNATURE,
        "no KeyInfo certificate",
    ),
    SigCase(
        "globalconf-impl/sign-0-ocsp-no-responses.xml",
        "ee",
        EE_CONSUMER,
        SIGN0_AT,
        FaultCode.MALFORMED_SIGNATURE,
        "no embedded OCSP response: X-Road requires it although the cryptography is valid",
    ),
    SigCase(
        "globalconf-impl/sign-0-schema-fail.xml",
        "ee",
        EE_CONSUMER,
        SIGN0_AT,
        FaultCode.MALFORMED_SIGNATURE,
        "ds:CanonicalizationMethod renamed ds:FOOBAR violates the schema",
    ),
    SigCase(
        "globalconf-impl/extra-certs-digest-invalid.xml",
        "ee",
        EE_CONSUMER,
        SIGN0_AT,
        FaultCode.MALFORMED_SIGNATURE,
        "2012 ds:Manifest-style signature with tampered extra certificates",
    ),
    SigCase(
        "globalconf-impl/extra-certs-missing-cert.xml",
        "ee",
        EE_CONSUMER,
        SIGN0_AT,
        FaultCode.MALFORMED_SIGNATURE,
        "2012 ds:Manifest-style signature, an extra certificate is missing",
    ),
    SigCase(
        "globalconf-impl/extra-certs-missing-id.xml",
        "ee",
        EE_CONSUMER,
        SIGN0_AT,
        FaultCode.MALFORMED_SIGNATURE,
        "2012 ds:Manifest-style signature, an extra certificate has no Id",
    ),
    SigCase(
        "globalconf-impl/xades.signature.ts.xml",
        "ee",
        EE_CONSUMER,
        SIGN0_AT,
        FaultCode.MALFORMED_SIGNATURE,
        "2012 draft with a 'FIXME' time-stamp placeholder: legacy, not verifiable",
    ),
)


def _parts_for(case: SigCase) -> list[MessagePart]:
    if case.parts == "msg0":
        return _msg0()
    if case.parts == "msg0-foo":
        return [MessagePart("foo", _msg0()[0].data)]
    if case.parts == "nonbatch":
        return _nonbatch()
    if case.parts == "nonbatch-bad":
        return _nonbatch(b"\x01")
    assert case.parts == "batch"
    return [
        MessagePart("/message.xml", (SIGS / "globalconf-impl/message-1.xml").read_bytes()),
        MessagePart("/attachment1", b"blaah"),
    ]


@pytest.mark.parametrize("case", SIG_CASES, ids=lambda c: f"{c.fixture}:{c.expected or 'valid'}:{c.parts}")
def test_interop_signature_verdicts(
    case: SigCase, ee_trust: TrustMaterial, dev2024_trust: TrustMaterial
) -> None:
    trust = ee_trust if case.trust == "ee" else dev2024_trust
    data = (SIGS / case.fixture).read_bytes()
    chain = tuple((SIGS / p).read_bytes() for p in case.chain) if case.chain else (None, None)
    if case.expected is None:
        verified = verify_signature(
            data,
            _parts_for(case),
            trust=trust,
            expected_member=case.member,
            at=case.at,
            hash_chain_result=chain[0],
            hash_chain=chain[1],
        )
        assert verified.signer == case.member
        assert verified.batch == (case.chain is not None)
    else:
        with pytest.raises(XRoadError) as info:
            verify_signature(
                data,
                _parts_for(case),
                trust=trust,
                expected_member=case.member,
                at=case.at,
                hash_chain_result=chain[0],
                hash_chain=chain[1],
            )
        assert info.value.has_code(case.expected), case.why


def test_dss_dialect_is_recognised() -> None:
    parsed = parse_signature((SIGS / "globalconf-impl/non-batch-sig/signatures.xml").read_bytes())
    assert parsed.dialect == "dss"
    assert [r.uri for r in parsed.data_references] == ["/message.xml", "/attachment1"]


def test_legacy_timestamp_directly_in_signature_timestamp() -> None:
    parsed = parse_signature((SIGS / "messagelog-addon-signature.xml").read_bytes())
    assert parsed.timestamp_token is not None
    assert parsed.timestamp_token[:1] == b"\x30"


def test_ocsp_outside_freshness_is_refused(ee_trust: TrustMaterial) -> None:
    # sign-0's OCSP thisUpdate is 2017-09-09T09:15:11Z; an hour later it is far beyond EE's 42 s.
    with pytest.raises(XRoadError) as info:
        verify_signature(
            (SIGS / "common-test/sign-0.xml").read_bytes(),
            _msg0(),
            trust=ee_trust,
            expected_member=EE_CONSUMER,
            at=SIGN0_AT + timedelta(hours=1),
        )
    assert "too old" in info.value.message


# ----------------------------------------------------------------------------------------------------------
# 2. What we sign: exact native shape, our verifier, and xmlsec1


SOAP = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/'
    b'envelope/" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd" xmlns:id="http://x-road.eu/xsd/identifiers">'
    b'<SOAP-ENV:Header><xrd:client id:objectType="MEMBER"><id:xRoadInstance>MN</id:xRoadInstance>'
    b"<id:memberClass>GOV</id:memberClass><id:memberCode>5012345</id:memberCode></xrd:client>"
    b'<xrd:service id:objectType="SERVICE"><id:xRoadInstance>MN</id:xRoadInstance><id:memberClass>GOV'
    b"</id:memberClass><id:memberCode>9999</id:memberCode><id:serviceCode>getRandom</id:serviceCode>"
    b"</xrd:service><xrd:id>6f2d0a1e</xrd:id><xrd:protocolVersion>4.0</xrd:protocolVersion></SOAP-ENV:Header>"
    b'<SOAP-ENV:Body><ns:getRandom xmlns:ns="urn:x">\xc3\xa4\xc3\xb5</ns:getRandom></SOAP-ENV:Body>'
    b"</SOAP-ENV:Envelope>"
)


def xmlsec_verify(
    xmlsec1: str, tmp: Path, signature_xml: bytes, files: dict[str, bytes], evidence: Evidence, at: datetime
) -> subprocess.CompletedProcess[str]:
    """The recipe of interop/README.md: xmlsec1 with url-maps for each referenced part."""
    (tmp / "sig.xml").write_bytes(signature_xml)
    (tmp / "root.pem").write_bytes(pem(evidence.pki.root.certificate))
    (tmp / "int.pem").write_bytes(pem(evidence.pki.intermediate.certificate))
    args = [xmlsec1, "--verify", XMLSEC_ID_ATTR, XMLSEC_SIGNED_PROPERTIES]
    for uri, data in files.items():
        path = tmp / uri.strip("/").replace("/", "_")
        path.write_bytes(data)
        args += [f"--url-map:{uri}", str(path)]
    args += [
        "--trusted-pem",
        str(tmp / "root.pem"),
        "--untrusted-pem",
        str(tmp / "int.pem"),
        "--verification-time",
        at.astimezone(UTC).strftime("%Y-%m-%d+%H:%M:%S"),
        str(tmp / "sig.xml"),
    ]
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)


def _xpath(root: etree._Element, path: str) -> list[object]:
    found = root.xpath(path, namespaces={"ds": DS_NS, "xades": XADES_NS})
    assert isinstance(found, list)
    return list(found)


def test_native_shape(evidence: Evidence) -> None:
    data = sign([MessagePart("/message.xml", SOAP)], evidence.key)
    assert data.signature_xml.startswith(b"<?xml version='1.0' encoding='UTF-8' standalone='no'?>")
    root = etree.fromstring(data.signature_xml)
    assert root.tag == f"{{{ASIC_NS}}}XAdESSignatures"
    assert root.nsmap == {"asic": ASIC_NS, "ds": DS_NS, "xades": XADES_NS, "xsi": XSI_NS}
    ns = {"ds": DS_NS, "xades": XADES_NS}
    assert root.xpath("ds:Signature/@Id", namespaces=ns) == ["signature"]
    assert root.xpath("//ds:CanonicalizationMethod/@Algorithm", namespaces=ns) == [
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    ]
    assert root.xpath("//ds:SignatureMethod/@Algorithm", namespaces=ns) == [
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
    ]
    assert root.xpath("//ds:Reference/@Id", namespaces=ns) == [
        "signature-reference-0",
        "signature-reference-1",
    ]
    assert root.xpath("//ds:Reference/@URI", namespaces=ns) == ["/message.xml", "#signed-properties"]
    assert set(_xpath(root, "//ds:DigestMethod/@Algorithm")) == {"http://www.w3.org/2001/04/xmlenc#sha512"}
    assert root.xpath("//ds:SignatureValue/@Id", namespaces=ns) == ["signature-value"]
    assert root.xpath("//xades:SignedProperties/@Id", namespaces=ns) == ["signed-properties"]
    assert root.xpath("//xades:SigPolicyId/xades:Identifier/text()", namespaces=ns) == [
        "urn:oid:1.3.6.1.4.1.3516.16.2"
    ]
    assert root.xpath("//xades:DataObjectFormat/@ObjectReference", namespaces=ns) == [
        "#signature-reference-0"
    ]
    assert root.xpath("//xades:MimeType/text()", namespaces=ns) == ["text/xml"]
    assert root.xpath("//xades:EncapsulatedX509Certificate/@Id", namespaces=ns) == ["encapsulated-cert-1"]
    assert root.xpath("//xades:CompleteCertificateRefs/@Id", namespaces=ns) == ["complete-certificate-refs"]
    assert len(_xpath(root, "//xades:EncapsulatedOCSPValue")) == 2
    issuer = root.xpath("//xades:SigningCertificate//ds:X509IssuerName/text()", namespaces=ns)
    assert issuer == [evidence.pki.intermediate.certificate.subject.rfc4514_string()]


@pytest.mark.parametrize("ec", [False, True], ids=["rsa", "ec"])
def test_single_signature_verifies_here_and_in_xmlsec1(
    evidence: Evidence, xmlsec1: str, tmp_path: Path, ec: bool
) -> None:
    key = evidence.key_ec if ec else evidence.key
    parts = [MessagePart("/message.xml", SOAP)]
    data = sign(parts, key)
    verified = verify_signature(
        data.signature_xml, parts, trust=evidence.trust, expected_member=evidence.pki.member, at=evidence.now
    )
    assert verified.signer == evidence.pki.member
    assert not verified.batch
    if ec:
        value = etree.fromstring(data.signature_xml).findtext(f".//{{{DS_NS}}}SignatureValue")
        assert value is not None
        assert len(base64.b64decode(value)) == 64  # raw r‖s of P-256
    result = xmlsec_verify(
        xmlsec1, tmp_path, data.signature_xml, {"/message.xml": SOAP}, evidence, evidence.now
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout + result.stderr


def test_signing_from_precomputed_digests(evidence: Evidence) -> None:
    import hashlib

    data = sign([MessagePart("/message.xml", digest=hashlib.sha512(SOAP).digest())], evidence.key)
    verify_signature(
        data.signature_xml,
        [MessagePart("/message.xml", SOAP)],
        trust=evidence.trust,
        expected_member=evidence.pki.member,
        at=evidence.now,
    )


def test_message_with_attachments_uses_hash_chain(evidence: Evidence, xmlsec1: str, tmp_path: Path) -> None:
    parts = [MessagePart("/message.xml", SOAP), MessagePart("/attachment1", b"\x00\x01binary")]
    data = sign(parts, evidence.key)
    assert data.hash_chain_result is not None
    assert data.hash_chain is not None
    assert b"application/hash-chain-result" in data.signature_xml
    verified = verify_signature(
        data.signature_xml,
        parts,
        trust=evidence.trust,
        expected_member=evidence.pki.member,
        at=evidence.now,
        hash_chain_result=data.hash_chain_result,
        hash_chain=data.hash_chain,
    )
    assert verified.batch
    result = xmlsec_verify(
        xmlsec1,
        tmp_path,
        data.signature_xml,
        {"/sig-hashchainresult.xml": data.hash_chain_result},
        evidence,
        evidence.now,
    )
    assert result.returncode == 0, result.stderr


def test_batch_signature_gives_each_message_its_chain(evidence: Evidence) -> None:
    messages = [[MessagePart("/message.xml", SOAP.replace(b"6f2d0a1e", str(i).encode()))] for i in range(7)]
    messages[3].append(MessagePart("/attachment1", b"body"))
    signed = sign_batch(messages, evidence.key)
    assert len(signed) == 7
    assert len({s.signature_xml for s in signed}) == 1
    assert len({s.hash_chain for s in signed}) == 7
    for parts, data in zip(messages, signed, strict=True):
        verify_signature(
            data.signature_xml,
            parts,
            trust=evidence.trust,
            expected_member=evidence.pki.member,
            at=evidence.now,
            hash_chain_result=data.hash_chain_result,
            hash_chain=data.hash_chain,
        )
    # Another message's chain does not verify this one.
    with pytest.raises(XRoadError) as info:
        verify_signature(
            signed[0].signature_xml,
            messages[0],
            trust=evidence.trust,
            expected_member=evidence.pki.member,
            at=evidence.now,
            hash_chain_result=signed[0].hash_chain_result,
            hash_chain=signed[1].hash_chain,
        )
    assert info.value.has_code(FaultCode.INVALID_HASH_CHAIN_REF)


def test_signature_without_ocsp_cannot_be_made(evidence: Evidence) -> None:
    key = SigningKey(evidence.key.private_key, evidence.key.certificate, ())
    with pytest.raises(XRoadError) as info:
        sign([MessagePart("/message.xml", SOAP)], key)
    assert info.value.has_code(FaultCode.CANNOT_CREATE_SIGNATURE)


# ----------------------------------------------------------------------------------------------------------
# 3. Signer certificate, chain and OCSP failures


def _verify_with(evidence: Evidence, subject: CertifiedKey, *, at: datetime | None = None) -> None:
    key = signing_key(evidence.pki, subject, evidence.now)
    parts = [MessagePart("/message.xml", SOAP)]
    data = sign(parts, key)
    verify_signature(
        data.signature_xml,
        parts,
        trust=evidence.trust,
        expected_member=evidence.pki.member,
        at=at or evidence.now,
    )


@pytest.mark.parametrize(
    ("which", "code"),
    [
        ("expired_sign", FaultCode.CERT_VALIDATION),
        ("not_yet_valid_sign", FaultCode.CERT_VALIDATION),
        ("revoked_sign", FaultCode.CERT_VALIDATION),
        ("wrong_key_usage_sign", FaultCode.INCORRECT_CERTIFICATE),
        ("member_auth", FaultCode.INCORRECT_CERTIFICATE),
    ],
)
def test_bad_signing_certificates_are_refused(evidence: Evidence, which: str, code: str) -> None:
    with pytest.raises(XRoadError) as info:
        _verify_with(evidence, getattr(evidence.pki, which))
    assert info.value.has_code(code), info.value


def test_wrong_expected_member_is_refused(evidence: Evidence) -> None:
    parts = [MessagePart("/message.xml", SOAP)]
    data = sign(parts, evidence.key)
    with pytest.raises(XRoadError) as info:
        verify_signature(
            data.signature_xml,
            parts,
            trust=evidence.trust,
            expected_member=MemberId("MN", "GOV", "1"),
            at=evidence.now,
        )
    assert info.value.has_code(FaultCode.INCORRECT_CERTIFICATE)


def test_stale_ocsp_is_refused(evidence: Evidence) -> None:
    parts = [MessagePart("/message.xml", SOAP)]
    data = sign(parts, evidence.key)
    with pytest.raises(XRoadError) as info:
        verify_signature(
            data.signature_xml,
            parts,
            trust=evidence.trust,
            expected_member=evidence.pki.member,
            at=evidence.now + timedelta(seconds=evidence.trust.ocsp_freshness_seconds + 5),
        )
    assert "too old" in info.value.message


def test_untrusted_ca_is_refused(evidence: Evidence) -> None:
    other = build_dev_pki(evidence.now)
    parts = [MessagePart("/message.xml", SOAP)]
    data = sign(parts, signing_key(other, other.member_sign, evidence.now))
    with pytest.raises(XRoadError) as info:
        verify_signature(
            data.signature_xml,
            parts,
            trust=evidence.trust,
            expected_member=evidence.pki.member,
            at=evidence.now,
        )
    assert info.value.has_code(FaultCode.INVALID_CERT_PATH)


def _forged_member_key(issuer_pki: DevPki, member: MemberId, now: datetime) -> SigningKey:
    """A signing key whose certificate names ``member`` but is issued by ``issuer_pki``'s CA."""
    forged = _issue_leaf(
        issuer_pki.intermediate,
        member_subject(member),
        generate_rsa_key(),
        sign_profile_extensions(),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=10),
    )
    leaf = build_ocsp_response(
        build_ocsp_request(forged.certificate, issuer_pki.intermediate.certificate),
        issuer=issuer_pki.intermediate,
        responder=issuer_pki.ocsp_responder,
        status_of=status_lookup({}, [forged.certificate.serial_number]),
        now=now,
    )
    intermediate = ocsp_for(issuer_pki, issuer_pki.member_sign, now)[1]
    return SigningKey(forged.private_key, forged.certificate, (leaf, intermediate), forged.chain)


def test_federated_ca_cannot_sign_for_another_instance(evidence: Evidence) -> None:
    # Finding 1a: a CA approved by a federated instance (FED) issues a certificate naming a member of MN.
    # Only MN's approved CAs may vouch for an MN member (GlobalConf.getCaCert(signer instance, cert)).
    fed = build_dev_pki(evidence.now, "FED")
    trust = evidence.trust.merged_with([dev_trust(fed)])
    parts = [MessagePart("/message.xml", SOAP)]
    victim = evidence.pki.member
    forged = sign(parts, _forged_member_key(fed, victim, evidence.now))
    with pytest.raises(XRoadError) as info:
        verify_signature(forged.signature_xml, parts, trust=trust, expected_member=victim, at=evidence.now)
    assert info.value.has_code(FaultCode.INVALID_CERT_PATH), info.value
    # FED's CA still vouches for FED's own members, and MN's for MN's, with the merged trust.
    own = sign(parts, signing_key(fed, fed.member_sign, evidence.now))
    verified = verify_signature(
        own.signature_xml, parts, trust=trust, expected_member=fed.member, at=evidence.now
    )
    assert verified.signer == fed.member
    assert verified.approved_ca.instance == "FED"
    mn = sign(parts, evidence.key)
    verified = verify_signature(mn.signature_xml, parts, trust=trust, expected_member=victim, at=evidence.now)
    assert verified.approved_ca.instance == "MN"


def _ds_el(name: str) -> str:
    return f"{{{DS_NS}}}{name}"


def _xa_el(name: str) -> str:
    return f"{{{XADES_NS}}}{name}"


def _wrapped_with_second_object(xml: bytes) -> bytes:
    """The genuine ds:Object moved to a second ds:Object; a decoy with a forged SigningTime comes first."""
    root = etree.fromstring(xml)
    sig = root.find(_ds_el("Signature"))
    assert sig is not None
    obj = sig.find(_ds_el("Object"))
    assert obj is not None
    genuine = copy.deepcopy(obj)
    sig.append(genuine)
    decoy = obj.find(f"{_xa_el('QualifyingProperties')}/{_xa_el('SignedProperties')}")
    assert decoy is not None
    decoy.set("Id", "decoy")
    time_el = decoy.find(f"{_xa_el('SignedSignatureProperties')}/{_xa_el('SigningTime')}")
    assert time_el is not None
    time_el.text = "1999-01-01T00:00:00.000Z"
    for el in genuine.iter():
        if el.get("Id", "").startswith(("ocsp-", "encapsulated-", "complete-")):
            del el.attrib["Id"]
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _wrapped_within_one_object(xml: bytes) -> bytes:
    """The genuine SignedProperties moved into the unsigned properties; a decoy copy takes its place."""
    root = etree.fromstring(xml)
    qualifying = root.find(f"{_ds_el('Signature')}/{_ds_el('Object')}/{_xa_el('QualifyingProperties')}")
    assert qualifying is not None
    genuine = qualifying.find(_xa_el("SignedProperties"))
    usp = qualifying.find(f"{_xa_el('UnsignedProperties')}/{_xa_el('UnsignedSignatureProperties')}")
    assert genuine is not None
    assert usp is not None
    decoy = copy.deepcopy(genuine)
    del decoy.attrib["Id"]
    time_el = decoy.find(f"{_xa_el('SignedSignatureProperties')}/{_xa_el('SigningTime')}")
    assert time_el is not None
    time_el.text = "1999-01-01T00:00:00.000Z"
    genuine.addprevious(decoy)
    usp.append(genuine)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


@pytest.mark.parametrize("wrap", [_wrapped_with_second_object, _wrapped_within_one_object])
def test_signed_properties_wrapping_is_refused(evidence: Evidence, wrap: Callable[[bytes], bytes]) -> None:
    # Finding 1b: the SigningTime and SigningCertificate must come from the SignedProperties the signature's
    # reference covers, inside the one QualifyingProperties that targets this signature.
    parts = [MessagePart("/message.xml", SOAP)]
    xml = sign(parts, evidence.key).signature_xml
    with pytest.raises(XRoadError) as info:
        verify_signature(
            wrap(xml), parts, trust=evidence.trust, expected_member=evidence.pki.member, at=evidence.now
        )
    assert info.value.has_code(FaultCode.MALFORMED_SIGNATURE), info.value
    with pytest.raises(XRoadError) as info:
        parse_signature(wrap(xml))
    assert info.value.has_code(FaultCode.MALFORMED_SIGNATURE), info.value


def test_embedded_ocsp_passes_openssl(evidence: Evidence, openssl: str, tmp_path: Path) -> None:
    data = sign([MessagePart("/message.xml", SOAP)], evidence.key)
    parsed = parse_signature(data.signature_xml)
    leaf = next(
        r
        for r in parsed.ocsp_responses
        if ocsp.load_der_ocsp_response(r).serial_number == evidence.key.certificate.serial_number
    )
    (tmp_path / "r.der").write_bytes(leaf)
    (tmp_path / "ca.pem").write_bytes(pem(evidence.pki.intermediate.certificate))
    (tmp_path / "signer.pem").write_bytes(pem(evidence.key.certificate))
    (tmp_path / "responder.pem").write_bytes(pem(evidence.pki.ocsp_responder.certificate))
    result = subprocess.run(
        [
            openssl, "ocsp", "-respin", str(tmp_path / "r.der"), "-issuer", str(tmp_path / "ca.pem"),
            "-cert", str(tmp_path / "signer.pem"), "-VAfile", str(tmp_path / "responder.pem"), "-no_nonce",
        ],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Response verify OK" in result.stderr + result.stdout
    assert ": good" in result.stdout


# ----------------------------------------------------------------------------------------------------------
# 4. Single time-stamp embedding


def test_embed_timestamp_preserves_every_other_byte(evidence: Evidence, openssl: str, tmp_path: Path) -> None:
    parts = [MessagePart("/message.xml", SOAP)]
    data = sign(parts, evidence.key)
    ts_input = timestamp_input(data.signature_xml)
    assert ts_input == base64.b64decode(
        etree.fromstring(data.signature_xml).findtext(f".//{{{DS_NS}}}SignatureValue") or ""
    )
    token = evidence.timestamp(ts_input)
    stamped = embed_timestamp(data.signature_xml, token)
    marker = b"<xades:UnsignedSignatureProperties>"
    head, tail = data.signature_xml.split(marker)
    assert stamped.startswith(head + marker + b"<xades:SignatureTimeStamp><xades:EncapsulatedTimeStamp>")
    assert stamped.endswith(tail)
    parsed = parse_signature(stamped)
    assert parsed.timestamp_token == token
    usp = etree.fromstring(stamped).find(f".//{{{XADES_NS}}}UnsignedSignatureProperties")
    assert usp is not None
    assert usp[0].tag == f"{{{XADES_NS}}}SignatureTimeStamp"
    verify_signature(
        stamped, parts, trust=evidence.trust, expected_member=evidence.pki.member, at=evidence.now
    )
    with pytest.raises(XRoadError):
        embed_timestamp(stamped, token)

    (tmp_path / "token.der").write_bytes(token)
    (tmp_path / "data.bin").write_bytes(ts_input)
    (tmp_path / "tsa.pem").write_bytes(pem(evidence.pki.tsa.certificate))
    result = subprocess.run(
        [
            openssl, "ts", "-verify", "-token_in", "-in", str(tmp_path / "token.der"), "-data",
            str(tmp_path / "data.bin"), "-CAfile", str(tmp_path / "tsa.pem"),
            "-untrusted", str(tmp_path / "tsa.pem"),
            "-partial_chain",
        ],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


# ----------------------------------------------------------------------------------------------------------
# 5. Tampering


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_flipping_message_bytes_is_detected(evidence: Evidence) -> None:
    data = sign([MessagePart("/message.xml", SOAP)], evidence.key)
    for i in range(0, len(SOAP), max(1, len(SOAP) // 25)):
        with pytest.raises(XRoadError) as info:
            verify_signature(
                data.signature_xml,
                [MessagePart("/message.xml", _flip(SOAP, i))],
                trust=evidence.trust,
                expected_member=evidence.pki.member,
                at=evidence.now,
            )
        assert info.value.has_code(FaultCode.INVALID_SIGNATURE_VALUE)


def _base64_bodies(xml: bytes, tag: bytes) -> list[tuple[int, int]]:
    """(start, end) offsets of the text of every ``tag`` element in ``xml``."""
    out = []
    pos = 0
    while (open_at := xml.find(b"<" + tag, pos)) >= 0:
        start = xml.index(b">", open_at) + 1
        end = xml.index(b"</" + tag, start)
        out.append((start, end))
        pos = end
    return out


def test_flipping_signature_bytes_is_detected(evidence: Evidence) -> None:
    parts = [MessagePart("/message.xml", SOAP)]
    xml = sign(parts, evidence.key).signature_xml
    assert b"<xades:CompleteCertificateRefs" in xml  # the dev key has an intermediate: refs are covered
    fault_codes = set(FaultCode)
    accepted: list[int] = []
    rejected_codes: set[str] = set()
    for i in range(0, len(xml), 7):
        try:
            verify_signature(
                _flip(xml, i),
                parts,
                trust=evidence.trust,
                expected_member=evidence.pki.member,
                at=evidence.now,
            )
        except XRoadError as e:
            rejected_codes.add(e.code)
            continue
        accepted.append(i)
    assert rejected_codes
    assert rejected_codes <= fault_codes, rejected_codes
    # Only bytes nobody relies on may change without notice: the XML declaration, the start tags of
    # ds:SignatureValue, xades:CompleteCertificateRefs and xades:EncapsulatedOCSPValue (their Ids are
    # referenced by nothing) and, inside an OCSP
    # response, bytes outside what its responder signed (the certificates it carries), and base64's unused
    # padding bits.
    # A flip in the signed data, the key info, CompleteCertificateRefs or CertificateValues is refused.
    unreferenced_ids = (
        b"<ds:SignatureValue ",
        b"<xades:CompleteCertificateRefs ",
        b"<xades:EncapsulatedOCSPValue ",
    )
    tags = [
        (m.start(), xml.index(b">", m.start()))
        for tag in unreferenced_ids
        for m in re.finditer(re.escape(tag), xml)
    ]
    ocsp_bodies = _base64_bodies(xml, b"xades:EncapsulatedOCSPValue")
    assert len(ocsp_bodies) == len(evidence.key.ocsp_responses)
    for i in accepted:
        padding_bits = xml[i + 1 : i + 2] == b"="  # base64's last character before '=' carries unused bits
        if i < 60 or padding_bits or any(start < i < end for start, end in tags):
            continue
        body = next(((s, e) for s, e in ocsp_bodies if s <= i < e), None)
        assert body is not None, (i, xml[i - 20 : i + 20])
        original = ocsp.load_der_ocsp_response(base64.b64decode(xml[body[0] : body[1]]))
        flipped_der = base64.b64decode(_flip(xml, i)[body[0] : body[1]])
        flipped = ocsp.load_der_ocsp_response(flipped_der)
        assert flipped.tbs_response_bytes == original.tbs_response_bytes, i
        assert flipped.signature == original.signature, i


def test_flipping_hash_chain_bytes_is_detected(evidence: Evidence) -> None:
    parts = [MessagePart("/message.xml", SOAP), MessagePart("/attachment1", b"attachment")]
    data = sign(parts, evidence.key)
    assert data.hash_chain is not None
    assert data.hash_chain_result is not None
    for which in ("hash_chain", "hash_chain_result"):
        blob: bytes = getattr(data, which)
        start = blob.index(b"<DigestValue>") + len(b"<DigestValue>")
        flipped = _flip(blob, start + 3)
        tampered = SignatureData(
            data.signature_xml,
            hash_chain_result=flipped if which == "hash_chain_result" else data.hash_chain_result,
            hash_chain=flipped if which == "hash_chain" else data.hash_chain,
        )
        with pytest.raises(XRoadError) as info:
            verify_signature(
                tampered.signature_xml,
                parts,
                trust=evidence.trust,
                expected_member=evidence.pki.member,
                at=evidence.now,
                hash_chain_result=tampered.hash_chain_result,
                hash_chain=tampered.hash_chain,
            )
        expected = (
            FaultCode.INVALID_HASH_CHAIN_REF if which == "hash_chain" else FaultCode.INVALID_SIGNATURE_VALUE
        )
        assert info.value.has_code(expected), (which, info.value)


# ----------------------------------------------------------------------------------------------------------
# 6. Hostile certificates: every verdict is an X-Road fault, never a library exception


def _without_intermediates(trust: TrustMaterial) -> TrustMaterial:
    """Trust that approves only the root: intermediates must travel in the signature."""
    ca = dataclasses.replace(trust.approved_cas[0], intermediates=(), intermediate_ocsp_responders=())
    return dataclasses.replace(trust, approved_cas=(ca,))


def _sign_and_verify(
    evidence: Evidence, leaf: x509.Certificate, intermediate: x509.Certificate, trust: TrustMaterial
) -> XRoadError | None:
    """The verdict on a signature made with the dev key, naming ``leaf`` and carrying ``intermediate``:
    None when it verifies, else the X-Road fault (any other exception fails the test)."""
    key = SigningKey(evidence.key.private_key, leaf, evidence.key.ocsp_responses, (intermediate,))
    parts = [MessagePart("/message.xml", SOAP)]
    data = sign(parts, key)
    try:
        verify_signature(
            data.signature_xml, parts, trust=trust, expected_member=evidence.pki.member, at=evidence.now
        )
    except XRoadError as e:
        err = e
    else:
        return None
    assert err.code in set(FaultCode), err
    return err


@pytest.mark.parametrize("travels", [True, False], ids=["intermediate-in-signature", "approved-intermediate"])
@pytest.mark.parametrize("where", ["leaf", "intermediate"])
@pytest.mark.parametrize("variant", HOSTILE_VARIANTS)
def test_hostile_certificates_are_faults(evidence: Evidence, variant: str, where: str, travels: bool) -> None:
    """An unknown signature OID, odd RSA-PSS parameters or an X25519 key on the signing certificate or its
    intermediate. (An unknown OID on the signing certificate whose intermediate travels in the signature
    used to escape as cryptography's UnsupportedAlgorithm: a server answered 500.)"""
    leaf, intermediate = evidence.key.certificate, evidence.pki.intermediate.certificate
    if where == "leaf":
        leaf = hostile(leaf, variant)
    else:
        intermediate = hostile(intermediate, variant)
    trust = _without_intermediates(evidence.trust) if travels else evidence.trust
    err = _sign_and_verify(evidence, leaf, intermediate, trust)
    if where == "leaf" and variant == "x25519-key":
        assert err is not None
        assert err.has_code(FaultCode.MALFORMED_SIGNATURE), err  # the key cannot have made the signature
    elif where == "leaf" or travels:
        assert err is not None
        assert err.has_code(FaultCode.INVALID_CERT_PATH), err
    else:
        # The approved intermediate vouches for the leaf; the OCSP walk may still take the hostile copy
        # in the signature (same name and key) as the leaf's issuer and find no issuer above it.
        assert err is None or err.has_code(FaultCode.INVALID_CERT_PATH), err


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_dsa_signing_certificate_where_rsa_signed_is_a_fault(evidence: Evidence) -> None:
    leaf = with_public_key(evidence.key.certificate, dsa_public_key())
    err = _sign_and_verify(evidence, leaf, evidence.pki.intermediate.certificate, evidence.trust)
    assert err is not None
    assert err.has_code(FaultCode.MALFORMED_SIGNATURE), err


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(oid=oids(), where=st.sampled_from(["leaf", "intermediate"]))
def test_fuzz_signature_algorithm_oids_of_traveling_certificates(
    evidence: Evidence, oid: str, where: str
) -> None:
    """Any signatureAlgorithm OID on a certificate that travels in the signature: a verdict, never a
    library exception (the real OID, sha256WithRSAEncryption, verifies)."""
    leaf, intermediate = evidence.key.certificate, evidence.pki.intermediate.certificate
    if where == "leaf":
        leaf = with_signature_algorithm(leaf, oid)
    else:
        intermediate = with_signature_algorithm(intermediate, oid)
    _sign_and_verify(evidence, leaf, intermediate, _without_intermediates(evidence.trust))
