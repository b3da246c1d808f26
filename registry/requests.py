"""The management-request workflow: submit, auto-approve, approve (apply), reject and revoke.

Both the management service (requests a security server sends) and the admin API use these functions. A
request is first checked against the registry's data (the business rules X-Road's central server applies),
then recorded in state ``submitted``; approving it applies its effect to the registry and records the
transition in its history. Only a submitted request can be approved, rejected or revoked (409 otherwise).

Example::

    >>> import asyncio
    >>> from registry.requests import approve_request, submit_request
    >>> from xroad_mn.management import ClientRegRequest
    >>> from xroad_mn.identifiers import MemberId
    >>> owner = MemberId("MN", "GOV", "5012345")
    >>> async def main(store) -> None:
    ...     req = ClientRegRequest(owner.server("ss1"), owner.subsystem("civil-registry"), "Civil registry")
    ...     record = await submit_request(store, req, raw=None, auto_approve=frozenset(), user=str(owner))
    ...     approved = await approve_request(store, record.id, user="admin")
    ...     print(approved.state.value)
    >>> asyncio.run(main(store))  # doctest: +SKIP
    approved

Rules (following X-Road's ``*RequestHandler`` classes of the central server):

* ``authCertReg``: the server's owner must be a member; the certificate must not be registered on any server
  nor in another pending ``authCertReg`` (``conflict``). Approval creates the server when it does not exist,
  sets its address, registers the certificate and adds the owner to the ``security-server-owners`` global
  group when that group exists.
* ``clientReg``: the server must exist, the client's member must exist, the owner member itself cannot be
  registered, the client must not be registered already nor pending (``conflict``). Approval creates the
  subsystem when the member has none of that code (X-Road does the same), then registers it.
* ``clientDeletion``, ``clientRename``: the client must be registered on the server (enabled or disabled).
* ``clientDisable`` / ``clientEnable``: the client must be registered on the server and enabled / disabled
  (``conflict`` otherwise); the owner member cannot be disabled. Approval flips the registration's
  ``enabled`` flag: a disabled client stays registered (``clientReg`` of it is a ``conflict``) but global
  configuration leaves it out of the server's clients, as X-Road's central server does.
* ``authCertDeletion``: the certificate must be registered on that server.
* ``ownerChange``: the new owner must be a member, a client of the server and not the current owner.
* ``addressChange``, ``maintenanceModeEnable`` / ``Disable``: the server must exist.
* Any type: a request equal to one still ``submitted`` (same type, server, client and payload) is a
  ``conflict``, so repeating a request cannot pile up copies for an administrator.

Atomicity. Approval is one transaction (:meth:`registry.db.RegistryStore.apply_request`): with the request
row locked it checks the rules again, applies every write of the effect (``authCertReg`` for a new server
creates the server and registers the certificate; ``clientReg`` for a new subsystem creates and registers
it) and records the transition. A failed check or write leaves nothing of the effect and the request
``submitted``; of two concurrent approvals of one request the second waits, finds it ``approved`` and fails
with ``conflict`` without applying anything.
"""

from __future__ import annotations

from typing import Final, Protocol, assert_never

import structlog
from cryptography import x509

from registry.db import (
    ManagementRequestRecord,
    RegistryStore,
    RequestAction,
    RequestEffects,
    RequestState,
    ServerClient,
)
from registry.db.request_rows import client_of
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.globalconf.params import Member, SecurityServer, auth_cert_hash
from xroad_mn.identifiers import ClientId, GlobalGroupId, MemberId, SecurityServerId, SubsystemId
from xroad_mn.management import (
    AddressChangeRequest,
    AuthCertDeletionRequest,
    AuthCertRegRequest,
    ClientDeletionRequest,
    ClientDisableRequest,
    ClientEnableRequest,
    ClientRegRequest,
    ClientRenameRequest,
    MaintenanceModeDisableRequest,
    MaintenanceModeEnableRequest,
    ManagementRequest,
    ManagementRequestType,
    OwnerChangeRequest,
)

__all__ = [
    "AUTO_APPROVE_USER",
    "SECURITY_SERVER_OWNERS_GROUP",
    "approve_request",
    "reject_request",
    "revoke_request",
    "submit_request",
]

log = structlog.get_logger(__name__)

SECURITY_SERVER_OWNERS_GROUP: Final = "security-server-owners"
"""X-Road's global group of security server owners; an approved ``authCertReg`` adds the owner to it."""
AUTO_APPROVE_USER: Final = "auto-approve"
"""The user recorded in the history of an automatically approved request."""
_PENDING: Final = RequestState.SUBMITTED


