"""Tests for xroad_mn.timestamp against real X-Road tokens, openssl's TSA and an HTTP TSA on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import shutil
import socket
import subprocess
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from asn1crypto import algos, cms, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.crafted import (
    HOSTILE_SIGNATURE_ALGORITHMS,
    HOSTILE_VARIANTS,
    ODD_PSS_PARAMETERS,
    UNKNOWN_SIGNATURE_OID,
    dsa_public_key,
    hostile,
    oids,
    with_public_key,
)
from trust_services.app import TrustSettings, run_trust_service
from trust_services.pki import (
    CertifiedKey,
    DevPki,
    _issue_leaf,
    _key_usage,
    _leaf,
    build_dev_pki,
    ca_name,
    generate_rsa_key,
)
from trust_services.store import init_trust_dir
from trust_services.tsa import build_timestamp_reply
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.timestamp import (
    TimestampTransport,
    add_tsa_certificate,
    build_timestamp_request,
    build_timestamp_request_for_digest,
    request_timestamp,
    timestamp_token_gen_time,
    verify_timestamp_response,
    verify_timestamp_token,
    verify_timestamp_token_digest,
)
from xroad_mn.transport.timestamp import AiohttpTimestampTransport

INTEROP = Path(__file__).resolve().parent / "data" / "xroad"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"

pytestmark = pytest.mark.skipif(not INTEROP.is_dir(), reason="interop corpus not found beside the repo")

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")

# Trust material: the approvedTSA certificates of the global configuration each fixture belongs to.
TRUST_EE_2012 = "globalconf/dirs/globalconf_good_v2/EE/shared-params.xml"  # CN=timestamp1 (AdminCA1)
TRUST_DEV_2024 = "globalconf/dirs/globalconf_good2_v3/DEV/shared-params.xml"  # CN=Test TSA (2024)
TRUST_CS_2021 = "globalconf/dirs/messagelog-addon/CS/shared-params.xml"  # CN=X-Road Test TSA CN
TRUST_DEV_2025 = "globalconf/signed/system-test-public/V6/20251110170000548026000/shared-params.xml"


def _load_cert_text(text: str) -> x509.Certificate:
    raw = base64.b64decode("".join(text.split()))
    if raw.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(raw)
    return x509.load_der_x509_certificate(raw)


def _shared_params(rel: str) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.parse(str(INTEROP / rel), parser).getroot()


def approved_tsa_certs(rel: str) -> list[x509.Certificate]:
    """The ``approvedTSA/cert`` certificates of a shared-params file (base64 of DER or of PEM)."""
    return [_load_cert_text(el.text or "") for el in _shared_params(rel).iterfind("{*}approvedTSA/{*}cert")]


def ocsp_certs(rel: str) -> list[x509.Certificate]:
    root = _shared_params(rel)
    return [_load_cert_text(el.text or "") for el in root.iterfind(".//{*}ocsp/{*}cert")]


def _single_timestamps(signatures_xml: bytes) -> list[tuple[bytes, bytes]]:
    """(token, decoded ds:SignatureValue) for each xades:EncapsulatedTimeStamp in a signatures document."""
    root = etree.fromstring(signatures_xml, etree.XMLParser(resolve_entities=False, no_network=True))
    out = []
    for ets in root.iter("{*}EncapsulatedTimeStamp"):
        sig = ets
        while etree.QName(sig).localname != "Signature":
            parent = sig.getparent()
            assert parent is not None
            sig = parent
        value = sig.find(f"{{{DS_NS}}}SignatureValue")
        assert value is not None
        assert ets.text
        out.append((base64.b64decode(ets.text), base64.b64decode(value.text or "")))
    return out


@dataclass(frozen=True)
class Case:
    """One interop time-stamp: token, stamped data, trust, and the verdict INDEX.md gives."""

    name: str
    token: bytes
    data: bytes
    trust: str
    gen_time: datetime | None  # expected genTime when valid
    reason: str | None = None  # expected failure reason when invalid


def _asic_single(rel: str, trust: str, gen_time: datetime | None, reason: str | None = None) -> Case:
    with zipfile.ZipFile(INTEROP / rel) as z:
        sig_name = next(n for n in z.namelist() if n.startswith("META-INF/") and "signatures" in n)
        ((token, value),) = _single_timestamps(z.read(sig_name))
    return Case(rel, token, value, trust, gen_time, reason)


def _asic_batch(rel: str, trust: str, gen_time: datetime | None, reason: str | None = None) -> Case:
    with zipfile.ZipFile(INTEROP / rel) as z:
        return Case(
            rel, z.read("META-INF/timestamp.tst"), z.read("ts-hashchainresult.xml"), trust, gen_time, reason
        )


def _unpacked_single(name: str, trust: str, gen_time: datetime | None, reason: str | None = None) -> Case:
    rel = f"asic/asic-verifier-cli/unpacked/{name}/META-INF/signatures.xml"
    ((token, value),) = _single_timestamps((INTEROP / rel).read_bytes())
    return Case(rel, token, value, trust, gen_time, reason)


def _unpacked_batch(name: str, trust: str, gen_time: datetime | None, reason: str | None = None) -> Case:
    base = INTEROP / "asic/asic-verifier-cli/unpacked" / name
    token = (base / "META-INF/timestamp.tst").read_bytes()
    return Case(
        f"unpacked/{name}/timestamp.tst",
        token,
        (base / "ts-hashchainresult.xml").read_bytes(),
        trust,
        gen_time,
        reason,
    )


def _utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


T_2024_12_05 = _utc(2024, 12, 5, 13, 16, 35)


def interop_cases() -> list[Case]:
    if not INTEROP.is_dir():
        return []
    gc = INTEROP / "timestamps/globalconf-impl"
    stamped = (gc / "stamped-data").read_bytes()
    return [
        Case(
            "globalconf-impl/valid",
            (gc / "valid").read_bytes(),
            stamped,
            TRUST_EE_2012,
            _utc(2012, 11, 29, 13, 10, 4),
        ),
        Case(
            "globalconf-impl/invalid-signature",
            (gc / "invalid-signature").read_bytes(),
            stamped,
            TRUST_EE_2012,
            None,
            "signature_invalid",
        ),
        Case(
            "globalconf-impl/valid, stamped-data[42]=0x01",
            (gc / "valid").read_bytes(),
            stamped[:42] + b"\x01" + stamped[43:],
            TRUST_EE_2012,
            None,
            "imprint_mismatch",
        ),
        # Single time-stamps over the decoded ds:SignatureValue (real X-Road 7 output).
        _asic_single("asic/asic-verifier-cli/valid-signed-message.asice", TRUST_DEV_2024, T_2024_12_05),
        _asic_single("asic/asic-verifier-cli/invalid-digest.asice", TRUST_DEV_2024, T_2024_12_05),
        _asic_single("asic/asic-verifier-cli/wrong-message.asice", TRUST_DEV_2024, T_2024_12_05),
        _asic_single(
            "asic/asic-verifier-cli/invalid-not-signed-hashchain.asice", TRUST_DEV_2024, T_2024_12_05
        ),
        _asic_single(
            "asic/asic-verifier-cli/valid-signed-hashchain.asice",
            TRUST_DEV_2024,
            _utc(2024, 12, 5, 12, 37, 50),
        ),
        _asic_single(
            "asic/asic-core/valid-signed-message-with-attachments.asice",
            TRUST_DEV_2024,
            _utc(2024, 11, 27, 4, 14, 3),
        ),
        _asic_single(
            "asic/log-archives/unpacked/message-archive-0/3a2a743f-56da-4085-b643-79e335341eb3-request-1.asice",
            TRUST_CS_2021,
            _utc(2023, 10, 23, 12, 13, 27),
        ),
        # Legacy 2012 container: its time-stamp does not cover the SignatureValue (current X-Road rejects it).
        _asic_single("asic/asic-verifier-cli/attachments.asice", TRUST_EE_2012, None, "imprint_mismatch"),
        # Batch time-stamps over the exact bytes of ts-hashchainresult.xml.
        _asic_batch(
            "asic/asic-verifier-cli/valid-batch-ts.asice", TRUST_DEV_2024, _utc(2024, 12, 5, 7, 34, 14)
        ),
        _asic_batch(
            "asic/asic-verifier-cli/invalid-ts-hashchainresult.asice", TRUST_EE_2012, None, "imprint_mismatch"
        ),
        _unpacked_batch("valid-batch-ts", TRUST_EE_2012, _utc(2014, 5, 27, 12, 56, 23)),
        _unpacked_batch("invalid-ts-hashchainresult", TRUST_EE_2012, None, "imprint_mismatch"),
        _unpacked_single("valid-signed-message", TRUST_DEV_2024, T_2024_12_05),
        _unpacked_single("invalid-digest", TRUST_DEV_2024, T_2024_12_05),
        _unpacked_single("wrong-message", TRUST_DEV_2024, T_2024_12_05),
        _unpacked_single("invalid-not-signed-hashchain", TRUST_DEV_2024, T_2024_12_05),
        _unpacked_single("valid-signed-hashchain", TRUST_DEV_2024, _utc(2024, 12, 5, 12, 37, 50)),
        _unpacked_single("attachments", TRUST_EE_2012, None, "imprint_mismatch"),
    ]


CASES = interop_cases()


def _reason(err: XRoadError) -> object:
    return err.details.get("reason")


def _openssl_verify(tmp: Path, token: bytes, data: bytes, tsa: x509.Certificate, at: datetime) -> bool:
    (tmp / "token.der").write_bytes(token)
    (tmp / "data.bin").write_bytes(data)
    (tmp / "tsa.pem").write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    args = [
        "openssl",
        "ts",
        "-verify",
        "-token_in",
        "-in",
        str(tmp / "token.der"),
        "-data",
        str(tmp / "data.bin"),
    ]
    args += ["-CAfile", str(tmp / "tsa.pem"), "-untrusted", str(tmp / "tsa.pem"), "-partial_chain"]
    args += ["-attime", str(int(at.timestamp()))]
    return subprocess.run(args, capture_output=True, check=False).returncode == 0


# --- Interop tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_interop_token_verdict(case: Case) -> None:
    certs = approved_tsa_certs(case.trust)
    if case.reason is None:
        info = verify_timestamp_token(case.token, data=case.data, tsa_certs=certs)
        assert info.gen_time == case.gen_time
        assert info.gen_time.tzinfo is not None
        assert info.tsa_certificate in certs
        assert info.message_imprint == hashlib.new(info.hash_algorithm, case.data).digest()
        assert timestamp_token_gen_time(case.token) == case.gen_time
        # The same verdict when only the digest is known.
        digest = hashlib.new(info.hash_algorithm, case.data).digest()
        assert verify_timestamp_token_digest(case.token, digest=digest, tsa_certs=certs) == info
    else:
        with pytest.raises(XRoadError) as exc:
            verify_timestamp_token(case.token, data=case.data, tsa_certs=certs)
        assert exc.value.has_code(FaultCode.TIMESTAMP_VALIDATION)
        assert _reason(exc.value) == case.reason


@needs_openssl
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_interop_token_agrees_with_openssl(case: Case, tmp_path: Path) -> None:
    certs = approved_tsa_certs(case.trust)
    at = timestamp_token_gen_time(case.token)
    openssl_ok = any(_openssl_verify(tmp_path, case.token, case.data, c, at) for c in certs)
    assert openssl_ok == (case.reason is None)


def test_interop_sha256_of_stamped_data_matches_index() -> None:
    data = (INTEROP / "timestamps/globalconf-impl/stamped-data").read_bytes()
    assert (
        hashlib.sha256(data).hexdigest() == "be9a71b0848e65e1da27d08695d7dec021c54d7d66358e0e1e53202613bbd5fb"
    )


def test_interop_token_with_ocsp_certs_as_trust_finds_no_tsa() -> None:
    gc = INTEROP / "timestamps/globalconf-impl"
    certs = ocsp_certs(TRUST_EE_2012) or approved_tsa_certs(TRUST_DEV_2024)
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(
            (gc / "valid").read_bytes(), data=(gc / "stamped-data").read_bytes(), tsa_certs=certs
        )
    assert _reason(exc.value) == "tsa_certificate_not_found"


@pytest.mark.parametrize("name", ["messagelog-addon-tsp.response", "proxy-core-tsp.response"])
def test_interop_canned_tsa_response(name: str) -> None:
    response = (INTEROP / "timestamps" / name).read_bytes()
    imprint = tsp.TimeStampResp.load(response)["time_stamp_token"]["content"]["encap_content_info"]["content"]
    digest = imprint.parsed["message_imprint"]["hashed_message"].native
    assert digest.hex().startswith("71d585c9")
    assert digest.hex().endswith("21cf")
    request = build_timestamp_request_for_digest(digest, hash_alg="sha256", nonce=123456789)
    token = verify_timestamp_response(response, request)
    info = verify_timestamp_token_digest(
        token, digest=digest, hash_alg="sha256", tsa_certs=approved_tsa_certs(TRUST_EE_2012)
    )
    assert info.gen_time == _utc(2014, 5, 6, 8, 28, 49)
    assert info.policy == "1.2.3"
    assert info.nonce == 123456789

    with pytest.raises(XRoadError) as exc:
        verify_timestamp_response(
            response, build_timestamp_request_for_digest(digest, hash_alg="sha256", nonce=1)
        )
    assert _reason(exc.value) == "nonce_mismatch"
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_response(response, build_timestamp_request(b"other", hash_alg="sha256"))
    assert _reason(exc.value) == "imprint_mismatch"
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token_digest(
            token, digest=digest, hash_alg="sha512", tsa_certs=[info.tsa_certificate]
        )
    assert _reason(exc.value) == "imprint_mismatch"


# --- Tampering and wrong trust -------------------------------------------------------------------------


def _case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


SINGLE_2024 = "asic/asic-verifier-cli/valid-signed-message.asice"
GC_VALID = "globalconf-impl/valid"


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.parametrize("name", [SINGLE_2024, GC_VALID])
def test_tampered_data_fails(name: str) -> None:
    case = _case(name)
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(case.token, data=_flip(case.data, 0), tsa_certs=approved_tsa_certs(case.trust))
    assert exc.value.has_code(FaultCode.TIMESTAMP_VALIDATION)
    assert _reason(exc.value) == "imprint_mismatch"


@pytest.mark.parametrize("name", [SINGLE_2024, GC_VALID])
def test_tampered_signature_fails(name: str) -> None:
    case = _case(name)
    signature = cms.ContentInfo.load(case.token)["content"]["signer_infos"][0]["signature"].native
    at = case.token.index(signature)
    tampered = _flip(case.token, at + len(signature) // 2)
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(tampered, data=case.data, tsa_certs=approved_tsa_certs(case.trust))
    assert exc.value.has_code(FaultCode.TIMESTAMP_VALIDATION)
    assert _reason(exc.value) == "signature_invalid"


@pytest.mark.parametrize("name", [SINGLE_2024, GC_VALID])
def test_tampered_tstinfo_fails(name: str) -> None:
    case = _case(name)
    gen_time = timestamp_token_gen_time(case.token).strftime("%Y%m%d%H%M%S").encode()
    at = case.token.index(gen_time)
    later = str(int(gen_time) + 1).encode()
    tampered = case.token[:at] + later + case.token[at + len(later) :]
    assert timestamp_token_gen_time(tampered) > timestamp_token_gen_time(case.token)
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(tampered, data=case.data, tsa_certs=approved_tsa_certs(case.trust))
    assert exc.value.has_code(FaultCode.TIMESTAMP_VALIDATION)
    assert _reason(exc.value) == "signature_invalid"


def test_wrong_tsa_certificate_refused() -> None:
    case = _case(SINGLE_2024)
    # The 2025 "CN=Test TSA" has the same issuer and serial as the 2024 one, but another key.
    other_tsa = approved_tsa_certs(TRUST_DEV_2025)
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(case.token, data=case.data, tsa_certs=other_tsa)
    # The embedded 2024 certificate is not approved; the approved look-alike's key does not verify.
    assert _reason(exc.value) == "signature_invalid"
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(case.token, data=case.data, tsa_certs=[])
    assert _reason(exc.value) == "tsa_not_approved"
    gc = _case(GC_VALID)
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(gc.token, data=gc.data, tsa_certs=other_tsa)
    assert _reason(exc.value) == "tsa_certificate_not_found"


def _strip_certificates(token: bytes) -> bytes:
    info = cms.ContentInfo.load(token)
    signed_data = info["content"]
    signed_data["certificates"] = None
    return bytes(info.dump())


def test_token_without_embedded_cert_and_lookalike_trust_fails_on_signature() -> None:
    case = _case(SINGLE_2024)
    stripped = _strip_certificates(case.token)
    good = verify_timestamp_token(stripped, data=case.data, tsa_certs=approved_tsa_certs(TRUST_DEV_2024))
    assert good.gen_time == T_2024_12_05
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(stripped, data=case.data, tsa_certs=approved_tsa_certs(TRUST_DEV_2025))
    assert _reason(exc.value) == "signature_invalid"


def test_add_tsa_certificate_keeps_token_valid_and_is_idempotent(tmp_path: Path) -> None:
    gc = _case(GC_VALID)
    (tsa,) = approved_tsa_certs(TRUST_EE_2012)
    embedded = add_tsa_certificate(gc.token, tsa)
    assert embedded != gc.token
    assert add_tsa_certificate(embedded, tsa) == embedded
    assert verify_timestamp_token(embedded, data=gc.data, tsa_certs=[tsa]).tsa_certificate == tsa
    # The embedded certificate alone is no trust.
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(embedded, data=gc.data, tsa_certs=approved_tsa_certs(TRUST_DEV_2024))
    assert _reason(exc.value) == "tsa_not_approved"


def test_verification_time_before_gen_time_refused() -> None:
    case = _case(SINGLE_2024)
    certs = approved_tsa_certs(case.trust)
    assert (
        verify_timestamp_token(case.token, data=case.data, tsa_certs=certs, at=T_2024_12_05).gen_time
        == T_2024_12_05
    )
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(
            case.token, data=case.data, tsa_certs=certs, at=T_2024_12_05 - timedelta(seconds=1)
        )
    assert _reason(exc.value) == "gen_time_in_future"


@pytest.mark.parametrize(
    "token",
    [b"", b"\x30\x00", b"not a token", bytes(300_000)],
    ids=["empty", "empty-sequence", "text", "oversized"],
)
def test_garbage_token_is_malformed(token: bytes) -> None:
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(token, data=b"x", tsa_certs=[])
    assert exc.value.has_code(FaultCode.TIMESTAMP_VALIDATION)
    assert _reason(exc.value) == "malformed"


@given(st.binary(max_size=600))
def test_token_parser_never_raises_other_errors(blob: bytes) -> None:
    with pytest.raises(XRoadError):
        verify_timestamp_token(blob, data=b"x", tsa_certs=[])


@given(cut=st.integers(min_value=1, max_value=554))
def test_truncated_interop_token_is_refused(cut: int) -> None:
    gc = _case(GC_VALID)
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(gc.token[:cut], data=gc.data, tsa_certs=approved_tsa_certs(TRUST_EE_2012))
    assert exc.value.has_code(FaultCode.TIMESTAMP_VALIDATION)


# --- Requests ------------------------------------------------------------------------------------------


def _openssl_query_text(tmp: Path, query: bytes) -> str:
    (tmp / "req.tsq").write_bytes(query)
    return subprocess.run(
        ["openssl", "ts", "-query", "-in", str(tmp / "req.tsq"), "-text"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout


@needs_openssl
def test_default_request_matches_openssl_query(tmp_path: Path) -> None:
    data = b"decoded ds:SignatureValue bytes"
    query = build_timestamp_request(data)
    text = _openssl_query_text(tmp_path, query)
    assert "Hash Algorithm: sha512" in text
    assert "Nonce: unspecified" in text
    assert "Certificate required: no" in text
    # Byte-identical to what `openssl ts -query -no_nonce -sha512` builds.
    (tmp_path / "data.bin").write_bytes(data)
    subprocess.run(
        [
            "openssl",
            "ts",
            "-query",
            "-data",
            str(tmp_path / "data.bin"),
            "-no_nonce",
            "-sha512",
            "-out",
            str(tmp_path / "openssl.tsq"),
        ],
        capture_output=True,
        check=True,
    )
    assert (tmp_path / "openssl.tsq").read_bytes() == query


@needs_openssl
@pytest.mark.parametrize("alg", ["sha256", "sha384", "sha512"])
def test_request_options_parse_in_openssl(tmp_path: Path, alg: str) -> None:
    query = build_timestamp_request(
        b"abc", hash_alg=alg, nonce=0x1234ABCD, cert_req=True, policy="1.3.6.1.4.1.99999.7"
    )
    text = _openssl_query_text(tmp_path, query)
    assert f"Hash Algorithm: {alg}" in text
    assert "Nonce: 0x1234ABCD" in text
    assert "Certificate required: yes" in text
    assert "Policy OID: 1.3.6.1.4.1.99999.7" in text
    parsed = tsp.TimeStampReq.load(query)
    assert parsed["message_imprint"]["hashed_message"].native == hashlib.new(alg, b"abc").digest()


@given(
    digest=st.binary(min_size=64, max_size=64), nonce=st.none() | st.integers(min_value=0, max_value=2**160)
)
def test_request_for_digest_roundtrip(digest: bytes, nonce: int | None) -> None:
    parsed = tsp.TimeStampReq.load(build_timestamp_request_for_digest(digest, nonce=nonce))
    assert parsed["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha512"
    assert parsed["message_imprint"]["hashed_message"].native == digest
    assert parsed["nonce"].native == nonce
    assert parsed["cert_req"].native is False


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: build_timestamp_request(b"x", hash_alg="sha1"), "unsupported"),
        (lambda: build_timestamp_request(b"x", hash_alg="md5"), "unsupported"),
        (lambda: build_timestamp_request_for_digest(b"\0" * 32, hash_alg="sha512"), "32 bytes"),
        (lambda: build_timestamp_request(b"x", nonce=-1), "negative"),
    ],
)
def test_bad_request_arguments(call: Callable[[], bytes], match: str) -> None:
    with pytest.raises(XRoadError, match=match) as exc:
        call()
    assert exc.value.has_code(FaultCode.INVALID_TIMESTAMP_REQUEST)


# --- A real TSA: openssl ts -reply with the 2025 Test TSA key that system-test V6 approves ----------------

TSA_2025 = INTEROP / "certs/test-ca-2025"


@dataclass(frozen=True)
class OpensslTsa:
    """``openssl ts -reply`` configured with one TSA key and certificate."""

    config: Path
    workdir: Path
    certificate: x509.Certificate

    def reply(self, query: bytes, name: str = "q") -> bytes:
        query_file = self.workdir / f"{name}.tsq"
        reply_file = self.workdir / f"{name}.tsr"
        query_file.write_bytes(query)
        args = ["openssl", "ts", "-reply", "-config", str(self.config), "-queryfile", str(query_file)]
        subprocess.run([*args, "-out", str(reply_file)], capture_output=True, check=True)
        return reply_file.read_bytes()

    async def areply(self, query: bytes, name: str) -> bytes:
        query_file = self.workdir / f"{name}.tsq"
        reply_file = self.workdir / f"{name}.tsr"
        query_file.write_bytes(query)
        args = [
            "ts",
            "-reply",
            "-config",
            str(self.config),
            "-queryfile",
            str(query_file),
            "-out",
            str(reply_file),
        ]
        proc = await asyncio.create_subprocess_exec(
            "openssl", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        assert await proc.wait() == 0
        return reply_file.read_bytes()


def _make_tsa(
    workdir: Path, cert_pem: Path, key_pem: Path, digests: str = "sha256, sha384, sha512"
) -> OpensslTsa:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "serial").write_text("01\n")
    config = workdir / "tsa.cnf"
    config.write_text(
        "[ tsa ]\ndefault_tsa = tsa_config1\n[ tsa_config1 ]\n"
        f"serial = {workdir / 'serial'}\ncrypto_device = builtin\n"
        f"signer_cert = {cert_pem}\nsigner_key = {key_pem}\ncerts = {cert_pem}\nsigner_digest = sha256\n"
        f"default_policy = 1.2.3.4.1\ndigests = {digests}\naccuracy = secs:1\nordering = no\ntsa_name = no\n"
        "ess_cert_id_chain = no\ness_cert_id_alg = sha256\n"
    )
    return OpensslTsa(config, workdir, x509.load_pem_x509_certificate(cert_pem.read_bytes()))


@pytest.fixture
def openssl_tsa(tmp_path: Path) -> OpensslTsa:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    return _make_tsa(tmp_path / "tsa", TSA_2025 / "certs/tsa.cert.pem", TSA_2025 / "private/tsa.key.pem")


def _self_signed_tsa(tmp: Path, not_before: datetime, not_after: datetime) -> tuple[Path, Path]:
    """A TSA certificate with the critical timeStamping EKU; the caller picks its validity."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Expired Test TSA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(key, hashes.SHA256())
    )
    tmp.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = tmp / "cert.pem", tmp / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_pem, key_pem


