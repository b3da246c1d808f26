"""The node's data layer: models, alembic migrations and the async :class:`NodeStore`.

SQLite (a file in the node's home) by default, PostgreSQL by URL; see :mod:`security_server.db.store`.

Example::

    >>> import asyncio
    >>> from security_server.db import NodeStore, migrate
    >>> from xroad_mn.database import create_engine
    >>> async def main() -> None:
    ...     engine = create_engine("sqlite+aiosqlite:///node.db")
    ...     await migrate(engine)                       # alembic upgrade head
    ...     print(await NodeStore(engine).list_clients())
    ...     await engine.dispose()
    >>> asyncio.run(main())  # doctest: +SKIP
    ()
"""

from security_server.db.models import (
    CertificateStatus,
    ClientState,
    ConnectionType,
    DescriptionType,
    KeyUsage,
)
from security_server.db.records import (
    DEFAULT_SERVICE_TIMEOUT_SECONDS,
    AccessRight,
    AccessSubject,
    Certificate,
    Client,
    Csr,
    Endpoint,
    LocalGroup,
    NewEndpoint,
    NewService,
    ServerIdentity,
    Service,
    ServiceDescription,
    TokenKey,
)
from security_server.db.schema import HEAD_REVISION, MIGRATIONS_DIR, migrate
from security_server.db.store import NodeStore
from security_server.messagelog import models as _messagelog_models  # noqa: F401 - its tables join Base
from security_server.opmonitoring import models as _opmon_models  # noqa: F401 - its tables join Base

__all__ = [
    "DEFAULT_SERVICE_TIMEOUT_SECONDS",
    "HEAD_REVISION",
    "MIGRATIONS_DIR",
    "AccessRight",
    "AccessSubject",
    "Certificate",
    "CertificateStatus",
    "Client",
    "ClientState",
    "ConnectionType",
    "Csr",
    "DescriptionType",
    "Endpoint",
    "KeyUsage",
    "LocalGroup",
    "NewEndpoint",
    "NewService",
    "NodeStore",
    "ServerIdentity",
    "Service",
    "ServiceDescription",
    "TokenKey",
    "migrate",
]
