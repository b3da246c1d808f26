"""The registry's configuration signing keys live in its token: certificates signed through the token, the
PIN at start-up, the migration that moves keys kept in clear into the token, and no private key in clear
anywhere in the registry's home after init, serve and a key rotation."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from registry.app import run_registry
from registry.context import STORE_KEY, TOKEN_KEY
from registry.db import KeyKind, RegistryStore, create_engine, migrate
from registry.globalconf_gen import DIRECTORY_NAMES
from registry.home import ADMIN_ROLES, create_home, load_registry_settings
from registry.signing import (
    TokenLogin,
    create_token,
    new_signing_key,
    read_new_pin,
    registry_token,
    self_signed_certificate,
)
from tests.registry.conftest import TOKEN_PIN
from tests.registry.test_storage import _downgrade
from xroad_mn.admin import create_api_key
from xroad_mn.algorithms import SignatureScheme
from xroad_mn.cli.main import build_app
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.directory import parse_signed_directory, verify_signed_directory
from xroad_mn.identifiers import MemberId
from xroad_mn.keys import PrivateKeySigner
from xroad_mn.tokens import PIN_ENV, KeyUsage, Pkcs11Token, SoftwareToken, token_signer

CLEAR_KEY_MARKERS = (b"BEGIN PRIVATE KEY", b"BEGIN RSA PRIVATE KEY")


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.output


def _files_with_key_in_clear(directory: Path) -> str:
    """What ``grep -r -l "BEGIN PRIVATE KEY\\|BEGIN RSA PRIVATE KEY" DIRECTORY`` finds."""
    found = subprocess.run(
        ["grep", "-r", "-l", "BEGIN PRIVATE KEY\\|BEGIN RSA PRIVATE KEY", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode in (0, 1), found.stderr  # 0: found, 1: nothing found, 2: an error
    return found.stdout


def _assert_no_key_in_clear(directory: Path) -> None:
    assert _files_with_key_in_clear(directory) == ""


@pytest.fixture
def token(tmp_path: Path) -> SoftwareToken:
    token = SoftwareToken(tmp_path / "token")
    create_token(token, TOKEN_PIN)
    return token


# -- certificates signed through the token ---------------------------------------------------------------


def _openssl_verifies_self_signed(cert: x509.Certificate, openssl: str, path: Path) -> bool:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        [
            openssl,
            "verify",
            "-no_check_time",
            "-x509_strict",
            "-check_ss_sig",
            "-partial_chain",
            "-trusted",
            path,
            path,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.returncode == 0


def test_signing_key_certificate_is_self_signed_through_the_token(
    token: SoftwareToken, openssl: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    key_id, info, cert = new_signing_key(token, KeyKind.INTERNAL, "MN", now)
    # The key is the token's, and the certificate is for it.
    assert key_id == info.key_id.upper()
    assert token.key(info.key_id).usage is KeyUsage.SIGNING
    assert cert.public_key() == info.public_key
    # cryptography: self-signed, signature valid, the profile of X-Road's configuration signing certificates.
    cert.verify_directly_issued_by(cert)
    assert cert.issuer == cert.subject
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "MN internal configuration signing"
    )
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == key_id
    assert cert.not_valid_before_utc == now - timedelta(minutes=5)
    assert cert.not_valid_after_utc == now + timedelta(days=20 * 365)
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == "sha256"
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert basic.critical
    assert not basic.value.ca
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.content_commitment
    assert not usage.value.key_cert_sign
    # openssl: the self-signature checks out; a certificate with one bit of its signature flipped does not.
    assert _openssl_verifies_self_signed(cert, openssl, tmp_path / "cert.pem")
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 1
    tampered = x509.load_der_x509_certificate(bytes(der))
    assert not _openssl_verifies_self_signed(tampered, openssl, tmp_path / "tampered.pem")


def test_self_signed_certificate_of_an_ec_key_after_2049(openssl: str, tmp_path: Path) -> None:
    """ECDSA, and GeneralizedTime for dates from 2050 (RFC 5280 §4.1.2.5)."""
    signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec")])
    start = datetime(2049, 6, 1, tzinfo=UTC)
    cert = self_signed_certificate(
        signer, name, not_before=start, not_after=start + timedelta(days=400), hash_name="sha384"
    )
    cert.verify_directly_issued_by(cert)
    assert cert.not_valid_after_utc == datetime(2050, 7, 6, tzinfo=UTC)
    assert len(cert.extensions) == 0
    validity = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))["tbs_certificate"][
        "validity"
    ]
    assert (validity["not_before"].name, validity["not_after"].name) == ("utc_time", "general_time")
    assert _openssl_verifies_self_signed(cert, openssl, tmp_path / "ec.pem")


def test_a_new_token_pin_is_asked_twice_and_must_match() -> None:
    answers = iter(["first", "second"])
    with pytest.raises(XRoadError) as differ:
        read_new_pin({}, ask=lambda _: next(answers), interactive=True)
    assert differ.value.code == "signer.token_pin_policy_failure"
    answers = iter(["same", "same"])
    assert read_new_pin({}, ask=lambda _: next(answers), interactive=True) == "same"
    assert read_new_pin({PIN_ENV: "from env"}, interactive=True) == "from env"
    with pytest.raises(XRoadError) as none:
        read_new_pin({}, interactive=False)
    assert none.value.code == "signer.login_failed"


def test_token_settings_section(tmp_path: Path) -> None:
    """``[token]`` names the token (default a software token in HOME/token); a PIN there is refused."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "registry.toml").write_text("")
    token = registry_token(load_registry_settings(home, env={}))
    assert isinstance(token, SoftwareToken)
    assert token.directory == home / "token"
    env = {"XROAD_MN_REGISTRY__TOKEN__DIRECTORY": str(tmp_path / "keys")}
    token = registry_token(load_registry_settings(home, env=env))
    assert isinstance(token, SoftwareToken)
    assert token.directory == tmp_path / "keys"
    (home / "registry.toml").write_text('[token]\ntype = "pkcs11"\nmodule = "/usr/lib/x.so"\nlabel = "cs"\n')
    assert isinstance(registry_token(load_registry_settings(home, env={})), Pkcs11Token)
    (home / "registry.toml").write_text('[token]\npin = "1234"\n')
    with pytest.raises(XRoadError) as pin:
        load_registry_settings(home, env={})
    assert pin.value.code == FaultCode.INVALID_SETTINGS
    assert "pin" in pin.value.message


