"""xroad_mn.database: SQLite tuning, URL errors, UTC timestamps, string enum columns and the alembic
environment of both applications."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

import registry.db
import security_server.db
from xroad_mn.database import (
    NAMING_CONVENTION,
    UtcDateTime,
    completing_calls,
    create_engine,
    sqlite_url,
    str_enum_column,
)
from xroad_mn.errors import FaultCode, XRoadError


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"


def _table() -> Table:
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    return Table(
        "things",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("at", UtcDateTime()),
        Column("colour", str_enum_column(Colour, "colour")),
    )


async def test_sqlite_engine_uses_wal_foreign_keys_and_immediate_transactions(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path / "x.db"))
    try:
        async with engine.begin() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            # BEGIN IMMEDIATE took the write lock: a second writer cannot start until this one ends
            other = create_engine(sqlite_url(tmp_path / "x.db"), connect_args={"timeout": 0.05})
            try:
                with pytest.raises(Exception, match="locked"):
                    async with other.begin():
                        pass
            finally:
                await other.dispose()
    finally:
        await engine.dispose()


async def test_a_migration_that_cannot_take_the_lock_names_the_database(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    holder = create_engine(sqlite_url(path))
    waiting = create_engine(sqlite_url(path), connect_args={"timeout": 0.05})
    try:
        async with holder.begin():  # another writer's transaction, never ending while the migration waits
            with pytest.raises(XRoadError) as raised:
                await security_server.db.migrate(waiting)
        assert raised.value.code == FaultCode.IO_ERROR
        assert f"migration of the database {path.resolve()} failed" in raised.value.message
        assert "database is locked" in raised.value.message
    finally:
        await waiting.dispose()
        await holder.dispose()


def test_sqlite_url_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_url(Path("node.db")) == f"sqlite+aiosqlite:///{tmp_path.resolve()}/node.db"


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://x/y"])
def test_unusable_database_urls_are_invalid_settings(url: str) -> None:
    with pytest.raises(XRoadError) as exc:
        create_engine(url)
    assert exc.value.has_code("invalid_settings")


async def test_timestamps_come_back_in_utc_and_naive_ones_are_refused(tmp_path: Path) -> None:
    table = _table()
    engine = create_engine(sqlite_url(tmp_path / "x.db"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            ulaanbaatar = timezone(timedelta(hours=8))
            at = datetime(2026, 12, 1, 20, 0, tzinfo=ulaanbaatar)
            await conn.execute(insert(table).values(id=1, at=at, colour=Colour.GREEN))
            row = (await conn.execute(select(table.c.at, table.c.colour))).one()
            assert row.at == at
            assert row.at.tzinfo == UTC
            assert row.colour is Colour.GREEN
            with pytest.raises(StatementError, match="naive"):
                await conn.execute(insert(table).values(id=2, at=datetime(2026, 12, 1), colour=Colour.RED))
    finally:
        await engine.dispose()


async def test_enum_column_stores_values_under_a_check_constraint(tmp_path: Path) -> None:
    table = _table()
    engine = create_engine(sqlite_url(tmp_path / "x.db"))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(text("INSERT INTO things (id, colour) VALUES (1, 'red')"))
            with pytest.raises(Exception, match="CHECK constraint failed"):
                await conn.execute(text("INSERT INTO things (id, colour) VALUES (2, 'RED')"))
            query = text("SELECT sql FROM sqlite_master WHERE name = 'things'")
            ddl = (await conn.execute(query)).scalar_one()
        assert "ck_things_colour" in ddl
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("migrations_dir", "message"),
    [
        (registry.db.MIGRATIONS_DIR, "registry migrations run only through registry.db.migrate(url)"),
        (
            security_server.db.MIGRATIONS_DIR,
            "node migrations run only through security_server.db.migrate(url)",
        ),
    ],
)
def test_migrations_run_only_on_the_connection_migrate_passes(migrations_dir: Path, message: str) -> None:
    config = Config()  # as the `alembic` command would: no connection in the attributes
    config.set_main_option("script_location", str(migrations_dir))
    with pytest.raises(XRoadError) as e:
        command.upgrade(config, "head")
    assert e.value.code == FaultCode.INTERNAL_ERROR
    assert message in str(e.value)


@completing_calls
class _Counter:
    """A store of one table, as the applications' stores are made."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, value: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("INSERT INTO counts (value) VALUES (:v)"), {"v": value})
            await conn.execute(text("SELECT count(*) FROM counts"))

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM counts"))).scalar_one())


def _open_files(path: Path) -> list[str]:
    opened = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = str(fd.readlink())
            if target.startswith(str(path)):
                opened.append(target)
    return opened


async def test_store_calls_finish_before_a_cancel_so_stopping_leaves_no_connection_open(
    tmp_path: Path,
) -> None:
    """Background tasks writing through a store are cancelled at random moments, some twice, as an
    application's tasks are when it stops. Each call runs to completion first: once the engine is disposed no
    task is left running, no connection is open and the database is not locked. (Without
    ``completing_calls`` the cancel lands in an aiosqlite statement and SQLAlchemy's close of the invalidated
    connection waits forever in a task of its own, the connection left open, often holding the write lock.)"""
    pace = random.Random(7)
    for round_no in range(12):
        path = tmp_path / f"round-{round_no}.db"
        engine = create_engine(sqlite_url(path))
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE counts (id INTEGER PRIMARY KEY, value INTEGER)"))
        store = _Counter(engine)

        async def keep_adding(value: int, store: _Counter = store) -> None:
            while True:
                await store.add(value)

        tasks = [asyncio.create_task(keep_adding(i)) for i in range(6)]
        await asyncio.sleep(pace.uniform(0.02, 0.2))
        for task in tasks:
            task.cancel()
            if round_no % 2:
                await asyncio.sleep(0)
                task.cancel()  # cancelled again while it finishes
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results), results
        added = await store.count()
        await engine.dispose()
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not left, left
        assert not _open_files(path), _open_files(path)
        with sqlite3.connect(path, timeout=0) as db:  # no lock left: another process could write at once
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            assert db.execute("SELECT count(*) FROM counts").fetchone()[0] == added > 0
