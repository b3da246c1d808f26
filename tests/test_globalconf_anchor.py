"""Configuration anchors: every anchor fixture of the interop corpus gets INDEX.md's verdict."""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.anchor import (
    ConfigurationAnchor,
    anchor_hash,
    anchor_hash_hex,
    build_anchor,
    parse_anchor,
)

VALID_ANCHORS = [
    "asic-verifier-configuration-anchor1.xml",
    "confclient-configuration-anchor1.xml",
    "confproxy-PROXY1-anchor.xml",
    "cs-core-trusted-anchor.xml",
    "cs-int-external-configuration-anchor.xml",
    "cs-int-internal-configuration-anchor.xml",
    "cs-int-trusted-anchor-2.xml",
    "cs-int-trusted-anchor.xml",
    "cs-ui-trusted-anchor-CS2-E2E.xml",
    "globalconf-core-configuration-anchor1.xml",
    "globalconf-core-configuration-anchor2.xml",
    "ss-admin-internal-configuration-anchor.xml",
    "system-test-configuration_anchor_CS_internal.xml",
]
INVALID_ANCHORS = ["cs-int-trusted-anchor-invalid-1.xml", "cs-int-trusted-anchor-invalid-2.xml"]


@pytest.fixture(scope="module")
def anchors(interop_dir: Path) -> Path:
    return interop_dir / "anchors"


@pytest.mark.parametrize("name", VALID_ANCHORS)
def test_valid_anchor_parses(anchors: Path, name: str) -> None:
    anchor = parse_anchor((anchors / name).read_bytes())
    assert anchor.instance
    assert anchor.sources
    assert all(s.download_url and s.verification_certs for s in anchor.sources)


@pytest.mark.parametrize("name", INVALID_ANCHORS)
def test_invalid_anchor_is_malformed_anchor(anchors: Path, name: str) -> None:
    with pytest.raises(XRoadError) as exc:
        parse_anchor((anchors / name).read_bytes())
    assert exc.value.has_code(FaultCode.MALFORMED_ANCHOR)


def test_anchor_hashes_match_index(anchors: Path) -> None:
    trusted = (anchors / "cs-int-trusted-anchor.xml").read_bytes()
    assert anchor_hash(trusted) == (
        "40:2A:4F:94:05:D2:9B:ED:C9:EE:A2:6D:EC:EC:11:94:5D:C9:A8:3E:29:1F:B2:92:A6:E4:DF:1D"
    )
    assert anchor_hash((anchors / "cs-core-trusted-anchor.xml").read_bytes()) == anchor_hash(trusted)
    assert parse_anchor((anchors / "cs-int-trusted-anchor-2.xml").read_bytes()).file_hash == (
        "95:6C:C8:A5:9B:B5:51:5A:FB:9F:9C:84:38:C0:62:6B:93:48:AE:D7:54:44:16:0C:83:28:59:54"
    )
    ss_admin = (anchors / "ss-admin-internal-configuration-anchor.xml").read_bytes()
    assert anchor_hash_hex(ss_admin) == "B37E02C0B310497C05D938A8C4446DFA80722F97123852BA8BF20D57"
    system = (anchors / "system-test-configuration_anchor_CS_internal.xml").read_bytes()
    assert anchor_hash_hex(system).startswith("5470AFFE")
    assert anchor_hash_hex(system).endswith("7CC7")


def test_legacy_anchor_details(anchors: Path) -> None:
    anchor1 = parse_anchor((anchors / "globalconf-core-configuration-anchor1.xml").read_bytes())
    anchor2 = parse_anchor((anchors / "globalconf-core-configuration-anchor2.xml").read_bytes())
    assert anchor1.instance == "EE"
    assert anchor1.generated_at is None
    assert len(anchor1.sources) == 3
    assert anchor1.sources[0].download_url == "http://www.bar.com/conf"
    assert len(anchor1.verification_certs) == 4
    for h in ("t7+jfR1wnsN1EBtBpCt/q8JIasg=", "4HCV0OGOaz4mJauIZvrt7A3RdfM="):
        assert anchor1.find_certificate(base64.b64decode(h), "sha1") is not None
    assert anchor1.find_certificate(b"\x00" * 20, "sha1") is None
    again = parse_anchor((anchors / "globalconf-core-configuration-anchor1.xml").read_bytes())
    assert anchor1 == anchor1
    assert anchor1 == again
    assert anchor1 != anchor2


