"""Management requests ↔ database rows: the one place a typed request is written as columns and read back.

A management request is one of the :data:`xroad_mn.management.ManagementRequest` dataclasses everywhere in
the registry. Its row keeps the type, the security server and the client (``format_id`` strings, so they may
name members of any instance) and a JSON payload with the fields its approval needs beyond those:

============================  ===========================================================
type                          payload
============================  ===========================================================
``authCertReg``               ``address``, ``auth_cert`` (base64 DER)
``authCertDeletion``          ``auth_cert`` (base64 DER)
``clientReg``                 ``subsystem_name`` (or null)
``clientRename``              ``subsystem_name``
``addressChange``             ``address``
``maintenanceModeEnable``     ``message`` (or null)
others                        ``{}``
============================  ===========================================================

Reading a row back checks every column against its type; a row that does not hold a well-formed request
of its type is ``internal_error`` (the database was changed behind the registry's back).

Example::

    >>> from xroad_mn.identifiers import MemberId
    >>> from xroad_mn.management import ClientRegRequest
    >>> owner = MemberId("MN", "GOV", "5012345")
    >>> columns = request_columns(ClientRegRequest(owner.server("ss1"), owner.subsystem("tax"), "Tax"))
    >>> columns.type.value, columns.client, columns.payload
    ('clientReg', 'SUBSYSTEM:MN/GOV/5012345/tax', {'subsystem_name': 'Tax'})
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import assert_never

from registry.db.models import ManagementRequestRow
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, MemberId, SecurityServerId, SubsystemId, format_id, parse_id
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
    "RequestColumns",
    "RequestPayload",
    "client_of",
    "request_columns",
    "request_from_row",
    "request_payload",
]

RequestPayload = dict[str, str | None]
"""The JSON payload of a management request row (see the module docstring)."""


@dataclass(frozen=True)
class RequestColumns:
    """The columns of a management request row that describe the request itself."""

    type: ManagementRequestType
    security_server: str
    client: str | None
    payload: RequestPayload


def client_of(request: ManagementRequest) -> ClientId | None:
    """The client a request names (``clientReg``, ``clientDeletion``, ..., ``ownerChange``), or None."""
    match request:
        case (
            ClientRegRequest()
            | ClientDeletionRequest()
            | ClientDisableRequest()
            | ClientEnableRequest()
            | ClientRenameRequest()
            | OwnerChangeRequest()
        ):
            return request.client
        case (
            AuthCertRegRequest()
            | AuthCertDeletionRequest()
            | AddressChangeRequest()
            | MaintenanceModeEnableRequest()
            | MaintenanceModeDisableRequest()
        ):
            return None
        case _:
            assert_never(request)


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def request_payload(request: ManagementRequest) -> RequestPayload:
    """The payload written with ``request``: the fields its approval needs beyond server and client."""
    match request:
        case AuthCertRegRequest():
            return {"address": request.address, "auth_cert": _b64(request.auth_cert)}
        case AuthCertDeletionRequest():
            return {"auth_cert": _b64(request.auth_cert)}
        case ClientRegRequest() | ClientRenameRequest():
            return {"subsystem_name": request.subsystem_name}
        case AddressChangeRequest():
            return {"address": request.address}
        case MaintenanceModeEnableRequest():
            return {"message": request.message}
        case (
            ClientDeletionRequest()
            | ClientDisableRequest()
            | ClientEnableRequest()
            | OwnerChangeRequest()
            | MaintenanceModeDisableRequest()
        ):
            return {}
        case _:
            assert_never(request)


def request_columns(request: ManagementRequest) -> RequestColumns:
    """The row columns of ``request``."""
    client = client_of(request)
    return RequestColumns(
        type=request.TYPE,
        security_server=format_id(request.server),
        client=format_id(client) if client is not None else None,
        payload=request_payload(request),
    )


# --------------------------------------------------------------------------------------------------------
# Reading a row back


class _Row:
    """One row being read; every failure names the row."""

    def __init__(self, row: ManagementRequestRow) -> None:
        self.id = row.id
        self.row = row
        payload: object = row.payload
        if not isinstance(payload, Mapping):
            raise self.malformed("its payload is not a JSON object")
        self.payload: Mapping[object, object] = payload

    def malformed(self, what: str) -> XRoadError:
        return XRoadError(
            FaultCode.INTERNAL_ERROR,
            f"stored management request {self.id} is malformed: {what}",
            details={"request_id": self.id},
        )

    def text(self, key: str) -> str:
        value = self.payload.get(key)
        if not isinstance(value, str):
            raise self.malformed(f"its payload lacks the text {key!r}")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.payload.get(key)
        if value is not None and not isinstance(value, str):
            raise self.malformed(f"{key!r} of its payload is not text")
        return value

    def certificate(self) -> bytes:
        try:
            return base64.b64decode(self.text("auth_cert"), validate=True)
        except (ValueError, binascii.Error) as e:
            raise self.malformed("'auth_cert' of its payload is not base64") from e

    def server(self) -> SecurityServerId:
        parsed = self._parse(self.row.security_server, "security server")
        if not isinstance(parsed, SecurityServerId):
            raise self.malformed("its security server is not a security server identifier")
        return parsed

    def client(self) -> ClientId:
        if self.row.client is None:
            raise self.malformed(f"a {self.row.type.value} request without a client")
        parsed = self._parse(self.row.client, "client")
        if not isinstance(parsed, MemberId | SubsystemId):
            raise self.malformed("its client is not a member or subsystem identifier")
        return parsed

    def member(self) -> MemberId:
        client = self.client()
        if not isinstance(client, MemberId):
            raise self.malformed(f"the new owner {client} is not a member")
        return client

    def no_client(self) -> None:
        if self.row.client is not None:
            raise self.malformed(f"a {self.row.type.value} request with a client")

    def _parse(self, text: str, what: str) -> object:
        try:
            return parse_id(text, strict=False)
        except XRoadError as e:
            raise self.malformed(f"its {what} {text[:80]!r} is not an identifier") from e


def request_from_row(row: ManagementRequestRow) -> ManagementRequest:
    """The typed request a row holds; ``internal_error`` when the row does not hold one of its type."""
    r = _Row(row)
    T = ManagementRequestType
    match row.type:
        case T.AUTH_CERT_REG:
            r.no_client()
            return AuthCertRegRequest(r.server(), r.text("address"), r.certificate())
        case T.AUTH_CERT_DELETION:
            r.no_client()
            return AuthCertDeletionRequest(r.server(), r.certificate())
        case T.CLIENT_REG:
            return ClientRegRequest(r.server(), r.client(), r.optional_text("subsystem_name"))
        case T.CLIENT_DELETION:
            return ClientDeletionRequest(r.server(), r.client())
        case T.CLIENT_DISABLE:
            return ClientDisableRequest(r.server(), r.client())
        case T.CLIENT_ENABLE:
            return ClientEnableRequest(r.server(), r.client())
        case T.CLIENT_RENAME:
            return ClientRenameRequest(r.server(), r.client(), r.text("subsystem_name"))
        case T.OWNER_CHANGE:
            return OwnerChangeRequest(r.server(), r.member())
        case T.ADDRESS_CHANGE:
            r.no_client()
            return AddressChangeRequest(r.server(), r.text("address"))
        case T.MAINTENANCE_MODE_ENABLE:
            r.no_client()
            return MaintenanceModeEnableRequest(r.server(), r.optional_text("message"))
        case T.MAINTENANCE_MODE_DISABLE:
            r.no_client()
            return MaintenanceModeDisableRequest(r.server())
        case _:
            assert_never(row.type)
