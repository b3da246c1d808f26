"""Findings of a newcomer's and a security review of the registry, each checked through the real CLI
(CliRunner on ``build_app()``) or the real admin API over HTTP: file modes of the home and its secrets,
text and address checks, one identifier form for people, stable anchors, certificate profiles and
duplicate CAs, and unknown member classes."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner

from registry.app import run_registry
from registry.home import ADMIN_ROLES, load_registry_settings, secure_database_file
from registry.operations import init_registry, open_store
from registry.settings import RegistrySettings
from registry.validation import KNOWN_CERTIFICATE_PROFILES
from tests.registry.conftest import new_token
from trust_services.pki import DevPki
from xroad_mn.admin import create_api_key
from xroad_mn.certs import EJBCA_PROFILE, profile_for
from xroad_mn.cli.main import build_app
from xroad_mn.database import sqlite_url
from xroad_mn.globalconf.anchor import parse_anchor
from xroad_mn.identifiers import MemberId

OWNER = MemberId("MN", "GOV", "1000001")


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.output


def _ok(*args: str) -> str:
    code, out = _invoke(*args)
    assert code == 0, out
    return out


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


# -- 1. file modes ------------------------------------------------------------------------------------


def _assert_private(home: Path) -> list[str]:
    """The home is 0700 and every file in it that holds a secret is 0600; the names of the files checked."""
    assert _mode(home) == 0o700
    secrets = [p for p in home.iterdir() if p.name.startswith(("registry.", "api-keys"))]
    for path in secrets:
        assert _mode(path) == 0o600, path
    return sorted(p.name for p in secrets)


def test_home_and_secrets_are_private_whatever_the_umask(tmp_path: Path) -> None:
    """`registry init` and serving leave the home 0700 and registry.toml, registry.db (with its -wal and
    -shm files while serving) and api-keys.json 0600, under a umask that grants everything; a home made
    with wider modes (an older registry) is narrowed when it is served."""
    home = tmp_path / "home"

    async def serve() -> None:
        settings = load_registry_settings(home, overrides={"admin_port": 0, "public_port": 0})
        async with run_registry(settings) as running, aiohttp.ClientSession() as session:
            async with session.get(running.public_url + "/internalconf") as resp:
                assert resp.status == 200
            names = _assert_private(home)
            assert {"registry.db", "registry.db-wal", "registry.db-shm"} <= set(names)

    with _umask(0):
        _ok("registry", "init", "--dir", str(home), "--instance", "MN")
        assert _assert_private(home) == ["api-keys.json", "registry.db", "registry.toml"]
        os.chmod(home, 0o755)
        os.chmod(home / "registry.db", 0o644)
        asyncio.run(serve())
        _assert_private(home)


def test_a_world_writable_directory_is_no_home(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    code, out = _invoke("registry", "init", "--dir", str(shared), "--instance", "MN")
    assert code == 1
    assert "world-writable" in out
    assert _mode(shared) == 0o1777


# -- the admin API ------------------------------------------------------------------------------------


@dataclass
class Admin:
    """A running registry (as `registry init` leaves it) and an HTTP client with an administrator's key."""

    url: str
    session: aiohttp.ClientSession
    token: str

    async def send(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"X-Road-ApiKey token={self.token}"}
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.session.request(method, self.url + path, data=data, headers=headers) as resp:
            raw = await resp.read()
            return resp.status, json.loads(raw) if raw else None

    async def error(self, method: str, path: str, body: Any = None) -> dict[str, str]:
        """The X-Road REST error of a call the registry refuses as bad input (400)."""
        status, answer = await self.send(method, path, body)
        assert status == 400, answer
        assert set(answer) == {"type", "message", "detail"}
        return dict(answer)


