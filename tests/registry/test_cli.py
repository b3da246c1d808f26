"""``xroad-mn registry`` through the root command (CliRunner on ``build_app()``), on SQLite and PostgreSQL:
init → members, groups, CA, TSA → requests approved and rejected → anchor export → globalconf generate,
and the generated directory verifies with ``xroad-mn globalconf verify`` against the exported anchor."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import text
from typer.testing import CliRunner

from registry.db import create_engine
from registry.home import load_registry_settings
from registry.operations import open_store
from registry.requests import submit_request
from tests.registry.test_e2e import tls_identity
from trust_services.pki import DevPki
from xroad_mn.cli.main import build_app
from xroad_mn.globalconf.anchor import anchor_hash, parse_anchor
from xroad_mn.globalconf.params import parse_private_params, parse_shared_params
from xroad_mn.identifiers import MemberId
from xroad_mn.management import ClientRegRequest

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
MEMBER = MemberId("MN", "GOV", "5012345")
PROFILE = "ee.ria.xroad.common.certificateprofile.impl.FiVRKCertificateProfileInfoProvider"


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.output


def _ok(*args: str) -> str:
    code, out = _invoke(*args)
    assert code == 0, out
    return out


async def _drop_schema(url: str, schema: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_args(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """``registry init`` options naming each backend (PostgreSQL: a schema of its own, dropped afterwards)."""
    if request.param == "sqlite":
        yield []
        return
    url: str = request.getfixturevalue("postgres_url")
    schema = f"registry_cli_{uuid.uuid4().hex[:12]}"
    yield ["--database-url", url, "--database-schema", schema]
    asyncio.run(_drop_schema(url, schema))


async def _submit_requests(home: Path) -> list[int]:
    """A security server of MEMBER and three clientReg requests, recorded as the management service does."""
    async with open_store(load_registry_settings(home)) as store:
        await store.add_security_server(MEMBER.server("ss1"), "ss1.example.mn")
        ids = []
        for code in ("tax", "health", "education"):
            req = ClientRegRequest(MEMBER.server("ss1"), MEMBER.subsystem(code))
            ids.append((await submit_request(store, req, raw=None, auto_approve=frozenset(), user="ss1")).id)
        return ids


def test_registry_cli_end_to_end(tmp_path: Path, pki: DevPki, database_args: list[str]) -> None:
    home = str(tmp_path / "home")
    init = json.loads(_ok("registry", "init", "--dir", home, "--instance", "MN", "--json", *database_args))
    assert init["instance"] == "MN"
    assert init["api_key"]
    assert sorted(k["kind"] for k in init["signing_keys"]) == ["external", "internal"]
    assert all(k["active"] for k in init["signing_keys"])
    code, out = _invoke("registry", "init", "--dir", home, "--instance", "MN")
    assert code == 1
    assert "conflict" in out

    _ok(
        "registry",
        "member",
        "add",
        "--dir",
        home,
        "--class",
        "GOV",
        "--code",
        "5012345",
        "--name",
        "Ministry",
    )
    code, out = _invoke(
        "registry", "member", "add", "--dir", home, "--class", "NOPE", "--code", "1", "--name", "x"
    )
    assert code == 1
    _ok(
        "registry",
        "subsystem",
        "add",
        "--dir",
        home,
        "--member",
        "MN:GOV:5012345",
        "--code",
        "civil-registry",
    )
    _ok(
        "registry",
        "group",
        "add",
        "--dir",
        home,
        "--code",
        "security-server-owners",
        "--description",
        "Owners",
    )
    _ok(
        "registry",
        "group",
        "add-member",
        "--dir",
        home,
        "--code",
        "security-server-owners",
        "--client",
        "MN:GOV:5012345",
    )
    members = json.loads(_ok("registry", "member", "list", "--dir", home, "--json"))
    assert [m["member_id"] for m in members] == ["MN:GOV:5012345", "MN:GOV:REGISTRY"]
    assert "Ministry" in _ok("registry", "member", "list", "--dir", home)

    certs = tmp_path / "certs"
    certs.mkdir()
    files = {}
    for name, ck in (
        ("root", pki.root),
        ("intermediate", pki.intermediate),
        ("ocsp", pki.ocsp_responder),
        ("tsa", pki.tsa),
    ):
        files[name] = certs / f"{name}.pem"
        files[name].write_bytes(ck.certificate.public_bytes(Encoding.PEM))
    (certs / "tsa.der").write_bytes(pki.tsa.certificate.public_bytes(Encoding.DER))
    ca = json.loads(
        _ok(
            "registry",
            "ca",
            "add",
            "--dir",
            home,
            str(files["root"]),
            "--profile",
            PROFILE,
            "--ocsp-url",
            "http://ocsp.example.mn",
            "--ocsp-cert",
            str(files["ocsp"]),
            "--intermediate",
            str(files["intermediate"]),
            "--json",
        )
    )
    assert ca["name"] == "MN dev root CA"
    assert len(ca["intermediate_cas"]) == 1
    assert ca["top_ca"]["ocsp_responders"][0]["url"] == "http://ocsp.example.mn"
    _ok("registry", "tsa", "add", "--dir", home, str(certs / "tsa.der"), "--url", "http://tsa.example.mn")
    code, out = _invoke("registry", "ca", "add", "--dir", home, str(files["root"]), "--profile", PROFILE)
    assert code == 1
    assert "conflict" in out

    tax, health, education = asyncio.run(_submit_requests(Path(home)))
    pending = json.loads(_ok("registry", "requests", "list", "--dir", home, "--state", "submitted", "--json"))
    assert [r["id"] for r in pending] == [tax, health, education]
    revoked = json.loads(_ok("registry", "requests", "revoke", "--dir", home, str(education), "--json"))
    assert revoked["state"] == "revoked"
    code, out = _invoke("registry", "requests", "revoke", "--dir", home, str(education))
    assert code == 1
    assert "conflict" in out
    assert "approved" in _ok("registry", "requests", "approve", "--dir", home, str(tax), "--comment", "ok")
    rejected = json.loads(_ok("registry", "requests", "reject", "--dir", home, str(health), "--json"))
    assert rejected["state"] == "rejected"
    code, out = _invoke("registry", "requests", "approve", "--dir", home, str(health))
    assert code == 1
    assert "conflict" in out
    assert "clientReg" in _ok("registry", "requests", "list", "--dir", home)
    servers = json.loads(_ok("registry", "server", "list", "--dir", home, "--json"))
    assert servers[0]["clients"] == ["MN:GOV:5012345:tax"]
    assert "ss1.example.mn" in _ok("registry", "server", "list", "--dir", home)

    key = json.loads(_ok("registry", "apikey", "create", "--dir", home, "--role", "observer", "--json"))
    assert key["roles"] == ["observer"]
    assert key["api_key"] not in (Path(home) / "api-keys.json").read_text()
    assert key["api_key_id"] in _ok("registry", "apikey", "revoke", "--dir", home, key["api_key_id"])
    assert key["api_key_id"] not in (Path(home) / "api-keys.json").read_text()
    code, out = _invoke("registry", "apikey", "revoke", "--dir", home, key["api_key_id"])
    assert code == 1
    assert "not_found" in out

    anchor_file = tmp_path / "anchor.xml"
    out = _ok("registry", "anchor", "export", "--dir", home, "--out", str(anchor_file))
    assert anchor_hash(anchor_file.read_bytes()) in out
    anchor = parse_anchor(anchor_file.read_bytes())
    assert anchor.instance == "MN"
    assert len(anchor.verification_certs) == 1
    # `serve --public-port` binds another port than registry.toml names: export for the address it prints.
    moved = tmp_path / "moved.xml"
    out = _ok(
        "registry", "anchor", "export", "--dir", home, "--out", str(moved),
        "--address", "127.0.0.1:9080", "--address", "cs2.example.mn",
    )  # fmt: skip
    assert anchor_hash(moved.read_bytes()) in out
    assert [s.download_url for s in parse_anchor(moved.read_bytes()).sources] == [
        "http://127.0.0.1:9080/internalconf",
        "http://cs2.example.mn/internalconf",
    ]
    assert parse_anchor(moved.read_bytes()).verification_certs == anchor.verification_certs
    external = json.loads(
        _ok(
            "registry",
            "anchor",
            "export",
            "--dir",
            home,
            "--out",
            str(tmp_path / "external.xml"),
            "--external",
            "--json",
        )
    )
    assert external["kind"] == "external"

    conf_dir = tmp_path / "out"
    summary = json.loads(
        _ok("registry", "globalconf", "generate", "--dir", home, "--out", str(conf_dir), "--json")
    )
    assert summary["versions"] == [2, 3, 4, 5, 6]
    for name in ("internalconf", "externalconf", "V6/internalconf", "V6/externalconf", "V2/internalconf"):
        assert (conf_dir / name).is_file(), name
    verified = _ok(
        "globalconf",
        "verify",
        str(conf_dir / "V6/internalconf"),
        "--anchor",
        str(anchor_file),
        "--files-root",
        str(conf_dir),
    )
    assert "valid: version 6" in verified
    code, out = _invoke(
        "globalconf",
        "verify",
        str(conf_dir / "V6/internalconf"),
        "--anchor",
        str(tmp_path / "external.xml"),
        "--files-root",
        str(conf_dir),
    )
    assert code == 1  # the internal directory is not signed by the external key

    (shared_file,) = conf_dir.glob("V6/*/shared-params.xml")
    shared = parse_shared_params(shared_file.read_bytes())
    assert {m.member_code for m in shared.members} == {"5012345", "REGISTRY"}
    assert shared.approved_cas[0].top_ca.cert == pki.root.certificate
    assert shared.approved_tsas[0].url == "http://tsa.example.mn"
    assert shared.global_groups[0].members == (MEMBER,)

    audit: list[dict[str, Any]] = [
        json.loads(line) for line in (Path(home) / "audit.log").read_text().splitlines()
    ]
    events = [a["event"] for a in audit]
    for event in (
        "Initialize registry",
        "Add member",
        "Add member failed",
        "Add certification service",
        "Add certification service failed",
        "Approve management request",
        "Reject management request",
        "Revoke management request",
        "Revoke management request failed",
        "Create API key",
    ):
        assert event in events
    assert all(a["user"].startswith("cli") for a in audit)
    assert datetime.fromisoformat(audit[0]["time"]) <= datetime.now(UTC)


def test_commands_need_a_home(tmp_path: Path) -> None:
    code, out = _invoke("registry", "member", "list", "--dir", str(tmp_path / "missing"))
    assert code == 1
    assert "registry init" in out


class _Output:
    """A process's stdout lines, read in a thread until EOF."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._stdout = proc.stdout
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def until(self, marker: str, timeout: float = 60) -> list[str]:
        """The lines up to the one containing ``marker``."""
        lines: list[str] = []
        while True:
            line = self._lines.get(timeout=timeout)
            assert line is not None, lines
            lines.append(line)
            if marker in line:
                return lines

    def close(self) -> None:
        """After the process ended: wait for EOF and close the pipe."""
        self._thread.join(timeout=30)
        self._stdout.close()


