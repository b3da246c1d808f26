"""The node's identity, its hosted clients and their information systems' TLS certificates.

Example::

    >>> async def setup(store: ClientStore) -> None:
    ...     owner = MemberId("MN", "GOV", "5012345")
    ...     await store.init_server(owner, "ss1", address="127.0.0.2")   # the owner becomes a client
    ...     await store.add_client(owner.subsystem("civil-registry"), connection_type=ConnectionType.NOSSL)
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from security_server.db.base import StoreBase, client_of, client_where
from security_server.db.checks import check_client, check_code, check_text, conflict, invalid, not_found
from security_server.db.models import (
    SERVER_ROW_ID,
    URL_LENGTH,
    ClientRow,
    ClientState,
    ConnectionType,
    IsCertRow,
    ServerRow,
)
from security_server.db.records import Client, ServerIdentity
from xroad_mn.identifiers import ClientId, MemberId, SubsystemId, format_id

__all__ = ["ClientStore"]


def _client(row: ClientRow) -> Client:
    return Client(client_of(row), row.connection_type, row.state)


def _new_client(client: ClientId, connection_type: ConnectionType, state: ClientState) -> ClientRow:
    return ClientRow(
        instance=client.instance,
        member_class=client.member_class,
        member_code=client.member_code,
        subsystem_code=client.subsystem_code if isinstance(client, SubsystemId) else None,
        connection_type=connection_type,
        state=state,
    )


class ClientStore(StoreBase):
    """Server identity (one row), clients (members and subsystems) and their IS certificates."""

    # -- identity -----------------------------------------------------------------------------------------

    async def init_server(
        self, owner: MemberId, server_code: str, address: str | None = None
    ) -> ServerIdentity:
        """Set the node's owner and server code, once (409 after). The owner becomes a client (``saved``)
        unless it is one already."""
        check_client(owner, strict=self._strict)
        check_code("serverCode", server_code, strict=self._strict)
        if address is not None:
            check_text("server address", address, limit=URL_LENGTH)
        async with self._tx() as s:
            if await s.get(ServerRow, SERVER_ROW_ID) is not None:
                raise conflict("the node is already initialised")
            row = (await s.scalars(select(ClientRow).where(client_where(owner)))).one_or_none()
            if row is None:
                row = _new_client(owner, ConnectionType.SSLAUTH, ClientState.SAVED)
                s.add(row)
                await s.flush()
            s.add(ServerRow(id=SERVER_ROW_ID, owner_id=row.id, server_code=server_code, address=address))
            await s.flush()
            return await self._identity(s)

    async def get_server(self) -> ServerIdentity:
        """The node's identity (409 before :meth:`init_server`)."""
        async with self._tx() as s:
            return await self._identity(s)

    async def set_server_address(self, address: str | None) -> ServerIdentity:
        if address is not None:
            check_text("server address", address, limit=URL_LENGTH)
        async with self._tx() as s:
            (await self._server_row(s)).address = address
            return await self._identity(s)

    async def change_owner(self, owner: MemberId) -> ServerIdentity:
        """Make ``owner``, a member client of this node, its owner (after an approved ``ownerChange``)."""
        if not isinstance(owner, MemberId):
            raise invalid("the owner of a security server is a member, not a subsystem")
        async with self._tx() as s:
            server = await self._server_row(s)
            server.owner_id = (await self._client_row(s, owner)).id
            return await self._identity(s)

    async def _identity(self, s: AsyncSession) -> ServerIdentity:
        server = await self._server_row(s)
        owner = client_of(await s.get_one(ClientRow, server.owner_id))
        assert isinstance(owner, MemberId)
        return ServerIdentity(owner.server(server.server_code), server.address)

    # -- clients ------------------------------------------------------------------------------------------

    async def add_client(
        self,
        client: ClientId,
        *,
        connection_type: ConnectionType = ConnectionType.SSLAUTH,
        state: ClientState = ClientState.SAVED,
    ) -> Client:
        """Host ``client`` on this node (409 when it is already hosted). It must be of the node's instance."""
        check_client(client, strict=self._strict)
        async with self._tx() as s:
            instance = (await self._identity(s)).server.instance
            if client.instance != instance:
                raise invalid(
                    f"{format_id(client)} is not of this node's instance {instance}", client=format_id(client)
                )
            if (await s.scalars(select(ClientRow.id).where(client_where(client)))).first() is not None:
                raise conflict(
                    f"{format_id(client)} is already a client of this node", client=format_id(client)
                )
            row = _new_client(client, connection_type, state)
            s.add(row)
            await s.flush()
            return _client(row)

    async def get_client(self, client: ClientId) -> Client:
        async with self._tx() as s:
            return _client(await self._client_row(s, client))

    async def list_clients(self) -> tuple[Client, ...]:
        """Every client: the members, then the subsystems, each in identifier order."""
        async with self._tx() as s:
            rows = (await s.scalars(select(ClientRow))).all()
        return tuple(sorted((_client(r) for r in rows), key=lambda c: c.client))

    async def set_connection_type(self, client: ClientId, connection_type: ConnectionType) -> Client:
        async with self._tx() as s:
            row = await self._client_row(s, client)
            row.connection_type = connection_type
            return _client(row)

    async def set_client_state(self, client: ClientId, state: ClientState) -> Client:
        async with self._tx() as s:
            row = await self._client_row(s, client)
            row.state = state
            return _client(row)

    async def delete_client(self, client: ClientId) -> None:
        """Remove a client with its certificates, services, access rights and local groups (409 for the
        owner)."""
        async with self._tx() as s:
            row = await self._client_row(s, client)
            server = await s.get(ServerRow, SERVER_ROW_ID)
            if server is not None and server.owner_id == row.id:
                raise conflict(f"{format_id(client)} owns this node and cannot be removed")
            await s.delete(row)

    # -- information system certificates ------------------------------------------------------------------

    async def add_is_cert(self, client: ClientId, cert: x509.Certificate) -> bytes:
        """Trust ``cert`` for ``client``'s information systems (SSLAUTH); returns its SHA-256."""
        der = cert.public_bytes(Encoding.DER)
        digest = hashlib.sha256(der).digest()
        async with self._tx() as s:
            row = await self._client_row(s, client)
            known = select(IsCertRow.id).where(IsCertRow.client_id == row.id, IsCertRow.cert_hash == digest)
            if (await s.scalars(known)).first() is not None:
                raise conflict("the certificate is already trusted for this client", sha256=digest.hex())
            s.add(IsCertRow(client_id=row.id, cert_der=der, cert_hash=digest))
        return digest

    async def list_is_certs(self, client: ClientId) -> tuple[x509.Certificate, ...]:
        async with self._tx() as s:
            row = await self._client_row(s, client)
            query = select(IsCertRow.cert_der).where(IsCertRow.client_id == row.id).order_by(IsCertRow.id)
            ders = (await s.scalars(query)).all()
        return tuple(x509.load_der_x509_certificate(d) for d in ders)

    async def delete_is_cert(self, client: ClientId, sha256: bytes) -> None:
        async with self._tx() as s:
            row = await self._client_row(s, client)
            query = select(IsCertRow).where(IsCertRow.client_id == row.id, IsCertRow.cert_hash == sha256)
            cert = await self._one(
                s, query, not_found("no such certificate of this client", sha256=sha256.hex())
            )
            await s.delete(cert)
