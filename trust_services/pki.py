"""Test and development PKI as code: certificate builders and a ready-made PKI against a frozen clock.

Everything here is pure (no I/O): keys are generated in memory and certificates are returned as
``cryptography`` objects. The same builders back the trust services' CA (:mod:`trust_services.ca`).

Example::

    >>> from datetime import UTC, datetime
    >>> pki = build_dev_pki(datetime(2025, 1, 1, tzinfo=UTC))  # doctest: +SKIP
    >>> pki.member_sign.chain == (pki.intermediate.certificate,)  # doctest: +SKIP
    True
    >>> pki.revoked_sign.certificate.serial_number in pki.revocations  # doctest: +SKIP
    True

Key generation dominates the cost (about a second for :func:`build_dev_pki`), so tests build the PKI once
per session in a fixture. Every certificate's validity is fixed relative to the ``now`` passed in, so a
test that freezes the clock at ``now`` sees the same verdicts every run.
"""

from __future__ import annotations

import ipaddress
import secrets
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import MemberId

__all__ = [
    "RSA_KEY_SIZE",
    "CertifiedKey",
    "DevPki",
    "PrivateKey",
    "PublicKey",
    "auth_profile_extensions",
    "build_dev_pki",
    "ca_name",
    "generate_ec_key",
    "generate_rsa_key",
    "issue_ca",
    "issue_certificate",
    "issue_ocsp_responder",
    "issue_tsa",
    "member_subject",
    "random_serial",
    "self_signed_ca",
    "server_subject",
    "sign_profile_extensions",
]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

RSA_KEY_SIZE: Final = 2048
"""RSA modulus size of generated keys: enough for development, and fast to generate."""
SERIAL_BITS: Final = 63
"""Serial numbers are random positive 63-bit integers (fit a signed 64-bit column, RFC 5280 §4.1.2.2)."""

DEV_ORGANIZATION: Final = "xroad-mn development"
DEV_MEMBER_CLASS: Final = "GOV"
DEV_MEMBER_CODE: Final = "5012345"
DEV_SERVER_CODE: Final = "ss1"


@dataclass(frozen=True)
class CertifiedKey:
    """A certificate, its private key and the issuer chain (nearest first, excluding the root)."""

    certificate: x509.Certificate
    private_key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def private_key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (development material only)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def generate_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)


def generate_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def random_serial() -> int:
    """A random positive serial number of at most 63 bits."""
    while True:
        serial = secrets.randbits(SERIAL_BITS)
        if serial > 0:
            return serial


def _country(value: str) -> x509.NameAttribute[str]:
    # X-Road's EJBCA layout puts the instance identifier in C. X.520 limits countryName to two
    # characters, but instance identifiers may be longer ("MN-DEV"); PrintableString covers every
    # X-Road strict identifier character, so longer values still encode faithfully.
    # (cryptography warns about such values; readers of these certificates will see that warning too.)
    if len(value) == 2:
        return x509.NameAttribute(NameOID.COUNTRY_NAME, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return x509.NameAttribute(NameOID.COUNTRY_NAME, value, _validate=False)


def member_subject(member: MemberId) -> x509.Name:
    """The subject X-Road's EJBCA-style profile maps to ``member``: C=instance, O=member class, CN=code."""
    return x509.Name(
        [
            _country(member.instance),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, member.member_class),
            x509.NameAttribute(NameOID.COMMON_NAME, member.member_code),
        ]
    )


def server_subject(
    instance: str, member_class: str, server_code: str, member_code: str | None = None
) -> x509.Name:
    """The subject of a security server's authentication certificate under our auth profile.

    ``C`` = instance and ``CN`` = server code, as X-Road's EJBCA auth profile names a security server,
    plus ``O`` = the owner's member class and, when given, ``serialNumber`` = the owner's member code.
    """
    attributes = [
        _country(instance),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, member_class),
        x509.NameAttribute(NameOID.COMMON_NAME, server_code),
    ]
    if member_code is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, member_code))
    return x509.Name(attributes)


