"""alembic migrations of the node database; run them with :func:`security_server.db.migrate`.

Example::

    >>> import asyncio
    >>> from security_server.db import migrate
    >>> asyncio.run(migrate("sqlite+aiosqlite:///node.db"))  # doctest: +SKIP
"""
