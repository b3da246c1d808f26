"""Certificates: loading, hashes, X-Road certificate profiles, key usage and chain checks.

Sans-I/O helpers shared by the signature, OCSP, time-stamp and global-configuration code. Every failure is
an :class:`~xroad_mn.errors.XRoadError`.

Example::

    >>> from datetime import UTC, datetime
    >>> from pathlib import Path
    >>> from xroad_mn.certs import cert_hash_hex, load_certificate, profile_for, verify_chain
    >>> from xroad_mn.globalconf.trust import load_trust_material
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, NameOID

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import MemberId

if TYPE_CHECKING:
    from xroad_mn.globalconf.trust import ApprovedCA, TrustMaterial

__all__ = [
    "BASIC_PROFILE",
    "EJBCA_PROFILE",
    "FIVRK_PROFILE",
    "MAX_CERTIFICATE_BYTES",
    "MAX_CHAIN_DEPTH",
    "MAX_PATH_ATTEMPTS",
    "PKIX_CRITICAL_EXTENSIONS",
    "TEST_PROFILE",
    "XROAD_MN_PROFILE",
    "BasicProfile",
    "CertPurpose",
    "CertificateProfile",
    "EjbcaProfile",
    "FiVRKProfile",
    "TestProfile",
    "XRoadMnProfile",
    "cert_hash",
    "cert_hash_b64",
    "cert_hash_hex",
    "hash_algorithm_name",
    "instance_cas",
    "issued_by",
    "load_certificate",
    "load_certificates",
    "profile_for",
    "same_certificate",
    "verify_auth_key_usage",
    "verify_chain",
    "verify_signing_key_usage",
]

MAX_CERTIFICATE_BYTES: Final = 256 * 1024
"""Largest encoded certificate (or PEM bundle) accepted; real certificates are a few kilobytes."""
MAX_CHAIN_DEPTH: Final = 8
"""Most certificates in a path from the end-entity certificate to the approved top CA, both included."""
MAX_PATH_ATTEMPTS: Final = 64
"""Most candidate issuers :func:`verify_chain` tries while building a path (CAs may share a name)."""
PKIX_CRITICAL_EXTENSIONS: Final = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.NAME_CONSTRAINTS,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.POLICY_MAPPINGS,
        ExtensionOID.POLICY_CONSTRAINTS,
        ExtensionOID.INHIBIT_ANY_POLICY,
    }
)
"""Critical extensions a PKIX path validator processes (Java's checkers remove exactly these)."""

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
            return [x509.load_der_x509_certificate(data)]
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
        return [x509.load_der_x509_certificate(decoded)]
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


def signing_member(cert: x509.Certificate, ca: ApprovedCA, *, default_instance: str) -> MemberId:
    """The member a signing certificate names, read by the certificate profile of the CA that issued it.

    ``default_instance`` stands in for a CA whose global configuration gave no instance.
    """
    return profile_for(ca.certificate_profile_info, ca.instance or default_instance).member_id(cert)


# ------------------------------------------------------------------------------------------------------------
# Key usage


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as e:
        raise _bad_cert(f"certificate extensions cannot be parsed: {e}") from e


def verify_signing_key_usage(cert: x509.Certificate) -> None:
    """A signing certificate must carry key usage nonRepudiation (``CertUtils.isSigningCert``)."""
    usage = _key_usage(cert)
    if usage is None or not usage.content_commitment:
        raise _bad_cert(f"certificate {cert.subject.rfc4514_string()} is not a signing certificate")


def verify_auth_key_usage(cert: x509.Certificate) -> None:
    """An authentication certificate must carry key usage digitalSignature (``CertUtils.isAuthCert``)."""
    usage = _key_usage(cert)
    if usage is None or not usage.digital_signature:
        raise _bad_cert(f"certificate {cert.subject.rfc4514_string()} is not an authentication certificate")


# ------------------------------------------------------------------------------------------------------------
# Chain validation
#
# Why not cryptography.x509.verification (PolicyBuilder)? Its verifiers implement the CA/Browser-Forum web PKI
# profile: a leaf must carry the serverAuth/clientAuth EKU (X-Road signing certificates carry key usage
# nonRepudiation only and usually no EKU), SHA-1 signatures are refused (real 2012-2015 X-Road CAs such as
# AdminCA1 sign with sha1WithRSA), and CA certificates must meet RFC 5280 profile details that X-Road test
# and national CAs do not. It also answers "is there a path", not "which approved CA, with which profile and
# instance". X-Road itself runs a plain PKIX path check against the approved top CAs of the signer's instance,
# so that is what this does by hand: issuer match and signature (issued_by), validity at `at` for every
# certificate below the trust anchor, basicConstraints/keyCertSign/pathLen for every intermediate CA, no
# unrecognised critical extension, a search over every candidate issuer and a bounded depth.

CertPurpose = Literal["signing", "authentication"]


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise XRoadError(FaultCode.INTERNAL_ERROR, "verification time must be timezone-aware")
    return at.astimezone(UTC)


def _check_validity(cert: x509.Certificate, at: datetime, role: str) -> None:
    if at < cert.not_valid_before_utc:
        raise XRoadError(
            FaultCode.CERT_VALIDATION,
            f"{role} certificate {cert.subject.rfc4514_string()} is not yet valid at {at.isoformat()} "
            f"(valid from {cert.not_valid_before_utc.isoformat()})",
        )
    if at > cert.not_valid_after_utc:
        raise XRoadError(
            FaultCode.CERT_VALIDATION,
            f"{role} certificate {cert.subject.rfc4514_string()} expired at "
            f"{cert.not_valid_after_utc.isoformat()}, before {at.isoformat()}",
        )


def _verify_signature_by_hand(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    key = issuer.public_key()
    params = cert.signature_algorithm_parameters
    algorithm = cert.signature_hash_algorithm
    if isinstance(key, rsa.RSAPublicKey) and isinstance(params, padding.PKCS1v15 | padding.PSS):
        if algorithm is None:
            raise InvalidSignature
        key.verify(cert.signature, cert.tbs_certificate_bytes, params, algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
        key.verify(cert.signature, cert.tbs_certificate_bytes, params)
    elif isinstance(key, dsa.DSAPublicKey) and algorithm is not None:
        key.verify(cert.signature, cert.tbs_certificate_bytes, algorithm)
    else:
        raise InvalidSignature


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s subject is ``cert``'s issuer and ``issuer``'s key signed ``cert``.

    ``verify_directly_issued_by`` refuses SHA-1 signatures; real X-Road CAs of 2012-2015 (AdminCA1, the
    EE test CA "Cyber") sign with sha1WithRSA and X-Road accepts them, so those are checked by hand.
    """
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except ValueError:
        try:
            _verify_signature_by_hand(cert, issuer)
        except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
            return False
    except (TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _check_ca(ca: x509.Certificate, below: int, role: str) -> None:
    """``ca`` must be a CA whose path length allows ``below`` intermediate CAs under it."""
    name = ca.subject.rfc4514_string()
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    except ValueError as e:
        raise XRoadError(FaultCode.INVALID_CERT_PATH, f"{role} {name} has malformed extensions: {e}") from e
    if constraints is None or not constraints.ca:
        raise XRoadError(
            FaultCode.INVALID_CERT_PATH, f"{role} {name} is not a CA (basicConstraints cA=false)"
        )
    if constraints.path_length is not None and below > constraints.path_length:
        raise XRoadError(
            FaultCode.INVALID_CERT_PATH,
            f"{role} {name} allows {constraints.path_length} intermediate CAs below it, path has {below}",
        )
    usage = _key_usage(ca)
    if usage is not None and not usage.key_cert_sign:
        raise XRoadError(FaultCode.INVALID_CERT_PATH, f"{role} {name} lacks key usage keyCertSign")


def _dedupe(certs: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    seen: set[bytes] = set()
    out: list[x509.Certificate] = []
    for c in certs:
        der = c.public_bytes(Encoding.DER)
        if der not in seen:
            seen.add(der)
            out.append(c)
    return out


def _approved_for(
    top: x509.Certificate, cas: Sequence[ApprovedCA], purpose: CertPurpose
) -> tuple[ApprovedCA | None, bool]:
    """The approved CA entry for ``top``; the flag says an entry exists but is only for authentication."""
    auth_only = False
    for ca in cas:
        if same_certificate(ca.top_ca, top):
            if purpose == "signing" and ca.authentication_only:
                auth_only = True
                continue
            return ca, auth_only
    return None, auth_only


def _check_critical_extensions(cert: x509.Certificate, role: str) -> None:
    """Refuse a critical extension PKIX does not process (RFC 5280 4.2; Java's PKIXCertPathValidator)."""
    try:
        extensions = list(cert.extensions)
    except ValueError as e:
        raise XRoadError(
            FaultCode.INVALID_CERT_PATH,
            f"{role} certificate {cert.subject.rfc4514_string()} has malformed extensions: {e}",
        ) from e
    for ext in extensions:
        if ext.critical and ext.oid not in PKIX_CRITICAL_EXTENSIONS:
            raise XRoadError(
                FaultCode.INVALID_CERT_PATH,
                f"{role} certificate {cert.subject.rfc4514_string()} carries an unrecognised critical "
                f"extension {ext.oid.dotted_string}",
            )


def _check_depth(length: int) -> None:
    if length >= MAX_CHAIN_DEPTH:
        raise XRoadError(
            FaultCode.INVALID_CERT_PATH, f"certificate path is longer than {MAX_CHAIN_DEPTH} certificates"
        )


def instance_cas(trust: TrustMaterial, instance: str | None) -> tuple[ApprovedCA, ...]:
    """The approved CAs of ``instance`` (all of them when ``instance`` is None).

    An entry without an instance of its own belongs to ``trust.instance``.
    """
    if instance is None:
        return tuple(trust.approved_cas)
    return tuple(ca for ca in trust.approved_cas if (ca.instance or trust.instance) == instance)


def verify_chain(
    cert: x509.Certificate,
    *,
    intermediates: Sequence[x509.Certificate],
    trust: TrustMaterial,
    at: datetime,
    purpose: CertPurpose = "signing",
    instance: str | None = None,
) -> ApprovedCA:
    """Validate ``cert`` up to an approved top CA at time ``at``; return that approved CA.

    Intermediate CAs come from ``intermediates`` (e.g. sent with the message) and from global
    configuration. A CA approved with ``authenticationOnly`` does not vouch for signing certificates.
    ``instance`` limits the trusted CAs to those one instance approves (X-Road verifies a member's
    certificate against the CAs of the member's own instance, ``GlobalConf.getCaCert(instance, cert)``);
    None trusts every CA of ``trust``.

    The approved top CA is the trust anchor: it is trusted as configured (its own validity period and
    extensions are not checked, as in Java's PKIX). Every other certificate must be valid at ``at`` and
    carry no critical extension PKIX does not know; every intermediate must be a CA allowing the path
    below it. Every candidate issuer is tried (certificates may share a name), up to
    :data:`MAX_PATH_ATTEMPTS` steps.

    Raises ``invalid_cert_path_x`` when no path exists or a CA is unfit, ``cert_validation`` when a
    certificate is outside its validity at ``at``.
    """
    when = _utc(at)
    # 1. The end-entity certificate is valid at `at` and has no critical extension PKIX does not process.
    _check_validity(cert, when, "end-entity")
    _check_critical_extensions(cert, "end-entity")
    cas = instance_cas(trust, instance)
    if not cas:
        raise XRoadError(
            FaultCode.INVALID_CERT_PATH,
            f"instance {instance} has no approved CA in the trusted configuration",
        )
    tops = _dedupe(ca.top_ca for ca in cas)
    pool = _dedupe([*intermediates, *(i for ca in cas for i in ca.intermediates)])
    attempts = [0]

    def extend(path: list[x509.Certificate]) -> ApprovedCA:
        attempts[0] += 1
        if attempts[0] > MAX_PATH_ATTEMPTS:
            raise XRoadError(
                FaultCode.INVALID_CERT_PATH, f"no certificate path found within {MAX_PATH_ATTEMPTS} steps"
            )
        current = path[-1]
        first_error: XRoadError | None = None
        # 2. Does an approved top CA (the trust anchor) issue the current certificate directly?
        for top in tops:
            if not issued_by(current, top):
                continue
            approved, auth_only = _approved_for(top, cas, purpose)
            if approved is not None:
                return approved
            why = "is approved for authentication only" if auth_only else "is not approved"
            first_error = first_error or XRoadError(
                FaultCode.INVALID_CERT_PATH, f"CA {top.subject.rfc4514_string()} {why} for {purpose}"
            )
        # 3. Otherwise each intermediate CA that issued it, not already on the path: it must be a CA that
        #    allows the intermediates below it, valid at `at`, and lead on to an approved top CA.
        for issuer in pool:
            if any(same_certificate(issuer, p) for p in path) or not issued_by(current, issuer):
                continue
            try:
                _check_depth(len(path) + 1)
                _check_ca(issuer, len(path) - 1, "intermediate CA")
                _check_validity(issuer, when, "intermediate CA")
                _check_critical_extensions(issuer, "intermediate CA")
                return extend([*path, issuer])
            except XRoadError as e:
                first_error = first_error or e
        if first_error is not None:
            raise first_error
        raise XRoadError(
            FaultCode.INVALID_CERT_PATH,
            f"no approved CA or known intermediate CA issued {current.subject.rfc4514_string()} "
            f"(issuer {current.issuer.rfc4514_string()})",
        )

    return extend([cert])
