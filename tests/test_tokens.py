"""The software token: keys as PIN-encrypted PKCS#8 files, signing through it, CSRs, the PIN, settings."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.signing_checks import expect_code, verify_with
from tests.test_signature import Evidence, build_evidence
from tests.token_fixtures import assert_xades_through_token, csr_verifies_with_openssl
from xroad_mn.algorithms import SignatureScheme
from xroad_mn.settings import load_settings
from xroad_mn.tokens import (
    KeyAlgorithm,
    KeyUsage,
    SoftwareToken,
    TokenInfo,
    TokenSettings,
    TokenState,
    TokenType,
    build_csr,
    login_with_pin,
    open_token,
    read_pin,
    token_signer,
)
from xroad_mn.tokens.software import KDF_ITERATIONS, KEY_SUFFIX, KEYS_FILE, PIN_FILE

PIN = "correct horse 1"
CLEAR_KEY_MARKERS = (b"BEGIN PRIVATE KEY", b"BEGIN RSA PRIVATE KEY", b"BEGIN EC PRIVATE KEY")


@pytest.fixture
def token_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "token"


@pytest.fixture
def token(token_dir: Path) -> Iterator[SoftwareToken]:
    t = SoftwareToken(token_dir)
    t.initialize(PIN)
    t.login(PIN)
    yield t
    t.logout()


@pytest.fixture(scope="module")
def evidence() -> Evidence:
    return build_evidence()


# ----------------------------------------------------------------------------------------------------------
# Keys and signatures


@pytest.mark.parametrize(
    ("algorithm", "schemes"),
    [
        (
            KeyAlgorithm.RSA_2048,
            [
                SignatureScheme.RSA_PKCS1_SHA256,
                SignatureScheme.RSA_PKCS1_SHA512,
                SignatureScheme.RSA_PSS_SHA512,
            ],
        ),
        (KeyAlgorithm.EC_P256, [SignatureScheme.ECDSA_SHA256, SignatureScheme.ECDSA_SHA512]),
    ],
)
def test_generate_sign_and_verify_with_the_public_key(
    token: SoftwareToken, algorithm: KeyAlgorithm, schemes: list[SignatureScheme]
) -> None:
    key = token.generate_key("member sign", KeyUsage.SIGNING, algorithm)
    assert (key.label, key.usage, key.algorithm) == ("member sign", KeyUsage.SIGNING, algorithm)
    assert token.list_keys() == [key]
    for scheme in schemes:
        signature = token.sign(key.key_id, scheme, b"message to sign")
        verify_with(key.public_key, scheme, signature, b"message to sign")


def test_default_key_is_rsa_2048_as_x_road(token: SoftwareToken) -> None:
    key = token.generate_key("auth", KeyUsage.AUTHENTICATION)
    assert key.algorithm is KeyAlgorithm.RSA_2048
    assert isinstance(key.public_key, rsa.RSAPublicKey)
    assert key.public_key.key_size == 2048


def test_rsa_3072(token: SoftwareToken) -> None:
    key = token.generate_key("big", KeyUsage.SIGNING, KeyAlgorithm.RSA_3072)
    signature = token.sign(key.key_id, SignatureScheme.RSA_PKCS1_SHA512, b"x")
    assert len(signature) == 384
    verify_with(key.public_key, SignatureScheme.RSA_PKCS1_SHA512, signature, b"x")


def test_keys_survive_a_new_token_object_and_login(token: SoftwareToken, token_dir: Path) -> None:
    sign_key = token.generate_key("sign", KeyUsage.SIGNING)
    auth_key = token.generate_key("auth", KeyUsage.AUTHENTICATION, KeyAlgorithm.EC_P256)
    again = SoftwareToken(token_dir)
    assert again.info() == TokenInfo(TokenType.SOFTWARE, "softToken-0", TokenState.LOGGED_OUT, 2)
    assert [(k.key_id, k.label, k.usage) for k in again.list_keys()] == [
        (sign_key.key_id, "sign", KeyUsage.SIGNING),
        (auth_key.key_id, "auth", KeyUsage.AUTHENTICATION),
    ]
    again.login(PIN)
    assert again.info().state is TokenState.LOGGED_IN
    signature = again.sign(auth_key.key_id, SignatureScheme.ECDSA_SHA256, b"data")
    verify_with(auth_key.public_key, SignatureScheme.ECDSA_SHA256, signature, b"data")


def test_a_key_generated_by_another_process_signs_without_a_new_login(
    token: SoftwareToken, token_dir: Path
) -> None:
    cli = SoftwareToken(token_dir)  # e.g. the CLI, while the node keeps its own token logged in
    cli.login(PIN)
    key = cli.generate_key("from the cli", KeyUsage.SIGNING)
    signature = token.sign(key.key_id, SignatureScheme.RSA_PKCS1_SHA256, b"data")
    verify_with(key.public_key, SignatureScheme.RSA_PKCS1_SHA256, signature, b"data")


def test_delete_key_removes_it_and_its_file(token: SoftwareToken, token_dir: Path) -> None:
    keep = token.generate_key("keep", KeyUsage.SIGNING, KeyAlgorithm.EC_P256)
    gone = token.generate_key("gone", KeyUsage.SIGNING, KeyAlgorithm.EC_P256)
    token.delete_key(gone.key_id)
    assert [k.key_id for k in token.list_keys()] == [keep.key_id]
    assert not (token_dir / f"{gone.key_id}{KEY_SUFFIX}").exists()
    expect_code("signer.key_not_found", token.sign, gone.key_id, SignatureScheme.ECDSA_SHA256, b"x")
    expect_code("signer.key_not_found", token.delete_key, gone.key_id)
    expect_code("signer.key_not_found", token.sign, "../../etc/passwd", SignatureScheme.ECDSA_SHA256, b"x")


def test_a_scheme_that_does_not_fit_the_key_is_cannot_sign(token: SoftwareToken) -> None:
    key = token.generate_key("ec", KeyUsage.SIGNING, KeyAlgorithm.EC_P256)
    expect_code("signer.cannot_sign", token.sign, key.key_id, SignatureScheme.RSA_PKCS1_SHA256, b"x")


async def test_signing_runs_off_the_event_loop_from_many_threads(token: SoftwareToken) -> None:
    key = token.generate_key("sign", KeyUsage.SIGNING)
    data = [f"message {i}".encode() for i in range(16)]
    signatures = await asyncio.gather(
        *(asyncio.to_thread(token.sign, key.key_id, SignatureScheme.RSA_PKCS1_SHA512, d) for d in data)
    )
    for d, s in zip(data, signatures, strict=True):
        verify_with(key.public_key, SignatureScheme.RSA_PKCS1_SHA512, s, d)


# ----------------------------------------------------------------------------------------------------------
# PIN and token state


def test_wrong_pin_is_pin_incorrect_and_the_token_stays_locked(token: SoftwareToken, token_dir: Path) -> None:
    key = token.generate_key("sign", KeyUsage.SIGNING)
    other = SoftwareToken(token_dir)
    err = expect_code("signer.pin_incorrect", other.login, "wrong PIN")
    assert "PIN" in err.message
    assert other.info().state is TokenState.LOGGED_OUT
    expect_code("signer.token_not_active", other.sign, key.key_id, SignatureScheme.RSA_PKCS1_SHA256, b"x")
    expect_code("signer.token_not_active", other.generate_key, "x", KeyUsage.SIGNING)
    expect_code("signer.token_not_active", other.delete_key, key.key_id)


def test_logout_locks_the_keys(token: SoftwareToken) -> None:
    key = token.generate_key("sign", KeyUsage.SIGNING, KeyAlgorithm.EC_P256)
    token.logout()
    token.logout()  # idempotent
    assert token.info().state is TokenState.LOGGED_OUT
    expect_code("signer.token_not_active", token.sign, key.key_id, SignatureScheme.ECDSA_SHA256, b"x")
    assert token.list_keys()[0].key_id == key.key_id  # listing needs no PIN


def test_an_uninitialized_token_says_so(token_dir: Path) -> None:
    t = SoftwareToken(token_dir)
    assert t.info().state is TokenState.NOT_INITIALIZED
    expect_code("signer.token_not_initialized", t.login, PIN)
    expect_code("signer.token_not_initialized", t.list_keys)


def test_initialize_refuses_an_empty_pin_and_a_second_initialization(token_dir: Path) -> None:
    t = SoftwareToken(token_dir)
    expect_code("signer.token_pin_policy_failure", t.initialize, "")
    expect_code("signer.token_pin_policy_failure", t.initialize, "12\n34")
    t.initialize(PIN)
    expect_code("conflict", t.initialize, "another PIN")
    t.login(PIN)  # the first PIN still holds


# ----------------------------------------------------------------------------------------------------------
# On disk: encrypted, private, crash-safe


def test_no_private_key_in_clear_on_disk_and_openssl_opens_the_files_with_the_pin(
    token: SoftwareToken, token_dir: Path, openssl: str
) -> None:
    keys = [
        token.generate_key("rsa", KeyUsage.SIGNING),
        token.generate_key("ec", KeyUsage.AUTHENTICATION, KeyAlgorithm.EC_P256),
    ]
    files = sorted(p for p in token_dir.rglob("*") if p.is_file())
    assert {p.name for p in files} == {PIN_FILE, KEYS_FILE} | {f"{k.key_id}{KEY_SUFFIX}" for k in keys}
    for path in files:
        data = path.read_bytes()
        assert not any(marker in data for marker in CLEAR_KEY_MARKERS), path
    for key in keys:
        path = token_dir / f"{key.key_id}{KEY_SUFFIX}"
        kind, _, der = asn1_pem.unarmor(path.read_bytes())
        assert kind == "ENCRYPTED PRIVATE KEY"
        algorithm = asn1_keys.EncryptedPrivateKeyInfo.load(der)["encryption_algorithm"]
        assert algorithm.kdf == "pbkdf2"
        assert algorithm.kdf_iterations == KDF_ITERATIONS
        assert algorithm.encryption_cipher == "aes"
        # An outside tool: without the PIN the file does not open, with it the key is the listed one.
        env = {**os.environ, "TOKEN_PIN": PIN}
        refused = subprocess.run(
            [openssl, "pkey", "-in", str(path), "-passin", "pass:wrong", "-pubout"],
            capture_output=True, check=False, env=env,
        )  # fmt: skip
        assert refused.returncode != 0
        opened = subprocess.run(
            [openssl, "pkey", "-in", str(path), "-passin", "env:TOKEN_PIN", "-pubout"],
            capture_output=True, check=True, env=env,
        )  # fmt: skip
        assert serialization.load_pem_public_key(opened.stdout) == key.public_key


def test_an_imported_key_is_written_encrypted_and_signs_as_the_original(
    token: SoftwareToken, token_dir: Path
) -> None:
    """``import_key`` (the software token's only, for re-wrapping keys once kept in clear)."""
    original = ec.generate_private_key(ec.SECP256R1())
    info = token.import_key(original, "imported", KeyUsage.SIGNING)
    assert (info.label, info.usage, info.algorithm) == ("imported", KeyUsage.SIGNING, KeyAlgorithm.EC_P256)
    assert info.public_key == original.public_key()
    data = (token_dir / f"{info.key_id}{KEY_SUFFIX}").read_bytes()
    assert asn1_pem.unarmor(data)[0] == "ENCRYPTED PRIVATE KEY"
    assert not any(marker in data for marker in CLEAR_KEY_MARKERS)
    token.logout()
    token.login(PIN)  # opens with the PIN like a generated key
    signature = token.sign(info.key_id, SignatureScheme.ECDSA_SHA256, b"data")
    original.public_key().verify(signature, b"data", ec.ECDSA(hashes.SHA256()))
    weak = rsa.generate_private_key(65537, 1024)
    expect_code("signer.failed_to_generate_private_key", token.import_key, weak, "weak", KeyUsage.SIGNING)
    token.logout()
    expect_code("signer.token_not_active", token.import_key, original, "again", KeyUsage.SIGNING)
    assert [k.key_id for k in token.list_keys()] == [info.key_id]


def test_modes_are_0700_and_0600_whatever_the_umask(tmp_path: Path) -> None:
    directory = tmp_path / "token"
    old = os.umask(0)
    try:
        t = SoftwareToken(directory)
        t.initialize(PIN)
        t.login(PIN)
        t.generate_key("sign", KeyUsage.SIGNING, KeyAlgorithm.EC_P256)
    finally:
        os.umask(old)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}
    assert len(modes) == 3
    assert set(modes.values()) == {0o600}