def test_openssl_tsa_round_trip(openssl_tsa: OpensslTsa) -> None:
    trust = approved_tsa_certs(TRUST_DEV_2025)
    assert openssl_tsa.certificate in trust
    data = b"<ts-hashchainresult/>"
    for alg in ("sha256", "sha384", "sha512"):
        query = build_timestamp_request(data, hash_alg=alg)
        token = verify_timestamp_response(openssl_tsa.reply(query, alg), query)
        info = verify_timestamp_token(
            token, data=data, tsa_certs=trust, at=datetime.now(UTC) + timedelta(minutes=1)
        )
        assert info.hash_algorithm == alg
        assert info.tsa_certificate == openssl_tsa.certificate
        assert abs(info.gen_time - datetime.now(UTC)) < timedelta(minutes=5)


def test_openssl_tsa_with_nonce_and_cert_req(openssl_tsa: OpensslTsa) -> None:
    query = build_timestamp_request(b"data", nonce=987654321, cert_req=True)
    token = verify_timestamp_response(openssl_tsa.reply(query), query)
    assert cms.ContentInfo.load(token)["content"]["certificates"].native
    info = verify_timestamp_token(token, data=b"data", tsa_certs=approved_tsa_certs(TRUST_DEV_2025))
    assert info.nonce == 987654321
    other = build_timestamp_request(b"data", nonce=1)
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_response(openssl_tsa.reply(query), other)
    assert _reason(exc.value) == "nonce_mismatch"