def _conflict(message: str, **details: str) -> XRoadError:
    return XRoadError(FaultCode.CONFLICT, message, details=details, kind=ErrorKind.CONFLICT)


def _refused(message: str, code: str = FaultCode.INVALID_REQUEST, **details: str) -> XRoadError:
    return XRoadError(code, message, details=details, kind=ErrorKind.BAD_INPUT)


def _unknown_member(member: MemberId) -> XRoadError:
    return XRoadError(
        FaultCode.UNKNOWN_MEMBER,
        f"member {member} is not registered",
        details={"member": str(member)},
        kind=ErrorKind.NOT_FOUND,
    )


def _certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as e:
        raise _refused(
            "the authentication certificate is not a DER certificate", FaultCode.INCORRECT_CERTIFICATE
        ) from e


# --------------------------------------------------------------------------------------------------------
# Reading the registry


class _Registry(Protocol):
    """What the business checks read: the store itself (at submission) or, at approval, the
    :class:`~registry.db.RequestEffects` of the approving transaction."""

    async def get_member(self, member: MemberId) -> Member: ...

    async def get_security_server(self, server: SecurityServerId) -> SecurityServer: ...

    async def list_security_servers(self) -> tuple[SecurityServer, ...]: ...

    async def list_server_clients(self, server: SecurityServerId) -> tuple[ServerClient, ...]: ...


async def _member_exists(reg: _Registry, member: MemberId) -> bool:
    try:
        await reg.get_member(member)
    except XRoadError as e:
        if e.code == FaultCode.NOT_FOUND:
            return False
        raise
    return True


async def _server_or_none(reg: _Registry, server: SecurityServerId) -> SecurityServer | None:
    try:
        return await reg.get_security_server(server)
    except XRoadError as e:
        if e.code == FaultCode.NOT_FOUND:
            return None
        raise


async def _server(reg: _Registry, server: SecurityServerId) -> SecurityServer:
    found = await _server_or_none(reg, server)
    if found is None:
        raise XRoadError(
            FaultCode.INVALID_SECURITY_SERVER,
            f"security server {server} is not registered",
            details={"server": str(server)},
            kind=ErrorKind.NOT_FOUND,
        )
    return found


async def _subsystem_exists(reg: _Registry, subsystem: SubsystemId) -> bool:
    member = await reg.get_member(subsystem.member)
    return any(s.code == subsystem.subsystem_code for s in member.subsystems)


async def _cert_registered(reg: _Registry, digest: bytes) -> SecurityServer | None:
    for server in await reg.list_security_servers():
        if digest in server.auth_cert_hashes:
            return server
    return None


async def _pending(
    store: RegistryStore, rtype: ManagementRequestType, server: SecurityServerId | None = None
) -> tuple[ManagementRequestRecord, ...]:
    return await store.list_requests(state=_PENDING, type=rtype, security_server=server)


async def _registration(reg: _Registry, server_id: SecurityServerId, client: ClientId) -> ServerClient | None:
    """``client``'s registration on the server (enabled or disabled), or None; the server must exist."""
    await _server(reg, server_id)
    return next((c for c in await reg.list_server_clients(server_id) if c.client == client), None)


async def _registered(reg: _Registry, server_id: SecurityServerId, client: ClientId) -> ServerClient:
    found = await _registration(reg, server_id, client)
    if found is None:
        raise XRoadError(
            FaultCode.NOT_FOUND,
            f"{client} is not a client of {server_id}",
            details={"client": str(client)},
            kind=ErrorKind.NOT_FOUND,
        )
    return found


# --------------------------------------------------------------------------------------------------------
# Business checks (before recording, and again inside the approving transaction)


async def _check_auth_cert_reg(reg: _Registry, server: SecurityServerId, cert: x509.Certificate) -> None:
    if not await _member_exists(reg, server.owner):
        raise _unknown_member(server.owner)
    digest = auth_cert_hash(cert)
    holder = await _cert_registered(reg, digest)
    if holder is not None:
        raise _conflict("the authentication certificate is already registered", hash=digest.hex())


async def _check_client_reg(reg: _Registry, server_id: SecurityServerId, client: ClientId) -> None:
    await _server(reg, server_id)
    member = client if isinstance(client, MemberId) else client.member
    if not await _member_exists(reg, member):
        raise _unknown_member(member)
    if client == server_id.owner:
        raise _refused(f"the owner {client} cannot be registered as a client of its own server")
    found = await _registration(reg, server_id, client)
    if found is not None:
        state = "" if found.enabled else " (disabled; enable it with clientEnable)"
        raise _conflict(f"{client} is already a client of {server_id}{state}", client=str(client))


