"""The registry's home directory (``--dir``) and its admin API keys.

Layout::

    HOME/registry.toml    settings (RegistrySettings; ``home`` itself is implied)
    HOME/registry.db      the SQLite database (unless ``database_url`` names another)
    HOME/audit.log        the audit log, JSON lines
    HOME/api-keys.json    admin API keys: SHA-256 of each token, never the token, with its roles

Example::

    >>> from datetime import UTC, datetime
    >>> home = create_home(Path("registry-home"), {"public_port": 8080})  # doctest: +SKIP
    >>> settings = load_registry_settings(home)  # doctest: +SKIP
    >>> created = create_api_key(settings.api_keys_path(), {Role.SYSTEM_ADMINISTRATOR}, datetime.now(UTC))
    ... # doctest: +SKIP
    >>> (await ApiKeyRing(settings.api_keys_path()).authenticate(created.token)).roles  # doctest: +SKIP
    frozenset({<Role.SYSTEM_ADMINISTRATOR: 'system-administrator'>})
    >>> revoke_api_key(settings.api_keys_path(), created.key.key_id)  # doctest: +SKIP

An API key is shown once, when it is created (as X-Road does); the file keeps only its hash. Tokens are
compared in constant time. A running registry checks the file for changes on every request (off the event
loop) and keeps the keys it verified in a bounded cache that any change of the file empties, so a revoked
key stops working at its next request.

The home holds signing keys (in the database) and API key hashes: it is kept at mode 0700 and its secrets
(the settings file, which may name a database password, the SQLite database with its ``-wal``/``-shm``/
``-journal`` files, and the API keys) at 0600, whatever the umask (:func:`secure_home`,
:func:`secure_database_file`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from registry.settings import SETTINGS_FILE, RegistrySettings
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import write_atomic
from xroad_mn.settings import load_settings

__all__ = [
    "ADMIN_ROLES",
    "HOME_MODE",
    "MAX_API_KEYS_FILE_BYTES",
    "SECRET_MODE",
    "SQLITE_SIDE_FILES",
    "ApiKey",
    "ApiKeyRing",
    "CreatedApiKey",
    "Role",
    "create_api_key",
    "create_home",
    "find_api_key",
    "hash_token",
    "load_registry_settings",
    "parse_api_keys",
    "render_api_keys",
    "revoke_api_key",
    "secure_database_file",
    "secure_home",
    "settings_file",
]

MAX_API_KEYS_FILE_BYTES: Final = 4 * 1024 * 1024
TOKEN_BYTES: Final = 32
"""Random bytes in a new API key (base64url: 43 characters)."""
MAX_TOKEN_CHARS: Final = 512
MAX_CACHED_API_KEYS: Final = 1024
"""Verified tokens an :class:`ApiKeyRing` remembers (least recently used first out)."""
HOME_MODE: Final = 0o700
"""The registry home: only its owner may list or enter it."""
SECRET_MODE: Final = 0o600
"""Files holding secrets: the database (signing keys), API keys, the settings file."""
SQLITE_SIDE_FILES: Final = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside a database; they hold its pages, so they are as secret as the database."""


class Role(StrEnum):
    """X-Road central server roles. Observers may only read."""

    REGISTRATION_OFFICER = "registration-officer"
    SECURITY_OFFICER = "security-officer"
    SYSTEM_ADMINISTRATOR = "system-administrator"
    OBSERVER = "observer"


ADMIN_ROLES: Final = frozenset({Role.REGISTRATION_OFFICER, Role.SECURITY_OFFICER, Role.SYSTEM_ADMINISTRATOR})
"""The roles of the first API key ``registry init`` creates."""


@dataclass(frozen=True)
class ApiKey:
    """One stored API key: its id (shown in the audit log), the token's SHA-256 and its roles."""

    key_id: str
    token_hash: str
    roles: frozenset[Role]
    created_at: datetime


@dataclass(frozen=True)
class CreatedApiKey:
    """A new API key and its token, which exists only here."""

    key: ApiKey
    token: str


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
    to that mode when they exist with a wider one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, SECRET_MODE)
        try:
            os.fchmod(fd, SECRET_MODE)  # the umask may have narrowed it; it must not be wider
        finally:
            os.close(fd)
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


# -- API keys ---------------------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256, lower-case hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _sha256_hex(value: object) -> str:
    text = str(value)
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError("token_sha256 is not a SHA-256 hex digest")
    return text


def parse_api_keys(data: bytes) -> tuple[ApiKey, ...]:
    """Read ``api-keys.json`` (``{"keys": [{"id", "token_sha256", "roles", "created_at"}]}``)."""
    if len(data) > MAX_API_KEYS_FILE_BYTES:
        raise XRoadError(FaultCode.INVALID_SETTINGS, "the API keys file is too large")
    try:
        doc = json.loads(data) if data.strip() else {"keys": []}
        keys = []
        for entry in doc["keys"]:
            token_hash = _sha256_hex(entry["token_sha256"])
            keys.append(
                ApiKey(
                    key_id=str(entry["id"]),
                    token_hash=token_hash,
                    roles=frozenset(Role(r) for r in entry["roles"]),
                    created_at=datetime.fromisoformat(entry["created_at"]),
                )
            )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise XRoadError(FaultCode.INVALID_SETTINGS, f"the API keys file is malformed: {e}") from e
    return tuple(keys)


