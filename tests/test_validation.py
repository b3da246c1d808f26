"""CertificateValidator: one place for signer, authentication and TSA trust, and what it remembers."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from trust_services.pki import ca_name, issue_ca
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import ApprovedTSA
from xroad_mn.hashchain import MessagePart
from xroad_mn.identifiers import MemberId
from xroad_mn.signature import SigningKey, sign, verify_signature
from xroad_mn.validation import CertificateValidator, ValidatedSigner

from .test_signature import SOAP, Evidence, build_evidence, signing_key

OTHER_MEMBER = MemberId("MN", "GOV", "1")


@pytest.fixture(scope="module")
def evidence() -> Evidence:
    return build_evidence()


def _validate(
    validator: CertificateValidator, evidence: Evidence, key: SigningKey | None = None, /, **overrides: object
) -> ValidatedSigner:
    """Validate ``key`` (default: the good RSA signing key) as the dev member's, now, unless overridden."""
    key = key or evidence.key
    args: dict[str, object] = {
        "intermediates": key.intermediates,
        "ocsp_responses": key.ocsp_responses,
        "at": evidence.now,
        "expected_member": evidence.pki.member,
    }
    args.update(overrides)
    return validator.validate_signer(key.certificate, **args)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# Signers


def test_signer_verdict_names_member_ca_path_and_ocsp(evidence: Evidence) -> None:
    pki = evidence.pki
    signer = _validate(CertificateValidator(evidence.trust), evidence)
    assert signer.member == pki.member
    assert signer.approved_ca.top_ca == pki.root.certificate
    assert signer.path == (pki.member_sign.certificate, pki.intermediate.certificate)
    assert [s.serial_number for s in signer.ocsp] == [c.serial_number for c in signer.path]
    # The verdict holds while every certificate of the path is valid and every response fresh.
    freshness = timedelta(seconds=evidence.trust.ocsp_freshness_seconds)
    assert signer.valid_from == max(c.not_valid_before_utc for c in signer.path)
    assert signer.valid_until == min(s.this_update for s in signer.ocsp) + freshness


def test_cache_hit_returns_the_same_verdict(evidence: Evidence) -> None:
    validator = CertificateValidator(evidence.trust)
    first = _validate(validator, evidence)
    assert validator.cached_signers == 1
    assert _validate(validator, evidence, at=evidence.now + timedelta(seconds=30)) is first
    # Through the public verifiers: one validator shared by many messages of one signer.
    parts = [MessagePart("/message.xml", SOAP)]
    data = sign(parts, evidence.key)
    for _ in range(3):
        verified = verify_signature(
            data.signature_xml, parts, trust=validator, expected_member=evidence.pki.member, at=evidence.now
        )
        assert verified.signer == first.member
        assert verified.approved_ca is first.approved_ca
    assert validator.cached_signers == 1


def test_stale_ocsp_is_rechecked_and_fails(evidence: Evidence) -> None:
    validator = CertificateValidator(evidence.trust)
    signer = _validate(validator, evidence)
    later = signer.valid_until + timedelta(seconds=1)
    with pytest.raises(XRoadError) as info:
        _validate(validator, evidence, at=later)
    assert info.value.code == FaultCode.INCORRECT_VALIDATION_INFO
    assert "too old" in info.value.message
    assert validator.cached_signers == 0


def test_time_before_the_verdict_window_is_rechecked_and_fails(evidence: Evidence) -> None:
    validator = CertificateValidator(evidence.trust)
    signer = _validate(validator, evidence)
    with pytest.raises(XRoadError) as info:
        _validate(validator, evidence, at=signer.valid_from - timedelta(seconds=1))
    assert info.value.code == FaultCode.CERT_VALIDATION
    # The good verdict stays for the times it holds.
    assert _validate(validator, evidence) is signer


def test_different_expected_member_fails_after_a_cached_verdict(evidence: Evidence) -> None:
    validator = CertificateValidator(evidence.trust)
    _validate(validator, evidence)
    with pytest.raises(XRoadError) as info:
        _validate(validator, evidence, expected_member=OTHER_MEMBER)
    assert info.value.code == FaultCode.INCORRECT_CERTIFICATE


