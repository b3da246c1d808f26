"""Configuration anchors: every anchor fixture of the interop corpus gets INDEX.md's verdict."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.globalconf_fixtures import INDEX_COLON_HASHES, INDEX_HEX_HASHES, INVALID_ANCHORS, VALID_ANCHORS
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.anchor import (
    ConfigurationAnchor,
    anchor_hash,
    anchor_hash_hex,
    build_anchor,
    parse_anchor,
)


@pytest.fixture(scope="module")
def anchors(interop_dir: Path) -> Path:
    return interop_dir / "anchors"


@pytest.mark.parametrize("name", VALID_ANCHORS)
def test_valid_anchor_parses(anchors: Path, name: str) -> None:
    anchor = parse_anchor((anchors / name).read_bytes())
    assert anchor.instance
    assert anchor.sources
    assert all(s.download_url and s.verification_certs for s in anchor.sources)


@pytest.mark.parametrize("name", sorted(INVALID_ANCHORS))
def test_invalid_anchor_is_malformed_anchor(anchors: Path, name: str) -> None:
    with pytest.raises(XRoadError) as exc:
        parse_anchor((anchors / name).read_bytes())
    assert exc.value.has_code(INVALID_ANCHORS[name])


def test_every_anchor_has_a_verdict(anchors: Path) -> None:
    assert {p.name for p in anchors.iterdir()} == set(VALID_ANCHORS) | set(INVALID_ANCHORS)
    assert set(INDEX_COLON_HASHES) | set(INDEX_HEX_HASHES) <= set(VALID_ANCHORS)


@pytest.mark.parametrize("name", VALID_ANCHORS)
def test_anchor_hashes_match_index(anchors: Path, name: str) -> None:
    data = (anchors / name).read_bytes()
    digest = hashlib.sha224(data).hexdigest().upper()
    assert anchor_hash_hex(data) == digest
    assert anchor_hash(data) == ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    assert parse_anchor(data).file_hash == anchor_hash(data)
    if name in INDEX_COLON_HASHES:
        assert anchor_hash(data) == INDEX_COLON_HASHES[name]
    if name in INDEX_HEX_HASHES:
        prefix, suffix = INDEX_HEX_HASHES[name]
        assert anchor_hash_hex(data).startswith(prefix)
        assert anchor_hash_hex(data).endswith(suffix)


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
    Path(__file__).resolve().parent / "data/xroad/anchors/globalconf-core-configuration-anchor1.xml"
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=64), st.binary(max_size=16))
def test_fuzz_mutated_anchor_only_raises_xroad_error(pos: int, cut: int, insert: bytes) -> None:
    data = _REAL_ANCHOR.read_bytes()
    i = pos % (len(data) + 1)
    mutated = data[:i] + insert + data[i + cut :]
    with contextlib.suppress(XRoadError):
        parse_anchor(mutated)