def test_serve_with_a_port_override_prints_the_anchor_address(
    tmp_path: Path, database_args: list[str]
) -> None:
    """`serve --public-port` announces another port than registry.toml names: it prints the anchor sources
    and the `anchor export --address` command; the anchor exported that way downloads from the server."""
    home = str(tmp_path / "home")
    _ok("registry", "init", "--dir", home, "--instance", "MN", "--public-port", "8080", *database_args)
    proc = subprocess.Popen(
        [sys.executable, "-m", "xroad_mn", "registry", "serve", "--dir", home,
         "--admin-port", "0", "--public-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    output = _Output(proc)
    try:
        lines = output.until("Press Ctrl-C")
        (sources,) = [line for line in lines if line.startswith("Anchor sources ")]
        (address,) = sources.removeprefix("Anchor sources ").split()
        assert address.startswith("127.0.0.1:")
        assert address != "127.0.0.1:8080"
        assert any(f"--address {address}" in line for line in lines), lines
        anchor_file = tmp_path / "anchor.xml"
        _ok("registry", "anchor", "export", "--dir", home, "--address", address, "--out", str(anchor_file))
        _ok("globalconf", "download", "--anchor", str(anchor_file), "--out", str(tmp_path / "conf"))
        assert (tmp_path / "conf" / "MN" / "shared-params.xml").is_file()
        stale = tmp_path / "stale.xml"  # the default export names the configured port: nothing there
        _ok("registry", "anchor", "export", "--dir", home, "--out", str(stale))
        code, _ = _invoke("globalconf", "download", "--anchor", str(stale), "--out", str(tmp_path / "none"))
        assert code == 1
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        output.close()
    assert code == 0


def test_init_with_public_tls(tmp_path: Path, database_args: list[str]) -> None:
    """`init --public-tls-cert/--public-tls-key`: anchors name https sources and the generated
    private-params publish the certificate as authCertRegServiceCert."""
    cert_path, key_path, cert = tls_identity(tmp_path / "tls")
    home = str(tmp_path / "home")
    _ok(
        "registry", "init", "--dir", home, "--instance", "MN", "--public-port", "8443",
        "--public-tls-cert", str(cert_path), "--public-tls-key", str(key_path), *database_args,
    )  # fmt: skip
    anchor_file = tmp_path / "anchor.xml"
    _ok("registry", "anchor", "export", "--dir", home, "--out", str(anchor_file))
    assert [s.download_url for s in parse_anchor(anchor_file.read_bytes()).sources] == [
        "https://127.0.0.1:8443/internalconf"
    ]
    conf_dir = tmp_path / "out"
    _ok("registry", "globalconf", "generate", "--dir", home, "--out", str(conf_dir))
    (private_file,) = conf_dir.glob("V6/*/private-params.xml")
    management = parse_private_params(private_file.read_bytes()).management_service
    assert management.auth_cert_reg_service_cert == cert
    assert management.auth_cert_reg_service_address == "https://127.0.0.1:8443/managementservice/"


def test_apikey_create_offers_only_the_registrys_roles(tmp_path: Path) -> None:
    """The role enum holds the security server's roles too; a registry key may hold none of them."""
    code, out = _invoke(
        "registry", "apikey", "create", "--dir", str(tmp_path), "--role", "xroad-security-officer"
    )
    assert code == 2
    assert "registration-officer" in out
    assert not (tmp_path / "api-keys.json").exists()
