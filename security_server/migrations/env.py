"""alembic environment of the node: runs migrations on the connection :func:`security_server.db.migrate`
passes.

There is no ``alembic.ini``; use the programmatic entry point::

    >>> import asyncio
    >>> from security_server.db import migrate
    >>> asyncio.run(migrate("sqlite+aiosqlite:///node.db"))  # doctest: +SKIP
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from security_server.db.models import Base
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
            FaultCode.INTERNAL_ERROR, "node migrations run only through security_server.db.migrate(url)"
        )
    _run(connection)


_main()
