"""OCSP: build requests as X-Road does, verify responses as ``OcspVerifier`` does, cache and fetch them.

Building and verifying are sans-I/O; fetching goes through :class:`OcspTransport` (one ``send`` method) with
:class:`AiohttpOcspTransport` as the HTTP implementation.

Example::

    >>> from datetime import UTC, datetime
    >>> from xroad_mn.ocsp import OcspCache, build_ocsp_request, verify_ocsp_response
    >>> request = build_ocsp_request(cert, issuer)                                      # doctest: +SKIP
    >>> response = await AiohttpOcspTransport("http://ca:8888/", session).send(request)  # doctest: +SKIP
    >>> status = verify_ocsp_response(                                                   # doctest: +SKIP
    ...     response, cert=cert, issuer=issuer, trust=trust, at=datetime.now(timezone.utc),
    ...     freshness_seconds=trust.ocsp_freshness_seconds)
    >>> status.this_update                                                               # doctest: +SKIP
    datetime.datetime(2024, 11, 27, 3, 56, 29, tzinfo=datetime.timezone.utc)

X-Road's wire facts: the request carries one SHA-1 CertID and no nonce; responses usually have no
``nextUpdate`` and name the responder by name; freshness is judged on ``thisUpdate`` against the global
``ocspFreshnessSeconds``. A response that fails steps 1-5 of :func:`verify_ocsp_response` raises
``incorrect_validation_info`` (X-Road's code); a certificate that is not good raises ``cert_validation``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

from asn1crypto import keys as asn1_keys
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from xroad_mn import algorithms
from xroad_mn.certs import cert_hash_hex, issued_by, same_certificate
from xroad_mn.errors import FaultCode, XRoadError

if TYPE_CHECKING:
    from xroad_mn.globalconf.trust import TrustMaterial

__all__ = [
    "MAX_CACHE_ENTRIES",
    "MAX_OCSP_RESPONSE_BYTES",
    "OCSP_REQUEST_CONTENT_TYPE",
    "OCSP_RESPONSE_CONTENT_TYPE",
    "OcspCache",
    "OcspStatus",
    "OcspTransport",
    "build_ocsp_request",
    "fetch_ocsp_response",
    "issuer_hashes",
    "verify_ocsp_response",
]

MAX_OCSP_RESPONSE_BYTES: Final = 1024 * 1024
"""Largest OCSP response read or verified; real ones are 1-5 kilobytes."""
"""How far ``thisUpdate`` may lie after the verification time (responder clock skew)."""
MAX_CACHE_ENTRIES: Final = 10_000
"""Most responses an :class:`OcspCache` holds; the oldest entry goes first."""
OCSP_REQUEST_CONTENT_TYPE: Final = "application/ocsp-request"
OCSP_RESPONSE_CONTENT_TYPE: Final = "application/ocsp-response"


def _invalid(message: str) -> XRoadError:
    return XRoadError(FaultCode.INCORRECT_VALIDATION_INFO, message)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise XRoadError(FaultCode.INTERNAL_ERROR, "verification time must be timezone-aware")
    return at.astimezone(UTC)


# ------------------------------------------------------------------------------------------------------------
# Requests


def build_ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A DER OCSP request for ``cert``: one CertID hashed with SHA-1, no nonce (as X-Road sends)."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303 -- CertID
    return builder.build().public_bytes(serialization.Encoding.DER)


def issuer_hashes(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """CertID ``issuerNameHash`` and ``issuerKeyHash`` of ``issuer`` (RFC 6960 §4.1.1)."""
    spki = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The key hash covers the subjectPublicKey BIT STRING value without its unused-bits octet.
    key_bits = bytes(asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:])
    name_digest = hashes.Hash(algorithm)
    name_digest.update(issuer.subject.public_bytes())
    key_digest = hashes.Hash(algorithm)
    key_digest.update(key_bits)
    return name_digest.finalize(), key_digest.finalize()


# ------------------------------------------------------------------------------------------------------------
# Verification


@dataclass(frozen=True, slots=True)
class OcspStatus:
    """A verified GOOD answer for one certificate."""

    serial_number: int
    this_update: datetime
    next_update: datetime | None
    produced_at: datetime
    responder: x509.Certificate


def _signature_scheme(response_der: bytes) -> algorithms.SignatureScheme:
    """The scheme of the response's ``BasicOCSPResponse.signatureAlgorithm`` (with RSA-PSS parameters)."""
    try:
        basic = asn1_ocsp.OCSPResponse.load(response_der)["response_bytes"]["response"].parsed
        identifier = basic["signature_algorithm"]
    except (ValueError, TypeError, KeyError) as e:
        raise _invalid(f"OCSP response is malformed: {e}") from e
    return algorithms.scheme_for_identifier(
        identifier, code=FaultCode.INCORRECT_VALIDATION_INFO, what="OCSP response"
    )


def _key_hash_sha1(cert: x509.Certificate) -> bytes:
    return issuer_hashes(cert, hashes.SHA1())[1]  # noqa: S303 -- responderID byKey is SHA-1 by definition


