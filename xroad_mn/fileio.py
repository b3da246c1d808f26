"""Crash-safe file writes (a file is either its old content or its new content, never half of either) and
private homes.

Every store that keeps state in files (trust directories, downloaded global configuration, generated
configuration, API keys) writes through :func:`write_atomic`::

    >>> from pathlib import Path
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "instance-identifier"
    >>> write_atomic(target, b"MN")
    >>> target.read_bytes()
    b'MN'

An application's home (the registry's, a node's) holds keys, API key hashes and its database: the
directories are kept at :data:`PRIVATE_DIRECTORY_MODE` (:func:`secure_directory`), its secrets at
:data:`PRIVATE_FILE_MODE` (:func:`write_private`, and :func:`secure_database_file` for a SQLite database and
the files SQLite keeps beside it), whatever the umask::

    >>> home = Path(tempfile.mkdtemp()) / "registry-home"
    >>> secure_directory(home, what="registry home")
    >>> write_private(home / "registry.toml", b"public_port = 8080")
    >>> secure_database_file(home / "registry.db")
    >>> oct(home.stat().st_mode & 0o777), oct((home / "registry.db").stat().st_mode & 0o777)
    ('0o700', '0o600')
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Final

from xroad_mn.archive import MAX_ARCHIVE_BYTES, WrittenArchive
from xroad_mn.errors import FaultCode, XRoadError

__all__ = [
    "PRIVATE_DIRECTORY_MODE",
    "PRIVATE_FILE_MODE",
    "SQLITE_SIDE_FILES",
    "atomic_file",
    "fsync_directory",
    "read_archive",
    "read_archives",
    "save_archive",
    "secure_database_file",
    "secure_directory",
    "write_atomic",
    "write_private",
]

PRIVATE_DIRECTORY_MODE: Final = 0o700
"""A home and its private directories: only their owner may list or enter them."""
PRIVATE_FILE_MODE: Final = 0o600
"""Files holding secrets: databases (keys), API keys, settings (which may name a database password)."""
SQLITE_SIDE_FILES: Final = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside a database; they hold its pages, so they are as secret as the database."""


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


@contextlib.contextmanager
def atomic_file(path: Path, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A file written in the block (incrementally: a large export) that appears at ``path`` only when the
    block ends without error, as :func:`write_atomic` makes it; otherwise nothing is left behind. Failures
    are ``io_error``."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot write {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise XRoadError(FaultCode.IO_ERROR, f"cannot write {path}: {e.strerror or e}") from e
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_directory(path.parent)


def write_private(path: Path, data: bytes) -> None:
    """:func:`write_atomic` of a secret: ``path`` ends up at :data:`PRIVATE_FILE_MODE` whatever the umask."""
    write_atomic(path, data, mode=PRIVATE_FILE_MODE)


def secure_directory(path: Path, *, what: str) -> None:
    """Create ``path`` (and its parents) at :data:`PRIVATE_DIRECTORY_MODE`, or narrow an existing one to it,
    whatever the umask; ``what`` names it in errors (``"registry home"``).

    A world-writable directory (``/tmp``) is refused (``invalid_settings``) rather than narrowed: it is
    shared, never a directory of one application. Other failures are ``io_error``.
    """
    try:
        if path.is_dir() and stat.S_IMODE(path.stat().st_mode) & stat.S_IWOTH:
            raise XRoadError(
                FaultCode.INVALID_SETTINGS,
                f"{path} is world-writable: a {what} must be a directory of its own",
            )
        path.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True, exist_ok=True)
        if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIRECTORY_MODE:
            os.chmod(path, PRIVATE_DIRECTORY_MODE)
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot secure the {what} {path}: {e.strerror}") from e


def secure_database_file(path: Path) -> None:
    """Create the SQLite database file ``path`` at :data:`PRIVATE_FILE_MODE` before SQLite opens it (SQLite
    gives its ``-wal`` and ``-shm`` files the database file's mode), and narrow the database and its
    :data:`SQLITE_SIDE_FILES` to that mode when they exist with a wider one. Failures are ``io_error``.

    An existing database is never opened here, only its mode changed: closing any descriptor of a file
    drops every POSIX lock the process holds on it, SQLite's included, and an app whose connections lost
    their locks has its write-ahead log checkpointed and deleted under it by the next process that closes
    the database (a CLI command next to a serving app), its later writes lost."""
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        except FileExistsError:
            pass
        else:
            try:
                os.fchmod(fd, PRIVATE_FILE_MODE)  # the umask may have narrowed it; it must not be wider
            finally:
                os.close(fd)
        if stat.S_IMODE(path.stat().st_mode) != PRIVATE_FILE_MODE:
            os.chmod(path, PRIVATE_FILE_MODE)
        for suffix in SQLITE_SIDE_FILES:
            side = path.with_name(path.name + suffix)
            try:
                if stat.S_IMODE(side.stat().st_mode) != PRIVATE_FILE_MODE:
                    os.chmod(side, PRIVATE_FILE_MODE)
            except FileNotFoundError:
                continue
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot secure the database file {path}: {e.strerror}") from e


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