def test_system_test_anchor_details(interop_dir: Path, anchors: Path) -> None:
    anchor = parse_anchor((anchors / "system-test-configuration_anchor_CS_internal.xml").read_bytes())
    assert anchor.instance == "DEV"
    assert [s.download_url for s in anchor.sources] == ["http://cs/internalconf", "https://cs/internalconf"]
    assert anchor.generated_at == datetime(2025, 11, 5, 22, 10, 45, 770000, tzinfo=UTC)
    internal = x509.load_pem_x509_certificate(
        (interop_dir / "certs/system-test-sign-keys/internal.crt").read_bytes()
    )
    assert anchor.verification_certs == (internal,)


def test_build_anchor_round_trips(interop_dir: Path) -> None:
    cert = x509.load_pem_x509_certificate(
        (interop_dir / "certs/system-test-sign-keys/internal.crt").read_bytes()
    )
    when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    data = build_anchor(
        "MN", [("http://cs1/internalconf", [cert]), ("http://cs2/internalconf", [cert])], when
    )
    anchor = parse_anchor(data)
    assert anchor == ConfigurationAnchor(anchor.instance, anchor.sources)
    assert anchor.instance == "MN"
    assert anchor.generated_at == when
    assert [s.download_url for s in anchor.sources] == ["http://cs1/internalconf", "http://cs2/internalconf"]
    assert anchor.verification_certs == (cert,)
    assert anchor.file_hash == anchor_hash(data)
    assert b"<generatedAt>2026-01-02T03:04:05.678Z</generatedAt>" in data


def test_build_anchor_refuses_sources_without_certs() -> None:
    with pytest.raises(XRoadError):
        build_anchor("MN", [("http://cs/internalconf", [])], datetime.now(UTC))
    with pytest.raises(XRoadError):
        build_anchor("MN", [], datetime.now(UTC))


def test_xxe_payload_is_refused(interop_dir: Path) -> None:
    payload = (interop_dir / "globalconf/xml-security/test-part-with-xxe.xml").read_bytes()
    with pytest.raises(XRoadError) as exc:
        parse_anchor(payload)
    assert exc.value.has_code(FaultCode.MALFORMED_ANCHOR)
    assert "root:" not in exc.value.message


def test_anchor_with_internal_entity_is_refused(anchors: Path) -> None:
    data = (anchors / "system-test-configuration_anchor_CS_internal.xml").read_bytes()
    evil = data.replace(
        b"<ns3:configurationAnchor",
        b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<ns3:configurationAnchor',
        1,
    ).replace(b"<instanceIdentifier>DEV", b"<instanceIdentifier>&x;DEV", 1)
    with pytest.raises(XRoadError) as exc:
        parse_anchor(evil)
    assert exc.value.has_code(FaultCode.MALFORMED_ANCHOR)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes_only_raise_xroad_error(data: bytes) -> None:
    with contextlib.suppress(XRoadError):
        parse_anchor(data)


_REAL_ANCHOR = (
    Path(__file__).resolve().parents[1].parent
    / "shared/interop/anchors/globalconf-core-configuration-anchor1.xml"
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=64), st.binary(max_size=16))
def test_fuzz_mutated_anchor_only_raises_xroad_error(pos: int, cut: int, insert: bytes) -> None:
    if not _REAL_ANCHOR.is_file():
        pytest.skip("interop corpus not found")
    data = _REAL_ANCHOR.read_bytes()
    i = pos % (len(data) + 1)
    mutated = data[:i] + insert + data[i + cut :]
    with contextlib.suppress(XRoadError):
        parse_anchor(mutated)
