"""`xroad-mn demo`: the whole federation — trust services, the registry, the agencies' registers and adapters,
three security servers enrolled through the real flows — and the scenario's self-check, on a first run and on
a second run that reuses everything.

The demo's addresses are the test's own (trust services and registry on 127.0.0.55, nodes on 127.0.0.50-52,
X-Road's fixed ports): other test modules use 127.0.0.2-9 and .20-.41.
"""

from __future__ import annotations

import logging
import re
import shlex
import stat
import subprocess
import time
import tomllib
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


CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "demo"
HOST = "127.0.0.55"
NODE_ADDRESS = "127.0.0.50"
DEMO_ARGS = ["--host", HOST, "--port", "8899", "--node-address", NODE_ADDRESS, "--check"]


def _printed_commands(output: str) -> list[str]:
    """The auditor's two commands, as the demo printed them."""
    lines = output.splitlines()
    start = lines.index("Auditor: export and verify the evidence of exchange 1 in the bank's message log:")
    return [lines[start + 1].strip(), lines[start + 2].strip()]


@pytest.mark.timeout(300)  # two whole demo runs (about 45 s and 15 s alone), not one exchange
def test_demo_runs_the_federation_and_the_scenario_then_reuses_it(tmp_path: Path) -> None:
    runner = CliRunner()
    started = time.monotonic()
    first = runner.invoke(build_app(), ["demo", "--dir", str(tmp_path), *DEMO_ARGS])
    first_seconds = time.monotonic() - started
    assert first.exit_code == 0, first.output
    assert "Creating trust directory" in first.output
    assert f"TSA   http://{HOST}:8899/tsa" in first.output
    assert "the token verifies" in first.output
    # The registry component: created once, serving, its configuration downloaded and verified.
    assert "Central registry (instance MN) — created" in first.output
    assert f"admin API  http://{HOST}:4000/api/v1" in first.output
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

    # The nodes: enrolled through the real flows, each on its address, the services published.
    assert "Security servers — enrolled gasr, tax, khanbank" in first.output
    for i, name in enumerate(("gasr", "tax", "khanbank")):
        assert f"client proxy http://127.0.0.{50 + i}:8080" in first.output
        assert (tmp_path / "nodes" / name / "demo-enrolled").is_file()
        written = tomllib.loads((tmp_path / "nodes" / name / "node.toml").read_text(encoding="utf-8"))
        example = tomllib.loads((CONFIGS / "nodes" / f"{name}.toml").read_text(encoding="utf-8"))
        assert written.keys() == example.keys()  # configs/demo/nodes shows what the demo writes
        assert written["address"] == f"127.0.0.{50 + i}"
    assert "MN:GOV:9010001:civil-registry/getCitizenIDCardInfo" in first.output
    assert "MN:GOV:9010002:taxpayer/taxpayer" in first.output
    # The scenario: answers through Khan Bank's node, access_denied where no right was granted, evidence.
    _assert_scenario(first.output)
    ids = re.findall(r"X-Road id (MN-[0-9a-f-]{36})", first.output)
    assert len(ids) == 2

    started = time.monotonic()
    second = runner.invoke(build_app(), ["demo", "--dir", str(tmp_path), *DEMO_ARGS])
    second_seconds = time.monotonic() - started
    assert second.exit_code == 0, second.output
    assert "Using trust directory" in second.output
    assert "Central registry (instance MN):" in second.output
    assert "created" not in second.output
    assert "Security servers (enrolled, reused)" in second.output
    assert (tmp_path / "trust" / "ca.pem").read_bytes() == ca_pem
    _assert_scenario(second.output)
    print(f"demo: first run {first_seconds:.1f} s, second run {second_seconds:.1f} s")

    # The auditor's commands work as printed (the nodes stopped: the evidence is in the bank's database).
    export, verify = _printed_commands(second.output)
    out = Path(shlex.split(export)[-1])
    for path in out.glob("*.asice"):
        path.unlink()
    ran = subprocess.run(shlex.split(export), capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert len(list(out.glob("*.asice"))) == 2, ran.stdout
    ran = subprocess.run(["bash", "-c", f"set -e; {verify}"], capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.count("valid") >= 2, ran.stdout


def _assert_scenario(output: str) -> None:
    assert "Scenario: Khan Bank's KYC system checks a new customer" in output
    assert re.search(
        r"1\. civil registry \(REST, SQL adapter\): \w+ \w+ \(\w+\), born \d{4}-\d\d-\d\d", output
    )
    assert re.search(r"2\. tax office \(REST, SQL adapter\): taxpayer [А-ЯӨҮ]{2}\d{8} \w+", output)
    assert re.search(r"3\. civil registry \(SOAP, SDK adapter\) getCitizenIDCardInfo: civil id \d+", output)
    assert "4. the address endpoint, not granted to the bank: server.serverproxy.access_denied" in output
    assert re.search(r"Self-check: the scenario ran; 2 containers exported and verified", output)
    assert "curl -s -H 'X-Road-Client: MN/COM/2012345/kyc'" in output