def _canonical_rdns(name: x509.Name) -> list[frozenset[tuple[str, str]]]:
    return [
        frozenset((a.oid.dotted_string, " ".join(str(a.value).lower().split())) for a in rdn)
        for rdn in name.rdns
    ]


def _same_name(a: x509.Name, b: x509.Name) -> bool:
    """Name equality as X-Road's Bouncy Castle ``X500Name.equals`` sees it: values compared
    case-insensitively with whitespace folded, string types ignored, RDNs in either order (real X-Road
    responses of 2017 name their responder with the RDN sequence reversed)."""
    ca, cb = _canonical_rdns(a), _canonical_rdns(b)
    return ca == cb or ca == cb[::-1]


def _matches_responder_id(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return _same_name(cert.subject, response.responder_name)
    return response.responder_key_hash is not None and _key_hash_sha1(cert) == response.responder_key_hash


def _has_ocsp_signing(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    except ValueError:
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in eku


def _signed_by(
    response: ocsp.OCSPResponse, scheme: algorithms.SignatureScheme, cert: x509.Certificate
) -> bool:
    try:
        algorithms.verify(
            cert,
            scheme,
            response.signature,
            response.tbs_response_bytes,
            code=FaultCode.INCORRECT_VALIDATION_INFO,
            what="OCSP response signature",
        )
    except XRoadError:
        return False
    return True


def _authorized(
    responder: x509.Certificate, issuer: x509.Certificate, configured: Sequence[x509.Certificate]
) -> bool:
    if same_certificate(responder, issuer) or any(same_certificate(responder, c) for c in configured):
        return True
    return (
        _has_ocsp_signing(responder) and responder.issuer == issuer.subject and issued_by(responder, issuer)
    )


def _single_response(
    response: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPSingleResponse:
    for single in response.responses:
        try:
            algorithm = single.hash_algorithm
        except UnsupportedAlgorithm:
            continue
        name_hash, key_hash = issuer_hashes(issuer, algorithm)
        if (
            single.serial_number == cert.serial_number
            and single.issuer_name_hash == name_hash
            and single.issuer_key_hash == key_hash
        ):
            return single
    raise _invalid(
        f"OCSP response does not apply to certificate (sn = {cert.serial_number}, "
        f"issuer {issuer.subject.rfc4514_string()})"
    )


@contextmanager
def _corrupt_fields_are_invalid() -> Iterator[None]:
    """cryptography parses OCSP responses lazily: a corrupt field surfaces only when it is read."""
    try:
        yield
    except (ValueError, TypeError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as e:
        raise _invalid(f"OCSP response is malformed: {e}") from e


def verify_ocsp_response(
    response_der: bytes,
    *,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    trust: TrustMaterial,
    at: datetime,
    freshness_seconds: int,
    verify_next_update: bool = True,
    responder_certs: Sequence[x509.Certificate] = (),
) -> OcspStatus:
    """Verify an OCSP response for ``cert`` (issued by ``issuer``) at time ``at``; return it if GOOD.

    ``responder_certs`` are extra candidates for the responder certificate besides those in the response,
    ``issuer`` and the responders global configuration lists. Fails closed: any failed step raises.
    """
    with _corrupt_fields_are_invalid():
        when = _utc(at)
        if len(response_der) > MAX_OCSP_RESPONSE_BYTES:
            raise _invalid(f"OCSP response is larger than {MAX_OCSP_RESPONSE_BYTES} bytes")
        try:
            response = ocsp.load_der_ocsp_response(response_der)
        except ValueError as e:
            raise _invalid(f"OCSP response cannot be parsed: {e}") from e
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise _invalid(f"OCSP response status is {response.response_status.name}")

        # 1. A SingleResponse's CertID matches the certificate (serial) and its issuer (name and key hash).
        single = _single_response(response, cert, issuer)

        # 2. The responder certificate is found (in the response, among the given certificates, the CA, or any
        #    responder or CA certificate of global configuration, as X-Road looks them up) and the response
        #    signature verifies with its key.
        configured = trust.ocsp_responder_certs_for(issuer)
        everywhere = (
            *trust.ocsp_responder_certificates,
            *(c for ca in trust.approved_cas for c in ca.ca_certificates),
        )
        candidates = [
            c
            for c in (*response.certificates, *responder_certs, issuer, *configured, *everywhere)
            if _matches_responder_id(response, c)
        ]
        if not candidates:
            raise _invalid("Could not find OCSP certificate for responder ID")
        scheme = _signature_scheme(response_der)
        signers = [c for c in candidates if _signed_by(response, scheme, c)]
        if not signers:
            responder_name = candidates[0].subject.rfc4514_string()
            raise _invalid(f"Signature on OCSP response is not valid (responder {responder_name})")

        # 3. The responder is authorised for the issuer: the CA itself, a responder global configuration lists
        #    for that CA, or a certificate the CA issued with extended key usage id-kp-OCSPSigning.
        responder = next((c for c in signers if _authorized(c, issuer, configured)), None)
        if responder is None:
            raise _invalid(
                "OCSP responder is not authorized for given CA "
                f"(responder {signers[0].subject.rfc4514_string()}, CA {issuer.subject.rfc4514_string()})"
            )
        # The responder certificate must have been valid when it vouched for the status (thisUpdate). Not
        # producedAt: some responders stamp it from another clock. (X-Road checks neither.)
        this_update = single.this_update_utc
        if not responder.not_valid_before_utc <= this_update <= responder.not_valid_after_utc:
            raise _invalid(
                f"OCSP responder certificate {responder.subject.rfc4514_string()} was not valid at the "
                f"response's thisUpdate ({this_update.isoformat()})"
            )

        # 4. thisUpdate is recent enough (≥ at - freshness). Like X-Road's OcspVerifier there is no upper
        #    bound: real X-Road evidence carries thisUpdate after producedAt (asic-core/valid-signed-message).
        if this_update < when - timedelta(seconds=freshness_seconds):
            raise _invalid(
                f"OCSP response is too old (thisUpdate: {this_update.isoformat()}, "
                f"verified at {when.isoformat()}, freshness {freshness_seconds} s)"
            )

        # 5. nextUpdate, when present and checked, is not before the verification time.
        next_update = single.next_update_utc
        if verify_next_update and next_update is not None and next_update < when:
            raise _invalid(f"OCSP response nextUpdate {next_update.isoformat()} is before {when.isoformat()}")

        # 6. The certificate status is GOOD.
        status = single.certificate_status
        if status == ocsp.OCSPCertStatus.REVOKED:
            revoked_at = single.revocation_time_utc
            reason = single.revocation_reason
            raise XRoadError(
                FaultCode.CERT_VALIDATION,
                f"certificate {cert.subject.rfc4514_string()} (serial {cert.serial_number:X}) is revoked"
                f" since {revoked_at.isoformat() if revoked_at else '?'}"
                f" (reason: {reason.name if reason else 'unspecified'})",
                details={
                    "revocation_time": revoked_at.isoformat() if revoked_at else None,
                    "revocation_reason": reason.name if reason else None,
                },
            )
        if status != ocsp.OCSPCertStatus.GOOD:
            raise XRoadError(
                FaultCode.CERT_VALIDATION,
                f"OCSP status of certificate {cert.subject.rfc4514_string()} is {status.name}",
            )
        return OcspStatus(
            serial_number=cert.serial_number,
            this_update=this_update,
            next_update=next_update,
            produced_at=response.produced_at_utc,
            responder=responder,
        )


# ------------------------------------------------------------------------------------------------------------
# Cache


@dataclass(frozen=True, slots=True)
class _CacheEntry:
    response: bytes
    this_update: datetime


class OcspCache:
    """Verified OCSP responses keyed by the certificate's SHA-256 hash; an entry is served only while
    fresh (``thisUpdate ≥ at - freshness``). One object per application; no module-level state."""

    def __init__(self, max_entries: int = MAX_CACHE_ENTRIES) -> None:
        self._entries: OrderedDict[str, _CacheEntry] = OrderedDict()
        self._max_entries = max_entries

    @staticmethod
    def key(cert: x509.Certificate) -> str:
        """The cache key of ``cert``: hex SHA-256 of its DER encoding."""
        return cert_hash_hex(cert, "sha256")

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, cert: x509.Certificate, response_der: bytes, status: OcspStatus) -> None:
        """Store a response that :func:`verify_ocsp_response` accepted (``status`` is its result)."""
        key = self.key(cert)
        self._entries.pop(key, None)
        self._entries[key] = _CacheEntry(response_der, status.this_update)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def get(self, cert: x509.Certificate, *, at: datetime, freshness_seconds: int) -> bytes | None:
        """The cached response for ``cert`` if it is still fresh at ``at``; stale entries are dropped."""
        key = self.key(cert)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.this_update < _utc(at) - timedelta(seconds=freshness_seconds):
            del self._entries[key]
            return None
        return entry.response

    def evict_stale(self, *, at: datetime, freshness_seconds: int) -> int:
        """Drop every entry no longer fresh at ``at``; return how many were dropped."""
        limit = _utc(at) - timedelta(seconds=freshness_seconds)
        stale = [k for k, e in self._entries.items() if e.this_update < limit]
        for k in stale:
            del self._entries[k]
        return len(stale)


# ------------------------------------------------------------------------------------------------------------
# Transport


class OcspTransport(Protocol):
    """Sends a DER OCSP request to one responder and returns the DER response."""

    async def send(self, request: bytes) -> bytes: ...


async def fetch_ocsp_response(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    transport: OcspTransport,
    trust: TrustMaterial,
    at: datetime,
    cache: OcspCache | None = None,
) -> bytes:
    """A verified, fresh OCSP response for ``cert``: from ``cache`` when fresh, else fetched via
    ``transport``, verified with the trust's freshness and cached."""
    freshness = trust.ocsp_freshness_seconds
    if cache is not None:
        cached = cache.get(cert, at=at, freshness_seconds=freshness)
        if cached is not None:
            return cached
    response = await transport.send(build_ocsp_request(cert, issuer))
    status = verify_ocsp_response(
        response, cert=cert, issuer=issuer, trust=trust, at=at, freshness_seconds=freshness
    )
    if cache is not None:
        cache.put(cert, response, status)
    return response