@pytest.fixture
async def admin(database: dict[str, Any], tmp_path: Path) -> AsyncIterator[Admin]:
    settings = RegistrySettings(
        home=tmp_path / "home",
        admin_port=0,
        public_port=0,
        rate_limit_per_second=10_000,
        rate_limit_per_minute=100_000,
        **database,
    )
    now = datetime.now(UTC)
    async with open_store(settings) as store:
        await init_registry(
            store, settings, new_token(settings), instance="MN", owner=OWNER, owner_name="Registry", now=now
        )
    token = create_api_key(settings.api_keys_path(), ADMIN_ROLES, now).token
    async with run_registry(settings) as running, aiohttp.ClientSession() as session:
        yield Admin(running.admin_url + "/api/v1", session, token)


def _q(identifier: str) -> str:
    return quote(identifier, safe="")


# -- 2. names and addresses ---------------------------------------------------------------------------

BAD_ADDRESSES = ["file:///etc/passwd", "http://ss1.example.mn", "ss1.example.mn/x", "ss1:0", "ss1:65536",
                 "user@ss1", "ss1 example", "10.0.0.999", "[10.0.0.1]:80", ""]  # fmt: skip
BAD_NAMES = ["Ministry\u202eevil", "a\u2066b\u2069", "left\u200emark", "two\r\nlines", "tab\there", "nul\x00"]
CYRILLIC = "Улсын бүртгэлийн ерөнхий газар"


async def test_api_refuses_bad_addresses_and_names(admin: Admin) -> None:
    """Security server addresses are host[:port]; names carry no control or bidi characters; Cyrillic is
    fine. Refusals are 400 in X-Road's REST error format and change nothing."""
    status, member = await admin.send("POST", "/members", {"member_class": "GOV", "member_code": "9010001",
                                                           "name": CYRILLIC})  # fmt: skip
    assert status == 201, member
    assert member["name"] == CYRILLIC
    for address in BAD_ADDRESSES:
        body = {"owner_id": "MN:GOV:9010001", "server_code": "ss1", "address": address}
        error = await admin.error("POST", "/security-servers", body)
        assert error["type"] == "client.invalid_request"
        assert "host[:port]" in error["message"]
    for address in ("ss1.example.mn", "ss1.example.mn:5500", "10.0.0.7", "[2001:db8::7]:5500"):
        body = {"owner_id": "MN:GOV:9010001", "server_code": f"ss{len(address)}", "address": address}
        status, server = await admin.send("POST", "/security-servers", body)
        assert status == 201, server
        assert server["address"] == address
    error = await admin.error("PATCH", "/security-servers/MN:GOV:9010001:ss14", {"address": "file:///x"})
    assert "host[:port]" in error["message"]
    for name in BAD_NAMES:
        body = {"member_class": "GOV", "member_code": "9010002", "name": name}
        error = await admin.error("POST", "/members", body)
        assert error["type"] == "client.invalid_request"
        await admin.error("PATCH", "/members/MN:GOV:9010001", {"name": name})
        await admin.error("POST", "/members/MN:GOV:9010001/subsystems", {"subsystem_code": "x", "name": name})
    status, members = await admin.send("GET", "/members")
    assert [
        (m["member_id"], m["name"], m["subsystems"]) for m in members if m["member_code"] == "9010001"
    ] == [("MN:GOV:9010001", CYRILLIC, [])]


