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

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from registry.settings import SETTINGS_FILE, RegistrySettings
from xroad_mn.admin import CENTRAL_SERVER_ROLES, Role
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import (
    PRIVATE_DIRECTORY_MODE,
    PRIVATE_FILE_MODE,
    SQLITE_SIDE_FILES,
    secure_database_file,
    secure_directory,
    write_private,
)
from xroad_mn.settings import load_settings, render_settings

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

HOME_MODE: Final = PRIVATE_DIRECTORY_MODE
"""The registry home: only its owner may list or enter it."""
SECRET_MODE: Final = PRIVATE_FILE_MODE
"""Files holding secrets: the database (signing keys), API keys, the settings file."""

REGISTRY_ROLES: Final = CENTRAL_SERVER_ROLES
"""The roles a registry API key may hold: X-Road's central server roles. Observers only read."""
ADMIN_ROLES: Final = frozenset({Role.REGISTRATION_OFFICER, Role.SECURITY_OFFICER, Role.SYSTEM_ADMINISTRATOR})
"""The roles of the first API key ``registry init`` creates."""


def settings_file(home: Path) -> Path:
    return home / SETTINGS_FILE


def secure_home(home: Path) -> None:
    """Create ``home`` (and its parents) or narrow an existing one to :data:`HOME_MODE`, whatever the umask.

    A world-writable directory (``/tmp``) is refused rather than narrowed: it is shared, never a home.
    """
    secure_directory(home, what="registry home")


def create_home(home: Path, settings: Mapping[str, object]) -> Path:
    """Create the home directory (mode 0700) with a ``registry.toml`` (mode 0600) holding ``settings``
    (checked first).

    A home that already has a ``registry.toml`` is refused (``conflict``): a registry is initialised once.
    """
    load_registry_settings(home, env={}, overrides=dict(settings), read_file=False)
    path = settings_file(home)
    if path.exists():
        raise XRoadError(FaultCode.CONFLICT, f"{home} already holds a registry ({path.name} exists)")
    secure_home(home)
    write_private(path, render_settings(settings, app="registry").encode("utf-8"))
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
