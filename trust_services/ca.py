"""The certification authority's policy: a PKCS#10 request and a profile in, a certificate out (no I/O).

Two profiles, as an X-Road CA offers them:

* ``sign`` — a member's signing certificate. Like X-Road's EJBCA profile, the member comes from the
  request's subject: ``C`` = instance (must be the CA's), ``O`` = member class, ``CN`` = member code, and
  nothing else. Every part must use X-Road's strict identifier characters. The certificate carries
  keyUsage nonRepudiation only (critical), so a verifier maps it back to exactly that member.
* ``auth`` — a security server's TLS certificate, keyUsage digitalSignature + keyEncipherment, EKU
  serverAuth + clientAuth. The subject names the security server: ``C`` = instance (the CA's) and
  ``CN`` = server code, as X-Road's EJBCA auth profile has it, plus ``O`` = the owner's member class and
  optionally ``serialNumber`` = the owner's member code; nothing else, each part in X-Road's strict
  identifier characters (:func:`server_from_subject`). A requested subjectAltName may hold DNS names
  (host names, no wildcards) and IP addresses (not unspecified, multicast or broadcast) only
  (:func:`check_alt_names`). The certificate carries what was checked, rebuilt, never the request's
  bytes.

Example::

    >>> from datetime import UTC, datetime
    >>> cert = issue_from_csr(csr_pem, Profile.SIGN, ca=ca, instance="MN",
    ...                       now=datetime.now(UTC))  # doctest: +SKIP
    >>> member_from_subject(cert.subject, "MN")  # doctest: +SKIP
    MemberId(instance='MN', member_class='GOV', member_code='5012345')
"""

from __future__ import annotations

import ipaddress
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from trust_services.pki import (
    CertifiedKey,
    PublicKey,
    auth_profile_extensions,
    issue_certificate,
    member_subject,
    server_subject,
    sign_profile_extensions,
)
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import MemberId, validate_part

