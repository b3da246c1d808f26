"""A node installed, keyed, certified and registered end to end through ``xroad-mn`` and the served apps.

The world is real and served: the dev trust services (CA, OCSP responder) and the registry, set up with
``xroad-mn registry ...`` and served with TLS on its public socket (X-Road's management requests go by
HTTPS pinned to the certificate global configuration publishes). Two nodes, on 127.0.0.30 and 127.0.0.31 with
X-Road's default ports, are made with ``xroad-mn node init`` from the registry's anchor, get authentication
and signing certificates from the dev CA (``node certs request``), send ``authCertReg`` (``node register``)
and ``clientReg`` (``node client add``), which the registry's administrator approves (``xroad-mn registry
requests approve``); the next global configuration lists both servers with their authentication
certificate hashes and subsystems, and ``node status --json`` shows them registered with OCSP ``good``.
Revoking an authentication certificate at the CA turns its OCSP status ``revoked`` after a refresh. No
private key is anywhere in clear in the homes of the nodes and the registry (``grep``). The nodes' storage
runs on SQLite and on PostgreSQL; one node runs the same flow with its keys in SoftHSM2. Bad input gets a
clear error, exit status 1, and changes nothing.

CLI commands run with typer's ``CliRunner`` on ``build_app()`` in a worker thread (each runs its own event
loop, as ``xroad-mn`` does), while the servers run on the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import text
from typer.testing import CliRunner

from registry.app import RunningRegistry, run_registry
from registry.home import load_registry_settings
from security_server.api.call import OCSP_REFRESHER_KEY
from security_server.app import RunningNode, run_node
from security_server.home import globalconf_dir, open_home, token_dir
from security_server.proxy.internal_tls import INTERNAL_TLS_DIR
from tests.conftest import SoftHsm
from tests.registry.test_e2e import tls_identity
from trust_services.app import RunningTrustService
from trust_services.pki import member_subject
from trust_services.store import TrustFiles
from xroad_mn.certs import XROAD_MN_PROFILE
from xroad_mn.cli.main import build_app
from xroad_mn.confclient.store import ConfigurationStore
from xroad_mn.database import create_engine
from xroad_mn.globalconf.anchor import build_anchor
from xroad_mn.globalconf.params import SecurityServer, SharedParameters, parse_shared_params
from xroad_mn.identifiers import MemberId, SubsystemId
from xroad_mn.tokens import PIN_ENV, Pkcs11Token, SoftwareToken, build_csr, token_signer

PIN = "node e2e PIN"
REGISTRY_PIN = "registry e2e PIN"
OWNERS = (MemberId("MN", "GOV", "9010001"), MemberId("MN", "GOV", "9010002"))
ADDRESSES = ("127.0.0.30", "127.0.0.31")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
WAIT_SECONDS = 30.0
"""Longest wait for the registry's next configuration to reach a node (both refresh every second)."""
PRIVATE_KEY_PATTERN = "BEGIN PRIVATE KEY\\|BEGIN RSA PRIVATE KEY"
"""Token keys never appear in clear; the one exception is the node's internal TLS key for the client
proxy's HTTPS port, which X-Road too keeps as a plain file readable by the node only (``0600``, in
``HOME/internal-tls``; checked by its own test)."""


# -- the command line -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    exit_code: int
    stdout: str
    output: str

    def json(self) -> Any:
        return json.loads(self.stdout)


async def xroad_mn(
    *args: str,
    pin: str = PIN,
    expect: int = 0,
    own_process: bool = False,
    env: Mapping[str, str] | None = None,
) -> Ran:
    """``xroad-mn ARGS`` with ``XROAD_MN_TOKEN_PIN=pin`` and ``env``, in a worker thread (or, ``own_process``,
    as ``python -m xroad_mn``); asserts the exit status."""
    if own_process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "xroad_mn", *args,
            env={**os.environ, **(env or {}), PIN_ENV: pin},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        ran = Ran(proc.returncode if proc.returncode is not None else -1, out.decode(), (out + err).decode())
    else:
        result = await asyncio.to_thread(
            CliRunner().invoke,
            build_app(),
            list(args),
            env={**(env or {}), PIN_ENV: pin},
            catch_exceptions=False,
        )
        ran = Ran(result.exit_code, result.stdout, result.output)
    assert ran.exit_code == expect, (args, ran.output)
    return ran