def test_other_ocsp_responses_or_chain_are_not_served_from_the_cache(evidence: Evidence) -> None:
    validator = CertificateValidator(evidence.trust)
    _validate(validator, evidence)
    leaf_only = evidence.key.ocsp_responses[:1]
    with pytest.raises(XRoadError) as info:
        _validate(validator, evidence, ocsp_responses=leaf_only)
    assert info.value.code == FaultCode.CERT_VALIDATION
    assert "no OCSP response" in info.value.message


def test_revoked_response_is_never_cached_as_good(evidence: Evidence) -> None:
    validator = CertificateValidator(evidence.trust)
    revoked = signing_key(evidence.pki, evidence.pki.revoked_sign, evidence.now)
    for _ in range(2):
        with pytest.raises(XRoadError) as info:
            _validate(validator, evidence, revoked)
        assert info.value.code == FaultCode.CERT_VALIDATION
        assert "revoked" in info.value.message
    assert validator.cached_signers == 0


def test_other_trust_material_does_not_see_the_verdict(evidence: Evidence) -> None:
    trusting = CertificateValidator(evidence.trust)
    _validate(trusting, evidence)
    distrusting = CertificateValidator(replace(evidence.trust, approved_cas=()))
    with pytest.raises(XRoadError) as info:
        _validate(distrusting, evidence)
    assert info.value.code == FaultCode.INVALID_CERT_PATH


def test_path_found_after_a_time_based_refusal_holds_for_that_time_only(evidence: Evidence) -> None:
    # An expired copy of the intermediate (same name and key) comes first: the search refuses it for its
    # validity and goes on to the good one. At another time it might not: no reuse at any other time.
    pki, now = evidence.pki, evidence.now
    expired = issue_ca(
        pki.root,
        ca_name(f"{pki.instance} dev intermediate CA"),
        pki.intermediate.private_key,
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=10),
    )
    validator = CertificateValidator(evidence.trust)
    intermediates = (expired.certificate, pki.intermediate.certificate)
    first = _validate(validator, evidence, intermediates=intermediates)
    assert first.path[1] == pki.intermediate.certificate
    assert first.valid_from == first.valid_until == now
    assert _validate(validator, evidence, intermediates=intermediates) is first
    later = _validate(validator, evidence, intermediates=intermediates, at=now + timedelta(seconds=1))
    assert later is not first
    assert later.member == first.member


def test_cache_is_bounded(evidence: Evidence) -> None:
    validator = CertificateValidator(evidence.trust, max_cached_signers=1)
    _validate(validator, evidence)
    _validate(validator, evidence, evidence.key_ec)
    assert validator.cached_signers == 1


def test_check_order_decides_the_error_of_a_doubly_bad_signer(evidence: Evidence) -> None:
    # Expired and naming another member than expected: X-Road's message verifier binds the member first,
    # the management verifier checks the chain first.
    expired = signing_key(evidence.pki, evidence.pki.expired_sign, evidence.now)
    validator = CertificateValidator(evidence.trust)
    with pytest.raises(XRoadError) as info:
        _validate(validator, evidence, expired, expected_member=OTHER_MEMBER)
    assert info.value.code == FaultCode.INCORRECT_CERTIFICATE
    with pytest.raises(XRoadError) as info:
        _validate(
            validator,
            evidence,
            expired,
            expected_member=OTHER_MEMBER,
            order="management",
            ocsp_scope="leaf",
            ocsp_responses=expired.ocsp_responses[:1],
        )
    assert info.value.code == FaultCode.CERT_VALIDATION
    assert "expired" in info.value.message


