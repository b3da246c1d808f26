"""The core's layers hold at import time: protocol and evidence modules load no network or server code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

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


WIRE_DEFINITIONS = ("xroad_mn.errors", "xroad_mn.wire.faults")
"""Where ``http_status`` is defined and turned into a response: the only core modules that may name it."""

STORAGE_AND_PROTOCOL_FILES = sorted(
    {
        *(f"{m.replace('.', '/')}.py" for m in PROTOCOL_MODULES if m not in WIRE_DEFINITIONS),
        "xroad_mn/globalconf/trust.py",
        "xroad_mn/settings.py",
        "registry/requests.py",
        "registry/validation.py",
        "trust_services/ca.py",
        "trust_services/ocsp_responder.py",
        "trust_services/store.py",
        "trust_services/tsa.py",
        "security_server/registration.py",
    }
    | {
        str(p.relative_to(REPO_ROOT))
        for d in ("registry/db", "security_server/db", "security_server/certs")
        for p in (REPO_ROOT / d).glob("*.py")
    }
)


@pytest.mark.parametrize("path", STORAGE_AND_PROTOCOL_FILES)
def test_storage_and_protocol_code_names_no_http_status(path: str) -> None:
    """They say what kind of failure it is (``ErrorKind``); only the HTTP layer picks a status."""
    tree = ast.parse((REPO_ROOT / path).read_text(encoding="utf-8"))
    offending = [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.keyword) and node.arg == "http_status")
        or (isinstance(node, ast.Attribute) and node.attr == "http_status")
    ]
    assert offending == []


def test_an_error_kind_decides_status_and_side() -> None:
    from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
    from xroad_mn.wire.faults import as_sent, http_status_of

    for kind, status in [
        (ErrorKind.BAD_INPUT, 400),
        (ErrorKind.DENIED, 403),
        (ErrorKind.NOT_FOUND, 404),
        (ErrorKind.CONFLICT, 409),
        (ErrorKind.INTERNAL, 500),
    ]:
        err = XRoadError(FaultCode.INVALID_REQUEST, "x", kind=kind)
        sent = as_sent(err)
        assert http_status_of(sent) == status
        assert sent.code == ("client." if status < 500 else "server.") + "invalid_request"
        assert sent.kind is kind