async def _check_client_removal(
    reg: _Registry, request: ClientDeletionRequest | ClientDisableRequest | ClientEnableRequest
) -> None:
    server_id, client = request.server, request.client
    found = await _registered(reg, server_id, client)
    if isinstance(request, ClientEnableRequest):
        if found.enabled:
            raise _conflict(f"{client} is already enabled on {server_id}", client=str(client))
        return
    if client == server_id.owner:
        raise _refused(f"the owner {client} cannot be removed from or disabled on its own server")
    if isinstance(request, ClientDisableRequest) and not found.enabled:
        raise _conflict(f"{client} is already disabled on {server_id}", client=str(client))


async def _check_auth_cert_deletion(reg: _Registry, request: AuthCertDeletionRequest) -> None:
    server = await _server(reg, request.server)
    digest = auth_cert_hash(_certificate(request.auth_cert))
    if digest not in server.auth_cert_hashes:
        raise XRoadError(
            FaultCode.NOT_FOUND,
            f"{request.server} has no such authentication certificate",
            details={"hash": digest.hex()},
            kind=ErrorKind.NOT_FOUND,
        )


async def _check_owner_change(reg: _Registry, server_id: SecurityServerId, new_owner: MemberId) -> None:
    await _server(reg, server_id)
    if not await _member_exists(reg, new_owner):
        raise _unknown_member(new_owner)
    if new_owner == server_id.owner:
        raise _refused(f"{new_owner} already owns {server_id}")
    if await _registration(reg, server_id, new_owner) is None:
        raise _refused(f"the new owner {new_owner} must be a client of {server_id}")


async def _check(reg: _Registry, request: ManagementRequest) -> None:
    """The business rules of ``request`` against the registry as ``reg`` sees it (see the module
    docstring)."""
    match request:
        case AuthCertRegRequest():
            await _check_auth_cert_reg(reg, request.server, _certificate(request.auth_cert))
        case ClientRegRequest():
            await _check_client_reg(reg, request.server, request.client)
        case ClientDeletionRequest() | ClientDisableRequest() | ClientEnableRequest():
            await _check_client_removal(reg, request)
        case ClientRenameRequest():
            if not isinstance(request.client, SubsystemId):
                raise _refused("only a subsystem can be renamed", FaultCode.INVALID_CLIENT_IDENTIFIER)
            await _registered(reg, request.server, request.client)
        case AuthCertDeletionRequest():
            await _check_auth_cert_deletion(reg, request)
        case OwnerChangeRequest():
            await _check_owner_change(reg, request.server, request.client)
        case AddressChangeRequest() | MaintenanceModeEnableRequest() | MaintenanceModeDisableRequest():
            await _server(reg, request.server)
        case _:
            assert_never(request)


async def _check_not_pending(store: RegistryStore, request: ManagementRequest) -> None:
    """Refuse a request that is already waiting for approval (X-Road's ``MR_EXISTS``): an
    ``authCertReg`` of the same certificate, a ``clientReg`` of the same client on the same server, and
    for every other type the same request (server, client and the other fields; no unbounded pile of
    copies)."""
    if isinstance(request, AuthCertRegRequest):
        for other in await _pending(store, request.TYPE):
            if isinstance(other.request, AuthCertRegRequest) and other.request.auth_cert == request.auth_cert:
                raise _conflict(
                    f"management request {other.id} already registers this authentication certificate",
                    request_id=str(other.id),
                )
        return
    if isinstance(request, ClientRegRequest):
        for other in await _pending(store, request.TYPE, request.server):
            if other.client == request.client:
                raise _conflict(
                    f"management request {other.id} already registers {request.client} on {request.server}",
                    request_id=str(other.id),
                )
        return
    # Every other type: the same request submitted again.
    for other in await _pending(store, request.TYPE, request.server):
        if other.request == request:
            raise _conflict(
                f"management request {other.id} is the same {request.TYPE.value} and waits for approval",
                request_id=str(other.id),
            )


# --------------------------------------------------------------------------------------------------------
# Effects (inside the approving transaction)


async def _add_to_owners_group(fx: RequestEffects, owner: MemberId) -> None:
    group = GlobalGroupId(owner.instance, SECURITY_SERVER_OWNERS_GROUP)
    try:
        found = await fx.get_global_group(group)
    except XRoadError as e:
        if e.code == FaultCode.NOT_FOUND:
            return
        raise
    if owner not in found.members:
        await fx.add_group_member(group, owner)


