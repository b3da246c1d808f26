"""The registry's data layer: models, alembic migrations and the async :class:`RegistryStore`.

SQLite (a file in the registry's home) by default, PostgreSQL by URL.

Example::

    >>> import asyncio
    >>> from registry.db import RegistryStore, create_engine, migrate
    >>> from xroad_mn.identifiers import MemberId
    >>> async def main() -> None:
    ...     engine = create_engine("sqlite+aiosqlite:///registry.db")
    ...     await migrate(engine)                       # alembic upgrade head
    ...     store = RegistryStore(engine)
    ...     await store.init_instance("MN")
    ...     await store.add_member_class("GOV", "Government")
    ...     await store.add_member(MemberId("MN", "GOV", "5012345"), "Ministry")
    ...     snapshot = await store.snapshot(["cs.example.mn"])  # SharedParameters + PrivateParameters
    ...     await engine.dispose()
    >>> asyncio.run(main())  # doctest: +SKIP
"""

from registry.db.engine import MIGRATIONS_DIR, create_engine, migrate, sqlite_url
from registry.db.models import RequestState
from registry.db.records import (
    ConfigurationSigningKey,
    GlobalSettings,
    ManagementRequestRecord,
    RegistrySnapshot,
    RequestAction,
    RequestEvent,
    ServerClient,
)
from registry.db.store import RegistryStore, RequestEffects
from registry.globalconf_gen import KeyKind

__all__ = [
    "MIGRATIONS_DIR",
    "ConfigurationSigningKey",
    "GlobalSettings",
    "KeyKind",
    "ManagementRequestRecord",
    "RegistrySnapshot",
    "RegistryStore",
    "RequestAction",
    "RequestEffects",
    "RequestEvent",
    "RequestState",
    "ServerClient",
    "create_engine",
    "migrate",
    "sqlite_url",
]
