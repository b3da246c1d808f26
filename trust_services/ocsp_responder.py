"""RFC 6960 OCSP responder logic: an OCSP request in, a signed OCSP response out (no I/O).

The response is shaped like the ones X-Road's verifiers see in production: one SingleResponse per
request, signed with SHA-256 by the responder certificate, responder ID by name, the responder
certificate included, ``thisUpdate`` = the responder's clock and no ``nextUpdate``. A nonce in the
request is echoed.

A request this responder cannot answer raises ``invalid_ocsp_request`` (the HTTP app sends 400 with
X-Road's error body): bytes that are no OCSPRequest, no certificate or several, a CertID hash whose length
does not match its algorithm, a negative serial number, a repeated extension, an unknown critical
extension, or a nonce outside 1–32 octets. RFC 8954 §2.1 has a responder answer an over-long nonce with
the ``malformedRequest`` response status; we answer every malformed request the same way, with HTTP 400
and a message that says what is wrong, as the trust services' contract (bad input → 400 with a clear
X-Road error) asks. ``openssl ocsp`` reports either as a failed query.

Example::

    >>> from datetime import UTC, datetime
    >>> from cryptography.hazmat.primitives import hashes, serialization
    >>> from cryptography.x509 import ocsp
    >>> from trust_services.pki import build_dev_pki
    >>> now = datetime(2025, 1, 1, tzinfo=UTC)
    >>> pki = build_dev_pki(now)  # doctest: +SKIP
    >>> builder = ocsp.OCSPRequestBuilder()
    >>> request = builder.add_certificate(
    ...     pki.member_sign.certificate, pki.intermediate.certificate, hashes.SHA1()
    ... ).build()  # doctest: +SKIP
    >>> der = build_ocsp_response(
    ...     request.public_bytes(serialization.Encoding.DER), issuer=pki.intermediate,
    ...     responder=pki.ocsp_responder, status_of=status_lookup(pki.revocations, {pki.member_sign.serial}),
    ...     now=now)  # doctest: +SKIP
    >>> ocsp.load_der_ocsp_response(der).certificate_status  # doctest: +SKIP
    <OCSPCertStatus.GOOD: 0>

Note: ``cryptography`` stamps ``producedAt`` with the machine's clock; ``thisUpdate`` (what X-Road's
freshness check reads) is ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from trust_services.pki import CertifiedKey
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.ocsp import issuer_hashes

__all__ = [
    "MAX_NONCE_BYTES",
    "MAX_OCSP_REQUEST_BYTES",
    "MIN_NONCE_BYTES",
    "CertStatusInfo",
    "build_ocsp_response",
    "issuer_hashes",
    "parse_ocsp_request",
    "status_lookup",
]

MAX_OCSP_REQUEST_BYTES: Final = 64 * 1024
"""Largest OCSP request accepted; a single-certificate request is about 100 bytes."""
MIN_NONCE_BYTES: Final = 1
MAX_NONCE_BYTES: Final = 32
"""RFC 8954 §2.1: a nonce is 1 to 32 octets."""


@dataclass(frozen=True)
class CertStatusInfo:
    """What the CA knows about one serial number: good, revoked (when and why) or unknown."""

    status: ocsp.OCSPCertStatus
    revocation_time: datetime | None = None
    revocation_reason: x509.ReasonFlags | None = None

    @classmethod
    def good(cls) -> CertStatusInfo:
        return cls(ocsp.OCSPCertStatus.GOOD)

    @classmethod
    def unknown(cls) -> CertStatusInfo:
        return cls(ocsp.OCSPCertStatus.UNKNOWN)

    @classmethod
    def revoked(cls, time: datetime, reason: x509.ReasonFlags | None = None) -> CertStatusInfo:
        return cls(ocsp.OCSPCertStatus.REVOKED, time, reason)


def status_lookup(
    revocations: Mapping[int, tuple[datetime, x509.ReasonFlags]], issued: Collection[int]
) -> Callable[[int], CertStatusInfo]:
    """A ``status_of`` function: revoked if listed in ``revocations``, good if ``issued``, else unknown."""

    def status_of(serial: int) -> CertStatusInfo:
        if serial in revocations:
            time, reason = revocations[serial]
            return CertStatusInfo.revoked(time, reason)
        if serial in issued:
            return CertStatusInfo.good()
        return CertStatusInfo.unknown()

    return status_of


def _invalid(message: str) -> XRoadError:
    return XRoadError(FaultCode.INVALID_OCSP_REQUEST, message, kind=ErrorKind.BAD_INPUT)


def _count_requests(request_der: bytes) -> int | None:
    """How many certificates ``request_der`` asks about (None if even asn1crypto cannot tell)."""
    try:
        return len(asn1_ocsp.OCSPRequest.load(request_der)["tbs_request"]["request_list"])
    except (ValueError, TypeError, KeyError):
        return None


def _check_extensions(extensions: x509.Extensions) -> None:
    for ext in extensions:
        if isinstance(ext.value, x509.OCSPNonce):
            length = len(ext.value.nonce)
            if not MIN_NONCE_BYTES <= length <= MAX_NONCE_BYTES:
                raise _invalid(
                    f"OCSP nonce is {length} octets; RFC 8954 allows {MIN_NONCE_BYTES} to {MAX_NONCE_BYTES}"
                )
        elif ext.critical:
            raise _invalid(f"OCSP request extension {ext.oid.dotted_string} is critical and not supported")


def parse_ocsp_request(request_der: bytes) -> ocsp.OCSPRequest:
    """Parse a DER OCSP request for one certificate; raise ``invalid_ocsp_request`` if it is not one.

    Besides the DER itself this checks what the response builder relies on: exactly one CertID, whose
    hash algorithm is known and whose issuer name and key hashes have that algorithm's length, a serial
    number that is not negative, at most one nonce of 1 to 32 octets (RFC 8954 §2.1) and no critical
    extension other than the nonce.
    """
    if len(request_der) > MAX_OCSP_REQUEST_BYTES:
        raise XRoadError(
            FaultCode.REQUEST_TOO_LARGE,
            f"OCSP request is larger than {MAX_OCSP_REQUEST_BYTES} bytes",
            kind=ErrorKind.BAD_INPUT,
        )
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        algorithm = request.hash_algorithm
        extensions = request.extensions
    except x509.DuplicateExtension as e:
        raise _invalid(f"OCSP request names extension {e.oid.dotted_string} more than once") from e
    except UnsupportedAlgorithm as e:
        raise _invalid(f"the CertID hash algorithm is not supported: {e}") from e
    except ValueError as e:
        raise _invalid(f"malformed OCSP request: {e}") from e
    except NotImplementedError as e:  # cryptography reads single-certificate requests only
        count = _count_requests(request_der)
        what = {None: "not one certificate", 0: "no certificate"}.get(count, f"{count} certificates")
        raise _invalid(
            f"unsupported OCSP request: it names {what}; ask about exactly one certificate per request"
        ) from e
    for label, value in (("issuer name", request.issuer_name_hash), ("issuer key", request.issuer_key_hash)):
        if len(value) != algorithm.digest_size:
            raise _invalid(
                f"CertID {label} hash is {len(value)} octets; {algorithm.name} hashes are "
                f"{algorithm.digest_size}"
            )
    if request.serial_number < 0:
        raise _invalid(f"CertID serial number {request.serial_number} is negative")
    _check_extensions(extensions)
    return request


def _issuer_certificate(issuer: CertifiedKey | x509.Certificate) -> x509.Certificate:
    return issuer.certificate if isinstance(issuer, CertifiedKey) else issuer


def build_ocsp_response(
    request_der: bytes,
    *,
    issuer: CertifiedKey | x509.Certificate,
    responder: CertifiedKey,
    status_of: Callable[[int], CertStatusInfo],
    now: datetime,
) -> bytes:
    """Answer ``request_der`` (DER OCSPRequest) about certificates issued by ``issuer`` with an OCSPResponse.

    Steps:
    1. parse the request (one certificate; any CertID hash algorithm ``cryptography`` knows);
    2. look the serial up with ``status_of`` — unless the CertID names another issuer, which is unknown;
       a revocation dated after ``now`` is not yet in effect, so the certificate is still good;
    3. sign a basic response with the responder's key (SHA-256), responder ID by name, the responder
       certificate included, ``thisUpdate`` = ``now``, no ``nextUpdate``, the request's nonce echoed.
    """
    # 1. Parse.
    request = parse_ocsp_request(request_der)
    algorithm = request.hash_algorithm

    # 2. Status.
    name_hash, key_hash = issuer_hashes(_issuer_certificate(issuer), algorithm)
    if (request.issuer_name_hash, request.issuer_key_hash) == (name_hash, key_hash):
        info = status_of(request.serial_number)
    else:
        info = CertStatusInfo.unknown()
    if info.status is ocsp.OCSPCertStatus.REVOKED:
        if info.revocation_time is None:
            raise XRoadError(
                FaultCode.INTERNAL_ERROR, f"revocation of serial {request.serial_number} has no time"
            )
        if info.revocation_time > now:
            info = CertStatusInfo.good()

    # 3. Sign.
    reason = info.revocation_reason
    if reason is x509.ReasonFlags.unspecified:
        reason = None  # RFC 5280 §5.3.1: omit reasonCode rather than state "unspecified"
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=algorithm,
            cert_status=info.status,
            this_update=now,
            next_update=None,
            revocation_time=info.revocation_time if info.status is ocsp.OCSPCertStatus.REVOKED else None,
            revocation_reason=reason if info.status is ocsp.OCSPCertStatus.REVOKED else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.NAME, responder.certificate)
        .certificates([responder.certificate])
    )
    for ext in request.extensions:  # parse_ocsp_request has read (and checked) them already
        if isinstance(ext.value, x509.OCSPNonce):
            builder = builder.add_extension(ext.value, critical=False)
    try:
        response = builder.sign(responder.private_key, hashes.SHA256())
    except ValueError as e:
        raise XRoadError(FaultCode.INTERNAL_ERROR, f"cannot sign OCSP response: {e}") from e
    return response.public_bytes(serialization.Encoding.DER)
