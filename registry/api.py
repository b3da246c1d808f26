"""The registry's admin REST API (``/api/v1``), described by the OpenAPI document it serves.

Every operation is declared once in :data:`API` (an :class:`xroad_mn.admin.AdminApi` with X-Road's central
server roles, :data:`registry.home.REGISTRY_ROLES`); :func:`add_admin_routes` mounts the declarations, and
``GET /api/v1/openapi.json`` serves the OpenAPI document of the same declarations. Each call goes through
:mod:`xroad_mn.admin.api`'s steps, in this order:

1. authentication: ``Authorization: X-Road-ApiKey token=<key>``, checked against the hashed keys of
   ``api-keys.json`` (401 ``unauthorized``, written to the audit log);
2. rate limit per API key (per remote address without one): 20/s and 600/min by default (429);
3. authorisation: observers only read; each changing operation names the roles allowed (403);
4. the body: at most 50 KB (413), JSON valid against the operation's model (400 ``invalid_body``);
5. the operation, on the :class:`~registry.db.RegistryStore`;
6. for a change: an audit record (``event``, ``user`` = API key id, ``time``, ``ipaddress``, ``auth``,
   ``url``, ``data``) and the change event that regenerates global configuration at once. A refused change
   (steps 3–5) is audited as ``<event> failed`` with the reason, as X-Road does.

Errors are X-Road REST errors (``{"type", "message", "detail"}`` and ``X-Road-Error``) from
:func:`xroad_mn.transport.server.xroad_error_middleware`. Identifiers are shown in X-Road's admin API
colon form: ``MN:GOV:5012345`` (member), ``MN:GOV:5012345:civil-registry`` (subsystem), ``MN:GOV:5012345:ss1``
(security server). Paths and bodies accept that form and X-Road's string form as well
(``MEMBER:MN/GOV/5012345``, ``SUBSYSTEM:MN/GOV/5012345/civil-registry``, ``SERVER:MN/GOV/5012345/ss1``;
in a path, ``/`` is written ``%2F``), see :mod:`registry.validation`. Certificates are returned as base64
DER and accepted as PEM or base64 DER.

Example::

    $ curl -H 'Authorization: X-Road-ApiKey token=...' http://127.0.0.1:4000/api/v1/members
    $ curl -H 'Authorization: X-Road-ApiKey token=...' -H 'Content-Type: application/json' \\
          -d '{"member_class": "GOV", "member_code": "5012345", "name": "Ministry"}' \\
          http://127.0.0.1:4000/api/v1/members
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeVar

import structlog
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import BaseModel, ConfigDict, Field

from registry import operations
from registry import requests as workflow
from registry.audit import AuditEvent
from registry.context import CHANGED_KEY, CLOCK_KEY, PUBLISHER_KEY, STORE_KEY, TOKEN_KEY
from registry.db import (
    ConfigurationSigningKey,
    GlobalSettings,
    KeyKind,
    ManagementRequestRecord,
    RegistryStore,
    RequestState,
)
from registry.db.request_rows import RequestPayload
from registry.globalconf_gen import GeneratedConfiguration
from registry.home import REGISTRY_ROLES
from registry.operations import add_signing_key, common_name, configuration_anchor, parse_certificate
from registry.settings import RegistrySettings
from xroad_mn import admin
from xroad_mn.admin import AdminApi, QueryParam, Reply, Role
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.params import (
    ApprovedCAEntry,
    ApprovedTSAEntry,
    CaInfo,
    GlobalGroup,
    Member,
    MemberClass,
    OcspInfo,
    SecurityServer,
)
from xroad_mn.identifiers import (
    ClientId,
    GlobalGroupId,
    MemberId,
    SecurityServerId,
    SubsystemId,
    format_colon_id,
    parse_client_for_people,
    parse_member_for_people,
    parse_server_for_people,
    parse_subsystem_for_people,
)
from xroad_mn.management import ManagementRequestType

__all__ = [
    "API",
    "SETTINGS_KEY",
    "Handler",
    "OperationHandler",
    "RegistryCall",
    "add_admin_routes",
    "ca_out",
    "cert_out",
    "conf_out",
    "group_out",
    "key_out",
    "member_out",
    "operation",
    "request_out",
    "server_out",
    "settings_out",
    "tsa_out",
]

log = structlog.get_logger(__name__)

MAX_COMMENT_CHARS: Final = 1024
DEFAULT_PAGE_LIMIT: Final = 100
"""Management requests a list returns when the caller names no ``limit``."""
MAX_PAGE_LIMIT: Final = 1000

SETTINGS_KEY: Final = web.AppKey("registry_settings", RegistrySettings)

RO: Final = frozenset({Role.REGISTRATION_OFFICER})
SO: Final = frozenset({Role.SECURITY_OFFICER})
SA: Final = frozenset({Role.SYSTEM_ADMINISTRATOR})
SO_SA: Final = SO | SA

_T = TypeVar("_T")


# ---------------------------------------------------------------------------------------------------------
# The call


@dataclass(frozen=True)
class RegistryCall(admin.Call):
    """What a handler gets: the request, the caller's key, the validated body and the registry's
    resources."""

    @property
    def store(self) -> RegistryStore:
        return self.request.app[STORE_KEY]

    @property
    def settings(self) -> RegistrySettings:
        return self.request.app[SETTINGS_KEY]

    def now(self) -> datetime:
        return self.request.app[CLOCK_KEY]()


Handler = admin.Handler[RegistryCall, _T]
"""An operation's handler; its reply's type is the operation's declared response type."""
OperationHandler = admin.Handler[RegistryCall, object]

