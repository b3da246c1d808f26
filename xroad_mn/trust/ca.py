"""The certification authority's policy: a PKCS#10 request and a profile in, a certificate out (no I/O).

Two profiles, as an X-Road CA offers them:

* ``sign`` — a member's signing certificate. Like X-Road's EJBCA profile, the member comes from the
  request's subject: ``C`` = instance (must be the CA's), ``O`` = member class, ``CN`` = member code, and
  nothing else. Every part must use X-Road's strict identifier characters. The certificate carries
  keyUsage nonRepudiation only (critical), so a verifier maps it back to exactly that member.
* ``auth`` — a security server's TLS certificate: the request's subject (with a CN) and any requested
  subjectAltName, keyUsage digitalSignature + keyEncipherment, EKU serverAuth + clientAuth.

Example::

    >>> from datetime import UTC, datetime
    >>> cert = issue_from_csr(csr_pem, Profile.SIGN, ca=ca, instance="MN",
    ...                       now=datetime.now(UTC))  # doctest: +SKIP
    >>> member_from_subject(cert.subject, "MN")  # doctest: +SKIP
    MemberId(instance='MN', member_class='GOV', member_code='5012345')
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import MemberId, validate_part
from xroad_mn.trust.pki import (
    CertifiedKey,
    PublicKey,
    auth_profile_extensions,
    issue_certificate,
    member_subject,
    sign_profile_extensions,
)

__all__ = [
    "LEAF_VALIDITY",
    "MAX_CSR_BYTES",
    "MIN_RSA_KEY_SIZE",
    "Profile",
    "issue_from_csr",
    "load_csr",
    "member_from_subject",
]

MAX_CSR_BYTES: Final = 64 * 1024
"""Largest certificate signing request accepted (PEM or DER)."""
MIN_RSA_KEY_SIZE: Final = 2048
LEAF_VALIDITY: Final = timedelta(days=365)
"""Validity of issued certificates (clipped to the CA's own)."""
CLOCK_SKEW: Final = timedelta(minutes=5)
"""Issued certificates start this long before ``now``, so a peer with a slow clock accepts them."""
_ALLOWED_CURVES: Final = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_MEMBER_ATTRIBUTES: Final = {
    NameOID.COUNTRY_NAME: "C (instance)",
    NameOID.ORGANIZATION_NAME: "O (member class)",
    NameOID.COMMON_NAME: "CN (member code)",
}


class Profile(StrEnum):
    """Certificate profiles the CA issues."""

    AUTH = "auth"
    SIGN = "sign"


def _invalid(message: str) -> XRoadError:
    return XRoadError(FaultCode.INVALID_CSR, message, http_status=400)


def _check_public_key(key: object) -> PublicKey:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_KEY_SIZE:
            raise _invalid(
                f"RSA key of {key.key_size} bits is too short; at least {MIN_RSA_KEY_SIZE} are needed"
            )
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _ALLOWED_CURVES):
            raise _invalid(f"elliptic curve {key.curve.name} is not supported; use P-256, P-384 or P-521")
        return key
    raise _invalid(f"public key type {type(key).__name__} is not supported; use RSA or EC")


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Parse a PKCS#10 request (PEM or DER) and verify its self-signature and key."""
    if len(data) > MAX_CSR_BYTES:
        raise XRoadError(
            FaultCode.REQUEST_TOO_LARGE, f"CSR is larger than {MAX_CSR_BYTES} bytes", http_status=400
        )
    try:
        csr = x509.load_pem_x509_csr(data) if b"-----BEGIN" in data else x509.load_der_x509_csr(data)
        signature_valid = csr.is_signature_valid
        public_key = csr.public_key()
    except (ValueError, TypeError) as e:
        raise _invalid(f"malformed certificate signing request: {e}") from e
    if not signature_valid:
        raise _invalid("the CSR's self-signature does not verify")
    _check_public_key(public_key)
    return csr


def member_from_subject(subject: x509.Name, instance: str) -> MemberId:
    """The member a sign-profile subject names (C=instance, O=class, CN=code), or ``invalid_csr``."""
    values: dict[x509.ObjectIdentifier, str] = {}
    for rdn in subject.rdns:
        for attribute in rdn:
            oid = attribute.oid
            if oid not in _MEMBER_ATTRIBUTES:
                raise _invalid(
                    f"subject attribute {attribute.rfc4514_attribute_name} is not allowed; "
                    "a signing certificate's subject is exactly C=instance, O=member class, CN=member code"
                )
            if oid in values:
                raise _invalid(f"subject names {_MEMBER_ATTRIBUTES[oid]} more than once")
            raw = attribute.value
            values[oid] = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")
    for oid, label in _MEMBER_ATTRIBUTES.items():
        value = values.get(oid)
        if value is None:
            raise _invalid(f"subject names no {label}; expected C=instance, O=member class, CN=member code")
        try:
            validate_part(f"subject {label}", value, code=FaultCode.INVALID_CSR, strict=True)
        except XRoadError as e:
            raise XRoadError(e.code, e.message, details=e.details, http_status=400) from e
    if values[NameOID.COUNTRY_NAME] != instance:
        raise _invalid(f"subject C {values[NameOID.COUNTRY_NAME]!r} is not this CA's instance {instance!r}")
    return MemberId(instance, values[NameOID.ORGANIZATION_NAME], values[NameOID.COMMON_NAME])


def _auth_subject(subject: x509.Name) -> x509.Name:
    if not subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        raise _invalid("an authentication certificate's subject needs a CN")
    return subject


def _requested_alt_names(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    try:
        ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    except ValueError as e:
        raise _invalid(f"malformed requested extensions: {e}") from e
    return list(ext.value)


def issue_from_csr(
    csr_data: bytes | x509.CertificateSigningRequest,
    profile: Profile,
    *,
    ca: CertifiedKey,
    instance: str,
    now: datetime,
    serial: int | None = None,
    validity: timedelta = LEAF_VALIDITY,
) -> x509.Certificate:
    """Issue a ``profile`` certificate for the request, signed by ``ca``; raise ``invalid_csr`` if refused."""
    csr = csr_data if isinstance(csr_data, x509.CertificateSigningRequest) else load_csr(csr_data)
    public_key = _check_public_key(csr.public_key())
    if profile is Profile.SIGN:
        subject = member_subject(member_from_subject(csr.subject, instance))
        extensions = sign_profile_extensions()
    else:
        subject = _auth_subject(csr.subject)
        extensions = auth_profile_extensions(_requested_alt_names(csr))
    return issue_certificate(
        ca,
        subject=subject,
        public_key=public_key,
        not_before=now - CLOCK_SKEW,
        not_after=now + validity,
        extensions=extensions,
        serial=serial,
    )
