"""The registry's home directory (``--dir``) and the roles of its admin API keys.

Layout::

    HOME/registry.toml    settings (RegistrySettings; ``home`` itself is implied)
    HOME/registry.db      the SQLite database (unless ``database_url`` names another)
    HOME/audit.log        the audit log, JSON lines
    HOME/api-keys.json    admin API keys (:mod:`xroad_mn.admin.apikeys`): SHA-256 of each token, never the
                          token, with its roles (:data:`REGISTRY_ROLES`: X-Road's central server roles)

Example::

    >>> from datetime import UTC, datetime
    >>> from xroad_mn.admin import Role, create_api_key
    >>> home = create_home(Path("registry-home"), {"public_port": 8080})  # doctest: +SKIP
    >>> settings = load_registry_settings(home)  # doctest: +SKIP
    >>> created = create_api_key(settings.api_keys_path(), {Role.SYSTEM_ADMINISTRATOR}, datetime.now(UTC))
    ... # doctest: +SKIP

The home holds signing keys (in the database) and API key hashes: it is kept at mode 0700 and its secrets
(the settings file, which may name a database password, the SQLite database with its ``-wal``/``-shm``/
``-journal`` files, and the API keys) at 0600, whatever the umask (:func:`secure_home`,
:func:`secure_database_file`).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from registry.settings import SETTINGS_FILE, RegistrySettings
from xroad_mn.admin import CENTRAL_SERVER_ROLES, Role
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import write_atomic
from xroad_mn.settings import load_settings

__all__ = [
    "ADMIN_ROLES",
    "HOME_MODE",
    "REGISTRY_ROLES",
    "SECRET_MODE",
    "SQLITE_SIDE_FILES",
    "create_home",
    "load_registry_settings",
    "secure_database_file",
    "secure_home",
    "settings_file",
]

HOME_MODE: Final = 0o700
"""The registry home: only its owner may list or enter it."""
SECRET_MODE: Final = 0o600
"""Files holding secrets: the database (signing keys), API keys, the settings file."""
SQLITE_SIDE_FILES: Final = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside a database; they hold its pages, so they are as secret as the database."""

REGISTRY_ROLES: Final = CENTRAL_SERVER_ROLES
"""The roles a registry API key may hold: X-Road's central server roles. Observers only read."""
ADMIN_ROLES: Final = frozenset({Role.REGISTRATION_OFFICER, Role.SECURITY_OFFICER, Role.SYSTEM_ADMINISTRATOR})
"""The roles of the first API key ``registry init`` creates."""


def settings_file(home: Path) -> Path:
    return home / SETTINGS_FILE


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple | frozenset | set):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise XRoadError(FaultCode.INVALID_SETTINGS, f"cannot write {type(value).__name__} to {SETTINGS_FILE}")


def secure_home(home: Path) -> None:
    """Create ``home`` (and its parents) or narrow an existing one to :data:`HOME_MODE`, whatever the umask.

    A world-writable directory (``/tmp``) is refused rather than narrowed: it is shared, never a home.
    """
    try:
        if home.is_dir() and stat.S_IMODE(home.stat().st_mode) & stat.S_IWOTH:
            raise XRoadError(
                FaultCode.INVALID_SETTINGS,
                f"{home} is world-writable: a registry home must be a directory of its own",
            )
        home.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
        if stat.S_IMODE(home.stat().st_mode) != HOME_MODE:
            os.chmod(home, HOME_MODE)
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot secure the registry home {home}: {e.strerror}") from e


def secure_database_file(path: Path) -> None:
    """Create the SQLite database file ``path`` at :data:`SECRET_MODE` before SQLite opens it (SQLite gives
    its ``-wal`` and ``-shm`` files the database file's mode), and narrow the database and its side files
    to that mode when they exist with a wider one.

    An existing database is never opened here, only its mode changed: closing any descriptor of a file
    drops every POSIX lock the process holds on it, SQLite's included, and a registry whose connections
    lost their locks has its write-ahead log checkpointed and deleted under it by the next process that
    closes the database (a CLI command next to ``registry serve``), its later writes lost."""
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
        except FileExistsError:
            pass
        else:
            try:
                os.fchmod(fd, SECRET_MODE)  # the umask may have narrowed it; it must not be wider
            finally:
                os.close(fd)
        if stat.S_IMODE(path.stat().st_mode) != SECRET_MODE:
            os.chmod(path, SECRET_MODE)
        for suffix in SQLITE_SIDE_FILES:
            side = path.with_name(path.name + suffix)
            try:
                if stat.S_IMODE(side.stat().st_mode) != SECRET_MODE:
                    os.chmod(side, SECRET_MODE)
            except FileNotFoundError:
                continue
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot secure the database file {path}: {e.strerror}") from e


def create_home(home: Path, settings: Mapping[str, object]) -> Path:
    """Create the home directory (mode 0700) with a ``registry.toml`` (mode 0600) holding ``settings``
    (checked first).

    A home that already has a ``registry.toml`` is refused (``conflict``): a registry is initialised once.
    """
    load_registry_settings(home, env={}, overrides=dict(settings), read_file=False)
    path = settings_file(home)
    if path.exists():
        raise XRoadError(FaultCode.CONFLICT, f"{home} already holds a registry ({path.name} exists)")
    lines = ["# xroad-mn registry settings; environment overrides: XROAD_MN_REGISTRY__<KEY>"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in sorted(settings.items()) if v is not None]
    secure_home(home)
    write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"), mode=SECRET_MODE)
    return home


def load_registry_settings(
    home: Path,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    read_file: bool = True,
) -> RegistrySettings:
    """The settings of the registry in ``home``: ``registry.toml``, the environment, then ``overrides``."""
    path = settings_file(home)
    if read_file and not path.is_file():
        raise XRoadError(
            FaultCode.INVALID_SETTINGS, f"{home} is no registry home (no {path.name}); run `registry init`"
        )
    return load_settings(
        RegistrySettings,
        app="registry",
        path=path if read_file else None,
        env=env,
        overrides={**(overrides or {}), "home": home},
    )
