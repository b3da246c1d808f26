"""Signing without key bytes: what signing code accepts, and an in-memory key behind the Signer protocol.

Code that signs (XAdES message signatures, global configuration directories, management requests, CSRs)
takes either a ``cryptography`` private key or a :class:`~xroad_mn.algorithms.Signer`: anything with
``public_key()`` and ``sign(data, scheme)``. A token's key (:mod:`xroad_mn.tokens`) is a signer whose
private key never leaves the token. Schemes and the one ``sign`` live in :mod:`xroad_mn.algorithms`::

    >>> from cryptography.hazmat.primitives.asymmetric import ec
    >>> from xroad_mn.algorithms import SignatureScheme, sign
    >>> signer = PrivateKeySigner(ec.generate_private_key(ec.SECP256R1()))
    >>> value = sign(signer, SignatureScheme.ECDSA_SHA256, b"data")
    >>> key_type(signer)
    'ec'
"""

from __future__ import annotations

from typing import TypeAlias

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from xroad_mn.algorithms import KeyType, SignatureScheme, Signer, sign

__all__ = ["KeyOrSigner", "PrivateKey", "PrivateKeySigner", "PublicKey", "key_type"]

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
KeyOrSigner: TypeAlias = PrivateKey | Signer
"""What signing code accepts: a ``cryptography`` private key or a :class:`~xroad_mn.algorithms.Signer`."""


class PrivateKeySigner:
    """A :class:`~xroad_mn.algorithms.Signer` over an in-memory ``cryptography`` private key (tests, and keys
    already loaded)."""

    __slots__ = ("_key",)

    def __init__(self, key: PrivateKey) -> None:
        self._key = key

    def __repr__(self) -> str:
        return f"PrivateKeySigner({key_type(self)})"

    def public_key(self) -> PublicKey:
        return self._key.public_key()

    def sign(self, data: bytes, scheme: SignatureScheme) -> bytes:
        return sign(self._key, scheme.with_der_ecdsa(), data)


def key_type(key: KeyOrSigner | PublicKey) -> KeyType:
    """``rsa`` or ``ec``, for a private key, a public key or a signer."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ec"
    return "rsa" if isinstance(key.public_key(), rsa.RSAPublicKey) else "ec"
