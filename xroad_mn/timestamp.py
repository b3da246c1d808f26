"""RFC 3161 time-stamps as X-Road uses them: requests, response checks, token verification, TSA failover.

X-Road time-stamps the message log: a single time-stamp covers the decoded ``ds:SignatureValue``
bytes, a batch time-stamp covers the exact bytes of ``ts-hashchainresult.xml``. The request carries a
SHA-512 (by default) message imprint, no nonce and no ``certReq``; the answer must be *granted* or
*grantedWithMods*, match the request, and be signed by a TSA certificate that global configuration lists
under ``approvedTSA`` (trusted directly, no chain building). The TSA certificate is then embedded into the
token's CMS so that the token verifies on its own inside an ASiC container.

Everything here is sans-I/O except :class:`AiohttpTimestampTransport`, which only posts bytes.

Example::

    query = build_timestamp_request(signature_value)  # SHA-512 imprint, no nonce, no certReq
    reply = await AiohttpTimestampTransport(url, session).send(query)
    token = verify_timestamp_response(reply, query)
    info = verify_timestamp_token(token, data=signature_value, tsa_certs=approved_tsa_certs)
    info.gen_time  # datetime(2024, 12, 5, 13, 16, 35, tzinfo=UTC)

    # or, with X-Road's failover over each approvedTSA in turn (the token embeds the TSA certificate):
    token = await request_timestamp(signature_value, transports, approved_tsa_certs)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, Protocol, get_args

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from xroad_mn import algorithms
from xroad_mn.certs import load_der_certificate
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.validation import approved_tsa_certificates, validate_tsa_certificate

__all__ = [
    "DEFAULT_HASH_ALGORITHM",
    "DEFAULT_TSA_TIMEOUT_SECONDS",
    "MAX_TIMESTAMP_BYTES",
    "TIMESTAMP_QUERY_CONTENT_TYPE",
    "TIMESTAMP_REPLY_CONTENT_TYPE",
    "HashAlgorithm",
    "TimestampInfo",
    "TimestampTransport",
    "add_tsa_certificate",
    "build_timestamp_request",
    "build_timestamp_request_for_digest",
    "request_timestamp",
    "timestamp_token_gen_time",
    "verify_timestamp_response",
    "verify_timestamp_token",
    "verify_timestamp_token_digest",
]

HashAlgorithm = Literal["sha256", "sha384", "sha512"]
"""Message-imprint algorithms accepted for requests and tokens (``message-log.hash-algo-id``)."""

DEFAULT_HASH_ALGORITHM: Final[HashAlgorithm] = "sha512"
TIMESTAMP_QUERY_CONTENT_TYPE: Final = "application/timestamp-query"
TIMESTAMP_REPLY_CONTENT_TYPE: Final = "application/timestamp-reply"
# Some older TSAs answer with the content type of the RFC 3161 drafts.
_ACCEPTED_REPLY_CONTENT_TYPES: Final = frozenset(
    {TIMESTAMP_REPLY_CONTENT_TYPE, "application/timestamp-response"}
)
MAX_TIMESTAMP_BYTES: Final = 256 * 1024
"""Largest time-stamp response or token read or parsed; real ones are a few kilobytes."""
DEFAULT_TSA_TIMEOUT_SECONDS: Final = 20.0

_IMPRINT_ALGORITHMS: Final[frozenset[str]] = frozenset(get_args(HashAlgorithm))
# Digests allowed inside the CMS (message-digest attribute, signature); SHA-1 only for ESSCertID v1.
_CMS_DIGESTS: Final[frozenset[str]] = frozenset({"sha224", "sha256", "sha384", "sha512"})
_ESS_DIGESTS: Final[frozenset[str]] = _CMS_DIGESTS | {"sha1"}
# Signature families accepted in a time-stamp token's SignerInfo.
_CMS_FAMILIES: Final = frozenset(
    {algorithms.Family.RSA, algorithms.Family.RSA_PSS, algorithms.Family.ECDSA, algorithms.Family.ED25519}
)
_GRANTED: Final = frozenset({"granted", "granted_with_mods"})


@dataclass(frozen=True, slots=True)
class TimestampInfo:
    """What a verified time-stamp token asserts."""

    gen_time: datetime
    """The TSA's ``genTime``, an aware UTC datetime."""
    hash_algorithm: HashAlgorithm
    serial_number: int
    tsa_certificate: x509.Certificate
    """The approved TSA certificate whose key signed the token."""
    message_imprint: bytes
    policy: str
    nonce: int | None = None


