"""A trust directory on disk: the CA, OCSP and TSA keys and certificates, issued certificates, revocations.

Layout (``xroad-mn trust init --dir DIR``)::

    DIR/trust.json          {"instance": "MN", "format": 1}
    DIR/ca.pem  ca.key      self-signed root CA; it issues members' certificates directly
    DIR/ocsp.pem ocsp.key   delegated OCSP responder (EKU OCSPSigning), issued by the CA
    DIR/tsa.pem tsa.key     time-stamping authority (critical EKU timeStamping), issued by the CA
    DIR/issued/<serial>.pem every certificate issued through the CA
    DIR/revocations.json    {"<serial>": {"revoked_at": "<ISO 8601>", "reason": "keyCompromise"}}

Keys are unencrypted PKCS#8 PEM with mode 0600 — development material only. Every write goes to a
temporary file in the same directory, is flushed to disk and renamed over the target, so a crash leaves
either the old or the new file. ``init --force`` builds the whole new directory beside the old one and
swaps it in (atomically on Linux), so a crash never leaves a directory without its CA key.

Example::

    >>> from datetime import UTC, datetime
    >>> files = init_trust_dir(Path("trust"), instance="MN", now=datetime.now(UTC))  # doctest: +SKIP
    >>> store = TrustServiceStore.open(files.directory)  # doctest: +SKIP
    >>> cert = store.issue(csr_pem, Profile.SIGN, now=datetime.now(UTC))  # doctest: +SKIP
    >>> reason = x509.ReasonFlags.key_compromise
    >>> store.revoke(cert.serial_number, reason, now=datetime.now(UTC))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Final

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trust_services.ca import Profile, issue_from_csr
from trust_services.ocsp_responder import CertStatusInfo, build_ocsp_response
from trust_services.pki import (
    CertifiedKey,
    PrivateKey,
    ca_name,
    generate_rsa_key,
    issue_ocsp_responder,
    issue_tsa,
    random_serial,
    self_signed_ca,
)
from trust_services.tsa import CertificateInclusion, build_timestamp_reply
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.fileio import write_atomic
from xroad_mn.identifiers import validate_part

__all__ = [
    "FORMAT_VERSION",
    "REVOCATION_REASONS",
    "Revocation",
    "TrustFiles",
    "TrustServiceStore",
    "init_trust_dir",
    "parse_reason",
]

log = structlog.get_logger(__name__)

FORMAT_VERSION: Final = 1
CA_VALIDITY: Final = timedelta(days=3650)
SERVICE_VALIDITY: Final = timedelta(days=1825)
MAX_STORE_FILE_BYTES: Final = 16 * 1024 * 1024
"""Largest file the store reads (revocations.json grows by ~80 bytes per revocation)."""

REVOCATION_REASONS: Final[Mapping[str, x509.ReasonFlags]] = MappingProxyType(
    {flag.value: flag for flag in x509.ReasonFlags if flag is not x509.ReasonFlags.remove_from_crl}
)
"""RFC 5280 CRLReason names accepted for a revocation (``removeFromCRL`` only exists in delta CRLs)."""


def parse_reason(name: str) -> x509.ReasonFlags:
    """The RFC 5280 reason named ``name`` (e.g. ``keyCompromise``), or ``bad_request``."""
    reason = REVOCATION_REASONS.get(name)
    if reason is None:
        raise XRoadError(
            FaultCode.BAD_REQUEST,
            f"unknown revocation reason {name!r}; use one of {', '.join(REVOCATION_REASONS)}",
            kind=ErrorKind.BAD_INPUT,
        )
    return reason


@dataclass(frozen=True)
class Revocation:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags


@dataclass(frozen=True)
class TrustFiles:
    """The paths of a trust directory."""

    directory: Path

    @property
    def meta(self) -> Path:
        return self.directory / "trust.json"

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def ocsp_cert(self) -> Path:
        return self.directory / "ocsp.pem"

    @property
    def ocsp_key(self) -> Path:
        return self.directory / "ocsp.key"

    @property
    def tsa_cert(self) -> Path:
        return self.directory / "tsa.pem"

    @property
    def tsa_key(self) -> Path:
        return self.directory / "tsa.key"

    @property
    def issued(self) -> Path:
        return self.directory / "issued"

    @property
    def revocations(self) -> Path:
        return self.directory / "revocations.json"

    def issued_cert(self, serial: int) -> Path:
        return self.issued / f"{serial}.pem"

    def owned_files(self) -> tuple[Path, ...]:
        return (
            self.meta,
            self.ca_cert,
            self.ca_key,
            self.ocsp_cert,
            self.ocsp_key,
            self.tsa_cert,
            self.tsa_key,
            self.revocations,
        )


def _io_error(message: str, e: OSError) -> XRoadError:
    return XRoadError(FaultCode.IO_ERROR, f"{message}: {e.strerror or e}")


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_STORE_FILE_BYTES + 1)
    except FileNotFoundError as e:
        raise XRoadError(
            FaultCode.INVALID_SETTINGS,
            f"{path} is missing: {path.parent} is not a trust directory (run `xroad-mn trust init`)",
        ) from e
    except OSError as e:
        raise _io_error(f"cannot read {path}", e) from e
    if len(data) > MAX_STORE_FILE_BYTES:
        raise XRoadError(FaultCode.INVALID_SETTINGS, f"{path} is larger than {MAX_STORE_FILE_BYTES} bytes")
    return data


def _check_instance(instance: str) -> None:
    validate_part("instance", instance, strict=True)


def _write_certified(cert_path: Path, key_path: Path, certified: CertifiedKey) -> None:
    write_atomic(key_path, certified.private_key_pem(), mode=0o600)
    write_atomic(cert_path, certified.certificate_pem())


def _fsync_dir(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _swap_in(staging: Path, directory: Path) -> Path:
    """Put ``staging`` at ``directory``; the replaced directory ends up at the returned path.

    Two renames: the old directory is moved aside first, so a crash between them leaves the complete
    old directory beside the target (``.NAME.old-*``), never a half-written one at it.
    """
    aside = directory.with_name(f".{directory.name}.old-{secrets.token_hex(6)}")
    os.rename(directory, aside)
    os.rename(staging, directory)
    return aside


def _write_trust_files(
    files: TrustFiles, instance: str, ca: CertifiedKey, ocsp: CertifiedKey, tsa: CertifiedKey
) -> None:
    files.issued.mkdir()
    _write_certified(files.ca_cert, files.ca_key, ca)
    _write_certified(files.ocsp_cert, files.ocsp_key, ocsp)
    _write_certified(files.tsa_cert, files.tsa_key, tsa)
    write_atomic(files.revocations, b"{}\n")
    write_atomic(
        files.meta, json.dumps({"instance": instance, "format": FORMAT_VERSION}, indent=2).encode() + b"\n"
    )


def _replace_by_swap(
    target: Path, instance: str, ca: CertifiedKey, ocsp: CertifiedKey, tsa: CertifiedKey, *, existing: bool
) -> None:
    staging = target.with_name(f".{target.name}.init-{secrets.token_hex(6)}")
    staging.mkdir(mode=0o700)
    try:
        _write_trust_files(TrustFiles(staging), instance, ca, ocsp, tsa)
        if existing:
            os.chmod(staging, stat.S_IMODE(target.stat().st_mode))
        _fsync_dir(staging)
        if existing:
            old = _swap_in(staging, target)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(target.parent)
    if existing:
        _carry_over(old, TrustFiles(target))
        shutil.rmtree(old)


def _replace_in_place(
    files: TrustFiles, instance: str, ca: CertifiedKey, ocsp: CertifiedKey, tsa: CertifiedKey
) -> None:
    """Replace the trust files one by one (each atomically), then drop the old CA's issued certificates.

    For a directory that cannot be swapped (a mount point, the working directory). A crash midway
    leaves a mix of old and new files — every one complete, the CA key always present — which
    :meth:`TrustServiceStore.open` refuses (a key that does not match its certificate) until ``init --force``
    runs again.
    """
    files.issued.mkdir(exist_ok=True)
    _write_certified(files.ca_cert, files.ca_key, ca)
    _write_certified(files.ocsp_cert, files.ocsp_key, ocsp)
    _write_certified(files.tsa_cert, files.tsa_key, tsa)
    write_atomic(files.revocations, b"{}\n")
    write_atomic(
        files.meta, json.dumps({"instance": instance, "format": FORMAT_VERSION}, indent=2).encode() + b"\n"
    )
    for cert in files.issued.glob("*.pem"):
        cert.unlink()


def _carry_over(old: Path, new: TrustFiles) -> None:
    """Move what is not ours (anything but the trust files and ``issued/``) from ``old`` into ``new``."""
    ours = {p.name for p in new.owned_files()} | {new.issued.name}
    for entry in old.iterdir():
        if entry.name not in ours and not entry.name.endswith(".tmp"):
            os.rename(entry, new.directory / entry.name)


def init_trust_dir(
    directory: Path, *, instance: str = "MN", now: datetime, force: bool = False
) -> TrustFiles:
    """Create a CA, an OCSP responder and a TSA in ``directory``.

    Refuses a directory that exists and is not empty unless ``force``; with ``force`` the trust files
    (and every issued certificate and revocation, which the new CA does not vouch for) are replaced, and
    other files in the directory are kept.

    Steps: generate the keys and certificates in memory; write the complete new directory beside the
    target (``.NAME.init-*``, every file flushed to disk); then move it into place — a rename when there
    is nothing to replace, an atomic swap with the old directory otherwise — and only then delete the
    old one. A crash at any point leaves ``directory`` either as it was or complete and new: never
    without a CA key. An existing empty directory is written in place (there is nothing to lose), and so
    is one that cannot be renamed (a mount point, the working directory): see :func:`_replace_in_place`.
    A new directory gets mode 0700.
    """
    _check_instance(instance)
    files = TrustFiles(directory)
    try:
        existing = directory.exists()
        if existing:
            if not directory.is_dir():
                raise XRoadError(FaultCode.CONFLICT, f"{directory} exists and is not a directory")
            if any(directory.iterdir()) and not force:
                raise XRoadError(
                    FaultCode.CONFLICT,
                    f"{directory} already exists and is not empty; use --force to replace it",
                )
        else:
            directory.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _io_error(f"cannot prepare {directory}", e) from e

    # 1. Generate in memory.
    ca = self_signed_ca(
        ca_name(f"{instance} xroad-mn development CA"),
        generate_rsa_key(),
        not_before=now - timedelta(days=1),
        not_after=now + CA_VALIDITY,
    )
    service = {"not_before": now - timedelta(days=1), "not_after": now + SERVICE_VALIDITY}
    ocsp = issue_ocsp_responder(
        ca, ca_name(f"{instance} xroad-mn development OCSP responder"), generate_rsa_key(), **service
    )
    tsa = issue_tsa(ca, ca_name(f"{instance} xroad-mn development TSA"), generate_rsa_key(), **service)

    # 2. Write the new directory beside the target and move it into place (or write in place).
    target = directory.resolve() if existing else directory.absolute()  # swap a symlink's target
    try:
        if existing and not any(directory.iterdir()):
            _write_trust_files(files, instance, ca, ocsp, tsa)  # nothing there to lose
        elif existing and (os.path.ismount(target) or Path.cwd().resolve().is_relative_to(target)):
            _replace_in_place(files, instance, ca, ocsp, tsa)  # a directory that cannot be renamed
        else:
            _replace_by_swap(target, instance, ca, ocsp, tsa, existing=existing)
    except OSError as e:
        raise _io_error(f"cannot create the trust directory {directory}", e) from e
    log.info("trust_dir_created", directory=str(directory), instance=instance, replaced=existing)
    return files


def _load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_read(path))
    except ValueError as e:
        raise XRoadError(FaultCode.INVALID_SETTINGS, f"{path} is not a PEM certificate: {e}") from e


def _load_key(path: Path) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as e:
        raise XRoadError(
            FaultCode.INVALID_SETTINGS, f"{path} is not an unencrypted PEM private key: {e}"
        ) from e
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise XRoadError(
            FaultCode.INVALID_SETTINGS, f"{path} holds a {type(key).__name__}; RSA or EC is needed"
        )
    return key


def _load_certified(cert_path: Path, key_path: Path, chain: tuple[x509.Certificate, ...]) -> CertifiedKey:
    cert = _load_certificate(cert_path)
    key = _load_key(key_path)
    if cert.public_key() != key.public_key():
        raise XRoadError(FaultCode.INVALID_SETTINGS, f"{key_path} is not the key of {cert_path}")
    return CertifiedKey(cert, key, chain)


def _load_revocations(path: Path) -> dict[int, Revocation]:
    try:
        raw = json.loads(_read(path))
        out: dict[int, Revocation] = {}
        for key, entry in dict(raw).items():
            serial = int(key)
            out[serial] = Revocation(
                serial, datetime.fromisoformat(entry["revoked_at"]), x509.ReasonFlags(entry["reason"])
            )
    except (ValueError, TypeError, KeyError) as e:
        raise XRoadError(FaultCode.INVALID_SETTINGS, f"{path} is not a valid revocation list: {e}") from e
    return out


def _dump_revocations(revocations: Mapping[int, Revocation]) -> bytes:
    data = {
        str(r.serial): {"revoked_at": r.revoked_at.isoformat(), "reason": r.reason.value}
        for r in sorted(revocations.values(), key=lambda r: r.serial)
    }
    return json.dumps(data, indent=2).encode() + b"\n"


class TrustServiceStore:
    """An opened trust directory: the services' keys, and the CA's issued and revoked certificates.

    Mutating methods write through to disk before they return and are serialised by a lock of the store's
    own, so they are safe from worker threads: a caller cancelled while its write runs in a thread cannot let
    the next write overlap it. Lookups are safe at any time.
    """

    def __init__(
        self,
        files: TrustFiles,
        *,
        instance: str,
        ca: CertifiedKey,
        ocsp: CertifiedKey,
        tsa: CertifiedKey,
        issued: Mapping[int, x509.Certificate],
        revocations: Mapping[int, Revocation],
    ) -> None:
        self.files = files
        self.instance = instance
        self.ca = ca
        self.ocsp = ocsp
        self.tsa = tsa
        self._issued = dict(issued)
        self._revocations = dict(revocations)
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, directory: Path) -> TrustServiceStore:
        """Load a trust directory made by :func:`init_trust_dir`."""
        files = TrustFiles(directory)
        try:
            meta = dict(json.loads(_read(files.meta)))
            instance = meta["instance"]
        except (ValueError, TypeError, KeyError) as e:
            raise XRoadError(FaultCode.INVALID_SETTINGS, f"{files.meta} is not valid: {e}") from e
        if meta.get("format") != FORMAT_VERSION or not isinstance(instance, str):
            raise XRoadError(
                FaultCode.INVALID_SETTINGS, f"{files.meta}: unsupported format {meta.get('format')!r}"
            )
        ca = _load_certified(files.ca_cert, files.ca_key, ())
        ocsp = _load_certified(files.ocsp_cert, files.ocsp_key, ())
        tsa = _load_certified(files.tsa_cert, files.tsa_key, ())
        issued: dict[int, x509.Certificate] = {}
        try:
            paths = sorted(files.issued.glob("*.pem")) if files.issued.is_dir() else []
        except OSError as e:
            raise _io_error(f"cannot list {files.issued}", e) from e
        for path in paths:
            cert = _load_certificate(path)
            issued[cert.serial_number] = cert
        revocations = _load_revocations(files.revocations) if files.revocations.exists() else {}
        return cls(
            files, instance=instance, ca=ca, ocsp=ocsp, tsa=tsa, issued=issued, revocations=revocations
        )

    @property
    def revocations(self) -> Mapping[int, Revocation]:
        return MappingProxyType(self._revocations)

    def _service_serials(self) -> set[int]:
        return {self.ocsp.serial, self.tsa.serial}

    def _new_serial(self) -> int:
        taken = self._issued.keys() | self._service_serials() | {self.ca.serial}
        while True:
            serial = random_serial()
            if serial not in taken:
                return serial

    def certificate(self, serial: int) -> x509.Certificate:
        """An issued certificate by serial number, or ``not_found`` (HTTP 404)."""
        cert = self._issued.get(serial)
        if cert is None:
            raise XRoadError(
                FaultCode.NOT_FOUND,
                f"no certificate with serial {serial} was issued",
                kind=ErrorKind.NOT_FOUND,
            )
        return cert

    def issue(self, csr: bytes, profile: Profile, *, now: datetime) -> x509.Certificate:
        """Issue a ``profile`` certificate for a PKCS#10 request and record it in ``issued/``."""
        with self._write_lock:
            return self._issue(csr, profile, now=now)

    def _issue(self, csr: bytes, profile: Profile, *, now: datetime) -> x509.Certificate:
        cert = issue_from_csr(
            csr, profile, ca=self.ca, instance=self.instance, now=now, serial=self._new_serial()
        )
        write_atomic(
            self.files.issued_cert(cert.serial_number), cert.public_bytes(serialization.Encoding.PEM)
        )
        self._issued[cert.serial_number] = cert
        log.info(
            "certificate_issued",
            serial=cert.serial_number,
            profile=profile.value,
            subject=cert.subject.rfc4514_string(),
        )
        return cert

    def revoke(self, serial: int, reason: x509.ReasonFlags, *, now: datetime) -> Revocation:
        """Revoke an issued certificate; ``not_found`` if unknown, ``conflict`` if already revoked."""
        with self._write_lock:
            return self._revoke(serial, reason, now=now)

    def _revoke(self, serial: int, reason: x509.ReasonFlags, *, now: datetime) -> Revocation:
        self.certificate(serial)
        if serial in self._revocations:
            raise XRoadError(
                FaultCode.CONFLICT, f"certificate {serial} is already revoked", kind=ErrorKind.CONFLICT
            )
        revocation = Revocation(serial, now, reason)
        updated = {**self._revocations, serial: revocation}
        write_atomic(self.files.revocations, _dump_revocations(updated))
        self._revocations = updated
        log.info("certificate_revoked", serial=serial, reason=reason.value)
        return revocation

    def status_of(self, serial: int) -> CertStatusInfo:
        """OCSP status of a serial under this CA: revoked, good (issued) or unknown."""
        revocation = self._revocations.get(serial)
        if revocation is not None:
            return CertStatusInfo.revoked(revocation.revoked_at, revocation.reason)
        if serial in self._issued or serial in self._service_serials():
            return CertStatusInfo.good()
        return CertStatusInfo.unknown()

    def ocsp_response(self, request_der: bytes, *, now: datetime) -> bytes:
        return build_ocsp_response(
            request_der, issuer=self.ca, responder=self.ocsp, status_of=self.status_of, now=now
        )

    def timestamp_reply(
        self, query_der: bytes, *, now: datetime, include_certificate: CertificateInclusion = "always"
    ) -> bytes:
        """An RFC 3161 reply by this directory's TSA; the certificate is in every token by default."""
        return build_timestamp_reply(
            query_der,
            tsa=self.tsa,
            serial=random_serial(),
            now=now,
            include_certificate=include_certificate,
        )
