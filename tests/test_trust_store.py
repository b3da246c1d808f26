"""The trust directory on disk: issuing and revoking write through, and a damaged directory is refused."""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from trust_services.ca import Profile
from trust_services.pki import member_subject
from trust_services.store import REVOCATION_REASONS, TrustServiceStore, init_trust_dir, parse_reason
from xroad_mn.errors import XRoadError
from xroad_mn.identifiers import MemberId

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("template") / "trust"
    init_trust_dir(directory, instance="MN", now=NOW)
    return directory


@pytest.fixture
def directory(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "trust"))


def sign_csr(code: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        member_subject(MemberId("MN", "GOV", code))
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_issue_revoke_and_reopen(directory: Path) -> None:
    store = TrustServiceStore.open(directory)
    cert = store.issue(sign_csr("100"), Profile.SIGN, now=NOW)
    assert cert.not_valid_before_utc == NOW - timedelta(minutes=5)
    assert store.status_of(cert.serial_number).status is ocsp.OCSPCertStatus.GOOD
    assert store.status_of(store.tsa.serial).status is ocsp.OCSPCertStatus.GOOD
    assert store.status_of(cert.serial_number + 1).status is ocsp.OCSPCertStatus.UNKNOWN
    store.revoke(cert.serial_number, x509.ReasonFlags.cessation_of_operation, now=NOW + timedelta(hours=1))

    reopened = TrustServiceStore.open(directory)
    info = reopened.status_of(cert.serial_number)
    assert info.status is ocsp.OCSPCertStatus.REVOKED
    assert info.revocation_time == NOW + timedelta(hours=1)
    assert info.revocation_reason is x509.ReasonFlags.cessation_of_operation
    assert reopened.certificate(cert.serial_number) == cert
    assert not list(directory.glob(".*.tmp"))
    assert not list((directory / "issued").glob(".*.tmp"))


def test_concurrent_revocations_from_threads_are_all_kept(directory: Path) -> None:
    """Writes from several worker threads at once (a handler cancelled mid-write no longer holds the app's
    lock, so threads can overlap): every revocation reaches ``revocations.json``."""
    store = TrustServiceStore.open(directory)
    certs = [store.issue(sign_csr(str(200 + i)), Profile.SIGN, now=NOW) for i in range(12)]
    start = threading.Barrier(len(certs))

    def revoke(cert: x509.Certificate) -> None:
        start.wait()
        store.revoke(cert.serial_number, x509.ReasonFlags.key_compromise, now=NOW)

    with ThreadPoolExecutor(max_workers=len(certs)) as pool:
        list(pool.map(revoke, certs))
    on_disk = TrustServiceStore.open(directory).revocations
    assert set(on_disk) == {c.serial_number for c in certs}


def test_reason_names_are_rfc_5280() -> None:
    assert parse_reason("keyCompromise") is x509.ReasonFlags.key_compromise
    assert parse_reason("cACompromise") is x509.ReasonFlags.ca_compromise
    assert "removeFromCRL" not in REVOCATION_REASONS
    with pytest.raises(XRoadError):
        parse_reason("key_compromise")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("revocations.json", b"{not json"),
        ("revocations.json", b'{"12": {"revoked_at": "yesterday", "reason": "keyCompromise"}}'),
        ("trust.json", b'{"format": 99, "instance": "MN"}'),
        ("ca.key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        ("tsa.pem", b"not a certificate"),
    ],
)
def test_damaged_directory_is_refused(directory: Path, name: str, content: bytes) -> None:
    (directory / name).write_bytes(content)
    with pytest.raises(XRoadError) as exc:
        TrustServiceStore.open(directory)
    assert exc.value.has_code("invalid_settings")
    assert name in exc.value.message


def test_mismatched_key_is_refused(directory: Path) -> None:
    shutil.copy(directory / "ocsp.key", directory / "tsa.key")
    with pytest.raises(XRoadError, match="is not the key of"):
        TrustServiceStore.open(directory)


def test_missing_file_names_trust_init(tmp_path: Path) -> None:
    with pytest.raises(XRoadError, match="trust init"):
        TrustServiceStore.open(tmp_path)


def test_revocations_file_is_plain_json(directory: Path) -> None:
    store = TrustServiceStore.open(directory)
    cert = store.issue(sign_csr("200"), Profile.SIGN, now=NOW)
    store.revoke(cert.serial_number, x509.ReasonFlags.key_compromise, now=NOW)
    data = json.loads((directory / "revocations.json").read_text())
    assert data == {str(cert.serial_number): {"revoked_at": NOW.isoformat(), "reason": "keyCompromise"}}