def render_api_keys(keys: Iterable[ApiKey]) -> bytes:
    entries = [
        {
            "id": k.key_id,
            "token_sha256": k.token_hash,
            "roles": sorted(r.value for r in k.roles),
            "created_at": k.created_at.isoformat(),
        }
        for k in keys
    ]
    return json.dumps({"keys": entries}, indent=2).encode() + b"\n"


def find_api_key(keys: Iterable[ApiKey], token: str) -> ApiKey | None:
    """The key whose hash ``token`` has; every stored hash is compared in constant time."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return _find_hash(keys, hash_token(token))


def _find_hash(keys: Iterable[ApiKey], wanted: str) -> ApiKey | None:
    found = None
    for key in keys:
        if hmac.compare_digest(key.token_hash, wanted):
            found = key
    return found


def _read_keys(path: Path) -> tuple[ApiKey, ...]:
    try:
        return parse_api_keys(path.read_bytes())
    except FileNotFoundError:
        return ()
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot read API keys {path}: {e.strerror}") from e


def create_api_key(path: Path, roles: Iterable[Role], now: datetime) -> CreatedApiKey:
    """Add a new API key with ``roles`` to the keys file (written atomically, mode 0600)."""
    wanted = frozenset(roles)
    if not wanted:
        raise XRoadError(FaultCode.INVALID_REQUEST, "an API key needs at least one role")
    keys = _read_keys(path)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    key = ApiKey(secrets.token_hex(8), hash_token(token), wanted, now)
    data = render_api_keys((*keys, key))
    write_atomic(path, data, mode=SECRET_MODE, make_parents=True)
    return CreatedApiKey(key, token)


def revoke_api_key(path: Path, key_id: str) -> ApiKey:
    """Remove the API key ``key_id`` from the keys file (written atomically); 404 when there is none.

    A running registry refuses the key from its next request on (:class:`ApiKeyRing`)."""
    keys = _read_keys(path)
    revoked = next((k for k in keys if k.key_id == key_id), None)
    if revoked is None:
        raise XRoadError(
            FaultCode.NOT_FOUND,
            f"there is no API key {key_id!r}",
            details={"key_id": key_id},
            http_status=404,
        )
    write_atomic(path, render_api_keys(k for k in keys if k is not revoked), mode=0o600, make_parents=True)
    return revoked


_Stamp = tuple[int, int, int]


def _stamp(st: os.stat_result) -> _Stamp:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _load_if_changed(path: Path, known: _Stamp | None) -> tuple[_Stamp | None, tuple[ApiKey, ...] | None]:
    """The file's stamp, and its keys when the stamp is not ``known`` (None: unchanged). Blocking I/O."""
    try:
        stamp = _stamp(path.stat())
    except FileNotFoundError:
        return None, ()
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot read API keys {path}: {e.strerror}") from e
    if stamp == known:
        return stamp, None
    return stamp, _read_keys(path)  # a replacement between stat and read only causes one more reload


class ApiKeyRing:
    """The API keys of a running registry, re-read when the file changes (``apikey create`` / ``revoke``
    while serving).

    :meth:`authenticate` looks at the file (``stat``, and a read when it changed) in a worker thread, never on
    the event loop, and remembers up to ``cache_size`` verified tokens (by their SHA-256); any change of the
    file empties that cache, so a revoked key fails at its next request. Loads are serialised, so an older
    read can never replace a newer one.
    """

    def __init__(self, path: Path, *, cache_size: int = MAX_CACHED_API_KEYS) -> None:
        self._path = path
        self._cache_size = cache_size
        self._stamp: _Stamp | None = None
        self._keys: tuple[ApiKey, ...] = ()
        self._verified: OrderedDict[str, ApiKey] = OrderedDict()
        self._lock = asyncio.Lock()

    @property
    def cached(self) -> int:
        """How many verified tokens are remembered."""
        return len(self._verified)

    async def _refresh(self) -> None:
        async with self._lock:
            stamp, keys = await asyncio.to_thread(_load_if_changed, self._path, self._stamp)
            if keys is not None:
                self._stamp, self._keys = stamp, keys
                self._verified.clear()

    async def authenticate(self, token: str) -> ApiKey | None:
        """The key ``token`` belongs to, as the keys file holds it now; None for an unknown token."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        await self._refresh()
        digest = hash_token(token)
        found = self._verified.get(digest)
        if found is not None:
            self._verified.move_to_end(digest)
            return found
        found = _find_hash(self._keys, digest)
        if found is not None:
            self._verified[digest] = found
            while len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return found
