"""Database engines for the registry and the programmatic ``alembic upgrade head``.

Example::

    >>> import asyncio
    >>> from registry.db.engine import create_engine, migrate
    >>> async def main() -> None:
    ...     engine = create_engine("sqlite+aiosqlite:///registry.db")
    ...     await migrate(engine)
    ...     await engine.dispose()
    >>> asyncio.run(main())  # doctest: +SKIP

SQLite (the default, a file in the registry's home) is tuned for one process with several writers: WAL
journal, foreign keys on, a busy timeout, and every transaction begun with ``BEGIN IMMEDIATE`` so that two
writers queue for the lock instead of failing on a lock upgrade. PostgreSQL is used as it is; to keep the
registry in its own schema pass ``connect_args={"server_settings": {"search_path": "registry"}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from xroad_mn.errors import FaultCode, XRoadError
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
SQLITE_BUSY_TIMEOUT_SECONDS: Final = 30.0
"""How long a SQLite writer waits for another writer's transaction before failing."""

TokenSource = Callable[[], Token]
"""What gives the registry's token, logged in, to a migration that needs it (only then is it called, so a
PIN is asked for only when a migration needs the token): a :class:`registry.signing.TokenLogin`."""


def sqlite_url(path: Path) -> str:
    """The async SQLAlchemy URL of a SQLite database file."""
    return f"sqlite+aiosqlite:///{path.resolve()}"


def _sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    # Let us emit BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED and skips DDL).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``).

    ``kwargs`` go to :func:`sqlalchemy.ext.asyncio.create_async_engine`.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise XRoadError(FaultCode.INVALID_SETTINGS, f"invalid database URL: {e}") from e
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_SECONDS)
        kwargs["connect_args"] = connect_args
    try:
        engine = create_async_engine(parsed, **kwargs)
    except (SQLAlchemyError, ImportError) as e:
        raise XRoadError(FaultCode.INVALID_SETTINGS, f"cannot use database URL: {e}") from e
    if is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _upgrade(connection: Connection, revision: str, token: TokenSource | None) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["token"] = token
    command.upgrade(config, revision)


async def migrate(
    target: str | AsyncEngine, revision: str = "head", *, token: TokenSource | None = None
) -> None:
    """Run ``alembic upgrade`` to ``revision`` on the database at ``target`` (a URL or an engine).

    Idempotent: an up-to-date database is left as it is. ``token`` gives the registry's token to the
    migration that moves signing keys kept in clear into it (``r0004``); a database holding such keys
    fails to migrate without it, and keeps its keys.
    """
    engine = create_engine(target) if isinstance(target, str) else target
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, revision, token)
    except SQLAlchemyError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"database migration failed: {e}") from e
    finally:
        if isinstance(target, str):
            await engine.dispose()
