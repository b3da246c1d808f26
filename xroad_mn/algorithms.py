"""Signature algorithms: one table of schemes under every name X-Road writes, one ``sign``, one ``verify``.

X-Road names a signature algorithm three ways: an XML-DSig URI (message signatures, the signed global
configuration directory), a Java (JCA) name (management request parts, ``SHA512withRSA``) and an ASN.1 OID
(certificates, OCSP responses, time-stamp tokens). :data:`SCHEMES` maps each of those names to one
:class:`SignatureScheme`; :func:`sign` and :func:`verify` are the only places that call a key's ``sign`` and
``verify``. Every verification failure is an :class:`~xroad_mn.errors.XRoadError` with the fault code the
caller asks for, whatever went wrong (bad value, key that cannot make such signatures, unknown algorithm).

Example::

    >>> from cryptography.hazmat.primitives.asymmetric import ec
    >>> from xroad_mn.algorithms import SCHEMES, sign, verify
    >>> key = ec.generate_private_key(ec.SECP256R1())
    >>> scheme = SCHEMES["http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"]
    >>> scheme.name, scheme.ecdsa_raw
    ('SHA256withECDSA', True)
    >>> value = sign(key, scheme, b"data")
    >>> len(value)  # XML-DSig's raw r||s
    64
    >>> verify(key.public_key(), scheme, value, b"data", code="invalid_signature_value")

ECDSA values are DER-encoded under JCA names and OIDs, raw ``r‖s`` under XML-DSig URIs (RFC 4051); the
global configuration directory is a Java quirk that writes DER under an XML-DSig URI, so its module asks
for :meth:`SignatureScheme.with_der_ecdsa`. RSA-PSS named by a URI or a JCA name uses MGF1 with the message
hash and a salt of the hash's length (any salt length verifies); under the OID ``id-RSASSA-PSS`` the
parameters of the ``AlgorithmIdentifier`` decide (:func:`scheme_for_identifier`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, Final, Literal, Protocol, TypeAlias

from asn1crypto import algos
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning

from xroad_mn.errors import FaultCode, XRoadError

__all__ = [
    "MAX_PSS_SALT_BYTES",
    "PRIVATE_KEY_TYPES",
    "RSASSA_PSS_OID",
    "SCHEMES",
    "TOKEN_SCHEMES",
    "Family",
    "KeyType",
    "PrivateKey",
    "SignatureScheme",
    "Signer",
    "certificate_scheme",
    "scheme",
    "scheme_for",
    "scheme_for_identifier",
    "sign",
    "verify",
]

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
)
"""Keys :func:`sign` signs with (DSA only verifies)."""
PRIVATE_KEY_TYPES: Final = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)

with warnings.catch_warnings():
    # cryptography deprecates DSA and warns on every use of its key classes; certificates and OCSP
    # responses signed with DSA are still read, so the class is looked up once, here.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    _DSAPublicKey: Final = dsa.DSAPublicKey

RSASSA_PSS_OID: Final = "1.2.840.113549.1.1.10"
"""``id-RSASSA-PSS``: the scheme is in the ``AlgorithmIdentifier``'s parameters (RFC 4055)."""
MAX_PSS_SALT_BYTES: Final = 512
"""Longest RSA-PSS salt parameters may ask for (an RSA-4096 key holds at most 446 bytes with SHA-512)."""

_HASHES: Final[Mapping[str, type[hashes.HashAlgorithm]]] = MappingProxyType(
    {
        "sha1": hashes.SHA1,
        "sha224": hashes.SHA224,
        "sha256": hashes.SHA256,
        "sha384": hashes.SHA384,
        "sha512": hashes.SHA512,
    }
)


class Family(StrEnum):
    """How a signature is made; the value is the JCA name's suffix (``SHA256with`` + value)."""

    RSA = "RSA"
    """RSA PKCS#1 v1.5."""
    RSA_PSS = "RSAandMGF1"
    ECDSA = "ECDSA"
    DSA = "DSA"
    ED25519 = "Ed25519"
    ED448 = "Ed448"


