"""Signature algorithms: every name in the table signs and verifies, and every failure is an XRoadError."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asn1crypto import algos
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ed448, ed25519, padding, x25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from trust_services.pki import generate_ec_key, generate_rsa_key
from xroad_mn.algorithms import (
    RSASSA_PSS_OID,
    SCHEMES,
    Family,
    PrivateKey,
    SignatureScheme,
    certificate_scheme,
    scheme,
    scheme_for_identifier,
    sign,
    verify,
)
from xroad_mn.certs import issued_by
from xroad_mn.errors import FaultCode, XRoadError

BAD = FaultCode.INVALID_SIGNATURE_VALUE
UNFIT = FaultCode.MALFORMED_SIGNATURE
NOW = datetime(2025, 6, 1, tzinfo=UTC)

RSA_KEY = generate_rsa_key()
EC_KEY = generate_ec_key()
ED25519_KEY = ed25519.Ed25519PrivateKey.generate()
ED448_KEY = ed448.Ed448PrivateKey.generate()
KEYS: dict[Family, PrivateKey] = {
    Family.RSA: RSA_KEY,
    Family.RSA_PSS: RSA_KEY,
    Family.ECDSA: EC_KEY,
    Family.ED25519: ED25519_KEY,
    Family.ED448: ED448_KEY,
}


def _signable(s: SignatureScheme) -> bool:
    """Schemes a key can use as they stand (a bare key OID needs a digest from its context first)."""
    return s.family in KEYS and (s.hash is not None or s.family in (Family.ED25519, Family.ED448))


SIGNABLE_NAMES = sorted(name for name, s in SCHEMES.items() if _signable(s))


def _expect(code: str, call: Callable[[], object]) -> XRoadError:
    with pytest.raises(XRoadError) as info:
        call()
    assert info.value.has_code(code), info.value
    return info.value


@pytest.mark.parametrize("name", SIGNABLE_NAMES)
def test_every_name_signs_and_verifies(name: str) -> None:
    s = SCHEMES[name]
    key = KEYS[s.family]
    value = sign(key, s, b"data")
    verify(key.public_key(), s, value, b"data", code=BAD)
    _expect(BAD, lambda: verify(key.public_key(), s, value, b"other data", code=BAD))
    flipped = value[:-1] + bytes([value[-1] ^ 1])
    _expect(BAD, lambda: verify(key.public_key(), s, flipped, b"data", code=BAD))


def test_xmldsig_ecdsa_is_raw_and_jca_ecdsa_is_der() -> None:
    raw = SCHEMES["http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"]
    der = SCHEMES["SHA512withECDSA"]
    assert raw.ecdsa_raw
    assert not der.ecdsa_raw
    assert raw.with_der_ecdsa() == der
    raw_value = sign(EC_KEY, raw, b"data")
    der_value = sign(EC_KEY, der, b"data")
    assert len(raw_value) == 64
    assert der_value[0] == 0x30
    # Each encoding verifies only as itself.
    _expect(BAD, lambda: verify(EC_KEY.public_key(), raw, der_value, b"data", code=BAD))
    _expect(BAD, lambda: verify(EC_KEY.public_key(), der, raw_value, b"data", code=BAD))


@pytest.mark.parametrize(
    "key",
    [
        EC_KEY.public_key(),
        ED25519_KEY.public_key(),
        x25519.X25519PrivateKey.generate().public_key(),
    ],
    ids=["ec", "ed25519", "x25519"],
)
def test_a_key_that_cannot_make_the_signature_is_the_mismatch_code(key: CertificatePublicKeyTypes) -> None:
    s = SCHEMES["SHA256withRSA"]
    value = sign(RSA_KEY, s, b"data")
    err = _expect(UNFIT, lambda: verify(key, s, value, b"data", code=BAD, key_mismatch_code=UNFIT))
    assert "does not fit" in err.message
    # Without a mismatch code the one code covers it.
    _expect(BAD, lambda: verify(key, s, value, b"data", code=BAD))


def test_signing_with_an_unfit_key_cannot_create_a_signature() -> None:
    _expect(FaultCode.CANNOT_CREATE_SIGNATURE, lambda: sign(EC_KEY, SCHEMES["SHA256withRSA"], b"data"))
    _expect(FaultCode.CANNOT_CREATE_SIGNATURE, lambda: sign(RSA_KEY, SCHEMES["1.2.840.113549.1.1.1"], b"d"))


def test_unknown_names_are_the_callers_code() -> None:
    _expect(FaultCode.GLOBAL_CONF_INVALID, lambda: scheme("MD5withRSA", code=FaultCode.GLOBAL_CONF_INVALID))
    _expect(
        BAD, lambda: scheme_for_identifier(algos.SignedDigestAlgorithm({"algorithm": "1.2.3.4"}), code=BAD)
    )
    _expect(BAD, lambda: scheme_for_identifier(b"\x30\x03\x06\x01", code=BAD))
    _expect(BAD, lambda: scheme_for_identifier(b"", code=BAD))


def _pss_identifier(**params: Any) -> algos.SignedDigestAlgorithm:
    return algos.SignedDigestAlgorithm(
        {"algorithm": "rsassa_pss", "parameters": algos.RSASSAPSSParams(params)}
    )


def _sha256_pss(salt: int = 32) -> dict[str, Any]:
    return {
        "hash_algorithm": {"algorithm": "sha256"},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
        "salt_length": salt,
    }


def test_pss_parameters_decide_the_scheme() -> None:
    s = scheme_for_identifier(_pss_identifier(**_sha256_pss(20)).dump(), code=BAD)
    assert (s.family, s.hash, s.mgf_hash, s.salt_length) == (Family.RSA_PSS, "sha256", "sha256", 20)
    value = sign(RSA_KEY, s, b"data")
    verify(RSA_KEY.public_key(), s, value, b"data", code=BAD)
    # Another salt length is another scheme: the value does not verify under it.
    other = scheme_for_identifier(_pss_identifier(**_sha256_pss(32)), code=BAD)
    _expect(BAD, lambda: verify(RSA_KEY.public_key(), other, value, b"data", code=BAD))
    # RFC 4055 defaults: SHA-1 everywhere, salt 20.
    defaults = algos.SignedDigestAlgorithm(
        {"algorithm": "rsassa_pss", "parameters": algos.RSASSAPSSParams.load(b"\x30\x00")}
    )
    default = scheme_for_identifier(defaults.dump(), code=BAD)
    assert (default.hash, default.mgf_hash, default.salt_length) == ("sha1", "sha1", 20)


@pytest.mark.parametrize(
    "params",
    [
        {**_sha256_pss(), "hash_algorithm": {"algorithm": "1.2.3.4"}},
        {**_sha256_pss(), "hash_algorithm": {"algorithm": "md5"}},
        {**_sha256_pss(), "mask_gen_algorithm": {"algorithm": "1.2.3.4"}},
        {**_sha256_pss(), "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "md5"}}},
        {**_sha256_pss(), "salt_length": -1},
        {**_sha256_pss(), "salt_length": 1 << 40},
        {**_sha256_pss(), "trailer_field": 2},
    ],
    ids=["unknown-hash", "md5", "unknown-mgf", "md5-mgf", "negative-salt", "huge-salt", "trailer"],
)
def test_odd_pss_parameters_are_the_callers_code(params: dict[str, Any]) -> None:
    _expect(BAD, lambda: scheme_for_identifier(_pss_identifier(**params), code=BAD))


def test_pss_without_parameters_is_refused() -> None:
    bare = algos.SignedDigestAlgorithm({"algorithm": RSASSA_PSS_OID})
    _expect(BAD, lambda: scheme_for_identifier(bare, code=BAD))


def test_a_pss_salt_too_long_for_the_key_cannot_be_checked() -> None:
    s = scheme_for_identifier(_pss_identifier(**_sha256_pss(500)), code=BAD)
    _expect(BAD, lambda: verify(RSA_KEY.public_key(), s, b"\x00" * 256, b"data", code=BAD))


def test_a_bare_key_oid_takes_the_digest_from_its_context() -> None:
    bare = algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"})
    assert scheme_for_identifier(bare, code=BAD, digest="sha384") == SCHEMES["SHA384withRSA"]
    _expect(BAD, lambda: scheme_for_identifier(bare, code=BAD))
    _expect(BAD, lambda: scheme_for_identifier(bare, code=BAD, digest="md5"))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    issuer_key: Any, subject_key: Any, algorithm: Any, *, subject: str = "leaf", **kw: Any
) -> x509.Certificate:
    """A certificate for ``subject_key`` named ``subject``, issued by "issuer" with ``issuer_key``."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name("issuer"))
        .public_key(subject_key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
    )
    return builder.sign(issuer_key, algorithm, **kw)