def ca_name(common_name: str) -> x509.Name:
    """A distinguished name for one of our own CA, OCSP or TSA certificates."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _chain_below(issuer: CertifiedKey) -> tuple[x509.Certificate, ...]:
    """The chain of a certificate issued by ``issuer``: the issuer and its chain, excluding a root."""
    if _is_self_signed(issuer.certificate):
        return ()
    return (issuer.certificate, *issuer.chain)


def _signature_hash(key: PrivateKey) -> hashes.SHA256:
    del key  # SHA-256 for both RSA (PKCS#1 v1.5) and ECDSA keys
    return hashes.SHA256()


def issue_certificate(
    issuer: CertifiedKey,
    *,
    subject: x509.Name,
    public_key: PublicKey,
    not_before: datetime,
    not_after: datetime,
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
    serial: int | None = None,
) -> x509.Certificate:
    """Issue a certificate for ``public_key`` signed by ``issuer``.

    Adds subject and authority key identifiers; ``extensions`` lists ``(extension, critical)`` pairs.
    The validity is clipped to the issuer's, so a CA never issues past its own expiry.
    """
    issuer_cert = issuer.certificate
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(serial if serial is not None else random_serial())
        .not_valid_before(max(not_before, issuer_cert.not_valid_before_utc))
        .not_valid_after(min(not_after, issuer_cert.not_valid_after_utc))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    try:
        return builder.sign(issuer.private_key, _signature_hash(issuer.private_key))
    except ValueError as e:
        raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, f"cannot issue certificate: {e}") from e


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _key_usage(
    *, digital_signature: bool = False, non_repudiation: bool = False, key_encipherment: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=non_repudiation,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def self_signed_ca(
    subject: x509.Name, key: PrivateKey, *, not_before: datetime, not_after: datetime
) -> CertifiedKey:
    """A self-signed root CA certificate (basicConstraints CA, keyCertSign and cRLSign)."""
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return CertifiedKey(builder.sign(key, _signature_hash(key)), key, ())


def issue_ca(
    issuer: CertifiedKey,
    subject: x509.Name,
    key: PrivateKey,
    *,
    not_before: datetime,
    not_after: datetime,
    path_length: int | None = 0,
) -> CertifiedKey:
    """An intermediate CA certificate issued by ``issuer``."""
    cert = issue_certificate(
        issuer,
        subject=subject,
        public_key=key.public_key(),
        not_before=not_before,
        not_after=not_after,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=path_length), True),
            (_ca_key_usage(), True),
        ],
    )
    return CertifiedKey(cert, key, _chain_below(issuer))


def _leaf(
    ext_key_usage: x509.ExtendedKeyUsage | None, key_usage: x509.KeyUsage, *, eku_critical: bool = False
) -> list[tuple[x509.ExtensionType, bool]]:
    out: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (key_usage, True),
    ]
    if ext_key_usage is not None:
        out.append((ext_key_usage, eku_critical))
    return out


def sign_profile_extensions() -> list[tuple[x509.ExtensionType, bool]]:
    """A member signing certificate: keyUsage nonRepudiation only, critical (X-Road's sign profile)."""
    return _leaf(None, _key_usage(non_repudiation=True))


def auth_profile_extensions(
    alt_names: Sequence[x509.GeneralName] = (),
) -> list[tuple[x509.ExtensionType, bool]]:
    """A security server's TLS certificate: digitalSignature + keyEncipherment, serverAuth + clientAuth."""
    out = _leaf(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
        _key_usage(digital_signature=True, key_encipherment=True),
    )
    if alt_names:
        out.append((x509.SubjectAlternativeName(list(alt_names)), False))
    return out


def issue_ocsp_responder(
    issuer: CertifiedKey, subject: x509.Name, key: PrivateKey, *, not_before: datetime, not_after: datetime
) -> CertifiedKey:
    """A delegated OCSP responder certificate (EKU OCSPSigning, id-pkix-ocsp-nocheck) for ``issuer``."""
    extensions = _leaf(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]),
        _key_usage(digital_signature=True),
    )
    extensions.append((x509.OCSPNoCheck(), False))
    return _issue_leaf(issuer, subject, key, extensions, not_before=not_before, not_after=not_after)


def issue_tsa(
    issuer: CertifiedKey, subject: x509.Name, key: PrivateKey, *, not_before: datetime, not_after: datetime
) -> CertifiedKey:
    """A time-stamping authority certificate: EKU timeStamping only and critical (RFC 3161 §2.3)."""
    extensions = _leaf(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
        _key_usage(digital_signature=True, non_repudiation=True),
        eku_critical=True,
    )
    return _issue_leaf(issuer, subject, key, extensions, not_before=not_before, not_after=not_after)


def _issue_leaf(
    issuer: CertifiedKey,
    subject: x509.Name,
    key: PrivateKey,
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
    *,
    not_before: datetime,
    not_after: datetime,
) -> CertifiedKey:
    cert = issue_certificate(
        issuer,
        subject=subject,
        public_key=key.public_key(),
        not_before=not_before,
        not_after=not_after,
        extensions=extensions,
    )
    return CertifiedKey(cert, key, _chain_below(issuer))


