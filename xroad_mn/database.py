"""Databases of the applications: async engines, alembic upgrades and the column types every schema shares.

Each application (registry, security server) keeps its own models and alembic migrations; this module holds
what they have in common::

    >>> import asyncio
    >>> from pathlib import Path
    >>> from xroad_mn.database import create_engine, migrate, sqlite_url
    >>> async def main() -> None:
    ...     engine = create_engine(sqlite_url(Path("node.db")))
    ...     await migrate(engine, Path("security_server/migrations"))   # alembic upgrade head
    ...     await engine.dispose()
    >>> asyncio.run(main())  # doctest: +SKIP

SQLite (the default, a file in the application's home) is tuned for one process with several writers: WAL
journal, foreign keys on, a busy timeout, and every transaction begun with ``BEGIN IMMEDIATE`` so that two
writers queue for the lock instead of failing on a lock upgrade. PostgreSQL is used as it is; to keep an
application in its own schema pass ``connect_args={"server_settings": {"search_path": "node"}}``.

Models declare their metadata with :data:`NAMING_CONVENTION`, store timestamps as :class:`UtcDateTime` and
string enums with :func:`str_enum_column`, so migrations and models name and type everything alike.
"""

from __future__ import annotations

import asyncio
import functools
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, DateTime, Dialect, Engine, Enum, LargeBinary, MetaData, String, event, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import MAX_PART_CHARS

__all__ = [
    "ENUM_LENGTH",
    "NAMING_CONVENTION",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "UtcDateTime",
    "column_types",
    "completing_calls",
    "create_engine",
    "migrate",
    "open_migrated",
    "run_migrations",
    "run_to_completion",
    "sqlite_url",
    "sqlite_writer_engine",
    "str_enum_column",
    "transaction",
]

SQLITE_BUSY_TIMEOUT_SECONDS: Final = 30.0
"""How long a SQLite writer waits for another writer's transaction before failing."""
ENUM_LENGTH: Final = 32
"""Width of the ``varchar`` that holds a string enum's value."""

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint and index names of every schema (``MetaData(naming_convention=NAMING_CONVENTION)``)."""


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
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``).

    ``kwargs`` go to :func:`sqlalchemy.ext.asyncio.create_async_engine`. A URL that cannot be used is
    ``invalid_settings``.
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


@asynccontextmanager
async def transaction(engine: AsyncEngine, *, code: str, what: str) -> AsyncIterator[AsyncConnection]:
    """A connection of ``engine`` in one transaction, committed when the block ends; a database failure is
    an ``XRoadError`` with ``code`` naming ``what`` (``message log``) and the driver's error."""
    try:
        async with engine.begin() as conn:
            yield conn
    except SQLAlchemyError as e:
        raise XRoadError(code, f"{what} database error: {type(e).__name__}: {e}") from e


_T = TypeVar("_T")
_P = ParamSpec("_P")
_C = TypeVar("_C", bound=type)


async def run_to_completion(work: Coroutine[Any, Any, _T]) -> _T:
    """Await database ``work`` in a task of its own that a cancel of the caller does not interrupt: a cancel
    received meanwhile is raised once the work has finished (committed or rolled back).

    A cancel delivered while aiosqlite runs a statement makes SQLAlchemy invalidate the connection, and the
    close it then starts can wait forever in a task of its own: the connection, perhaps in the middle of a
    transaction that holds SQLite's write lock, stays open until the garbage collector happens to find it,
    and every other process opening the database waits for the lock (``database is locked``). Background
    tasks are cancelled when an application stops, so stores make their calls this way
    (:func:`completing_calls`)."""
    task = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError as e:
            if task.done():
                raise
            cancelled = e
        else:
            break
    if cancelled is not None:
        raise cancelled
    return result


