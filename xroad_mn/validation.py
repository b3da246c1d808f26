"""The one place that decides whether a certificate is trusted at a time.

Signature, management-request and time-stamp verification all ask the same questions of a certificate and
answer them here: does it chain to a CA that the expected instance approves in global configuration, is it
vouched for by fresh, authorised OCSP responses, which member does that CA's certificate profile say it
names, and is a TSA certificate one that global configuration approves for time-stamping.

:class:`CertificateValidator` holds the trust material and remembers the signers it has validated (keyed by
certificate, chain, OCSP responses, expected member and rules; reused only at verification times for which
the same verdict provably holds), so verifying many messages of one signer does the chain and OCSP work
once. Share one validator per trust material; a new global configuration gets a new validator.

Example::

    >>> from datetime import UTC, datetime
    >>> from xroad_mn.validation import CertificateValidator
    >>> validator = CertificateValidator(trust)  # doctest: +SKIP
    >>> signer = validator.validate_signer(  # doctest: +SKIP
    ...     cert, intermediates=chain, ocsp_responses=(leaf_ocsp, intermediate_ocsp),
    ...     at=datetime.now(UTC), expected_member=member)
    >>> signer.member, signer.approved_ca.name  # doctest: +SKIP
    (MemberId(instance='DEV', member_class='COM', member_code='4321'), 'DEV CA')
    >>> validator.validate_tsa(tsa_cert, at=gen_time).name  # doctest: +SKIP
    'DEV TSA'

The lower-level :func:`verify_chain` (path to an approved CA) and :func:`signing_member` (member through a
CA's profile) stay public for callers that need only that step.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, TypeVar, cast

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from xroad_mn.certs import (
    issued_by,
    key_usage,
    profile_for,
    same_certificate,
    verify_auth_key_usage,
    verify_signing_key_usage,
)
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import ApprovedCA, ApprovedTSA, TrustMaterial
from xroad_mn.identifiers import MemberId
from xroad_mn.ocsp import OcspStatus, verify_ocsp_response

__all__ = [
    "MAX_CACHED_SIGNERS",
    "MAX_CHAIN_DEPTH",
    "MAX_PATH_ATTEMPTS",
    "PKIX_CRITICAL_EXTENSIONS",
    "CertPurpose",
    "CertificateValidator",
    "CheckOrder",
    "OcspScope",
    "ValidatedSigner",
    "approved_tsa_certificates",
    "instance_cas",
    "signing_member",
    "validate_tsa_certificate",
    "validator_for",
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
MAX_CACHED_SIGNERS: Final = 4096
"""Most validated signers a :class:`CertificateValidator` remembers; the least recently used goes first."""
_T = TypeVar("_T")


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


@dataclass(frozen=True, slots=True)
class _Path:
    """A validated certificate path: the end-entity certificate first, up to (without) the approved top CA."""

    approved_ca: ApprovedCA
    certificates: tuple[x509.Certificate, ...]
    time_sensitive: bool
    """Some candidate issuer was refused for its validity at the verification time: at another time the
    search may end at another path, so the path holds for that time only."""

    def issuer_of(self, index: int) -> x509.Certificate:
        """The issuer of ``certificates[index]``: the next certificate of the path, or the top CA."""
        if index + 1 < len(self.certificates):
            return self.certificates[index + 1]
        return self.approved_ca.top_ca


def _find_path(
    cert: x509.Certificate,
    *,
    intermediates: Sequence[x509.Certificate],
    trust: TrustMaterial,
    at: datetime,
    purpose: CertPurpose,
    instance: str | None,
) -> _Path:
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
    time_sensitive = [False]

    def extend(path: list[x509.Certificate]) -> _Path:
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
                return _Path(approved, tuple(path), time_sensitive[0])
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
                try:
                    _check_validity(issuer, when, "intermediate CA")
                except XRoadError:
                    time_sensitive[0] = True
                    raise
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
    path = _find_path(
        cert, intermediates=intermediates, trust=trust, at=at, purpose=purpose, instance=instance
    )
    return path.approved_ca


# ------------------------------------------------------------------------------------------------------------
# Signing certificates: chain, OCSP, member

OcspScope = Literal["chain", "leaf"]
"""Which OCSP responses a signer brings: ``chain``, one for every certificate of its path below the top CA
(picked by serial number, as a message signature embeds them); ``leaf``, exactly one, for the signing
certificate itself (a management request's OCSP part)."""

CheckOrder = Literal["message", "management"]
"""Whose order and fault codes the signer checks follow. The order decides which error a doubly bad
certificate gets, and X-Road's two verifiers differ:

- ``message`` (``SignatureVerifier``): key usage (``incorrect_certificate``), the member by the issuer's
  name before any chain work, the chain, the member again through the CA the path ends at
  (``incorrect_certificate``), then OCSP;
- ``management`` (``ManagementRequestVerifier``): key usage (reported as ``cert_validation``), the chain,
  OCSP, then the member (``invalid_request``).
"""


@dataclass(frozen=True, slots=True)
class ValidatedSigner:
    """What :meth:`CertificateValidator.validate_signer` established about a signing certificate."""

    certificate: x509.Certificate
    member: MemberId
    """The member the certificate names, through the profile of :attr:`approved_ca`."""
    approved_ca: ApprovedCA
    path: tuple[x509.Certificate, ...]
    """The certificate path, the signing certificate first, up to (without) the approved top CA."""
    ocsp: tuple[OcspStatus, ...]
    """The verified GOOD statuses, the signing certificate's first."""
    valid_from: datetime
    valid_until: datetime
    """The verification times for which this verdict holds (both included): every certificate of the path
    valid, every OCSP response fresh and before its nextUpdate."""


def _issued_by_any(cert: x509.Certificate, candidates: Sequence[x509.Certificate]) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate != cert and issued_by(cert, candidate):
            return candidate
    return None


def _ca_by_issuer_name(
    cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    cas: Sequence[ApprovedCA],
    instance: str,
) -> ApprovedCA:
    """The approved CA (of ``cas``, one instance's) whose name issued ``cert`` or one of its intermediates.

    Only the expected signer's instance counts (``GlobalConf.getCaCert(signer.getXRoadInstance(), cert)``):
    a CA another (federated) instance approves cannot vouch for a member of this one.
    """
    path_cert = cert
    pool = list(intermediates)
    for _ in range(len(pool) + 1):
        for ca in cas:
            if ca.authentication_only:
                continue
            if path_cert.issuer in {c.subject for c in (ca.top_ca, *ca.intermediates)}:
                return ca
        issuer = _issued_by_any(path_cert, pool)
        if issuer is None:
            break
        path_cert = issuer
    raise XRoadError(
        FaultCode.INVALID_CERT_PATH,
        f"the signing certificate was not issued by a CA approved by instance {instance}",
    )


def _embedded_response_for(cert: x509.Certificate, responses: Sequence[bytes]) -> bytes:
    for der in responses:
        try:
            response = ocsp.load_der_ocsp_response(der)
        except ValueError as e:
            raise XRoadError(FaultCode.MALFORMED_SIGNATURE, "an embedded OCSP response is not DER") from e
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            continue
        for single in response.responses:
            if single.serial_number == cert.serial_number:
                return der
    raise XRoadError(
        FaultCode.CERT_VALIDATION,
        f"signature carries no OCSP response for certificate serial {cert.serial_number} "
        f"({cert.subject.rfc4514_string()})",
    )


def _validity_window(
    path: _Path, statuses: Sequence[OcspStatus], freshness_seconds: int, when: datetime
) -> tuple[datetime, datetime]:
    """The verification times at which the same checks give the same verdict (:class:`ValidatedSigner`)."""
    if path.time_sensitive:
        return when, when
    valid_from = max(c.not_valid_before_utc for c in path.certificates)
    limits = [c.not_valid_after_utc for c in path.certificates]
    limits.extend(s.this_update + timedelta(seconds=freshness_seconds) for s in statuses)
    limits.extend(s.next_update for s in statuses if s.next_update is not None)
    return valid_from, min(limits)


_SignerKey = tuple[str, str, str, MemberId, bytes, tuple[bytes, ...], tuple[bytes, ...]]


def _fingerprint(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class _SignerCache:
    """Validated signers by what decided them; bounded, least recently used out first, thread-safe."""

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[_SignerKey, ValidatedSigner] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: _SignerKey, when: datetime) -> ValidatedSigner | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if when > entry.valid_until:
                del self._entries[key]  # stale for good: time only moves on
                return None
            if when < entry.valid_from:
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: _SignerKey, entry: ValidatedSigner) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)