def test_openssl_tsa_rejection_is_reported(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    tsa = _make_tsa(
        tmp_path, TSA_2025 / "certs/tsa.cert.pem", TSA_2025 / "private/tsa.key.pem", digests="sha256"
    )
    query = build_timestamp_request(b"data")  # sha512, which this TSA does not accept
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_response(tsa.reply(query), query)
    assert exc.value.has_code(FaultCode.TIMESTAMP_VALIDATION)
    assert exc.value.details["status"] == "rejection"
    assert exc.value.details["fail_info"] == "bad_alg"
    assert "rejection" in exc.value.message


def test_tsa_certificate_expired_at_gen_time(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    now = datetime.now(UTC)
    cert_pem, key_pem = _self_signed_tsa(tmp_path / "pki", now - timedelta(days=30), now - timedelta(days=1))
    tsa = _make_tsa(tmp_path / "tsa", cert_pem, key_pem)
    query = build_timestamp_request(b"data")
    token = verify_timestamp_response(tsa.reply(query), query)
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(token, data=b"data", tsa_certs=[tsa.certificate])
    assert _reason(exc.value) == "tsa_certificate_expired"


def test_response_garbage_is_malformed() -> None:
    query = build_timestamp_request(b"x")
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_response(b"<html>bad gateway</html>", query)
    assert _reason(exc.value) == "malformed"
    granted_without_token = bytes.fromhex("30053003020100")  # SEQUENCE { PKIStatusInfo { granted } }
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_response(granted_without_token, query)
    assert _reason(exc.value) == "malformed"
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_response(granted_without_token, b"junk")
    assert exc.value.has_code(FaultCode.INVALID_TIMESTAMP_REQUEST)


# --- HTTP transport and failover against TSAs on 127.0.0.1 -----------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post("/tsa", handler)
        runner = web.AppRunner(app, handler_cancellation=True)  # a slow handler ends when the client gives up
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}/tsa"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsa"


def _openssl_handler(tsa: OpensslTsa, seen: list[str]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        seen.append(request.content_type)
        reply = await tsa.areply(await request.read(), f"http{len(seen)}")
        return web.Response(body=reply, content_type="application/timestamp-reply")

    return handle


async def _status_500(request: web.Request) -> web.Response:
    return web.Response(status=500, text="TSA down")


async def _wrong_type(request: web.Request) -> web.Response:
    return web.Response(text="<html/>", content_type="text/html")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(body=b"", content_type="application/timestamp-reply")


async def test_transport_posts_timestamp_query(
    openssl_tsa: OpensslTsa, serve: Callable[[Handler], Awaitable[str]], session: aiohttp.ClientSession
) -> None:
    seen: list[str] = []
    url = await serve(_openssl_handler(openssl_tsa, seen))
    query = build_timestamp_request(b"payload")
    reply = await AiohttpTimestampTransport(url, session).send(query)
    assert seen == ["application/timestamp-query"]
    token = verify_timestamp_response(reply, query)
    assert verify_timestamp_token(token, data=b"payload", tsa_certs=[openssl_tsa.certificate])


@pytest.mark.parametrize(
    ("handler", "code"),
    [
        (_status_500, FaultCode.TIMESTAMPER_FAILED),
        (_wrong_type, FaultCode.TIMESTAMPER_FAILED),
        (_slow, FaultCode.NETWORK_ERROR),
    ],
    ids=["http-500", "wrong-content-type", "timeout"],
)
async def test_transport_errors(
    handler: Handler,
    code: FaultCode,
    serve: Callable[[Handler], Awaitable[str]],
    session: aiohttp.ClientSession,
) -> None:
    url = await serve(handler)
    with pytest.raises(XRoadError) as exc:
        await AiohttpTimestampTransport(url, session, timeout=0.3).send(build_timestamp_request(b"x"))
    assert exc.value.has_code(code)
    assert exc.value.details["url"] == url


async def test_transport_connection_refused(closed_port_url: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(XRoadError) as exc:
        await AiohttpTimestampTransport(closed_port_url, session).send(build_timestamp_request(b"x"))
    assert exc.value.has_code(FaultCode.NETWORK_ERROR)


async def test_request_timestamp_fails_over_to_a_working_tsa(
    openssl_tsa: OpensslTsa,
    tmp_path: Path,
    serve: Callable[[Handler], Awaitable[str]],
    session: aiohttp.ClientSession,
    closed_port_url: str,
) -> None:
    now = datetime.now(UTC)
    cert_pem, key_pem = _self_signed_tsa(tmp_path / "rogue", now - timedelta(days=1), now + timedelta(days=1))
    rogue = _make_tsa(tmp_path / "rogue-tsa", cert_pem, key_pem)  # answers fine but is not approved
    good_seen: list[str] = []
    rogue_seen: list[str] = []
    transports: list[TimestampTransport] = [
        AiohttpTimestampTransport(closed_port_url, session),
        AiohttpTimestampTransport(await serve(_status_500), session),
        AiohttpTimestampTransport(await serve(_wrong_type), session),
        AiohttpTimestampTransport(await serve(_openssl_handler(rogue, rogue_seen)), session),
        AiohttpTimestampTransport(await serve(_openssl_handler(openssl_tsa, good_seen)), session),
    ]
    trust = approved_tsa_certs(TRUST_DEV_2025)
    data = b"<ts-hashchainresult/>"
    token = await request_timestamp(data, transports, trust)
    assert len(rogue_seen) == 1
    assert len(good_seen) == 1
    # The token embeds the approved TSA certificate, as X-Road stores it.
    embedded = cms.ContentInfo.load(token)["content"]["certificates"]
    assert [c.chosen.dump() for c in embedded] == [
        openssl_tsa.certificate.public_bytes(serialization.Encoding.DER)
    ]
    info = verify_timestamp_token(token, data=data, tsa_certs=trust)
    assert info.hash_algorithm == "sha512"


async def test_request_timestamp_all_fail(
    serve: Callable[[Handler], Awaitable[str]], session: aiohttp.ClientSession, closed_port_url: str
) -> None:
    transports = [
        AiohttpTimestampTransport(closed_port_url, session),
        AiohttpTimestampTransport(await serve(_status_500), session),
    ]
    with pytest.raises(XRoadError) as exc:
        await request_timestamp(b"x", transports, approved_tsa_certs(TRUST_DEV_2025))
    assert exc.value.has_code(FaultCode.TIMESTAMPER_FAILED)
    assert exc.value.details["attempts"] == 2
    with pytest.raises(XRoadError) as exc:
        await request_timestamp(b"x", [], approved_tsa_certs(TRUST_DEV_2025))
    assert exc.value.has_code(FaultCode.TIMESTAMPER_FAILED)


# --- End to end with our own TSA (trust_services) ------------------------------------------------------

FROZEN_NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def dev_pki() -> DevPki:
    return build_dev_pki(FROZEN_NOW)


@pytest.mark.parametrize("alg", ["sha256", "sha384", "sha512"])
def test_own_tsa_reply_verifies(dev_pki: DevPki, alg: str) -> None:
    data = b"decoded signature value"
    query = build_timestamp_request(data, hash_alg=alg, nonce=42, cert_req=True)
    reply = build_timestamp_reply(query, tsa=dev_pki.tsa, serial=7, now=FROZEN_NOW)
    token = verify_timestamp_response(reply, query)
    info = verify_timestamp_token(token, data=data, tsa_certs=[dev_pki.tsa.certificate], at=FROZEN_NOW)
    assert info.gen_time == FROZEN_NOW
    assert info.serial_number == 7
    assert info.nonce == 42
    assert info.hash_algorithm == alg
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(token, data=data, tsa_certs=[dev_pki.ocsp_responder.certificate])
    assert _reason(exc.value) == "tsa_not_approved"


@needs_openssl
def test_own_tsa_token_verifies_in_openssl(dev_pki: DevPki, tmp_path: Path) -> None:
    data = b"<ts-hashchainresult/>"
    query = build_timestamp_request(data)  # X-Road's query: no certReq, so the token embeds no cert
    token = verify_timestamp_response(
        build_timestamp_reply(query, tsa=dev_pki.tsa, serial=1, now=FROZEN_NOW), query
    )
    assert _openssl_verify(tmp_path, token, data, dev_pki.tsa.certificate, FROZEN_NOW)
    assert not _openssl_verify(tmp_path, token, _flip(data, 0), dev_pki.tsa.certificate, FROZEN_NOW)


async def test_own_trust_service_over_http(
    tmp_path: Path, session: aiohttp.ClientSession, closed_port_url: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    files = init_trust_dir(tmp_path / "trust", now=now)
    tsa_cert = x509.load_pem_x509_certificate(files.tsa_cert.read_bytes())
    async with run_trust_service(TrustSettings(dir=files.directory, port=0), clock=lambda: now) as service:
        transports = [
            AiohttpTimestampTransport(closed_port_url, session),
            AiohttpTimestampTransport(service.urls.tsa, session),
        ]
        token = await request_timestamp(b"payload", transports, [tsa_cert])
    info = verify_timestamp_token(token, data=b"payload", tsa_certs=[tsa_cert], at=now)
    assert info.gen_time == now
    assert info.tsa_certificate == tsa_cert


# --- Review findings: TSA certificate usage (1c), add_tsa_certificate on malformed tokens (2b) ---------


def _tsa_like(dev_pki: DevPki, extensions: list[tuple[x509.ExtensionType, bool]]) -> CertifiedKey:
    return _issue_leaf(
        dev_pki.root,
        ca_name("not quite a TSA"),
        generate_rsa_key(),
        extensions,
        not_before=FROZEN_NOW - timedelta(days=1),
        not_after=FROZEN_NOW + timedelta(days=10),
    )


_TSA_USAGE = _key_usage(digital_signature=True, non_repudiation=True)


@pytest.mark.parametrize(
    "extensions",
    [
        pytest.param(_leaf(None, _TSA_USAGE), id="no-extended-key-usage"),
        pytest.param(
            _leaf(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), _TSA_USAGE), id="not-critical"
        ),
        pytest.param(
            _leaf(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.CODE_SIGNING]),
                _TSA_USAGE,
                eku_critical=True,
            ),
            id="not-solely-timestamping",
        ),
    ],
)
def test_tsa_certificate_must_be_for_timestamping_only(
    dev_pki: DevPki, extensions: list[tuple[x509.ExtensionType, bool]]
) -> None:
    # BouncyCastle's TSPUtil.validateCertificate (run by X-Road's TimestampVerifier) refuses these.
    bad = _tsa_like(dev_pki, extensions)
    query = build_timestamp_request(b"abc")
    token = verify_timestamp_response(build_timestamp_reply(query, tsa=bad, serial=1, now=FROZEN_NOW), query)
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(token, data=b"abc", tsa_certs=[bad.certificate])
    assert exc.value.has_code(FaultCode.TIMESTAMP_VALIDATION)
    assert _reason(exc.value) == "tsa_certificate_not_for_timestamping"


def test_every_interop_tsa_certificate_is_for_timestamping_only() -> None:
    certs = [
        c
        for rel in (TRUST_EE_2012, TRUST_DEV_2024, TRUST_CS_2021, TRUST_DEV_2025)
        for c in approved_tsa_certs(rel)
    ]
    assert certs
    for cert in certs:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        assert eku.critical
        assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def _digest_algorithms_offset(token: bytes) -> int:
    """Offset of SignedData's digestAlgorithms SET in ``token`` (a field the verifier never reads)."""
    der = bytes(cms.ContentInfo.load(token)["content"]["digest_algorithms"].dump())
    return token.index(der)


def test_add_tsa_certificate_on_a_corrupt_unread_field_is_malformed() -> None:
    # asn1crypto parses lazily: re-encoding the token touches fields verification never reads, and a corrupt
    # one must not escape as ValueError.
    case = _case(GC_VALID)
    (tsa,) = approved_tsa_certs(TRUST_DEV_2024)  # not embedded yet: the token is re-encoded
    start = _digest_algorithms_offset(case.token)
    corrupt = bytearray(case.token)
    assert corrupt[start] == 0x31  # digestAlgorithms SET ...
    corrupt[start] = 0xC6  # ... now a private-class tag
    with pytest.raises(XRoadError) as exc:
        add_tsa_certificate(bytes(corrupt), tsa)
    assert _reason(exc.value) == "malformed"


@given(edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8))
@example(edits=[(187, 7)])  # an ObjectDescriptor tag in TSTInfo: asn1crypto raised AttributeError
def test_add_tsa_certificate_never_raises_other_errors(edits: list[tuple[int, int]]) -> None:
    case = _case(SINGLE_2024)
    (tsa,) = approved_tsa_certs(TRUST_EE_2012)  # not embedded yet: the token is re-encoded
    data = bytearray(case.token)
    for offset, value in edits:
        data[offset % len(data)] = value
    with contextlib.suppress(XRoadError):
        add_tsa_certificate(bytes(data), tsa)


