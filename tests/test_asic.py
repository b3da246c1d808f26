"""ASiC-E containers: interop verdicts (library and CLI), our containers in outside tools, tampering."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import tracemalloc
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xroad_mn.asic import (
    ASIC_MANIFEST_NS,
    MAX_TOTAL_UNCOMPRESSED_BYTES,
    MIMETYPE,
    AsicContainer,
    BatchTimestamp,
    build_timestamp_hash_chains,
    read_container,
    signer_of_message,
    verify_container,
    write_container,
)
from xroad_mn.certs import TEST_PROFILE, load_certificates
from xroad_mn.cli.asic import app
from xroad_mn.confclient.installed import load_trust_material
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.params import (
    ApprovedCAEntry,
    ApprovedTSAEntry,
    CaInfo,
    OcspInfo,
    SharedParameters,
    build_shared_params,
)
from xroad_mn.globalconf.trust import ApprovedCA, ApprovedTSA, OcspResponder, TrustMaterial
from xroad_mn.hashchain import MessagePart
from xroad_mn.identifiers import MemberId
from xroad_mn.signature import SignatureData, embed_timestamp, sign, sign_batch, timestamp_input

from .test_signature import SOAP, Evidence, build_evidence, pem, xmlsec_verify

INTEROP = Path(__file__).resolve().parent / "data" / "xroad"
ASIC = INTEROP / "asic"
CERTS = INTEROP / "certs"
DEV2024_CONF = INTEROP / "globalconf" / "dirs" / "globalconf_good2_v3"


@pytest.fixture(scope="session")
def evidence() -> Evidence:
    return build_evidence()


@pytest.fixture(scope="session")
def dev2024_trust() -> TrustMaterial:
    """DEV-2024 trust (``globalconf_good2_v3``): Test CA, Test OCSP and Test TSA of 2024."""
    return load_trust_material(DEV2024_CONF)


@pytest.fixture(scope="session")
def admin_ca1_trust() -> TrustMaterial:
    """AdminCA1 trust for the 2012-2014 containers: AdminCA1 (EJBCA sample), its 'Ocsp Signer' responders
    and TSA timestamp1, with X-Road's test certificate profile (class BUSINESS, code = CN)."""
    admin = load_certificates((CERTS / "derived-from-p12/AdminCA1.pem").read_bytes())[0]
    responders = tuple(
        OcspResponder("http://127.0.0.1:1/ocsp", load_certificates(p.read_bytes())[0])
        for p in sorted((CERTS / "derived-from-globalconf").glob("ee-good_v2-topCA-ocsp-[1-5].pem"))
    )
    tsa = load_certificates((CERTS / "derived-from-p12/timestamp1-tsp.pem").read_bytes())[0]
    ca = ApprovedCA("AdminCA1", admin, (), responders, TEST_PROFILE, False, "EE")
    return TrustMaterial(
        "EE", (ca,), (ApprovedTSA("timestamp1", "http://127.0.0.1:1/tsa", tsa, "EE"),), 86400, None
    )


# ----------------------------------------------------------------------------------------------------------
# 1. Interop containers


@dataclass(frozen=True)
class AsicCase:
    container: str
    trust: str  # dev2024 | admin
    expected: str | None  # None = VALID
    why: str
    at: datetime | None = None