API: Final = AdminApi(
    RegistryCall,
    title="xroad-mn registry admin API",
    version="1.0.0",
    roles=REGISTRY_ROLES,
    authentication_event=AuditEvent.API_KEY_AUTHENTICATION,
    description="Members, security servers, trust services, signing keys, management requests and global "
    "configuration of an X-Road compatible central registry.",
)
operation = API.operation
"""Declare an operation of :data:`API` (see :meth:`xroad_mn.admin.AdminApi.operation`)."""


# ---------------------------------------------------------------------------------------------------------
# Models


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=64 * 1024)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceOut(_Out):
    instance_identifier: str
    source_addresses: list[str]
    configuration_versions: list[int]
    management_service_address: str


class GlobalSettingsOut(_Out):
    instance_identifier: str
    ocsp_freshness_seconds: int
    timestamping_interval_seconds: int
    configuration_expiry_seconds: int
    management_service_provider: str | None
    management_service_address: str | None
    management_service_certificate: str | None = Field(description="Base64 DER")


class GlobalSettingsUpdate(_In):
    ocsp_freshness_seconds: int | None = Field(default=None, gt=0)
    timestamping_interval_seconds: int | None = Field(default=None, gt=0)
    configuration_expiry_seconds: int | None = Field(default=None, gt=0)
    management_service_provider: str | None = Field(default=None, description="Subsystem, colon form")
    management_service_address: str | None = None
    management_service_certificate: str | None = Field(default=None, description="PEM or base64 DER")


class MemberClassIn(_In):
    code: str
    description: str


class MemberClassUpdate(_In):
    description: str


class MemberClassOut(_Out):
    code: str
    description: str


class SubsystemOut(_Out):
    subsystem_id: str
    subsystem_code: str
    name: str | None


class MemberOut(_Out):
    member_id: str
    member_class: str
    member_code: str
    name: str
    subsystems: list[SubsystemOut]


class MemberIn(_In):
    member_class: str
    member_code: str
    name: str


class MemberUpdate(_In):
    name: str


class SubsystemIn(_In):
    subsystem_code: str
    name: str | None = None


class SubsystemUpdate(_In):
    name: str | None


class CertificateOut(_Out):
    subject: str
    issuer: str
    serial_number: str
    not_before: datetime
    not_after: datetime
    sha256: str = Field(description="SHA-256 of the DER, lower-case hex")
    der_base64: str


class SecurityServerOut(_Out):
    security_server_id: str
    owner_id: str
    server_code: str
    address: str | None
    auth_cert_hashes: list[str] = Field(description="SHA-256 of each authentication certificate, hex")
    clients: list[str] = Field(description="Registered and enabled clients (what global configuration lists)")
    disabled_clients: list[str] = Field(
        default_factory=list, description="Registered clients disabled by an approved clientDisable"
    )
    in_maintenance_mode: bool
    maintenance_message: str | None


class SecurityServerIn(_In):
    owner_id: str = Field(description="Owner member, colon form")
    server_code: str
    address: str | None = None


class SecurityServerUpdate(_In):
    address: str | None = None
    in_maintenance_mode: bool | None = None
    maintenance_message: str | None = None


class CertificateIn(_In):
    certificate: str = Field(description="PEM or base64 DER")


class ClientIn(_In):
    client_id: str = Field(description="Member or subsystem, colon form")


class GlobalGroupIn(_In):
    code: str
    description: str


class GlobalGroupOut(_Out):
    group_id: str
    code: str
    description: str
    members: list[str]


class OcspResponderIn(_In):
    url: str
    certificate: str | None = Field(default=None, description="PEM or base64 DER")


class IntermediateCaIn(_In):
    certificate: str
    ocsp_responders: list[OcspResponderIn] = Field(default_factory=list, max_length=20)


class CertificationServiceIn(_In):
    name: str | None = Field(default=None, description="Default: the CA certificate's subject CN")
    certificate: str = Field(description="Top CA certificate, PEM or base64 DER")
    certificate_profile_info: str = Field(description="X-Road certificate profile class name")
    authentication_only: bool = False
    ocsp_responders: list[OcspResponderIn] = Field(default_factory=list, max_length=20)
    intermediate_cas: list[IntermediateCaIn] = Field(default_factory=list, max_length=20)


class OcspResponderOut(_Out):
    url: str
    certificate: CertificateOut | None


class CaOut(_Out):
    certificate: CertificateOut
    ocsp_responders: list[OcspResponderOut]


class CertificationServiceOut(_Out):
    name: str
    certificate_profile_info: str
    authentication_only: bool
    top_ca: CaOut
    intermediate_cas: list[CaOut]


class TimestampingServiceIn(_In):
    name: str | None = Field(default=None, description="Default: the TSA certificate's subject CN")
    url: str
    certificate: str = Field(description="PEM or base64 DER")


class TimestampingServiceOut(_Out):
    name: str
    url: str
    certificate: CertificateOut


class SigningKeyIn(_In):
    kind: KeyKind


class SigningKeyOut(_Out):
    key_id: str
    kind: KeyKind
    active: bool
    created_at: datetime
    certificate: CertificateOut


class RequestEventOut(_Out):
    at: datetime
    from_state: RequestState | None
    to_state: RequestState
    user: str | None
    comment: str | None


class ManagementRequestOut(_Out):
    id: int
    type: ManagementRequestType
    state: RequestState
    security_server_id: str
    client_id: str | None
    payload: RequestPayload
    created_at: datetime
    updated_at: datetime
    history: list[RequestEventOut]


class RequestDecisionIn(_In):
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)


class AnchorOut(_Out):
    kind: KeyKind
    hash: str = Field(description="SHA-224, colon-separated upper-case hex (as X-Road shows it)")
    hash_hex: str
    xml: str


class GlobalConfigurationOut(_Out):
    instance_identifier: str
    generated_at: datetime
    expire_date: datetime
    versions: list[int]


