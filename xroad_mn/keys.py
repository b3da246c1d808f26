"""Signing without key bytes: the :class:`Signer` protocol, its signature schemes, and in-memory keys.

Code that signs (XAdES message signatures, global configuration directories, management requests, CSRs)
takes either a ``cryptography`` private key or a :class:`Signer`: anything with ``public_key()`` and
``sign(data, scheme)``. A token's key (:mod:`xroad_mn.tokens`) is a :class:`Signer` whose private key never
leaves the token::

    >>> from cryptography.hazmat.primitives.asymmetric import ec
    >>> signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    >>> value = sign_data(signer, SignatureScheme.ECDSA_SHA256, b"data")
    >>> key_type(signer), scheme_for("ec", "sha512")
    ('ec', <SignatureScheme.ECDSA_SHA512: 'ecdsa-sha512'>)

A scheme signs the data itself (the signer hashes it). ECDSA values are DER ``SEQUENCE {r, s}``, as X.509,
CMS and Java's ``SHA256withECDSA`` produce; XML-DSig's raw ``r‖s`` form is the XAdES layer's business. RSA-PSS
is X-Road's ``SHA512withRSAandMGF1``: MGF1 with the same hash and a salt as long as the digest.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal, Protocol, TypeAlias

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from xroad_mn.errors import FaultCode, XRoadError

__all__ = [
    "KeyOrSigner",
    "KeyType",
    "PrivateKey",
    "PrivateKeySigner",
    "PublicKey",
    "SignatureScheme",
    "Signer",
    "key_type",
    "scheme_for",
    "sign_data",
]

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
KeyType = Literal["rsa", "ec"]
HashName = Literal["sha256", "sha384", "sha512"]


class SignatureScheme(StrEnum):
    """How a signature is made: key type, padding and hash. The signer hashes the data itself."""

    RSA_PKCS1_SHA256 = "rsa-pkcs1-sha256"
    RSA_PKCS1_SHA384 = "rsa-pkcs1-sha384"
    RSA_PKCS1_SHA512 = "rsa-pkcs1-sha512"
    RSA_PSS_SHA256 = "rsa-pss-sha256"
    RSA_PSS_SHA384 = "rsa-pss-sha384"
    RSA_PSS_SHA512 = "rsa-pss-sha512"
    ECDSA_SHA256 = "ecdsa-sha256"
    ECDSA_SHA384 = "ecdsa-sha384"
    ECDSA_SHA512 = "ecdsa-sha512"

    @property
    def key_type(self) -> KeyType:
        """The kind of key that can make this signature."""
        return "ec" if self.value.startswith("ecdsa") else "rsa"

    @property
    def is_pss(self) -> bool:
        return self.value.startswith("rsa-pss")

    @property
    def hash_name(self) -> HashName:
        """``hashlib`` name of the scheme's digest."""
        return _HASH_NAMES[self.value.rsplit("-", 1)[1]]

    def hash_algorithm(self) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
        """The scheme's digest as a ``cryptography`` hash algorithm."""
        return _HASHES[self.hash_name]()


_HASH_NAMES: Final[dict[str, HashName]] = {"sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}
_HASHES: Final[dict[HashName, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class Signer(Protocol):
    """A private key that signs but is never seen: a token's key, or an in-memory key behind an adapter.

    ``sign`` may block (an HSM round trip, RSA arithmetic): async callers run it in a worker thread, and
    sign once per drained batch (:func:`xroad_mn.signature.sign_batch`), as X-Road's batch signer does.
    """

    def public_key(self) -> PublicKey:
        """The public half of the key."""
        ...

    def sign(self, data: bytes, scheme: SignatureScheme) -> bytes:
        """Sign ``data`` (hashed by the signer) with ``scheme``; :class:`XRoadError` when it cannot."""
        ...


KeyOrSigner: TypeAlias = PrivateKey | Signer
"""What signing code accepts: a ``cryptography`` private key (as before) or a :class:`Signer`."""


def _cannot_sign(scheme: SignatureScheme, what: str) -> XRoadError:
    return XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, f"{what} cannot sign with {scheme.value}")


def _sign_with_private_key(key: PrivateKey, scheme: SignatureScheme, data: bytes) -> bytes:
    hash_alg = scheme.hash_algorithm()
    if isinstance(key, rsa.RSAPrivateKey) and scheme.key_type == "rsa":
        if scheme.is_pss:
            return key.sign(data, padding.PSS(padding.MGF1(hash_alg), hash_alg.digest_size), hash_alg)
        return key.sign(data, padding.PKCS1v15(), hash_alg)
    if isinstance(key, ec.EllipticCurvePrivateKey) and scheme.key_type == "ec":
        return key.sign(data, ec.ECDSA(hash_alg))
    raise _cannot_sign(scheme, f"a {type(key).__name__}")


class PrivateKeySigner:
    """A :class:`Signer` over an in-memory ``cryptography`` private key (tests, and keys already loaded)."""

    __slots__ = ("_key",)

    def __init__(self, key: PrivateKey) -> None:
        self._key = key

    def __repr__(self) -> str:
        return f"PrivateKeySigner({key_type(self)})"

    def public_key(self) -> PublicKey:
        return self._key.public_key()

    def sign(self, data: bytes, scheme: SignatureScheme) -> bytes:
        return _sign_with_private_key(self._key, scheme, data)


def sign_data(key: KeyOrSigner, scheme: SignatureScheme, data: bytes) -> bytes:
    """Sign ``data`` with a private key or a :class:`Signer`; ``cannot_create_signature`` on a mismatch."""
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return _sign_with_private_key(key, scheme, data)
    if scheme.key_type != key_type(key):
        raise _cannot_sign(scheme, f"a {key_type(key).upper()} key")
    return key.sign(data, scheme)


def key_type(key: KeyOrSigner | PublicKey) -> KeyType:
    """``rsa`` or ``ec``, for a private key, a public key or a :class:`Signer`."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ec"
    return "rsa" if isinstance(key.public_key(), rsa.RSAPublicKey) else "ec"


def scheme_for(kind: KeyType, hash_name: str, *, pss: bool = False) -> SignatureScheme:
    """The scheme for a key type and hash (``sha256``/``sha384``/``sha512``); PSS only for RSA."""
    if hash_name not in _HASH_NAMES or (pss and kind != "rsa"):
        what = f"{kind} with {hash_name}{' and PSS' if pss else ''}"
        raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, f"no signature scheme for {what}")
    if kind == "ec":
        return SignatureScheme(f"ecdsa-{hash_name}")
    return SignatureScheme(f"rsa-{'pss' if pss else 'pkcs1'}-{hash_name}")
