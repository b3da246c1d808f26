"""A node's home directory (``--dir``): where its settings, token, global configuration and database live.

Layout::

    HOME/                 mode 0700
    HOME/node.toml        settings (NodeSettings; ``home`` itself is implied)
    HOME/node.db          the SQLite database, mode 0600 like its -wal and -shm files (unless
                          ``database_url`` names another database)
    HOME/token/           the software token's key store, mode 0700
    HOME/globalconf/      the downloaded, verified global configuration, mode 0700
    HOME/configuration-anchor.xml   the anchor global configuration is downloaded with, mode 0600
    HOME/ocsp/            OCSP responses of the node's own certificates (security_server.ocsp)
    HOME/api-keys.json    admin API keys (xroad_mn.admin.apikeys): SHA-256 of each token, mode 0600
    HOME/audit.log        the admin API's audit log, JSON lines

Example::

    >>> home = create_home(Path("node-home"), {"address": "127.0.0.2", "token": {"type": "software"}})
    ... # doctest: +SKIP
    >>> settings = open_home(home)  # doctest: +SKIP
    >>> settings.database()  # doctest: +SKIP
    'sqlite+aiosqlite:///.../node-home/node.db'
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from security_server.settings import DATABASE_FILE, GLOBALCONF_DIR, SETTINGS_FILE, TOKEN_DIR, NodeSettings
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import (
    PRIVATE_DIRECTORY_MODE,
    PRIVATE_FILE_MODE,
    secure_database_file,
    secure_directory,
    write_private,
)
from xroad_mn.settings import load_settings, render_settings

__all__ = [
    "ANCHOR_FILE",
    "API_KEYS_FILE",
    "AUDIT_LOG_FILE",
    "DIRECTORY_MODE",
    "FILE_MODE",
    "anchor_file",
    "api_keys_file",
    "audit_log_file",
    "create_home",
    "database_file",
    "globalconf_dir",
    "load_node_settings",
    "open_home",
    "secure_database_files",
    "settings_file",
    "token_dir",
]

DIRECTORY_MODE: Final = PRIVATE_DIRECTORY_MODE
FILE_MODE: Final = PRIVATE_FILE_MODE
ANCHOR_FILE: Final = "configuration-anchor.xml"
API_KEYS_FILE: Final = "api-keys.json"
AUDIT_LOG_FILE: Final = "audit.log"


def settings_file(home: Path) -> Path:
    return home / SETTINGS_FILE


def database_file(home: Path) -> Path:
    """The default SQLite database (used unless ``database_url`` is set)."""
    return home / DATABASE_FILE


def token_dir(home: Path) -> Path:
    return home / TOKEN_DIR


def globalconf_dir(home: Path) -> Path:
    return home / GLOBALCONF_DIR


def anchor_file(home: Path) -> Path:
    """The installed configuration anchor (``node init --anchor``)."""
    return home / ANCHOR_FILE


def api_keys_file(home: Path) -> Path:
    return home / API_KEYS_FILE


def audit_log_file(home: Path) -> Path:
    return home / AUDIT_LOG_FILE


def secure_database_files(settings: NodeSettings) -> None:
    """Make sure the default SQLite database exists with mode 0600 and that its -wal, -shm (SQLite gives
    them the database file's mode) and -journal files have it too. Nothing to do for a database URL.

    An existing database is never opened here, only its mode changed: closing any descriptor of a file
    drops every POSIX lock the process holds on it, SQLite's included, and a node whose connections lost
    their locks has its write-ahead log checkpointed and deleted under it by the next process that closes
    the database (a CLI command next to ``node serve``), its later writes lost."""
    if settings.database_url is not None:
        return
    secure_database_file(database_file(settings.home))


def _secure_directories(home: Path) -> None:
    secure_directory(home, what="node home")
    secure_directory(token_dir(home), what="token directory")
    secure_directory(globalconf_dir(home), what="global configuration directory")


def create_home(home: Path, settings: Mapping[str, object]) -> Path:
    """Create the home directory with a ``node.toml`` holding ``settings`` (checked first), the token and
    global configuration directories and, unless ``database_url`` is set, an empty database file.

    A home that already has a ``node.toml`` is refused (``conflict``): a node is initialised once; so is a
    world-writable directory (``invalid_settings``), which is never narrowed.
    """
    checked = load_node_settings(home, env={}, overrides=dict(settings), read_file=False)
    path = settings_file(home)
    if path.exists():
        raise XRoadError(FaultCode.CONFLICT, f"{home} already holds a node ({path.name} exists)")
    _secure_directories(home)
    write_private(path, render_settings(settings, app="node").encode("utf-8"))
    secure_database_files(checked)
    return home


def load_node_settings(
    home: Path,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    read_file: bool = True,
) -> NodeSettings:
    """The settings of the node in ``home``: ``node.toml``, the environment, then ``overrides``."""
    path = settings_file(home)
    if read_file and not path.is_file():
        raise XRoadError(
            FaultCode.INVALID_SETTINGS, f"{home} is no node home (no {path.name}); run `xroad-mn node init`"
        )
    return load_settings(
        NodeSettings,
        app="node",
        path=path if read_file else None,
        env=env,
        overrides={**(overrides or {}), "home": home},
    )


def open_home(
    home: Path, *, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> NodeSettings:
    """Load the node's settings and put its private files back in order: the home, token and global
    configuration directories 0700 (created when missing), the database files 0600."""
    settings = load_node_settings(home, env=env, overrides=overrides)
    _secure_directories(home)
    secure_database_files(settings)
    return settings