# ---------------------------------------------------------------------------------------------------------
# Conversions


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


def member_out(instance: str, m: Member) -> MemberOut:
    mid = m.id(instance)
    return MemberOut(
        member_id=format_colon_id(mid),
        member_class=m.member_class.code,
        member_code=m.member_code,
        name=m.name,
        subsystems=[
            SubsystemOut(
                subsystem_id=format_colon_id(mid.subsystem(s.code)), subsystem_code=s.code, name=s.name
            )
            for s in m.subsystems
        ],
    )


async def server_view(store: RegistryStore, ss: SecurityServer) -> SecurityServerOut:
    """A security server as the API shows it, with its disabled clients (global configuration omits them)."""
    registrations = await store.list_server_clients(ss.owner.server(ss.server_code))
    disabled = [format_colon_id(r.client) for r in registrations if not r.enabled]
    return server_out(ss).model_copy(update={"disabled_clients": disabled})


def server_out(ss: SecurityServer) -> SecurityServerOut:
    return SecurityServerOut(
        security_server_id=format_colon_id(ss.owner.server(ss.server_code)),
        owner_id=format_colon_id(ss.owner),
        server_code=ss.server_code,
        address=ss.address,
        auth_cert_hashes=[h.hex() for h in ss.auth_cert_hashes],
        clients=[format_colon_id(c) for c in ss.clients],
        in_maintenance_mode=ss.in_maintenance_mode,
        maintenance_message=ss.maintenance_message,
    )


def group_out(instance: str, g: GlobalGroup) -> GlobalGroupOut:
    return GlobalGroupOut(
        group_id=f"{instance}:{g.code}",
        code=g.code,
        description=g.description,
        members=[format_colon_id(c) for c in g.members],
    )


def _ca_info_out(info: CaInfo) -> CaOut:
    return CaOut(
        certificate=cert_out(info.cert),
        ocsp_responders=[
            OcspResponderOut(url=o.url, certificate=cert_out(o.cert) if o.cert is not None else None)
            for o in info.ocsp
        ],
    )


def ca_out(ca: ApprovedCAEntry) -> CertificationServiceOut:
    return CertificationServiceOut(
        name=ca.name,
        certificate_profile_info=ca.certificate_profile_info,
        authentication_only=bool(ca.authentication_only),
        top_ca=_ca_info_out(ca.top_ca),
        intermediate_cas=[_ca_info_out(i) for i in ca.intermediate_cas],
    )


def tsa_out(tsa: ApprovedTSAEntry) -> TimestampingServiceOut:
    return TimestampingServiceOut(name=tsa.name, url=tsa.url, certificate=cert_out(tsa.cert))


def key_out(key: ConfigurationSigningKey) -> SigningKeyOut:
    return SigningKeyOut(
        key_id=key.key_id,
        kind=key.kind,
        active=key.active,
        created_at=key.created_at,
        certificate=cert_out(key.certificate),
    )


def request_out(r: ManagementRequestRecord) -> ManagementRequestOut:
    return ManagementRequestOut(
        id=r.id,
        type=r.type,
        state=r.state,
        security_server_id=format_colon_id(r.security_server),
        client_id=format_colon_id(r.client) if r.client is not None else None,
        payload=r.payload,
        created_at=r.created_at,
        updated_at=r.updated_at,
        history=[
            RequestEventOut(
                at=e.at, from_state=e.from_state, to_state=e.to_state, user=e.user, comment=e.comment
            )
            for e in r.history
        ],
    )


def _member_id(text: str) -> MemberId:
    return parse_member_for_people(text)


def _subsystem_id(text: str) -> SubsystemId:
    return parse_subsystem_for_people(text)


def _server_id(text: str) -> SecurityServerId:
    return parse_server_for_people(text)


def _client_id(text: str) -> ClientId:
    return parse_client_for_people(text)


async def _group_id(call: RegistryCall) -> GlobalGroupId:
    instance = (await call.store.get_settings()).instance
    return GlobalGroupId(instance, call.param("group_code"))


def _kind(call: RegistryCall) -> KeyKind:
    try:
        return KeyKind(call.param("kind"))
    except ValueError:
        raise XRoadError(
            FaultCode.NOT_FOUND, "configuration anchors are 'internal' or 'external'", http_status=404
        ) from None


