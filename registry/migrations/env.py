"""alembic environment of the registry: runs migrations on the connection :func:`registry.db.migrate` passes.

There is no ``alembic.ini``; use the programmatic entry point::

    >>> import asyncio
    >>> from registry.db import migrate
    >>> asyncio.run(migrate("sqlite+aiosqlite:///registry.db"))  # doctest: +SKIP
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from registry.db.models import Base
from xroad_mn.errors import FaultCode, XRoadError


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode() or not isinstance(connection, Connection):
        raise XRoadError(
            FaultCode.INTERNAL_ERROR, "registry migrations run only through registry.db.migrate(url)"
        )
    _run(connection)


_main()
