"""Registry fixtures: a migrated database on SQLite (a temporary file) and on PostgreSQL (its own schema).

Every storage test takes ``registry_db`` (or ``store``) and so runs on both backends; the PostgreSQL case
uses ``postgres_url`` from ``tests/conftest.py`` and is skipped only when ``XROAD_TEST_PG_URL`` is unset.
Tests of the whole application take ``database``: the :class:`~registry.settings.RegistrySettings` fields
naming each backend's database. Every test runs with ``XROAD_MN_TOKEN_PIN`` set to :data:`TOKEN_PIN` (the
registry's token PIN, as an operator sets it); :func:`new_token` makes the token of a registry to be
initialised, as ``registry init`` does.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from registry.db import RegistryStore, create_engine, migrate
from registry.settings import RegistrySettings
from registry.signing import create_token, registry_token
from tests.conftest import migrated_database
from trust_services.pki import DevPki, build_dev_pki
from xroad_mn.tokens import PIN_ENV, Token

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
TOKEN_PIN = "registry test PIN"


@pytest.fixture(autouse=True)
def _token_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PIN_ENV, TOKEN_PIN)


def new_token(settings: RegistrySettings) -> Token:
    """The token of a new registry with ``settings``, initialised with :data:`TOKEN_PIN` and logged in."""
    token = registry_token(settings)
    create_token(token, TOKEN_PIN)
    return token


@pytest.fixture(params=BACKENDS)
async def registry_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a freshly migrated, empty registry database of each backend."""
    async with migrated_database(
        request, tmp_path / "registry.db", migrate, schema_prefix="registry_test"
    ) as engine:
        yield engine


@pytest.fixture
async def store(registry_db: AsyncEngine) -> RegistryStore:
    """A registry store of instance ``MN`` on each backend."""
    registry = RegistryStore(registry_db)
    await registry.init_instance("MN")
    return registry


@pytest.fixture(scope="session")
def pki() -> DevPki:
    """One development PKI for the session (key generation is the slow part)."""
    return build_dev_pki(datetime.now(UTC))


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """Registry settings naming each backend's database (PostgreSQL: a schema of its own, which the
    registry creates on start and this fixture drops afterwards)."""
    if request.param == "sqlite":
        yield {}  # the default: HOME/registry.db
        return
    pg_url: str = request.getfixturevalue("postgres_url")
    schema = f"registry_app_{uuid.uuid4().hex[:12]}"
    yield {"database_url": pg_url, "database_schema": schema}
    admin = create_engine(pg_url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await admin.dispose()