ASIC_CASES: Sequence[AsicCase] = (
    AsicCase(
        "asic-core/no-message.asice", "dev2024", FaultCode.ASIC_MESSAGE_NOT_FOUND, "no message.xml entry"
    ),
    AsicCase(
        "asic-core/no-mimetype.asice", "dev2024", FaultCode.ASIC_MIME_TYPE_NOT_FOUND, "no mimetype entry"
    ),
    AsicCase(
        "asic-core/no-signature.asice",
        "dev2024",
        FaultCode.ASIC_SIGNATURE_NOT_FOUND,
        "no META-INF/*signatures*.xml",
    ),
    AsicCase("asic-core/not-asic.asice", "dev2024", FaultCode.ASIC_MIME_TYPE_NOT_FOUND, "not a ZIP archive"),
    AsicCase(
        "asic-core/valid-signed-message-with-attachments.asice",
        "dev2024",
        None,
        "real 7.x output: SOAP response + 2 attachments referenced directly, single time-stamp",
    ),
    AsicCase(
        "asic-core/valid-signed-message.asice",
        "admin",
        None,
        "2014 container (CN=consumer, AdminCA1), legacy time-stamp inside SignatureTimeStamp",
    ),
    AsicCase(
        "asic-verifier-cli/attachments.asice",
        "admin",
        FaultCode.ASIC_MESSAGE_NOT_FOUND,
        "2012 X-Road 5 layout: the message entry is '<hash>-message.xml', not message.xml",
    ),
    AsicCase(
        "asic-verifier-cli/invalid-digest.asice",
        "dev2024",
        FaultCode.INVALID_SIGNATURE_VALUE,
        "SigningTime altered: the #signed-properties digest no longer matches",
    ),
    AsicCase(
        "asic-verifier-cli/invalid-not-signed-hashchain.asice",
        "dev2024",
        None,
        "signature references /message.xml directly; the unsigned hash-chain files are ignored",
    ),
    AsicCase(
        "asic-verifier-cli/invalid-ts-hashchainresult.asice",
        "admin",
        FaultCode.MALFORMED_SIGNATURE,
        "ts-hashchainresult.xml is 'foobar': the time-stamp hash chain is malformed",
    ),
    AsicCase(
        "asic-verifier-cli/valid-batch-ts.asice",
        "dev2024",
        None,
        "batch time-stamp over ts-hashchainresult.xml",
    ),
    AsicCase(
        "asic-verifier-cli/valid-signed-hashchain.asice",
        "dev2024",
        None,
        "batch signature; /attachment1 is not in the container and stays unverified",
    ),
    AsicCase(
        "asic-verifier-cli/valid-signed-message.asice", "dev2024", None, "real 7.x request, single time-stamp"
    ),
    AsicCase(
        "asic-verifier-cli/wrong-message.asice",
        "dev2024",
        FaultCode.INVALID_SIGNATURE_VALUE,
        "message.xml altered: its digest no longer matches",
    ),
)


def _trust(case: AsicCase, dev2024: TrustMaterial, admin: TrustMaterial) -> TrustMaterial:
    return dev2024 if case.trust == "dev2024" else admin


@pytest.mark.parametrize("case", ASIC_CASES, ids=lambda c: c.container)
def test_interop_container_verdicts(
    case: AsicCase, dev2024_trust: TrustMaterial, admin_ca1_trust: TrustMaterial
) -> None:
    data = (ASIC / case.container).read_bytes()
    trust = _trust(case, dev2024_trust, admin_ca1_trust)
    if case.expected is None:
        result = verify_container(data, trust=trust, at=case.at)
        assert result.timestamp_time is not None
        assert result.verification_time == result.timestamp_time
    else:
        with pytest.raises(XRoadError) as info:
            verify_container(data, trust=trust, at=case.at)
        assert info.value.has_code(case.expected), case.why


def test_interop_details(dev2024_trust: TrustMaterial) -> None:
    hashchain = verify_container(
        (ASIC / "asic-verifier-cli/valid-signed-hashchain.asice").read_bytes(), trust=dev2024_trust
    )
    assert hashchain.batch_signature
    assert hashchain.unverified_parts == ("/attachment1",)
    batch_ts = verify_container(
        (ASIC / "asic-verifier-cli/valid-batch-ts.asice").read_bytes(), trust=dev2024_trust
    )
    assert batch_ts.timestamp_kind == "batch"
    assert batch_ts.signer == MemberId("DEV", "COM", "4321")
    response = verify_container(
        (ASIC / "asic-core/valid-signed-message-with-attachments.asice").read_bytes(), trust=dev2024_trust
    )
    # A response is signed by the service provider (DEV/COM/4321), not by the client (DEV/COM/4422).
    assert response.signer == MemberId("DEV", "COM", "4321")
    assert response.verified_parts == ("/message.xml", "/attachment1", "/attachment2")
    single = verify_container(
        (ASIC / "asic-verifier-cli/valid-signed-message.asice").read_bytes(), trust=dev2024_trust
    )
    assert single.timestamp_time == datetime(2024, 12, 5, 13, 16, 35, tzinfo=UTC)
    assert single.timestamp_kind == "single"


def test_signer_of_rest_messages() -> None:
    request = b"POST\r\n/r1/MN/GOV/1/SUB/svc\r\nX-Road-Client:MN/GOV/5012345/APP\r\nx-road-request-id:1"
    response = (
        b"200\r\nOK\r\ncontent-type:application/json\r\nx-road-service:MN/COM/77/SUB/svc\r\n"
        b"x-road-client:MN/GOV/1"
    )
    assert signer_of_message(request) == MemberId("MN", "GOV", "5012345")
    assert signer_of_message(response) == MemberId("MN", "COM", "77")


