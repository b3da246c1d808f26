"""Node fixtures: a migrated node database on SQLite (a temporary file) and on PostgreSQL (its own schema).

Every storage test takes ``node_db`` (or ``store``) and so runs on both backends; the PostgreSQL case uses
``postgres_url`` from ``tests/conftest.py`` and is skipped only when ``XROAD_TEST_PG_URL`` is unset.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from security_server.db import NodeStore, migrate
from xroad_mn.database import create_engine, sqlite_url
from xroad_mn.identifiers import MemberId

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
OWNER = MemberId("MN", "GOV", "5012345")


@pytest.fixture(params=BACKENDS)
async def node_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a freshly migrated, empty node database of each backend."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "node.db")
        await migrate(url)  # by URL here, by engine on PostgreSQL: both entry points run from empty
        engine = create_engine(url)
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    pg_url: str = request.getfixturevalue("postgres_url")
    schema = f"node_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(pg_url, connect_args={"server_settings": {"search_path": schema}})
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def store(node_db: AsyncEngine) -> NodeStore:
    """A node store of server ``SERVER:MN/GOV/5012345/ss1`` on each backend."""
    node = NodeStore(node_db)
    await node.init_server(OWNER, "ss1", address="127.0.0.2")
    return node
