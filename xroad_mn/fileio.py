"""Crash-safe file writes: a file is either its old content or its new content, never half of either.

Every store that keeps state in files (trust directories, downloaded global configuration, generated
configuration, API keys) writes through :func:`write_atomic`::

    >>> from pathlib import Path
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
from pathlib import Path

from xroad_mn.errors import FaultCode, XRoadError

__all__ = ["fsync_directory", "write_atomic"]


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