class CertificateValidator:
    """Decides whether signing, authentication and TSA certificates are trusted at a time, by ``trust``.

    Remembers up to ``max_cached_signers`` validated signers (see :meth:`validate_signer`) and as many other
    verdicts reached on this trust material (see :meth:`remembered`). The validator is bound to one trust
    material: build a new one when global configuration changes.
    """

    def __init__(self, trust: TrustMaterial, *, max_cached_signers: int = MAX_CACHED_SIGNERS) -> None:
        self._trust = trust
        self._signers = _SignerCache(max_cached_signers)
        self._verdicts: OrderedDict[Hashable, object] = OrderedDict()
        self._max_verdicts = max_cached_signers
        self._verdicts_lock = threading.Lock()

    def remembered(self, key: Hashable, verify: Callable[[], _T]) -> _T:
        """``verify()``'s result, computed once per ``key`` for this validator (a failure is not kept).

        For evidence many messages share — one batch time-stamp token over hundreds of containers — so it is
        verified once. ``key`` must name everything the verdict depends on besides the trust material
        (digests of the exact bytes, the verification time)."""
        with self._verdicts_lock:
            if key in self._verdicts:
                self._verdicts.move_to_end(key)
                return cast(_T, self._verdicts[key])
        result = verify()
        with self._verdicts_lock:
            self._verdicts[key] = result
            while len(self._verdicts) > self._max_verdicts:
                self._verdicts.popitem(last=False)
        return result

    @property
    def trust(self) -> TrustMaterial:
        """The trust material every verdict of this validator is based on."""
        return self._trust

    @property
    def cached_signers(self) -> int:
        """How many validated signers are remembered now."""
        return len(self._signers)

    def validate_signer(
        self,
        cert: x509.Certificate,
        *,
        intermediates: Sequence[x509.Certificate] = (),
        ocsp_responses: Sequence[bytes],
        at: datetime,
        expected_member: MemberId,
        instance: str | None = None,
        ocsp_scope: OcspScope = "chain",
        order: CheckOrder = "message",
    ) -> ValidatedSigner:
        """Validate a signing certificate at ``at`` for ``expected_member``; raise :class:`XRoadError` if not.

        ``intermediates`` are CA certificates the signer sent along; ``instance`` the instance whose
        approved CAs count (default: the expected member's). See :data:`OcspScope` and :data:`CheckOrder`.

        A verdict is remembered under the certificate, the intermediates, the OCSP responses (all as exact
        bytes), the expected member, the instance, the scope and the order, and is reused only for a
        verification time inside its :attr:`~ValidatedSigner.valid_from`-:attr:`~ValidatedSigner.valid_until`
        window. A failure is never remembered.
        """
        when = _utc(at)
        key: _SignerKey = (
            order,
            ocsp_scope,
            instance or expected_member.instance,
            expected_member,
            _fingerprint(cert.public_bytes(Encoding.DER)),
            tuple(_fingerprint(c.public_bytes(Encoding.DER)) for c in intermediates),
            tuple(_fingerprint(r) for r in ocsp_responses),
        )
        cached = self._signers.get(key, when)
        if cached is not None:
            return cached
        verdict = self._validate_signer(
            cert,
            intermediates=intermediates,
            ocsp_responses=ocsp_responses,
            when=when,
            expected_member=expected_member,
            instance=instance or expected_member.instance,
            ocsp_scope=ocsp_scope,
            order=order,
        )
        self._signers.put(key, verdict)
        return verdict

    def _validate_signer(
        self,
        cert: x509.Certificate,
        *,
        intermediates: Sequence[x509.Certificate],
        ocsp_responses: Sequence[bytes],
        when: datetime,
        expected_member: MemberId,
        instance: str,
        ocsp_scope: OcspScope,
        order: CheckOrder,
    ) -> ValidatedSigner:
        # Steps: 1. key usage; 2. member by the issuer's name (message order); 3. chain at `at`; 4. member
        # through the path's CA (message order); 5. OCSP; 6. member through the path's CA (management order).
        trust = self._trust
        # 1. Key usage: a signing certificate carries nonRepudiation.
        try:
            verify_signing_key_usage(cert)
        except XRoadError as e:
            if order == "management":
                raise XRoadError(
                    FaultCode.CERT_VALIDATION, f"member sign certificate is invalid: {e.message}"
                ) from e
            raise
        # 2. (message order) The approved CA of `instance` whose name issued the path names, through its
        #    profile, the expected member: before any chain work (SignatureVerifier.verifySignerName).
        if order == "message":
            cas = instance_cas(trust, instance)
            self._bind_member(
                cert, _ca_by_issuer_name(cert, intermediates, cas, instance), expected_member, order
            )
        # 3. Chain to a CA that `instance` approves, every certificate below it valid at `at`.
        path = _find_path(
            cert, intermediates=intermediates, trust=trust, at=when, purpose="signing", instance=instance
        )
        # 4. (message order) The member binding holds with the CA the path actually ends at.
        member = (
            self._bind_member(cert, path.approved_ca, expected_member, order) if order == "message" else None
        )
        # 5. OCSP for every certificate of the path (chain scope) or the signing certificate (leaf scope):
        #    authorised responder, fresh at `at` (thisUpdate within ocspFreshnessSeconds), status good.
        statuses = self._check_ocsp(path, ocsp_responses, when, ocsp_scope)
        # 6. (management order) The member binding, through the CA the path ends at, after OCSP.
        if member is None:
            member = self._bind_member(cert, path.approved_ca, expected_member, order)
        valid_from, valid_until = _validity_window(path, statuses, trust.ocsp_freshness_seconds, when)
        return ValidatedSigner(
            certificate=cert,
            member=member,
            approved_ca=path.approved_ca,
            path=path.certificates,
            ocsp=statuses,
            valid_from=valid_from,
            valid_until=valid_until,
        )

    def _bind_member(
        self, cert: x509.Certificate, ca: ApprovedCA, expected: MemberId, order: CheckOrder
    ) -> MemberId:
        member = signing_member(cert, ca, default_instance=self._trust.instance)
        if member == expected:
            return member
        if order == "management":
            raise XRoadError(
                FaultCode.INVALID_REQUEST,
                f"subject identifier ({member}) in certificate does not match the member that must sign "
                f"({expected})",
            )
        raise XRoadError(
            FaultCode.INCORRECT_CERTIFICATE,
            f"the signing certificate belongs to {member}, not to the expected signer {expected}",
        )

    def _check_ocsp(
        self, path: _Path, responses: Sequence[bytes], when: datetime, scope: OcspScope
    ) -> tuple[OcspStatus, ...]:
        if scope == "leaf":
            if len(responses) != 1:
                raise XRoadError(
                    FaultCode.CERT_VALIDATION,
                    f"expected one OCSP response for the signing certificate, got {len(responses)}",
                )
            checks = [(path.certificates[0], path.issuer_of(0), responses[0])]
        else:
            checks = [
                (c, path.issuer_of(i), _embedded_response_for(c, responses))
                for i, c in enumerate(path.certificates)
            ]
        statuses: list[OcspStatus] = []
        for cert, issuer, der in checks:
            try:
                statuses.append(
                    verify_ocsp_response(
                        der,
                        cert=cert,
                        issuer=issuer,
                        trust=self._trust,
                        at=when,
                        freshness_seconds=self._trust.ocsp_freshness_seconds,
                    )
                )
            except XRoadError:
                raise
            except Exception as e:  # cryptography parses responses lazily: any parse error is a corrupt one
                raise XRoadError(FaultCode.CERT_VALIDATION, f"OCSP response is malformed: {e}") from e
        return tuple(statuses)

    def validate_authentication(
        self, cert: x509.Certificate, *, at: datetime, instance: str | None = None
    ) -> ApprovedCA:
        """Validate an authentication certificate at ``at``: return the approved CA it chains to.

        ``instance`` is the instance whose approved CAs count (default: the trust material's own).
        """
        # 1. Chain to a CA that `instance` approves (for authentication too), valid at `at`.
        ca = verify_chain(
            cert,
            intermediates=(),
            trust=self._trust,
            at=at,
            purpose="authentication",
            instance=instance or self._trust.instance,
        )
        # 2. Key usage: an authentication certificate carries digitalSignature.
        verify_auth_key_usage(cert)
        return ca

    def validate_tsa(self, cert: x509.Certificate, *, at: datetime) -> ApprovedTSA:
        """Validate a TSA certificate at ``at`` (the token's genTime): return its ``approvedTSA`` entry.

        See :func:`validate_tsa_certificate`.
        """
        validate_tsa_certificate(cert, approved=self._trust.tsa_certificates, at=at)
        return next(t for t in self._trust.approved_tsas if same_certificate(t.certificate, cert))