def test_a_weakly_encrypted_key_file_planted_in_the_directory_is_refused(
    token: SoftwareToken, token_dir: Path
) -> None:
    key = token.generate_key("sign", KeyUsage.SIGNING, KeyAlgorithm.EC_P256)
    weak = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PIN.encode()),  # 2,048 PBKDF2 rounds
    )
    (token_dir / f"{key.key_id}{KEY_SUFFIX}").write_bytes(weak)
    err = expect_code("signer.login_failed", SoftwareToken(token_dir).login, PIN)
    assert "weakly" in err.message


def test_a_key_file_that_does_not_hold_the_listed_key_is_refused(
    token: SoftwareToken, token_dir: Path
) -> None:
    first = token.generate_key("one", KeyUsage.SIGNING, KeyAlgorithm.EC_P256)
    second = token.generate_key("two", KeyUsage.SIGNING, KeyAlgorithm.EC_P256)
    swapped = (token_dir / f"{second.key_id}{KEY_SUFFIX}").read_bytes()
    (token_dir / f"{first.key_id}{KEY_SUFFIX}").write_bytes(swapped)
    err = expect_code("signer.login_failed", SoftwareToken(token_dir).login, PIN)
    assert "does not hold the listed key" in err.message


# ----------------------------------------------------------------------------------------------------------
# The PIN's sources and the settings


