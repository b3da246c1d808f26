"""The node's data API: one :class:`NodeStore` whose every operation is one atomic transaction.

Example::

    >>> import asyncio
    >>> from security_server.db import NodeStore, migrate
    >>> from xroad_mn.database import create_engine
    >>> from xroad_mn.identifiers import MemberId
    >>> async def main() -> None:
    ...     engine = create_engine("sqlite+aiosqlite:///node.db")
    ...     await migrate(engine)
    ...     store = NodeStore(engine)
    ...     owner = MemberId("MN", "GOV", "5012345")
    ...     await store.init_server(owner, "ss1", address="127.0.0.2")
    ...     provider = owner.subsystem("civil-registry")
    ...     await store.add_client(provider)
    ...     await store.add_service_description(
    ...         provider, DescriptionType.REST, url="https://civil-registry.internal/api",
    ...         services=[NewService("people", url="https://civil-registry.internal/api")],
    ...     )
    ...     consumer = MemberId("MN", "COM", "9011223").subsystem("bank")
    ...     await store.grant_access(provider, "people", [consumer])
    ...     print(await store.is_allowed(provider, "people", consumer, method="GET", path="/people/1"))
    ...     await engine.dispose()
    >>> asyncio.run(main())  # doctest: +SKIP
    True

Errors are :class:`~xroad_mn.errors.XRoadError`: ``conflict`` (HTTP 409) for duplicates, a node that is not
initialised and refused changes (removing the owner, editing a generated endpoint), ``not_found`` (404),
``invalid_request`` or an identifier code (400) for bad input, ``io_error`` when the database fails.
"""

from __future__ import annotations

from security_server.db.access import AccessStore
from security_server.db.clients import ClientStore
from security_server.db.keys import KeyStore
from security_server.db.services import ServiceStore
from xroad_mn.database import completing_calls

__all__ = ["NodeStore"]


@completing_calls
class NodeStore(ClientStore, ServiceStore, AccessStore, KeyStore):
    """Everything the node keeps in its database: identity and clients (:class:`ClientStore`), services
    and endpoints (:class:`ServiceStore`), access rights and local groups (:class:`AccessStore`), and the
    records of its token (:class:`KeyStore`)."""