def test_cli_refuses_bad_names(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    _ok("registry", "init", "--dir", home, "--instance", "MN")
    for name in BAD_NAMES:
        code, out = _invoke("registry", "member", "add", "--dir", home, "--class", "GOV", "--code", "1",
                            "--name", name)  # fmt: skip
        assert code == 1, out
        assert "invalid_request" in out
    out = _ok("registry", "member", "add", "--dir", home, "--class", "GOV", "--code", "1", "--name", CYRILLIC)
    assert CYRILLIC in out


# -- 6. member classes --------------------------------------------------------------------------------


async def test_api_unknown_member_class_is_bad_input_naming_the_valid_ones(admin: Admin) -> None:
    error = await admin.error("POST", "/members", {"member_class": "NOPE", "member_code": "1", "name": "x"})
    assert error["type"] == "client.invalid_request"
    assert "NOPE" in error["message"]
    assert "COM, GOV, NGO, PRIVATE" in error["message"]


def test_cli_unknown_member_class_names_the_valid_ones(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    _ok("registry", "init", "--dir", home, "--instance", "MN")
    code, out = _invoke("registry", "member", "add", "--dir", home, "--class", "NOPE", "--code", "1",
                        "--name", "x")  # fmt: skip
    assert code == 1
    assert "COM, GOV, NGO, PRIVATE" in " ".join(out.split())


# -- 5. certificate profiles and duplicate CAs --------------------------------------------------------


def test_known_profiles_are_what_the_core_maps() -> None:
    for name in KNOWN_CERTIFICATE_PROFILES:
        assert profile_for(name, "MN").class_name == name


async def test_api_refuses_unknown_profiles_and_duplicate_cas(admin: Admin, pki: DevPki) -> None:
    root = pki.root.certificate.public_bytes(Encoding.PEM).decode()
    for profile in ("foo", "", f" {EJBCA_PROFILE}", "ee.ria.xroad.common.certificateprofile.impl.Nope"):
        body = {"name": "CA", "certificate": root, "certificate_profile_info": profile}
        error = await admin.error("POST", "/certification-services", body)
        assert error["type"] == "client.invalid_request"
        if profile:
            assert EJBCA_PROFILE in error["message"]
    body = {"name": "CA", "certificate": root, "certificate_profile_info": EJBCA_PROFILE}
    status, _ = await admin.send("POST", "/certification-services", body)
    assert status == 201
    status, answer = await admin.send("POST", "/certification-services", {**body, "name": "CA again"})
    assert status == 409
    assert answer["type"] == "client.conflict"
    assert "'CA'" in answer["message"]
    status, cas = await admin.send("GET", "/certification-services")
    assert [ca["name"] for ca in cas] == ["CA"]


def test_cli_refuses_unknown_profiles_and_duplicate_cas(tmp_path: Path, pki: DevPki) -> None:
    home = str(tmp_path / "home")
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root.certificate.public_bytes(Encoding.PEM))
    _ok("registry", "init", "--dir", home, "--instance", "MN")
    code, out = _invoke("registry", "ca", "add", "--dir", home, str(root), "--profile", "foo")
    assert code == 1
    assert "certificate profile 'foo' is unknown" in " ".join(out.split())
    _ok("registry", "ca", "add", "--dir", home, str(root), "--profile", EJBCA_PROFILE)
    code, out = _invoke("registry", "ca", "add", "--dir", home, str(root), "--profile", EJBCA_PROFILE,
                        "--name", "again")  # fmt: skip
    assert code == 1
    assert "already has this CA certificate" in " ".join(out.split())


# -- 3. one identifier form for people ----------------------------------------------------------------


async def test_api_takes_both_identifier_forms_and_shows_the_colon_form(admin: Admin) -> None:
    status, _ = await admin.send("POST", "/members", {"member_class": "GOV", "member_code": "9010001",
                                                      "name": "Registry office"})  # fmt: skip
    assert status == 201
    for member in ("MN:GOV:9010001", "MEMBER:MN/GOV/9010001"):
        status, found = await admin.send("GET", f"/members/{_q(member)}")
        assert status == 200, found
        assert found["member_id"] == "MN:GOV:9010001"
    status, sub = await admin.send("POST", f"/members/{_q('MEMBER:MN/GOV/9010001')}/subsystems",
                                   {"subsystem_code": "SUB"})  # fmt: skip
    assert status == 201, sub
    assert sub["subsystem_id"] == "MN:GOV:9010001:SUB"
    status, sub = await admin.send(
        "PATCH", f"/subsystems/{_q('SUBSYSTEM:MN/GOV/9010001/SUB')}", {"name": "Sub"}
    )
    assert status == 200, sub
    assert sub["subsystem_id"] == "MN:GOV:9010001:SUB"
    body = {"owner_id": "MEMBER:MN/GOV/9010001", "server_code": "SS1", "address": "ss1.example.mn"}
    status, server = await admin.send("POST", "/security-servers", body)
    assert status == 201, server
    assert (server["security_server_id"], server["owner_id"]) == ("MN:GOV:9010001:SS1", "MN:GOV:9010001")
    clients = f"/security-servers/{_q('SERVER:MN/GOV/9010001/SS1')}/clients"
    status, server = await admin.send("POST", clients, {"client_id": "SUBSYSTEM:MN/GOV/9010001/SUB"})
    assert status == 201, server
    status, error = await admin.send("POST", clients, {"client_id": "MN:GOV:9010001:SUB"})  # the same
    assert status == 409
    assert error["message"] == "MN:GOV:9010001:SUB is already a client of MN:GOV:9010001:SS1"
    status, server = await admin.send("GET", f"/security-servers/{_q('MN:GOV:9010001:SS1')}")
    assert server["clients"] == ["MN:GOV:9010001:SUB"]

    bad: list[tuple[str, str, dict[str, str] | None]] = [
        ("GET", f"/members/{_q('MN:GOV')}", None),
        ("GET", f"/members/{_q('SUBSYSTEM:MN/GOV/9010001/SUB')}", None),
        ("POST", "/security-servers", {"owner_id": "GOV/9010001", "server_code": "SS2"}),
    ]
    for method, path, payload in bad:
        error = await admin.error(method, path, payload)
        assert "MN:GOV:9010001 or MEMBER:MN/GOV/9010001" in error["message"], error
    error = await admin.error(
        "POST", f"/security-servers/{_q('MN:GOV:9010001:SS1')}/clients", {"client_id": "x"}
    )
    assert "SUBSYSTEM:MN/GOV/9010001/SUB" in error["message"]
    error = await admin.error("GET", f"/security-servers/{_q('MEMBER:MN/GOV/9010001')}")
    assert "SERVER:MN/GOV/9010001/SS1" in error["message"]


def test_cli_takes_both_identifier_forms_and_shows_the_colon_form(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    _ok("registry", "init", "--dir", home, "--instance", "MN")
    _ok("registry", "member", "add", "--dir", home, "--class", "GOV", "--code", "9010001", "--name", "Office")
    out = _ok(
        "registry", "subsystem", "add", "--dir", home, "--member", "MEMBER:MN/GOV/9010001", "--code", "SUB"
    )
    assert "MN:GOV:9010001:SUB" in out
    out = _ok("registry", "subsystem", "add", "--dir", home, "--member", "MN:GOV:9010001", "--code", "SUB2")
    assert "MN:GOV:9010001:SUB2" in out
    _ok("registry", "group", "add", "--dir", home, "--code", "g", "--description", "Group")
    out = _ok("registry", "group", "add-member", "--dir", home, "--code", "g",
              "--client", "SUBSYSTEM:MN/GOV/9010001/SUB")  # fmt: skip
    assert "MN:GOV:9010001:SUB" in out
    assert "SUBSYSTEM:" not in out
    members = json.loads(_ok("registry", "member", "list", "--dir", home, "--json"))
    (office,) = [m for m in members if m["member_code"] == "9010001"]
    assert [s["subsystem_id"] for s in office["subsystems"]] == ["MN:GOV:9010001:SUB", "MN:GOV:9010001:SUB2"]
    code, out = _invoke(
        "registry", "subsystem", "add", "--dir", home, "--member", "MN/GOV/9010001", "--code", "X"
    )
    assert code == 1
    assert "MN:GOV:9010001 or MEMBER:MN/GOV/9010001" in " ".join(out.split())
    code, out = _invoke("registry", "group", "add-member", "--dir", home, "--code", "g", "--client", "nope")
    assert code == 1
    assert "SUBSYSTEM:MN/GOV/9010001/SUB" in " ".join(out.split())


# -- 4. stable anchors --------------------------------------------------------------------------------


def test_cli_anchor_export_is_stable_until_its_sources_change(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    _ok("registry", "init", "--dir", home, "--instance", "MN", "--public-port", "8080")

    def export(name: str, *options: str) -> tuple[bytes, str]:
        out = _ok("registry", "anchor", "export", "--dir", home, "--out", str(tmp_path / name), *options)
        (hash_line,) = [line for line in out.splitlines() if line.startswith("Hash (SHA-224): ")]
        return (tmp_path / name).read_bytes(), hash_line

    first, second = export("a.xml"), export("b.xml")
    assert first == second
    moved = export("c.xml", "--address", "127.0.0.1:9080")
    assert moved[0] != first[0]
    assert moved[1] != first[1]
    assert b"127.0.0.1:9080" in moved[0]
    assert export("d.xml", "--address", "127.0.0.1:9080") == moved


async def test_api_anchor_is_stable_until_its_signing_keys_change(admin: Admin) -> None:
    _, internal = await admin.send("GET", "/configuration-anchors/internal")
    _, external = await admin.send("GET", "/configuration-anchors/external")
    status, again = await admin.send("GET", "/configuration-anchors/internal")
    assert status == 200
    assert again == internal
    async with admin.session.get(
        admin.url + "/configuration-anchors/internal/download",
        headers={"Authorization": f"X-Road-ApiKey token={admin.token}"},
    ) as resp:
        assert await resp.read() == internal["xml"].encode()
        assert resp.headers["X-Anchor-Hash"] == internal["hash"]
    await asyncio.sleep(0.01)  # generatedAt has milliseconds: a change must show in it
    status, key = await admin.send("POST", "/configuration-signing-keys", {"kind": "internal"})
    assert status == 201, key
    _, rotated = await admin.send("GET", "/configuration-anchors/internal")
    assert rotated["hash"] != internal["hash"]
    before = parse_anchor(internal["xml"].encode()).generated_at
    after = parse_anchor(rotated["xml"].encode()).generated_at
    assert before is not None
    assert after is not None
    assert after > before
    assert (await admin.send("GET", "/configuration-anchors/internal"))[1] == rotated
    assert (await admin.send("GET", "/configuration-anchors/external"))[1] == external


_OTHER_PROCESS = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT code FROM member_classes ORDER BY code").fetchall()
db.close()
print([r[0] for r in rows])
"""


async def _classes_seen_by_another_process(path: Path) -> str:
    """What another process (a CLI command next to ``registry serve``) reads, opening and closing the
    database."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _OTHER_PROCESS, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


async def test_a_running_registry_keeps_its_sqlite_locks_while_other_processes_come_and_go(
    tmp_path: Path,
) -> None:
    """The registry's open store holds SQLite's POSIX locks on the database file; securing the file again
    (every ``open_store`` does) must not drop them by closing a descriptor of it, or the next process that
    closes the database checkpoints and deletes the write-ahead log under the registry, whose later writes
    are then lost to everyone else."""
    settings = RegistrySettings(home=tmp_path / "registry")
    db = tmp_path / "registry" / "registry.db"
    async with open_store(settings) as store:
        assert settings.database() == sqlite_url(db)
        assert await _classes_seen_by_another_process(db) == "[]"
        secure_database_file(db)
        await store.init_instance("MN")
        await store.add_member_class("GOV", "Government")
        assert await _classes_seen_by_another_process(db) == "['GOV']"
        secure_database_file(db)
        await store.add_member_class("COM", "Commercial")
        assert await _classes_seen_by_another_process(db) == "['COM', 'GOV']"
