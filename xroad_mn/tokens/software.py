"""The software token: private keys as PIN-encrypted PKCS#8 files, X-Road's softtoken equivalent.

A directory (mode 0700) holds::

    pin.json        PBKDF2-HMAC-SHA256 verifier of the PIN (salt, iterations, derived key), 0600
    keys.json       labels, usages, algorithms and public keys: nothing secret, 0600
    <key id>.p8     PEM "ENCRYPTED PRIVATE KEY": PKCS#8 under PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), 0600

Every file is written crash-safe through :func:`xroad_mn.fileio.write_atomic`. A private key is never
written in clear: it is encrypted in memory before its file is created. The key derivation uses
:data:`KDF_ITERATIONS` rounds (``cryptography``'s own PKCS#8 encryption uses 2,048, too few for a PIN), and
OpenSSL reads the files (``openssl pkey -in <id>.p8 -passin env:PIN``).

    >>> import tempfile
    >>> from pathlib import Path
    >>> from xroad_mn.keys import SignatureScheme
    >>> token = SoftwareToken(Path(tempfile.mkdtemp()) / "token")
    >>> token.initialize("1234")
    >>> token.login("1234")
    >>> key = token.generate_key("sign key", KeyUsage.SIGNING)
    >>> len(token.sign(key.key_id, SignatureScheme.RSA_PKCS1_SHA512, b"data"))
    256
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any, Final

from asn1crypto import algos as asn1_algos
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from xroad_mn.algorithms import SignatureScheme, sign
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import write_atomic
from xroad_mn.keys import PrivateKey, PublicKey, key_type
from xroad_mn.tokens.base import (
    KeyAlgorithm,
    KeyInfo,
    KeyUsage,
    TokenInfo,
    TokenState,
    TokenType,
    algorithm_of,
    check_label,
    signer_error,
)

__all__ = ["KDF_ITERATIONS", "SoftwareToken"]

KDF_ITERATIONS: Final = 600_000
"""PBKDF2-HMAC-SHA256 rounds from the PIN to a key-encryption key (OWASP's 2023 figure; ~0.1 s)."""
MIN_KDF_ITERATIONS: Final = 100_000
"""Fewest rounds a token accepts in its own files: fewer would be a downgraded or tampered file."""
MAX_PIN_CHARS: Final = 256
MAX_METADATA_BYTES: Final = 4 * 1024 * 1024
MAX_KEY_FILE_BYTES: Final = 64 * 1024

PIN_FILE: Final = "pin.json"
KEYS_FILE: Final = "keys.json"
KEY_SUFFIX: Final = ".p8"
_FORMAT: Final = 1
_KEY_ID: Final = re.compile(r"^[0-9a-f]{40}$")
_SALT_BYTES: Final = 16


def _derive(pin: str, salt: bytes, iterations: int) -> bytes:
    return PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations).derive(pin.encode("utf-8"))


def _encrypt_pkcs8(key: PrivateKey, pin: str, iterations: int) -> bytes:
    """PEM ``ENCRYPTED PRIVATE KEY``: PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (RFC 8018)."""
    plain = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, iv = secrets.token_bytes(_SALT_BYTES), secrets.token_bytes(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_derive(pin, salt, iterations)), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    info = asn1_keys.EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {
                "algorithm": "pbes2",
                "parameters": {
                    "key_derivation_func": {
                        "algorithm": "pbkdf2",
                        "parameters": {
                            "salt": asn1_algos.Pbkdf2Salt(name="specified", value=salt),
                            "iteration_count": iterations,
                            "prf": {"algorithm": "sha256"},
                        },
                    },
                    "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv},
                },
            },
            "encrypted_data": encrypted,
        }
    )
    armored: bytes = asn1_pem.armor("ENCRYPTED PRIVATE KEY", info.dump())
    return armored