def _frozen(
    mapping: Mapping[int, tuple[datetime, x509.ReasonFlags]],
) -> Mapping[int, tuple[datetime, x509.ReasonFlags]]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class DevPki:
    """A complete development PKI of one instance, valid relative to :attr:`now`.

    Root → intermediate → member certificates; the OCSP responder is delegated by the intermediate
    (it answers for the member certificates) and the TSA is issued by the root.
    """

    now: datetime
    instance: str
    member: MemberId
    """The member the signing and authentication certificates belong to (``MEMBER:MN/GOV/5012345``)."""
    root: CertifiedKey
    intermediate: CertifiedKey
    ocsp_responder: CertifiedKey
    """Delegated responder for certificates issued by :attr:`intermediate`."""
    tsa: CertifiedKey
    member_sign: CertifiedKey
    """Signing certificate of :attr:`member` (RSA): keyUsage nonRepudiation, subject C=MN,O=GOV,CN=5012345."""
    member_sign_ec: CertifiedKey
    """The same member's signing certificate with an EC P-256 key."""
    member_auth: CertifiedKey
    """TLS client and server certificate of security server ``ss1`` of :attr:`member` (SAN localhost,
    127.0.0.1), so tests can run real TLS with it. Its subject follows the CA's auth profile
    (:func:`server_subject`): ``C=MN, O=GOV, CN=ss1, serialNumber=5012345``."""
    expired_sign: CertifiedKey
    """BAD: expired — valid from ``now - 400 days`` until ``now - 35 days``."""
    revoked_sign: CertifiedKey
    """BAD: revoked one day before ``now`` for keyCompromise (listed in :attr:`revocations`)."""
    not_yet_valid_sign: CertifiedKey
    """BAD: not yet valid — its validity starts one day after ``now``."""
    wrong_key_usage_sign: CertifiedKey
    """BAD: keyUsage digitalSignature without nonRepudiation, so it is no X-Road signing certificate."""
    revocations: Mapping[int, tuple[datetime, x509.ReasonFlags]] = field(default_factory=dict)
    """Serial number → (revocation time, reason) of revoked certificates issued by :attr:`intermediate`."""

    @property
    def issued_by_intermediate(self) -> tuple[CertifiedKey, ...]:
        """Every certificate issued by :attr:`intermediate`, good or bad."""
        return (
            self.ocsp_responder,
            self.member_sign,
            self.member_sign_ec,
            self.member_auth,
            self.expired_sign,
            self.revoked_sign,
            self.not_yet_valid_sign,
            self.wrong_key_usage_sign,
        )


def build_dev_pki(now: datetime, instance: str = "MN") -> DevPki:
    """Build a fresh development PKI whose validity periods are fixed relative to ``now`` (timezone-aware).

    Keys are new on every call; build once per test session and share the result.
    """
    if now.tzinfo is None:
        raise XRoadError(FaultCode.INVALID_REQUEST, "build_dev_pki needs a timezone-aware 'now'")
    day = timedelta(days=1)
    member = MemberId(instance, DEV_MEMBER_CLASS, DEV_MEMBER_CODE)
    subject = member_subject(member)

    root = self_signed_ca(
        ca_name(f"{instance} dev root CA"),
        generate_rsa_key(),
        not_before=now - 365 * day,
        not_after=now + 3650 * day,
    )
    intermediate = issue_ca(
        root,
        ca_name(f"{instance} dev intermediate CA"),
        generate_rsa_key(),
        not_before=now - 365 * day,
        not_after=now + 1825 * day,
    )
    service_validity = {"not_before": now - 30 * day, "not_after": now + 730 * day}
    ocsp_responder = issue_ocsp_responder(
        intermediate, ca_name(f"{instance} dev OCSP responder"), generate_rsa_key(), **service_validity
    )
    tsa = issue_tsa(root, ca_name(f"{instance} dev TSA"), generate_rsa_key(), **service_validity)

    leaf_validity = {"not_before": now - 30 * day, "not_after": now + 365 * day}
    member_sign = _issue_leaf(
        intermediate, subject, generate_rsa_key(), sign_profile_extensions(), **leaf_validity
    )
    member_sign_ec = _issue_leaf(
        intermediate, subject, generate_ec_key(), sign_profile_extensions(), **leaf_validity
    )
    auth_subject = server_subject(instance, DEV_MEMBER_CLASS, DEV_SERVER_CODE, DEV_MEMBER_CODE)
    member_auth = _issue_leaf(
        intermediate,
        auth_subject,
        generate_rsa_key(),
        auth_profile_extensions(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
        ),
        **leaf_validity,
    )
    expired_sign = _issue_leaf(
        intermediate,
        subject,
        generate_rsa_key(),
        sign_profile_extensions(),
        not_before=now - 400 * day,
        not_after=now - 35 * day,
    )
    revoked_sign = _issue_leaf(
        intermediate, subject, generate_rsa_key(), sign_profile_extensions(), **leaf_validity
    )
    not_yet_valid_sign = _issue_leaf(
        intermediate,
        subject,
        generate_rsa_key(),
        sign_profile_extensions(),
        not_before=now + day,
        not_after=now + 366 * day,
    )
    wrong_key_usage_sign = _issue_leaf(
        intermediate,
        subject,
        generate_rsa_key(),
        _leaf(None, _key_usage(digital_signature=True)),
        **leaf_validity,
    )
    return DevPki(
        now=now,
        instance=instance,
        member=member,
        root=root,
        intermediate=intermediate,
        ocsp_responder=ocsp_responder,
        tsa=tsa,
        member_sign=member_sign,
        member_sign_ec=member_sign_ec,
        member_auth=member_auth,
        expired_sign=expired_sign,
        revoked_sign=revoked_sign,
        not_yet_valid_sign=not_yet_valid_sign,
        wrong_key_usage_sign=wrong_key_usage_sign,
        revocations=_frozen({revoked_sign.serial: (now - day, x509.ReasonFlags.key_compromise)}),
    )
