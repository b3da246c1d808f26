"""The development PKI as code, against a frozen clock, and the CA's certificate profiles."""

from __future__ import annotations

import inspect
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trust_services.ca import Profile, issue_from_csr, load_csr, member_from_subject
from trust_services.pki import CertifiedKey, DevPki, build_dev_pki, member_subject, random_serial
from xroad_mn.certs import XROAD_MN_PROFILE, profile_for, verify_signing_key_usage
from xroad_mn.errors import XRoadError
from xroad_mn.identifiers import MemberId
from xroad_mn.wire.faults import http_status_of

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki() -> DevPki:
    return build_dev_pki(NOW)


def key_usage(cert: x509.Certificate) -> x509.KeyUsage:
    return cert.extensions.get_extension_for_class(x509.KeyUsage).value


def test_chain_links_and_signatures(pki: DevPki) -> None:
    assert pki.root.certificate.issuer == pki.root.certificate.subject
    pki.root.certificate.verify_directly_issued_by(pki.root.certificate)
    pki.intermediate.certificate.verify_directly_issued_by(pki.root.certificate)
    pki.tsa.certificate.verify_directly_issued_by(pki.root.certificate)
    assert pki.intermediate.chain == ()
    assert pki.tsa.chain == ()
    for leaf in pki.issued_by_intermediate:
        leaf.certificate.verify_directly_issued_by(pki.intermediate.certificate)
        assert leaf.chain == (pki.intermediate.certificate,)
        assert leaf.certificate.public_key() == leaf.private_key.public_key()
    serials = [c.serial for c in (pki.root, pki.intermediate, pki.tsa, *pki.issued_by_intermediate)]
    assert len(set(serials)) == len(serials)
    assert all(0 < s < 2**63 for s in serials)


def test_member_signing_certificates(pki: DevPki) -> None:
    assert pki.member == MemberId("MN", "GOV", "5012345")
    for signing in (pki.member_sign, pki.member_sign_ec):
        cert = signing.certificate
        assert cert.subject.rfc4514_string() == "CN=5012345,O=GOV,C=MN"
        ext = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert ext.critical
        assert ext.value.content_commitment
        assert not ext.value.digital_signature
        verify_signing_key_usage(cert)
        assert profile_for(XROAD_MN_PROFILE, "MN").member_id(cert) == pki.member
        assert cert.not_valid_before_utc <= NOW <= cert.not_valid_after_utc
    assert isinstance(pki.member_sign.private_key, rsa.RSAPrivateKey)
    assert pki.member_sign.private_key.key_size == 2048
    assert isinstance(pki.member_sign_ec.private_key, ec.EllipticCurvePrivateKey)
    assert pki.member_sign_ec.private_key.curve.name == "secp256r1"


def test_service_certificates(pki: DevPki) -> None:
    eku = pki.tsa.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    ocsp_eku = pki.ocsp_responder.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(ocsp_eku.value) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    pki.ocsp_responder.certificate.extensions.get_extension_for_class(x509.OCSPNoCheck)
    auth = pki.member_auth.certificate
    assert set(auth.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    }
    usage = key_usage(auth)
    assert usage.digital_signature
    assert usage.key_encipherment
    san = auth.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    for ca in (pki.root, pki.intermediate):
        constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical
        assert constraints.value.ca
        assert key_usage(ca.certificate).key_cert_sign


def test_bad_certificates_are_bad_for_their_stated_reason(pki: DevPki) -> None:
    assert pki.expired_sign.certificate.not_valid_after_utc < NOW
    assert pki.not_yet_valid_sign.certificate.not_valid_before_utc > NOW
    revoked_at, reason = pki.revocations[pki.revoked_sign.serial]
    assert revoked_at < NOW
    assert reason is x509.ReasonFlags.key_compromise
    assert set(pki.revocations) == {pki.revoked_sign.serial}
    assert not key_usage(pki.wrong_key_usage_sign.certificate).content_commitment
    with pytest.raises(XRoadError) as exc:
        verify_signing_key_usage(pki.wrong_key_usage_sign.certificate)
    assert exc.value.has_code("incorrect_certificate")
    # Every bad certificate documents, right below its attribute, why it is bad.
    source = inspect.getsource(DevPki)
    for name in ("expired_sign", "revoked_sign", "not_yet_valid_sign", "wrong_key_usage_sign"):
        assert f'{name}: CertifiedKey\n    """BAD: ' in source