def test_pin_comes_from_the_environment_or_a_prompt() -> None:
    assert read_pin({"XROAD_MN_TOKEN_PIN": "4321"}) == "4321"
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "typed"

    assert read_pin({}, ask=ask, interactive=True) == "typed"
    assert prompts == ["Token PIN: "]
    err = expect_code("signer.login_failed", lambda: read_pin({}, interactive=False))
    assert "XROAD_MN_TOKEN_PIN" in err.message


def test_token_settings_have_no_pin(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('type = "software"\npin = "1234"\n')
    err = expect_code("invalid_settings", lambda: load_settings(TokenSettings, app="token", path=path))
    assert "pin" in err.message
    path.write_text('type = "pkcs11"\n')
    expect_code("invalid_settings", lambda: load_settings(TokenSettings, app="token", path=path))
    path.write_text(f'directory = "{tmp_path / "t"}"\n')
    opened = open_token(load_settings(TokenSettings, app="token", path=path), default_directory=tmp_path)
    assert isinstance(opened, SoftwareToken)
    assert opened.directory == tmp_path / "t"


# ----------------------------------------------------------------------------------------------------------
# CSRs and signatures through the token


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.RSA_2048, KeyAlgorithm.EC_P256])
def test_csr_through_the_token_verifies_with_openssl(
    token: SoftwareToken, algorithm: KeyAlgorithm, openssl: str, tmp_path: Path
) -> None:
    key = token.generate_key("sign", KeyUsage.SIGNING, algorithm)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "MN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "GOV"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Төрийн байгууллага"),
        ]
    )
    csr = build_csr(token_signer(token, key.key_id), subject)
    assert csr.subject == subject
    assert csr.public_key() == key.public_key
    assert csr.signature_hash_algorithm is not None
    assert csr.signature_hash_algorithm.name == "sha256"
    csr_verifies_with_openssl(csr, openssl, tmp_path)
    sha512 = (
        SignatureScheme.ECDSA_SHA512
        if algorithm is KeyAlgorithm.EC_P256
        else SignatureScheme.RSA_PKCS1_SHA512
    )
    assert build_csr(token_signer(token, key.key_id), subject, scheme=sha512).is_signature_valid


