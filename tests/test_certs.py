"""Certificates: loading in every encoding X-Road uses, hashes, certificate profiles, key usage, chains."""

from __future__ import annotations

import base64
import contextlib
import io
import re
import warnings
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.crafted import HOSTILE_VARIANTS, hostile, oids, with_signature_algorithm
from trust_services.pki import CertifiedKey, DevPki, build_dev_pki, ca_name, generate_ec_key, issue_ca
from xroad_mn.certs import (
    BASIC_PROFILE,
    EJBCA_PROFILE,
    FIVRK_PROFILE,
    TEST_PROFILE,
    XROAD_MN_PROFILE,
    cert_hash,
    cert_hash_b64,
    cert_hash_hex,
    hash_algorithm_name,
    issued_by,
    load_certificate,
    load_certificates,
    profile_for,
    verify_auth_key_usage,
    verify_signing_key_usage,
)
from xroad_mn.confclient.installed import load_trust_material
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import ApprovedCA, OcspResponder, TrustMaterial
from xroad_mn.identifiers import MemberId
from xroad_mn.validation import MAX_CHAIN_DEPTH, PKIX_CRITICAL_EXTENSIONS, verify_chain

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
SIGNING_TIME_2024 = datetime(2024, 11, 27, 4, 14, 3, tzinfo=UTC)
SUBJECT_OIDS = {
    "C": NameOID.COUNTRY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "businessCategory": NameOID.BUSINESS_CATEGORY,
}


@pytest.fixture(scope="module")
def pki() -> DevPki:
    return build_dev_pki(NOW)


def trust_of(
    pki: DevPki,
    *,
    with_intermediate: bool = True,
    authentication_only: bool = False,
    profile: str = XROAD_MN_PROFILE,
) -> TrustMaterial:
    ca = ApprovedCA(
        name="dev",
        top_ca=pki.root.certificate,
        intermediates=(pki.intermediate.certificate,) if with_intermediate else (),
        ocsp_responders=(),
        certificate_profile_info=profile,
        authentication_only=authentication_only,
        instance=pki.instance,
        intermediate_ocsp_responders=((OcspResponder("http://ocsp", pki.ocsp_responder.certificate),),)
        if with_intermediate
        else (),
    )
    return TrustMaterial(pki.instance, (ca,), (), 3600, None)