@dataclass(frozen=True, slots=True)
class SignatureScheme:
    """One way to sign: a family, its message hash and, for RSA-PSS and ECDSA, the details."""

    family: Family
    hash: str | None
    """``hashlib`` name of the message hash; None for EdDSA, and for a bare key OID in CMS until the
    SignerInfo's digest algorithm fills it in (:func:`scheme_for_identifier`)."""
    mgf_hash: str | None = None
    """RSA-PSS: the MGF1 hash (None: the message hash)."""
    salt_length: int | None = None
    """RSA-PSS: the salt length (None: the hash's length when signing, any length when verifying)."""
    ecdsa_raw: bool = False
    """ECDSA: the value is raw ``r‖s`` (XML-DSig) instead of a DER ``ECDSA-Sig-Value``."""

    @property
    def name(self) -> str:
        """The JCA name (``SHA512withRSA``); ``Ed25519``/``Ed448`` for EdDSA."""
        if self.family in (Family.ED25519, Family.ED448):
            return str(self.family)
        return f"{(self.hash or 'NONE').upper()}with{self.family}"

    # The schemes a token signs with (ECDSA values DER-encoded), named as in X-Road's signer.
    RSA_PKCS1_SHA256: ClassVar[SignatureScheme]
    RSA_PKCS1_SHA384: ClassVar[SignatureScheme]
    RSA_PKCS1_SHA512: ClassVar[SignatureScheme]
    RSA_PSS_SHA256: ClassVar[SignatureScheme]
    RSA_PSS_SHA384: ClassVar[SignatureScheme]
    RSA_PSS_SHA512: ClassVar[SignatureScheme]
    ECDSA_SHA256: ClassVar[SignatureScheme]
    ECDSA_SHA384: ClassVar[SignatureScheme]
    ECDSA_SHA512: ClassVar[SignatureScheme]

    @property
    def value(self) -> str:
        """The scheme's name for messages: the JCA name, with ``(r||s)`` for XML-DSig's raw ECDSA."""
        return f"{self.name}(r||s)" if self.ecdsa_raw else self.name

    @property
    def key_type(self) -> KeyType:
        """``rsa`` or ``ec``: the kind of key a :class:`Signer` needs for this scheme."""
        if self.family in (Family.RSA, Family.RSA_PSS):
            return "rsa"
        if self.family is Family.ECDSA:
            return "ec"
        raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, f"no token key signs with {self.name}")

    @property
    def is_pss(self) -> bool:
        return self.family is Family.RSA_PSS

    @property
    def hash_name(self) -> str:
        """``hashlib`` name of the message hash; ``cannot_create_signature`` when the scheme has none."""
        if self.hash is None or self.hash not in _HASHES:
            raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, f"{self.name} names no usable hash")
        return self.hash

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        """The message hash as a ``cryptography`` hash algorithm."""
        return _HASHES[self.hash_name]()

    def with_der_ecdsa(self) -> SignatureScheme:
        """The same scheme with ECDSA values DER-encoded (as Java writes them under any name)."""
        return dataclasses.replace(self, ecdsa_raw=False)


KeyType = Literal["rsa", "ec"]
"""The key types tokens generate and :class:`Signer` implementations hold."""

for _h in ("sha256", "sha384", "sha512"):
    setattr(SignatureScheme, f"RSA_PKCS1_{_h.upper()}", SignatureScheme(Family.RSA, _h))
    setattr(SignatureScheme, f"RSA_PSS_{_h.upper()}", SignatureScheme(Family.RSA_PSS, _h))
    setattr(SignatureScheme, f"ECDSA_{_h.upper()}", SignatureScheme(Family.ECDSA, _h))
del _h

TOKEN_SCHEMES: Final[tuple[SignatureScheme, ...]] = tuple(
    getattr(SignatureScheme, f"{name}_{h}")
    for name in ("RSA_PKCS1", "RSA_PSS", "ECDSA")
    for h in ("SHA256", "SHA384", "SHA512")
)
"""The schemes a token signs with (ECDSA values DER-encoded)."""