# Hostile tokens and TSA certificates: every verdict is timestamp_validation


def _own_token(dev_pki: DevPki, data: bytes) -> bytes:
    query = build_timestamp_request(data)
    return verify_timestamp_response(
        build_timestamp_reply(query, tsa=dev_pki.tsa, serial=3, now=FROZEN_NOW), query
    )


def _with_signer_algorithm(token: bytes, identifier: algos.SignedDigestAlgorithm) -> bytes:
    info = cms.ContentInfo.load(token)
    info["content"]["signer_infos"][0]["signature_algorithm"] = identifier
    return bytes(info.dump())


@pytest.mark.parametrize("variant", HOSTILE_SIGNATURE_ALGORITHMS)
def test_hostile_token_signature_algorithm_is_refused(dev_pki: DevPki, variant: str) -> None:
    data = b"signature value"
    if variant == "unknown-signature-oid":
        identifier = algos.SignedDigestAlgorithm({"algorithm": UNKNOWN_SIGNATURE_OID})
    else:
        params = algos.RSASSAPSSParams(ODD_PSS_PARAMETERS[variant.removeprefix("pss-")])
        identifier = algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": params})
    token = _with_signer_algorithm(_own_token(dev_pki, data), identifier)
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(token, data=data, tsa_certs=[dev_pki.tsa.certificate], at=FROZEN_NOW)
    assert exc.value.has_code(FaultCode.TIMESTAMP_VALIDATION)
    assert _reason(exc.value) in ("unsupported_algorithm", "signature_invalid")


