"""Low-level XAdES plumbing shared by :mod:`xroad_mn.signature` and :mod:`xroad_mn.asic`.

Namespaces and algorithm URIs of X-Road's signature profile, digest and signature primitives keyed by
their XML-DSig URIs, canonicalisation of an element *in its document context* (so inclusive C14N pulls in
the wrapper's namespace declarations), and a parser that refuses DTDs and entities.

Example::

    >>> from xroad_mn.xades import digest, DIGEST_SHA512
    >>> len(digest(DIGEST_SHA512, b"abc"))
    64
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree

from xroad_mn import xmlsafe
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.keys import SignatureScheme, Signer, key_type

__all__ = [
    "ASIC_NS",
    "ASIC_NS_OLD",
    "C14N_EXCLUSIVE",
    "C14N_INCLUSIVE",
    "DIGEST_SHA256",
    "DIGEST_SHA512",
    "DS_NS",
    "SIGNATURE_ECDSA_SHA512",
    "SIGNATURE_RSA_SHA512",
    "XADES_NS",
    "XSI_NS",
    "b64decode",
    "b64encode",
    "canonicalize",
    "digest",
    "issued_by",
    "parse_xml",
    "sign_bytes",
    "signature_method_for",
    "verify_bytes",
]

DS_NS: Final = "http://www.w3.org/2000/09/xmldsig#"
XADES_NS: Final = "http://uri.etsi.org/01903/v1.3.2#"
ASIC_NS: Final = "http://uri.etsi.org/02918/v1.2.1#"
ASIC_NS_OLD: Final = "http://uri.etsi.org/02918/v1.1.1#"
XSI_NS: Final = "http://www.w3.org/2001/XMLSchema-instance"

C14N_INCLUSIVE: Final = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_INCLUSIVE_COMMENTS: Final = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
C14N_EXCLUSIVE: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N_EXCLUSIVE_COMMENTS: Final = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"

DIGEST_SHA1: Final = "http://www.w3.org/2000/09/xmldsig#sha1"
DIGEST_SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"
DIGEST_SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#sha384"
DIGEST_SHA512: Final = "http://www.w3.org/2001/04/xmlenc#sha512"

SIGNATURE_RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SIGNATURE_RSA_SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
SIGNATURE_RSA_SHA512: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
SIGNATURE_RSA_PSS_SHA512: Final = "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1"
SIGNATURE_ECDSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SIGNATURE_ECDSA_SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
SIGNATURE_ECDSA_SHA512: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"

_DIGESTS: Final = {
    DIGEST_SHA1: "sha1",
    DIGEST_SHA256: "sha256",
    DIGEST_SHA384: "sha384",
    DIGEST_SHA512: "sha512",
}
_RSA_PKCS1: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    SIGNATURE_RSA_SHA256: hashes.SHA256,
    SIGNATURE_RSA_SHA384: hashes.SHA384,
    SIGNATURE_RSA_SHA512: hashes.SHA512,
}
_ECDSA: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    SIGNATURE_ECDSA_SHA256: hashes.SHA256,
    SIGNATURE_ECDSA_SHA384: hashes.SHA384,
    SIGNATURE_ECDSA_SHA512: hashes.SHA512,
}
_C14N: Final = {
    C14N_INCLUSIVE: (False, False),
    C14N_INCLUSIVE_COMMENTS: (False, True),
    C14N_EXCLUSIVE: (True, False),
    C14N_EXCLUSIVE_COMMENTS: (True, True),
}
_WHITESPACE: Final = re.compile(rb"\s+")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | Signer
"""A ``cryptography`` private key, or a :class:`~xroad_mn.keys.Signer` (a token's key, never seen)."""
_SIGNER_SCHEMES: Final = {
    SIGNATURE_RSA_SHA256: SignatureScheme.RSA_PKCS1_SHA256,
    SIGNATURE_RSA_SHA384: SignatureScheme.RSA_PKCS1_SHA384,
    SIGNATURE_RSA_SHA512: SignatureScheme.RSA_PKCS1_SHA512,
    SIGNATURE_ECDSA_SHA256: SignatureScheme.ECDSA_SHA256,
    SIGNATURE_ECDSA_SHA384: SignatureScheme.ECDSA_SHA384,
    SIGNATURE_ECDSA_SHA512: SignatureScheme.ECDSA_SHA512,
}


def parse_xml(data: bytes, *, what: str, code: str = FaultCode.MALFORMED_SIGNATURE) -> etree._Element:
    """Parse untrusted XML bytes with :func:`xroad_mn.xmlsafe.parse` (no DTDs, no entities, no network;
    comments kept for canonicalisation); ``code`` when not well-formed or carrying a DOCTYPE."""
    return xmlsafe.parse(data, code=code, what=what, max_bytes=None)


def digest(algorithm_uri: str, data: bytes) -> bytes:
    """Hash ``data`` with the algorithm an XML-DSig ``DigestMethod`` URI names."""
    name = _DIGESTS.get(algorithm_uri)
    if name is None:
        raise XRoadError(FaultCode.MALFORMED_SIGNATURE, f"unsupported digest method {algorithm_uri!r}")
    return hashlib.new(name, data).digest()


def canonicalize(element: etree._Element, method_uri: str) -> bytes:
    """Canonicalise ``element`` in its document context (inherited namespaces included for C14N 1.0)."""
    mode = _C14N.get(method_uri)
    if mode is None:
        raise XRoadError(FaultCode.MALFORMED_SIGNATURE, f"unsupported canonicalization method {method_uri!r}")
    exclusive, comments = mode
    try:
        return bytes(etree.tostring(element, method="c14n", exclusive=exclusive, with_comments=comments))
    except etree.C14NError as e:  # e.g. a relative namespace URI, which C14N 1.0 cannot render
        raise XRoadError(FaultCode.MALFORMED_SIGNATURE, f"cannot canonicalise the signed XML: {e}") from e


def b64decode(text: str | bytes | None, *, what: str) -> bytes:
    """Decode base64 the way XML carries it: line breaks and ``&#13;`` whitespace ignored, strictly."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else (text or b"")
    compact = _WHITESPACE.sub(b"", raw)
    if not compact:
        raise XRoadError(FaultCode.MALFORMED_SIGNATURE, f"{what} is empty")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as e:
        raise XRoadError(FaultCode.MALFORMED_SIGNATURE, f"{what} is not valid base64") from e


def b64encode(data: bytes) -> str:
    """Base64 without line breaks."""
    return base64.b64encode(data).decode("ascii")


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name and key signed ``cert`` (any hash; SHA-1 too, as 2012-2017 CAs used)."""
    if cert.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    algorithm = cert.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            pad: padding.AsymmetricPadding = padding.PKCS1v15()
            params = cert.signature_algorithm_parameters
            if isinstance(params, padding.PSS):
                pad = params
            key.verify(cert.signature, cert.tbs_certificate_bytes, pad, algorithm)
            return True
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
            return True
    except (InvalidSignature, ValueError, TypeError):
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def signature_method_for(key: PrivateKey) -> str:
    """The ``SignatureMethod`` X-Road uses for a key: rsa-sha512 or ecdsa-sha512."""
    if key_type(key) == "rsa":
        return SIGNATURE_RSA_SHA512
    return SIGNATURE_ECDSA_SHA512


def sign_bytes(key: PrivateKey, method_uri: str, data: bytes) -> bytes:
    """Sign ``data``; ECDSA values come out in XML-DSig's raw ``r‖s`` form."""
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return _sign_with_signer(key, method_uri, data)
    if isinstance(key, rsa.RSAPrivateKey) and method_uri in _RSA_PKCS1:
        return key.sign(data, padding.PKCS1v15(), _RSA_PKCS1[method_uri]())
    if isinstance(key, ec.EllipticCurvePrivateKey) and method_uri in _ECDSA:
        der = key.sign(data, ec.ECDSA(_ECDSA[method_uri]()))
        r, s = decode_dss_signature(der)
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, f"key cannot sign with {method_uri!r}")


