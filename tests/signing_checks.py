"""Checks shared by signing tests: a signature verified with ``cryptography`` alone, and an expected fault."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from xroad_mn.algorithms import SignatureScheme
from xroad_mn.errors import XRoadError
from xroad_mn.keys import PublicKey


def verify_with(public: PublicKey, scheme: SignatureScheme, signature: bytes, data: bytes) -> None:
    """Check a signature with ``cryptography`` directly, not with any code under test."""
    hash_alg = scheme.hash_algorithm()
    if isinstance(public, rsa.RSAPublicKey):
        pad: padding.AsymmetricPadding = (
            padding.PSS(padding.MGF1(hash_alg), hash_alg.digest_size) if scheme.is_pss else padding.PKCS1v15()
        )
        public.verify(signature, data, pad, hash_alg)
    else:
        public.verify(signature, data, ec.ECDSA(hash_alg))


def expect_code(code: str, call: Callable[..., object], *args: object) -> XRoadError:
    with pytest.raises(XRoadError) as e:
        call(*args)
    assert e.value.code == code, e.value
    return e.value
