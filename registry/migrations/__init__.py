"""alembic migrations of the registry database; run them with :func:`registry.db.migrate`.

Example::

    >>> import asyncio
    >>> from registry.db import migrate
    >>> asyncio.run(migrate("sqlite+aiosqlite:///registry.db"))  # doctest: +SKIP
"""