async def _apply(fx: RequestEffects, request: ManagementRequest) -> None:
    server_id = request.server
    match request:
        case AuthCertRegRequest():
            cert = _certificate(request.auth_cert)
            if await _server_or_none(fx, server_id) is None:
                await fx.add_security_server(server_id, request.address)
                await fx.add_auth_cert(server_id, cert)
            else:
                await fx.add_auth_cert(server_id, cert)
                await fx.set_server_address(server_id, request.address)
            await _add_to_owners_group(fx, server_id.owner)
        case AuthCertDeletionRequest():
            await fx.remove_auth_cert(server_id, auth_cert_hash(_certificate(request.auth_cert)))
        case AddressChangeRequest():
            await fx.set_server_address(server_id, request.address)
        case MaintenanceModeEnableRequest():
            await fx.set_maintenance_mode(server_id, True, request.message)
        case MaintenanceModeDisableRequest():
            await fx.set_maintenance_mode(server_id, False)
        case ClientRegRequest():
            client = request.client
            if isinstance(client, SubsystemId) and not await _subsystem_exists(fx, client):
                await fx.add_subsystem(client, request.subsystem_name)
            await fx.register_client(server_id, client)
        case ClientDeletionRequest():
            await fx.unregister_client(server_id, request.client)
        case ClientDisableRequest() | ClientEnableRequest():
            await fx.set_client_enabled(server_id, request.client, isinstance(request, ClientEnableRequest))
        case ClientRenameRequest():
            if not isinstance(request.client, SubsystemId):  # _check refused it already
                raise _refused("only a subsystem can be renamed", FaultCode.INVALID_CLIENT_IDENTIFIER)
            await fx.rename_subsystem(request.client, request.subsystem_name)
        case OwnerChangeRequest():
            await fx.change_server_owner(server_id, request.client)
        case _:
            assert_never(request)


async def _check_and_apply(fx: RequestEffects, record: ManagementRequestRecord) -> None:
    # 1. Its rules still hold (the registry may have changed since submission).
    await _check(fx, record.request)
    # 2. Every write of its effect.
    await _apply(fx, record.request)


# --------------------------------------------------------------------------------------------------------
# The workflow


async def submit_request(
    store: RegistryStore,
    request: ManagementRequest,
    *,
    raw: bytes | None,
    auto_approve: frozenset[ManagementRequestType],
    user: str,
    comment: str | None = None,
) -> ManagementRequestRecord:
    """Check ``request`` against the registry, record it as ``submitted`` and, when its type is in
    ``auto_approve``, approve it at once.

    ``raw`` is the request as received (kept as evidence). A refused request records nothing. An
    auto-approval whose effect fails leaves the request submitted for an administrator.
    """
    # 1. Business rules against the registry as it is.
    await _check(store, request)
    # 2. Not a duplicate of a request waiting for approval.
    await _check_not_pending(store, request)
    # 3. Record.
    record = await store.submit_request(request, raw=raw, user=user, comment=comment)
    client = client_of(request)
    log.info(
        "management_request_submitted",
        request_id=record.id,
        type=request.TYPE.value,
        server=str(request.server),
        client=str(client) if client is not None else None,
    )
    # 4. Auto-approval.
    if request.TYPE in auto_approve:
        try:
            return await approve_request(store, record.id, user=AUTO_APPROVE_USER, comment="auto-approved")
        except XRoadError as e:
            log.warning(
                "management_request_auto_approval_failed", request_id=record.id, code=e.code, error=e.message
            )
            return await store.get_request(record.id)
    return record


async def approve_request(
    store: RegistryStore, request_id: int, *, user: str, comment: str | None = None
) -> ManagementRequestRecord:
    """Apply a submitted request's effect to the registry and record it as ``approved``, in one transaction
    (409 unless it is submitted; the business rules are checked again, as the registry may have changed
    since). On any error nothing is applied and the request stays as it was."""
    approved = await store.apply_request(
        request_id, RequestAction.APPROVE, effect=_check_and_apply, user=user, comment=comment
    )
    log.info("management_request_approved", request_id=request_id, type=approved.type.value, user=user)
    return approved


async def reject_request(
    store: RegistryStore, request_id: int, *, user: str, comment: str | None = None
) -> ManagementRequestRecord:
    """Record a submitted request as ``rejected``; the registry is not changed (409 unless submitted)."""
    rejected = await store.transition_request(request_id, RequestAction.REJECT, user=user, comment=comment)
    log.info("management_request_rejected", request_id=request_id, user=user)
    return rejected


async def revoke_request(
    store: RegistryStore, request_id: int, *, user: str, comment: str | None = None
) -> ManagementRequestRecord:
    """Record a submitted request as ``revoked`` (withdrawn by its sender); 409 unless submitted."""
    revoked = await store.transition_request(request_id, RequestAction.REVOKE, user=user, comment=comment)
    log.info("management_request_revoked", request_id=request_id, user=user)
    return revoked
