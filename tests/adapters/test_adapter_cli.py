"""``xroad-mn adapter``: a ready adapter served from its TOML file by the real command, and its OpenAPI
document printed for registration."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import aiohttp
import pytest
from typer.testing import CliRunner

from adapters.demo.services import CONFIGS_DIR
from adapters.ready.config import load_ready_adapter
from xroad_mn.cli.main import build_app

CONFIG = """
title = "Taxpayers"
host = "127.0.0.1"
port = 0

[database]
url = "sqlite+aiosqlite:///{db}"

[[endpoints]]
path = "/taxpayers/{{regnum}}/status"
sql = "SELECT regnum, in_good_standing FROM taxpayers WHERE regnum = :regnum"
columns = ["regnum", "in_good_standing"]
single = true
[endpoints.parameters.regnum]
max_length = 10
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    db = tmp_path / "tax.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE taxpayers (regnum TEXT PRIMARY KEY, in_good_standing BOOLEAN)")
        conn.execute("INSERT INTO taxpayers VALUES ('УБ99112233', 1)")
    path = tmp_path / "tax.toml"
    path.write_text(CONFIG.format(db=db), encoding="utf-8")
    return path


def test_openapi_command_prints_the_document(config: Path) -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.validators import OpenAPIV30SpecValidator

    result = CliRunner().invoke(
        build_app(), ["adapter", "openapi", str(config), "--server-url", "http://10.0.0.5:8091"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    validate(document, cls=OpenAPIV30SpecValidator)
    assert document["servers"] == [{"url": "http://10.0.0.5:8091"}]
    assert list(document["paths"]) == ["/taxpayers/{regnum}/status"]


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "soap.toml"
    path.write_text('kind = "ftp"\ntitle = "x"\n', encoding="utf-8")
    result = CliRunner().invoke(build_app(), ["adapter", "serve", str(path), "--json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)
    assert error["code"] == "invalid_settings"
    assert "'ftp'" in error["message"]


async def test_serve_answers_until_interrupted(config: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xroad_mn", "adapter", "serve", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("Serving sql adapter 'Taxpayers' at http://127.0.0.1:"), line
        base = line.rsplit(" ", 1)[1].strip()
        hint = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        document = f"{base}/openapi.json"
        add = "xroad-mn node service add --dir NODE --client SUBSYSTEM"
        assert hint.strip() == f"OpenAPI {document}  (register it: {add} --openapi {document} --code CODE)"
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{base}/taxpayers/УБ99112233/status", headers={"X-Road-Client": "MN/COM/9011223/kyc"}
            ) as resp,
        ):
            assert resp.status == 200
            assert await resp.json() == {"regnum": "УБ99112233", "in_good_standing": 1}
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()


@pytest.mark.parametrize(
    ("config", "hint"),
    [
        (
            "vehicle-registry",
            "REST service at B  (register it: xroad-mn node service add --dir NODE --client SUBSYSTEM "
            "--rest B --code CODE)",
        ),
        (
            "social-insurance",
            "WSDL B/wsdl  (register it: xroad-mn node service add --dir NODE --client SUBSYSTEM "
            "--wsdl B/wsdl)",
        ),
    ],
)
def test_serve_tells_how_a_node_adds_each_kind(config: str, hint: str) -> None:
    ready = load_ready_adapter(CONFIGS_DIR / f"{config}.toml", env={})
    assert ready.registration_hint("B").strip() == hint


def test_a_soap_adapter_without_namespace_has_no_wsdl_to_register(tmp_path: Path) -> None:
    text = (CONFIGS_DIR / "social-insurance.toml").read_text(encoding="utf-8")
    path = tmp_path / "adapter.toml"
    path.write_text("\n".join(line for line in text.splitlines() if not line.startswith("namespace")))
    hint = load_ready_adapter(path, env={}).registration_hint("B").strip()
    assert hint == "no WSDL: set namespace in the configuration for a WSDL a node can add the services from"