def _sign_with_signer(signer: Signer, method_uri: str, data: bytes) -> bytes:
    scheme = _SIGNER_SCHEMES.get(method_uri)
    public = signer.public_key()
    if scheme is None or scheme.key_type != key_type(public):
        raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, f"key cannot sign with {method_uri!r}")
    value = signer.sign(data, scheme)
    if isinstance(public, ec.EllipticCurvePublicKey):
        r, s = decode_dss_signature(value)
        size = (public.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return value


def verify_bytes(public_key: object, method_uri: str, signature: bytes, data: bytes) -> None:
    """Verify a signature value over ``data``; raises ``invalid_signature_value`` when it does not match."""
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and method_uri in _RSA_PKCS1:
            public_key.verify(signature, data, padding.PKCS1v15(), _RSA_PKCS1[method_uri]())
            return
        if isinstance(public_key, rsa.RSAPublicKey) and method_uri == SIGNATURE_RSA_PSS_SHA512:
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=padding.PSS.AUTO)
            public_key.verify(signature, data, pss, hashes.SHA512())
            return
        if isinstance(public_key, ec.EllipticCurvePublicKey) and method_uri in _ECDSA:
            size = (public_key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                raise XRoadError(
                    FaultCode.INVALID_SIGNATURE_VALUE, "ECDSA signature value has a wrong length"
                )
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(_ECDSA[method_uri]()))
            return
    except InvalidSignature as e:
        raise XRoadError(FaultCode.INVALID_SIGNATURE_VALUE, "signature value does not verify") from e
    raise XRoadError(
        FaultCode.MALFORMED_SIGNATURE, f"signature method {method_uri!r} does not fit the signer's key"
    )