def test_management_order_codes(evidence: Evidence) -> None:
    validator = CertificateValidator(evidence.trust)
    pki = evidence.pki
    wrong_usage = signing_key(pki, pki.wrong_key_usage_sign, evidence.now)
    leaf_ocsp: dict[str, object] = {
        "ocsp_scope": "leaf",
        "order": "management",
        "ocsp_responses": evidence.key.ocsp_responses[:1],
    }
    with pytest.raises(XRoadError) as info:
        _validate(validator, evidence, wrong_usage, **leaf_ocsp)  # key usage is checked first
    assert info.value.code == FaultCode.CERT_VALIDATION
    assert info.value.message.startswith("member sign certificate is invalid")
    with pytest.raises(XRoadError) as info:
        _validate(validator, evidence, expected_member=OTHER_MEMBER, **leaf_ocsp)
    assert info.value.code == FaultCode.INVALID_REQUEST
    with pytest.raises(XRoadError) as info:
        _validate(validator, evidence, ocsp_scope="leaf", order="management")
    assert info.value.code == FaultCode.CERT_VALIDATION
    assert "one OCSP response" in info.value.message
    signer = _validate(validator, evidence, **leaf_ocsp)
    assert [s.serial_number for s in signer.ocsp] == [pki.member_sign.certificate.serial_number]


# ----------------------------------------------------------------------------------------------------------
# Authentication and TSA certificates


def test_authentication_certificate(evidence: Evidence) -> None:
    validator = CertificateValidator(evidence.trust)
    pki = evidence.pki
    ca = validator.validate_authentication(pki.member_auth.certificate, at=evidence.now)
    assert ca.top_ca == pki.root.certificate
    with pytest.raises(XRoadError) as info:
        validator.validate_authentication(pki.member_sign.certificate, at=evidence.now)
    assert info.value.code == FaultCode.INCORRECT_CERTIFICATE
    with pytest.raises(XRoadError) as info:
        validator.validate_authentication(
            pki.member_auth.certificate,
            at=pki.member_auth.certificate.not_valid_after_utc + timedelta(days=1),
        )
    assert info.value.code == FaultCode.CERT_VALIDATION


def _reason(error: XRoadError) -> object:
    assert error.code == FaultCode.TIMESTAMP_VALIDATION, error
    return error.details["reason"]


def test_tsa_certificate(evidence: Evidence) -> None:
    validator = CertificateValidator(evidence.trust)
    pki = evidence.pki
    tsa = pki.tsa.certificate
    assert validator.validate_tsa(tsa, at=evidence.now) == evidence.trust.approved_tsas[0]
    with pytest.raises(XRoadError) as info:
        validator.validate_tsa(pki.root.certificate, at=evidence.now)
    assert _reason(info.value) == "tsa_not_approved"
    with pytest.raises(XRoadError) as info:
        validator.validate_tsa(tsa, at=tsa.not_valid_after_utc + timedelta(seconds=1))
    assert _reason(info.value) == "tsa_certificate_expired"
    # A certificate approved as a TSA but not for time-stamping (the OCSP responder's EKU is OCSPSigning).
    responder = pki.ocsp_responder.certificate
    wrongly_approved = CertificateValidator(
        replace(evidence.trust, approved_tsas=(ApprovedTSA("odd", "http://127.0.0.1:1", responder),))
    )
    with pytest.raises(XRoadError) as info:
        wrongly_approved.validate_tsa(responder, at=evidence.now)
    assert _reason(info.value) == "tsa_certificate_not_for_timestamping"


def test_a_validator_remembers_verdicts_but_not_failures() -> None:
    from xroad_mn.globalconf.trust import TrustMaterial

    validator = CertificateValidator(TrustMaterial("MN", (), (), 3600, None))
    calls: list[int] = []

    def verdict() -> str:
        calls.append(1)
        return "valid"

    def failing() -> str:
        calls.append(1)
        raise XRoadError(FaultCode.INVALID_SIGNATURE_VALUE, "no")

    assert validator.remembered(("k", 1), verdict) == "valid"
    assert validator.remembered(("k", 1), verdict) == "valid"
    assert len(calls) == 1
    for _ in range(2):
        with pytest.raises(XRoadError):
            validator.remembered(("k", 2), failing)
    assert len(calls) == 3