class Signer(Protocol):
    """A private key that signs but is never seen: a token's key, or an in-memory key behind an adapter.

    ``sign`` hashes ``data`` itself and returns ECDSA values DER-encoded (:func:`sign` converts them for
    XML-DSig). It may block (an HSM round trip, RSA arithmetic): async callers run it in a worker thread and
    sign once per drained batch, as X-Road's batch signer does.
    """

    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        """The public half of the key."""
        ...

    def sign(self, data: bytes, scheme: SignatureScheme) -> bytes:
        """Sign ``data`` with ``scheme``; :class:`XRoadError` when it cannot."""
        ...


def scheme_for(kind: KeyType, hash_name: str, *, pss: bool = False) -> SignatureScheme:
    """The token scheme for a key type and hash (``sha256``/``sha384``/``sha512``); PSS only for RSA."""
    name = {"rsa": "RSA_PSS" if pss else "RSA_PKCS1", "ec": "ECDSA"}.get(kind, "")
    found = getattr(SignatureScheme, f"{name}_{hash_name.upper()}", None)
    if not isinstance(found, SignatureScheme) or (pss and kind != "rsa"):
        what = f"{kind} with {hash_name}{' and PSS' if pss else ''}"
        raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, f"no signature scheme for {what}")
    return found


def _scheme(family: Family, hash_name: str | None, *, raw: bool = False) -> SignatureScheme:
    return SignatureScheme(family, hash_name, ecdsa_raw=raw)


_DSIG: Final = "http://www.w3.org/2000/09/xmldsig#"
_DSIG_MORE: Final = "http://www.w3.org/2001/04/xmldsig-more#"
_DSIG_MORE_2007: Final = "http://www.w3.org/2007/05/xmldsig-more#"

_RSA_OIDS: Final = {
    "sha1": "1.2.840.113549.1.1.5",
    "sha224": "1.2.840.113549.1.1.14",
    "sha256": "1.2.840.113549.1.1.11",
    "sha384": "1.2.840.113549.1.1.12",
    "sha512": "1.2.840.113549.1.1.13",
}
_ECDSA_OIDS: Final = {
    "sha1": "1.2.840.10045.4.1",
    "sha224": "1.2.840.10045.4.3.1",
    "sha256": "1.2.840.10045.4.3.2",
    "sha384": "1.2.840.10045.4.3.3",
    "sha512": "1.2.840.10045.4.3.4",
}
_DSA_OIDS: Final = {
    "sha1": "1.2.840.10040.4.3",
    "sha224": "2.16.840.1.101.3.4.3.1",
    "sha256": "2.16.840.1.101.3.4.3.2",
}
_JCA_HASHES: Final = ("sha256", "sha384", "sha512")


def _table() -> dict[str, SignatureScheme]:
    table: dict[str, SignatureScheme] = {}
    # OIDs (certificates, OCSP responses, CMS SignerInfos).
    for h, oid in _RSA_OIDS.items():
        table[oid] = _scheme(Family.RSA, h)
    for h, oid in _ECDSA_OIDS.items():
        table[oid] = _scheme(Family.ECDSA, h)
    for h, oid in _DSA_OIDS.items():
        table[oid] = _scheme(Family.DSA, h)
    table["1.3.101.112"] = _scheme(Family.ED25519, None)
    table["1.3.101.113"] = _scheme(Family.ED448, None)
    # RFC 4055 defaults; the parameters of a real AlgorithmIdentifier replace them.
    table[RSASSA_PSS_OID] = SignatureScheme(Family.RSA_PSS, "sha1", "sha1", 20)
    # Bare key OIDs some CMS writers put in SignerInfo.signatureAlgorithm: the digest comes from
    # SignerInfo.digestAlgorithm.
    table["1.2.840.113549.1.1.1"] = _scheme(Family.RSA, None)
    table["1.2.840.10045.4"] = _scheme(Family.ECDSA, None)
    # JCA names (management requests, ``SignAlgorithm``).
    for h in _JCA_HASHES:
        table[f"{h.upper()}withRSA"] = _scheme(Family.RSA, h)
        table[f"{h.upper()}withRSAandMGF1"] = _scheme(Family.RSA_PSS, h)
        table[f"{h.upper()}withECDSA"] = _scheme(Family.ECDSA, h)
    # XML-DSig URIs (RFC 6931): message signatures and the signed directory.
    table[f"{_DSIG}rsa-sha1"] = _scheme(Family.RSA, "sha1")
    for h in _JCA_HASHES:
        table[f"{_DSIG_MORE}rsa-{h}"] = _scheme(Family.RSA, h)
        table[f"{_DSIG_MORE}ecdsa-{h}"] = _scheme(Family.ECDSA, h, raw=True)
    table[f"{_DSIG_MORE_2007}sha512-rsa-MGF1"] = _scheme(Family.RSA_PSS, "sha512")
    return table