# -- the PIN at start-up ---------------------------------------------------------------------------------


def test_registry_init_without_a_pin_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PIN_ENV)
    home = tmp_path / "home"
    code, out = _invoke("registry", "init", "--dir", str(home), "--instance", "MN")
    assert code == 1
    assert "signer.login_failed" in out
    assert PIN_ENV in out
    assert not home.exists()


def test_serve_with_a_wrong_or_missing_pin_fails_at_start_with_the_signer_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    code, out = _invoke("registry", "init", "--dir", str(home), "--instance", "MN")
    assert code == 0, out
    monkeypatch.setenv(PIN_ENV, "not the PIN")
    code, out = _invoke("registry", "serve", "--dir", str(home), "--admin-port", "0", "--public-port", "0")
    assert code == 1
    assert "signer.pin_incorrect" in out
    assert "Admin API" not in out  # it never served
    monkeypatch.delenv(PIN_ENV)
    code, out = _invoke("registry", "serve", "--dir", str(home), "--admin-port", "0", "--public-port", "0")
    assert code == 1
    assert "signer.login_failed" in out


async def test_run_registry_refuses_a_wrong_pin(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out = await asyncio.to_thread(_invoke, "registry", "init", "--dir", str(home), "--instance", "MN")
    assert code == 0, out
    settings = load_registry_settings(home, overrides={"admin_port": 0, "public_port": 0})
    with pytest.raises(XRoadError) as wrong:
        async with run_registry(settings, pin="wrong"):
            pytest.fail("the registry started with a wrong PIN")
    assert wrong.value.code == "signer.pin_incorrect"


# -- the migration that moves keys kept in clear into the token ------------------------------------------


def _old_signing_key(
    kind: KeyKind, now: datetime, fmt: serialization.PrivateFormat
) -> tuple[str, str, bytes]:
    """A key as the registry made it before r0004: id, unencrypted PEM, self-signed certificate (DER)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_id = f"OLD-{kind.value.upper()}"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"MN {kind.value} configuration signing")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=20 * 365))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()
    return key_id, pem, cert.public_bytes(serialization.Encoding.DER)


async def _database_text(engine: AsyncEngine) -> str:
    """Every row of every table, as text."""
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        out = []
        for table in tables:
            for row in await conn.execute(text(f'SELECT * FROM "{table}"')):
                out.append(repr(tuple(row)))
    return "\n".join(out)


def _signing_key_columns(engine_conn: Any) -> set[str]:
    return {c["name"] for c in inspect(engine_conn).get_columns("signing_keys")}


async def test_migration_r0004_moves_keys_in_clear_into_the_token(
    registry_db: AsyncEngine, tmp_path: Path
) -> None:
    # A registry at r0003 with its keys as the old code wrote them: PKCS#8 and traditional RSA PEM.
    async with registry_db.begin() as conn:
        await conn.run_sync(_downgrade, "r0003")
    await RegistryStore(registry_db).init_instance("MN")
    now = datetime.now(UTC)
    old = {
        KeyKind.INTERNAL: _old_signing_key(KeyKind.INTERNAL, now, serialization.PrivateFormat.PKCS8),
        KeyKind.EXTERNAL: _old_signing_key(
            KeyKind.EXTERNAL, now, serialization.PrivateFormat.TraditionalOpenSSL
        ),
    }
    async with registry_db.begin() as conn:
        for kind, (key_id, pem, cert_der) in old.items():
            await conn.execute(
                text(
                    "INSERT INTO signing_keys (kind, key_id, private_key_pem, cert_der, created_at, active) "
                    "VALUES (:kind, :key_id, :pem, :cert, :created_at, :active)"
                ),
                {
                    "kind": kind.value,
                    "key_id": key_id,
                    "pem": pem,
                    "cert": cert_der,
                    "created_at": now,
                    "active": True,
                },
            )
    assert "BEGIN RSA PRIVATE KEY" in await _database_text(registry_db)
    await registry_db.dispose()  # SQLite: checkpointed into the database file, as a registry left it
    if registry_db.dialect.name == "sqlite":
        assert _files_with_key_in_clear(tmp_path).strip() == str(tmp_path / "registry.db")

    # 1. Without a token the migration fails clearly, and the keys stay where they are.
    with pytest.raises(XRoadError) as no_token:
        await migrate(registry_db)
    assert no_token.value.code == "signer.token_not_active"
    assert "2 configuration signing key(s) in clear" in no_token.value.message
    async with registry_db.connect() as conn:
        assert "private_key_pem" in await conn.run_sync(_signing_key_columns)
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert version == "r0003"

    # 2. With the token (logged in when the migration asks for it) the keys move into it.
    token = SoftwareToken(tmp_path / "home" / "token")
    token.initialize(TOKEN_PIN)
    login = TokenLogin(token)  # the PIN from XROAD_MN_TOKEN_PIN, as `registry serve` reads it
    await migrate(registry_db, token=login)
    async with registry_db.connect() as conn:
        assert await conn.run_sync(_signing_key_columns) == {
            "id",
            "kind",
            "key_id",
            "token_key_id",
            "cert_der",
            "created_at",
            "active",
        }
        if registry_db.dialect.name == "sqlite":  # the table was rebuilt: its partial unique index kept
            index_sql = (
                await conn.execute(
                    text("SELECT sql FROM sqlite_master WHERE name = 'uq_signing_keys_active_kind'")
                )
            ).scalar_one()
            assert "WHERE active" in index_sql
    keys = await RegistryStore(registry_db).list_signing_keys()
    assert {k.key_id for k in keys} == {"OLD-INTERNAL", "OLD-EXTERNAL"}
    assert len(token.list_keys()) == 2
    for key in keys:
        # The same key: the token's public key is the certificate's, and what it signs the old key verifies.
        signer = token_signer(token, key.token_key_id)
        assert signer.public_key() == key.certificate.public_key()
        signature = signer.sign(b"data", SignatureScheme.RSA_PKCS1_SHA512)
        public = key.certificate.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(signature, b"data", padding.PKCS1v15(), hashes.SHA512())
        assert token.key(key.token_key_id).label == f"{key.key_id} {key.kind.value} configuration signing"
    # The keys open after a fresh login (they were written under the PIN), and nothing is in clear.
    token.logout()
    token.login(TOKEN_PIN)
    assert "PRIVATE KEY" not in await _database_text(registry_db)
    await migrate(registry_db, token=login)  # at head: nothing happens
    await registry_db.dispose()  # SQLite: the WAL is checkpointed into the file and removed
    _assert_no_key_in_clear(tmp_path)  # the token, and the SQLite database file (PostgreSQL: elsewhere)


async def test_migration_r0004_refuses_a_token_that_cannot_import(
    registry_db: AsyncEngine, tmp_path: Path
) -> None:
    """A PKCS#11 token (or anything but the software token) cannot take keys in: nothing changes."""
    async with registry_db.begin() as conn:
        await conn.run_sync(_downgrade, "r0003")
    await RegistryStore(registry_db).init_instance("MN")
    key_id, pem, cert_der = _old_signing_key(
        KeyKind.INTERNAL, datetime.now(UTC), serialization.PrivateFormat.PKCS8
    )
    async with registry_db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO signing_keys (kind, key_id, private_key_pem, cert_der, created_at, active) "
                "VALUES ('internal', :key_id, :pem, :cert, :now, :active)"
            ),
            {"key_id": key_id, "pem": pem, "cert": cert_der, "now": datetime.now(UTC), "active": True},
        )

    class NotSoftware:
        """A token that is not a software token (the protocol's methods are not needed to refuse it)."""

    with pytest.raises(XRoadError) as refused:
        await migrate(registry_db, token=lambda: NotSoftware())  # type: ignore[arg-type,return-value]
    assert refused.value.code == "signer.token_not_available"
    async with registry_db.connect() as conn:
        assert "private_key_pem" in await conn.run_sync(_signing_key_columns)