# ----------------------------------------------------------------------------------------------------------
# 2. CLI: same verdicts


@pytest.fixture(scope="module")
def admin_ca1_conf(admin_ca1_trust: TrustMaterial, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A configuration directory approving exactly :func:`admin_ca1_trust` (no real one approves AdminCA1
    alone): ``instance-identifier`` plus ``EE/shared-params.xml`` written by ``build_shared_params``."""
    shared = SharedParameters(
        instance=admin_ca1_trust.instance,
        ocsp_freshness_seconds=admin_ca1_trust.ocsp_freshness_seconds,
        approved_cas=tuple(
            ApprovedCAEntry(
                ca.name,
                CaInfo(ca.top_ca, tuple(OcspInfo(r.url, r.certificate) for r in ca.ocsp_responders)),
                ca.certificate_profile_info,
                authentication_only=ca.authentication_only,
            )
            for ca in admin_ca1_trust.approved_cas
        ),
        approved_tsas=tuple(
            ApprovedTSAEntry(t.name, t.url, t.certificate) for t in admin_ca1_trust.approved_tsas
        ),
    )
    conf = tmp_path_factory.mktemp("admin-ca1-conf")
    (conf / "instance-identifier").write_text(shared.instance)
    (conf / shared.instance).mkdir()
    # Version 2, as configuration was in the AdminCA1 era (V3+ would also need a configuration source).
    (conf / shared.instance / "shared-params.xml").write_bytes(build_shared_params(shared, version=2))
    assert load_trust_material(conf) == admin_ca1_trust
    return conf


CLI_SIGNER_PREFIX = {"dev2024": "MEMBER:DEV/COM/", "admin": "MEMBER:EE/"}


@pytest.mark.parametrize("case", ASIC_CASES, ids=lambda c: c.container)
def test_cli_reaches_the_same_verdicts(case: AsicCase, admin_ca1_conf: Path) -> None:
    conf = DEV2024_CONF if case.trust == "dev2024" else admin_ca1_conf
    at = ["--at", case.at.isoformat()] if case.at is not None else []
    runner = CliRunner()
    result = runner.invoke(app, ["verify", str(ASIC / case.container), "--conf", str(conf), *at, "--json"])
    out = json.loads(result.stdout)
    assert set(out) >= {"valid", "code", "reason", "signer", "signing_time", "timestamp_time"}
    if case.expected is None:
        assert result.exit_code == 0, result.stdout
        assert out["valid"] is True
        assert out["signer"].startswith(CLI_SIGNER_PREFIX[case.trust])
    else:
        assert result.exit_code == 1
        assert out["valid"] is False
        assert out["code"] == case.expected, case.why


def test_cli_human_summary() -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app,
        ["verify", str(ASIC / "asic-verifier-cli/valid-signed-message.asice"), "--conf", str(DEV2024_CONF)],
    )
    assert ok.exit_code == 0
    assert "MEMBER:DEV/COM/4321" in ok.stdout
    assert "2024-12-05T13:16:35" in ok.stdout
    bad = runner.invoke(
        app, ["verify", str(ASIC / "asic-verifier-cli/wrong-message.asice"), "--conf", str(DEV2024_CONF)]
    )
    assert bad.exit_code == 1
    assert "invalid_signature_value" in bad.stdout


# ----------------------------------------------------------------------------------------------------------
# 3. Our containers: layout, outside tools, our verifier


def _single_container(evidence: Evidence, attachments: tuple[bytes, ...] = ()) -> tuple[AsicContainer, bytes]:
    parts = [MessagePart("/message.xml", SOAP)] + [
        MessagePart(f"/attachment{i}", a) for i, a in enumerate(attachments, start=1)
    ]
    data = sign(parts, evidence.key)
    token = evidence.timestamp(timestamp_input(data.signature_xml))
    stamped = SignatureData(
        embed_timestamp(data.signature_xml, token), data.hash_chain_result, data.hash_chain
    )
    container = AsicContainer(SOAP, stamped, attachments)
    return container, token


def _batch_ts_containers(
    evidence: Evidence, attachments: tuple[bytes, ...] = ()
) -> list[tuple[AsicContainer, bytes]]:
    messages = [
        [MessagePart("/message.xml", SOAP)]
        + [MessagePart(f"/attachment{i}", a) for i, a in enumerate(attachments, start=1)],
        [MessagePart("/message.xml", SOAP.replace(b"6f2d0a1e", b"second"))],
        [MessagePart("/message.xml", SOAP.replace(b"6f2d0a1e", b"third"))],
    ]
    signatures = [sign(m, evidence.key) for m in messages]
    chains = build_timestamp_hash_chains([s.signature_xml for s in signatures])
    token = evidence.timestamp(chains.result_xml, serial=2)
    out = []
    for msg, sig, chain in zip(messages, signatures, chains.chains, strict=True):
        atts = tuple(p.data for p in msg[1:] if p.data is not None)
        body = msg[0].data
        assert body is not None
        out.append((AsicContainer(body, sig, atts, BatchTimestamp(token, chains.result_xml, chain)), token))
    return out


KINDS = [("single", ()), ("single", (b"\x00att-one", b"att two")), ("batch", ()), ("batch", (b"\x01binary",))]


def _make(evidence: Evidence, kind: str, attachments: tuple[bytes, ...]) -> tuple[AsicContainer, bytes]:
    if kind == "single":
        return _single_container(evidence, attachments)
    return _batch_ts_containers(evidence, attachments)[0]


def test_container_layout(evidence: Evidence) -> None:
    container, _ = _batch_ts_containers(evidence, (b"a",))[0]
    data = write_container(container)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert names[0] == "mimetype"
        assert zf.read("mimetype") == MIMETYPE.encode()
        assert zf.getinfo("mimetype").compress_type == zipfile.ZIP_DEFLATED
        assert names == [
            "mimetype",
            "message.xml",
            "META-INF/signatures.xml",
            "sig-hashchainresult.xml",
            "sig-hashchain.xml",
            "ts-hashchainresult.xml",
            "ts-hashchain.xml",
            "META-INF/manifest.xml",
            "META-INF/ASiCManifest.xml",
            "META-INF/timestamp.tst",
            "attachment1",
        ]
        manifest = zf.read("META-INF/manifest.xml")
        asic_manifest = zf.read("META-INF/ASiCManifest.xml")
    assert b'manifest:version="1.2"' in manifest
    assert b'manifest:full-path="attachment1"' in manifest
    assert f'xmlns:asic="{ASIC_MANIFEST_NS}"'.encode() in asic_manifest
    assert (
        b'<asic:SigReference URI="META-INF/timestamp.tst" MimeType="vnd.etsi.timestamp-token"/>'
        in asic_manifest
    )
    assert read_container(data) == container


def test_reading_is_order_tolerant(evidence: Evidence) -> None:
    container, _ = _single_container(evidence)
    data = write_container(container)
    shuffled = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(shuffled, "w") as dst:
        for info in reversed(src.infolist()):
            dst.writestr(info.filename, src.read(info))
    verify_container(shuffled.getvalue(), trust=evidence.trust)


@pytest.mark.parametrize(("kind", "attachments"), KINDS, ids=["single", "single+att", "batch", "batch+att"])
def test_our_containers_pass_outside_tools_and_our_verifier(
    evidence: Evidence,
    xmlsec1: str,
    openssl: str,
    tmp_path: Path,
    kind: str,
    attachments: tuple[bytes, ...],
) -> None:
    container, token = _make(evidence, kind, attachments)
    data = write_container(container)
    result = verify_container(data, trust=evidence.trust)
    assert result.signer == evidence.pki.member
    assert result.timestamp_kind == kind
    assert result.batch_signature == bool(attachments)
    assert result.unverified_parts == ()

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    sig = entries["META-INF/signatures.xml"]
    # xmlsec1: the signature over the entries it references.
    files = {"/message.xml": entries["message.xml"]}
    if container.signature.hash_chain_result is not None:
        files = {"/sig-hashchainresult.xml": entries["sig-hashchainresult.xml"]}
    check = xmlsec_verify(xmlsec1, tmp_path, sig, files, evidence, evidence.now)
    assert check.returncode == 0, check.stderr
    # openssl ts: the token over what X-Road stamps (SignatureValue bytes, or ts-hashchainresult.xml bytes).
    ts_data = timestamp_input(sig) if kind == "single" else entries["ts-hashchainresult.xml"]
    (tmp_path / "token.der").write_bytes(token)
    (tmp_path / "data.bin").write_bytes(ts_data)
    (tmp_path / "tsa.pem").write_bytes(pem(evidence.pki.tsa.certificate))
    ts = subprocess.run(
        [
            openssl, "ts", "-verify", "-token_in", "-in", str(tmp_path / "token.der"), "-data",
            str(tmp_path / "data.bin"), "-CAfile", str(tmp_path / "tsa.pem"),
            "-untrusted", str(tmp_path / "tsa.pem"),
            "-partial_chain",
        ],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert ts.returncode == 0, ts.stdout + ts.stderr


def test_container_without_timestamp_needs_a_time(evidence: Evidence) -> None:
    data = sign([MessagePart("/message.xml", SOAP)], evidence.key)
    raw = write_container(AsicContainer(SOAP, data))
    with pytest.raises(XRoadError) as info:
        verify_container(raw, trust=evidence.trust)
    assert info.value.has_code(FaultCode.ASIC_TIMESTAMP_NOT_FOUND)
    assert verify_container(raw, trust=evidence.trust, at=evidence.now).timestamp_time is None


def test_cli_on_our_container(evidence: Evidence, tmp_path: Path) -> None:
    container, _ = _single_container(evidence)
    path = tmp_path / "ours.asice"
    path.write_bytes(write_container(container))
    # The DEV-2024 configuration does not approve our dev CA or TSA.
    result = CliRunner().invoke(app, ["verify", str(path), "--conf", str(DEV2024_CONF), "--json"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["valid"] is False
    assert out["code"] == FaultCode.TIMESTAMP_VALIDATION


# ----------------------------------------------------------------------------------------------------------
# 4. Tampering: every part of the evidence is covered


def _rewrite(data: bytes, name: str, change: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, change if info.filename == name else src.read(info))
    return out.getvalue()


def _flip_at(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 0x01]) + blob[index + 1 :]


def _swap_base64_char(blob: bytes, index: int) -> bytes:
    """Change one base64 character into another valid one, so the value still decodes but differs."""
    replacement = b"B" if blob[index : index + 1] == b"A" else b"A"
    return blob[:index] + replacement + blob[index + 1 :]


def _expect(data: bytes, trust: TrustMaterial, codes: tuple[str, ...]) -> None:
    with pytest.raises(XRoadError) as info:
        verify_container(data, trust=trust)
    assert any(info.value.has_code(c) for c in codes), info.value


@pytest.mark.parametrize(("kind", "attachments"), KINDS, ids=["single", "single+att", "batch", "batch+att"])
def test_tampering_is_detected(evidence: Evidence, kind: str, attachments: tuple[bytes, ...]) -> None:
    container, _ = _make(evidence, kind, attachments)
    data = write_container(container)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    trust = evidence.trust
    batch_sig = container.signature.hash_chain_result is not None

    # message.xml: every sampled byte.
    message = entries["message.xml"]
    codes = (FaultCode.INVALID_HASH_CHAIN_REF,) if batch_sig else (FaultCode.INVALID_SIGNATURE_VALUE,)
    for i in range(0, len(message), max(1, len(message) // 10)):
        _expect(_rewrite(data, "message.xml", _flip_at(message, i)), trust, codes)
    # Attachments.
    for i in range(1, len(attachments) + 1):
        name = f"attachment{i}"
        _expect(_rewrite(data, name, _flip_at(entries[name], 0)), trust, codes)
    # The signature value (single time-stamp: the token no longer covers it; batch: the ts hash chain breaks).
    sig = entries["META-INF/signatures.xml"]
    value_at = sig.index(b'Id="signature-value">') + len(b'Id="signature-value">') + 5
    _expect(
        _rewrite(data, "META-INF/signatures.xml", _swap_base64_char(sig, value_at)),
        trust,
        (FaultCode.TIMESTAMP_VALIDATION, FaultCode.INVALID_HASH_CHAIN_REF, FaultCode.INVALID_SIGNATURE_VALUE),
    )
    # The signing time inside the signed properties.
    time_at = sig.index(b"<xades:SigningTime>") + len(b"<xades:SigningTime>") + 3
    _expect(
        _rewrite(data, "META-INF/signatures.xml", _flip_at(sig, time_at)),
        trust,
        (FaultCode.INVALID_SIGNATURE_VALUE, FaultCode.INVALID_HASH_CHAIN_REF),
    )
    # Signature hash chains.
    if batch_sig:
        for name, code in (
            ("sig-hashchain.xml", FaultCode.INVALID_HASH_CHAIN_REF),
            ("sig-hashchainresult.xml", FaultCode.INVALID_SIGNATURE_VALUE),
        ):
            blob = entries[name]
            at = blob.index(b"<DigestValue>") + len(b"<DigestValue>") + 2
            _expect(_rewrite(data, name, _flip_at(blob, at)), trust, (code,))
    # The time-stamp token: a byte of its signature (the end of the DER).
    if kind == "single":
        token_start = sig.index(b"<xades:EncapsulatedTimeStamp>") + len(b"<xades:EncapsulatedTimeStamp>")
        token_end = sig.index(b"</xades:EncapsulatedTimeStamp>")
        _expect(
            _rewrite(data, "META-INF/signatures.xml", _flip_at(sig, (token_start + token_end) // 2)),
            trust,
            (FaultCode.TIMESTAMP_VALIDATION, FaultCode.MALFORMED_SIGNATURE),
        )
    else:
        token = entries["META-INF/timestamp.tst"]
        _expect(
            _rewrite(data, "META-INF/timestamp.tst", _flip_at(token, len(token) - 10)),
            trust,
            (FaultCode.TIMESTAMP_VALIDATION,),
        )
        for name in ("ts-hashchain.xml", "ts-hashchainresult.xml"):
            blob = entries[name]
            at = blob.index(b"<DigestValue>") + len(b"<DigestValue>") + 2
            _expect(
                _rewrite(data, name, _flip_at(blob, at)),
                trust,
                (
                    FaultCode.INVALID_HASH_CHAIN_REF,
                    FaultCode.INVALID_HASH_CHAIN_RESULT,
                    FaultCode.MALFORMED_SIGNATURE,
                ),
            )


def test_signer_checked_at_timestamp_time(evidence: Evidence) -> None:
    """OCSP freshness is judged at the time-stamp's genTime, not at the moment of verification."""
    container, _ = _single_container(evidence)
    data = write_container(container)
    later = evidence.now + timedelta(days=30)
    result = verify_container(data, trust=evidence.trust, at=later)
    assert result.verification_time == result.timestamp_time
    assert result.timestamp_time is not None
    assert abs(result.timestamp_time - evidence.now) < timedelta(minutes=1)


def test_batch_signature_containers(evidence: Evidence) -> None:
    messages = [[MessagePart("/message.xml", SOAP.replace(b"6f2d0a1e", str(i).encode()))] for i in range(4)]
    signed = sign_batch(messages, evidence.key)
    for parts, data in zip(messages, signed, strict=True):
        token = evidence.timestamp(timestamp_input(data.signature_xml))
        stamped = SignatureData(
            embed_timestamp(data.signature_xml, token), data.hash_chain_result, data.hash_chain
        )
        body = parts[0].data
        assert body is not None
        result = verify_container(write_container(AsicContainer(body, stamped)), trust=evidence.trust)
        assert result.batch_signature


# --------------------------------------------------------------------------------------------------
# Review findings 2a and 2c: corrupt and hostile archives


REAL_CONTAINER = ASIC / "asic-verifier-cli" / "valid-signed-message.asice"


def _corrupt_deflate(data: bytes, entry_index: int) -> bytes:
    """``data`` with the first half of one entry's compressed bytes scrambled (headers kept)."""
    info = zipfile.ZipFile(io.BytesIO(data)).infolist()[entry_index]
    assert info.compress_type == zipfile.ZIP_DEFLATED
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    out = bytearray(data)
    for i in range(start, start + info.compress_size // 2):
        out[i] ^= 0x55
    return bytes(out)


def test_corrupt_deflate_stream_is_an_xroad_error(evidence: Evidence) -> None:
    data = _corrupt_deflate(REAL_CONTAINER.read_bytes(), 1)  # META-INF/manifest.xml
    with pytest.raises(XRoadError) as e:
        read_container(data)
    assert e.value.has_code(FaultCode.ASIC_INVALID_MIME_TYPE)
    with pytest.raises(XRoadError):
        verify_container(data, trust=evidence.trust, at=evidence.now)


def test_unknown_zip_version_is_an_xroad_error() -> None:
    data = bytearray(REAL_CONTAINER.read_bytes())
    # "version needed to extract" of the first central directory header: 7.1 is beyond what zipfile
    # implements, and ZipFile() itself raises NotImplementedError.
    central = data.index(b"PK\x01\x02")
    data[central + 6] = 71
    with pytest.raises(XRoadError) as e:
        read_container(bytes(data))
    assert e.value.has_code(FaultCode.ASIC_MIME_TYPE_NOT_FOUND)


def test_entry_with_an_empty_name_is_an_xroad_error(evidence: Evidence) -> None:
    # Found by test_mutated_real_containers_raise_only_xroad_errors: ZipInfo.is_dir() indexes the name.
    container, _ = _single_container(evidence)
    buf = io.BytesIO(write_container(container))
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr(zipfile.ZipInfo(""), b"stray")
    # An entry the verifier does not read is skipped, whatever its name.
    result = verify_container(buf.getvalue(), trust=evidence.trust)
    assert result.signer == evidence.pki.member
    unnamed = io.BytesIO()
    with zipfile.ZipFile(unnamed, "w") as zf:
        zf.writestr(zipfile.ZipInfo(""), b"stray")
    with pytest.raises(XRoadError) as e:
        read_container(unnamed.getvalue())
    assert e.value.has_code(FaultCode.ASIC_MIME_TYPE_NOT_FOUND)


_BOMB_ENTRY_BYTES = 100 * 1024 * 1024
_MiB = 1024 * 1024


def _bomb(names: Sequence[str]) -> bytes:
    """A container whose ``names`` each inflate to 100 MiB of zeros (about 100 KiB compressed each)."""
    out = io.BytesIO()
    chunk = bytes(_MiB)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("mimetype", MIMETYPE)
        z.writestr("message.xml", SOAP)
        for name in names:
            with z.open(name, "w") as f:
                for _ in range(_BOMB_ENTRY_BYTES // _MiB):
                    f.write(chunk)
    return out.getvalue()


@pytest.mark.parametrize(
    ("names", "code"),
    [
        # Entries nobody reads are never decompressed: the verdict is about what is missing.
        ([f"junk{i}" for i in range(3)], FaultCode.ASIC_SIGNATURE_NOT_FOUND),
        # Entries that are read must fit MAX_TOTAL_UNCOMPRESSED_BYTES together, checked before inflating.
        ([f"attachment{i}" for i in range(1, 4)], FaultCode.ASIC_INVALID_MIME_TYPE),
    ],
)
def test_zip_bomb_is_refused_without_inflating(evidence: Evidence, names: list[str], code: str) -> None:
    data = _bomb(names)
    assert len(data) < 2 * _MiB
    assert len(names) * _BOMB_ENTRY_BYTES > MAX_TOTAL_UNCOMPRESSED_BYTES
    for call in (
        lambda: read_container(data),
        lambda: verify_container(data, trust=evidence.trust, at=evidence.now),
    ):
        tracemalloc.start()
        try:
            with pytest.raises(XRoadError) as e:
                call()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert e.value.has_code(code), e.value
        assert peak < 8 * _MiB, peak


def _mutated_containers() -> list[bytes]:
    return [p.read_bytes() for p in sorted(ASIC.rglob("*.asice"))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(min_value=0),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=6),
    rezip=st.booleans(),
)
def test_mutated_real_containers_raise_only_xroad_errors(
    evidence: Evidence, which: int, edits: list[tuple[int, int]], rezip: bool
) -> None:
    seeds = _mutated_containers()
    data = bytearray(seeds[which % len(seeds)])
    contents: dict[str, bytearray] = {}
    if rezip:  # keep the archive well-formed, mutate one entry's content instead
        with contextlib.suppress(zipfile.BadZipFile), zipfile.ZipFile(io.BytesIO(bytes(data))) as zin:
            contents = {n: bytearray(zin.read(n)) for n in zin.namelist()}
    if contents:
        target = sorted(contents)[which % len(contents)]
        for offset, value in edits:
            if contents[target]:
                contents[target][offset % len(contents[target])] = value
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
            for name, content in contents.items():
                zout.writestr(name, bytes(content))
        mutated = out.getvalue()
    else:
        for offset, value in edits:
            data[offset % len(data)] = value
        mutated = bytes(data)
    with contextlib.suppress(XRoadError):
        read_container(mutated)
    with contextlib.suppress(XRoadError):
        verify_container(mutated, trust=evidence.trust, at=evidence.now)
