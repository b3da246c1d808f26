"""``xroad-mn globalconf``: verdicts on real directories and anchors through the root command."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from xroad_mn.cli import build_app
from xroad_mn.globalconf.anchor import build_anchor

ANCHOR = "anchors/system-test-configuration_anchor_CS_internal.xml"
PUBLIC = "globalconf/signed/system-test-public"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["globalconf", *args])
    return result.exit_code, result.output


def test_verify_real_v6_with_files(interop_dir: Path) -> None:
    code, out = _run(
        "verify",
        str(interop_dir / PUBLIC / "V6/internalconf"),
        "--anchor",
        str(interop_dir / ANCHOR),
        "--files-root",
        str(interop_dir / PUBLIC),
        "--at",
        "2025-01-01T00:00:00Z",
    )
    assert code == 0, out
    assert "valid: version 6" in out


def test_verify_json(interop_dir: Path) -> None:
    code, out = _run(
        "verify", str(interop_dir / PUBLIC / "V6/internalconf"), "--anchor", str(interop_dir / ANCHOR),
        "--at", "2025-01-01T00:00:00Z", "--json",
    )  # fmt: skip
    assert code == 0
    result = json.loads(out)
    assert result["valid"] is True
    assert [p["content_identifier"] for p in result["parts"]] == ["SHARED-PARAMETERS", "PRIVATE-PARAMETERS"]


def test_verify_expired(interop_dir: Path) -> None:
    code, out = _run(
        "verify", str(interop_dir / PUBLIC / "V6/internalconf"), "--anchor", str(interop_dir / ANCHOR),
        "--at", "2036-01-01T00:00:00Z", "--json",
    )  # fmt: skip
    assert code == 1
    assert json.loads(out)["code"] == "global_conf_outdated"


def test_verify_content_mismatch(interop_dir: Path, tmp_path: Path) -> None:
    src = interop_dir / PUBLIC / "V6/20251110170000548026000"
    dst = tmp_path / "V6/20251110170000548026000"
    dst.mkdir(parents=True)
    (dst / "shared-params.xml").write_bytes((src / "shared-params.xml").read_bytes() + b"\n")
    (dst / "private-params.xml").write_bytes((src / "private-params.xml").read_bytes())
    code, out = _run(
        "verify", str(interop_dir / PUBLIC / "V6/internalconf"), "--anchor", str(interop_dir / ANCHOR),
        "--files-root", str(tmp_path), "--at", "2025-01-01T00:00:00Z",
    )  # fmt: skip
    assert code == 1
    assert "global_conf_invalid" in out
    assert "shared-params.xml" in out


def test_verify_rotated_key_needs_shared_params(interop_dir: Path) -> None:
    directory = str(interop_dir / PUBLIC / "V5/internalconf")
    shared = next((interop_dir / PUBLIC / "V5").glob("*/shared-params.xml"))
    code, out = _run(
        "verify", directory, "--anchor", str(interop_dir / ANCHOR), "--at", "2025-06-01T00:00:00Z"
    )
    assert code == 1
    assert "global_conf_invalid" in out
    code, out = _run(
        "verify", directory, "--anchor", str(interop_dir / ANCHOR), "--at", "2025-06-01T00:00:00Z",
        "--shared-params", str(shared), "--files-root", str(interop_dir / PUBLIC),
    )  # fmt: skip
    assert code == 0, out


@pytest.mark.parametrize(
    ("name", "fault"),
    [
        ("test-conf-invalid-signature.txt", "invalid_signature_value"),
        ("test-conf-malformed.txt", "malformed_global_conf"),
        ("test-conf-missing-date.txt", "malformed_global_conf"),
    ],
)
def test_verify_confclient_negatives(interop_dir: Path, tmp_path: Path, name: str, fault: str) -> None:
    # The test directories are signed by consumer.pem: trust it through an anchor of our own.
    consumer = x509.load_pem_x509_certificate((interop_dir / "certs/common-test/consumer.pem").read_bytes())
    anchor = tmp_path / "anchor.xml"
    anchor.write_bytes(build_anchor("EE", [("http://cs/conf", [consumer])], datetime(2015, 1, 1, tzinfo=UTC)))
    directory = str(interop_dir / "globalconf/signed/confclient" / name)
    code, out = _run("verify", directory, "--anchor", str(anchor), "--json", "--at", "2015-01-01T00:00:00Z")
    assert code == 1
    assert json.loads(out)["code"] == fault
    simple = str(interop_dir / "globalconf/signed/confclient/test-conf-simple.txt")
    code, out = _run("verify", simple, "--anchor", str(anchor), "--at", "2026-01-01T00:00:00Z")
    assert code == 0, out


def test_verify_with_malformed_anchor(interop_dir: Path) -> None:
    code, out = _run(
        "verify", str(interop_dir / PUBLIC / "V6/internalconf"),
        "--anchor", str(interop_dir / "anchors/cs-int-trusted-anchor-invalid-2.xml"),
    )  # fmt: skip
    assert code == 1
    assert "malformed_anchor" in out


def test_anchor_hash(interop_dir: Path) -> None:
    code, out = _run("anchor-hash", str(interop_dir / "anchors/cs-int-trusted-anchor.xml"))
    assert code == 0
    assert (
        out.strip() == "40:2A:4F:94:05:D2:9B:ED:C9:EE:A2:6D:EC:EC:11:94:5D:C9:A8:3E:29:1F:B2:92:A6:E4:DF:1D"
    )
    code, out = _run(
        "anchor-hash", "--no-colons", str(interop_dir / "anchors/ss-admin-internal-configuration-anchor.xml")
    )
    assert out.strip() == "B37E02C0B310497C05D938A8C4446DFA80722F97123852BA8BF20D57"
    code, out = _run("anchor-hash", str(interop_dir / "anchors/cs-int-trusted-anchor-invalid-1.xml"))
    assert code == 1
    assert "malformed_anchor" in out
    code, out = _run("anchor-hash", str(interop_dir / "anchors/does-not-exist.xml"))
    assert code == 1
    assert "io_error" in out
