"""Low-level XAdES plumbing shared by :mod:`xroad_mn.signature` and :mod:`xroad_mn.asic`.

Namespaces and algorithm URIs of X-Road's signature profile, digests keyed by their XML-DSig URIs, the
signature methods X-Road signatures may use (schemes of :mod:`xroad_mn.algorithms`), canonicalisation of
an element *in its document context* (so inclusive C14N pulls in the wrapper's namespace declarations),
and a parser that refuses DTDs and entities.

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
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from xroad_mn import xmlsafe
from xroad_mn.algorithms import SCHEMES, SignatureScheme, Signer
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.keys import key_type

__all__ = [
    "ASIC_NS",
    "ASIC_NS_OLD",
    "C14N_EXCLUSIVE",
    "C14N_INCLUSIVE",
    "DIGEST_SHA256",
    "DIGEST_SHA512",
    "DS_NS",
    "SIGNATURE_ECDSA_SHA512",
    "SIGNATURE_METHODS",
    "SIGNATURE_RSA_SHA512",
    "XADES_NS",
    "XSI_NS",
    "b64decode",
    "b64encode",
    "canonicalize",
    "digest",
    "parse_xml",
    "signature_method_for",
    "signature_scheme",
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
SIGNATURE_METHODS: Final[Mapping[str, SignatureScheme]] = MappingProxyType(
    {
        uri: SCHEMES[uri]
        for uri in (
            SIGNATURE_RSA_SHA256,
            SIGNATURE_RSA_SHA384,
            SIGNATURE_RSA_SHA512,
            SIGNATURE_RSA_PSS_SHA512,
            SIGNATURE_ECDSA_SHA256,
            SIGNATURE_ECDSA_SHA384,
            SIGNATURE_ECDSA_SHA512,
        )
    }
)
"""``SignatureMethod`` URIs accepted in X-Road signatures, and their schemes."""
_C14N: Final = {
    C14N_INCLUSIVE: (False, False),
    C14N_INCLUSIVE_COMMENTS: (False, True),
    C14N_EXCLUSIVE: (True, False),
    C14N_EXCLUSIVE_COMMENTS: (True, True),
}
_WHITESPACE: Final = re.compile(rb"\s+")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | Signer
"""A ``cryptography`` private key, or a :class:`~xroad_mn.algorithms.Signer` (a token's key, never seen)."""


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


def signature_method_for(key: PrivateKey) -> str:
    """The ``SignatureMethod`` X-Road uses for a key: rsa-sha512 or ecdsa-sha512."""
    if key_type(key) == "rsa":
        return SIGNATURE_RSA_SHA512
    return SIGNATURE_ECDSA_SHA512


def signature_scheme(method_uri: str) -> SignatureScheme:
    """The scheme of a ``SignatureMethod`` X-Road's signatures may use (ECDSA values raw ``r‖s``);
    ``malformed_signature`` for any other."""
    found = SIGNATURE_METHODS.get(method_uri)
    if found is None:
        raise XRoadError(FaultCode.MALFORMED_SIGNATURE, f"unsupported signature method {method_uri[:80]!r}")
    return found