def test_csr_refuses_a_scheme_that_does_not_fit(token: SoftwareToken) -> None:
    key = token.generate_key("sign", KeyUsage.SIGNING)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    signer = token_signer(token, key.key_id)
    for scheme in (SignatureScheme.ECDSA_SHA256, SignatureScheme.RSA_PSS_SHA256):
        expect_code(
            "signer.failed_to_generate_certificate_request",
            lambda s=scheme: build_csr(signer, subject, scheme=s),
        )


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.RSA_2048, KeyAlgorithm.EC_P256])
def test_xades_signature_through_the_software_token_verifies(
    token: SoftwareToken, algorithm: KeyAlgorithm, evidence: Evidence
) -> None:
    assert_xades_through_token(token, algorithm, evidence)


def test_login_with_pin_takes_the_given_pin_else_the_environment_and_keeps_a_login(token_dir: Path) -> None:
    t = SoftwareToken(token_dir)
    t.initialize(PIN)
    expect_code("signer.pin_incorrect", lambda: login_with_pin(t, env={"XROAD_MN_TOKEN_PIN": "wrong"}))
    assert login_with_pin(t, env={"XROAD_MN_TOKEN_PIN": PIN}) is t
    assert t.info().state is TokenState.LOGGED_IN
    assert login_with_pin(t, "not asked: already logged in") is t
    t.logout()
    assert login_with_pin(t, PIN, env={"XROAD_MN_TOKEN_PIN": "wrong"}).info().state is TokenState.LOGGED_IN
    t.logout()
    expect_code("signer.token_not_initialized", login_with_pin, SoftwareToken(token_dir.parent / "new"), PIN)