async def refused(
    *args: str, code: str, pin: str = PIN, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``xroad-mn ARGS --json`` fails with exit status 1 and the shared error object with ``code``."""
    error: dict[str, Any] = (await xroad_mn(*args, "--json", pin=pin, expect=1, env=env)).json()
    assert error["ok"] is False
    assert error["code"] == code, error
    assert error["message"]
    return error


# -- the world: trust services and the registry -----------------------------------------------------------


@dataclass
class World:
    trust: RunningTrustService
    registry_home: Path
    registry: RunningRegistry
    tls_cert_file: Path
    anchor_file: Path
    session: aiohttp.ClientSession
    registry_stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    """Holds the running registry: :meth:`stop_registry` and :meth:`start_registry` (fault tests)."""

    async def stop_registry(self) -> None:
        """Stop serving the registry (both sockets closed), as if its host went down."""
        await self.registry_stack.aclose()

    async def start_registry(self) -> None:
        """Serve the registry again on the ports it had (its anchor names the public one)."""
        self.registry = await self.registry_stack.enter_async_context(
            run_registry(self.registry.settings, pin=REGISTRY_PIN)
        )

    async def approve(self, request_id: int) -> None:
        out = (
            await xroad_mn(
                "registry",
                "requests",
                "approve",
                "--dir",
                str(self.registry_home),
                str(request_id),
                "--json",
                pin=REGISTRY_PIN,
            )
        ).json()
        assert out["state"] == "approved", out

    async def requests(self) -> Any:
        return (
            await xroad_mn("registry", "requests", "list", "--dir", str(self.registry_home), "--json")
        ).json()

    async def revoke(self, serial: int) -> None:
        body = {"serial": serial, "reason": "keyCompromise"}
        async with self.session.post(self.trust.urls.revocations, json=body) as resp:
            assert resp.status in (200, 201), await resp.text()


@asynccontextmanager
async def running_world(tmp_path: Path, trust: RunningTrustService) -> AsyncIterator[World]:
    """The registry made with ``xroad-mn registry`` (TLS on its public socket, the node owners as members,
    the dev CA approved) and served; its anchor exported for the address it serves on."""
    home = tmp_path / "registry"
    cert_file, key_file, _ = tls_identity(tmp_path / "registry-tls")  # outside the registry's home
    files = TrustFiles(trust.directory)
    reg = ("--dir", str(home))
    await xroad_mn(
        "registry",
        "init",
        *reg,
        "--instance",
        "MN",
        "--owner-code",
        "1000001",
        "--public-tls-cert",
        str(cert_file),
        "--public-tls-key",
        str(key_file),
        pin=REGISTRY_PIN,
    )
    for owner in OWNERS:
        await xroad_mn(
            "registry",
            "member",
            "add",
            *reg,
            "--class",
            owner.member_class,
            "--code",
            owner.member_code,
            "--name",
            f"Ministry {owner.member_code}",
        )
    await xroad_mn(
        "registry",
        "ca",
        "add",
        *reg,
        str(files.ca_cert),
        "--profile",
        XROAD_MN_PROFILE,
        "--ocsp-url",
        trust.urls.ocsp,
        "--ocsp-cert",
        str(files.ocsp_cert),
        "--name",
        "MN dev CA",
    )
    settings = load_registry_settings(
        home,
        env={},
        overrides={"admin_port": 0, "public_port": 0, "regenerate_interval_seconds": 1},
    )
    async with aiohttp.ClientSession() as session, AsyncExitStack() as registry_stack:
        registry = await registry_stack.enter_async_context(run_registry(settings, pin=REGISTRY_PIN))
        port = registry.settings.public_port
        anchor = tmp_path / "anchor.xml"
        await xroad_mn(
            "registry", "anchor", "export", *reg, "--address", f"127.0.0.1:{port}", "--out", str(anchor)
        )
        yield World(trust, home, registry, cert_file, anchor, session, registry_stack)


@asynccontextmanager
async def node_database(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[list[str]]:
    """``node init`` options of the backend: none (SQLite in the home), or a PostgreSQL schema of the node's
    own, dropped afterwards."""
    if backend == "sqlite":
        yield []
        return
    url: str = request.getfixturevalue("postgres_url")
    schema = f"node_e2e_{uuid.uuid4().hex[:12]}"
    try:
        yield ["--database-url", url, "--database-schema", schema]
    finally:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()


# -- a node -----------------------------------------------------------------------------------------------


@dataclass
class Node:
    home: Path
    owner: MemberId
    server_code: str
    address: str
    subsystem: SubsystemId
    pin: str = PIN
    own_process: bool = False
    """Run its commands as processes of their own: a PKCS #11 token is logged in once per process, and the
    running node holds that login in the test's process."""
    serials: dict[str, int] = field(default_factory=dict)

    @property
    def dir(self) -> tuple[str, str]:
        return ("--dir", str(self.home))

    async def cli(self, *args: str) -> Any:
        """``xroad-mn node ARGS --dir HOME --json`` with the node's PIN: its JSON output."""
        ran = await xroad_mn("node", *args, *self.dir, "--json", pin=self.pin, own_process=self.own_process)
        return ran.json()

    async def status(self) -> Any:
        return await self.cli("status")

    async def wait_for(self, what: str, check: Callable[[Any], bool]) -> Any:
        """``node status --json`` once ``check`` holds (the running node syncs every second)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            status = await self.status()
            if check(status):
                return status
            assert time.monotonic() < deadline, f"{self.server_code}: no {what} in {WAIT_SECONDS} s: {status}"
            await asyncio.sleep(0.5)

    async def wait_for_configuration(self, check: Callable[[SharedParameters], bool]) -> None:
        """Until the node's installed global configuration satisfies ``check`` (downloaded every second)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while not check(self.shared_params()):
            assert time.monotonic() < deadline, f"{self.server_code}: global configuration never matched"
            await asyncio.sleep(0.5)

    def shared_params(self) -> SharedParameters:
        data = ConfigurationStore(globalconf_dir(self.home)).read_file("MN", "shared-params.xml")
        assert data is not None
        return parse_shared_params(data)


def listed(shared: SharedParameters, node: Node) -> SecurityServer | None:
    """``node``'s server as global configuration lists it, once it lists its subsystem too."""
    for server in shared.security_servers:
        if server.server_code == node.server_code and node.subsystem in server.clients:
            return server
    return None


def certificate(status: Any, usage: str) -> Any:
    (found,) = [c for c in status["certificates"] if c["usage"] == usage]
    return found


def client_state(status: Any, client: str) -> str | None:
    return next((c["state"] for c in status["clients"] if c["client_id"] == client), None)


async def init_and_certify(world: World, node: Node, options: list[str]) -> str:
    """``node init`` from the registry's anchor, then auth and sign certificates from the dev CA; the first
    admin API key."""
    owner = f"MEMBER:MN/{node.owner.member_class}/{node.owner.member_code}"
    out = await node.cli(
        "init",
        "--anchor",
        str(world.anchor_file),
        "--owner",
        owner,
        "--server-code",
        node.server_code,
        "--address",
        node.address,
        "--globalconf-ca",
        str(world.tls_cert_file),
        *options,
    )
    assert out["server_id"] == f"MN:GOV:{node.owner.member_code}:{node.server_code}"
    assert out["api_key"]
    for usage in ("auth", "sign"):
        imported = await node.cli("certs", "request", "--usage", usage, "--ca-url", world.trust.urls.base)
        assert imported["ca_name"] == "MN dev CA"
        node.serials[usage] = int(imported["certificate"]["serial_number"], 16)
    human = (await xroad_mn("node", "status", *node.dir, pin="", own_process=node.own_process)).stdout
    assert f"serial {node.serials['auth']}" in human
    return str(out["api_key"])


async def register(world: World, node: Node) -> None:
    """authCertReg, approved; then clientReg of the node's subsystem, approved; both reach the node."""
    request_id = (await node.cli("register"))["request_id"]
    assert certificate(await node.status(), "auth")["status"] == "registration_in_progress"
    await world.approve(request_id)
    await node.wait_for(
        "registered auth certificate", lambda s: certificate(s, "auth")["status"] == "registered"
    )
    subsystem = f"SUBSYSTEM:MN/GOV/{node.owner.member_code}/{node.subsystem.subsystem_code}"
    added = await node.cli("client", "add", subsystem)
    assert added["state"] == "registration_in_progress"
    await world.approve(added["request_id"])
    await node.wait_for("registered subsystem", lambda s: client_state(s, added["client_id"]) == "registered")


def grep_private_keys(*directories: Path) -> str:
    found = subprocess.run(
        ["grep", "-r", f"--exclude-dir={INTERNAL_TLS_DIR}", PRIVATE_KEY_PATTERN, *map(str, directories)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode in (0, 1), found.stderr  # 1: nothing found; 2: an error
    return found.stdout


def new_node(tmp_path: Path, index: int) -> Node:
    owner = OWNERS[index]
    return Node(
        tmp_path / f"ss{index + 1}",
        owner,
        f"ss{index + 1}",
        ADDRESSES[index],
        owner.subsystem("civil-registry"),
    )


@asynccontextmanager
async def serving(node: Node) -> AsyncIterator[RunningNode]:
    """What ``node serve`` runs, with global configuration downloaded every second."""
    settings = open_home(node.home, env={}, overrides={"globalconf_update_interval_seconds": 1})
    async with run_node(settings, pin=node.pin) as running:
        assert running.admin_url == f"http://{node.address}:4000"
        assert running.ocsp_url == f"http://{node.address}:5577"
        yield running


# -- tests ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_nodes_certified_registered_and_revoked_through_the_cli(
    backend: str, request: pytest.FixtureRequest, trust_service: RunningTrustService, tmp_path: Path
) -> None:
    nodes = [new_node(tmp_path, 0), new_node(tmp_path, 1)]
    async with running_world(tmp_path, trust_service) as world, AsyncExitStack() as stack:
        for node in nodes:
            options = await stack.enter_async_context(node_database(backend, request))
            await init_and_certify(world, node, options)
        running = [await stack.enter_async_context(serving(node)) for node in nodes]
        for node in nodes:
            await register(world, node)

        # Both servers are in global configuration with their auth certificate hashes and subsystems (in
        # each node's copy once it has downloaded the configuration that followed the last approval).
        auth_hashes = {
            n.server_code: bytes.fromhex(certificate(await n.status(), "auth")["certificate"]["sha256"])
            for n in nodes
        }
        for node in nodes:
            await node.wait_for_configuration(lambda shared: all(listed(shared, n) for n in nodes))
            for other in nodes:
                server = listed(node.shared_params(), other)
                assert server is not None
                assert (server.owner, server.address) == (other.owner, other.address)
                assert server.auth_cert_hashes == (auth_hashes[other.server_code],)

        # Both registered, their certificates with OCSP good as the running nodes fetched it.
        for node in nodes:
            status = await node.wait_for(
                "OCSP responses", lambda s: all(c["ocsp_status"] == "good" for c in s["certificates"])
            )
            assert status["server_id"] == f"MN:GOV:{node.owner.member_code}:{node.server_code}"
            assert status["owner_id"] == f"MN:GOV:{node.owner.member_code}"
            assert status["address"] == node.address
            assert status["token"]["state"] == "logged_out"  # the CLI's view: it logged nothing in
            assert certificate(status, "auth")["status"] == "registered"
            assert certificate(status, "sign")["active"] is True
            assert status["global_configuration"]["instance"] == "MN"
            assert status["global_configuration"]["error_code"] is None
            assert status["global_configuration"]["age_seconds"] < WAIT_SECONDS
            assert client_state(status, f"MN:GOV:{node.owner.member_code}:civil-registry") == "registered"

        # A duplicate client is refused before anything is sent; nothing changes.
        first = nodes[0]
        before, requests = await first.status(), await world.requests()
        await refused("node", "client", "add", *first.dir, "MN:GOV:9010001:civil-registry", code="conflict")
        assert await world.requests() == requests
        assert client_state(await first.status(), "MN:GOV:9010001:civil-registry") == "registered"
        assert (await first.status())["clients"] == before["clients"]

        # Services and access rights.
        provider = "SUBSYSTEM:MN/GOV/9010001/civil-registry"
        svc = ("node", "service", "add", *first.dir, "--client", provider)
        rest = (
            await xroad_mn(*svc, "--code", "people", "--rest", "https://civil.internal/api", "--json")
        ).json()
        assert [s["service_code"] for s in rest["services"]] == ["people"]
        spec = tmp_path / "vehicles.yaml"
        spec.write_text(
            'openapi: "3.0.3"\nservers: [{url: "https://transport.internal/v1"}]\n'
            'paths: {"/vehicles/{plate}": {get: {}}}\n'
        )
        openapi = (await xroad_mn(*svc, "--code", "vehicles", "--openapi", str(spec), "--json")).json()
        assert openapi["type"] == "OPENAPI3"
        assert openapi["has_document"] is True
        grant = ("node", "access", "grant", *first.dir)
        peer = "SUBSYSTEM:MN/GOV/9010002/civil-registry"
        granted = (
            await xroad_mn(
                *grant,
                "--service",
                "SERVICE:MN/GOV/9010001/civil-registry/people",
                "--to",
                peer,
                "--to",
                "GLOBALGROUP:MN/security-server-owners",
                "--json",
            )
        ).json()
        assert sorted(r["subject"] for r in granted) == [
            "GLOBALGROUP:MN/security-server-owners",
            "MN:GOV:9010002:civil-registry",
        ]
        endpoint = (
            await xroad_mn(
                *grant,
                "--service",
                "SERVICE:MN/GOV/9010001/civil-registry/vehicles",
                "--to",
                peer,
                "--method",
                "GET",
                "--path",
                "/vehicles/*",
                "--json",
            )
        ).json()
        assert [(r["endpoint"]["method"], r["endpoint"]["path"]) for r in endpoint] == [
            ("GET", "/vehicles/*")
        ]
        # An access right to a service that does not exist: not_found, nothing granted.
        err = await refused(
            *grant,
            "--service",
            "SERVICE:MN/GOV/9010001/civil-registry/nothing",
            "--to",
            peer,
            code="not_found",
        )
        assert "nothing" in err["message"]

        # The CA revokes the first node's auth certificate; after an OCSP refresh the node knows.
        await world.revoke(first.serials["auth"])
        running[0].app[OCSP_REFRESHER_KEY].wake()
        revoked = await first.wait_for(
            "revoked OCSP status", lambda s: certificate(s, "auth")["ocsp_status"] == "revoked"
        )
        assert certificate(revoked, "sign")["ocsp_status"] == "good"
        human = (await xroad_mn("node", "status", *first.dir)).stdout
        assert "OCSP revoked" in human
        assert all(c["ocsp_status"] == "good" for c in (await nodes[1].status())["certificates"])

    # No private key in clear anywhere in the homes.
    assert grep_private_keys(*(n.home for n in nodes), world.registry_home) == ""


async def test_a_node_with_its_keys_in_softhsm(
    softhsm: SoftHsm, trust_service: RunningTrustService, tmp_path: Path
) -> None:
    node = new_node(tmp_path, 0)
    node.pin, node.own_process = softhsm.pin, True
    hsm = Pkcs11Token(softhsm.module, softhsm.label)
    try:
        async with running_world(tmp_path, trust_service) as world:
            options = ["--token-module", str(softhsm.module), "--token-label", softhsm.label]
            await init_and_certify(world, node, options)
            status = await node.status()
            assert status["token"]["type"] == "pkcs11"
            assert status["token"]["key_count"] == 2
            assert not any(token_dir(node.home).iterdir())  # the keys are in the HSM
            async with serving(node):
                await register(world, node)
                await node.wait_for(
                    "OCSP responses", lambda s: all(c["ocsp_status"] == "good" for c in s["certificates"])
                )
        assert grep_private_keys(node.home, world.registry_home) == ""
    finally:
        await asyncio.to_thread(hsm.login, softhsm.pin)
        for key in await asyncio.to_thread(hsm.list_keys):
            await asyncio.to_thread(hsm.delete_key, key.key_id)
        await asyncio.to_thread(hsm.logout)


def _unchanged(status: Any) -> Any:
    """What status shows, but the configuration's age (which grows by itself)."""
    return {**status, "global_configuration": {**status["global_configuration"], "age_seconds": None}}


async def test_bad_input_gets_a_clear_error_and_changes_nothing(
    trust_service: RunningTrustService, tmp_path: Path
) -> None:
    node = new_node(tmp_path, 0)
    async with running_world(tmp_path, trust_service) as world:
        # Anchors that do not lead to this registry's configuration: no home is left behind.
        other_home = ("--dir", str(tmp_path / "other"))
        init = (
            "node",
            "init",
            *other_home,
            "--owner",
            "MEMBER:MN/GOV/9010001",
            "--server-code",
            "ssx",
            "--address",
            "127.0.0.32",
            "--globalconf-ca",
            str(world.tls_cert_file),
        )
        tls_cert = x509.load_pem_x509_certificate(world.tls_cert_file.read_bytes())
        url = f"https://127.0.0.1:{world.registry.settings.public_port}/internalconf"
        unknown, foreign, broken = tmp_path / "unknown.xml", tmp_path / "foreign.xml", tmp_path / "broken.xml"
        unknown.write_bytes(build_anchor("MN", [(url, [tls_cert])], datetime.now(UTC)))
        foreign.write_bytes(build_anchor("EE", [(url, [tls_cert])], datetime.now(UTC)))
        broken.write_bytes(b"<configurationAnchor>")
        err = await refused(*init, "--anchor", str(unknown), code="global_conf_invalid")
        assert "not among the trusted ones" in err["message"]
        await refused(*init, "--anchor", str(foreign), code="invalid_request")
        await refused(*init, "--anchor", str(broken), code="malformed_anchor")
        await refused(*init, "--anchor", str(tmp_path / "missing.xml"), code="io_error")
        # An owner code with '_' (as some agencies' codes have): refused in X-Road's strict mode, read with
        # --no-strict-identifier-checks, then checked against the registry's members like any other.
        lenient = [a if a != "MEMBER:MN/GOV/9010001" else "MEMBER:MN/GOV/90_1" for a in init]
        err = await refused(*lenient, "--anchor", str(world.anchor_file), code="invalid_client_identifier")
        assert "strict_identifier_checks" in err["message"]
        err = await refused(
            *lenient, "--no-strict-identifier-checks", "--anchor", str(world.anchor_file), code="not_found"
        )
        assert "MEMBER:MN/GOV/90_1 is not a member of MN" in err["message"]
        assert not (tmp_path / "other").exists()

        await init_and_certify(world, node, [])
        snapshot, requests = _unchanged(await node.status()), await world.requests()

        async def nothing_changed() -> None:
            assert _unchanged(await node.status()) == snapshot
            assert await world.requests() == requests

        # A wrong PIN.
        err = await refused(
            "node",
            "certs",
            "request",
            *node.dir,
            "--usage",
            "sign",
            "--ca-url",
            trust_service.urls.base,
            code="signer.pin_incorrect",
            pin="wrong",
        )
        assert "PIN" in err["message"]
        await refused("node", "register", *node.dir, code="signer.pin_incorrect", pin="wrong")
        await nothing_changed()

        # A CSR answer that is not a certificate.
        garbage = tmp_path / "answer.pem"
        garbage.write_bytes(
            b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
        )
        await refused("node", "certs", "import", *node.dir, str(garbage), code="incorrect_certificate")
        garbage.write_bytes(b"<html>Service unavailable</html>")
        await refused("node", "certs", "import", *node.dir, str(garbage), code="incorrect_certificate")
        await nothing_changed()

        # A key for a member the node does not host.
        err = await refused(
            "node",
            "certs",
            "request",
            *node.dir,
            "--usage",
            "sign",
            "--member",
            "MN:GOV:9010002",
            "--ca-url",
            trust_service.urls.base,
            code="invalid_request",
        )
        assert "neither the owner nor the member of a client" in err["message"]
        await nothing_changed()

        # A certificate for another member than the one its key was made for.
        csr_file = tmp_path / "sign.csr"
        csr = (
            await xroad_mn(
                "node", "certs", "csr", *node.dir, "--usage", "sign", "--out", str(csr_file), "--json"
            )
        ).json()
        token = SoftwareToken(token_dir(node.home))
        await asyncio.to_thread(token.login, PIN)
        try:
            other_csr = build_csr(token_signer(token, csr["key_id"]), member_subject(OWNERS[1]))
        finally:
            await asyncio.to_thread(token.logout)
        async with world.session.post(
            trust_service.urls.ca,
            params={"profile": "sign"},
            data=other_csr.public_bytes(Encoding.PEM),
            headers={"Content-Type": "application/pkcs10"},
        ) as resp:
            assert resp.status == 201
            (tmp_path / "other-member.pem").write_bytes(await resp.read())
        snapshot = _unchanged(await node.status())
        err = await refused(
            "node",
            "certs",
            "import",
            *node.dir,
            str(tmp_path / "other-member.pem"),
            code="incorrect_certificate",
        )
        assert "9010002" in json.dumps(err)
        await nothing_changed()

        # A client of a server the registry does not know yet: the registry's refusal; not hosted.
        err = await refused(
            "node",
            "client",
            "add",
            *node.dir,
            "MN:GOV:9010001:civil-registry",
            code="client.invalid_security_server",
        )
        await nothing_changed()

        # Malformed identifiers and options: a clear error naming the forms, exit 1 or typer's 2.
        err = await refused(
            "node",
            "access",
            "grant",
            *node.dir,
            "--service",
            "people",
            "--to",
            "x",
            code="invalid_service_identifier",
        )
        assert "SERVICE:" in err["message"]
        bad = await xroad_mn(
            "node", "certs", "request", *node.dir, "--usage", "tls", "--ca-url", "x", expect=2
        )
        assert "auth or sign" in bad.output
        await nothing_changed()

    assert grep_private_keys(node.home, world.registry_home) == ""