async def test_a_registry_from_before_tokens_moves_its_keys_into_a_new_token_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old home: keys in clear in its database and no token. Without a PIN it does not start and keeps
    its keys; with one the software token is created, the keys move into it, and they sign."""
    home = tmp_path / "home"
    create_home(home, {"admin_port": 0, "public_port": 0})
    settings = load_registry_settings(home)
    await migrate(settings.database(), "r0003")
    engine = create_engine(settings.database())
    store = RegistryStore(engine)
    await store.init_instance("MN")
    await store.add_member_class("GOV", "Government")
    owner = MemberId("MN", "GOV", "1")
    await store.add_member(owner, "Registry")
    await store.add_subsystem(owner.subsystem("MANAGEMENT"), None)
    await store.update_settings(
        management_service_provider=owner.subsystem("MANAGEMENT"),
        management_service_address="http://127.0.0.1/managementservice/",
    )
    now = datetime.now(UTC)
    old = {kind: _old_signing_key(kind, now, serialization.PrivateFormat.PKCS8) for kind in KeyKind}
    async with engine.begin() as conn:
        for kind, (key_id, pem, cert_der) in old.items():
            await conn.execute(
                text(
                    "INSERT INTO signing_keys (kind, key_id, private_key_pem, cert_der, created_at, active) "
                    "VALUES (:kind, :key_id, :pem, :cert, :now, :active)"
                ),
                {
                    "kind": kind.value,
                    "key_id": key_id,
                    "pem": pem,
                    "cert": cert_der,
                    "now": now,
                    "active": True,
                },
            )
    await engine.dispose()

    monkeypatch.delenv(PIN_ENV)
    with pytest.raises(XRoadError) as no_pin:
        async with run_registry(settings):
            pytest.fail("started without a PIN")
    assert no_pin.value.code == "signer.login_failed"
    assert _files_with_key_in_clear(home).strip() == str(home / "registry.db")  # the keys are kept

    monkeypatch.setenv(PIN_ENV, TOKEN_PIN)
    internal_cert = x509.load_der_x509_certificate(old[KeyKind.INTERNAL][2])
    async with run_registry(settings) as running, aiohttp.ClientSession() as session:
        assert len(running.app[TOKEN_KEY].list_keys()) == 2
        async with session.get(running.public_url + "/internalconf") as resp:
            directory = parse_signed_directory(await resp.read(), resp.headers.get("Content-Type"))
        assert verify_signed_directory(directory, [internal_cert], at=datetime.now(UTC)) == internal_cert
    assert (home / "token" / "pin.json").is_file()
    _assert_no_key_in_clear(home)


# -- no private key in clear after init, serve and a key rotation -----------------------------------------


@pytest.fixture
def home(tmp_path: Path, database: dict[str, Any]) -> Path:
    home = tmp_path / "registry"
    options = []
    if database:
        options = [
            "--database-url",
            database["database_url"],
            "--database-schema",
            database["database_schema"],
        ]
    code, out = _invoke("registry", "init", "--dir", str(home), "--instance", "MN", *options)
    assert code == 0, out
    return home


async def test_no_private_key_in_clear_after_init_serve_and_rotation(home: Path) -> None:
    _assert_no_key_in_clear(home)
    settings = load_registry_settings(home, overrides={"admin_port": 0, "public_port": 0})
    api_key = create_api_key(settings.api_keys_path(), ADMIN_ROLES, datetime.now(UTC)).token
    auth = {"Authorization": f"X-Road-ApiKey token={api_key}"}
    async with run_registry(settings) as running, aiohttp.ClientSession() as session:
        api = running.admin_url + "/api/v1"
        # Rotation: a new internal key (made in the token), then activated; the old one is replaced.
        async with session.post(
            api + "/configuration-signing-keys", json={"kind": "internal"}, headers=auth
        ) as resp:
            assert resp.status == 201, await resp.text()
            new_key = json.loads(await resp.text())
        async with session.post(
            api + f"/configuration-signing-keys/{new_key['key_id']}/activate", headers=auth
        ) as resp:
            assert resp.status == 200, await resp.text()
        async with session.post(api + "/global-configuration/regenerate", headers=auth) as resp:
            assert resp.status == 200, await resp.text()
        # A pending key deleted leaves the token too: the token holds exactly the database's keys.
        async with session.post(
            api + "/configuration-signing-keys", json={"kind": "external"}, headers=auth
        ) as resp:
            assert resp.status == 201, await resp.text()
            pending = json.loads(await resp.text())
        async with session.delete(
            api + f"/configuration-signing-keys/{pending['key_id']}", headers=auth
        ) as resp:
            assert resp.status == 204, await resp.text()
        stored = await running.app[STORE_KEY].list_signing_keys()
        token = running.app[TOKEN_KEY]
        assert sorted(k.token_key_id for k in stored) == sorted(k.key_id for k in token.list_keys())
        # The configuration is signed through the token by the new key.
        keys = await running.app[STORE_KEY].list_signing_keys(KeyKind.INTERNAL)
        assert [k.key_id for k in keys] == [new_key["key_id"]]
        async with session.get(running.public_url + "/" + DIRECTORY_NAMES[KeyKind.INTERNAL]) as resp:
            body = await resp.read()
            directory = parse_signed_directory(body, resp.headers.get("Content-Type"))
        assert verify_signed_directory(directory, [keys[0].certificate], at=datetime.now(UTC)) == (
            keys[0].certificate
        )
    _assert_no_key_in_clear(home)