@pytest.mark.parametrize("variant", HOSTILE_VARIANTS)
def test_hostile_tsa_certificate(dev_pki: DevPki, variant: str) -> None:
    """An approved TSA certificate edited after the TSA signed: an X25519 key cannot have signed the token,
    and any other edit no longer matches the token's ESS signing-certificate hash."""
    data = b"signature value"
    token = _strip_certificates(_own_token(dev_pki, data))
    tsa = hostile(dev_pki.tsa.certificate, variant)
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(token, data=data, tsa_certs=[tsa], at=FROZEN_NOW)
    expected = "signature_invalid" if variant == "x25519-key" else "signing_certificate_mismatch"
    assert _reason(exc.value) == expected


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_dsa_tsa_certificate_where_rsa_signed_is_refused(dev_pki: DevPki) -> None:
    data = b"signature value"
    token = _strip_certificates(_own_token(dev_pki, data))
    tsa = with_public_key(dev_pki.tsa.certificate, dsa_public_key())
    with pytest.raises(XRoadError) as exc:
        verify_timestamp_token(token, data=data, tsa_certs=[tsa], at=FROZEN_NOW)
    assert _reason(exc.value) == "signature_invalid"


@pytest.fixture(scope="module")
def own_token(dev_pki: DevPki) -> bytes:
    return _own_token(dev_pki, b"signature value")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(oid=oids())
def test_fuzz_token_signature_algorithm_oids(dev_pki: DevPki, own_token: bytes, oid: str) -> None:
    """Any SignerInfo signatureAlgorithm OID: a verdict, never a library exception."""
    data = b"signature value"
    token = _with_signer_algorithm(own_token, algos.SignedDigestAlgorithm({"algorithm": oid}))
    with contextlib.suppress(XRoadError):
        verify_timestamp_token(token, data=data, tsa_certs=[dev_pki.tsa.certificate], at=FROZEN_NOW)