def _public_pem(key: PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _spki(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _generate(algorithm: KeyAlgorithm) -> PrivateKey:
    if algorithm is KeyAlgorithm.EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=algorithm.rsa_bits)


def _parse_json(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_METADATA_BYTES:
        raise ValueError("too large")
    parsed = json.loads(data)
    if not isinstance(parsed, dict) or parsed.get("format") != _FORMAT:
        raise ValueError("not a token file of a known format")
    return parsed


def _parse_key_record(record: dict[str, str]) -> KeyInfo:
    key_id = record["id"]
    if not _KEY_ID.match(key_id):
        raise ValueError(f"bad key id {key_id!r}")
    public = serialization.load_pem_public_key(record["public_key"].encode("ascii"))
    if not isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ValueError("neither RSA nor EC")  # noqa: TRY004 (a malformed file, not a caller's type)
    algorithm = KeyAlgorithm(record["algorithm"])
    if algorithm_of(public) is not algorithm:
        raise ValueError(f"public key is not {algorithm.value}")
    return KeyInfo(key_id, check_label(record["label"]), KeyUsage(record["usage"]), algorithm, public)


def _parse_pin_record(record: dict[str, Any]) -> tuple[int, bytes, bytes]:
    if record.get("kdf") != "pbkdf2-sha256":
        raise ValueError("unknown key derivation")
    iterations = int(record["iterations"])
    salt = base64.b64decode(record["salt"], validate=True)
    verifier = base64.b64decode(record["verifier"], validate=True)
    if iterations < MIN_KDF_ITERATIONS or len(salt) < _SALT_BYTES or len(verifier) != 32:
        raise ValueError("weaker than this token accepts")
    return iterations, salt, verifier


def _check_kdf(pem_data: bytes) -> None:
    """Refuse a key file that is not PBES2 with enough rounds (a planted weak or clear file)."""
    if len(pem_data) > MAX_KEY_FILE_BYTES:
        raise ValueError("key file too large")
    kind, _, der = asn1_pem.unarmor(pem_data)
    if kind != "ENCRYPTED PRIVATE KEY":
        raise ValueError(f"key file holds {kind!r}")
    algorithm = asn1_keys.EncryptedPrivateKeyInfo.load(der)["encryption_algorithm"]
    if algorithm["algorithm"].native != "pbes2" or algorithm.kdf_iterations < MIN_KDF_ITERATIONS:
        raise ValueError("key file is encrypted more weakly than this token accepts")


class SoftwareToken:
    """Keys in PIN-encrypted files under ``directory``; one process owns a token directory at a time."""

    def __init__(self, directory: Path, *, label: str = "softToken-0") -> None:
        self.directory = directory
        self.label = label
        self._lock = threading.RLock()
        self._pin: str | None = None
        self._unlocked: dict[str, PrivateKey] = {}

    def __repr__(self) -> str:
        return f"SoftwareToken({str(self.directory)!r})"

    # -- files ------------------------------------------------------------------------------------------

    def _read_json(self, name: str) -> dict[str, Any]:
        path = self.directory / name
        try:
            with path.open("rb") as f:
                data = f.read(MAX_METADATA_BYTES + 1)
        except FileNotFoundError:
            raise signer_error(
                FaultCode.TOKEN_NOT_INITIALIZED, f"software token {self.directory} is not initialized"
            ) from None
        except OSError as e:
            raise XRoadError(FaultCode.IO_ERROR, f"cannot read {path}: {e.strerror or e}") from e
        try:
            return _parse_json(data)
        except ValueError as e:
            raise XRoadError(FaultCode.INTERNAL_ERROR, f"token file {path} is unreadable: {e}") from e

    def _write_json(self, name: str, content: dict[str, Any]) -> None:
        data = json.dumps({"format": _FORMAT, **content}, indent=2, sort_keys=True).encode() + b"\n"
        write_atomic(self.directory / name, data, mode=0o600)

    def _key_records(self) -> list[dict[str, str]]:
        records = self._read_json(KEYS_FILE).get("keys")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise XRoadError(
                FaultCode.INTERNAL_ERROR, f"token file {self.directory / KEYS_FILE} has no key list"
            )
        return records

    @staticmethod
    def _key_info(record: dict[str, str]) -> KeyInfo:
        try:
            return _parse_key_record(record)
        except (KeyError, ValueError, TypeError, XRoadError) as e:
            raise XRoadError(
                FaultCode.INTERNAL_ERROR, f"malformed key record in the software token: {e}"
            ) from e

    def _pin_matches(self, pin: str) -> bool:
        record = self._read_json(PIN_FILE)
        try:
            iterations, salt, verifier = _parse_pin_record(record)
        except (KeyError, ValueError, TypeError) as e:
            raise XRoadError(
                FaultCode.INTERNAL_ERROR, f"PIN file of the software token is unusable: {e}"
            ) from e
        return hmac.compare_digest(_derive(pin, salt, iterations), verifier)

    def _load_key(self, info: KeyInfo, pin: str) -> PrivateKey:
        path = self.directory / f"{info.key_id}{KEY_SUFFIX}"
        try:
            with path.open("rb") as f:
                data = f.read(MAX_KEY_FILE_BYTES + 1)
        except OSError as e:
            raise signer_error(
                FaultCode.LOGIN_FAILED,
                f"cannot read key {info.key_id}: {e.strerror or e}",
                key_id=info.key_id,
            ) from e
        try:
            _check_kdf(data)
        except (ValueError, TypeError) as e:
            raise signer_error(
                FaultCode.LOGIN_FAILED, f"key file of {info.key_id} is refused: {e}", key_id=info.key_id
            ) from e
        try:
            key = serialization.load_pem_private_key(data, password=pin.encode("utf-8"))
        except (ValueError, TypeError) as e:
            raise signer_error(
                FaultCode.LOGIN_FAILED,
                f"key {info.key_id} does not open with the token's PIN",
                key_id=info.key_id,
            ) from e
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) or _spki(
            key.public_key()
        ) != _spki(info.public_key):
            raise signer_error(
                FaultCode.LOGIN_FAILED,
                f"key file {path.name} does not hold the listed key",
                key_id=info.key_id,
            )
        return key

    # -- Token ------------------------------------------------------------------------------------------

    def initialize(self, pin: str) -> None:
        """Create the token directory (0700) with ``pin``; ``conflict`` when it is already initialized."""
        if not pin or len(pin) > MAX_PIN_CHARS or not pin.isprintable():
            raise signer_error(
                FaultCode.TOKEN_PIN_POLICY_FAILURE,
                f"the PIN must be 1 to {MAX_PIN_CHARS} printable characters",
            )
        with self._lock:
            if (self.directory / PIN_FILE).exists():
                raise XRoadError(
                    FaultCode.CONFLICT, f"software token {self.directory} is already initialized"
                )
            try:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(self.directory, 0o700)
            except OSError as e:
                raise XRoadError(
                    FaultCode.IO_ERROR, f"cannot create {self.directory}: {e.strerror or e}"
                ) from e
            salt = secrets.token_bytes(_SALT_BYTES)
            if not (self.directory / KEYS_FILE).exists():
                self._write_json(KEYS_FILE, {"keys": []})
            self._write_json(
                PIN_FILE,
                {
                    "kdf": "pbkdf2-sha256",
                    "iterations": KDF_ITERATIONS,
                    "salt": base64.b64encode(salt).decode(),
                    "verifier": base64.b64encode(_derive(pin, salt, KDF_ITERATIONS)).decode(),
                },
            )

    def info(self) -> TokenInfo:
        with self._lock:
            if not (self.directory / PIN_FILE).exists():
                return TokenInfo(TokenType.SOFTWARE, self.label, TokenState.NOT_INITIALIZED, 0)
            state = TokenState.LOGGED_IN if self._pin is not None else TokenState.LOGGED_OUT
            return TokenInfo(TokenType.SOFTWARE, self.label, state, len(self._key_records()))

    def login(self, pin: str) -> None:
        with self._lock:
            if not self._pin_matches(pin):
                raise signer_error(FaultCode.PIN_INCORRECT, "the PIN of the software token is incorrect")
            unlocked = {info.key_id: self._load_key(info, pin) for info in self.list_keys()}
            self._pin, self._unlocked = pin, unlocked

    def logout(self) -> None:
        with self._lock:
            self._pin, self._unlocked = None, {}

    def list_keys(self) -> list[KeyInfo]:
        with self._lock:
            return [self._key_info(record) for record in self._key_records()]

    def key(self, key_id: str) -> KeyInfo:
        for info in self.list_keys():
            if info.key_id == key_id:
                return info
        raise signer_error(FaultCode.KEY_NOT_FOUND, f"key {key_id[:80]!r} not found", key_id=key_id[:80])

    def _require_pin(self) -> str:
        if self._pin is None:
            raise signer_error(FaultCode.TOKEN_NOT_ACTIVE, f"software token {self.label} is not logged in")
        return self._pin

    def generate_key(
        self, label: str, usage: KeyUsage, algorithm: KeyAlgorithm = KeyAlgorithm.RSA_2048
    ) -> KeyInfo:
        check_label(label)
        usage, algorithm = KeyUsage(usage), KeyAlgorithm(algorithm)
        self._require_pin()  # before the work of making a key; checked again under the lock
        return self._store(_generate(algorithm), label, usage, algorithm)

    def import_key(self, private: PrivateKey, label: str, usage: KeyUsage) -> KeyInfo:
        """Take an existing private key into the token, written PIN-encrypted like a generated one.

        Not part of :class:`~xroad_mn.tokens.base.Token`, and used only to re-wrap keys that were kept
        in clear before tokens existed (the registry's migration of its configuration signing keys).
        ``signer.failed_to_generate_private_key`` for a kind of key the token does not hold.
        """
        check_label(label)
        algorithm = algorithm_of(private.public_key())
        if algorithm is None:
            raise signer_error(
                FaultCode.FAILED_TO_GENERATE_PRIVATE_KEY,
                "the key is neither RSA-2048, RSA-3072 nor EC P-256",
            )
        self._require_pin()
        return self._store(private, label, KeyUsage(usage), algorithm)

    def _store(self, private: PrivateKey, label: str, usage: KeyUsage, algorithm: KeyAlgorithm) -> KeyInfo:
        with self._lock:
            pin = self._require_pin()
            key_id = secrets.token_hex(20)
            info = KeyInfo(key_id, label, usage, algorithm, private.public_key())
            records = self._key_records()
            # The key file first: a crash before the list is written leaves an unlisted file, never a listed
            # key without its file.
            write_atomic(
                self.directory / f"{key_id}{KEY_SUFFIX}",
                _encrypt_pkcs8(private, pin, KDF_ITERATIONS),
                mode=0o600,
            )
            records.append(
                {
                    "id": key_id,
                    "label": label,
                    "usage": usage.value,
                    "algorithm": algorithm.value,
                    "public_key": _public_pem(info.public_key),
                }
            )
            self._write_json(KEYS_FILE, {"keys": records})
            self._unlocked[key_id] = private
            return info

    def delete_key(self, key_id: str) -> None:
        with self._lock:
            self._require_pin()
            info = self.key(key_id)
            self._write_json(KEYS_FILE, {"keys": [r for r in self._key_records() if r.get("id") != key_id]})
            self._unlocked.pop(key_id, None)
            try:
                (self.directory / f"{info.key_id}{KEY_SUFFIX}").unlink(missing_ok=True)
            except OSError as e:
                raise signer_error(
                    FaultCode.FAILED_TO_DELETE_KEY, f"cannot delete key file {key_id}: {e.strerror or e}"
                ) from e

    def tls_authentication_key_pem(self, key_id: str) -> bytes:
        """The private half of the authentication key ``key_id`` as clear PKCS#8 PEM, for a TLS library
        that reads keys only from files (Python's ``ssl``): the caller keeps it in memory only.

        Not part of :class:`~xroad_mn.tokens.base.Token`: X-Road keeps the security server's TLS
        authentication keys on the software token, and only those leave it. A signing key, or a key
        without our usage mark, is ``signer.wrong_cert_usage`` and never leaves the token.
        """
        info = self.key(key_id)
        if info.usage is not KeyUsage.AUTHENTICATION:
            raise signer_error(
                FaultCode.WRONG_CERT_USAGE,
                f"key {key_id} is not an authentication key: only TLS authentication keys leave the token",
                key_id=key_id,
            )
        with self._lock:
            pin = self._require_pin()
            private = self._unlocked.get(key_id)
            if private is None:
                private = self._unlocked[key_id] = self._load_key(info, pin)
        return private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def sign(self, key_id: str, scheme: SignatureScheme, data: bytes) -> bytes:
        with self._lock:
            pin = self._require_pin()
            private = self._unlocked.get(key_id)
            if private is None:  # generated by another process since login (e.g. the CLI)
                info = self.key(key_id)
                private = self._unlocked[key_id] = self._load_key(info, pin)
        if scheme.key_type != key_type(private):
            raise signer_error(
                FaultCode.CANNOT_SIGN, f"key {key_id} cannot sign with {scheme.value}", key_id=key_id
            )
        try:
            return sign(private, scheme, data)
        except XRoadError as e:
            raise signer_error(FaultCode.CANNOT_SIGN, e.message, key_id=key_id) from e
