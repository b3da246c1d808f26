"""The registry database's migrations: ``alembic upgrade`` of :mod:`registry.migrations`, with the
registry's token at hand for the migration that needs it.

Engines are the core's (:func:`xroad_mn.database.create_engine`, re-exported here)::

    >>> import asyncio
    >>> from registry.db.engine import create_engine, migrate
    >>> async def main() -> None:
    ...     engine = create_engine("sqlite+aiosqlite:///registry.db")
    ...     await migrate(engine)
    ...     await engine.dispose()
    >>> asyncio.run(main())  # doctest: +SKIP

To keep the registry in its own PostgreSQL schema pass
``connect_args={"server_settings": {"search_path": "registry"}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from xroad_mn import database
from xroad_mn.database import SQLITE_BUSY_TIMEOUT_SECONDS, create_engine, sqlite_url
from xroad_mn.tokens import Token

__all__ = [
    "MIGRATIONS_DIR",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "TokenSource",
    "create_engine",
    "migrate",
    "sqlite_url",
]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parents[1] / "migrations"
"""alembic's script location: ``registry/migrations`` (env.py and versions/)."""

TokenSource = Callable[[], Token]
"""What gives the registry's token, logged in, to a migration that needs it (only then is it called, so a
PIN is asked for only when a migration needs the token): a :class:`registry.signing.TokenLogin`."""


async def migrate(
    target: str | AsyncEngine, revision: str = "head", *, token: TokenSource | None = None
) -> None:
    """Run ``alembic upgrade`` to ``revision`` on the database at ``target`` (a URL or an engine).

    Idempotent: an up-to-date database is left as it is. ``token`` gives the registry's token to the
    migration that moves signing keys kept in clear into it (``r0004``); a database holding such keys
    fails to migrate without it, and keeps its keys.
    """
    await database.migrate(target, MIGRATIONS_DIR, revision, attributes={"token": token})
