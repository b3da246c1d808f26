"""The PKCS#11 token, for real against SoftHSM2: keys made and used inside the token, never extractable."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, ObjectClass

from tests.conftest import SoftHsm
from tests.signing_checks import expect_code, verify_with
from tests.test_signature import Evidence, build_evidence
from tests.token_fixtures import assert_xades_through_token, csr_verifies_with_openssl
from trust_services.pki import build_dev_pki, issue_certificate, sign_profile_extensions
from xroad_mn.algorithms import SignatureScheme
from xroad_mn.globalconf.directory import (
    build_signed_directory,
    parse_signed_directory,
    verify_signed_directory,
)
from xroad_mn.tokens import (
    KeyAlgorithm,
    KeyUsage,
    Pkcs11Token,
    TokenSettings,
    TokenState,
    TokenType,
    build_csr,
    open_token,
    token_signer,
)


@pytest.fixture
def token(softhsm: SoftHsm) -> Iterator[Pkcs11Token]:
    t = Pkcs11Token(softhsm.module, softhsm.label)
    t.login(softhsm.pin)
    yield t
    t.login(softhsm.pin)
    for key in t.list_keys():
        t.delete_key(key.key_id)
    t.logout()


@pytest.fixture(scope="module")
def evidence() -> Evidence:
    return build_evidence()


@pytest.mark.parametrize(
    ("algorithm", "schemes"),
    [
        (
            KeyAlgorithm.RSA_2048,
            [
                SignatureScheme.RSA_PKCS1_SHA256,
                SignatureScheme.RSA_PKCS1_SHA384,
                SignatureScheme.RSA_PKCS1_SHA512,
                SignatureScheme.RSA_PSS_SHA256,
                SignatureScheme.RSA_PSS_SHA512,
            ],
        ),
        (KeyAlgorithm.RSA_3072, [SignatureScheme.RSA_PKCS1_SHA512]),
        (KeyAlgorithm.EC_P256, [SignatureScheme.ECDSA_SHA256, SignatureScheme.ECDSA_SHA512]),
    ],
)
def test_generate_sign_and_verify_with_the_public_key(
    token: Pkcs11Token, algorithm: KeyAlgorithm, schemes: list[SignatureScheme]
) -> None:
    key = token.generate_key("member sign", KeyUsage.SIGNING, algorithm)
    assert (key.label, key.usage, key.algorithm) == ("member sign", KeyUsage.SIGNING, algorithm)
    assert len(key.key_id) == 40
    assert token.list_keys() == [key]
    for scheme in schemes:
        signature = token.sign(key.key_id, scheme, b"message to sign")
        verify_with(key.public_key, scheme, signature, b"message to sign")


def test_private_keys_are_sensitive_and_never_extractable(token: Pkcs11Token, softhsm: SoftHsm) -> None:
    made = [
        token.generate_key("rsa", KeyUsage.SIGNING),
        token.generate_key("ec", KeyUsage.AUTHENTICATION, KeyAlgorithm.EC_P256),
    ]
    # Look at the objects with the binding itself, as any other PKCS#11 application would (in this process
    # the token is logged in already: PKCS#11 login state belongs to the application, not the session).
    with pkcs11.lib(str(softhsm.module)).get_token(token_label=softhsm.label).open() as session:
        for key in made:
            private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=bytes.fromhex(key.key_id))
            assert private[Attribute.SENSITIVE] is True
            assert private[Attribute.EXTRACTABLE] is False
            assert private[Attribute.NEVER_EXTRACTABLE] is True
            assert private[Attribute.ALWAYS_SENSITIVE] is True
            assert private[Attribute.PRIVATE] is True
            secret = Attribute.PRIVATE_EXPONENT if key.algorithm is KeyAlgorithm.RSA_2048 else Attribute.VALUE
            with pytest.raises(pkcs11.exceptions.AttributeSensitive):
                private[secret]
            assert private.label == f"{key.usage}:{key.label}"


def test_keys_are_listed_without_login_and_survive_a_new_token_object(
    token: Pkcs11Token, softhsm: SoftHsm
) -> None:
    sign_key = token.generate_key("sign", KeyUsage.SIGNING)
    auth_key = token.generate_key("auth", KeyUsage.AUTHENTICATION, KeyAlgorithm.EC_P256)
    token.logout()
    again = Pkcs11Token(softhsm.module, softhsm.label)
    info = again.info()
    assert (info.type, info.label, info.state, info.key_count) == (
        TokenType.PKCS11,
        softhsm.label,
        TokenState.LOGGED_OUT,
        2,
    )
    assert {(k.key_id, k.label, k.usage) for k in again.list_keys()} == {
        (sign_key.key_id, "sign", KeyUsage.SIGNING),
        (auth_key.key_id, "auth", KeyUsage.AUTHENTICATION),
    }
    expect_code(
        "signer.token_not_active", again.sign, sign_key.key_id, SignatureScheme.RSA_PKCS1_SHA256, b"x"
    )
    again.login(softhsm.pin)
    signature = again.sign(auth_key.key_id, SignatureScheme.ECDSA_SHA256, b"data")
    verify_with(auth_key.public_key, SignatureScheme.ECDSA_SHA256, signature, b"data")
    again.logout()


def test_wrong_pin_is_pin_incorrect(softhsm: SoftHsm) -> None:
    t = Pkcs11Token(softhsm.module, softhsm.label)
    err = expect_code("signer.pin_incorrect", t.login, "00000000")
    assert softhsm.label in err.message
    assert t.info().state is TokenState.LOGGED_OUT
    expect_code("signer.token_not_active", t.generate_key, "x", KeyUsage.SIGNING)


def test_an_absent_token_or_module_is_token_not_available(softhsm: SoftHsm, tmp_path: Path) -> None:
    expect_code("signer.token_not_available", Pkcs11Token(softhsm.module, "no such token").login, softhsm.pin)
    expect_code("signer.token_not_available", Pkcs11Token(tmp_path / "missing.so", "x").login, softhsm.pin)


def test_delete_and_wrong_scheme(token: Pkcs11Token) -> None:
    keep = token.generate_key("keep", KeyUsage.SIGNING, KeyAlgorithm.EC_P256)
    gone = token.generate_key("gone", KeyUsage.SIGNING, KeyAlgorithm.EC_P256)
    token.sign(gone.key_id, SignatureScheme.ECDSA_SHA256, b"x")  # its handle is cached now
    token.delete_key(gone.key_id)
    assert [k.key_id for k in token.list_keys()] == [keep.key_id]
    expect_code("signer.key_not_found", token.sign, gone.key_id, SignatureScheme.ECDSA_SHA256, b"x")
    expect_code("signer.key_not_found", token.delete_key, gone.key_id)
    expect_code("signer.key_not_found", token.delete_key, "not hex")
    expect_code("signer.cannot_sign", token.sign, keep.key_id, SignatureScheme.RSA_PKCS1_SHA256, b"x")


async def test_signing_from_many_threads(token: Pkcs11Token) -> None:
    key = token.generate_key("sign", KeyUsage.SIGNING)
    data = [f"message {i}".encode() for i in range(12)]
    signatures = await asyncio.gather(
        *(asyncio.to_thread(token.sign, key.key_id, SignatureScheme.RSA_PKCS1_SHA512, d) for d in data)
    )
    for d, s in zip(data, signatures, strict=True):
        verify_with(key.public_key, SignatureScheme.RSA_PKCS1_SHA512, s, d)


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.RSA_2048, KeyAlgorithm.EC_P256])
def test_csr_through_the_hsm_verifies_with_openssl(
    token: Pkcs11Token, algorithm: KeyAlgorithm, openssl: str, tmp_path: Path
) -> None:
    key = token.generate_key("auth", KeyUsage.AUTHENTICATION, algorithm)
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "ss1"), x509.NameAttribute(NameOID.SERIAL_NUMBER, "5012345")]
    )
    csr = build_csr(token_signer(token, key.key_id), subject)
    assert csr.public_key() == key.public_key
    csr_verifies_with_openssl(csr, openssl, tmp_path)


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.RSA_2048, KeyAlgorithm.EC_P256])
def test_xades_signature_through_the_hsm_verifies(
    token: Pkcs11Token, algorithm: KeyAlgorithm, evidence: Evidence
) -> None:
    assert_xades_through_token(token, algorithm, evidence)


def test_globalconf_directory_signed_through_the_hsm_verifies(token: Pkcs11Token) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    pki = build_dev_pki(now)
    key = token.generate_key("internal conf", KeyUsage.SIGNING)
    cert = issue_certificate(
        pki.root,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MN internal configuration")]),
        public_key=key.public_key,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=365),
        extensions=sign_profile_extensions(),
    )
    data = build_signed_directory(
        [("SHARED-PARAMETERS", "MN", "/V2/20260101000000000000000/shared-params.xml", b"<shared/>\n")],
        now + timedelta(minutes=10),
        2,
        token_signer(token, key.key_id),
        cert,
    )
    assert verify_signed_directory(parse_signed_directory(data), [cert], at=now) == cert


def test_settings_open_a_pkcs11_token(softhsm: SoftHsm) -> None:
    settings = TokenSettings(type="pkcs11", module=softhsm.module, label=softhsm.label)
    opened = open_token(settings, default_directory=Path("/nonexistent"))
    assert isinstance(opened, Pkcs11Token)
    assert opened.info().type is TokenType.PKCS11
