"""Signers in place of private keys: XAdES, global configuration directories and management requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.signing_checks import expect_code, verify_with
from tests.test_management import PROVIDER, World, auth_der, verify, world
from tests.test_signature import Evidence, build_evidence
from trust_services.pki import build_dev_pki, issue_certificate, sign_profile_extensions
from xroad_mn import algorithms
from xroad_mn.algorithms import TOKEN_SCHEMES, SignatureScheme, scheme_for
from xroad_mn.globalconf.directory import (
    build_signed_directory,
    parse_signed_directory,
    verify_signed_directory,
)
from xroad_mn.hashchain import MessagePart
from xroad_mn.keys import PrivateKeySigner, key_type
from xroad_mn.management import AuthCertRegRequest, MemberSigner, build_management_request
from xroad_mn.signature import SigningKey, sign, sign_batch, verify_signature

__all__ = ["world"]  # the management tests' module fixture, used here too


@pytest.fixture(scope="module")
def evidence() -> Evidence:
    return build_evidence()


@pytest.mark.parametrize("scheme", TOKEN_SCHEMES, ids=lambda s: s.value)
def test_private_key_signer_makes_every_scheme(scheme: SignatureScheme) -> None:
    key = (
        rsa.generate_private_key(65537, 2048)
        if scheme.key_type == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    signer = PrivateKeySigner(key)
    assert key_type(signer) == scheme.key_type
    verify_with(signer.public_key(), scheme, signer.sign(b"data", scheme), b"data")
    verify_with(key.public_key(), scheme, algorithms.sign(key, scheme, b"data"), b"data")


def test_a_scheme_for_the_other_key_type_is_refused() -> None:
    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    expect_code("cannot_create_signature", algorithms.sign, signer, SignatureScheme.RSA_PKCS1_SHA256, b"x")
    expect_code("cannot_create_signature", signer.sign, b"x", SignatureScheme.RSA_PSS_SHA256)
    expect_code("cannot_create_signature", lambda: scheme_for("ec", "sha512", pss=True))
    expect_code("cannot_create_signature", scheme_for, "rsa", "sha1")
    assert scheme_for("rsa", "sha384", pss=True) is SignatureScheme.RSA_PSS_SHA384


@pytest.mark.parametrize("ec_key", [False, True])
def test_xades_through_a_signer_verifies_like_the_private_key(evidence: Evidence, ec_key: bool) -> None:
    key = evidence.key_ec if ec_key else evidence.key
    assert isinstance(key.private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    through_signer = SigningKey(
        PrivateKeySigner(key.private_key), key.certificate, key.ocsp_responses, key.intermediates
    )
    parts = [MessagePart("/message.xml", b"<m>1</m>")]
    at = evidence.now
    direct = sign(parts, key, signing_time=at)
    signed = sign(parts, through_signer, signing_time=at)
    if not ec_key:  # PKCS#1 v1.5 is deterministic: the same document to the byte
        assert signed.signature_xml == direct.signature_xml
    member = evidence.pki.member
    verify_signature(signed.signature_xml, parts, trust=evidence.trust, expected_member=member, at=at)
    batch = [[MessagePart("/message.xml", b"<m>1</m>")], [MessagePart("/message.xml", b"<m>2</m>")]]
    for msg, data in zip(batch, sign_batch(batch, through_signer, signing_time=at), strict=True):
        verify_signature(
            data.signature_xml,
            msg,
            trust=evidence.trust,
            expected_member=member,
            at=at,
            hash_chain_result=data.hash_chain_result,
            hash_chain=data.hash_chain,
        )


@pytest.mark.parametrize("ec_key", [False, True])
def test_globalconf_directory_through_a_signer_verifies(ec_key: bool) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    pki = build_dev_pki(now)
    key = ec.generate_private_key(ec.SECP256R1()) if ec_key else rsa.generate_private_key(65537, 2048)
    cert = issue_certificate(
        pki.root,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MN configuration")]),
        public_key=key.public_key(),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
        extensions=sign_profile_extensions(),
    )
    part = ("SHARED-PARAMETERS", "MN", "/V2/20260101000000000000000/shared-params.xml", b"<shared/>\n")
    for hash_name in ("sha256", "sha512"):
        data = build_signed_directory(
            [part], now + timedelta(minutes=5), 2, PrivateKeySigner(key), cert, hash_algorithm=hash_name
        )
        assert verify_signed_directory(parse_signed_directory(data), [cert], at=now) == cert


@pytest.mark.parametrize(("use_ec", "pss"), [(False, False), (False, True), (True, False)])
def test_management_request_through_signers_verifies(world: World, use_ec: bool, pss: bool) -> None:
    owner = world.ec_signer if use_ec else world.owner_signer
    assert isinstance(owner.private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    signer = MemberSigner(PrivateKeySigner(owner.private_key), owner.certificate, owner.ocsp_response)
    assert isinstance(world.pki.member_auth.private_key, rsa.RSAPrivateKey)
    auth_key = PrivateKeySigner(world.pki.member_auth.private_key)
    request = AuthCertRegRequest(world.owner.server("ss1"), "ss1.example.mn", auth_der(world))
    built = build_management_request(
        request, sender=world.owner, service_provider=PROVIDER, signer=signer, auth_key=auth_key, rsa_pss=pss
    )
    verify(world, built.body, built.content_type)
    wrong_auth = PrivateKeySigner(rsa.generate_private_key(65537, 2048))
    expect_code(
        "cannot_create_signature",
        lambda: build_management_request(
            request, sender=world.owner, service_provider=PROVIDER, signer=signer, auth_key=wrong_auth
        ),
    )