SCHEMES: Final[Mapping[str, SignatureScheme]] = MappingProxyType(_table())
"""Every signature scheme xroad-mn signs or verifies with, under each name a format gives it."""


def _unsupported(code: str, what: str, name: str) -> XRoadError:
    return XRoadError(code, f"{what}: unsupported signature algorithm {name[:80]!r}")


def scheme(name: str, *, code: str, what: str = "signature") -> SignatureScheme:
    """The scheme ``name`` (URI, JCA name or OID) names; ``code`` when it names none."""
    found = SCHEMES.get(name)
    if found is None:
        raise _unsupported(code, what, name)
    return found


def _pss(parameters: algos.RSASSAPSSParams, code: str, what: str) -> SignatureScheme:
    hash_name = parameters["hash_algorithm"]["algorithm"].native
    mgf = parameters["mask_gen_algorithm"]
    mgf_name = mgf["algorithm"].native
    mgf_hash = mgf["parameters"]["algorithm"].native if mgf_name == "mgf1" else None
    salt = parameters["salt_length"].native
    trailer = parameters["trailer_field"].native
    if hash_name not in _HASHES or mgf_hash not in _HASHES:
        raise XRoadError(code, f"{what}: unsupported RSA-PSS hash or mask generation {hash_name}/{mgf_name}")
    if not isinstance(salt, int) or not 0 <= salt <= MAX_PSS_SALT_BYTES:
        raise XRoadError(code, f"{what}: unusable RSA-PSS salt length {salt}")
    if trailer != "trailer_field_bc":
        raise XRoadError(code, f"{what}: unsupported RSA-PSS trailer field {trailer}")
    return SignatureScheme(Family.RSA_PSS, hash_name, mgf_hash, salt)


def scheme_for_identifier(
    identifier: bytes | algos.SignedDigestAlgorithm,
    *,
    code: str,
    digest: str | None = None,
    what: str = "signature",
) -> SignatureScheme:
    """The scheme an ASN.1 ``AlgorithmIdentifier`` (DER or parsed) names; ``code`` when none.

    ``id-RSASSA-PSS`` takes its hashes and salt from the parameters. A bare key OID (``rsaEncryption``,
    ``ecdsa``), which CMS writers may use, takes its hash from ``digest`` (SignerInfo.digestAlgorithm).
    """
    try:
        parsed = algos.SignedDigestAlgorithm.load(identifier) if isinstance(identifier, bytes) else identifier
        oid: str = parsed["algorithm"].dotted
        found = scheme(oid, code=code, what=what)
        if oid == RSASSA_PSS_OID:
            params = parsed["parameters"]
            if not isinstance(params, algos.RSASSAPSSParams):
                raise XRoadError(code, f"{what}: RSA-PSS without parameters")
            return _pss(params, code, what)
    except (ValueError, TypeError, KeyError) as e:
        raise XRoadError(code, f"{what}: malformed signature algorithm identifier: {e}") from e
    if found.hash is None and found.family in (Family.RSA, Family.ECDSA):
        if digest not in _HASHES:
            raise _unsupported(code, what, f"{oid} with digest {digest}")
        return dataclasses.replace(found, hash=digest)
    return found