def _issuer_cert(issuer_key: Any, algorithm: Any) -> x509.Certificate:
    return _cert(issuer_key, issuer_key, algorithm, subject="issuer")


def test_certificate_schemes_of_every_family() -> None:
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
    cases: list[tuple[Any, Any, dict[str, Any], Family]] = [
        (RSA_KEY, hashes.SHA256(), {}, Family.RSA),
        (RSA_KEY, hashes.SHA256(), {"rsa_padding": pss}, Family.RSA_PSS),
        (EC_KEY, hashes.SHA384(), {}, Family.ECDSA),
        (ED25519_KEY, None, {}, Family.ED25519),
        (ED448_KEY, None, {}, Family.ED448),
    ]
    for issuer_key, algorithm, kw, family in cases:
        cert = _cert(issuer_key, EC_KEY, algorithm, **kw)
        issuer = _issuer_cert(issuer_key, algorithm)
        assert certificate_scheme(cert, code=BAD).family is family
        assert issued_by(cert, issuer), family
        assert not issued_by(cert, _issuer_cert(generate_rsa_key(), hashes.SHA256())), family


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_dsa_certificates_are_read() -> None:
    """DSA certificate signatures were accepted before, so they still are (cryptography deprecates DSA
    and warns whenever a DSA key is loaded). SHA-1: ``test_certs.test_sha1_signed_real_chains``."""
    dsa_key = dsa.generate_private_key(2048)
    dsa_cert = _cert(dsa_key, EC_KEY, hashes.SHA256())
    dsa_issuer = _issuer_cert(dsa_key, hashes.SHA256())
    assert certificate_scheme(dsa_cert, code=BAD) == SCHEMES["2.16.840.1.101.3.4.3.2"]
    assert issued_by(dsa_cert, dsa_issuer)
    assert not issued_by(dsa_cert, _issuer_cert(RSA_KEY, hashes.SHA256()))


PUBLIC_KEYS: list[CertificatePublicKeyTypes] = [
    RSA_KEY.public_key(),
    EC_KEY.public_key(),
    ED25519_KEY.public_key(),
    ED448_KEY.public_key(),
    x25519.X25519PrivateKey.generate().public_key(),
]


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(SCHEMES)),
    key_index=st.integers(0, len(PUBLIC_KEYS) - 1),
    signature=st.binary(max_size=600),
    data=st.binary(max_size=64),
)
def test_fuzz_verify_raises_only_xroad_errors(
    name: str, key_index: int, signature: bytes, data: bytes
) -> None:
    """Random values under every scheme and key: the verdict is always an XRoadError with a given code."""
    with pytest.raises(XRoadError) as info:
        verify(PUBLIC_KEYS[key_index], SCHEMES[name], signature, data, code=BAD, key_mismatch_code=UNFIT)
    assert info.value.code in (BAD, UNFIT)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_identifiers_raise_only_xroad_errors(der: bytes) -> None:
    try:
        found = scheme_for_identifier(der, code=BAD, digest="sha256")
    except XRoadError as e:
        found = None
        code = e.code
    else:
        code = BAD
    assert code == BAD
    assert found is None or found.family in set(Family)
