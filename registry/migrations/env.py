"""alembic environment of the registry: runs migrations on the connection :func:`registry.db.migrate` passes.

There is no ``alembic.ini``; use the programmatic entry point::

    >>> import asyncio
    >>> from registry.db import migrate
    >>> asyncio.run(migrate("sqlite+aiosqlite:///registry.db"))  # doctest: +SKIP
"""

from __future__ import annotations

from registry.db.models import Base
from xroad_mn.database import run_migrations

run_migrations(Base.metadata, "registry", "registry.db.migrate")