def test_validity_is_fixed_relative_to_now() -> None:
    later = NOW + timedelta(days=100)
    pki = build_dev_pki(later, instance="EE")
    assert pki.member_sign.certificate.not_valid_before_utc == later - timedelta(days=30)
    assert pki.member_sign.certificate.not_valid_after_utc == later + timedelta(days=365)
    assert pki.expired_sign.certificate.not_valid_after_utc == later - timedelta(days=35)
    assert profile_for(XROAD_MN_PROFILE, "EE").member_id(pki.member_sign.certificate) == MemberId(
        "EE", "GOV", "5012345"
    )


def test_naive_now_is_refused() -> None:
    with pytest.raises(XRoadError):
        build_dev_pki(datetime(2025, 1, 1))


def test_openssl_verifies_the_chain_at_the_frozen_time(pki: DevPki, openssl: str, tmp_path: Path) -> None:
    (tmp_path / "root.pem").write_bytes(pki.root.certificate_pem())
    (tmp_path / "inter.pem").write_bytes(pki.intermediate.certificate_pem())
    at = str(int(NOW.timestamp()))
    verdicts = {}
    for name in ("member_sign", "member_sign_ec", "member_auth", "expired_sign", "not_yet_valid_sign"):
        certified: CertifiedKey = getattr(pki, name)
        path = tmp_path / f"{name}.pem"
        path.write_bytes(certified.certificate_pem())
        result = subprocess.run(
            [openssl, "verify", "-attime", at, "-CAfile", "root.pem", "-untrusted", "inter.pem", path.name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        verdicts[name] = (result.returncode, result.stdout + result.stderr)
    assert verdicts["member_sign"][0] == 0
    assert verdicts["member_sign_ec"][0] == 0
    assert verdicts["member_auth"][0] == 0
    assert "certificate has expired" in verdicts["expired_sign"][1]
    assert "certificate is not yet valid" in verdicts["not_yet_valid_sign"][1]


def make_csr(subject: x509.Name, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None) -> bytes:
    private_key = key or ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(private_key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def test_sign_profile_copies_only_the_member(pki: DevPki) -> None:
    member = MemberId("MN", "COM", "ACME-42(b)")
    cert = issue_from_csr(
        make_csr(member_subject(member)), Profile.SIGN, ca=pki.intermediate, instance="MN", now=NOW
    )
    cert.verify_directly_issued_by(pki.intermediate.certificate)
    assert member_from_subject(cert.subject, "MN") == member
    assert profile_for(XROAD_MN_PROFILE, "MN").member_id(cert) == member
    assert cert.not_valid_before_utc < NOW < cert.not_valid_after_utc
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


@pytest.mark.parametrize(
    ("attributes", "why"),
    [
        ([("C", "MN"), ("O", "GOV")], "no CN"),
        ([("C", "MN"), ("O", "GOV"), ("CN", "a/b")], "'/'"),
        ([("C", "MN"), ("O", "G V"), ("CN", "1")], "' '"),
        ([("C", "XX"), ("O", "GOV"), ("CN", "1")], "instance"),
        ([("C", "MN"), ("O", "GOV"), ("O", "COM"), ("CN", "1")], "more than once"),
        ([("C", "MN"), ("O", "GOV"), ("CN", "1"), ("L", "UB")], "not allowed"),
    ],
)
def test_sign_profile_refuses_subjects_naming_no_valid_member(
    pki: DevPki, attributes: list[tuple[str, str]], why: str
) -> None:
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "CN": NameOID.COMMON_NAME,
        "L": NameOID.LOCALITY_NAME,
    }
    subject = x509.Name([x509.NameAttribute(oids[k], v) for k, v in attributes])
    with pytest.raises(XRoadError) as exc:
        issue_from_csr(make_csr(subject), Profile.SIGN, ca=pki.intermediate, instance="MN", now=NOW)
    assert exc.value.has_code("invalid_csr")
    assert http_status_of(exc.value) == 400
    assert why.lower() in exc.value.message.lower()


def test_weak_keys_and_bad_signatures_are_refused() -> None:
    subject = member_subject(MemberId("MN", "GOV", "1"))
    weak = rsa.generate_private_key(65537, 1024)
    with pytest.raises(XRoadError, match="too short"):
        load_csr(make_csr(subject, weak))
    with pytest.raises(XRoadError, match="not supported"):
        load_csr(make_csr(subject, ec.generate_private_key(ec.SECP256K1())))
    der = bytearray(x509.load_pem_x509_csr(make_csr(subject)).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0xFF
    with pytest.raises(XRoadError, match="self-signature"):
        load_csr(bytes(der))


def test_random_serials_are_positive_63_bit() -> None:
    serials = {random_serial() for _ in range(1000)}
    assert len(serials) == 1000
    assert all(0 < s < 2**63 for s in serials)
    assert max(serials).bit_length() > 56
