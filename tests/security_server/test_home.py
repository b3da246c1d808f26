"""A node's home: created once with private modes, opened with its settings, its SQLite files kept 0600."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from security_server.db import NodeStore, migrate
from security_server.home import (
    create_home,
    database_file,
    globalconf_dir,
    load_node_settings,
    open_home,
    settings_file,
    token_dir,
)
from security_server.operations import open_node_store
from security_server.settings import TokenType
from tests.security_server.conftest import OWNER
from xroad_mn.database import create_engine
from xroad_mn.errors import XRoadError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which files would be created world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("umask_022")
def test_create_home_lays_out_private_directories_and_files(tmp_path: Path) -> None:
    home = tmp_path / "ss1"
    create_home(
        home,
        {
            "address": "127.0.0.2",
            "server_proxy_port": 15500,
            "allowed_federations": "EE,FI",
            "token": {"type": "pkcs11", "module": "/usr/lib/softhsm/libsofthsm2.so", "label": "ss1"},
            "database_schema": None,  # left out
        },
    )
    assert _mode(home) == 0o700
    assert _mode(token_dir(home)) == 0o700
    assert _mode(globalconf_dir(home)) == 0o700
    assert _mode(settings_file(home)) == 0o600
    assert _mode(database_file(home)) == 0o600
    s = load_node_settings(home, env={})
    assert (s.home, s.address, s.server_proxy_port, s.allowed_federations) == (
        home,
        "127.0.0.2",
        15500,
        "EE,FI",
    )
    assert s.token.type is TokenType.PKCS11
    assert s.token.label == "ss1"
    assert s.database_schema is None
    assert "XROAD_MN_NODE__" in settings_file(home).read_text()


def test_a_home_is_created_once_and_only_from_valid_settings(tmp_path: Path) -> None:
    with pytest.raises(XRoadError, match="unknown setting 'pin'"):
        create_home(tmp_path / "bad", {"pin": "1234"})
    assert not (tmp_path / "bad").exists()  # nothing is written before the settings are checked
    create_home(tmp_path / "ss1", {})
    with pytest.raises(XRoadError) as exc:
        create_home(tmp_path / "ss1", {})
    assert exc.value.has_code("conflict")


def test_a_database_url_means_no_database_file(tmp_path: Path) -> None:
    create_home(tmp_path / "ss1", {"database_url": "postgresql+asyncpg://xroad@db/xroad"})
    assert not database_file(tmp_path / "ss1").exists()


def test_open_home_needs_a_home_and_applies_overrides(tmp_path: Path) -> None:
    with pytest.raises(XRoadError, match="no node home") as exc:
        open_home(tmp_path)
    assert exc.value.has_code("invalid_settings")
    create_home(tmp_path / "ss1", {"admin_port": 4100})
    s = open_home(
        tmp_path / "ss1", env={"XROAD_MN_NODE__ADMIN_PORT": "4200"}, overrides={"address": "127.0.0.9"}
    )
    assert (s.admin_port, s.address) == (4200, "127.0.0.9")


@pytest.mark.usefixtures("umask_022")
def test_open_home_puts_private_modes_back(tmp_path: Path) -> None:
    home = create_home(tmp_path / "ss1", {})
    os.chmod(home, 0o755)
    os.chmod(database_file(home), 0o644)
    token_dir(home).rmdir()
    open_home(home, env={})
    assert _mode(home) == 0o700
    assert _mode(database_file(home)) == 0o600
    assert _mode(token_dir(home)) == 0o700


@pytest.mark.usefixtures("umask_022")
async def test_sqlite_write_ahead_log_files_are_private_too(tmp_path: Path) -> None:
    settings = open_home(create_home(tmp_path / "ss1", {}), env={})
    engine = create_engine(settings.database(), **settings.engine_options())
    try:
        await migrate(engine)
        await NodeStore(engine).init_server(OWNER, "ss1")
        side = [database_file(settings.home).with_name(f"node.db{s}") for s in ("-wal", "-shm")]
        assert all(p.exists() for p in side)
        assert [_mode(p) for p in (database_file(settings.home), *side)] == [0o600, 0o600, 0o600]
    finally:
        await engine.dispose()


def test_a_world_writable_directory_is_no_node_home(tmp_path: Path) -> None:
    """A shared directory (``/tmp``) is refused and left as it is, never narrowed to 0700 for a node."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with pytest.raises(XRoadError, match="world-writable") as exc:
        create_home(shared, {})
    assert exc.value.has_code("invalid_settings")
    assert _mode(shared) == 0o1777
    assert not settings_file(shared).exists()


_OTHER_PROCESS = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute(sys.argv[2]).fetchall()
db.close()
print(rows)
"""


async def _in_another_process(path: Path, sql: str) -> str:
    """What another process (a CLI command next to ``node serve``) reads, opening and closing the database."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _OTHER_PROCESS, str(path), sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


async def test_a_running_node_keeps_its_sqlite_locks_while_other_processes_come_and_go(
    tmp_path: Path,
) -> None:
    """The node's open store holds SQLite's POSIX locks on the database file: a process that opens and
    closes the database meanwhile must not take itself for the last user, checkpoint and delete the
    write-ahead log under the node, whose later writes would then be lost to everyone else. Closing any
    descriptor of the file in the node's process (``secure_database_files`` did) drops those locks."""
    settings = open_home(create_home(tmp_path / "ss1", {}), env={})
    db = database_file(settings.home)
    async with open_node_store(settings) as store:
        assert await _in_another_process(db, "SELECT server_code FROM server") == "[]"
        open_home(settings.home, env={})  # what every CLI command and run_node do, on a live database
        await store.init_server(OWNER, "ss1", address="127.0.0.2")
        assert (
            await _in_another_process(db, "SELECT server_code, address FROM server")
            == "[('ss1', '127.0.0.2')]"
        )
        open_home(settings.home, env={})
        await store.set_server_address("127.0.0.3")
        assert await _in_another_process(db, "SELECT address FROM server") == "[('127.0.0.3',)]"