def _int_query(call: RegistryCall, name: str, default: int, *, maximum: int) -> int:
    text = call.query(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 10 or int(text) > maximum:
        raise XRoadError(
            FaultCode.INVALID_REQUEST, f"{name} must be an integer from 0 to {maximum}", http_status=400
        )
    return int(text)


def _request_id(call: RegistryCall) -> int:
    text = call.param("request_id")
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise XRoadError(
            FaultCode.NOT_FOUND, f"management request {text[:20]!r} does not exist", http_status=404
        )
    return int(text)


# ---------------------------------------------------------------------------------------------------------
# Operations: instance and global settings


def settings_out(s: GlobalSettings) -> GlobalSettingsOut:
    return GlobalSettingsOut(
        instance_identifier=s.instance,
        ocsp_freshness_seconds=s.ocsp_freshness_seconds,
        timestamping_interval_seconds=s.timestamping_interval_seconds,
        configuration_expiry_seconds=s.configuration_expiry_seconds,
        management_service_provider=(
            format_colon_id(s.management_service_provider) if s.management_service_provider else None
        ),
        management_service_address=s.management_service_address,
        management_service_certificate=(
            base64.b64encode(s.management_service_cert.public_bytes(Encoding.DER)).decode()
            if s.management_service_cert is not None
            else None
        ),
    )


@operation(
    "GET", "/instance", "Instance identifier and publishing settings", tag="settings", response=InstanceOut
)
async def get_instance(call: RegistryCall) -> Reply[InstanceOut]:
    stored = await call.store.get_settings()
    return Reply(
        InstanceOut(
            instance_identifier=stored.instance,
            source_addresses=list(call.settings.source_addresses()),
            configuration_versions=list(call.settings.configuration_versions),
            management_service_address=call.settings.management_service_address(),
        )
    )


@operation("GET", "/global-settings", "Global settings", tag="settings", response=GlobalSettingsOut)
async def get_global_settings(call: RegistryCall) -> Reply[GlobalSettingsOut]:
    return Reply(settings_out(await call.store.get_settings()))


@operation(
    "PATCH",
    "/global-settings",
    "Change global settings",
    tag="settings",
    roles=SA,
    event=AuditEvent.EDIT_GLOBAL_SETTINGS,
    body=GlobalSettingsUpdate,
    response=GlobalSettingsOut,
)
async def update_global_settings(call: RegistryCall) -> Reply[GlobalSettingsOut]:
    body = call.typed_body(GlobalSettingsUpdate)
    expiry, interval = body.configuration_expiry_seconds, call.settings.regenerate_interval_seconds
    if expiry is not None and expiry < 2 * interval:
        raise XRoadError(
            FaultCode.INVALID_REQUEST,
            f"configuration_expiry_seconds must be at least twice the regeneration interval "
            f"({2 * interval:g} s): a configuration must not expire before the next one is published",
            http_status=400,
        )
    cert = body.management_service_certificate
    updated = await call.store.update_settings(
        ocsp_freshness_seconds=body.ocsp_freshness_seconds,
        timestamping_interval_seconds=body.timestamping_interval_seconds,
        configuration_expiry_seconds=body.configuration_expiry_seconds,
        management_service_provider=(
            _subsystem_id(body.management_service_provider) if body.management_service_provider else None
        ),
        management_service_address=body.management_service_address,
        management_service_cert=parse_certificate(cert) if cert else None,
    )
    return Reply(settings_out(updated), audit=body.model_dump(exclude_none=True))


# -- member classes


@operation("GET", "/member-classes", "List member classes", tag="members", response=list[MemberClassOut])
async def list_member_classes(call: RegistryCall) -> Reply[list[MemberClassOut]]:
    classes: tuple[MemberClass, ...] = await call.store.list_member_classes()
    return Reply([MemberClassOut(code=c.code, description=c.description) for c in classes])


@operation(
    "POST",
    "/member-classes",
    "Add a member class",
    tag="members",
    roles=SA,
    event=AuditEvent.ADD_MEMBER_CLASS,
    body=MemberClassIn,
    response=MemberClassOut,
    status=201,
)
async def add_member_class(call: RegistryCall) -> Reply[MemberClassOut]:
    body = call.typed_body(MemberClassIn)
    mc = await call.store.add_member_class(body.code, body.description)
    return Reply(MemberClassOut(code=mc.code, description=mc.description), audit=body.model_dump())


@operation(
    "PATCH",
    "/member-classes/{code}",
    "Change a member class's description",
    tag="members",
    roles=SA,
    event=AuditEvent.EDIT_MEMBER_CLASS,
    body=MemberClassUpdate,
    response=MemberClassOut,
)
async def update_member_class(call: RegistryCall) -> Reply[MemberClassOut]:
    body = call.typed_body(MemberClassUpdate)
    mc = await call.store.update_member_class(call.param("code"), body.description)
    return Reply(MemberClassOut(code=mc.code, description=mc.description), audit={"code": mc.code})


# -- members and subsystems


@operation("GET", "/members", "List members with their subsystems", tag="members", response=list[MemberOut])
async def list_members(call: RegistryCall) -> Reply[list[MemberOut]]:
    instance = (await call.store.get_settings()).instance
    return Reply([member_out(instance, m) for m in await call.store.list_members()])


@operation(
    "POST",
    "/members",
    "Add a member",
    tag="members",
    roles=RO,
    event=AuditEvent.ADD_MEMBER,
    body=MemberIn,
    response=MemberOut,
    status=201,
)
async def add_member(call: RegistryCall) -> Reply[MemberOut]:
    body = call.typed_body(MemberIn)
    instance = (await call.store.get_settings()).instance
    mid = MemberId(instance, body.member_class, body.member_code)
    member = await operations.add_member(call.store, mid, body.name)
    return Reply(member_out(instance, member), audit={"member_id": format_colon_id(mid), "name": body.name})


@operation("GET", "/members/{member_id}", "Get a member", tag="members", response=MemberOut)
async def get_member(call: RegistryCall) -> Reply[MemberOut]:
    mid = _member_id(call.param("member_id"))
    return Reply(member_out(mid.instance, await call.store.get_member(mid)))


@operation(
    "PATCH",
    "/members/{member_id}",
    "Rename a member",
    tag="members",
    roles=RO,
    event=AuditEvent.EDIT_MEMBER_NAME,
    body=MemberUpdate,
    response=MemberOut,
)
async def rename_member(call: RegistryCall) -> Reply[MemberOut]:
    body = call.typed_body(MemberUpdate)
    mid = _member_id(call.param("member_id"))
    member = await call.store.rename_member(mid, body.name)
    return Reply(
        member_out(mid.instance, member), audit={"member_id": format_colon_id(mid), "name": body.name}
    )


@operation(
    "POST",
    "/members/{member_id}/subsystems",
    "Add a subsystem to a member",
    tag="members",
    roles=RO,
    event=AuditEvent.ADD_SUBSYSTEM,
    body=SubsystemIn,
    response=SubsystemOut,
    status=201,
)
async def add_subsystem(call: RegistryCall) -> Reply[SubsystemOut]:
    body = call.typed_body(SubsystemIn)
    sid = _member_id(call.param("member_id")).subsystem(body.subsystem_code)
    sub = await call.store.add_subsystem(sid, body.name)
    out = SubsystemOut(subsystem_id=format_colon_id(sid), subsystem_code=sub.code, name=sub.name)
    return Reply(out, audit={"subsystem_id": out.subsystem_id, "name": body.name})


@operation(
    "PATCH",
    "/subsystems/{subsystem_id}",
    "Rename a subsystem",
    tag="members",
    roles=RO,
    event=AuditEvent.EDIT_SUBSYSTEM_NAME,
    body=SubsystemUpdate,
    response=SubsystemOut,
)
async def rename_subsystem(call: RegistryCall) -> Reply[SubsystemOut]:
    body = call.typed_body(SubsystemUpdate)
    sid = _subsystem_id(call.param("subsystem_id"))
    sub = await call.store.rename_subsystem(sid, body.name)
    out = SubsystemOut(subsystem_id=format_colon_id(sid), subsystem_code=sub.code, name=sub.name)
    return Reply(out, audit={"subsystem_id": out.subsystem_id, "name": body.name})


# -- security servers


@operation(
    "GET",
    "/security-servers",
    "List security servers",
    tag="security servers",
    response=list[SecurityServerOut],
)
async def list_security_servers(call: RegistryCall) -> Reply[list[SecurityServerOut]]:
    return Reply([await server_view(call.store, s) for s in await call.store.list_security_servers()])


@operation(
    "POST",
    "/security-servers",
    "Add a security server (without a management request)",
    tag="security servers",
    roles=RO,
    event=AuditEvent.ADD_SECURITY_SERVER,
    body=SecurityServerIn,
    response=SecurityServerOut,
    status=201,
)
async def add_security_server(call: RegistryCall) -> Reply[SecurityServerOut]:
    body = call.typed_body(SecurityServerIn)
    sid = _member_id(body.owner_id).server(body.server_code)
    ss = await call.store.add_security_server(sid, body.address)
    return Reply(server_out(ss), audit={"security_server_id": format_colon_id(sid), "address": body.address})


@operation(
    "GET",
    "/security-servers/{server_id}",
    "Get a security server",
    tag="security servers",
    response=SecurityServerOut,
)
async def get_security_server(call: RegistryCall) -> Reply[SecurityServerOut]:
    ss = await call.store.get_security_server(_server_id(call.param("server_id")))
    return Reply(await server_view(call.store, ss))


@operation(
    "PATCH",
    "/security-servers/{server_id}",
    "Change a server's address or maintenance mode",
    tag="security servers",
    roles=RO,
    event=AuditEvent.EDIT_SECURITY_SERVER,
    body=SecurityServerUpdate,
    response=SecurityServerOut,
)
async def update_security_server(call: RegistryCall) -> Reply[SecurityServerOut]:
    body = call.typed_body(SecurityServerUpdate)
    sid = _server_id(call.param("server_id"))
    ss = await call.store.get_security_server(sid)
    if "address" in body.model_fields_set:
        ss = await call.store.set_server_address(sid, body.address)
    if body.in_maintenance_mode is not None:
        ss = await call.store.set_maintenance_mode(sid, body.in_maintenance_mode, body.maintenance_message)
    return Reply(server_out(ss), audit={"security_server_id": format_colon_id(sid), **body.model_dump()})


@operation(
    "GET",
    "/security-servers/{server_id}/auth-certs",
    "List a server's authentication certificates",
    tag="security servers",
    response=list[CertificateOut],
)
async def list_auth_certs(call: RegistryCall) -> Reply[list[CertificateOut]]:
    certs = await call.store.list_auth_certs(_server_id(call.param("server_id")))
    return Reply([cert_out(c) for c in certs])


@operation(
    "POST",
    "/security-servers/{server_id}/auth-certs",
    "Register an authentication certificate",
    tag="security servers",
    roles=RO,
    event=AuditEvent.ADD_SECURITY_SERVER_AUTHENTICATION_CERTIFICATE,
    body=CertificateIn,
    response=CertificateOut,
    status=201,
)
async def add_auth_cert(call: RegistryCall) -> Reply[CertificateOut]:
    cert = parse_certificate(call.typed_body(CertificateIn).certificate, "authentication certificate")
    sid = _server_id(call.param("server_id"))
    await call.store.add_auth_cert(sid, cert)
    out = cert_out(cert)
    return Reply(out, audit={"security_server_id": format_colon_id(sid), "cert_hash": out.sha256})


@operation(
    "DELETE",
    "/security-servers/{server_id}/auth-certs/{cert_hash}",
    "Delete an authentication certificate (by SHA-256)",
    tag="security servers",
    roles=RO,
    event=AuditEvent.DELETE_SECURITY_SERVER_AUTHENTICATION_CERTIFICATE,
)
async def delete_auth_cert(call: RegistryCall) -> Reply[None]:
    sid = _server_id(call.param("server_id"))
    text = call.param("cert_hash").lower()
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        digest = b""
    if len(digest) != hashlib.sha256().digest_size:
        raise XRoadError(
            FaultCode.NOT_FOUND, f"{sid} has no authentication certificate {text[:64]}", http_status=404
        )
    await call.store.remove_auth_cert(sid, digest)
    return Reply(None, audit={"security_server_id": format_colon_id(sid), "cert_hash": text})


@operation(
    "POST",
    "/security-servers/{server_id}/clients",
    "Register a client on a server",
    tag="security servers",
    roles=RO,
    event=AuditEvent.REGISTER_CLIENT,
    body=ClientIn,
    response=SecurityServerOut,
    status=201,
)
async def register_client(call: RegistryCall) -> Reply[SecurityServerOut]:
    sid = _server_id(call.param("server_id"))
    client = _client_id(call.typed_body(ClientIn).client_id)
    ss = await call.store.register_client(sid, client)
    return Reply(
        server_out(ss),
        audit={"security_server_id": format_colon_id(sid), "client_id": format_colon_id(client)},
    )


@operation(
    "DELETE",
    "/security-servers/{server_id}/clients/{client_id}",
    "Unregister a client",
    tag="security servers",
    roles=RO,
    event=AuditEvent.UNREGISTER_CLIENT,
)
async def unregister_client(call: RegistryCall) -> Reply[None]:
    sid = _server_id(call.param("server_id"))
    client = _client_id(call.param("client_id"))
    await call.store.unregister_client(sid, client)
    return Reply(
        None, audit={"security_server_id": format_colon_id(sid), "client_id": format_colon_id(client)}
    )


# -- global groups


@operation("GET", "/global-groups", "List global groups", tag="global groups", response=list[GlobalGroupOut])
async def list_global_groups(call: RegistryCall) -> Reply[list[GlobalGroupOut]]:
    instance = (await call.store.get_settings()).instance
    return Reply([group_out(instance, g) for g in await call.store.list_global_groups()])


@operation(
    "POST",
    "/global-groups",
    "Add a global group",
    tag="global groups",
    roles=RO,
    event=AuditEvent.ADD_GLOBAL_GROUP,
    body=GlobalGroupIn,
    response=GlobalGroupOut,
    status=201,
)
async def add_global_group(call: RegistryCall) -> Reply[GlobalGroupOut]:
    body = call.typed_body(GlobalGroupIn)
    instance = (await call.store.get_settings()).instance
    group = await call.store.add_global_group(GlobalGroupId(instance, body.code), body.description)
    return Reply(group_out(instance, group), audit=body.model_dump())


@operation(
    "GET", "/global-groups/{group_code}", "Get a global group", tag="global groups", response=GlobalGroupOut
)
async def get_global_group(call: RegistryCall) -> Reply[GlobalGroupOut]:
    gid = await _group_id(call)
    return Reply(group_out(gid.instance, await call.store.get_global_group(gid)))


@operation(
    "POST",
    "/global-groups/{group_code}/members",
    "Add a member to a global group",
    tag="global groups",
    roles=RO,
    event=AuditEvent.ADD_MEMBERS_TO_GLOBAL_GROUP,
    body=ClientIn,
    response=GlobalGroupOut,
    status=201,
)
async def add_group_member(call: RegistryCall) -> Reply[GlobalGroupOut]:
    gid = await _group_id(call)
    client = _client_id(call.typed_body(ClientIn).client_id)
    group = await call.store.add_group_member(gid, client)
    return Reply(
        group_out(gid.instance, group), audit={"group": gid.group_code, "client_id": format_colon_id(client)}
    )


@operation(
    "DELETE",
    "/global-groups/{group_code}/members/{client_id}",
    "Remove a member from a global group",
    tag="global groups",
    roles=RO,
    event=AuditEvent.DELETE_MEMBER_FROM_GLOBAL_GROUP,
)
async def remove_group_member(call: RegistryCall) -> Reply[None]:
    gid = await _group_id(call)
    client = _client_id(call.param("client_id"))
    await call.store.remove_group_member(gid, client)
    return Reply(None, audit={"group": gid.group_code, "client_id": format_colon_id(client)})


# -- approved certification services


def _ocsp_in(items: list[OcspResponderIn]) -> tuple[OcspInfo, ...]:
    return tuple(
        OcspInfo(
            o.url, parse_certificate(o.certificate, "OCSP responder certificate") if o.certificate else None
        )
        for o in items
    )


@operation(
    "GET",
    "/certification-services",
    "List approved certification authorities",
    tag="trust services",
    response=list[CertificationServiceOut],
)
async def list_certification_services(call: RegistryCall) -> Reply[list[CertificationServiceOut]]:
    return Reply([ca_out(ca) for ca in await call.store.list_cas()])


@operation(
    "POST",
    "/certification-services",
    "Add an approved CA with intermediates and OCSP responders",
    tag="trust services",
    roles=SO,
    event=AuditEvent.ADD_CERTIFICATION_SERVICE,
    body=CertificationServiceIn,
    response=CertificationServiceOut,
    status=201,
)
async def add_certification_service(call: RegistryCall) -> Reply[CertificationServiceOut]:
    body = call.typed_body(CertificationServiceIn)
    top = parse_certificate(body.certificate, "CA certificate")
    entry = ApprovedCAEntry(
        name=body.name or common_name(top),
        top_ca=CaInfo(top, _ocsp_in(body.ocsp_responders)),
        certificate_profile_info=body.certificate_profile_info,
        intermediate_cas=tuple(
            CaInfo(
                parse_certificate(i.certificate, "intermediate CA certificate"), _ocsp_in(i.ocsp_responders)
            )
            for i in body.intermediate_cas
        ),
        authentication_only=body.authentication_only,
    )
    added = await call.store.add_ca(entry)
    out = ca_out(added)
    return Reply(
        out,
        audit={
            "name": out.name,
            "certificate_sha256": out.top_ca.certificate.sha256,
            "certificate_profile_info": out.certificate_profile_info,
            "authentication_only": out.authentication_only,
            "intermediate_cas": [i.certificate.sha256 for i in out.intermediate_cas],
        },
    )


@operation(
    "GET",
    "/certification-services/{name}",
    "Get an approved CA",
    tag="trust services",
    response=CertificationServiceOut,
)
async def get_certification_service(call: RegistryCall) -> Reply[CertificationServiceOut]:
    return Reply(ca_out(await call.store.get_ca(call.param("name"))))


@operation(
    "DELETE",
    "/certification-services/{name}",
    "Delete an approved CA",
    tag="trust services",
    roles=SO,
    event=AuditEvent.DELETE_CERTIFICATION_SERVICE,
)
async def delete_certification_service(call: RegistryCall) -> Reply[None]:
    await call.store.delete_ca(call.param("name"))
    return Reply(None, audit={"name": call.param("name")})


# -- approved timestamping services


@operation(
    "GET",
    "/timestamping-services",
    "List approved time-stamping authorities",
    tag="trust services",
    response=list[TimestampingServiceOut],
)
async def list_timestamping_services(call: RegistryCall) -> Reply[list[TimestampingServiceOut]]:
    return Reply([tsa_out(t) for t in await call.store.list_tsas()])


@operation(
    "POST",
    "/timestamping-services",
    "Add an approved time-stamping authority",
    tag="trust services",
    roles=SO,
    event=AuditEvent.ADD_TIMESTAMPING_SERVICE,
    body=TimestampingServiceIn,
    response=TimestampingServiceOut,
    status=201,
)
async def add_timestamping_service(call: RegistryCall) -> Reply[TimestampingServiceOut]:
    body = call.typed_body(TimestampingServiceIn)
    cert = parse_certificate(body.certificate, "TSA certificate")
    tsa = await call.store.add_tsa(ApprovedTSAEntry(body.name or common_name(cert), body.url, cert))
    out = tsa_out(tsa)
    return Reply(out, audit={"name": out.name, "url": out.url, "certificate_sha256": out.certificate.sha256})


@operation(
    "DELETE",
    "/timestamping-services/{name}",
    "Delete an approved time-stamping authority",
    tag="trust services",
    roles=SO,
    event=AuditEvent.DELETE_TIMESTAMPING_SERVICE,
)
async def delete_timestamping_service(call: RegistryCall) -> Reply[None]:
    await call.store.delete_tsa(call.param("name"))
    return Reply(None, audit={"name": call.param("name")})


# -- configuration signing keys


@operation(
    "GET",
    "/configuration-signing-keys",
    "List configuration signing keys",
    tag="signing keys",
    response=list[SigningKeyOut],
    query=[QueryParam("kind", "internal or external", ("internal", "external"))],
)
async def list_signing_keys(call: RegistryCall) -> Reply[list[SigningKeyOut]]:
    raw = call.query("kind")
    try:
        kind = KeyKind(raw) if raw is not None else None
    except ValueError:
        raise XRoadError(
            FaultCode.INVALID_REQUEST, "kind must be 'internal' or 'external'", http_status=400
        ) from None
    return Reply([key_out(k) for k in await call.store.list_signing_keys(kind)])


@operation(
    "POST",
    "/configuration-signing-keys",
    "Generate a new (pending) signing key: rotation phase one",
    tag="signing keys",
    roles=SO_SA,
    event=AuditEvent.GENERATE_CONFIGURATION_SIGNING_KEY,
    body=SigningKeyIn,
    response=SigningKeyOut,
    status=201,
)
async def add_configuration_signing_key(call: RegistryCall) -> Reply[SigningKeyOut]:
    body = call.typed_body(SigningKeyIn)
    key = await add_signing_key(call.store, call.request.app[TOKEN_KEY], body.kind, call.now())
    return Reply(key_out(key), audit={"key_id": key.key_id, "kind": key.kind.value, "active": key.active})


@operation(
    "POST",
    "/configuration-signing-keys/{key_id}/activate",
    "Activate a pending key (rotation phase two; the key it replaces is deleted)",
    tag="signing keys",
    roles=SO_SA,
    event=AuditEvent.ACTIVATE_CONFIGURATION_SIGNING_KEY,
    response=SigningKeyOut,
)
async def activate_signing_key(call: RegistryCall) -> Reply[SigningKeyOut]:
    key = await operations.activate_signing_key(call.store, call.request.app[TOKEN_KEY], call.param("key_id"))
    return Reply(key_out(key), audit={"key_id": key.key_id, "kind": key.kind.value})


@operation(
    "DELETE",
    "/configuration-signing-keys/{key_id}",
    "Delete a pending signing key",
    tag="signing keys",
    roles=SO_SA,
    event=AuditEvent.DELETE_CONFIGURATION_SIGNING_KEY,
)
async def delete_signing_key(call: RegistryCall) -> Reply[None]:
    await operations.delete_signing_key(call.store, call.request.app[TOKEN_KEY], call.param("key_id"))
    return Reply(None, audit={"key_id": call.param("key_id")})


# -- management requests


@operation(
    "GET",
    "/management-requests",
    "List management requests",
    tag="management requests",
    response=list[ManagementRequestOut],
    query=[
        QueryParam("state", "Filter by state", tuple(s.value for s in RequestState)),
        QueryParam("type", "Filter by type", tuple(t.value for t in ManagementRequestType)),
        QueryParam("security_server", "Filter by security server (colon form)"),
        QueryParam(
            "limit", f"At most this many requests (default {DEFAULT_PAGE_LIMIT}, at most {MAX_PAGE_LIMIT})"
        ),
        QueryParam("offset", "Skip this many requests first (default 0)"),
    ],
)
async def list_management_requests(call: RegistryCall) -> Reply[list[ManagementRequestOut]]:
    try:
        state = RequestState(s) if (s := call.query("state")) is not None else None
        rtype = ManagementRequestType(t) if (t := call.query("type")) is not None else None
    except ValueError as e:
        raise XRoadError(FaultCode.INVALID_REQUEST, f"unknown filter value: {e}", http_status=400) from e
    ss = call.query("security_server")
    limit = _int_query(call, "limit", DEFAULT_PAGE_LIMIT, maximum=MAX_PAGE_LIMIT)
    offset = _int_query(call, "offset", 0, maximum=2**31 - 1)
    found = await call.store.list_requests(
        state=state,
        type=rtype,
        security_server=_server_id(ss) if ss is not None else None,
        limit=limit,
        offset=offset,
    )
    return Reply([request_out(r) for r in found])


@operation(
    "GET",
    "/management-requests/{request_id}",
    "Get a management request with its history",
    tag="management requests",
    response=ManagementRequestOut,
)
async def get_management_request(call: RegistryCall) -> Reply[ManagementRequestOut]:
    return Reply(request_out(await call.store.get_request(_request_id(call))))


@operation(
    "POST",
    "/management-requests/{request_id}/approve",
    "Approve a submitted request (applies it)",
    tag="management requests",
    roles=RO,
    event=AuditEvent.APPROVE_MANAGEMENT_REQUEST,
    body=RequestDecisionIn,
    response=ManagementRequestOut,
)
async def approve_management_request(call: RegistryCall) -> Reply[ManagementRequestOut]:
    body = call.typed_body(RequestDecisionIn)
    rid = _request_id(call)
    done = await workflow.approve_request(call.store, rid, user=call.user, comment=body.comment)
    return Reply(
        request_out(done), audit={"request_id": rid, "type": done.type.value, "comment": body.comment}
    )


@operation(
    "POST",
    "/management-requests/{request_id}/reject",
    "Reject a submitted request",
    tag="management requests",
    roles=RO,
    event=AuditEvent.REJECT_MANAGEMENT_REQUEST,
    body=RequestDecisionIn,
    response=ManagementRequestOut,
)
async def reject_management_request(call: RegistryCall) -> Reply[ManagementRequestOut]:
    body = call.typed_body(RequestDecisionIn)
    rid = _request_id(call)
    done = await workflow.reject_request(call.store, rid, user=call.user, comment=body.comment)
    return Reply(
        request_out(done), audit={"request_id": rid, "type": done.type.value, "comment": body.comment}
    )


@operation(
    "POST",
    "/management-requests/{request_id}/revoke",
    "Revoke a submitted request (withdrawn by its sender; nothing is applied)",
    tag="management requests",
    roles=RO,
    event=AuditEvent.REVOKE_MANAGEMENT_REQUEST,
    body=RequestDecisionIn,
    response=ManagementRequestOut,
)
async def revoke_management_request(call: RegistryCall) -> Reply[ManagementRequestOut]:
    body = call.typed_body(RequestDecisionIn)
    rid = _request_id(call)
    done = await workflow.revoke_request(call.store, rid, user=call.user, comment=body.comment)
    return Reply(
        request_out(done), audit={"request_id": rid, "type": done.type.value, "comment": body.comment}
    )


# -- anchors and global configuration


@operation(
    "GET",
    "/configuration-anchors/{kind}",
    "The internal or external configuration anchor and its hash",
    tag="global configuration",
    response=AnchorOut,
)
async def get_configuration_anchor(call: RegistryCall) -> Reply[AnchorOut]:
    anchor = await configuration_anchor(call.store, call.settings, _kind(call), now=call.now())
    return Reply(
        AnchorOut(
            kind=_kind(call), hash=anchor.hash, hash_hex=anchor.hash_hex, xml=anchor.xml.decode("utf-8")
        )
    )


@operation(
    "GET",
    "/configuration-anchors/{kind}/download",
    "Download the anchor file",
    tag="global configuration",
    response=bytes,
    media_type="application/xml",
)
async def download_configuration_anchor(call: RegistryCall) -> Reply[bytes]:
    kind = _kind(call)
    anchor = await configuration_anchor(call.store, call.settings, kind, now=call.now())
    name = f"configuration_anchor_{kind.value}.xml"
    return Reply(
        anchor.xml,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Anchor-Hash": anchor.hash},
    )


def conf_out(conf: GeneratedConfiguration) -> GlobalConfigurationOut:
    return GlobalConfigurationOut(
        instance_identifier=conf.instance,
        generated_at=conf.generated_at,
        expire_date=conf.expire_date,
        versions=sorted(conf.versions),
    )


@operation(
    "GET",
    "/global-configuration",
    "The global configuration being served",
    tag="global configuration",
    response=GlobalConfigurationOut,
)
async def get_global_configuration(call: RegistryCall) -> Reply[GlobalConfigurationOut]:
    return Reply(conf_out(call.request.app[PUBLISHER_KEY].current()))


@operation(
    "POST",
    "/global-configuration/regenerate",
    "Generate global configuration now",
    tag="global configuration",
    roles=SA | SO | RO,
    event=AuditEvent.REGENERATE_GLOBAL_CONFIGURATION,
    response=GlobalConfigurationOut,
)
async def regenerate_global_configuration(call: RegistryCall) -> Reply[GlobalConfigurationOut]:
    conf = await call.request.app[PUBLISHER_KEY].regenerate()
    out = conf_out(conf)
    return Reply(out, audit={"generated_at": out.generated_at.isoformat()})


# ---------------------------------------------------------------------------------------------------------
# Routes


def _changed(app: web.Application) -> None:
    app[CHANGED_KEY].set()


def add_admin_routes(app: web.Application) -> None:
    """Mount every operation of :data:`API` and ``GET /api/v1/openapi.json`` on ``app``.

    The app must hold ``STORE_KEY``, ``CLOCK_KEY``, ``PUBLISHER_KEY``, ``CHANGED_KEY``, :data:`SETTINGS_KEY`,
    and :mod:`xroad_mn.admin`'s ``AUDIT_KEY``, ``API_KEYS_KEY`` and ``LIMITER_KEY`` (see
    :func:`registry.app.create_app`).
    """
    API.mount(app, max_body_bytes=app[SETTINGS_KEY].max_body_bytes, on_change=_changed)
