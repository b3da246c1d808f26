"""``xroad-mn trust init``: through the trust sub-app and through the root command."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

from trust_services.cli import app
from trust_services.store import TrustServiceStore
from xroad_mn.cli.main import build_app
from xroad_mn.errors import XRoadError

KEYS = ("ca.key", "ocsp.key", "tsa.key")
CERTS = ("ca.pem", "ocsp.pem", "tsa.pem")


def test_init_writes_ca_ocsp_and_tsa(tmp_path: Path) -> None:
    directory = tmp_path / "trust"
    result = CliRunner().invoke(app, ["init", "--dir", str(directory), "--instance", "MN", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])  # structlog, unconfigured, also prints here
    assert report["files"]["ca"] == str(directory / "ca.pem")
    for name in KEYS:
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    certs = {name: x509.load_pem_x509_certificate((directory / name).read_bytes()) for name in CERTS}
    ca = certs["ca.pem"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for name in ("ocsp.pem", "tsa.pem"):
        certs[name].verify_directly_issued_by(ca)
    tsa_eku = certs["tsa.pem"].extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert tsa_eku.critical
    assert list(tsa_eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    ocsp_eku = certs["ocsp.pem"].extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(ocsp_eku.value) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    store = TrustServiceStore.open(directory)
    assert store.instance == "MN"
    assert store.revocations == {}


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    directory = tmp_path / "trust"
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--dir", str(directory)]).exit_code == 0
    before = (directory / "ca.pem").read_bytes()
    result = runner.invoke(app, ["init", "--dir", str(directory)])
    assert isinstance(result.exception, XRoadError)
    assert result.exception.has_code("conflict")
    assert (directory / "ca.pem").read_bytes() == before

    (directory / "issued" / "5.pem").write_bytes(b"stale")
    result = runner.invoke(app, ["init", "--dir", str(directory), "--force"])
    assert result.exit_code == 0, result.output
    assert (directory / "ca.pem").read_bytes() != before
    assert not (directory / "issued" / "5.pem").exists()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The root command configures logging onto CliRunner's stream, which closes after the test."""
    saved = structlog.get_config()
    root_logger = logging.getLogger()
    handlers, level = list(root_logger.handlers), root_logger.level
    yield
    structlog.configure(**saved)
    root_logger.handlers[:] = handlers
    root_logger.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_root_command_runs_trust_init_and_reports_errors(tmp_path: Path) -> None:
    directory = tmp_path / "trust"
    root = build_app()
    runner = CliRunner()
    result = runner.invoke(root, ["trust", "init", "--dir", str(directory), "--instance", "EE"])
    assert result.exit_code == 0, result.output
    assert "ca.pem" in result.stdout
    assert TrustServiceStore.open(directory).instance == "EE"
    again = runner.invoke(root, ["trust", "init", "--dir", str(directory)])
    assert again.exit_code == 1
    assert "conflict" in again.output


@pytest.mark.parametrize("instance", ["M N", "MN/X", ""])
def test_init_refuses_invalid_instance(tmp_path: Path, instance: str) -> None:
    result = CliRunner().invoke(app, ["init", "--dir", str(tmp_path / "t"), "--instance", instance])
    assert isinstance(result.exception, XRoadError)
    assert not (tmp_path / "t").exists()


def test_serve_refuses_a_directory_that_is_not_a_trust_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--dir", str(tmp_path), "--port", "0"])
    assert isinstance(result.exception, XRoadError)
    assert "trust init" in result.exception.message
