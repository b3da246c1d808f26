"""`xroad-mn demo`: the whole federation — trust services, the registry, the agencies' registers and adapters,
five security servers enrolled through the real flows — and the scenario's self-check, on a first run; then a
second run that reuses everything and serves, as a user runs it: the printed curl commands are run against
it with curl, Ctrl-C stops it cleanly, and the printed auditor's commands export and verify the evidence.

The demo's addresses are the test's own (trust services and registry on 127.0.0.55, nodes on 127.0.0.50-54,
X-Road's fixed ports): other test modules use 127.0.0.2-9, .20-.41 and .44-.45.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import tomllib
import traceback
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
SERVE_ARGS = ["--host", HOST, "--port", "8899", "--node-address", NODE_ADDRESS]
DEMO_ARGS = [*SERVE_ARGS, "--check"]
NODES = ("gasr", "tax", "khanbank", "transport", "insurance")


def _printed_commands(output: str) -> list[str]:
    """The auditor's two commands, as the demo printed them."""
    lines = output.splitlines()
    start = lines.index("Auditor: export and verify the evidence of exchange 1 in the bank's message log:")
    return [lines[start + 1].strip(), lines[start + 2].strip()]


def _curl_examples(output: str) -> dict[str, str]:
    """The "Try it yourself" curl commands, by the comment printed above each."""
    lines = output.splitlines()
    start = lines.index("Try it yourself while the demo serves:")
    found: dict[str, str] = {}
    for comment, command in zip(lines[start + 1 :: 2], lines[start + 2 :: 2], strict=False):
        if not comment.strip().startswith("# "):
            break
        found[comment.strip()[2:]] = command.strip()
    return found