def _fail(message: str, reason: str, **details: str | int | None) -> XRoadError:
    return XRoadError(FaultCode.TIMESTAMP_VALIDATION, message, details={"reason": reason, **details})


def _hash(name: str, data: bytes) -> bytes:
    return hashlib.new(name, data).digest()


def _check_imprint_algorithm(name: str) -> HashAlgorithm:
    if name == "sha256":
        return "sha256"
    if name == "sha384":
        return "sha384"
    if name == "sha512":
        return "sha512"
    raise XRoadError(
        FaultCode.INVALID_TIMESTAMP_REQUEST,
        f"unsupported time-stamp hash algorithm {name!r}; use one of {sorted(_IMPRINT_ALGORITHMS)}",
    )


# --- Requests ------------------------------------------------------------------------------------------


def build_timestamp_request_for_digest(
    digest: bytes,
    *,
    hash_alg: str = DEFAULT_HASH_ALGORITHM,
    nonce: int | None = None,
    cert_req: bool = False,
    policy: str | None = None,
) -> bytes:
    """Build a DER ``TimeStampReq`` for an already computed digest.

    Like X-Road (BouncyCastle's generator) the imprint's AlgorithmIdentifier carries NULL parameters; the
    nonce and ``certReq`` are omitted unless asked for.
    """
    alg = _check_imprint_algorithm(hash_alg)
    if len(digest) != hashlib.new(alg).digest_size:
        raise XRoadError(
            FaultCode.INVALID_TIMESTAMP_REQUEST,
            f"digest is {len(digest)} bytes, {alg} digests are {hashlib.new(alg).digest_size}",
        )
    if nonce is not None and nonce < 0:
        raise XRoadError(FaultCode.INVALID_TIMESTAMP_REQUEST, "nonce must not be negative")
    fields: dict[str, Any] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": alg, "parameters": core.Null()},
            "hashed_message": digest,
        },
    }
    if policy is not None:
        fields["req_policy"] = policy
    if nonce is not None:
        fields["nonce"] = nonce
    if cert_req:
        fields["cert_req"] = True
    return bytes(tsp.TimeStampReq(fields).dump())


def build_timestamp_request(
    data: bytes,
    *,
    hash_alg: str = DEFAULT_HASH_ALGORITHM,
    nonce: int | None = None,
    cert_req: bool = False,
    policy: str | None = None,
) -> bytes:
    """Build a DER ``TimeStampReq`` whose imprint is ``hash_alg(data)``.

    X-Road's defaults are SHA-512, no nonce and no ``certReq``.
    """
    alg = _check_imprint_algorithm(hash_alg)
    return build_timestamp_request_for_digest(
        _hash(alg, data), hash_alg=alg, nonce=nonce, cert_req=cert_req, policy=policy
    )


# --- Parsing -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ParsedToken:
    signed_data: Any  # asn1crypto cms.SignedData
    tst_info: Any  # asn1crypto tsp.TSTInfo
    econtent: bytes
    signer_info: Any  # asn1crypto cms.SignerInfo


def _parse_token(token_der: bytes) -> _ParsedToken:
    """Step 1: CMS ContentInfo → SignedData with an id-ct-TSTInfo eContent and exactly one SignerInfo."""
    if len(token_der) > MAX_TIMESTAMP_BYTES:
        raise _fail(f"time-stamp token is larger than {MAX_TIMESTAMP_BYTES} bytes", "malformed")
    try:
        info = cms.ContentInfo.load(token_der, strict=True)
        if info["content_type"].native != "signed_data":
            raise _fail("time-stamp token is not CMS SignedData", "malformed")
        signed_data = info["content"]
        encap = signed_data["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise _fail("time-stamp token does not encapsulate a TSTInfo", "malformed")
        content = encap["content"]
        if not isinstance(content, core.ParsableOctetString):
            raise _fail("time-stamp token has no eContent", "malformed")
        econtent = bytes(content)
        tst_info = tsp.TSTInfo.load(econtent, strict=True)
        tst_info.native  # noqa: B018 - parse every field now so malformed input fails here
        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) != 1:
            raise _fail(f"time-stamp token has {len(signer_infos)} signers, expected 1", "malformed")
        signer_info = signer_infos[0]
        signer_info.native  # noqa: B018
    except XRoadError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as e:
        # AttributeError: asn1crypto on some mistagged values (an ObjectDescriptor where a field should be).
        raise _fail(f"malformed time-stamp token: {e}", "malformed") from e
    return _ParsedToken(signed_data, tst_info, econtent, signer_info)


