"""``xroad-mn globalconf``: every anchor, signed directory and installed directory of the interop corpus gets
INDEX.md's verdict through the root command, from the same tables the module tests use
(:mod:`tests.globalconf_fixtures`)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.globalconf_fixtures import (
    BAD_DIRS,
    CONF1_PLACEHOLDERS,
    DIRS_AT,
    GOOD_DIRS,
    INDEX_COLON_HASHES,
    INDEX_HEX_HASHES,
    INVALID_ANCHORS,
    PUBLIC,
    SIGNED_CASES,
    SYSTEM_TEST_ANCHOR,
    VALID_ANCHORS,
    XXE_PART,
    SignedCase,
    anchor_for,
)
from xroad_mn.cli.main import build_app
from xroad_mn.errors import FaultCode


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["globalconf", *args])
    return result.exit_code, result.output


def _anchor(interop_dir: Path) -> str:
    return str(interop_dir / SYSTEM_TEST_ANCHOR)


def _json(*args: str) -> tuple[int, dict[str, Any]]:
    code, out = _run(*args, "--json")
    doc = json.loads(out)
    assert isinstance(doc, dict), out
    return code, doc


# -- anchors/: anchor-hash -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALID_ANCHORS)
def test_anchor_hash_of_every_valid_anchor(interop_dir: Path, name: str) -> None:
    path = str(interop_dir / "anchors" / name)
    digest = hashlib.sha224((interop_dir / "anchors" / name).read_bytes()).hexdigest().upper()
    code, out = _run("anchor-hash", path)
    assert code == 0, out
    assert out.strip() == ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    if name in INDEX_COLON_HASHES:
        assert out.strip() == INDEX_COLON_HASHES[name]
    code, out = _run("anchor-hash", "--no-colons", path)
    assert code == 0, out
    assert out.strip() == digest
    if name in INDEX_HEX_HASHES:
        prefix, suffix = INDEX_HEX_HASHES[name]
        assert out.strip().startswith(prefix)
        assert out.strip().endswith(suffix)


@pytest.mark.parametrize("name", sorted(INVALID_ANCHORS))
def test_anchor_hash_refuses_invalid_anchors(interop_dir: Path, name: str) -> None:
    code, out = _run("anchor-hash", str(interop_dir / "anchors" / name))
    assert code == 1
    assert INVALID_ANCHORS[name] in out
    assert re.search(r"([0-9A-F]{2}:){27}[0-9A-F]{2}", out) is None  # no hash printed


def test_anchor_hash_missing_file(interop_dir: Path) -> None:
    code, out = _run("anchor-hash", str(interop_dir / "anchors/does-not-exist.xml"))
    assert code == 1
    assert "io_error" in out


# -- globalconf/signed/: verify ------------------------------------------------------------------------------


def _verify_args(interop_dir: Path, tmp_path: Path, case: SignedCase) -> list[str]:
    anchor = tmp_path / "anchor.xml"
    anchor.write_bytes(anchor_for(interop_dir, case))
    args = ["verify", str(interop_dir / case.path), "--anchor", str(anchor), "--at", case.at.isoformat()]
    if case.shared_params is not None:
        args += ["--shared-params", str(interop_dir / case.shared_params)]
    if case.external:
        args.append("--external")
    if case.files_root is not None:
        args += ["--files-root", str(interop_dir / case.files_root)]
    return args


@pytest.mark.parametrize("case", SIGNED_CASES, ids=lambda c: c.id)
def test_verify_every_signed_directory(interop_dir: Path, tmp_path: Path, case: SignedCase) -> None:
    args = _verify_args(interop_dir, tmp_path, case)
    code, doc = _json(*args)
    if case.code is None:
        assert (code, doc["valid"]) == (0, True), doc
        assert all(p["checked"] == (case.files_root is not None) for p in doc["parts"])
        code, out = _run(*args)
        assert code == 0, out
        assert out.startswith(f"valid: version {doc['version']}, ")
    else:
        assert (code, doc["valid"], doc["code"]) == (1, False, case.code), doc
        assert {k: doc["details"].get(k) for k in case.details} == case.details
        code, out = _run(*args)
        assert code == 1
        assert case.code in out


def test_verify_json_lists_parts(interop_dir: Path) -> None:
    code, doc = _json(
        "verify", str(interop_dir / PUBLIC / "V6/internalconf"), "--anchor", _anchor(interop_dir),
        "--at", "2025-01-01T00:00:00Z",
    )  # fmt: skip
    assert code == 0
    assert doc["version"] == 6
    assert doc["expire_date"] == "2035-11-11T03:07:40+00:00"
    assert [p["content_identifier"] for p in doc["parts"]] == ["SHARED-PARAMETERS", "PRIVATE-PARAMETERS"]


def test_verify_content_mismatch(interop_dir: Path, tmp_path: Path) -> None:
    src = interop_dir / PUBLIC / "V6/20251110170000548026000"
    dst = tmp_path / "V6/20251110170000548026000"
    dst.mkdir(parents=True)
    (dst / "shared-params.xml").write_bytes((src / "shared-params.xml").read_bytes() + b"\n")
    (dst / "private-params.xml").write_bytes((src / "private-params.xml").read_bytes())
    code, out = _run(
        "verify", str(interop_dir / PUBLIC / "V6/internalconf"), "--anchor", _anchor(interop_dir),
        "--files-root", str(tmp_path), "--at", "2025-01-01T00:00:00Z",
    )  # fmt: skip
    assert code == 1
    assert "global_conf_invalid" in out
    assert "shared-params.xml" in out


def test_verify_with_malformed_anchor(interop_dir: Path) -> None:
    code, out = _run(
        "verify", str(interop_dir / PUBLIC / "V6/internalconf"),
        "--anchor", str(interop_dir / "anchors/cs-int-trusted-anchor-invalid-2.xml"),
    )  # fmt: skip
    assert code == 1
    assert "malformed_anchor" in out


# -- globalconf/dirs/: check-dir -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GOOD_DIRS))
def test_check_dir_every_good_directory(interop_dir: Path, name: str) -> None:
    own, counts, freshness, interval = GOOD_DIRS[name]
    path = str(interop_dir / "globalconf/dirs" / name)
    code, doc = _json("check-dir", path, "--at", DIRS_AT.isoformat())
    assert code == 0, doc
    assert doc["valid"] is True
    assert doc["instance"] == own
    assert doc["instances"] == [own, *sorted(set(counts) - {own})]
    assert doc["approved_cas"] == sum(c for c, _ in counts.values())
    assert doc["approved_tsas"] == sum(t for _, t in counts.values())
    assert (doc["ocsp_freshness_seconds"], doc["time_stamping_interval_seconds"]) == (freshness, interval)
    assert doc["skipped"] == []
    code, out = _run("check-dir", path, "--at", DIRS_AT.isoformat())
    assert code == 0, out
    assert out.startswith(f"valid: instance {own}, instances {', '.join(doc['instances'])}; ")
    assert f"{doc['approved_cas']} approved CAs, {doc['approved_tsas']} approved TSAs" in out


@pytest.mark.parametrize("name", sorted(BAD_DIRS))
def test_check_dir_every_bad_directory(interop_dir: Path, name: str) -> None:
    fault, reason, _ = BAD_DIRS[name]
    path = str(interop_dir / "globalconf/dirs" / name)
    code, doc = _json("check-dir", path, "--at", DIRS_AT.isoformat())
    assert (code, doc["valid"], doc["code"], doc["details"]["reason"]) == (1, False, fault, reason)
    code, out = _run("check-dir", path)
    assert code == 1
    assert fault in out


def test_check_dir_names_the_skipped_malformed_part(interop_dir: Path) -> None:
    _, doc = _json("check-dir", str(interop_dir / "globalconf/dirs/globalconf_malformed"))
    assert doc["details"]["skipped"].startswith("foo: ")


def test_check_dir_expiry_from_metadata(interop_dir: Path) -> None:
    path = str(interop_dir / "globalconf/dirs/signer-int-test")
    code, doc = _json("check-dir", path, "--at", "2035-11-07T04:52:25Z")
    assert code == 0
    assert doc["expires"] == "2035-11-07T04:52:26Z"
    code, doc = _json("check-dir", path, "--at", "2035-11-07T04:52:26Z")
    assert (code, doc["code"], doc["details"]["reason"]) == (1, FaultCode.GLOBAL_CONF_OUTDATED, "outdated")
    # No expirationDate in its metadata: nothing to expire.
    code, doc = _json(
        "check-dir", str(interop_dir / "globalconf/dirs/globalconf_good2_v3"), "--at", "2200-01-01"
    )
    assert (code, doc["expires"]) == (0, None)


def test_check_dir_not_a_directory(interop_dir: Path, tmp_path: Path) -> None:
    code, doc = _json("check-dir", str(tmp_path / "nothing-here"))
    assert (code, doc["code"]) == (1, FaultCode.IO_ERROR)
    code, doc = _json("check-dir", str(interop_dir / SYSTEM_TEST_ANCHOR))
    assert (code, doc["code"]) == (1, FaultCode.IO_ERROR)


def _install(tmp_path: Path, shared: bytes) -> Path:
    root = tmp_path / "globalconf"
    (root / "EE").mkdir(parents=True)
    (root / "instance-identifier").write_text("EE")
    (root / "EE/shared-params.xml").write_bytes(shared)
    return root


@pytest.mark.parametrize("rel", CONF1_PLACEHOLDERS)
def test_check_dir_refuses_conf1_placeholders(interop_dir: Path, tmp_path: Path, rel: str) -> None:
    root = _install(tmp_path, (interop_dir / rel).read_bytes())
    code, doc = _json("check-dir", str(root))
    assert (code, doc["code"], doc["details"]["reason"]) == (1, FaultCode.MALFORMED_GLOBALCONF, "malformed")
    assert "not well-formed" in doc["message"]


# -- the XXE part --------------------------------------------------------------------------------------------


def test_xxe_part_is_refused_everywhere(interop_dir: Path, tmp_path: Path) -> None:
    xxe = interop_dir / XXE_PART
    code, out = _run("anchor-hash", str(xxe))
    assert (code, "malformed_anchor" in out, "root:" in out) == (1, True, False)
    code, doc = _json("verify", str(interop_dir / PUBLIC / "V6/internalconf"), "--anchor", str(xxe))
    assert (code, doc["code"]) == (1, FaultCode.MALFORMED_ANCHOR)
    code, doc = _json(
        "verify", str(interop_dir / PUBLIC / "V5/internalconf"), "--anchor", _anchor(interop_dir),
        "--shared-params", str(xxe), "--at", "2025-01-01T00:00:00Z",
    )  # fmt: skip
    assert (code, doc["code"]) == (1, FaultCode.MALFORMED_GLOBALCONF)
    assert "root:" not in doc["message"]
    code, doc = _json("check-dir", str(_install(tmp_path, xxe.read_bytes())))
    assert (code, doc["code"]) == (1, FaultCode.MALFORMED_GLOBALCONF)
    assert "root:" not in doc["message"]


# -- check-dir on a directory the configuration client wrote -------------------------------------------------


def test_check_dir_skips_expired_federated_part(interop_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "gc"
    shutil.copytree(interop_dir / "globalconf/dirs/globalconf_good_v6", root)
    for p in [root, *root.rglob("*")]:  # the corpus is read-only; the copy need not be
        p.chmod(0o755 if p.is_dir() else 0o644)
    meta = root / "bar/shared-params.xml.metadata"
    meta.write_bytes(meta.read_bytes().replace(b"2124-05-20", b"2020-05-20"))
    code, doc = _json("check-dir", str(root), "--at", DIRS_AT.isoformat())
    assert code == 0, doc
    assert "bar" not in doc["instances"]
    assert doc["skipped"] == ["bar: shared-params.xml expired at 2020-05-20T17:42:55Z"]
    assert doc["approved_cas"] == 22 - 1
