"""Every sub-command of the root ``xroad-mn`` reports errors the same way: one funnel, one ``--json`` error
shape, Cyrillic kept readable, no fault-detail UUID at the end of the human line; ``globalconf verify`` says
when content files were not checked; a bad ``asic verify --conf`` is a usage error."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.globalconf_fixtures import SIGNED_CASES
from tests.test_globalconf_cli import _verify_args
from xroad_mn.cli.main import build_app

ASIC_CONF = Path(__file__).parent / "data" / "xroad" / "globalconf" / "dirs" / "globalconf_good2_v3"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ERROR_KEYS = {"ok", "code", "message", "detail", "details"}


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XROAD_MN_TOKEN_PIN", "registry PIN")  # the registry's signing keys live in its token
    path = tmp_path / "registry"
    code, out, err = _run("registry", "init", "--dir", str(path), "--instance", "MN", "--json")
    assert code == 0, out + err
    return path


def _failing_commands(tmp_path: Path, home: Path) -> dict[str, list[str]]:
    not_zip = tmp_path / "not.zip"
    not_zip.write_bytes(b"not a zip")
    trust = tmp_path / "trust"
    assert _run("trust", "init", "--dir", str(trust))[0] == 0
    return {
        "registry member add": [
            "registry", "member", "add", "--dir", str(home), "--class", "NOPE", "--code", "1",
            "--name", "x",
        ],
        "registry member list": ["registry", "member", "list", "--dir", str(tmp_path / "nowhere")],
        "registry requests approve": ["registry", "requests", "approve", "--dir", str(home), "999"],
        "trust init": ["trust", "init", "--dir", str(trust)],
        "globalconf verify": [
            "globalconf", "verify", str(not_zip), "--anchor", str(tmp_path / "missing.xml"),
        ],
        "globalconf check-dir": ["globalconf", "check-dir", str(tmp_path / "nowhere")],
        "globalconf download": [
            "globalconf", "download", "--anchor", str(not_zip), "--out", str(tmp_path / "out"),
        ],
        "archive verify": ["archive", "verify", str(not_zip), "--first"],
        "archive verify-chain": ["archive", "verify-chain", str(not_zip), "--first"],
        "asic verify": ["asic", "verify", str(not_zip), "--conf", str(ASIC_CONF)],
    }  # fmt: skip


def test_every_sub_command_has_one_json_error_shape(tmp_path: Path, home: Path) -> None:
    for name, args in _failing_commands(tmp_path, home).items():
        code, out, err = _run(*args, "--json")
        assert code == 1, (name, out, err)
        doc = json.loads(out)
        assert isinstance(doc, dict), (name, out)
        assert set(doc) >= ERROR_KEYS, (name, doc)
        assert doc["ok"] is False, name
        assert doc["code"], name
        assert UUID.fullmatch(doc["detail"]), (name, doc)
        assert isinstance(doc["details"], dict), name


def test_human_error_line_does_not_end_in_a_uuid(tmp_path: Path, home: Path) -> None:
    for name, args in _failing_commands(tmp_path, home).items():
        code, out, err = _run(*args)
        assert code == 1, (name, out, err)
        lines = [line for line in (out + err).splitlines() if line.strip()]
        assert lines, name
        assert not UUID.search(lines[-1]), (name, lines[-1])
        assert not any(line.strip().startswith("fault detail") for line in lines), name


def test_json_keeps_cyrillic_readable(home: Path) -> None:
    name = "Сангийн яам"
    add = ["registry", "member", "add", "--dir", str(home), "--class", "GOV", "--code", "1", "--name", name]
    code, out, _ = _run(*add, "--json")
    assert code == 0
    assert name in out
    code, out, _ = _run("registry", "member", "list", "--dir", str(home), "--json")
    assert code == 0
    assert name in out
    assert "\\u04" not in out
    add = ["registry", "member", "add", "--dir", str(home), "--class", "GOV", "--code", "1", "--name", name]
    code, out, _ = _run(*add, "--json")
    assert code == 1
    assert json.loads(out)["code"] == "conflict"
    assert "\\u04" not in out


def test_globalconf_verify_says_content_files_were_not_checked(interop_dir: Path, tmp_path: Path) -> None:
    case = replace(next(c for c in SIGNED_CASES if c.code is None), files_root=None)
    args = _verify_args(interop_dir, tmp_path, case)
    code, out, _ = _run("globalconf", *args)
    assert code == 0, out
    assert "content files NOT checked" in out
    assert "--files-root" in out
    code, out, _ = _run("globalconf", *args, "--json")
    assert (code, json.loads(out)["content_files_checked"]) == (0, False)


@pytest.mark.parametrize("conf", [None, "missing", "empty", "file"])
def test_asic_verify_bad_conf_is_a_usage_error(tmp_path: Path, conf: str | None) -> None:
    container = tmp_path / "c.asice"
    container.write_bytes(b"not a container")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    args = ["asic", "verify", str(container)]
    if conf is not None:
        args += ["--conf", str(tmp_path / conf)]
    code, out, err = _run(*args, "--json")
    assert code == 2, out + err
    assert "--conf" in err
    assert "valid" not in out