def validator_for(trust: TrustMaterial | CertificateValidator) -> CertificateValidator:
    """``trust`` itself when it is a validator (sharing what it remembers), else a new one over it."""
    return trust if isinstance(trust, CertificateValidator) else CertificateValidator(trust)


# ------------------------------------------------------------------------------------------------------------
# TSA certificates


def _tsa_fail(message: str, reason: str, **details: str | int | None) -> XRoadError:
    return XRoadError(FaultCode.TIMESTAMP_VALIDATION, message, details={"reason": reason, **details})


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def approved_tsa_certificates(
    candidates: Sequence[x509.Certificate], approved: Sequence[x509.Certificate]
) -> list[x509.Certificate]:
    """Those of ``candidates`` that are ``approved`` TSA certificates (trusted directly, compared by DER).

    Raises ``timestamp_validation`` (reason ``tsa_not_approved``) when there is none.
    """
    approved_der = {_der(c) for c in approved}
    found = [c for c in candidates if _der(c) in approved_der]
    if not found:
        raise _tsa_fail("time-stamp is not signed by an approved TSA", "tsa_not_approved")
    return found


def validate_tsa_certificate(
    cert: x509.Certificate, *, approved: Sequence[x509.Certificate], at: datetime
) -> None:
    """Validate a TSA certificate at ``at`` (the token's genTime); raise ``timestamp_validation`` if not.

    Raises with a ``reason`` detail: ``tsa_not_approved``, ``tsa_certificate_not_for_timestamping``,
    ``tsa_certificate_expired``.
    """
    # 1. Global configuration approves it (approvedTSA, trusted directly: no chain, compared by DER).
    approved_tsa_certificates([cert], approved)
    # 2. It is for time-stamping only, RFC 3161 2.3 as BouncyCastle's TSPUtil.validateCertificate enforces
    #    it: extendedKeyUsage present, critical, exactly id-kp-timeStamping.
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        eku = None
    except ValueError as e:
        raise _tsa_fail(
            f"TSA certificate extensions cannot be parsed: {e}", "tsa_certificate_not_for_timestamping"
        ) from e
    if eku is None:
        raise _tsa_fail("TSA certificate has no extended key usage", "tsa_certificate_not_for_timestamping")
    if not eku.critical:
        raise _tsa_fail(
            "TSA certificate's extended key usage is not critical", "tsa_certificate_not_for_timestamping"
        )
    if list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise _tsa_fail(
            "TSA certificate's extended key usage is not solely timeStamping",
            "tsa_certificate_not_for_timestamping",
        )
    # 3. It is valid at `at`.
    when = _utc(at)
    if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
        raise _tsa_fail(
            f"TSA certificate is not valid at genTime {when.isoformat()}",
            "tsa_certificate_expired",
            gen_time=when.isoformat(),
        )
