"""What every token offers: the :class:`Token` protocol, its key and token descriptions, its errors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from xroad_mn.algorithms import KeyType, SignatureScheme
from xroad_mn.errors import FaultCode, FaultPrefix, XRoadError
from xroad_mn.keys import PublicKey

__all__ = [
    "KeyAlgorithm",
    "KeyInfo",
    "KeyUsage",
    "Token",
    "TokenInfo",
    "TokenSigner",
    "TokenState",
    "TokenType",
    "algorithm_of",
    "check_label",
    "check_scheme",
    "signer_error",
    "token_signer",
]

MAX_LABEL_CHARS: Final = 100
"""Longest key label (X-Road's UI allows 255; PKCS#11 tokens hold less after our usage prefix)."""
_LABEL_OK: Final = re.compile(r"^[^\x00-\x1f\x7f]*$")


class KeyUsage(StrEnum):
    """What a key is for: TLS authentication of the security server, or signing messages (X-Road's usages)."""

    AUTHENTICATION = "auth"
    SIGNING = "sign"


class KeyAlgorithm(StrEnum):
    """Key types a token generates; RSA-2048 is X-Road's default."""

    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    EC_P256 = "ec-p256"

    @property
    def key_type(self) -> KeyType:
        return "ec" if self is KeyAlgorithm.EC_P256 else "rsa"

    @property
    def rsa_bits(self) -> int:
        return {KeyAlgorithm.RSA_2048: 2048, KeyAlgorithm.RSA_3072: 3072}.get(self, 0)


class TokenType(StrEnum):
    SOFTWARE = "software"
    PKCS11 = "pkcs11"


class TokenState(StrEnum):
    """``not_initialized``: no PIN set yet; ``logged_out``: keys listed but unusable; ``logged_in``: signs."""

    NOT_INITIALIZED = "not_initialized"
    LOGGED_OUT = "logged_out"
    LOGGED_IN = "logged_in"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key in a token, as callers see it: never its private half."""

    key_id: str
    """Lower-case hex; the file name of a software key, ``CKA_ID`` of a PKCS#11 key."""
    label: str
    usage: KeyUsage | None
    """``None`` for a key the token holds without our usage mark (e.g. made by another tool)."""
    algorithm: KeyAlgorithm
    public_key: PublicKey = field(repr=False, compare=False)

    @property
    def default_scheme(self) -> SignatureScheme:
        """The scheme a CSR for this key is signed with: SHA-256, as X-Road's CSR digest default."""
        return (
            SignatureScheme.ECDSA_SHA256
            if self.algorithm.key_type == "ec"
            else SignatureScheme.RSA_PKCS1_SHA256
        )


@dataclass(frozen=True, slots=True)
class TokenInfo:
    type: TokenType
    label: str
    state: TokenState
    key_count: int


class Token(Protocol):
    """A store of private keys that signs with them and never gives them out.

    Every method is synchronous and may block (file or HSM I/O, RSA arithmetic, key derivation from the
    PIN): async code runs them with ``asyncio.to_thread``. Implementations are safe to call from several
    threads. Signing needs the token logged in; listing keys does not.
    """

    def info(self) -> TokenInfo: ...

    def login(self, pin: str) -> None:
        """Unlock the keys; ``signer.pin_incorrect`` for a wrong PIN."""
        ...

    def logout(self) -> None:
        """Forget the PIN and every unlocked key; idempotent."""
        ...

    def list_keys(self) -> list[KeyInfo]: ...

    def key(self, key_id: str) -> KeyInfo:
        """The key ``key_id``; ``signer.key_not_found`` when the token has none."""
        ...

    def generate_key(
        self, label: str, usage: KeyUsage, algorithm: KeyAlgorithm = KeyAlgorithm.RSA_2048
    ) -> KeyInfo: ...

    def sign(self, key_id: str, scheme: SignatureScheme, data: bytes) -> bytes:
        """Sign ``data`` (hashed inside) with the key ``key_id``; ECDSA values are DER."""
        ...

    def delete_key(self, key_id: str) -> None: ...


def signer_error(code: FaultCode, message: str, **details: str) -> XRoadError:
    """An error of the signer, coded ``signer.<code>`` as X-Road's signer codes its errors."""
    return XRoadError(f"{FaultPrefix.SIGNER}.{code}", message, details=details)


def check_label(label: str) -> str:
    if len(label) > MAX_LABEL_CHARS or not _LABEL_OK.match(label):
        raise signer_error(
            FaultCode.FAILED_TO_GENERATE_PRIVATE_KEY,
            f"a key label is at most {MAX_LABEL_CHARS} characters without control characters",
        )
    return label


def check_scheme(info: KeyInfo, scheme: SignatureScheme) -> None:
    if scheme.key_type != info.algorithm.key_type:
        raise signer_error(
            FaultCode.CANNOT_SIGN,
            f"key {info.key_id} ({info.algorithm.value}) cannot sign with {scheme.value}",
            key_id=info.key_id,
        )


@dataclass(frozen=True, slots=True)
class TokenSigner:
    """One key of a token as a :class:`xroad_mn.algorithms.Signer`: what signing code takes instead of a key.

    ``SigningKey(token_signer(token, key_id), certificate, ocsp)`` signs XAdES through the token.
    """

    token: Token
    key_id: str
    _public_key: PublicKey = field(repr=False)

    def public_key(self) -> PublicKey:
        return self._public_key

    def sign(self, data: bytes, scheme: SignatureScheme) -> bytes:
        return self.token.sign(self.key_id, scheme, data)


def token_signer(token: Token, key_id: str) -> TokenSigner:
    """The key ``key_id`` of ``token`` as a signer; ``signer.key_not_found`` when there is none."""
    info = token.key(key_id)
    return TokenSigner(token, info.key_id, info.public_key)


def algorithm_of(public_key: PublicKey) -> KeyAlgorithm | None:
    """The :class:`KeyAlgorithm` of a public key, or ``None`` for a kind of key we do not use."""
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size in (2048, 3072):
        return KeyAlgorithm.RSA_2048 if public_key.key_size == 2048 else KeyAlgorithm.RSA_3072
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1):
        return KeyAlgorithm.EC_P256
    return None
