"""`xroad-mn demo`: initialises the trust services once, serves them and proves the TSA answers."""

from __future__ import annotations

import logging
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from xroad_mn.cli.main import build_app


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    logging.basicConfig(force=True, handlers=[logging.NullHandler()])


def test_demo_initialises_once_and_self_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(build_app(), ["demo", "--dir", str(tmp_path), "--port", "0", "--check"])
    assert first.exit_code == 0, first.output
    assert "Creating trust directory" in first.output
    assert re.search(r"TSA\s+http://127\.0\.0\.1:\d+/tsa", first.output)
    assert "the token verifies" in first.output
    # The registry component: created once, serving, its configuration downloaded and verified.
    assert "Central registry (instance MN) — created" in first.output
    assert re.search(r"admin API\s+http://127\.0\.0\.1:\d+/api/v1", first.output)
    assert "MEMBER:MN/GOV/9010001" in first.output
    assert "the configuration client verified version 6" in first.output
    assert (tmp_path / "registry" / "anchor-internal.xml").is_file()
    assert (tmp_path / "globalconf" / "MN" / "shared-params.xml").is_file()
    # The registry's signing keys are in its token; the demo keeps the token's PIN 0600 to start unattended.
    assert (tmp_path / "registry" / "token" / "keys.json").is_file()
    assert stat.S_IMODE((tmp_path / "registry" / "demo-token-pin").stat().st_mode) == 0o600
    found = subprocess.run(
        ["grep", "-r", "-l", "BEGIN PRIVATE KEY\\|BEGIN RSA PRIVATE KEY", str(tmp_path / "registry")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 1, found.stdout + found.stderr
    ca_pem = (tmp_path / "trust" / "ca.pem").read_bytes()
    for name in ("ca.pem", "ocsp.pem", "tsa.pem"):
        assert (tmp_path / "trust" / name).is_file()

    second = runner.invoke(build_app(), ["demo", "--dir", str(tmp_path), "--port", "0", "--check"])
    assert second.exit_code == 0, second.output
    assert "Using trust directory" in second.output
    assert "Central registry (instance MN):" in second.output
    assert "created" not in second.output
    assert (tmp_path / "trust" / "ca.pem").read_bytes() == ca_pem
