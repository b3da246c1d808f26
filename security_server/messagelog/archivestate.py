"""The archiver's state file: the last link of every archive chain (X-Road's ``last_archive_digest`` table)
and the archive being written, kept in the node's home and written atomically.

Before an archive file takes its final name, the archiver notes it here as *pending* with the ids of the
records it holds; the records are marked archived only once the file is in place, and the pending note is
cleared only after that. A run that finds a pending note finishes the job (the file is there) or rolls it
back (it is not), so a crash at any point leaves no record both archived and missing from an archive, and
archives none twice. One process archives at a time (:func:`exclusive`).

Example::

    >>> import tempfile
    >>> from pathlib import Path
    >>> from xroad_mn.archive import ArchiveLink
    >>> path = Path(tempfile.mkdtemp()) / STATE_FILE
    >>> state = load_state(path)
    >>> state.links, state.pending
    ({}, None)
    >>> save_state(path, state.with_link("", ArchiveLink("ab" * 64, "mlog-x.zip")))
    >>> load_state(path).links[""].filename
    'mlog-x.zip'
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from xroad_mn.archive import ArchiveLink
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.fileio import PRIVATE_FILE_MODE, write_private

__all__ = [
    "LOCK_FILE",
    "MAX_STATE_BYTES",
    "STATE_FILE",
    "ArchiverState",
    "PendingArchive",
    "exclusive",
    "load_state",
    "save_state",
]

STATE_FILE: Final = "messagelog-archiver.json"
LOCK_FILE: Final = "messagelog-archiver.lock"
STATE_VERSION: Final = 1
MAX_STATE_BYTES: Final = 64 * 1024 * 1024
"""Largest state file read (a pending archive lists at most ``archive_transaction_batch`` record ids)."""


@dataclass(frozen=True)
class PendingArchive:
    """An archive written under a temporary name and about to take (or having taken) its final one."""

    group: str
    """The chain's key (``""`` without grouping)."""
    filename: str
    """The final file name in the archive directory (``.zip`` or ``.zip.gpg``)."""
    temp_name: str
    link: ArchiveLink
    """The chain's new last link once this archive is in place."""
    record_ids: tuple[int, ...]


@dataclass(frozen=True)
class ArchiverState:
    """The last link of every chain by group key, and the pending archive if any."""

    links: Mapping[str, ArchiveLink] = field(default_factory=dict)
    pending: PendingArchive | None = None
    last_round: datetime | None = None
    """When an archiving round last finished, by whichever process ran it (the serving node or
    ``xroad-mn node log archive``): monitoring's archive age."""

    def with_link(self, group: str, link: ArchiveLink) -> ArchiverState:
        return replace(self, links={**self.links, group: link})

    def with_pending(self, pending: PendingArchive | None) -> ArchiverState:
        return replace(self, pending=pending)

    def with_last_round(self, at: datetime) -> ArchiverState:
        return replace(self, last_round=at)


def _broken(path: Path, reason: str) -> XRoadError:
    return XRoadError(
        FaultCode.INTERNAL_ERROR,
        f"the archiver's state file {path} is damaged ({reason}); the chain's last links are lost",
    )


def _link(value: Any) -> ArchiveLink:
    if not isinstance(value, dict) or not isinstance(value.get("digest"), str):
        raise TypeError("a link needs a digest and a file name")
    if not isinstance(value.get("filename"), str):
        raise TypeError("a link needs a digest and a file name")
    return ArchiveLink(value["digest"], value["filename"])


def _pending(value: Any) -> PendingArchive | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("pending is not an object")
    ids = value.get("record_ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise TypeError("pending record ids are not integers")
    names = [value.get(k) for k in ("group", "filename", "temp_name")]
    if not all(isinstance(n, str) for n in names):
        raise TypeError("pending names are not strings")
    for name in names[1:]:
        if not name or "/" in str(name) or str(name).startswith(".."):
            raise ValueError(f"pending file name {name!r} is not a plain file name")
    return PendingArchive(
        str(value["group"]),
        str(value["filename"]),
        str(value["temp_name"]),
        _link(value.get("link")),
        tuple(ids),
    )


def load_state(path: Path) -> ArchiverState:
    """The state in ``path`` (empty when there is no file yet); ``internal_error`` when it is damaged."""
    try:
        if path.stat().st_size > MAX_STATE_BYTES:
            raise _broken(path, f"larger than {MAX_STATE_BYTES} bytes")
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return ArchiverState()
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot read {path}: {e.strerror or e}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _broken(path, f"not JSON: {e}") from e
    try:
        return _parse(data)
    except (TypeError, ValueError) as e:
        raise _broken(path, str(e)) from e


def _parse(data: Any) -> ArchiverState:
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ValueError(f"not a version {STATE_VERSION} state")
    links = data.get("links")
    if not isinstance(links, dict):
        raise TypeError("links is not an object")
    last_round = data.get("last_round")  # absent in files written before it was kept
    if last_round is not None and not isinstance(last_round, str):
        raise TypeError("last_round is not a time")
    return ArchiverState(
        {str(g): _link(v) for g, v in links.items()},
        _pending(data.get("pending")),
        None if last_round is None else datetime.fromisoformat(last_round),
    )


def _dump(state: ArchiverState) -> bytes:
    pending = state.pending
    data = {
        "version": STATE_VERSION,
        "links": {g: {"digest": v.digest, "filename": v.filename} for g, v in sorted(state.links.items())},
        "pending": None
        if pending is None
        else {
            "group": pending.group,
            "filename": pending.filename,
            "temp_name": pending.temp_name,
            "link": {"digest": pending.link.digest, "filename": pending.link.filename},
            "record_ids": list(pending.record_ids),
        },
        "last_round": None if state.last_round is None else state.last_round.isoformat(),
    }
    return json.dumps(data, indent=1).encode("utf-8")


def save_state(path: Path, state: ArchiverState) -> None:
    """Write ``state`` to ``path`` atomically and durably (synced file, renamed, directory synced)."""
    write_private(path, _dump(state))


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the archiver's lock file ``path`` for the block: one archiver per node at a time, across
    processes (the serving node and ``xroad-mn node log archive``). ``conflict`` when another holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot open {path}: {e.strerror or e}") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise XRoadError(
                FaultCode.INTERNAL_ERROR,
                "the message log is being archived by another process; try again when it is done",
                kind=ErrorKind.CONFLICT,
            ) from e
        yield
    finally:
        os.close(fd)
