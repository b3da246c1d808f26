"""Hosted clients: add (refusing duplicates), remove, connection type, information system TLS certificates.

    >>> await add_client(ctx, parse_client_id("MN:GOV:9010001:civil-registry"))  # doctest: +SKIP
    Client(client=SubsystemId(...), connection_type=<ConnectionType.SSLAUTH: 'SSLAUTH'>, state=...)

Every refusal is an :class:`~xroad_mn.errors.XRoadError` and changes nothing: ``conflict`` (409) for a
client the node hosts already, ``invalid_request`` (400) for one of another instance, ``not_found`` (404).
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.db import Client, ClientState, ConnectionType
from security_server.operations.context import NodeContext
from xroad_mn.certs import load_certificate
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, format_id

__all__ = [
    "add_client",
    "add_is_certificate",
    "delete_client",
    "delete_is_certificate",
    "list_clients",
    "list_is_certificates",
    "parse_certificate",
    "set_connection_type",
    "sha256_of",
]


async def list_clients(ctx: NodeContext) -> tuple[Client, ...]:
    return await ctx.store.list_clients()


async def add_client(
    ctx: NodeContext, client: ClientId, *, connection_type: ConnectionType = ConnectionType.SSLAUTH
) -> Client:
    """Host ``client`` (a member or subsystem of the node's instance), in state ``saved``; register it
    with :func:`security_server.operations.registration.register_client`."""
    return await ctx.store.add_client(client, connection_type=connection_type, state=ClientState.SAVED)


async def delete_client(ctx: NodeContext, client: ClientId) -> None:
    """Stop hosting ``client`` with its services, access rights and local groups (not the owner; not a
    client the registry still lists, which must be unregistered first)."""
    found = await ctx.store.get_client(client)
    if found.state in (ClientState.REGISTERED, ClientState.REGISTRATION_IN_PROGRESS):
        raise XRoadError(
            FaultCode.CONFLICT,
            f"{format_id(client)} is {found.state.value}: unregister it at the registry first",
            details={"client": format_id(client), "state": found.state.value},
            http_status=409,
        )
    await ctx.store.delete_client(client)


async def set_connection_type(ctx: NodeContext, client: ClientId, connection_type: ConnectionType) -> Client:
    return await ctx.store.set_connection_type(client, connection_type)


async def add_is_certificate(ctx: NodeContext, client: ClientId, data: bytes | x509.Certificate) -> bytes:
    """Trust an information system's TLS certificate (PEM, DER or base64) for ``client``; its SHA-256."""
    cert = data if isinstance(data, x509.Certificate) else parse_certificate(data)
    return await ctx.store.add_is_cert(client, cert)


async def list_is_certificates(ctx: NodeContext, client: ClientId) -> tuple[x509.Certificate, ...]:
    return await ctx.store.list_is_certs(client)


async def delete_is_certificate(ctx: NodeContext, client: ClientId, sha256: bytes) -> None:
    await ctx.store.delete_is_cert(client, sha256)


def sha256_of(cert: x509.Certificate) -> bytes:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()


def parse_certificate(data: bytes) -> x509.Certificate:
    """One certificate from PEM, DER or base64 given by a person: ``incorrect_certificate`` (400) else."""
    try:
        return load_certificate(data)
    except XRoadError as e:
        raise XRoadError(e.code, e.message, details=e.details, http_status=400) from e
