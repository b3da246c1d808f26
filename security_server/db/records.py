"""What the node store takes and returns: frozen dataclasses, identifiers as :mod:`xroad_mn.identifiers`.

Example::

    >>> from security_server.db.records import NewService
    >>> NewService("getPerson", url="https://civil-registry.internal/getPerson").timeout_seconds
    60
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeAlias

from cryptography import x509

from security_server.db.models import (
    CertificateStatus,
    ClientState,
    ConnectionType,
    DescriptionType,
    KeyUsage,
)
from xroad_mn.identifiers import ClientId, GlobalGroupId, LocalGroupId, MemberId, SecurityServerId

__all__ = [
    "DEFAULT_SERVICE_TIMEOUT_SECONDS",
    "AccessRight",
    "AccessSubject",
    "Certificate",
    "Client",
    "Csr",
    "Endpoint",
    "LocalGroup",
    "NewEndpoint",
    "NewService",
    "ServerIdentity",
    "Service",
    "ServiceDescription",
    "TokenKey",
]

DEFAULT_SERVICE_TIMEOUT_SECONDS: Final = 60
"""X-Road's default service timeout."""

AccessSubject: TypeAlias = ClientId | GlobalGroupId | LocalGroupId
"""Who an access right is given to. A local group is one of the service provider's own groups."""


@dataclass(frozen=True)
class ServerIdentity:
    """This node: ``SERVER:owner/server_code`` and its address (as announced to the registry)."""

    server: SecurityServerId
    address: str | None


@dataclass(frozen=True)
class Client:
    client: ClientId
    connection_type: ConnectionType
    state: ClientState


@dataclass(frozen=True)
class NewService:
    """A service to add with a description (from a WSDL operation, an OpenAPI document or a REST URL)."""

    code: str
    version: str | None = None
    url: str | None = None
    timeout_seconds: int = DEFAULT_SERVICE_TIMEOUT_SECONDS
    ssl_authentication: bool = True
    enabled: bool = True
    title: str | None = None


@dataclass(frozen=True)
class NewEndpoint:
    """An endpoint to add: of a service code, a method (``*`` for any) and a path pattern."""

    service_code: str
    method: str
    path: str


@dataclass(frozen=True)
class Service:
    code: str
    version: str | None
    url: str | None
    timeout_seconds: int
    ssl_authentication: bool
    enabled: bool
    title: str | None
    description_id: int


@dataclass(frozen=True)
class ServiceDescription:
    id: int
    client: ClientId
    type: DescriptionType
    url: str | None
    document: bytes | None
    disabled: bool
    disabled_notice: str | None
    refreshed_at: datetime
    services: tuple[Service, ...]


@dataclass(frozen=True)
class Endpoint:
    id: int
    client: ClientId
    service_code: str
    method: str
    path: str
    generated: bool


@dataclass(frozen=True)
class AccessRight:
    """``subject`` may call ``endpoint`` of ``endpoint.client``."""

    subject: AccessSubject
    endpoint: Endpoint
    granted_at: datetime


@dataclass(frozen=True)
class LocalGroup:
    client: ClientId
    code: str
    description: str
    updated_at: datetime
    members: tuple[ClientId, ...]


@dataclass(frozen=True)
class TokenKey:
    """A key of the node's token as the database knows it (the key itself stays in the token)."""

    key_id: str
    usage: KeyUsage
    label: str | None
    member: MemberId | None
    """The member a signing key signs for; ``None`` for the authentication key."""
    created_at: datetime


@dataclass(frozen=True)
class Certificate:
    key_id: str
    certificate: x509.Certificate
    sha256: bytes
    status: CertificateStatus
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class Csr:
    id: int
    key_id: str
    member: MemberId | None
    subject_name: str
    der: bytes
    created_at: datetime