def timestamp_token_gen_time(token_der: bytes) -> datetime:
    """Return a token's ``genTime`` without verifying it (for display and ordering only)."""
    parsed = _parse_token(token_der)
    gen_time: datetime = parsed.tst_info["gen_time"].native
    return gen_time


# --- Responses -----------------------------------------------------------------------------------------


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161 ``TimeStampResp``; asn1crypto's own makes the token mandatory, but refusals carry none."""

    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def verify_timestamp_response(response_der: bytes, request_der: bytes) -> bytes:
    """Check a ``TimeStampResp`` against the request that produced it and return the token's DER.

    The status must be granted or grantedWithMods; the token's imprint (algorithm and digest) must equal the
    request's, its nonce and policy too when the request set them, and (as BouncyCastle's ``validate`` that
    X-Road runs) the token must carry an ESS signing-certificate attribute. The token's signature is checked
    by :func:`verify_timestamp_token`.
    """
    if len(response_der) > MAX_TIMESTAMP_BYTES:
        raise _fail(f"time-stamp response is larger than {MAX_TIMESTAMP_BYTES} bytes", "malformed")
    try:
        request = tsp.TimeStampReq.load(request_der, strict=True)
        request.native  # noqa: B018
    except (ValueError, TypeError, KeyError) as e:
        raise XRoadError(FaultCode.INVALID_TIMESTAMP_REQUEST, f"malformed time-stamp request: {e}") from e
    try:
        response = _TimeStampResp.load(response_der, strict=True)
        status_info = response["status"]
        status = status_info["status"].native
        texts = status_info["status_string"].native or []
        fail_info = status_info["fail_info"].native
    except (ValueError, TypeError, KeyError) as e:
        raise _fail(f"malformed time-stamp response: {e}", "malformed") from e
    if status not in _GRANTED:
        text = "; ".join(str(t) for t in texts)
        failures = ",".join(sorted(str(f) for f in fail_info)) if fail_info else None
        message = f"TSA refused the request: status {status}"
        if text:
            message += f" ({text})"
        if failures:
            message += f", failInfo {failures}"
        raise _fail(message, "not_granted", status=str(status), status_text=text or None, fail_info=failures)
    token = response["time_stamp_token"]
    if token.native is None:
        raise _fail("TSA granted the request but sent no time-stamp token", "malformed")
    token_der = bytes(token.dump())
    parsed = _parse_token(token_der)
    tst = parsed.tst_info

    req_imprint = request["message_imprint"]
    tok_imprint = tst["message_imprint"]
    if req_imprint["hash_algorithm"]["algorithm"].dotted != tok_imprint["hash_algorithm"]["algorithm"].dotted:
        raise _fail("time-stamp response is for a different hash algorithm", "imprint_mismatch")
    if not hmac.compare_digest(req_imprint["hashed_message"].native, tok_imprint["hashed_message"].native):
        raise _fail("time-stamp response is for a different message imprint", "imprint_mismatch")
    req_nonce = request["nonce"].native
    if req_nonce is not None and tst["nonce"].native != req_nonce:
        raise _fail("time-stamp response nonce does not match the request", "nonce_mismatch")
    req_policy = request["req_policy"].native
    if req_policy is not None and tst["policy"].dotted != request["req_policy"].dotted:
        raise _fail("time-stamp response policy does not match the request", "policy_mismatch")
    attr_types = {attr["type"].native for attr in parsed.signer_info["signed_attrs"]}
    if not attr_types & {"signing_certificate", "signing_certificate_v2"}:
        raise _fail("time-stamp token has no ESS signing-certificate attribute", "malformed")
    return token_der


# --- Tokens --------------------------------------------------------------------------------------------


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _signed_attr(signer_info: Any, name: str) -> Any | None:
    """The single value of signed attribute ``name``, None when absent; a repeated attribute is refused."""
    found = [attr for attr in signer_info["signed_attrs"] if attr["type"].native == name]
    if not found:
        return None
    if len(found) > 1 or len(found[0]["values"]) != 1:
        raise _fail(f"signed attribute {name} must occur once with one value", "malformed")
    return found[0]["values"][0]


