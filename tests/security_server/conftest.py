"""Node fixtures: a migrated node database on SQLite (a temporary file) and on PostgreSQL (its own schema).

Every storage test takes ``node_db`` (or ``store``) and so runs on both backends; the PostgreSQL case uses
``postgres_url`` from ``tests/conftest.py`` and is skipped only when ``XROAD_TEST_PG_URL`` is unset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from security_server.db import NodeStore, migrate
from tests.conftest import migrated_database
from xroad_mn.identifiers import MemberId

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
OWNER = MemberId("MN", "GOV", "5012345")


@pytest.fixture(params=BACKENDS)
async def node_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a freshly migrated, empty node database of each backend."""
    async with migrated_database(request, tmp_path / "node.db", migrate, schema_prefix="node_test") as engine:
        yield engine


@pytest.fixture
async def store(node_db: AsyncEngine) -> NodeStore:
    """A node store of server ``SERVER:MN/GOV/5012345/ss1`` on each backend."""
    node = NodeStore(node_db)
    await node.init_server(OWNER, "ss1", address="127.0.0.2")
    return node
