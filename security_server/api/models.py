"""The admin API's request and response bodies, and conversions from the node's records.

Identifiers are shown in the colon form (``MN:GOV:9010001:civil-registry``), groups in X-Road's string
form (``GLOBALGROUP:MN/owners``, ``LOCALGROUP:auditors``); inputs take either form
(:mod:`security_server.ids`). Certificates are returned as base64 DER and accepted as PEM or base64 DER.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import BaseModel, ConfigDict, Field

from security_server.db import (
    AccessRight,
    CertificateStatus,
    Client,
    ClientState,
    ConnectionType,
    Csr,
    DescriptionType,
    Endpoint,
    KeyUsage,
    LocalGroup,
    Service,
    ServiceDescription,
    TokenKey,
)
from security_server.ids import format_for_people, format_subject
from security_server.ocsp import OcspStatusKind
from security_server.operations import CertificateState, NodeStatus
from xroad_mn.tokens import TokenState, TokenType

MAX_LIST: int = 100
"""Most identifiers one request names (subjects of an access right, members of a local group)."""


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=64 * 1024)


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- certificates, keys, CSRs ----------------------------------------------------------------------------


class CertificateOut(Out):
    subject: str
    issuer: str
    serial_number: str = Field(description="Upper-case hex")
    not_before: datetime
    not_after: datetime
    sha256: str = Field(description="SHA-256 of the DER, lower-case hex")
    der_base64: str


def cert_out(cert: x509.Certificate) -> CertificateOut:
    der = cert.public_bytes(Encoding.DER)
    return CertificateOut(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial_number=format(cert.serial_number, "X"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=hashlib.sha256(der).hexdigest(),
        der_base64=base64.b64encode(der).decode("ascii"),
    )


class NodeCertificateOut(Out):
    key_id: str
    usage: KeyUsage
    member_id: str | None
    status: CertificateStatus = Field(description="Registration state")
    active: bool
    ocsp_status: OcspStatusKind | None = Field(description="None while no verified OCSP response is held")
    ocsp_this_update: datetime | None
    ocsp_error: str | None
    certificate: CertificateOut


def node_cert_out(c: CertificateState) -> NodeCertificateOut:
    return NodeCertificateOut(
        key_id=c.key_id,
        usage=c.usage,
        member_id=format_for_people(c.member) if c.member is not None else None,
        status=c.status,
        active=c.active,
        ocsp_status=c.ocsp_status,
        ocsp_this_update=c.ocsp_this_update,
        ocsp_error=c.ocsp_error,
        certificate=cert_out(c.certificate),
    )


class KeyOut(Out):
    key_id: str
    usage: KeyUsage
    label: str | None
    member_id: str | None
    created_at: datetime


def key_out(k: TokenKey) -> KeyOut:
    return KeyOut(
        key_id=k.key_id,
        usage=k.usage,
        label=k.label,
        member_id=format_for_people(k.member) if k.member is not None else None,
        created_at=k.created_at,
    )


class KeyIn(In):
    usage: KeyUsage
    member_id: str | None = Field(default=None, description="Signing keys: the member (default the owner)")
    label: str | None = None


class CsrIn(In):
    ca_name: str | None = Field(default=None, description="Default: the only approved CA that fits")
    member_name: str | None = None


class KeyAndCsrIn(CsrIn):
    usage: KeyUsage
    member_id: str | None = None


class CsrOut(Out):
    id: int
    key_id: str
    member_id: str | None
    subject_name: str
    ca_name: str | None = None
    der_base64: str
    created_at: datetime


def csr_out(c: Csr, ca_name: str | None = None) -> CsrOut:
    return CsrOut(
        id=c.id,
        key_id=c.key_id,
        member_id=format_for_people(c.member) if c.member is not None else None,
        subject_name=c.subject_name,
        ca_name=ca_name,
        der_base64=base64.b64encode(c.der).decode("ascii"),
        created_at=c.created_at,
    )


class CertificateRequestIn(KeyAndCsrIn):
    ca_url: str = Field(
        description="Base URL of a CA speaking POST /ca/certificates, e.g. http://127.0.0.1:8899"
    )


class CertificateIn(In):
    certificate: str = Field(description="PEM or base64 DER")


class CertificateUpdate(In):
    active: bool


class ImportedOut(Out):
    key_id: str
    status: CertificateStatus
    ca_name: str
    member_id: str | None
    certificate: CertificateOut


# -- registration ----------------------------------------------------------------------------------------


class AuthCertRegistrationIn(In):
    sha256: str | None = Field(default=None, description="Default: the newest saved auth certificate")
    address: str | None = Field(default=None, description="Default: the node's address")


class ClientRegistrationIn(In):
    subsystem_name: str | None = None


class RequestIdOut(Out):
    request_id: int


class StateChangeOut(Out):
    old: str
    new: str
    sha256: str | None
    client_id: str | None


# -- clients ---------------------------------------------------------------------------------------------


class ClientOut(Out):
    client_id: str
    connection_type: ConnectionType
    state: ClientState


def client_out(c: Client) -> ClientOut:
    return ClientOut(client_id=format_for_people(c.client), connection_type=c.connection_type, state=c.state)


class ClientIn(In):
    client_id: str = Field(description="Member or subsystem, colon or string form")
    connection_type: ConnectionType = ConnectionType.SSLAUTH


class ClientUpdate(In):
    connection_type: ConnectionType


# -- status ----------------------------------------------------------------------------------------------


class TokenOut(Out):
    type: TokenType
    label: str
    state: TokenState
    key_count: int


class GlobalConfOut(Out):
    instance: str | None
    downloaded_at: datetime | None
    age_seconds: float | None
    expires_at: datetime | None
    error_code: str | None
    error: str | None


class StatusOut(Out):
    server_id: str
    owner_id: str
    server_code: str
    address: str | None
    token: TokenOut
    certificates: list[NodeCertificateOut]
    global_configuration: GlobalConfOut
    clients: list[ClientOut]


def status_out(s: NodeStatus) -> StatusOut:
    server = s.identity.server
    g = s.globalconf
    return StatusOut(
        server_id=format_for_people(server),
        owner_id=format_for_people(server.owner),
        server_code=server.server_code,
        address=s.identity.address,
        token=TokenOut(
            type=s.token.type, label=s.token.label, state=s.token.state, key_count=s.token.key_count
        ),
        certificates=[node_cert_out(c) for c in s.certificates],
        global_configuration=GlobalConfOut(
            instance=g.instance,
            downloaded_at=g.downloaded_at,
            age_seconds=g.age_seconds,
            expires_at=g.expires_at,
            error_code=g.error_code,
            error=g.error,
        ),
        clients=[client_out(c) for c in s.clients],
    )


# -- services --------------------------------------------------------------------------------------------


class ServiceOut(Out):
    service_code: str
    service_version: str | None
    url: str | None
    timeout_seconds: int
    ssl_authentication: bool
    enabled: bool
    title: str | None
    description_id: int


def service_out(s: Service) -> ServiceOut:
    return ServiceOut(
        service_code=s.code,
        service_version=s.version,
        url=s.url,
        timeout_seconds=s.timeout_seconds,
        ssl_authentication=s.ssl_authentication,
        enabled=s.enabled,
        title=s.title,
        description_id=s.description_id,
    )


class ServiceDescriptionOut(Out):
    id: int
    client_id: str
    type: DescriptionType
    url: str | None
    has_document: bool
    disabled: bool
    disabled_notice: str | None
    refreshed_at: datetime
    services: list[ServiceOut]


def description_out(d: ServiceDescription) -> ServiceDescriptionOut:
    return ServiceDescriptionOut(
        id=d.id,
        client_id=format_for_people(d.client),
        type=d.type,
        url=d.url,
        has_document=d.document is not None,
        disabled=d.disabled,
        disabled_notice=d.disabled_notice,
        refreshed_at=d.refreshed_at,
        services=[service_out(s) for s in d.services],
    )


class ServiceDescriptionIn(In):
    type: DescriptionType
    url: str | None = Field(default=None, description="REST base URL, OpenAPI 3 or WSDL URL")
    document_base64: str | None = Field(default=None, description="An uploaded OpenAPI 3 document")
    service_code: str | None = Field(default=None, description="REST and OpenAPI 3: the service's code")


class ServiceDescriptionRefreshIn(In):
    document_base64: str | None = None


class ServiceDescriptionUpdate(In):
    disabled: bool
    disabled_notice: str | None = None


class ServiceUpdate(In):
    url: str | None = None
    timeout_seconds: int | None = None
    ssl_authentication: bool | None = None
    enabled: bool | None = None


class EndpointOut(Out):
    id: int
    client_id: str
    service_code: str
    method: str
    path: str
    generated: bool


def endpoint_out(e: Endpoint) -> EndpointOut:
    return EndpointOut(
        id=e.id,
        client_id=format_for_people(e.client),
        service_code=e.service_code,
        method=e.method,
        path=e.path,
        generated=e.generated,
    )


class EndpointIn(In):
    method: str = Field(description="An HTTP method or * for any")
    path: str = Field(description="A path pattern: * one segment, ** any rest")


# -- access rights and local groups ----------------------------------------------------------------------


class AccessRightsIn(In):
    subjects: list[str] = Field(min_length=1, max_length=MAX_LIST)
    method: str | None = Field(default=None, description="With path: one endpoint; neither: the service")
    path: str | None = None


class AccessRightOut(Out):
    subject: str
    service_code: str
    endpoint: EndpointOut
    granted_at: datetime


def right_out(r: AccessRight) -> AccessRightOut:
    return AccessRightOut(
        subject=format_subject(r.subject),
        service_code=r.endpoint.service_code,
        endpoint=endpoint_out(r.endpoint),
        granted_at=r.granted_at,
    )


class LocalGroupIn(In):
    code: str
    description: str


class LocalGroupUpdate(In):
    description: str


class MembersIn(In):
    members: list[str] = Field(min_length=1, max_length=MAX_LIST)


class LocalGroupOut(Out):
    group_id: str
    code: str
    description: str
    updated_at: datetime
    members: list[str]


def group_out(g: LocalGroup) -> LocalGroupOut:
    return LocalGroupOut(
        group_id=f"LOCALGROUP:{g.code}",
        code=g.code,
        description=g.description,
        updated_at=g.updated_at,
        members=[format_for_people(m) for m in g.members],
    )