def _matches_sid(sid: Any, cert: asn1_x509.Certificate) -> bool:
    if sid.name == "issuer_and_serial_number":
        ias = sid.chosen
        return bool(ias["issuer"] == cert.issuer and ias["serial_number"].native == cert.serial_number)
    key_id = cert.key_identifier
    return key_id is not None and hmac.compare_digest(sid.chosen.native, key_id)


def _signer_candidates(parsed: _ParsedToken, tsa_certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """Step 3: certificates that the SignerInfo's sid names, embedded ones first, then the approved ones."""
    sid = parsed.signer_info["sid"]
    pool: list[bytes] = []
    for choice in parsed.signed_data["certificates"] or []:
        if choice.name == "certificate":
            pool.append(bytes(choice.chosen.dump()))
    pool.extend(_der(c) for c in tsa_certs)
    out: list[x509.Certificate] = []
    seen: set[bytes] = set()
    for der in pool:
        if der in seen:
            continue
        seen.add(der)
        try:
            if not _matches_sid(sid, asn1_x509.Certificate.load(der)):
                continue
            out.append(load_der_certificate(der))
        except ValueError as e:
            raise _fail(f"time-stamp token embeds a malformed certificate: {e}", "malformed") from e
    return out


def _cms_scheme(signer_info: Any) -> algorithms.SignatureScheme:
    """Step 5: the SignerInfo's signature scheme (a bare rsaEncryption or ecdsa takes the digestAlgorithm)."""
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    try:
        scheme = algorithms.scheme_for_identifier(
            signer_info["signature_algorithm"],
            code=FaultCode.TIMESTAMP_VALIDATION,
            digest=digest_name,
            what="time-stamp signature",
        )
    except XRoadError as e:
        raise _fail(e.message, "unsupported_algorithm") from e
    hashes_used = {h for h in (scheme.hash, scheme.mgf_hash) if h is not None}
    if scheme.family not in _CMS_FAMILIES or not hashes_used <= _CMS_DIGESTS:
        raise _fail(f"unsupported time-stamp signature algorithm {scheme.name}", "unsupported_algorithm")
    return scheme


def _signed_by(
    cert: x509.Certificate, scheme: algorithms.SignatureScheme, signer_info: Any, signed: bytes
) -> bool:
    """True when ``signer_info``'s signature over ``signed`` verifies with ``cert``'s public key."""
    try:
        algorithms.verify(
            cert,
            scheme,
            signer_info["signature"].native,
            signed,
            code=FaultCode.TIMESTAMP_VALIDATION,
            what="time-stamp signature",
        )
    except XRoadError:
        return False  # a wrong value, or a certificate whose key did not make this signature
    return True


def _check_ess(signer_info: Any, cert: x509.Certificate) -> None:
    """Step 6: the ESS signing-certificate attribute (v1 or v2), when present, names ``cert``."""
    der = _der(cert)
    asn1_cert = asn1_x509.Certificate.load(der)
    for name in ("signing_certificate", "signing_certificate_v2"):
        value = _signed_attr(signer_info, name)
        if value is None:
            continue
        ids = value["certs"]
        if len(ids) == 0:
            raise _fail(f"{name} attribute lists no certificate", "malformed")
        first = ids[0]
        alg = "sha1" if name == "signing_certificate" else first["hash_algorithm"]["algorithm"].native
        if alg not in _ESS_DIGESTS:
            raise _fail(f"{name} uses unsupported digest {alg}", "unsupported_algorithm")
        if not hmac.compare_digest(first["cert_hash"].native, _hash(alg, der)):
            raise _fail(
                f"{name} attribute does not match the TSA certificate", "signing_certificate_mismatch"
            )
        issuer_serial = first["issuer_serial"]
        if issuer_serial.native is not None:
            serial_ok = issuer_serial["serial_number"].native == asn1_cert.serial_number
            names = [gn.chosen for gn in issuer_serial["issuer"] if gn.name == "directory_name"]
            if not serial_ok or (names and not any(n == asn1_cert.issuer for n in names)):
                raise _fail(
                    f"{name} issuerSerial does not match the TSA certificate", "signing_certificate_mismatch"
                )


def _verify_token(
    token_der: bytes,
    expected_digest: Callable[[HashAlgorithm], bytes],
    tsa_certs: Sequence[x509.Certificate],
    at: datetime | None,
) -> TimestampInfo:
    # Verification steps (X-Road TimestampVerifier + BouncyCastle TimeStampToken.validate):
    #   1. parse: CMS SignedData whose eContent is id-ct-TSTInfo, one SignerInfo;
    #   2. the message imprint equals H(data) with the token's hash algorithm;
    #   3. find the signer certificate named by the SignerInfo sid (embedded, else among the approved);
    #   4. the signer certificate is one of the approved TSA certificates (trusted directly, compared by DER:
    #      xroad_mn.validation decides);
    #   5. signed attributes: content-type is id-ct-TSTInfo, message-digest is H(eContent), and the signature
    #      over the DER SET OF signed attributes verifies with that certificate's key;
    #   6. the ESS signing-certificate attribute (v1 or v2), required by RFC 3161, names that certificate;
    #   7. the certificate is for time-stamping only (BouncyCastle's TSPUtil.validateCertificate: extended key
    #      usage present, critical, exactly id-kp-timeStamping) and valid at genTime
    #      (xroad_mn.validation.validate_tsa_certificate), and genTime is not after the verification time
    #      ``at``.
    # 1.
    parsed = _parse_token(token_der)
    tst = parsed.tst_info
    signer_info = parsed.signer_info
    gen_time: datetime = tst["gen_time"].native

    # 2.
    imprint = tst["message_imprint"]
    alg_name = imprint["hash_algorithm"]["algorithm"].native
    if alg_name not in _IMPRINT_ALGORITHMS:
        raise _fail(f"unsupported time-stamp imprint algorithm {alg_name}", "unsupported_algorithm")
    alg = _check_imprint_algorithm(alg_name)
    hashed_message: bytes = imprint["hashed_message"].native
    if not hmac.compare_digest(hashed_message, expected_digest(alg)):
        raise _fail("time-stamp does not cover the data (message imprint mismatch)", "imprint_mismatch")

    # 3.
    candidates = _signer_candidates(parsed, tsa_certs)
    if not candidates:
        raise _fail("time-stamp signer certificate not found", "tsa_certificate_not_found")

    # 4.
    candidates = approved_tsa_certificates(candidates, tsa_certs)

    # 5.
    if signer_info["signed_attrs"].native is None:
        raise _fail("time-stamp SignerInfo has no signed attributes", "malformed")
    content_type = _signed_attr(signer_info, "content_type")
    if content_type is None or content_type.native != "tst_info":
        raise _fail("signed content-type attribute is not id-ct-TSTInfo", "malformed")
    message_digest = _signed_attr(signer_info, "message_digest")
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in _CMS_DIGESTS:
        raise _fail(f"unsupported signer digest algorithm {digest_name}", "unsupported_algorithm")
    if message_digest is None or not hmac.compare_digest(
        message_digest.native, _hash(digest_name, parsed.econtent)
    ):
        raise _fail("message-digest attribute does not match the TSTInfo", "signature_invalid")
    signed_attrs = bytes(signer_info["signed_attrs"].dump())
    if not signed_attrs or signed_attrs[0] != 0xA0:
        raise _fail("signed attributes are not [0] IMPLICIT", "malformed")
    signed_bytes = b"\x31" + signed_attrs[1:]  # the DER SET OF that was signed
    scheme = _cms_scheme(signer_info)
    tsa_cert = next((c for c in candidates if _signed_by(c, scheme, signer_info, signed_bytes)), None)
    if tsa_cert is None:
        raise _fail("time-stamp signature is invalid", "signature_invalid")

    # 6.
    if _signed_attr(signer_info, "signing_certificate") is None and (
        _signed_attr(signer_info, "signing_certificate_v2") is None
    ):
        raise _fail("time-stamp token has no ESS signing-certificate attribute", "malformed")
    _check_ess(signer_info, tsa_cert)

    # 7.
    validate_tsa_certificate(tsa_cert, approved=tsa_certs, at=gen_time)
    if at is not None and gen_time > at:
        raise _fail(
            f"genTime {gen_time.isoformat()} is after the verification time {at.isoformat()}",
            "gen_time_in_future",
        )

    return TimestampInfo(
        gen_time=gen_time,
        hash_algorithm=alg,
        serial_number=int(tst["serial_number"].native),
        tsa_certificate=tsa_cert,
        message_imprint=hashed_message,
        policy=str(tst["policy"].dotted),
        nonce=tst["nonce"].native,
    )


def verify_timestamp_token(
    token_der: bytes,
    *,
    data: bytes,
    tsa_certs: Sequence[x509.Certificate],
    at: datetime | None = None,
) -> TimestampInfo:
    """Verify that ``token_der`` time-stamps ``data`` and is signed by one of ``tsa_certs``.

    ``data`` is what X-Road stamps: the decoded ``ds:SignatureValue`` bytes (single time-stamp) or the
    bytes of ``ts-hashchainresult.xml`` (batch). Raises ``XRoadError(timestamp_validation)`` with a
    ``reason`` detail on any failure.
    """
    return _verify_token(token_der, lambda alg: _hash(alg, data), tsa_certs, at)


def verify_timestamp_token_digest(
    token_der: bytes,
    *,
    digest: bytes,
    tsa_certs: Sequence[x509.Certificate],
    hash_alg: str | None = None,
    at: datetime | None = None,
) -> TimestampInfo:
    """Like :func:`verify_timestamp_token` when only the digest of the data is known.

    ``hash_alg``, when given, must be the token's imprint algorithm.
    """

    def expected(alg: HashAlgorithm) -> bytes:
        if hash_alg is not None and hash_alg != alg:
            raise _fail(f"time-stamp imprint uses {alg}, expected {hash_alg}", "imprint_mismatch")
        return digest

    return _verify_token(token_der, expected, tsa_certs, at)


def add_tsa_certificate(token_der: bytes, tsa_cert: x509.Certificate) -> bytes:
    """Embed ``tsa_cert`` into the token's SignedData certificates (X-Road does, as it sends no certReq).

    The certificates field is not signed: the signature and every other byte of the token stay as they were.
    """
    parsed = _parse_token(token_der)
    der = _der(tsa_cert)
    # asn1crypto parses the certificates field lazily: a malformed one fails only when touched here.
    try:
        existing = list(parsed.signed_data["certificates"] or [])
        if any(choice.name == "certificate" and bytes(choice.chosen.dump()) == der for choice in existing):
            return token_der
        info = cms.ContentInfo.load(token_der)
        signed_data = info["content"]
        new_choice = cms.CertificateChoices(name="certificate", value=asn1_x509.Certificate.load(der))
        signed_data["certificates"] = cms.CertificateSet([*existing, new_choice])
        return bytes(info.dump())
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as e:
        # AttributeError: asn1crypto on some mistagged values (an ObjectDescriptor where a field should be).
        raise _fail(f"malformed time-stamp token: {e}", "malformed") from e


# --- Transport and failover ----------------------------------------------------------------------------


class TimestampTransport(Protocol):
    """Sends a DER ``TimeStampReq`` to one TSA and returns its DER ``TimeStampResp``."""

    async def send(self, request: bytes) -> bytes: ...


async def request_timestamp(
    data: bytes,
    transports: Sequence[TimestampTransport],
    tsa_certs: Sequence[x509.Certificate],
    *,
    hash_alg: str = DEFAULT_HASH_ALGORITHM,
) -> bytes:
    """Time-stamp ``data`` at the first TSA that answers with a verifiable token (X-Road failover).

    Each TSA is tried in order; a network error, a refusal or a token that fails verification moves on to
    the next. The returned token embeds the signing TSA certificate. When none succeeds the error is
    ``timestamper_failed`` listing each TSA's failure.
    """
    if not transports:
        raise XRoadError(FaultCode.TIMESTAMPER_FAILED, "no time-stamping authority is configured")
    query = build_timestamp_request(data, hash_alg=hash_alg)
    failures: list[str] = []
    for transport in transports:
        try:
            reply = await transport.send(query)
            token = verify_timestamp_response(reply, query)
            info = verify_timestamp_token(token, data=data, tsa_certs=tsa_certs)
            return add_tsa_certificate(token, info.tsa_certificate)
        except XRoadError as e:
            failures.append(f"{transport!r}: {e}")
    raise XRoadError(
        FaultCode.TIMESTAMPER_FAILED,
        "no time-stamping authority could time-stamp the data: " + "; ".join(failures),
        details={"attempts": len(failures)},
    )
