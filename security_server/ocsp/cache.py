"""The OCSP responses of the node's own certificates: in memory, and on disk in the node's home so that a
restarted node serves them at once.

One file per certificate, ``HOME/ocsp/<hex SHA-256 of the certificate>.der``, holding the DER response that
:func:`security_server.ocsp.refresh.refresh_ocsp` verified. Entries are looked up by the certificate's
SHA-1 (the ``cert=`` key of the port 5577 download) or SHA-256 (``cert_hash=``). Each entry says what the
response says — ``good``, ``revoked`` or ``unknown``, with its thisUpdate and nextUpdate — and the last
fetch error, if any. Example::

    >>> cache = OwnOcspCache(ocsp_dir(home))  # doctest: +SKIP
    >>> cache.load([cert])  # after a restart  # doctest: +SKIP
    >>> cache.status(cert).status, cache.response_by_sha1(cert_hash_hex(cert))  # doctest: +SKIP
    ('good', b'0\\x82...')
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Final, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import write_atomic
from xroad_mn.ocsp import MAX_OCSP_RESPONSE_BYTES

__all__ = [
    "OCSP_DIR",
    "OcspState",
    "OcspStatusKind",
    "OwnOcspCache",
    "SingleStatus",
    "ocsp_dir",
    "single_status",
]

OCSP_DIR: Final = "ocsp"
"""The cache directory in the node's home."""
_SUFFIX: Final = ".der"
_FILE_MODE: Final = 0o600
_DIR_MODE: Final = 0o700


def ocsp_dir(home: Path) -> Path:
    """Where the node keeps the OCSP responses of its certificates."""
    return home / OCSP_DIR


