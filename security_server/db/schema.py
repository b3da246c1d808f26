"""The node database's migrations: ``alembic upgrade`` of :mod:`security_server.migrations`.

Example::

    >>> import asyncio
    >>> from security_server.db.schema import migrate
    >>> asyncio.run(migrate("sqlite+aiosqlite:///node.db"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from xroad_mn import database

__all__ = ["HEAD_REVISION", "MIGRATIONS_DIR", "migrate"]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parents[1] / "migrations"
"""alembic's script location: ``security_server/migrations`` (env.py and versions/)."""
HEAD_REVISION: Final = "n0007_opmon_counters"


async def migrate(target: str | AsyncEngine, revision: str = "head") -> None:
    """Run ``alembic upgrade`` to ``revision`` on the node database at ``target`` (a URL or an engine);
    idempotent."""
    await database.migrate(target, MIGRATIONS_DIR, revision)