def _completing(method: Callable[_P, Coroutine[Any, Any, _T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
    @functools.wraps(method)
    async def call(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        return await run_to_completion(method(*args, **kwargs))

    return call


def completing_calls(cls: _C) -> _C:
    """Class decorator of a store: each of its public coroutine methods (inherited ones too) runs to
    completion once called, a cancel taking effect after it (:func:`run_to_completion`)."""
    for klass in reversed(cls.__mro__):
        for name, attribute in vars(klass).items():
            if name.startswith("_") or not isinstance(attribute, types.FunctionType):
                continue  # static and class methods, properties and private helpers stay as they are
            if asyncio.iscoroutinefunction(attribute) and getattr(cls, name) is attribute:
                setattr(cls, name, _completing(attribute))
    return cls


def sqlite_writer_engine(engine: AsyncEngine) -> Engine | None:
    """For an SQLite ``engine``, a synchronous engine on the same file with the same settings (WAL, busy
    timeout, ``BEGIN IMMEDIATE``), for a writer that commits a whole batch in one call from a worker thread
    instead of one thread hop per statement; ``None`` for any other database."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return None
    sync = sa_create_engine(
        url.set(drivername="sqlite+pysqlite"),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )
    event.listen(sync, "connect", _sqlite_connect)
    event.listen(sync, "begin", _sqlite_begin)
    return sync


def _database_name(engine: AsyncEngine) -> str:
    """The database ``engine`` opens, for an error message: a SQLite file's path, else the URL without its
    password."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return f"the database {url.database}"
    return f"the database {url.render_as_string(hide_password=True)}"


def _upgrade(
    connection: Connection, migrations_dir: Path, revision: str, attributes: Mapping[str, object]
) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes.update(attributes)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def migrate(
    target: str | AsyncEngine,
    migrations_dir: Path,
    revision: str = "head",
    *,
    attributes: Mapping[str, object] | None = None,
) -> None:
    """Run ``alembic upgrade`` to ``revision`` with the scripts in ``migrations_dir`` on ``target`` (a URL or
    an engine).

    There is no ``alembic.ini``: the migrations' ``env.py`` finds the connection in
    ``context.config.attributes["connection"]``, and a migration finds what else it needs (the registry's
    token, say) in ``attributes``, copied there too. Idempotent: an up-to-date database is left as it is. A
    failure is ``io_error``.
    """
    engine = create_engine(target) if isinstance(target, str) else target
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, migrations_dir, revision, dict(attributes or {}))
    except SQLAlchemyError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"migration of {_database_name(engine)} failed: {e}") from e
    finally:
        if isinstance(target, str):
            await engine.dispose()


@asynccontextmanager
async def open_migrated(
    url: str,
    migrate: Callable[[AsyncEngine], Awaitable[None]],
    *,
    schema: str | None = None,
    **kwargs: Any,
) -> AsyncIterator[AsyncEngine]:
    """An engine for ``url`` (``kwargs`` as :func:`create_engine`'s) whose database ``migrate`` has brought
    to the current schema, disposed after the block. On PostgreSQL a ``schema`` (the application's
    ``search_path``) is created first when missing; a failure there is ``io_error``::

        async with open_migrated(url, registry.db.migrate, schema="registry", **options) as engine:
            store = RegistryStore(engine)
    """
    if schema is not None and url.startswith("postgresql"):
        admin = create_engine(url)
        try:
            async with admin.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        except SQLAlchemyError as e:
            raise XRoadError(FaultCode.IO_ERROR, f"cannot create the database schema: {e}") from e
        finally:
            await admin.dispose()
    engine = create_engine(url, **kwargs)
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()


def run_migrations(metadata: MetaData, app: str, entry_point: str) -> None:
    """The body of an application's alembic ``env.py``: run its migrations on the connection :func:`migrate`
    put in ``context.config.attributes["connection"]``, in batch mode on SQLite (which alters a table by
    copying it)::

        from registry.db.models import Base
        from xroad_mn.database import run_migrations

        run_migrations(Base.metadata, "registry", "registry.db.migrate")

    Offline mode (SQL scripts) and a run without that connection (the ``alembic`` command) are
    ``internal_error``, naming ``entry_point``, the application's :func:`migrate` wrapper.
    """
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode() or not isinstance(connection, Connection):
        raise XRoadError(FaultCode.INTERNAL_ERROR, f"{app} migrations run only through {entry_point}(url)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite returns naive values; they are UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC timestamp column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def str_enum_column(cls: type[StrEnum], name: str) -> Enum:
    """The column type of a :class:`~enum.StrEnum`: its *values* in a ``varchar`` with a CHECK constraint
    named ``name`` (no native database enum, so a migration adds a value without ``ALTER TYPE``)."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=ENUM_LENGTH,
        validate_strings=True,
        values_callable=lambda e: [m.value for m in e],
    )


def column_types(extra: Mapping[Any, Any] | None = None) -> dict[Any, Any]:
    """The ``type_annotation_map`` of an app's declarative base: UTC timestamps, binary bytes and strings
    sized for an identifier part (X-Road's ``varchar(255)``), plus the app's own ``extra`` pairs."""
    return {datetime: UtcDateTime(), bytes: LargeBinary(), str: String(MAX_PART_CHARS), **(extra or {})}