class OcspStatusKind(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class OcspState:
    """What the node knows about the OCSP status of one of its certificates."""

    certificate: x509.Certificate
    sha1: str
    """Lower-case hex SHA-1 of the certificate's DER (the 5577 download key)."""
    sha256: str
    status: OcspStatusKind | None
    """``None`` while no verified response is held."""
    this_update: datetime | None = None
    revocation_time: datetime | None = None
    response: bytes | None = None
    """The DER OCSP response held (served on port 5577)."""
    error: str | None = None
    """The last fetch failure, cleared by the next success."""
    fetched_at: datetime | None = None
    next_update: datetime | None = None
    """The held response's nextUpdate (``None`` without a response, or when the responder gives none)."""


class SingleStatus(NamedTuple):
    """What an OCSP response says about one certificate."""

    kind: OcspStatusKind
    this_update: datetime
    revocation_time: datetime | None
    next_update: datetime | None


def single_status(response_der: bytes, cert: x509.Certificate) -> SingleStatus:
    """The status a (successful) OCSP response gives ``cert`` — by serial number — with its thisUpdate,
    revocation time and nextUpdate. ``incorrect_validation_info`` when the response says nothing about it."""
    try:
        response = ocsp.load_der_ocsp_response(response_der)
        if response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
            for single in response.responses:
                if single.serial_number != cert.serial_number:
                    continue
                status = single.certificate_status
                kind = {
                    ocsp.OCSPCertStatus.GOOD: OcspStatusKind.GOOD,
                    ocsp.OCSPCertStatus.REVOKED: OcspStatusKind.REVOKED,
                }.get(status, OcspStatusKind.UNKNOWN)
                revoked = single.revocation_time_utc if kind is OcspStatusKind.REVOKED else None
                return SingleStatus(kind, single.this_update_utc, revoked, single.next_update_utc)
    except ValueError as e:
        raise XRoadError(FaultCode.INCORRECT_VALIDATION_INFO, f"OCSP response cannot be parsed: {e}") from e
    raise XRoadError(
        FaultCode.INCORRECT_VALIDATION_INFO,
        f"OCSP response holds no status for certificate serial {cert.serial_number}",
    )


def _hashes(cert: x509.Certificate) -> tuple[str, str]:
    der = cert.public_bytes(Encoding.DER)
    return hashlib.sha1(der).hexdigest(), hashlib.sha256(der).hexdigest()  # noqa: S324 -- X-Road's key


class OwnOcspCache:
    """The node's OCSP responses by certificate. Thread-safe; one per node, no module state."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._by_sha256: dict[str, OcspState] = {}
        self._sha1_to_sha256: dict[str, str] = {}

    def _path(self, sha256: str) -> Path:
        return self.directory / f"{sha256}{_SUFFIX}"

    def _ensure_dir(self) -> None:
        try:
            self.directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
            os.chmod(self.directory, _DIR_MODE)
        except OSError as e:
            raise XRoadError(FaultCode.IO_ERROR, f"cannot create {self.directory}: {e.strerror}") from e

    def track(self, certs: Iterable[x509.Certificate]) -> None:
        """Make these the certificates the cache is about: new ones start without a status, certificates
        the node no longer holds are forgotten (their files deleted)."""
        wanted: dict[str, x509.Certificate] = {}
        for cert in certs:
            wanted[_hashes(cert)[1]] = cert
        with self._lock:
            for sha256 in list(self._by_sha256):
                if sha256 not in wanted:
                    gone = self._by_sha256.pop(sha256)
                    self._sha1_to_sha256.pop(gone.sha1, None)
                    with contextlib.suppress(OSError):
                        self._path(sha256).unlink(missing_ok=True)
            for sha256, cert in wanted.items():
                if sha256 not in self._by_sha256:
                    sha1 = _hashes(cert)[0]
                    self._by_sha256[sha256] = OcspState(cert, sha1, sha256, None)
                    self._sha1_to_sha256[sha1] = sha256

    def load(self, certs: Iterable[x509.Certificate]) -> None:
        """Track ``certs`` and take their responses from disk (written by :meth:`put` before a restart).
        A file that is unreadable or says nothing about its certificate is ignored: the next refresh
        replaces it."""
        certs = list(certs)
        self.track(certs)
        for cert in certs:
            sha256 = _hashes(cert)[1]
            path = self._path(sha256)
            try:
                if not path.is_file() or path.stat().st_size > MAX_OCSP_RESPONSE_BYTES:
                    continue
                der = path.read_bytes()
                said = single_status(der, cert)
            except (OSError, XRoadError):
                continue
            with self._lock:
                state = self._by_sha256[sha256]
                self._by_sha256[sha256] = replace(
                    state,
                    status=said.kind,
                    this_update=said.this_update,
                    revocation_time=said.revocation_time,
                    response=der,
                    next_update=said.next_update,
                )

    def put(self, cert: x509.Certificate, response_der: bytes, *, fetched_at: datetime) -> OcspState:
        """Hold a verified response for ``cert`` (on disk first, then in memory)."""
        said = single_status(response_der, cert)
        sha1, sha256 = _hashes(cert)
        self._ensure_dir()
        write_atomic(self._path(sha256), response_der, mode=_FILE_MODE)
        state = OcspState(
            cert,
            sha1,
            sha256,
            said.kind,
            said.this_update,
            said.revocation_time,
            response_der,
            error=None,
            fetched_at=fetched_at,
            next_update=said.next_update,
        )
        with self._lock:
            self._by_sha256[sha256] = state
            self._sha1_to_sha256[sha1] = sha256
        return state

    def fail(self, cert: x509.Certificate, error: str) -> OcspState:
        """Note that fetching a response for ``cert`` failed; a response held so far stays."""
        sha1, sha256 = _hashes(cert)
        with self._lock:
            state = self._by_sha256.get(sha256) or OcspState(cert, sha1, sha256, None)
            state = replace(state, error=error)
            self._by_sha256[sha256] = state
            self._sha1_to_sha256[sha1] = sha256
        return state

    def status(self, cert: x509.Certificate) -> OcspState | None:
        with self._lock:
            return self._by_sha256.get(_hashes(cert)[1])

    def states(self) -> tuple[OcspState, ...]:
        """Every tracked certificate's state."""
        with self._lock:
            return tuple(self._by_sha256.values())

    def response_by_sha1(self, sha1_hex: str) -> bytes | None:
        """The response held for the certificate whose SHA-1 is ``sha1_hex`` (any case), if any."""
        with self._lock:
            sha256 = self._sha1_to_sha256.get(sha1_hex.lower())
            state = self._by_sha256.get(sha256) if sha256 is not None else None
        return state.response if state is not None else None

    def response_by_sha256(self, sha256_hex: str) -> bytes | None:
        with self._lock:
            state = self._by_sha256.get(sha256_hex.lower())
        return state.response if state is not None else None