__all__ = [
    "LEAF_VALIDITY",
    "MAX_ALT_NAMES",
    "MAX_CSR_BYTES",
    "MIN_RSA_KEY_SIZE",
    "Profile",
    "ServerSubject",
    "check_alt_names",
    "issue_from_csr",
    "load_csr",
    "member_from_subject",
    "server_from_subject",
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


_SERVER_ATTRIBUTES: Final = {
    NameOID.COUNTRY_NAME: "C (instance)",
    NameOID.ORGANIZATION_NAME: "O (member class)",
    NameOID.COMMON_NAME: "CN (server code)",
    NameOID.SERIAL_NUMBER: "serialNumber (member code)",
}
_SERVER_REQUIRED: Final = (NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME)
MAX_ALT_NAMES: Final = 32
"""Most subjectAltName entries an authentication certificate may carry."""
MAX_DNS_NAME_CHARS: Final = 253
_DNS_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_IPV4_BROADCAST: Final = ipaddress.IPv4Address("255.255.255.255")


class Profile(StrEnum):
    """Certificate profiles the CA issues."""

    AUTH = "auth"
    SIGN = "sign"


def _invalid(message: str) -> XRoadError:
    return XRoadError(FaultCode.INVALID_CSR, message, kind=ErrorKind.BAD_INPUT)


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
            FaultCode.REQUEST_TOO_LARGE, f"CSR is larger than {MAX_CSR_BYTES} bytes", kind=ErrorKind.BAD_INPUT
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


def _subject_values(
    subject: x509.Name,
    allowed: dict[x509.ObjectIdentifier, str],
    required: tuple[x509.ObjectIdentifier, ...],
    *,
    instance: str,
    layout: str,
) -> dict[x509.ObjectIdentifier, str]:
    """The subject's values of ``allowed`` attributes, each once, strict X-Road characters, C = instance."""
    values: dict[x509.ObjectIdentifier, str] = {}
    for rdn in subject.rdns:
        for attribute in rdn:
            oid = attribute.oid
            if oid not in allowed:
                raise _invalid(
                    f"subject attribute {attribute.rfc4514_attribute_name} is not allowed; {layout}"
                )
            if oid in values:
                raise _invalid(f"subject names {allowed[oid]} more than once")
            raw = attribute.value
            values[oid] = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")
    for oid in required:
        if oid not in values:
            raise _invalid(f"subject names no {allowed[oid]}; {layout}")
    for oid, value in values.items():
        try:
            validate_part(f"subject {allowed[oid]}", value, code=FaultCode.INVALID_CSR, strict=True)
        except XRoadError as e:
            raise XRoadError(e.code, e.message, details=e.details, kind=ErrorKind.BAD_INPUT) from e
    if values[NameOID.COUNTRY_NAME] != instance:
        raise _invalid(f"subject C {values[NameOID.COUNTRY_NAME]!r} is not this CA's instance {instance!r}")
    return values


def member_from_subject(subject: x509.Name, instance: str) -> MemberId:
    """The member a sign-profile subject names (C=instance, O=class, CN=code), or ``invalid_csr``."""
    values = _subject_values(
        subject,
        _MEMBER_ATTRIBUTES,
        tuple(_MEMBER_ATTRIBUTES),
        instance=instance,
        layout="a signing certificate's subject is exactly C=instance, O=member class, CN=member code",
    )
    return MemberId(instance, values[NameOID.ORGANIZATION_NAME], values[NameOID.COMMON_NAME])


@dataclass(frozen=True)
class ServerSubject:
    """What an auth-profile subject names: the instance, the owner's member class (and code) and server."""

    instance: str
    member_class: str
    server_code: str
    member_code: str | None = None

    def name(self) -> x509.Name:
        """The certificate subject, rebuilt from the checked parts."""
        return server_subject(self.instance, self.member_class, self.server_code, self.member_code)


def server_from_subject(subject: x509.Name, instance: str) -> ServerSubject:
    """The security server an auth-profile subject names, or ``invalid_csr``.

    Exactly ``C`` = instance (this CA's), ``O`` = member class, ``CN`` = server code, and optionally
    ``serialNumber`` = member code, each once and in X-Road's strict identifier characters.
    """
    values = _subject_values(
        subject,
        _SERVER_ATTRIBUTES,
        _SERVER_REQUIRED,
        instance=instance,
        layout="an authentication certificate's subject is C=instance, O=member class, CN=server code "
        "and optionally serialNumber=member code",
    )
    return ServerSubject(
        instance,
        values[NameOID.ORGANIZATION_NAME],
        values[NameOID.COMMON_NAME],
        values.get(NameOID.SERIAL_NUMBER),
    )


def _check_dns_name(name: str) -> None:
    if "*" in name:
        raise _invalid(f"subjectAltName DNS name {name!r} is a wildcard; name each host")
    labels = name.split(".")
    if len(name) > MAX_DNS_NAME_CHARS or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise _invalid(
            f"subjectAltName DNS name {name[:80]!r} is not a host name (labels of letters, digits and "
            "inner hyphens, at most 63 characters each, 253 in all, no trailing dot)"
        )


def _check_ip_address(value: object) -> None:
    if not isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise _invalid(f"subjectAltName IP address {value} is a network; name one address")
    if value.is_unspecified or value.is_multicast or value == _IPV4_BROADCAST:
        raise _invalid(f"subjectAltName IP address {value} is unspecified, multicast or broadcast")


def check_alt_names(names: list[x509.GeneralName]) -> list[x509.GeneralName]:
    """The requested subjectAltName entries if an authentication certificate may carry them.

    Only DNS names (host names, no wildcards) and single IP addresses (not unspecified, multicast or
    broadcast), at most :data:`MAX_ALT_NAMES`, none twice; anything else is ``invalid_csr``.
    """
    if len(names) > MAX_ALT_NAMES:
        raise _invalid(f"subjectAltName has {len(names)} entries; at most {MAX_ALT_NAMES} are allowed")
    out: list[x509.GeneralName] = []
    for name in names:
        if isinstance(name, x509.DNSName):
            _check_dns_name(name.value)
        elif isinstance(name, x509.IPAddress):
            _check_ip_address(name.value)
        else:
            raise _invalid(
                f"subjectAltName entry {type(name).__name__} is not allowed; "
                "an authentication certificate names DNS names and IP addresses only"
            )
        if name in out:
            raise _invalid(f"subjectAltName names {name.value} more than once")
        out.append(name)
    return out


def _requested_subject(csr: x509.CertificateSigningRequest) -> x509.Name:
    # cryptography warns (UserWarning) while reading a countryName that is not two characters; the
    # profile checks below judge C themselves, with a clear invalid_csr error, so the warning is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            return csr.subject
        except ValueError as e:
            raise _invalid(f"malformed subject: {e}") from e


def _requested_alt_names(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    try:
        ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    except x509.DuplicateExtension as e:
        raise _invalid(f"the CSR requests extension {e.oid.dotted_string} more than once") from e
    except x509.UnsupportedGeneralNameType as e:
        raise _invalid(
            f"the CSR requests a subjectAltName entry of an unsupported type ({e}); "
            "an authentication certificate names DNS names and IP addresses only"
        ) from e
    except ValueError as e:
        raise _invalid(f"malformed requested extensions: {e}") from e
    return check_alt_names(list(ext.value))


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
    requested = _requested_subject(csr)
    if profile is Profile.SIGN:
        subject = member_subject(member_from_subject(requested, instance))
        extensions = sign_profile_extensions()
    else:
        subject = server_from_subject(requested, instance).name()
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
