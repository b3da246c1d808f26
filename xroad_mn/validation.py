"""The one place that decides whether a certificate is trusted at a time.

Signature, management-request and evidence verification all ask the same questions of a certificate, in the
same order, and answer them here: does it chain to a CA that the expected instance approves in global
configuration (:func:`verify_chain`), which member does that CA's certificate profile say it names
(:func:`signing_member`), and is it vouched for by a fresh, authorised OCSP response.

Example::

    >>> from datetime import UTC, datetime
    >>> from xroad_mn.validation import signing_member, verify_chain
    >>> ca = verify_chain(cert, intermediates=(), trust=trust, at=datetime.now(UTC))  # doctest: +SKIP
    >>> signing_member(cert, ca, default_instance=trust.instance)  # doctest: +SKIP
    MemberId(instance='DEV', member_class='COM', member_code='4321')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

from xroad_mn.certs import issued_by, key_usage, profile_for, same_certificate
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import ApprovedCA, TrustMaterial
from xroad_mn.identifiers import MemberId

__all__ = [
    "MAX_CHAIN_DEPTH",
    "MAX_PATH_ATTEMPTS",
    "PKIX_CRITICAL_EXTENSIONS",
    "CertPurpose",
    "instance_cas",
    "signing_member",
    "verify_chain",
]

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


def signing_member(cert: x509.Certificate, ca: ApprovedCA, *, default_instance: str) -> MemberId:
    """The member a signing certificate names, read by the certificate profile of the CA that issued it.

    ``default_instance`` stands in for a CA whose global configuration gave no instance.
    """
    return profile_for(ca.certificate_profile_info, ca.instance or default_instance).member_id(cert)


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
    usage = key_usage(ca)
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