def self_signed(subject: str) -> x509.Certificate:
    """A throw-away certificate whose subject is ``subject`` (RFC 4514), for profile tests."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = []
    with warnings.catch_warnings():
        # X-Road's stone-age subjects carry instance codes like "FI-DEV" in C; cryptography warns about it.
        warnings.simplefilter("ignore", UserWarning)
        for part in subject.split(","):
            label, value = part.split("=", 1)
            attrs.append(x509.NameAttribute(SUBJECT_OIDS[label], value, _validate=False))
    name = x509.Name(attrs)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def asice_signer(interop_dir: Path) -> x509.Certificate:
    path = interop_dir / "asic/asic-core/valid-signed-message-with-attachments.asice"
    with zipfile.ZipFile(path) as z:
        root = etree.fromstring(z.read("META-INF/signatures.xml"), etree.XMLParser(resolve_entities=False))
    text = root.findtext(f".//{{{DS_NS}}}X509Certificate")
    assert text is not None
    return load_certificate(text.encode())


# ------------------------------------------------------------------------------------------------------------
# Loading and hashes


def test_load_certificate_in_every_encoding(pki: DevPki) -> None:
    cert = pki.member_sign.certificate
    der = cert.public_bytes(serialization.Encoding.DER)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    encodings = [
        der,
        pem,
        base64.b64encode(der),
        base64.b64encode(pem),
        base64.encodebytes(der).replace(b"\n", b"\r\n"),
    ]
    for data in encodings:
        assert load_certificate(data) == cert


def test_load_interop_bare_base64_and_bundles(interop_dir: Path) -> None:
    certs = interop_dir / "certs"
    assert (
        load_certificate((certs / "common-test/tsp.pem").read_bytes()).subject.rfc4514_string()
        == "CN=timestamp1"
    )
    assert (
        load_certificate((certs / "common-test/NTREE.pem").read_bytes())
        .subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0]
        .value
        == "e-Seal"
    )
    assert len(load_certificates((certs / "common-core/cert_simple.pem").read_bytes())) == 1
    derived = load_certificate((certs / "derived-from-p12/timestamp1-tsp.pem").read_bytes())
    assert derived == load_certificate((certs / "common-test/tsp.pem").read_bytes())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   ",
        b"not a certificate!",
        b"MIIB",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        b"\x30\x03\x02\x01\x01",
    ],
)
def test_load_certificate_rejects_garbage(data: bytes) -> None:
    with pytest.raises(XRoadError) as e:
        load_certificate(data)
    assert e.value.code == FaultCode.INCORRECT_CERTIFICATE


def test_load_certificate_wants_exactly_one(pki: DevPki) -> None:
    bundle = b"".join(
        c.public_bytes(serialization.Encoding.PEM)
        for c in (pki.root.certificate, pki.intermediate.certificate)
    )
    assert len(load_certificates(bundle)) == 2
    with pytest.raises(XRoadError, match="expected one certificate, found 2"):
        load_certificate(bundle)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_load_certificate_never_raises_foreign_errors(data: bytes) -> None:
    with contextlib.suppress(XRoadError):
        load_certificate(data)  # any failure must be an XRoadError; anything else fails the test


def test_verification_certificate_hash_matches_interop(interop_dir: Path) -> None:
    # test-conf-simple.txt is signed by consumer.p12; its Verification-certificate-hash is SHA-512(cert DER).
    consumer = load_certificate((interop_dir / "certs/common-test/consumer.pem").read_bytes())
    directory = (interop_dir / "globalconf/signed/confclient/test-conf-simple.txt").read_text()
    assert f"Verification-certificate-hash: {cert_hash_b64(consumer)}" in directory
    assert cert_hash_b64(consumer, "http://www.w3.org/2001/04/xmlenc#sha512") == cert_hash_b64(consumer)


def test_hash_helpers(pki: DevPki) -> None:
    cert = pki.member_sign.certificate
    assert len(cert_hash(cert, "sha1")) == 20
    assert len(cert_hash(cert, "SHA-256")) == 32
    assert len(cert_hash(cert)) == 64
    assert cert_hash_hex(cert) == cert_hash(cert, "sha1").hex()
    delimited = cert_hash_hex(cert, "sha256", upper=True, sep=":")
    assert delimited.count(":") == 31
    assert delimited == delimited.upper()
    assert hash_algorithm_name("http://www.w3.org/2001/04/xmlenc#sha256") == "sha256"
    with pytest.raises(XRoadError):
        hash_algorithm_name("md5")


# ------------------------------------------------------------------------------------------------------------
# Certificate profiles


def test_real_signer_maps_to_member_via_fivrk(interop_dir: Path) -> None:
    # INDEX.md: signer DEV/SS1/COM (C=FI, O=Test client, CN=4321, serialNumber=DEV/SS1/COM).
    trust = load_trust_material(interop_dir / "globalconf/dirs/globalconf_good2_v3")
    signer = asice_signer(interop_dir)
    ca = verify_chain(signer, intermediates=(), trust=trust, at=SIGNING_TIME_2024)
    assert ca.certificate_profile_info == FIVRK_PROFILE
    assert profile_for(ca.certificate_profile_info, ca.instance).member_id(signer) == MemberId(
        "DEV", "COM", "4321"
    )


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (
            "C=FI,O=ACME,CN=1234567-8,serialNumber=FI-TEST/serverCode/PUB",
            MemberId("FI-TEST", "PUB", "1234567-8"),
        ),
        ("C=FI,O=FI-TEST,OU=PUB,CN=1234567-8", MemberId("FI-TEST", "PUB", "1234567-8")),  # legacy
        ("C=FI-DEV,O=GOV,CN=0245437-2", MemberId("FI-DEV", "GOV", "0245437-2")),  # stone age
    ],
)
def test_fivrk_profile(subject: str, expected: MemberId) -> None:
    assert profile_for(FIVRK_PROFILE, "IGNORED").member_id(self_signed(subject)) == expected


@pytest.mark.parametrize(
    "subject",
    [
        "C=FI,O=ACME,CN=1234567-8,serialNumber=///",
        "C=FI,O=ACME,CN=1234567-8,serialNumber=1/2/3/4",
        "C=XX,O=ACME,CN=1234567-8,serialNumber=FI-TEST/serverCode/PUB",
        "C=FI,CN=1234567-8,serialNumber=FI-TEST/serverCode/PUB",
        "C=XX,O=FI-TEST,OU=PUB,CN=1234567-8",
        "C=FI,O=ACME,serialNumber=FI-TEST/serverCode/PUB",
    ],
)
def test_fivrk_profile_rejects(subject: str) -> None:
    with pytest.raises(XRoadError) as e:
        profile_for(FIVRK_PROFILE, "FI").member_id(self_signed(subject))
    assert e.value.code == FaultCode.INCORRECT_CERTIFICATE


def test_basic_profile_takes_instance_from_ca() -> None:
    cert = self_signed("C=MN,O=Ministry,CN=Ministry,businessCategory=GOV,serialNumber=5012345")
    assert profile_for(BASIC_PROFILE, "MN").member_id(cert) == MemberId("MN", "GOV", "5012345")
    with pytest.raises(XRoadError, match="business category"):
        profile_for(BASIC_PROFILE, "MN").member_id(self_signed("C=MN,O=x,serialNumber=5012345"))
    with pytest.raises(XRoadError, match="serial number"):
        profile_for(BASIC_PROFILE, "MN").member_id(self_signed("C=MN,O=x,businessCategory=GOV"))


def test_ejbca_and_own_profile(pki: DevPki) -> None:
    cert = pki.member_sign.certificate
    assert profile_for(EJBCA_PROFILE, "XX").member_id(cert) == pki.member
    assert profile_for(XROAD_MN_PROFILE, "XX").member_id(cert) == MemberId("MN", "GOV", "5012345")
    with pytest.raises(XRoadError, match="common name"):
        profile_for(EJBCA_PROFILE, "MN").member_id(self_signed("C=MN,O=GOV"))
    with pytest.raises(XRoadError, match="more than one"):
        profile_for(EJBCA_PROFILE, "MN").member_id(self_signed("C=MN,O=GOV,CN=1,CN=2"))


def test_test_profile_and_class_name_whitespace() -> None:
    cert = self_signed("C=EE,O=Cybernetica,CN=producer")
    assert profile_for(f"\n   {TEST_PROFILE}\n  ", "EE").member_id(cert) == MemberId(
        "EE", "BUSINESS", "producer"
    )


@pytest.mark.parametrize(
    "name",
    ["ee.ria.xroad.common.certificateprofile.impl.SkEsteIdCertificateProfileInfoProvider", "", "Ejbca"],
)
def test_unknown_profile_is_an_error(name: str) -> None:
    with pytest.raises(XRoadError) as e:
        profile_for(name, "EE")
    assert e.value.code == FaultCode.INCORRECT_CERTIFICATE


def test_every_interop_profile_class_is_known_or_refused(interop_dir: Path) -> None:
    seen: set[str] = set()
    for path in (interop_dir / "globalconf").rglob("shared-params.xml"):
        if path.parent.name == "foo" and "malformed" in str(path):
            continue
        for ca in TrustMaterial.from_shared_params(path.read_bytes()).approved_cas:
            seen.add(ca.certificate_profile_info)
    supported = {TEST_PROFILE, FIVRK_PROFILE, EJBCA_PROFILE, BASIC_PROFILE}
    assert supported <= seen
    for name in seen:
        if name in supported:
            assert profile_for(name, "EE").class_name == name
        else:
            with pytest.raises(XRoadError):
                profile_for(name, "EE")


# ------------------------------------------------------------------------------------------------------------
# Key usage


def test_key_usage(pki: DevPki) -> None:
    verify_signing_key_usage(pki.member_sign.certificate)
    verify_signing_key_usage(pki.member_sign_ec.certificate)
    verify_auth_key_usage(pki.member_auth.certificate)
    with pytest.raises(XRoadError) as e:
        verify_signing_key_usage(pki.wrong_key_usage_sign.certificate)
    assert e.value.code == FaultCode.INCORRECT_CERTIFICATE
    with pytest.raises(XRoadError):
        verify_signing_key_usage(pki.member_auth.certificate)
    with pytest.raises(XRoadError):
        verify_auth_key_usage(pki.member_sign.certificate)


def test_real_signer_key_usage(interop_dir: Path) -> None:
    verify_signing_key_usage(asice_signer(interop_dir))


# ------------------------------------------------------------------------------------------------------------
# Chains


def test_chain_via_globalconf_intermediate(pki: DevPki) -> None:
    ca = verify_chain(pki.member_sign.certificate, intermediates=(), trust=trust_of(pki), at=NOW)
    assert ca.name == "dev"
    assert ca.instance == "MN"
    assert (
        profile_for(ca.certificate_profile_info, ca.instance).member_id(pki.member_sign.certificate)
        == pki.member
    )


def test_chain_via_given_intermediate(pki: DevPki) -> None:
    trust = trust_of(pki, with_intermediate=False)
    verify_chain(pki.member_sign_ec.certificate, intermediates=pki.member_sign_ec.chain, trust=trust, at=NOW)
    with pytest.raises(XRoadError) as e:
        verify_chain(pki.member_sign.certificate, intermediates=(), trust=trust, at=NOW)
    assert e.value.code == FaultCode.INVALID_CERT_PATH


@pytest.mark.parametrize(
    ("which", "words"), [("expired_sign", "expired"), ("not_yet_valid_sign", "not yet valid")]
)
def test_chain_rejects_validity(pki: DevPki, which: str, words: str) -> None:
    bad: CertifiedKey = getattr(pki, which)
    with pytest.raises(XRoadError, match=words) as e:
        verify_chain(bad.certificate, intermediates=(), trust=trust_of(pki), at=NOW)
    assert e.value.code == FaultCode.CERT_VALIDATION


def test_chain_rejects_unapproved_ca(pki: DevPki) -> None:
    other = build_dev_pki(NOW, instance="XX")
    with pytest.raises(XRoadError) as e:
        verify_chain(
            other.member_sign.certificate, intermediates=other.member_sign.chain, trust=trust_of(pki), at=NOW
        )
    assert e.value.code == FaultCode.INVALID_CERT_PATH


def test_chain_authentication_only_ca(pki: DevPki) -> None:
    trust = trust_of(pki, authentication_only=True)
    with pytest.raises(XRoadError, match="authentication only"):
        verify_chain(pki.member_sign.certificate, intermediates=(), trust=trust, at=NOW)
    verify_chain(pki.member_auth.certificate, intermediates=(), trust=trust, at=NOW, purpose="authentication")


def test_chain_rejects_leaf_acting_as_ca(pki: DevPki) -> None:
    fake = CertifiedKey(pki.member_sign.certificate, pki.member_sign.private_key, pki.member_sign.chain)
    key = generate_ec_key()
    forged = (
        x509.CertificateBuilder()
        .subject_name(ca_name("forged"))
        .issuer_name(fake.certificate.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(fake.private_key, hashes.SHA256())
    )
    with pytest.raises(XRoadError, match="is not a CA") as e:
        verify_chain(forged, intermediates=(pki.member_sign.certificate,), trust=trust_of(pki), at=NOW)
    assert e.value.code == FaultCode.INVALID_CERT_PATH


@pytest.mark.parametrize("with_intermediate", [True, False], ids=["approved-intermediate", "given"])
@pytest.mark.parametrize("where", ["leaf", "intermediate"])
@pytest.mark.parametrize("variant", HOSTILE_VARIANTS)
def test_chain_with_hostile_certificates_is_invalid_cert_path(
    pki: DevPki, variant: str, where: str, with_intermediate: bool
) -> None:
    """An unknown signature OID, odd RSA-PSS parameters or an X25519 key on the leaf or on the intermediate
    that comes with it: no path (an approved intermediate still vouches for an untouched leaf)."""
    leaf, intermediate = pki.member_sign.certificate, pki.intermediate.certificate
    if where == "leaf":
        leaf = hostile(leaf, variant)
    else:
        intermediate = hostile(intermediate, variant)
    trust = trust_of(pki, with_intermediate=with_intermediate)
    if where == "intermediate" and with_intermediate:
        verify_chain(leaf, intermediates=(intermediate,), trust=trust, at=NOW)
        return
    with pytest.raises(XRoadError) as e:
        verify_chain(leaf, intermediates=(intermediate,), trust=trust, at=NOW)
    assert e.value.code == FaultCode.INVALID_CERT_PATH, e.value


@settings(max_examples=50, deadline=None)
@given(oid=oids(), where=st.sampled_from(["leaf", "intermediate"]))
def test_fuzz_chain_signature_oids(pki: DevPki, oid: str, where: str) -> None:
    """Any signatureAlgorithm OID on the leaf or the intermediate that comes with it: a verdict."""
    leaf, intermediate = pki.member_sign.certificate, pki.intermediate.certificate
    if where == "leaf":
        leaf = with_signature_algorithm(leaf, oid)
    else:
        intermediate = with_signature_algorithm(intermediate, oid)
    with contextlib.suppress(XRoadError):
        verify_chain(
            leaf, intermediates=(intermediate,), trust=trust_of(pki, with_intermediate=False), at=NOW
        )


def _ca_chain(root: CertifiedKey, depth: int, path_length: int | None) -> list[CertifiedKey]:
    chain: list[CertifiedKey] = []
    issuer = root
    for i in range(depth):
        issuer = issue_ca(
            issuer,
            ca_name(f"sub {i}"),
            generate_ec_key(),
            not_before=NOW - timedelta(days=10),
            not_after=NOW + timedelta(days=10),
            path_length=path_length,
        )
        chain.append(issuer)
    return chain


def _leaf_under(issuer: CertifiedKey) -> x509.Certificate:
    key = generate_ec_key()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("C=MN,O=GOV,CN=5012345"))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(99)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(issuer.private_key, hashes.SHA256())
    )


def _certs(chain: Sequence[CertifiedKey]) -> tuple[x509.Certificate, ...]:
    return tuple(c.certificate for c in chain)


def test_chain_enforces_path_length(pki: DevPki) -> None:
    # pki.intermediate has pathLen 0: no CA may sit below it.
    sub = _ca_chain(pki.intermediate, 1, 0)
    with pytest.raises(XRoadError, match="allows 0 intermediate CAs") as e:
        verify_chain(_leaf_under(sub[0]), intermediates=_certs(sub), trust=trust_of(pki), at=NOW)
    assert e.value.code == FaultCode.INVALID_CERT_PATH


def test_chain_depth_is_bounded(pki: DevPki) -> None:
    long_chain = _ca_chain(pki.root, MAX_CHAIN_DEPTH, None)
    trust = trust_of(pki, with_intermediate=False)
    with pytest.raises(XRoadError, match="longer than"):
        verify_chain(_leaf_under(long_chain[-1]), intermediates=_certs(long_chain), trust=trust, at=NOW)
    short = long_chain[: MAX_CHAIN_DEPTH - 2]
    verify_chain(_leaf_under(short[-1]), intermediates=_certs(short), trust=trust, at=NOW)


def test_real_signer_chain_respects_time(interop_dir: Path) -> None:
    trust = load_trust_material(interop_dir / "globalconf/dirs/globalconf_good2_v3")
    signer = asice_signer(interop_dir)
    for at in (datetime(2024, 11, 1, tzinfo=UTC), datetime(2045, 1, 1, tzinfo=UTC)):
        with pytest.raises(XRoadError) as e:
            verify_chain(signer, intermediates=(), trust=trust, at=at)
        assert e.value.code == FaultCode.CERT_VALIDATION
    # Another instance's configuration does not approve the 2024 DEV Test CA.
    other = load_trust_material(interop_dir / "globalconf/dirs/globalconf_good_v6")
    with pytest.raises(XRoadError) as e:
        verify_chain(signer, intermediates=(), trust=other, at=SIGNING_TIME_2024)
    assert e.value.code == FaultCode.INVALID_CERT_PATH


def test_chain_needs_aware_time(pki: DevPki) -> None:
    with pytest.raises(XRoadError):
        verify_chain(
            pki.member_sign.certificate, intermediates=(), trust=trust_of(pki), at=NOW.replace(tzinfo=None)
        )


def test_sha1_signed_real_chains(interop_dir: Path) -> None:
    # The EE test CA "Cyber" (2014) signs with sha1WithRSA; X-Road accepts it, so must we.
    trust = load_trust_material(interop_dir / "globalconf/dirs/globalconf_good_v2")
    root = etree.parse(
        str(interop_dir / "signatures/common-test/sign-0.xml"), etree.XMLParser(resolve_entities=False)
    ).getroot()
    text = root.findtext(f".//{{{DS_NS}}}X509Certificate")
    assert text is not None
    consumer = load_certificate(text.encode())
    assert isinstance(consumer.signature_hash_algorithm, hashes.SHA1)
    ca = verify_chain(consumer, intermediates=(), trust=trust, at=datetime(2017, 9, 9, 9, 15, 30, tzinfo=UTC))
    assert ca.name == "pki1"
    assert profile_for(ca.certificate_profile_info, ca.instance).member_id(consumer) == MemberId(
        "EE", "BUSINESS", "consumer"
    )


def test_der_ending_in_whitespace_bytes_loads(pki: DevPki) -> None:
    # DER is binary: a signature ending in 0x0a or 0x20 must not be "stripped".
    key = generate_ec_key()
    for serial in range(1, 400):
        cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name("ws"))
            .issuer_name(ca_name("ws"))
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(NOW)
            .not_valid_after(NOW + timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        if der[-1:] in (b"\n", b" ", b"\t", b"\r", b"\x0b", b"\x0c"):
            assert load_certificate(der) == cert
            return
    pytest.fail("no certificate ending in a whitespace byte was produced")


# ------------------------------------------------------------------------------------------------------------
# Chains: trust anchor, path search, critical extensions, instance scope (review findings 1a and 1e)


def _hand_cert(
    subject: str,
    issuer_name: str,
    public_key: ec.EllipticCurvePublicKey,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool | None,
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=1),
    extra: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(ca_name(subject))
        .issuer_name(ca_name(issuer_name))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(signer, hashes.SHA256())


def _approved(
    top: x509.Certificate, instance: str = "MN", intermediates: Sequence[x509.Certificate] = ()
) -> ApprovedCA:
    return ApprovedCA(
        name=f"ca-{instance}",
        top_ca=top,
        intermediates=tuple(intermediates),
        ocsp_responders=(),
        certificate_profile_info=XROAD_MN_PROFILE,
        authentication_only=False,
        instance=instance,
    )


def test_chain_trusts_the_approved_top_ca_as_anchor() -> None:
    # The top CA is expired at NOW and has no basicConstraints: Java's PKIX takes a trust anchor as given.
    root_key, leaf_key = generate_ec_key(), generate_ec_key()
    top = _hand_cert(
        "anchor",
        "anchor",
        root_key.public_key(),
        root_key,
        ca=None,
        not_before=NOW - timedelta(days=30),
        not_after=NOW - timedelta(days=10),
    )
    leaf = _hand_cert("leaf", "anchor", leaf_key.public_key(), root_key, ca=False)
    trust = TrustMaterial("MN", (_approved(top),), (), 3600, None)
    assert verify_chain(leaf, intermediates=(), trust=trust, at=NOW).top_ca == top
    # The end-entity certificate itself is still checked.
    expired_leaf = _hand_cert(
        "leaf",
        "anchor",
        leaf_key.public_key(),
        root_key,
        ca=False,
        not_before=NOW - timedelta(days=30),
        not_after=NOW - timedelta(days=20),
    )
    with pytest.raises(XRoadError) as e:
        verify_chain(expired_leaf, intermediates=(), trust=trust, at=NOW)
    assert e.value.code == FaultCode.CERT_VALIDATION


def test_chain_tries_every_intermediate_of_the_same_name() -> None:
    root_key, int_key, leaf_key, rogue_key = (generate_ec_key() for _ in range(4))
    top = _hand_cert("root", "root", root_key.public_key(), root_key, ca=True)
    expired = _hand_cert(
        "sub",
        "root",
        int_key.public_key(),
        root_key,
        ca=True,
        not_before=NOW - timedelta(days=30),
        not_after=NOW - timedelta(days=20),
    )
    # Same name and key, but issued by a CA nobody approved (named like the approved root).
    unapproved = _hand_cert("sub", "root", int_key.public_key(), rogue_key, ca=True)
    good = _hand_cert("sub", "root", int_key.public_key(), root_key, ca=True)
    leaf = _hand_cert("leaf", "sub", leaf_key.public_key(), int_key, ca=False)
    trust = TrustMaterial("MN", (_approved(top),), (), 3600, None)
    assert issued_by(leaf, expired)
    assert issued_by(leaf, unapproved)
    assert not issued_by(unapproved, top)
    ca = verify_chain(leaf, intermediates=(expired, unapproved, good), trust=trust, at=NOW)
    assert ca.top_ca == top
    # With only the bad candidates the first failure is reported.
    with pytest.raises(XRoadError) as e:
        verify_chain(leaf, intermediates=(expired, unapproved), trust=trust, at=NOW)
    assert e.value.code == FaultCode.CERT_VALIDATION


@pytest.mark.parametrize("where", ["leaf", "intermediate"])
def test_chain_rejects_unknown_critical_extension(where: str) -> None:
    root_key, int_key, leaf_key = (generate_ec_key() for _ in range(3))
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    top = _hand_cert("root", "root", root_key.public_key(), root_key, ca=True)

    def build(critical: bool) -> tuple[x509.Certificate, x509.Certificate]:
        on_int = [(unknown, critical)] if where == "intermediate" else []
        on_leaf = [(unknown, critical)] if where == "leaf" else []
        sub = _hand_cert("sub", "root", int_key.public_key(), root_key, ca=True, extra=on_int)
        leaf = _hand_cert("leaf", "sub", leaf_key.public_key(), int_key, ca=False, extra=on_leaf)
        return sub, leaf

    trust = TrustMaterial("MN", (_approved(top),), (), 3600, None)
    sub, leaf = build(critical=False)
    verify_chain(leaf, intermediates=(sub,), trust=trust, at=NOW)
    sub, leaf = build(critical=True)
    with pytest.raises(XRoadError, match="unrecognised critical extension") as e:
        verify_chain(leaf, intermediates=(sub,), trust=trust, at=NOW)
    assert e.value.code == FaultCode.INVALID_CERT_PATH


def test_chain_scoped_to_an_instance(pki: DevPki) -> None:
    fed = build_dev_pki(NOW, instance="FED")
    trust = trust_of(pki).merged_with([trust_of(fed)])
    cert, chain = fed.member_sign.certificate, fed.member_sign.chain
    assert verify_chain(cert, intermediates=chain, trust=trust, at=NOW).instance == "FED"
    assert verify_chain(cert, intermediates=chain, trust=trust, at=NOW, instance="FED").instance == "FED"
    with pytest.raises(XRoadError) as e:
        verify_chain(cert, intermediates=chain, trust=trust, at=NOW, instance="MN")
    assert e.value.code == FaultCode.INVALID_CERT_PATH
    with pytest.raises(XRoadError) as e:
        verify_chain(cert, intermediates=chain, trust=trust, at=NOW, instance="XX")
    assert e.value.code == FaultCode.INVALID_CERT_PATH


_BASE64_CERT = re.compile(rb"MII[A-Za-z0-9+/=\s]{200,}")


def _interop_certificates(interop_dir: Path) -> list[x509.Certificate]:
    """Every certificate found in the interop artifacts: DER/PEM files and base64 inside XML and zips."""

    def blobs(data: bytes) -> list[bytes]:
        if data[:2] == b"PK":
            with contextlib.suppress(zipfile.BadZipFile), zipfile.ZipFile(io.BytesIO(data)) as z:
                return [data, *(z.read(n) for n in z.namelist())]
        return [data]

    out: list[x509.Certificate] = []
    for path in sorted(interop_dir.rglob("*")):
        if not path.is_file():
            continue
        for blob in blobs(path.read_bytes()):
            candidates = [blob] + [
                base64.b64decode(re.sub(rb"\s", b"", m.group(0))) for m in _BASE64_CERT.finditer(blob)
            ]
            for der in candidates:
                with contextlib.suppress(ValueError):
                    out.append(x509.load_der_x509_certificate(der))
    return out


def test_every_interop_certificate_has_only_pkix_critical_extensions(interop_dir: Path) -> None:
    # Finding 1e: refusing unknown critical extensions must not refuse any real X-Road certificate.
    certs = _interop_certificates(interop_dir)
    assert len(certs) > 100
    for cert in certs:
        with contextlib.suppress(ValueError):
            for ext in cert.extensions:
                assert not ext.critical or ext.oid in PKIX_CRITICAL_EXTENSIONS, (cert.subject, ext.oid)


def test_a_certificate_with_a_malformed_issuer_name_is_refused_when_loaded(pki: DevPki) -> None:
    """cryptography parses names lazily: a name whose string has a wrong ASN.1 tag would fail inside path
    building (found by the management verifier's fuzz test). It must fail at load time instead."""
    from xroad_mn.certs import load_certificates, load_der_certificate
    from xroad_mn.errors import XRoadError

    der = pki.member_sign.certificate.public_bytes(serialization.Encoding.DER)
    cn = bytes([0x06, 0x03, 0x55, 0x04, 0x03])  # OID commonName; its first use is in the issuer
    at = der.index(cn) + len(cn)
    assert der[at] in (0x0C, 0x13)  # UTF8String or PrintableString
    broken = der[:at] + bytes([0x0D]) + der[at + 1 :]  # RELATIVE-OID: not a string
    with pytest.raises(ValueError, match="asn1"):
        load_der_certificate(broken)
    with pytest.raises(XRoadError):
        load_certificates(broken)
