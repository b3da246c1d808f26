"""Access rights to a client's services, its local groups, and the access decision.

An access right gives a subject — a member or subsystem (of any instance), a global group, or one of the
provider's local groups — one endpoint of a service; the base endpoint ``* **`` is the whole service.
Everything not granted is denied::

    >>> async def open_people(store: AccessStore, provider: SubsystemId, consumer: SubsystemId) -> bool:
    ...     await store.grant_access(provider, "people", [consumer])                 # the whole service
    ...     await store.add_local_group(provider, "auditors", "Audit office")
    ...     await store.grant_access(provider, "people", [LocalGroupId("auditors")], endpoint_id=7)
    ...     return await store.is_allowed(provider, "people", consumer, method="GET", path="/people/1")

The decision follows X-Road's ``ServerConfImpl.isQueryAllowed``: (1) the provider is a client of this node;
(2) a right to the service code names the subject itself, a global group the caller says the subject is in
(from verified global configuration), or a local group of the provider with the subject as member; (3) for
a SOAP request (no method and path) only a base-endpoint right counts, for a REST request the right's
endpoint must match the method and path.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from security_server.db.base import StoreBase, client_where, parse_client
from security_server.db.checks import check_code, check_text, conflict, invalid, not_found
from security_server.db.models import (
    AccessRightRow,
    ClientRow,
    EndpointRow,
    LocalGroupMemberRow,
    LocalGroupRow,
)
from security_server.db.records import AccessRight, AccessSubject, Endpoint, LocalGroup
from security_server.endpoints import ANY_METHOD, ANY_PATH, endpoint_matches, is_base_endpoint
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import (
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    MemberId,
    SubsystemId,
    format_id,
    parse_id,
)

__all__ = ["AccessStore"]


def _subject(text: str) -> AccessSubject:
    parsed = parse_id(text, strict=False)
    assert isinstance(parsed, MemberId | SubsystemId | GlobalGroupId | LocalGroupId), text
    return parsed


def _endpoint(row: EndpointRow, client: ClientId) -> Endpoint:
    return Endpoint(row.id, client, row.service_code, row.method, row.path, row.generated)


class AccessStore(StoreBase):
    """Access rights, local groups, and :meth:`is_allowed`."""

    # -- access rights ------------------------------------------------------------------------------------

    async def grant_access(
        self,
        provider: ClientId,
        service_code: str,
        subjects: Sequence[AccessSubject],
        *,
        endpoint_id: int | None = None,
    ) -> tuple[AccessRight, ...]:
        """Give ``subjects`` the endpoint ``endpoint_id`` of the service (default its base endpoint: the
        whole service). 404 for an unknown service, endpoint or local group; 409 for a right that exists."""
        if not subjects:
            raise invalid("no subjects to give access to")
        async with self._tx() as s:
            owner = await self._client_row(s, provider)
            endpoint = await self._endpoint_row(s, owner, service_code, endpoint_id)
            now = self._clock()
            out = []
            for subject in subjects:
                await self._check_subject(s, owner, subject)
                text = format_id(subject)
                same = select(AccessRightRow.id).where(
                    AccessRightRow.endpoint_id == endpoint.id, AccessRightRow.subject == text
                )
                if (await s.scalars(same)).first() is not None:
                    raise conflict(f"{text} already has this access right", subject=text)
                s.add(
                    AccessRightRow(client_id=owner.id, endpoint_id=endpoint.id, subject=text, granted_at=now)
                )
                out.append(AccessRight(subject, _endpoint(endpoint, provider), now))
            await s.flush()
            return tuple(out)

    async def revoke_access(
        self,
        provider: ClientId,
        service_code: str,
        subjects: Sequence[AccessSubject],
        *,
        endpoint_id: int | None = None,
    ) -> None:
        """Take the endpoint (default: the base endpoint) away from ``subjects`` (404 for a missing right)."""
        async with self._tx() as s:
            owner = await self._client_row(s, provider)
            endpoint = await self._endpoint_row(s, owner, service_code, endpoint_id)
            for subject in subjects:
                text = format_id(subject)
                query = select(AccessRightRow).where(
                    AccessRightRow.endpoint_id == endpoint.id, AccessRightRow.subject == text
                )
                right = await self._one(s, query, not_found(f"{text} has no such access right", subject=text))
                await s.delete(right)

    async def list_access_rights(
        self, provider: ClientId, service_code: str | None = None
    ) -> tuple[AccessRight, ...]:
        """The rights to ``provider``'s services (or one service code), by service code and endpoint."""
        async with self._tx() as s:
            owner = await self._client_row(s, provider)
            query = (
                select(AccessRightRow, EndpointRow)
                .join(EndpointRow, AccessRightRow.endpoint_id == EndpointRow.id)
                .where(AccessRightRow.client_id == owner.id)
                .order_by(EndpointRow.service_code, EndpointRow.id, AccessRightRow.subject)
            )
            if service_code is not None:
                query = query.where(EndpointRow.service_code == service_code)
            rows = (await s.execute(query)).all()
        return tuple(AccessRight(_subject(r.subject), _endpoint(e, provider), r.granted_at) for r, e in rows)

    # -- the decision -------------------------------------------------------------------------------------

    async def is_allowed(
        self,
        provider: ClientId,
        service_code: str,
        subject: ClientId,
        *,
        method: str | None = None,
        path: str | None = None,
        global_groups: Collection[GlobalGroupId] = (),
    ) -> bool:
        """Whether ``subject`` may call ``service_code`` of ``provider`` (deny by default).

        ``method`` and ``path`` (the request path after the service code) are given for REST requests and
        left out for SOAP. ``global_groups`` are the global groups ``subject`` belongs to according to
        verified global configuration.
        """
        if (method is None) != (path is None):
            raise invalid("a REST access check needs both the method and the path; SOAP neither")
        if not isinstance(subject, MemberId | SubsystemId):
            raise invalid("the subject of an access check is a member or a subsystem")
        if not all(isinstance(g, GlobalGroupId) for g in global_groups):
            raise invalid("global_groups holds global group identifiers only")
        own = format_id(subject)
        groups = {format_id(g) for g in global_groups}
        async with self._tx() as s:
            owner = (await s.scalars(select(ClientRow).where(client_where(provider)))).one_or_none()
            if owner is None:
                return False  # (1)
            query = (
                select(AccessRightRow.subject, EndpointRow.method, EndpointRow.path)
                .join(EndpointRow, AccessRightRow.endpoint_id == EndpointRow.id)
                .where(AccessRightRow.client_id == owner.id, EndpointRow.service_code == service_code)
            )
            rights = (await s.execute(query)).all()
            local = await self._local_groups_of(s, owner.id, own)
        for right_subject, right_method, right_path in rights:
            if right_subject != own and right_subject not in groups and right_subject not in local:  # (2)
                continue
            if method is None or path is None:  # (3) SOAP
                if is_base_endpoint(right_method, right_path):
                    return True
            elif endpoint_matches(right_method, right_path, method, path):
                return True
        return False

    async def check_access(
        self,
        provider: ClientId,
        service_code: str,
        subject: ClientId,
        *,
        method: str | None = None,
        path: str | None = None,
        global_groups: Collection[GlobalGroupId] = (),
    ) -> None:
        """:meth:`is_allowed`, failing closed: ``access_denied`` unless the request is allowed."""
        if not await self.is_allowed(
            provider, service_code, subject, method=method, path=path, global_groups=global_groups
        ):
            raise XRoadError(
                FaultCode.ACCESS_DENIED,
                f"Request is not allowed: {format_id(subject)} may not call {service_code!r} "
                f"of {format_id(provider)}",
                details={"client": format_id(subject), "service_code": service_code},
                kind=ErrorKind.DENIED,
            )

    # -- local groups -------------------------------------------------------------------------------------

    async def add_local_group(self, client: ClientId, code: str, description: str) -> LocalGroup:
        check_code("groupCode", code, strict=self._strict)
        check_text("local group description", description)
        async with self._tx() as s:
            owner = await self._client_row(s, client)
            same = select(LocalGroupRow.id).where(
                LocalGroupRow.client_id == owner.id, LocalGroupRow.code == code
            )
            if (await s.scalars(same)).first() is not None:
                raise conflict(f"{format_id(client)} already has local group {code!r}", group=code)
            row = LocalGroupRow(
                client_id=owner.id, code=code, description=description, updated_at=self._clock()
            )
            s.add(row)
            await s.flush()
            return await self._local_group(s, row, client)

    async def get_local_group(self, client: ClientId, code: str) -> LocalGroup:
        async with self._tx() as s:
            return await self._local_group(s, await self._group_row(s, client, code), client)

    async def list_local_groups(self, client: ClientId) -> tuple[LocalGroup, ...]:
        async with self._tx() as s:
            owner = await self._client_row(s, client)
            query = (
                select(LocalGroupRow).where(LocalGroupRow.client_id == owner.id).order_by(LocalGroupRow.code)
            )
            return tuple([await self._local_group(s, r, client) for r in await s.scalars(query)])

    async def set_local_group_description(self, client: ClientId, code: str, description: str) -> LocalGroup:
        check_text("local group description", description)
        async with self._tx() as s:
            row = await self._group_row(s, client, code)
            row.description, row.updated_at = description, self._clock()
            return await self._local_group(s, row, client)

    async def delete_local_group(self, client: ClientId, code: str) -> None:
        """Remove a local group, its members and the access rights given to it."""
        async with self._tx() as s:
            row = await self._group_row(s, client, code)
            await s.execute(
                delete(AccessRightRow).where(
                    AccessRightRow.client_id == row.client_id,
                    AccessRightRow.subject == format_id(LocalGroupId(code)),
                )
            )
            await s.delete(row)

    async def add_local_group_members(
        self, client: ClientId, code: str, members: Sequence[ClientId]
    ) -> LocalGroup:
        """Add members (of any instance) to a local group (409 for one already in it)."""
        async with self._tx() as s:
            row = await self._group_row(s, client, code)
            now = self._clock()
            for member in members:
                text = format_id(member)
                same = select(LocalGroupMemberRow.id).where(
                    LocalGroupMemberRow.group_id == row.id, LocalGroupMemberRow.member == text
                )
                if (await s.scalars(same)).first() is not None:
                    raise conflict(f"{text} is already in local group {code!r}", member=text)
                s.add(LocalGroupMemberRow(group_id=row.id, member=text, added_at=now))
            row.updated_at = now
            await s.flush()
            return await self._local_group(s, row, client)

    async def remove_local_group_members(
        self, client: ClientId, code: str, members: Sequence[ClientId]
    ) -> LocalGroup:
        async with self._tx() as s:
            row = await self._group_row(s, client, code)
            for member in members:
                text = format_id(member)
                query = select(LocalGroupMemberRow).where(
                    LocalGroupMemberRow.group_id == row.id, LocalGroupMemberRow.member == text
                )
                found = await self._one(
                    s, query, not_found(f"{text} is not in local group {code!r}", member=text)
                )
                await s.delete(found)
            row.updated_at = self._clock()
            await s.flush()
            return await self._local_group(s, row, client)

    # -- inside a transaction -----------------------------------------------------------------------------

    async def _endpoint_row(
        self, s: AsyncSession, owner: ClientRow, service_code: str, endpoint_id: int | None
    ) -> EndpointRow:
        query = select(EndpointRow).where(
            EndpointRow.client_id == owner.id, EndpointRow.service_code == service_code
        )
        if endpoint_id is None:
            query = query.where(EndpointRow.method == ANY_METHOD, EndpointRow.path == ANY_PATH)
        else:
            query = query.where(EndpointRow.id == endpoint_id)
        what = "service" if endpoint_id is None else f"endpoint {endpoint_id} of service"
        row: EndpointRow = await self._one(
            s, query, not_found(f"the client has no {what} {service_code!r}", service=service_code)
        )
        return row

    async def _check_subject(self, s: AsyncSession, owner: ClientRow, subject: AccessSubject) -> None:
        if not isinstance(subject, MemberId | SubsystemId | GlobalGroupId | LocalGroupId):
            raise invalid(f"{type(subject).__name__} cannot be given access")
        if isinstance(subject, LocalGroupId):
            query = select(LocalGroupRow.id).where(
                LocalGroupRow.client_id == owner.id, LocalGroupRow.code == subject.group_code
            )
            if (await s.scalars(query)).first() is None:
                raise not_found(
                    f"the client has no local group {subject.group_code!r}", group=subject.group_code
                )

    @staticmethod
    async def _local_groups_of(s: AsyncSession, client_id: int, member: str) -> set[str]:
        """``LOCALGROUP:code`` of each of the client's local groups that ``member`` is in."""
        query = (
            select(LocalGroupRow.code)
            .join(LocalGroupMemberRow, LocalGroupMemberRow.group_id == LocalGroupRow.id)
            .where(LocalGroupRow.client_id == client_id, LocalGroupMemberRow.member == member)
        )
        return {format_id(LocalGroupId(code)) for code in await s.scalars(query)}

    async def _group_row(self, s: AsyncSession, client: ClientId, code: str) -> LocalGroupRow:
        owner = await self._client_row(s, client)
        query = select(LocalGroupRow).where(LocalGroupRow.client_id == owner.id, LocalGroupRow.code == code)
        row: LocalGroupRow = await self._one(
            s, query, not_found(f"{format_id(client)} has no local group {code!r}", group=code)
        )
        return row

    @staticmethod
    async def _local_group(s: AsyncSession, row: LocalGroupRow, client: ClientId) -> LocalGroup:
        query = (
            select(LocalGroupMemberRow.member)
            .where(LocalGroupMemberRow.group_id == row.id)
            .order_by(LocalGroupMemberRow.id)
        )
        members = tuple(parse_client(m) for m in await s.scalars(query))
        return LocalGroup(client, row.code, row.description, row.updated_at, members)
