"""Admin API keys: a JSON file of hashed tokens with X-Road's roles, and the ring a running server checks.

The file (``{"keys": [{"id", "token_sha256", "roles", "created_at"}]}``, mode 0600) keeps the SHA-256 of
each token, never the token: a key is shown once, when it is created (as X-Road does). Tokens are compared
in constant time. A running application checks the file for changes on every request (off the event loop,
:class:`ApiKeyRing`) and keeps the keys it verified in a bounded cache that any change of the file empties,
so a key revoked with :func:`revoke_api_key` stops working at its next request.

:class:`Role` holds X-Road's roles of both servers, and xroad-mn's own message log roles of the node; each
application declares the ones that exist for it (:data:`CENTRAL_SERVER_ROLES`, :data:`SECURITY_SERVER_ROLES`)
and offers only those.

Example::

    >>> from datetime import UTC, datetime
    >>> path = Path("api-keys.json")
    >>> created = create_api_key(path, {Role.XROAD_SECURITY_OFFICER}, datetime.now(UTC))  # doctest: +SKIP
    >>> (await ApiKeyRing(path).authenticate(created.token)).roles  # doctest: +SKIP
    frozenset({<Role.XROAD_SECURITY_OFFICER: 'xroad-security-officer'>})
    >>> revoke_api_key(path, created.key.key_id)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Final

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import write_atomic

__all__ = [
    "CENTRAL_SERVER_ROLES",
    "KEYS_FILE_MODE",
    "MAX_API_KEYS_FILE_BYTES",
    "MAX_CACHED_API_KEYS",
    "MAX_TOKEN_CHARS",
    "MESSAGELOG_ROLES",
    "SECURITY_SERVER_ADMIN_ROLES",
    "SECURITY_SERVER_ROLES",
    "ApiKey",
    "ApiKeyRing",
    "CreatedApiKey",
    "Role",
    "create_api_key",
    "find_api_key",
    "hash_token",
    "parse_api_keys",
    "render_api_keys",
    "revoke_api_key",
]

MAX_API_KEYS_FILE_BYTES: Final = 4 * 1024 * 1024
TOKEN_BYTES: Final = 32
"""Random bytes in a new API key (base64url: 43 characters)."""
MAX_TOKEN_CHARS: Final = 512
MAX_CACHED_API_KEYS: Final = 1024
"""Verified tokens an :class:`ApiKeyRing` remembers (least recently used first out)."""
KEYS_FILE_MODE: Final = 0o600
"""The keys file holds hashes of secrets: only its owner reads it."""


class Role(StrEnum):
    """X-Road's admin roles, and xroad-mn's message log roles. Observers may only read.

    The central server's roles keep the names the registry's key files have always held; the security
    server's are X-Road's own (its ``Role`` enum and Linux groups). X-Road has no role for auditors of the
    message log (its security officer reads everything); xroad-mn's two carry the ``xroad-mn-`` prefix so
    nobody takes them for X-Road's. They separate duties: only they read the log, and they read nothing
    else.
    """

    # X-Road central server (the registry)
    REGISTRATION_OFFICER = "registration-officer"
    SECURITY_OFFICER = "security-officer"
    SYSTEM_ADMINISTRATOR = "system-administrator"
    OBSERVER = "observer"
    # X-Road security server (the node)
    XROAD_SECURITY_OFFICER = "xroad-security-officer"
    XROAD_REGISTRATION_OFFICER = "xroad-registration-officer"
    XROAD_SERVICE_ADMINISTRATOR = "xroad-service-administrator"
    XROAD_SYSTEM_ADMINISTRATOR = "xroad-system-administrator"
    XROAD_SECURITYSERVER_OBSERVER = "xroad-securityserver-observer"
    # xroad-mn's own, on the node
    MESSAGELOG_AUDITOR = "xroad-mn-messagelog-auditor"
    """Searches the message log and reads its records' metadata (parties, service, ids, times, state): never
    a message body, never a data subject in clear."""
    MESSAGELOG_BODY_READER = "xroad-mn-messagelog-body-reader"
    """What the auditor may, and the logged messages themselves: one record's body, and exports of ASiC-E
    containers (which hold the messages)."""


CENTRAL_SERVER_ROLES: Final = frozenset(
    {Role.REGISTRATION_OFFICER, Role.SECURITY_OFFICER, Role.SYSTEM_ADMINISTRATOR, Role.OBSERVER}
)
"""The roles of X-Road's central server (the registry)."""
SECURITY_SERVER_ADMIN_ROLES: Final = frozenset(
    {
        Role.XROAD_SECURITY_OFFICER,
        Role.XROAD_REGISTRATION_OFFICER,
        Role.XROAD_SERVICE_ADMINISTRATOR,
        Role.XROAD_SYSTEM_ADMINISTRATOR,
        Role.XROAD_SECURITYSERVER_OBSERVER,
    }
)
"""The roles of X-Road's security server: they read the node's configuration (not its message log)."""
MESSAGELOG_ROLES: Final = frozenset({Role.MESSAGELOG_AUDITOR, Role.MESSAGELOG_BODY_READER})
"""xroad-mn's message log roles: they read the log (metadata; the body reader bodies too), nothing else."""
SECURITY_SERVER_ROLES: Final = SECURITY_SERVER_ADMIN_ROLES | MESSAGELOG_ROLES
"""Every role of a node's API key."""


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
    write_atomic(path, data, mode=KEYS_FILE_MODE, make_parents=True)
    return CreatedApiKey(key, token)


def revoke_api_key(path: Path, key_id: str) -> ApiKey:
    """Remove the API key ``key_id`` from the keys file (written atomically); 404 when there is none.

    A running application refuses the key from its next request on (:class:`ApiKeyRing`)."""
    keys = _read_keys(path)
    revoked = next((k for k in keys if k.key_id == key_id), None)
    if revoked is None:
        raise XRoadError(
            FaultCode.NOT_FOUND,
            f"there is no API key {key_id!r}",
            details={"key_id": key_id},
            http_status=404,
        )
    write_atomic(
        path, render_api_keys(k for k in keys if k is not revoked), mode=KEYS_FILE_MODE, make_parents=True
    )
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
    """The API keys of a running application, re-read when the file changes (``apikey create`` / ``revoke``
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
