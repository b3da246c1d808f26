"""The OCSP responder builder (RFC 6960), bytes in and bytes out, against the frozen-clock dev PKI."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from hypothesis import given, settings
from hypothesis import strategies as st

from trust_services.ocsp_responder import (
    CertStatusInfo,
    build_ocsp_response,
    issuer_hashes,
    parse_ocsp_request,
    status_lookup,
)
from trust_services.pki import CertifiedKey, DevPki, build_dev_pki
from xroad_mn.errors import XRoadError
from xroad_mn.wire.faults import http_status_of

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki() -> DevPki:
    return build_dev_pki(NOW)


def request_for(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    alg: hashes.HashAlgorithm | None = None,
    nonce: bytes | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, alg or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def answer(pki: DevPki, leaf: CertifiedKey, **kwargs: object) -> ocsp.OCSPResponse:
    der = build_ocsp_response(
        request_for(leaf.certificate, pki.intermediate.certificate, **kwargs),  # type: ignore[arg-type]
        issuer=pki.intermediate,
        responder=pki.ocsp_responder,
        status_of=status_lookup(pki.revocations, {c.serial for c in pki.issued_by_intermediate}),
        now=NOW,
    )
    return ocsp.load_der_ocsp_response(der)


def verify_signature(response: ocsp.OCSPResponse, responder: x509.Certificate) -> None:
    key = responder.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert isinstance(response.signature_hash_algorithm, hashes.SHA256)
    key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(), hashes.SHA256())


def test_good_response_has_the_x_road_shape(pki: DevPki) -> None:
    response = answer(pki, pki.member_sign, nonce=b"0123456789abcdef")
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == pki.member_sign.serial
    assert response.this_update_utc == NOW
    assert response.next_update_utc is None
    assert response.responder_name == pki.ocsp_responder.certificate.subject
    assert response.responder_key_hash is None
    assert response.certificates == [pki.ocsp_responder.certificate]
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"0123456789abcdef"
    verify_signature(response, pki.ocsp_responder.certificate)


def test_revoked_unknown_and_not_yet_revoked(pki: DevPki) -> None:
    revoked = answer(pki, pki.revoked_sign, alg=hashes.SHA256())
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_time_utc == NOW - timedelta(days=1)
    assert revoked.revocation_reason is x509.ReasonFlags.key_compromise
    assert revoked.hash_algorithm.name == "sha256"

    # Not issued by the intermediate: the root is unknown to the intermediate's responder.
    unknown = answer(pki, pki.root)
    assert unknown.certificate_status is ocsp.OCSPCertStatus.UNKNOWN

    # A revocation dated after "now" is not in effect yet.
    later = {pki.member_sign.serial: (NOW + timedelta(hours=1), x509.ReasonFlags.superseded)}
    der = build_ocsp_response(
        request_for(pki.member_sign.certificate, pki.intermediate.certificate),
        issuer=pki.intermediate.certificate,
        responder=pki.ocsp_responder,
        status_of=status_lookup(later, {pki.member_sign.serial}),
        now=NOW,
    )
    assert ocsp.load_der_ocsp_response(der).certificate_status is ocsp.OCSPCertStatus.GOOD


def test_request_naming_another_issuer_is_unknown(pki: DevPki) -> None:
    # The CertID names the root as issuer; the serial is one the intermediate issued.
    der = build_ocsp_response(
        request_for(pki.member_sign.certificate, pki.root.certificate),
        issuer=pki.intermediate,
        responder=pki.ocsp_responder,
        status_of=lambda serial: CertStatusInfo.good(),
        now=NOW,
    )
    assert ocsp.load_der_ocsp_response(der).certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def test_unspecified_reason_is_omitted(pki: DevPki) -> None:
    der = build_ocsp_response(
        request_for(pki.member_sign.certificate, pki.intermediate.certificate),
        issuer=pki.intermediate,
        responder=pki.ocsp_responder,
        status_of=lambda serial: CertStatusInfo.revoked(
            NOW - timedelta(days=2), x509.ReasonFlags.unspecified
        ),
        now=NOW,
    )
    response = ocsp.load_der_ocsp_response(der)
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is None


@pytest.mark.parametrize("alg", [hashes.SHA1(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512()])
def test_issuer_hashes_match_cryptography(pki: DevPki, alg: hashes.HashAlgorithm) -> None:
    request = ocsp.load_der_ocsp_request(
        request_for(pki.member_sign.certificate, pki.intermediate.certificate, alg)
    )
    assert issuer_hashes(pki.intermediate.certificate, alg) == (
        request.issuer_name_hash,
        request.issuer_key_hash,
    )


def test_openssl_accepts_the_response(pki: DevPki, openssl: str, tmp_path: Path) -> None:
    (tmp_path / "issuer.pem").write_bytes(pki.intermediate.certificate_pem())
    (tmp_path / "responder.pem").write_bytes(pki.ocsp_responder.certificate_pem())
    (tmp_path / "leaf.pem").write_bytes(pki.revoked_sign.certificate_pem())
    subprocess.run(
        [openssl, "ocsp", "-issuer", "issuer.pem", "-cert", "leaf.pem", "-reqout", "req.der"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    der = build_ocsp_response(
        (tmp_path / "req.der").read_bytes(),
        issuer=pki.intermediate,
        responder=pki.ocsp_responder,
        status_of=status_lookup(pki.revocations, set()),
        now=NOW,
    )
    (tmp_path / "resp.der").write_bytes(der)
    result = subprocess.run(
        [
            openssl,
            "ocsp",
            "-reqin",
            "req.der",
            "-respin",
            "resp.der",
            "-VAfile",
            "responder.pem",
            "-attime",
            str(int(NOW.timestamp())),
            "-resp_text",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Response verify OK" in result.stderr
    assert "Cert Status: revoked" in result.stdout
    assert "Revocation Reason: keyCompromise" in result.stdout


@pytest.mark.parametrize("data", [b"", b"\x30\x00", b"garbage", b"\x30\x03\x02\x01\x01"])
def test_malformed_requests_raise_invalid_ocsp_request(data: bytes) -> None:
    with pytest.raises(XRoadError) as exc:
        parse_ocsp_request(data)
    assert exc.value.has_code("invalid_ocsp_request")
    assert http_status_of(exc.value) == 400


def test_two_certificates_in_one_request_are_refused(pki: DevPki) -> None:
    # cryptography cannot build multi-certificate requests; splice one with asn1crypto.
    req = asn1_ocsp.OCSPRequest.load(request_for(pki.member_sign.certificate, pki.intermediate.certificate))
    one = req["tbs_request"]["request_list"][0]
    two = asn1_ocsp.OCSPRequest({"tbs_request": {"request_list": [one, one]}}).dump()
    with pytest.raises(XRoadError, match="one certificate"):
        parse_ocsp_request(two)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_parser_never_raises_anything_but_xroad_error(data: bytes) -> None:
    error: XRoadError | None = None
    try:
        parse_ocsp_request(data)
    except XRoadError as e:
        error = e
    assert error is None or http_status_of(error) == 400