def certificate_scheme(cert: x509.Certificate, *, code: str, what: str = "certificate") -> SignatureScheme:
    """The scheme of the signature on ``cert`` (its ``signatureAlgorithm``); ``code`` when unknown."""
    try:
        oid = cert.signature_algorithm_oid.dotted_string
    except ValueError as e:
        raise XRoadError(code, f"{what}: malformed signature algorithm: {e}") from e
    if oid != RSASSA_PSS_OID:  # only PSS needs the parameters, which cryptography does not expose as such
        return scheme(oid, code=code, what=what)
    try:
        identifier = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))["signature_algorithm"]
    except (ValueError, TypeError, KeyError) as e:
        raise XRoadError(code, f"{what}: malformed signature algorithm: {e}") from e
    return scheme_for_identifier(identifier, code=code, what=what)


def _hash(scheme: SignatureScheme) -> hashes.HashAlgorithm:
    if scheme.hash is None or scheme.hash not in _HASHES:
        raise ValueError(f"{scheme.name} names no usable hash")
    return _HASHES[scheme.hash]()


def _pss_padding(scheme: SignatureScheme, *, signing: bool) -> padding.PSS:
    algorithm = _hash(scheme)
    mgf_class = _HASHES.get(scheme.mgf_hash) if scheme.mgf_hash is not None else type(algorithm)
    if mgf_class is None:
        raise ValueError(f"{scheme.name} names no usable mask generation hash")
    mgf = mgf_class()
    if scheme.salt_length is not None:
        return padding.PSS(mgf=padding.MGF1(mgf), salt_length=scheme.salt_length)
    if signing:
        return padding.PSS(mgf=padding.MGF1(mgf), salt_length=padding.PSS.DIGEST_LENGTH)
    return padding.PSS(mgf=padding.MGF1(mgf), salt_length=padding.PSS.AUTO)


def _key_kind(key: object) -> str:
    kinds: tuple[tuple[type, str], ...] = (
        (rsa.RSAPublicKey, "RSA"),
        (rsa.RSAPrivateKey, "RSA"),
        (ec.EllipticCurvePublicKey, "EC"),
        (ec.EllipticCurvePrivateKey, "EC"),
        (_DSAPublicKey, "DSA"),
        (ed25519.Ed25519PublicKey, "Ed25519"),
        (ed25519.Ed25519PrivateKey, "Ed25519"),
        (ed448.Ed448PublicKey, "Ed448"),
        (ed448.Ed448PrivateKey, "Ed448"),
    )
    return next((name for kind, name in kinds if isinstance(key, kind)), type(key).__name__)


