"""Certificates: loading, hashes, X-Road certificate profiles, key usage and chain checks.

Sans-I/O helpers shared by the signature, OCSP, time-stamp and global-configuration code. Every failure is
an :class:`~xroad_mn.errors.XRoadError`.

Example::

    >>> from datetime import UTC, datetime
    >>> from pathlib import Path
    >>> from xroad_mn.certs import cert_hash_hex, load_certificate, profile_for
    >>> from xroad_mn.validation import verify_chain
    >>> from xroad_mn.confclient.installed import load_trust_material
    >>> trust = load_trust_material(Path("/etc/xroad/globalconf"))  # doctest: +SKIP
    >>> cert = load_certificate(Path("sign.pem").read_bytes())  # PEM, DER, base64  # doctest: +SKIP
    >>> ca = verify_chain(cert, intermediates=(), trust=trust, at=datetime.now(UTC))  # doctest: +SKIP
    >>> profile_for(ca.certificate_profile_info, ca.instance).member_id(cert)  # doctest: +SKIP
    MemberId(instance='DEV', member_class='COM', member_code='4321')
    >>> cert_hash_hex(cert)  # SHA-1 hex: the :5577 OCSP download key  # doctest: +SKIP
    'a4c3...'

Certificate profiles map a signing certificate's subject to the member that owns it, as X-Road's
``CertificateProfileInfoProvider`` classes do; the approved CA names its class in global configuration
(``approvedCA/certificateProfileInfo``) and :func:`profile_for` maps that class name to an implementation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from xroad_mn import algorithms
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import MemberId

__all__ = [
    "BASIC_PROFILE",
    "EJBCA_PROFILE",
    "FIVRK_PROFILE",
    "MAX_CERTIFICATE_BYTES",
    "TEST_PROFILE",
    "XROAD_MN_PROFILE",
    "BasicProfile",
    "CertificateProfile",
    "EjbcaProfile",
    "FiVRKProfile",
    "TestProfile",
    "XRoadMnProfile",
    "cert_hash",
    "cert_hash_b64",
    "cert_hash_hex",
    "hash_algorithm_name",
    "issued_by",
    "key_usage",
    "load_certificate",
    "load_certificates",
    "load_der_certificate",
    "profile_for",
    "same_certificate",
    "verify_auth_key_usage",
    "verify_signing_key_usage",
]

MAX_CERTIFICATE_BYTES: Final = 256 * 1024
"""Largest encoded certificate (or PEM bundle) accepted; real certificates are a few kilobytes."""
_PEM_BEGIN: Final = b"-----BEGIN CERTIFICATE-----"
_PEM_BLOCK: Final = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_BASE64_TEXT: Final = re.compile(rb"^[A-Za-z0-9+/=\s]+$")

# Digest names as X-Road writes them: short names and the XML-DSig/XML-Enc URIs (global configuration's
# Hash-algorithm-id, Verification-certificate-hash).
_HASH_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "sha1": "sha1",
        "sha-1": "sha1",
        "sha224": "sha224",
        "sha-224": "sha224",
        "sha256": "sha256",
        "sha-256": "sha256",
        "sha384": "sha384",
        "sha-384": "sha384",
        "sha512": "sha512",
        "sha-512": "sha512",
        "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
        "http://www.w3.org/2001/04/xmldsig-more#sha224": "sha224",
        "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
    }
)


# ------------------------------------------------------------------------------------------------------------
# Loading and hashing


def _bad_cert(message: str) -> XRoadError:
    return XRoadError(FaultCode.INCORRECT_CERTIFICATE, message)


def _decode_pem_blocks(data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise _bad_cert(f"PEM certificate cannot be parsed: {e}") from e


def load_der_certificate(der: bytes) -> x509.Certificate:
    """Parse a DER certificate, names included: ``cryptography`` reads the issuer and subject only when
    asked, so a malformed name would otherwise surface later, inside path building. ``ValueError`` for
    anything malformed."""
    cert = x509.load_der_x509_certificate(der)
    with warnings.catch_warnings():
        # Legacy X-Road names carry instance codes such as "FI-DEV" in C (see _subject_value).
        warnings.simplefilter("ignore", UserWarning)
        _ = (cert.issuer, cert.subject)
    return cert


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Load one or more certificates: a PEM bundle, DER, or base64 text of DER or of PEM.

    X-Road stores certificates as base64 of DER in some places and base64 of PEM text in others
    (shared-params of different instances); both are decoded here.
    """
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise _bad_cert(f"certificate data is larger than {MAX_CERTIFICATE_BYTES} bytes")
    if data[:1] == b"\x30":
        # Binary DER: never strip it, its last bytes may well look like whitespace.
        try:
            return [load_der_certificate(data)]
        except ValueError as e:
            raise _bad_cert(f"DER certificate cannot be parsed: {e}") from e
    stripped = data.strip()
    if not stripped:
        raise _bad_cert("certificate data is empty")
    if _PEM_BEGIN in stripped:
        return _decode_pem_blocks(stripped)
    if not _BASE64_TEXT.match(stripped):
        raise _bad_cert("certificate data is neither PEM, DER nor base64")
    try:
        decoded = base64.b64decode(b"".join(stripped.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise _bad_cert(f"certificate base64 cannot be decoded: {e}") from e
    if _PEM_BEGIN in decoded:
        return _decode_pem_blocks(decoded)
    try:
        return [load_der_certificate(decoded)]
    except ValueError as e:
        raise _bad_cert(f"base64-encoded DER certificate cannot be parsed: {e}") from e


def load_certificate(data: bytes) -> x509.Certificate:
    """Load exactly one certificate from PEM, DER, or base64 text of DER or of PEM."""
    certs = load_certificates(data)
    if len(certs) != 1:
        raise _bad_cert(f"expected one certificate, found {len(certs)}")
    return certs[0]


def hash_algorithm_name(alg: str) -> str:
    """Normalise a digest name or XML-DSig/XML-Enc URI to a hashlib name (``sha512``)."""
    name = _HASH_NAMES.get(alg.strip().lower())
    if name is None:
        raise XRoadError(FaultCode.INVALID_REQUEST, f"unsupported hash algorithm: {alg!r}")
    return name


def cert_hash(cert: x509.Certificate, alg: str = "sha512") -> bytes:
    """Digest of the certificate's DER encoding (X-Road's ``calculateCertHash``)."""
    return hashlib.new(hash_algorithm_name(alg), cert.public_bytes(Encoding.DER)).digest()


def cert_hash_b64(cert: x509.Certificate, alg: str = "sha512") -> str:
    """Base64 digest of the DER certificate: ``authCertHash`` (SHA-1 in V2, SHA-256 in V3+) and
    ``Verification-certificate-hash`` (SHA-512)."""
    return base64.b64encode(cert_hash(cert, alg)).decode("ascii")


def cert_hash_hex(cert: x509.Certificate, alg: str = "sha1", *, upper: bool = False, sep: str = "") -> str:
    """Hex digest of the DER certificate: lower-case SHA-1 is the ``cert=`` key of the :5577 OCSP
    download and the OCSP cache file name; ``upper=True, sep=":"`` is the admin UI form."""
    digest = cert_hash(cert, alg).hex()
    if upper:
        digest = digest.upper()
    return sep.join(digest[i : i + 2] for i in range(0, len(digest), 2)) if sep else digest


def same_certificate(a: x509.Certificate, b: x509.Certificate) -> bool:
    """True when both are the same certificate (equal DER encoding)."""
    return a.public_bytes(Encoding.DER) == b.public_bytes(Encoding.DER)


# ------------------------------------------------------------------------------------------------------------
# Certificate profiles


def _subject_value(cert: x509.Certificate, oid: x509.ObjectIdentifier, label: str) -> str | None:
    with warnings.catch_warnings():
        # Legacy X-Road subjects carry instance codes such as "FI-DEV" in C; cryptography warns that a
        # country name is not two letters. That is data to read here, not a defect to report.
        warnings.simplefilter("ignore", UserWarning)
        attrs = cert.subject.get_attributes_for_oid(oid)
    if not attrs:
        return None
    if len(attrs) > 1:
        # X-Road takes the first value; two values for an attribute that names the member are ambiguous.
        raise _bad_cert(f"Certificate subject name contains more than one {label}")
    value = attrs[0].value
    text = value if isinstance(value, str) else value.decode("utf-8", "replace")
    return text if text else None


def _require(cert: x509.Certificate, oid: x509.ObjectIdentifier, label: str) -> str:
    value = _subject_value(cert, oid, label)
    if value is None:
        raise _bad_cert(f"Certificate subject name does not contain {label}")
    return value


def _member(instance: str, member_class: str, member_code: str) -> MemberId:
    try:
        return MemberId(instance, member_class, member_code)
    except XRoadError as e:
        raise _bad_cert(f"Certificate subject does not name a valid member: {e.message}") from e


class CertificateProfile(Protocol):
    """Maps a signing certificate's subject to the member that owns the key."""

    @property
    def class_name(self) -> str:
        """The ``certificateProfileInfo`` class name this profile implements."""
        ...

    def member_id(self, cert: x509.Certificate) -> MemberId:
        """The member named by ``cert``'s subject; raises ``incorrect_certificate`` if it names none."""
        ...


BASIC_PROFILE: Final = "ee.ria.xroad.common.certificateprofile.impl.BasicCertificateProfileInfoProvider"
EJBCA_PROFILE: Final = "ee.ria.xroad.common.certificateprofile.impl.EjbcaCertificateProfileInfoProvider"
FIVRK_PROFILE: Final = "ee.ria.xroad.common.certificateprofile.impl.FiVRKCertificateProfileInfoProvider"
TEST_PROFILE: Final = "ee.ria.xroad.common.certificateprofile.impl.TestCertificateProfileInfoProvider"
XROAD_MN_PROFILE: Final = "xroad_mn"
"""Our own profile name. Java security servers load ``certificateProfileInfo`` as a class, so a registry
whose configuration real X-Road servers read should publish :data:`EJBCA_PROFILE` (the same layout)."""


@dataclass(frozen=True, slots=True)
class BasicProfile:
    """``BasicCertificateProfileInfoProvider``: ``businessCategory`` = member class, ``serialNumber`` =
    member code; the instance is the approved CA's instance."""

    instance: str
    class_name: str = BASIC_PROFILE

    def member_id(self, cert: x509.Certificate) -> MemberId:
        member_class = _require(cert, NameOID.BUSINESS_CATEGORY, "business category")
        member_code = _require(cert, NameOID.SERIAL_NUMBER, "serial number")
        return _member(self.instance, member_class, member_code)


def _ejbca_member(cert: x509.Certificate) -> MemberId:
    # CertUtils.getSubjectClientId: C = instance, O = member class, CN = member code.
    instance = _require(cert, NameOID.COUNTRY_NAME, "country code")
    member_class = _require(cert, NameOID.ORGANIZATION_NAME, "organization")
    member_code = _require(cert, NameOID.COMMON_NAME, "common name")
    return _member(instance, member_class, member_code)


@dataclass(frozen=True, slots=True)
class EjbcaProfile:
    """``EjbcaCertificateProfileInfoProvider``: ``C`` = instance, ``O`` = member class, ``CN`` = code."""

    class_name: str = EJBCA_PROFILE

    def member_id(self, cert: x509.Certificate) -> MemberId:
        return _ejbca_member(cert)


@dataclass(frozen=True, slots=True)
class XRoadMnProfile:
    """Our own profile, the EJBCA layout: ``C`` = instance, ``O`` = member class, ``CN`` = member code."""

    class_name: str = XROAD_MN_PROFILE

    def member_id(self, cert: x509.Certificate) -> MemberId:
        return _ejbca_member(cert)


_FI_COMPONENTS: Final = 3


@dataclass(frozen=True, slots=True)
class FiVRKProfile:
    """``FiVRKCertificateProfileInfoProvider`` (``FISubjectClientIdDecoder``).

    - ``C=FI, O=<name>, CN=<memberCode>, serialNumber=<instance>/<serverCode>/<memberClass>``;
    - legacy, without ``serialNumber``: ``C=FI, O=<instance>, OU=<memberClass>, CN=<memberCode>``;
    - neither ``serialNumber`` nor ``OU``: the EJBCA layout (``C`` = instance, ``O`` = class, ``CN`` = code).
    """

    class_name: str = FIVRK_PROFILE

    def member_id(self, cert: x509.Certificate) -> MemberId:
        serial = _subject_value(cert, NameOID.SERIAL_NUMBER, "serial number")
        if serial is None:
            if _subject_value(cert, NameOID.ORGANIZATIONAL_UNIT_NAME, "organization unit") is None:
                return _ejbca_member(cert)
            self._require_fi(cert)
            instance = _require(cert, NameOID.ORGANIZATION_NAME, "organization")
            member_class = _require(cert, NameOID.ORGANIZATIONAL_UNIT_NAME, "organization unit")
            return _member(instance, member_class, _require(cert, NameOID.COMMON_NAME, "common name"))
        self._require_fi(cert)
        _require(cert, NameOID.ORGANIZATION_NAME, "organization")
        member_code = _require(cert, NameOID.COMMON_NAME, "common name")
        parts = serial.split("/")
        if len(parts) != _FI_COMPONENTS or not all(parts):
            raise _bad_cert("Certificate subject name's attribute serialNumber has invalid value")
        instance, _server_code, member_class = parts
        return _member(instance, member_class, member_code)

    @staticmethod
    def _require_fi(cert: x509.Certificate) -> None:
        if _subject_value(cert, NameOID.COUNTRY_NAME, "country code") != "FI":
            raise _bad_cert("Certificate subject name does not contain valid country code")


@dataclass(frozen=True, slots=True)
class TestProfile:
    """X-Road's ``TestCertificateProfileInfoProvider`` (used by its test configurations): the CA's
    instance, member class ``BUSINESS``, member code = ``CN``. Never approve it for production."""

    instance: str
    class_name: str = TEST_PROFILE

    def member_id(self, cert: x509.Certificate) -> MemberId:
        return _member(self.instance, "BUSINESS", _require(cert, NameOID.COMMON_NAME, "common name"))


def profile_for(class_name: str, instance: str) -> CertificateProfile:
    """The profile that ``approvedCA/certificateProfileInfo`` names, for a CA of ``instance``.

    Unknown class names raise ``incorrect_certificate``: a member cannot be derived without its profile.
    """
    name = class_name.strip()
    if name == BASIC_PROFILE:
        return BasicProfile(instance)
    if name == EJBCA_PROFILE:
        return EjbcaProfile()
    if name == FIVRK_PROFILE:
        return FiVRKProfile()
    if name == TEST_PROFILE:
        return TestProfile(instance)
    if name == XROAD_MN_PROFILE:
        return XRoadMnProfile()
    raise XRoadError(
        FaultCode.INCORRECT_CERTIFICATE,
        f"unsupported certificate profile {name!r}",
        details={"certificate_profile_info": name},
    )


# ------------------------------------------------------------------------------------------------------------
# Key usage


def key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as e:
        raise _bad_cert(f"certificate extensions cannot be parsed: {e}") from e


def verify_signing_key_usage(cert: x509.Certificate) -> None:
    """A signing certificate must carry key usage nonRepudiation (``CertUtils.isSigningCert``)."""
    usage = key_usage(cert)
    if usage is None or not usage.content_commitment:
        raise _bad_cert(f"certificate {cert.subject.rfc4514_string()} is not a signing certificate")


def verify_auth_key_usage(cert: x509.Certificate) -> None:
    """An authentication certificate must carry key usage digitalSignature (``CertUtils.isAuthCert``)."""
    usage = key_usage(cert)
    if usage is None or not usage.digital_signature:
        raise _bad_cert(f"certificate {cert.subject.rfc4514_string()} is not an authentication certificate")


# ------------------------------------------------------------------------------------------------------------
# Issuer


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s subject is ``cert``'s issuer and ``issuer``'s key signed ``cert``.

    Any scheme of :mod:`xroad_mn.algorithms` counts, SHA-1 included: real X-Road CAs of 2012-2015
    (AdminCA1, the EE test CA "Cyber") sign with sha1WithRSA and X-Road accepts them, which
    ``verify_directly_issued_by`` would refuse. An unknown algorithm or an unusable key is a no.
    """
    if cert.issuer != issuer.subject:
        return False
    try:
        scheme = algorithms.certificate_scheme(cert, code=FaultCode.INCORRECT_CERTIFICATE)
        algorithms.verify(
            issuer,
            scheme,
            cert.signature,
            cert.tbs_certificate_bytes,
            code=FaultCode.INCORRECT_CERTIFICATE,
            what="certificate signature",
        )
    except XRoadError:
        return False
    return True
