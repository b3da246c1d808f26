"""The node store's foundation: one transaction per operation, and client lookups shared by its parts.

Each part of :class:`~security_server.db.store.NodeStore` (clients, services, access, keys) derives from
:class:`StoreBase`::

    >>> class Counts(StoreBase):
    ...     async def clients(self) -> int:
    ...         async with self._tx() as s:
    ...             return len((await s.scalars(select(ClientRow))).all())
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from security_server.db.checks import conflict, not_found
from security_server.db.models import SERVER_ROW_ID, ClientRow, ServerRow
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, MemberId, SubsystemId, format_id, parse_id

__all__ = ["StoreBase", "client_of", "client_where", "parse_client", "parse_member"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def client_where(client: ClientId) -> ColumnElement[bool]:
    """The condition selecting ``client``'s row."""
    subsystem = client.subsystem_code if isinstance(client, SubsystemId) else None
    return and_(
        ClientRow.instance == client.instance,
        ClientRow.member_class == client.member_class,
        ClientRow.member_code == client.member_code,
        ClientRow.subsystem_code.is_(None) if subsystem is None else ClientRow.subsystem_code == subsystem,
    )


def client_of(row: ClientRow) -> ClientId:
    member = MemberId(row.instance, row.member_class, row.member_code)
    return member if row.subsystem_code is None else member.subsystem(row.subsystem_code)


def parse_client(text: str) -> ClientId:
    """A member or subsystem stored in string form."""
    parsed = parse_id(text, strict=False)
    assert isinstance(parsed, MemberId | SubsystemId), text
    return parsed


def parse_member(text: str | None) -> MemberId | None:
    if text is None:
        return None
    parsed = parse_id(text, strict=False)
    assert isinstance(parsed, MemberId), text
    return parsed


class StoreBase:
    """Async access to the node database; every public method of a subclass is one transaction.

    ``clock`` gives the current time (timezone-aware) for the timestamps the store records.
    ``strict_identifier_checks`` is the node's setting: the identifiers it adds (clients, the server code,
    service codes and versions, local group codes) pass X-Road's strict checks, or only the non-strict ones.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], datetime] = _utcnow,
        strict_identifier_checks: bool = True,
    ) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
        self._clock = clock
        self._strict = strict_identifier_checks

    @property
    def engine(self) -> AsyncEngine:
        """The engine every transaction of this store runs on (the message log shares it)."""
        return self._engine

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncSession]:
        try:
            async with self._sessions() as session, session.begin():
                yield session
        except IntegrityError as e:
            raise conflict("the change conflicts with data already on the node") from e
        except SQLAlchemyError as e:
            raise XRoadError(FaultCode.IO_ERROR, f"node database error: {type(e).__name__}") from e

    @staticmethod
    async def _one(s: AsyncSession, query: Any, missing: XRoadError) -> Any:
        row = (await s.scalars(query)).one_or_none()
        if row is None:
            raise missing
        return row

    @staticmethod
    async def _server_row(s: AsyncSession) -> ServerRow:
        row = await s.get(ServerRow, SERVER_ROW_ID)
        if row is None:
            raise conflict("the node is not initialised: set its owner and server code first")
        return row

    async def _client_row(self, s: AsyncSession, client: ClientId) -> ClientRow:
        row: ClientRow = await self._one(
            s,
            select(ClientRow).where(client_where(client)),
            not_found(f"{format_id(client)} is not a client of this node", client=format_id(client)),
        )
        return row