def _sign_with_signer(signer: Signer, scheme: SignatureScheme, data: bytes) -> bytes:
    public = signer.public_key()
    if scheme.key_type != ("ec" if isinstance(public, ec.EllipticCurvePublicKey) else "rsa"):
        raise XRoadError(
            FaultCode.CANNOT_CREATE_SIGNATURE, f"an {_key_kind(public)} key cannot sign with {scheme.name}"
        )
    value = signer.sign(data, scheme.with_der_ecdsa())
    if not (scheme.ecdsa_raw and isinstance(public, ec.EllipticCurvePublicKey)):
        return value
    try:
        r, s = decode_dss_signature(value)
    except ValueError as e:
        raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, f"signer gave no DER ECDSA value: {e}") from e
    size = (public.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def sign(key: PrivateKey | Signer, scheme: SignatureScheme, data: bytes) -> bytes:
    """Sign ``data`` with a private key or a :class:`Signer` (a token's key); ``cannot_create_signature``
    when ``key`` cannot make ``scheme``'s signatures."""
    if not isinstance(key, PRIVATE_KEY_TYPES):
        return _sign_with_signer(key, scheme, data)
    try:
        if isinstance(key, rsa.RSAPrivateKey) and scheme.family is Family.RSA:
            return key.sign(data, padding.PKCS1v15(), _hash(scheme))
        if isinstance(key, rsa.RSAPrivateKey) and scheme.family is Family.RSA_PSS:
            return key.sign(data, _pss_padding(scheme, signing=True), _hash(scheme))
        if isinstance(key, ec.EllipticCurvePrivateKey) and scheme.family is Family.ECDSA:
            der = key.sign(data, ec.ECDSA(_hash(scheme)))
            if not scheme.ecdsa_raw:
                return der
            r, s = decode_dss_signature(der)
            size = (key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if isinstance(key, ed25519.Ed25519PrivateKey) and scheme.family is Family.ED25519:
            return key.sign(data)
        if isinstance(key, ed448.Ed448PrivateKey) and scheme.family is Family.ED448:
            return key.sign(data)
    except (UnsupportedAlgorithm, ValueError, TypeError) as e:
        raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, f"cannot sign with {scheme.name}: {e}") from e
    raise XRoadError(
        FaultCode.CANNOT_CREATE_SIGNATURE, f"an {_key_kind(key)} key cannot sign with {scheme.name}"
    )


def _verify(key: CertificatePublicKeyTypes, scheme: SignatureScheme, signature: bytes, data: bytes) -> bool:
    """Raises InvalidSignature (or a library error) when the value is wrong; False when the key does not
    fit the scheme."""
    if isinstance(key, rsa.RSAPublicKey) and scheme.family is Family.RSA:
        key.verify(signature, data, padding.PKCS1v15(), _hash(scheme))
    elif isinstance(key, rsa.RSAPublicKey) and scheme.family is Family.RSA_PSS:
        key.verify(signature, data, _pss_padding(scheme, signing=False), _hash(scheme))
    elif isinstance(key, ec.EllipticCurvePublicKey) and scheme.family is Family.ECDSA:
        if scheme.ecdsa_raw:
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                raise InvalidSignature("ECDSA signature value has a wrong length")
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            signature = encode_dss_signature(r, s)
        key.verify(signature, data, ec.ECDSA(_hash(scheme)))
    elif isinstance(key, _DSAPublicKey) and scheme.family is Family.DSA:
        key.verify(signature, data, _hash(scheme))
    elif (isinstance(key, ed25519.Ed25519PublicKey) and scheme.family is Family.ED25519) or (
        isinstance(key, ed448.Ed448PublicKey) and scheme.family is Family.ED448
    ):
        key.verify(signature, data)
    else:
        return False
    return True


def verify(
    key: CertificatePublicKeyTypes | x509.Certificate,
    scheme: SignatureScheme,
    signature: bytes,
    data: bytes,
    *,
    code: str,
    key_mismatch_code: str | None = None,
    what: str = "signature",
) -> None:
    """Verify ``signature`` over ``data`` with ``key`` (a public key, or a certificate's) under ``scheme``.

    Returns nothing or raises :class:`XRoadError`: ``code`` when the value does not verify or cannot be
    checked (a library refusing the hash, the salt, the encoding), ``key_mismatch_code`` (default ``code``)
    when the key is unreadable or of a type that cannot make ``scheme``'s signatures.
    """
    mismatch = key_mismatch_code if key_mismatch_code is not None else code
    try:
        public_key = key.public_key() if isinstance(key, x509.Certificate) else key
    except (UnsupportedAlgorithm, ValueError, TypeError) as e:
        raise XRoadError(mismatch, f"{what}: the signer's public key cannot be used: {e}") from e
    try:
        fits = _verify(public_key, scheme, signature, data)
    except InvalidSignature as e:
        raise XRoadError(code, f"{what} does not verify ({scheme.name})") from e
    except (UnsupportedAlgorithm, ValueError, TypeError) as e:
        raise XRoadError(code, f"{what} cannot be checked ({scheme.name}): {e}") from e
    if not fits:
        raise XRoadError(
            mismatch, f"{what}: {scheme.name} does not fit the signer's {_key_kind(public_key)} key"
        )
