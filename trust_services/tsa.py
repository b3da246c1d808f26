"""RFC 3161 time-stamping authority logic: a TimeStampReq in, a signed TimeStampResp out (no I/O).

The token is a CMS SignedData over a TSTInfo, signed by the TSA certificate with SHA-256 and the signed
attributes content-type, signing-time, message-digest and ESS signingCertificateV2 (which ``openssl ts
-verify`` and X-Road's verifier require). The query's nonce is echoed.

Whether the token carries the TSA certificate is a choice (``include_certificate``):

* ``"on_request"`` — strict RFC 3161 §2.4.1: the certificate is included exactly when the query sets
  ``certReq``, and MUST NOT be included otherwise. This is the pure builder's default.
* ``"always"`` — the certificate is in every token. The development trust service
  (:class:`~trust_services.app.TrustSettings` ``tsa_include_certificate``) defaults to this, for two
  reasons: the product's acceptance check is ``openssl ts -query -data f -sha512`` (no ``-cert``) posted
  to ``/tsa`` and then ``openssl ts -verify -in reply.tsr -data f -CAfile tsa.pem -partial_chain``, which
  only verifies when the signer certificate travels in the token; and X-Road itself carries the TSA
  certificate in every time-stamp token it stores (its client adds the certificate to tokens that lack
  it), so tokens from this TSA look like the ones X-Road archives. Strict clients lose nothing: an
  RFC 3161 client must accept a certificate it did not ask for.

Example::

    >>> from datetime import UTC, datetime
    >>> from trust_services.pki import build_dev_pki, random_serial
    >>> now = datetime(2025, 1, 1, tzinfo=UTC)
    >>> pki = build_dev_pki(now)  # doctest: +SKIP
    >>> serial = random_serial()
    >>> reply = build_timestamp_reply(query_der, tsa=pki.tsa, serial=serial, now=now)  # doctest: +SKIP
    >>> tsp.TimeStampResp.load(reply)["status"]["status"].native  # doctest: +SKIP
    'granted'

A well-formed query that this TSA cannot honour (an unsupported hash algorithm, an imprint of the wrong
length, an unknown policy, extensions) gets a ``rejection`` reply with the RFC 3161 failure bit; bytes
that are no TimeStampReq raise ``invalid_timestamp_request``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Final, Literal

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from trust_services.pki import CertifiedKey
from xroad_mn import algorithms
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError

__all__ = [
    "DEV_TSA_POLICY",
    "MAX_TIMESTAMP_QUERY_BYTES",
    "SUPPORTED_IMPRINT_ALGORITHMS",
    "CertificateInclusion",
    "build_timestamp_reply",
    "parse_timestamp_query",
]

MAX_TIMESTAMP_QUERY_BYTES: Final = 64 * 1024
"""Largest time-stamp query accepted; a SHA-512 query with a nonce is about 100 bytes."""
DEV_TSA_POLICY: Final = "2.25.185471827461473692250259794930085300743"
"""TSA policy OID of the development TSA (a UUID-derived OID, ITU-T X.667)."""
SUPPORTED_IMPRINT_ALGORITHMS: Final[Mapping[str, int]] = MappingProxyType(
    {"sha256": 32, "sha384": 48, "sha512": 64}
)
"""Message imprint hash algorithms accepted, with their digest lengths."""
CertificateInclusion = Literal["always", "on_request"]
"""When a token carries the TSA certificate: in every token, or only when the query sets ``certReq``."""
_SIGNING_TIME_UTC_LIMIT: Final = 2050  # RFC 5652 §11.3: UTCTime before 2050, GeneralizedTime after


def parse_timestamp_query(query_der: bytes) -> tsp.TimeStampReq:
    """Parse a DER TimeStampReq strictly; raise ``invalid_timestamp_request`` if it is not one."""
    if len(query_der) > MAX_TIMESTAMP_QUERY_BYTES:
        raise XRoadError(
            FaultCode.REQUEST_TOO_LARGE,
            f"time-stamp query is larger than {MAX_TIMESTAMP_QUERY_BYTES} bytes",
            kind=ErrorKind.BAD_INPUT,
        )
    try:
        query = tsp.TimeStampReq.load(query_der, strict=True)
        query.native  # noqa: B018 -- asn1crypto parses lazily; walk every field now
    except (ValueError, TypeError, KeyError) as e:
        raise XRoadError(
            FaultCode.INVALID_TIMESTAMP_REQUEST, f"malformed time-stamp query: {e}", kind=ErrorKind.BAD_INPUT
        ) from e
    return query


class _RefusedTimeStampResp(core.Sequence):  # type: ignore[misc]
    """TimeStampResp without a token (asn1crypto's model wrongly makes ``timeStampToken`` mandatory)."""

    _fields = [("status", tsp.PKIStatusInfo)]  # noqa: RUF012 -- asn1crypto's class-level schema


def _rejection(fail_info: str, text: str) -> bytes:
    reply = _RefusedTimeStampResp(
        {"status": {"status": "rejection", "status_string": [text], "fail_info": {fail_info}}}
    )
    return bytes(reply.dump())


def _check_query(query: tsp.TimeStampReq, policy: str) -> tuple[str, str] | None:
    """Why this TSA refuses ``query``, as (PKIFailureInfo bit, text); None when it can be granted."""
    if query["version"].native != "v1":
        return "bad_data_format", "unsupported TimeStampReq version"
    imprint = query["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    if algorithm not in SUPPORTED_IMPRINT_ALGORITHMS:
        supported = ", ".join(SUPPORTED_IMPRINT_ALGORITHMS)
        return "bad_alg", f"unsupported message imprint algorithm {algorithm}; use one of {supported}"
    if imprint["hash_algorithm"]["parameters"].native is not None:
        return "bad_alg", "message imprint algorithm parameters must be absent or NULL"
    if len(imprint["hashed_message"].native) != SUPPORTED_IMPRINT_ALGORITHMS[algorithm]:
        return "bad_data_format", f"message imprint length does not match {algorithm}"
    requested_policy = query["req_policy"].native
    if requested_policy is not None and requested_policy != policy:
        return "unaccepted_policy", f"policy {requested_policy} is not offered; this TSA uses {policy}"
    if query["extensions"].native:
        return "unaccepted_extensions", "time-stamp query extensions are not supported"
    return None


def _asn1_certificate(cert: CertifiedKey) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.certificate.public_bytes(Encoding.DER))


_SHA256_RSA: Final = "1.2.840.113549.1.1.11"
_SHA256_ECDSA: Final = "1.2.840.10045.4.3.2"


def _sign(tsa: CertifiedKey, data: bytes) -> tuple[str, bytes]:
    """The signature algorithm's OID and the signature: sha256WithRSAEncryption or ecdsa-with-SHA256."""
    key = tsa.private_key
    oid = _SHA256_RSA if isinstance(key, rsa.RSAPrivateKey) else _SHA256_ECDSA
    return oid, algorithms.sign(key, algorithms.SCHEMES[oid], data)


def _signing_time(now: datetime) -> cms.Time:
    if now.year < _SIGNING_TIME_UTC_LIMIT:
        return cms.Time(name="utc_time", value=now)
    return cms.Time(name="generalized_time", value=now)


def build_timestamp_reply(
    query_der: bytes,
    *,
    tsa: CertifiedKey,
    serial: int,
    now: datetime,
    policy: str = DEV_TSA_POLICY,
    include_certificate: CertificateInclusion = "on_request",
) -> bytes:
    """Answer ``query_der`` (DER TimeStampReq) with a DER TimeStampResp stamped at ``now``.

    Steps:
    1. parse the query (raises ``invalid_timestamp_request`` for bytes that are no TimeStampReq);
    2. refuse what this TSA does not offer with a ``rejection`` status and failure bit;
    3. build TSTInfo: ``policy``, the query's imprint as sent, ``serial``, genTime ``now`` (whole
       seconds, accuracy 1 s), the nonce echoed, the TSA's name;
    4. sign it as CMS SignedData with signed attributes content-type, signing-time, message-digest and
       signingCertificateV2; include the TSA certificate if ``include_certificate`` is ``"always"`` or
       the query sets ``certReq``.
    """
    if now.tzinfo is None:
        raise XRoadError(FaultCode.INTERNAL_ERROR, "time-stamp clock must be timezone-aware")
    # 1. Parse.
    query = parse_timestamp_query(query_der)

    # 2. Refuse.
    refusal = _check_query(query, policy)
    if refusal is not None:
        return _rejection(*refusal)

    # 3. TSTInfo.
    gen_time = now.replace(microsecond=0)
    cert = _asn1_certificate(tsa)
    tst_fields: dict[str, object] = {
        "version": "v1",
        "policy": policy,
        "message_imprint": tsp.MessageImprint.load(query["message_imprint"].dump()),
        "serial_number": serial,
        "gen_time": core.GeneralizedTime(gen_time),
        "accuracy": {"seconds": 1},
        "tsa": asn1_x509.GeneralName(name="directory_name", value=cert.subject),
    }
    if query["nonce"].native is not None:
        tst_fields["nonce"] = query["nonce"].native
    tst_info = tsp.TSTInfo(tst_fields)
    tst_der = tst_info.dump()

    # 4. Sign.
    cert_der = cert.dump()
    signed_attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
            cms.CMSAttribute({"type": "signing_time", "values": [_signing_time(gen_time)]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]}),
            cms.CMSAttribute(
                {
                    "type": "signing_certificate_v2",
                    "values": [
                        tsp.SigningCertificateV2(
                            {
                                "certs": [
                                    {
                                        "hash_algorithm": {"algorithm": "sha256"},
                                        "cert_hash": hashlib.sha256(cert_der).digest(),
                                        "issuer_serial": {
                                            "issuer": [
                                                asn1_x509.GeneralName(
                                                    name="directory_name", value=cert.issuer
                                                )
                                            ],
                                            "serial_number": cert.serial_number,
                                        },
                                    }
                                ]
                            }
                        )
                    ],
                }
            ),
        ]
    )
    signature_algorithm, signature = _sign(tsa, signed_attrs.dump())
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                name="issuer_and_serial_number",
                value={"issuer": cert.issuer, "serial_number": cert.serial_number},
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": signature_algorithm}),
            "signature": signature,
        }
    )
    signed_data_fields: dict[str, object] = {
        "version": "v3",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": {"content_type": "tst_info", "content": tst_info},
        "signer_infos": [signer_info],
    }
    if include_certificate == "always" or query["cert_req"].native:
        signed_data_fields["certificates"] = [cert]
    token = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data_fields)})
    return bytes(tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump())
