"""The core's layers hold at import time: protocol and evidence modules load no network or server code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROTOCOL_MODULES = [
    "xroad_mn.errors",
    "xroad_mn.identifiers",
    "xroad_mn.mime",
    "xroad_mn.xmlsafe",
    "xroad_mn.keys",
    "xroad_mn.wire.faults",
    "xroad_mn.xades",
    "xroad_mn.hashchain",
    "xroad_mn.certs",
    "xroad_mn.globalconf.anchor",
    "xroad_mn.globalconf.directory",
    "xroad_mn.globalconf.params",
    "xroad_mn.globalconf.trust",
    "xroad_mn.ocsp",
    "xroad_mn.validation",
    "xroad_mn.signature",
    "xroad_mn.timestamp",
    "xroad_mn.asic",
    "xroad_mn.archive",
    "xroad_mn.management",
]
"""Sans-I/O modules: bytes in, objects out."""

FORBIDDEN_PREFIXES = ("aiohttp", "sqlalchemy", "typer", "registry", "trust_services", "security_server")


def _loaded_after_import(module: str) -> list[str]:
    # A fresh interpreter: this test process has long loaded aiohttp through other tests.
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded: list[str] = json.loads(out)
    return loaded


@pytest.mark.parametrize("module", PROTOCOL_MODULES)
def test_protocol_module_imports_no_network_server_or_application_code(module: str) -> None:
    loaded = _loaded_after_import(module)
    offending = [m for m in loaded if m.split(".")[0] in FORBIDDEN_PREFIXES]
    assert offending == []


def test_signature_imports_no_aiohttp() -> None:
    assert "aiohttp" not in _loaded_after_import("xroad_mn.signature")


def test_errors_carry_no_xml_library() -> None:
    assert not any(m.split(".")[0] == "lxml" for m in _loaded_after_import("xroad_mn.errors"))
