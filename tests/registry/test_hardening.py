"""Findings of a newcomer's and a security review of the registry, each checked through the real CLI
(CliRunner on ``build_app()``) or the real admin API over HTTP: file modes of the home and its secrets,
text and address checks, one identifier form for people, stable anchors, certificate profiles and
duplicate CAs, and unknown member classes."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
from typer.testing import CliRunner

from registry.app import run_registry
from registry.home import load_registry_settings
from xroad_mn.cli import build_app
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
