"""alembic environment of the node: runs migrations on the connection :func:`security_server.db.migrate`
passes.

There is no ``alembic.ini``; use the programmatic entry point::

    >>> import asyncio
    >>> from security_server.db import migrate
    >>> asyncio.run(migrate("sqlite+aiosqlite:///node.db"))  # doctest: +SKIP
"""

from __future__ import annotations

from security_server.db.models import Base
from xroad_mn.database import run_migrations

run_migrations(Base.metadata, "node", "security_server.db.migrate")
