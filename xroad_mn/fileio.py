"""Crash-safe file writes: a file is either its old content or its new content, never half of either.

Every store that keeps state in files (trust directories, downloaded global configuration, generated
configuration, API keys) writes through :func:`write_atomic`::

    >>> from collections.abc import Iterable, Iterator
from pathlib import Path
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "instance-identifier"
    >>> write_atomic(target, b"MN")
    >>> target.read_bytes()
    b'MN'
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

from xroad_mn.archive import MAX_ARCHIVE_BYTES, WrittenArchive
from xroad_mn.errors import FaultCode, XRoadError

__all__ = ["fsync_directory", "read_archive", "read_archives", "save_archive", "write_atomic"]


def fsync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: some file systems refuse to sync directories)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, make_parents: bool = False) -> None:
    """Write ``data`` to ``path`` through a synced temporary file renamed over it, then sync the directory.

    ``mode`` is applied whatever the umask (keys use ``0o600``). Failures are ``io_error``.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)  # the umask may have narrowed it, and a key's mode must not widen
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot write {path}: {e.strerror or e}") from e
    fsync_directory(path.parent)


def save_archive(directory: Path, archive: WrittenArchive) -> Path:
    """Write a message-log ``archive`` into ``directory`` under its own name, crash-safe."""
    target = directory / archive.filename
    write_atomic(target, archive.data, mode=0o644)
    return target


def read_archive(path: Path) -> bytes:
    """The bytes of a message-log archive file, refusing files larger than ``MAX_ARCHIVE_BYTES``."""
    try:
        size = path.stat().st_size
        if size > MAX_ARCHIVE_BYTES:
            raise XRoadError(
                FaultCode.ARCHIVE_LINKING,
                f"archive {path.name} is larger than {MAX_ARCHIVE_BYTES} bytes",
                details={"archive": path.name},
            )
        return path.read_bytes()
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot read archive {path}: {e}") from e


def read_archives(paths: Iterable[Path]) -> Iterator[tuple[str, bytes]]:
    """``(file name, bytes)`` of each archive, each read only when reached (for ``verify_archive_chain``)."""
    for path in paths:
        yield path.name, read_archive(path)