def _serve_until_ready(directory: Path) -> tuple[subprocess.Popen[str], str]:
    """``xroad-mn demo`` in its own process, as a user starts it; its output up to "Serving"."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "xroad_mn", "demo", "--dir", str(directory), *SERVE_ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    output: list[str] = []
    try:
        for line in proc.stdout:  # the test's timeout bounds a demo that never gets there
            output.append(line)
            if line.startswith("Serving. Press Ctrl-C to stop."):
                return proc, "".join(output)
    except BaseException:
        _kill(proc)
        raise
    _kill(proc)  # it ended: reaped, and its pipe closed
    holders = "\n" + (_holders(directory) or f"no process holds a file under {directory}")
    raise AssertionError(
        f"the demo stopped before serving ({proc.returncode}):\n{''.join(output)}\n{holders}"
    )


def _threads() -> str:
    """Every thread of this process but the main one, with its stack."""
    frames = sys._current_frames()
    return "\n".join(
        f"thread {t.name}:\n{''.join(traceback.format_stack(frames[t.ident]))}"
        for t in threading.enumerate()
        if t is not threading.main_thread() and t.ident in frames
    )


def _holders(directory: Path, pid: int | None = None) -> str:
    """Which processes (or only ``pid``) hold files under ``directory`` open, and the file locks on them (from
    ``/proc``): what a "database is locked" needs to be explained. Empty when none does."""
    inodes: dict[int, str] = {}
    lines = []
    processes = [Path(f"/proc/{pid}")] if pid is not None else list(Path("/proc").iterdir())
    for process in (p for p in processes if p.name.isdigit()):
        try:
            fds = list((process / "fd").iterdir())
            cmdline = (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
        except OSError:
            continue
        for fd in fds:
            try:
                target = fd.readlink()
            except OSError:
                continue
            if str(target).startswith(str(directory)):
                lines.append(f"pid {process.name} ({cmdline}) holds {target}")
                with contextlib.suppress(OSError):
                    inodes[target.stat().st_ino] = str(target)
    for line in Path("/proc/locks").read_text().splitlines():
        parts = [p for p in line.split() if p != "->"]
        inode = int(parts[5].rsplit(":", 1)[-1]) if len(parts) > 5 else -1
        if inode in inodes:
            lines.append(f"lock {line} on {inodes[inode]}")
    return "\n".join(lines)


def _kill(proc: subprocess.Popen[str]) -> None:
    """A demo the test gave up on: killed, so that its fixed addresses are free for the next run."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _curl(command: str) -> str:
    ran = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def _check_while_serving(output: str) -> None:
    """Run the printed curl commands against the serving demo, as a user would."""
    examples = _curl_examples(output)
    record = json.loads(_curl(examples["REST through Khan Bank's client proxy: a citizen's record"]))
    assert re.fullmatch(r"[А-ЯӨҮ]{2}\d{8}", record["regnum"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", record["birth_date"])
    soap = _curl(examples["SOAP: the XYP-style identity-card service"])
    assert "getCitizenIDCardInfoResponse" in soap
    assert record["regnum"] in soap
    assert f"civilId>{record['civil_id']}<" in soap
    cars = json.loads(_curl(examples["REST through the HTTP adapter: the vehicles the citizen owns"]))
    assert cars["regnum"] == record["regnum"]
    assert cars["count"] == len(cars["cars"]) >= 1
    denied = json.loads(_curl(examples["no access right: access_denied"]))
    assert denied["type"] == "server.serverproxy.access_denied"


SERVED: tuple[tuple[str, int], ...] = (
    *((HOST, port) for port in (8899, 4000, 8080)),  # trust services, the registry's admin and public sockets
    *((f"127.0.0.{50 + i}", port) for i in range(len(NODES)) for port in (4000, 5500, 5577, 8080, 8443)),
    *(("127.0.0.50", port) for port in (8091, 8092, 8094)),  # the agencies' adapters and their own services
    ("127.0.0.51", 8093),
    *(("127.0.0.53", port) for port in (8095, 9095)),
    *(("127.0.0.54", port) for port in (8096, 9096)),
)
"""Every address the demo listens on."""


def _stops_cleanly(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C: the demo stops and frees every address it served."""
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    for host, port in SERVED:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))  # nothing listens there any more
    return rest


@pytest.mark.timeout(300)  # two whole demo runs (about 30 s and 15 s alone), not one exchange
def test_demo_runs_the_federation_and_the_scenario_then_reuses_it(tmp_path: Path) -> None:
    runner = CliRunner()
    started = time.monotonic()
    first = runner.invoke(build_app(), ["demo", "--dir", str(tmp_path), *DEMO_ARGS])
    first_seconds = time.monotonic() - started
    assert first.exit_code == 0, first.output
    # Stopped, the demo holds nothing of its home open: every database closed, every transaction ended.
    left_open = _holders(tmp_path, os.getpid())
    assert not left_open, f"{left_open}\n{_threads()}\n{first.output}"
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
    assert f"Security servers — enrolled {', '.join(NODES)}" in first.output
    for i, name in enumerate(NODES):
        assert f"client proxy http://127.0.0.{50 + i}:8080" in first.output
        assert (tmp_path / "nodes" / name / "demo-enrolled").is_file()
        written = tomllib.loads((tmp_path / "nodes" / name / "node.toml").read_text(encoding="utf-8"))
        example = tomllib.loads((CONFIGS / "nodes" / f"{name}.toml").read_text(encoding="utf-8"))
        assert written.keys() == example.keys()  # configs/demo/nodes shows what the demo writes
        assert written["address"] == f"127.0.0.{50 + i}"
    assert "MN:GOV:9010001:civil-registry/getCitizenIDCardInfo" in first.output
    assert "MN:GOV:9010002:taxpayer/taxpayer" in first.output
    assert "MN:GOV:9010001:property-registry/property" in first.output
    assert "MN:GOV:9010004:vehicle-registry/vehicles" in first.output
    assert "MN:GOV:9010003:insurance/getCitizenSalaryInfo" in first.output
    # The scenario: answers through Khan Bank's node, access_denied where no right was granted, evidence.
    _assert_scenario(first.output)
    ids = re.findall(r"X-Road id (MN-[0-9a-f-]{36})", first.output)
    assert len(ids) == 2

    # The second run, as a user runs it: its own process, serving until Ctrl-C.
    started = time.monotonic()
    proc, output = _serve_until_ready(tmp_path)
    second_seconds = time.monotonic() - started
    try:
        assert "Using trust directory" in output
        assert "Central registry (instance MN):" in output
        assert "Central registry (instance MN) — created" not in output
        assert "Security servers (enrolled, reused)" in output
        assert (tmp_path / "trust" / "ca.pem").read_bytes() == ca_pem
        _assert_scenario(output)
        _check_while_serving(output)
        rest = _stops_cleanly(proc)
    finally:
        _kill(proc)
    assert "Traceback" not in rest, rest
    print(f"demo: first run {first_seconds:.1f} s, second run {second_seconds:.1f} s to serving")

    # The auditor's commands work as printed (the nodes stopped: the evidence is in the bank's database).
    export, verify = _printed_commands(output)
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
        r"1\. civil registry \(REST, SQL adapter\): [\w-]+ [\w-]+ \([\w-]+\), born \d{4}-\d\d-\d\d", output
    )
    assert re.search(r"2\. tax office \(REST, SQL adapter\): taxpayer [А-ЯӨҮ]{2}\d{8} \w+", output)
    assert re.search(r"3\. civil registry \(SOAP, SDK adapter\) getCitizenIDCardInfo: civil id \d+", output)
    assert re.search(r"4\. property register \(REST, SQL adapter\): \d+ right\(s\), the first \w+", output)
    assert re.search(r"5\. vehicle register \(REST, HTTP adapter .*\): \d+ vehicle\(s\)", output)
    assert re.search(r"6\. social insurance \(SOAP, SOAP adapter .*\) getCitizenSalaryInfo: \w+", output)
    assert "7. the address endpoint, not granted to the bank: server.serverproxy.access_denied" in output
    assert re.search(r"Self-check: the scenario ran; 2 containers exported and verified", output)
    assert "curl -s -H 'X-Road-Client: MN/COM/2012345/kyc'" in output


def test_a_demo_directory_of_another_layout_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "trust").mkdir()  # made by the three-node demo: no layout mark

    def refusal() -> str:
        result = CliRunner().invoke(build_app(), ["demo", "--dir", str(tmp_path), *DEMO_ARGS])
        assert result.exit_code == 2, result.output
        return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())  # rich's box, unwrapped

    said = refusal()
    assert "holds a demo of layout 1, this xroad-mn runs layout 2" in said
    assert "remove the directory or give another --dir" in said
    (tmp_path / "demo-layout").write_text("7\n", encoding="utf-8")
    assert "holds a demo of layout 7" in refusal()
    elsewhere = tmp_path / "notes"
    elsewhere.mkdir()
    (elsewhere / "todo.txt").write_text("x", encoding="utf-8")
    result = CliRunner().invoke(build_app(), ["demo", "--dir", str(elsewhere), *DEMO_ARGS])
    assert result.exit_code == 2
    assert "is not empty and holds no demo" in " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
    assert not (tmp_path / "registry").exists()  # refused before anything was made
