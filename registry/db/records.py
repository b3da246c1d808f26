"""Values the registry store returns that global configuration has no dataclass for.

Members, subsystems, security servers, global groups, approved CAs and TSAs are returned as the
:mod:`xroad_mn.globalconf.params` dataclasses themselves, so a snapshot is the configuration's content.

Example::

    >>> from registry.db.records import RequestAction, transition_target
    >>> from registry.db.models import RequestState
    >>> transition_target(RequestState.SUBMITTED, RequestAction.APPROVE)
    <RequestState.APPROVED: 'approved'>
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from registry import globalconf_gen
from registry.db.models import RequestState
from registry.db.request_rows import RequestPayload, client_of, request_payload
from registry.globalconf_gen import KeyKind
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.globalconf.params import PrivateParameters, SharedParameters
from xroad_mn.identifiers import ClientId, SecurityServerId
from xroad_mn.management import ManagementRequest, ManagementRequestType
from xroad_mn.tokens import Token, token_signer

__all__ = [
    "ConfigurationSigningKey",
    "GlobalSettings",
    "ManagementRequestRecord",
    "RegistrySnapshot",
    "RequestAction",
    "RequestEvent",
    "ServerClient",
    "to_generator_key",
    "transition_target",
]


class RequestAction(StrEnum):
    """What an administrator (or auto-approval) does with a submitted management request."""

    APPROVE = "approve"
    REJECT = "reject"
    REVOKE = "revoke"


_TRANSITIONS: Final[Mapping[tuple[RequestState, RequestAction], RequestState]] = {
    (RequestState.SUBMITTED, RequestAction.APPROVE): RequestState.APPROVED,
    (RequestState.SUBMITTED, RequestAction.REJECT): RequestState.REJECTED,
    (RequestState.SUBMITTED, RequestAction.REVOKE): RequestState.REVOKED,
}


def transition_target(state: RequestState, action: RequestAction) -> RequestState:
    """The state ``action`` moves a request in ``state`` to; only submitted requests can move (409 else)."""
    try:
        return _TRANSITIONS[(state, action)]
    except KeyError:
        raise XRoadError(
            FaultCode.CONFLICT,
            f"cannot {action.value} a request that is {state.value}",
            details={"state": state.value, "action": action.value},
            kind=ErrorKind.CONFLICT,
        ) from None


@dataclass(frozen=True)
class GlobalSettings:
    """The instance identifier and the global settings of the registry."""

    instance: str
    ocsp_freshness_seconds: int = 3600
    timestamping_interval_seconds: int = 60
    configuration_expiry_seconds: int = 600
    management_service_provider: ClientId | None = None
    """The subsystem that provides the management services (``managementRequestServiceProviderId``)."""
    management_service_address: str | None = None
    """``authCertRegServiceAddress``: where security servers send ``authCertReg`` requests."""
    management_service_cert: x509.Certificate | None = None
    """``authCertRegServiceCert``: the TLS certificate of that address."""


@dataclass(frozen=True)
class ServerClient:
    """A client registered on a security server, with its ``clientDisable`` / ``clientEnable`` state.

    A disabled client stays registered but is not among the server's clients in global configuration
    (X-Road's central server lists enabled server clients only).
    """

    client: ClientId
    enabled: bool = True


@dataclass(frozen=True)
class ConfigurationSigningKey:
    """A stored configuration signing key. The active key of its kind signs; a pending one is only
    distributed. The private key is in the registry's token, as ``token_key_id``;
    :func:`to_generator_key` makes it a signer for :mod:`registry.globalconf_gen`."""

    key_id: str
    kind: KeyKind
    certificate: x509.Certificate
    token_key_id: str
    created_at: datetime
    active: bool


@dataclass(frozen=True)
class RequestEvent:
    """One entry of a management request's history."""

    at: datetime
    from_state: RequestState | None
    to_state: RequestState
    user: str | None
    comment: str | None


@dataclass(frozen=True)
class ManagementRequestRecord:
    """A management request as the registry keeps it: the typed request, its state and its history."""

    id: int
    request: ManagementRequest
    state: RequestState
    raw: bytes | None
    """The request as received (evidence); None when not kept or not loaded (lists leave it out)."""
    created_at: datetime
    updated_at: datetime
    history: tuple[RequestEvent, ...] = ()

    @property
    def type(self) -> ManagementRequestType:
        return self.request.TYPE

    @property
    def security_server(self) -> SecurityServerId:
        return self.request.server

    @property
    def client(self) -> ClientId | None:
        """The client the request names, or None for a request about the security server alone."""
        return client_of(self.request)

    @property
    def payload(self) -> RequestPayload:
        """The request's fields beyond type, server and client, as stored (and as the admin API shows)."""
        return request_payload(self.request)


@dataclass(frozen=True)
class RegistrySnapshot:
    """Everything needed to generate and sign global configuration, read in one transaction."""

    shared: SharedParameters
    private: PrivateParameters
    settings: GlobalSettings
    signing_keys: tuple[ConfigurationSigningKey, ...]
    """Every key, active and pending (pending keys' certificates are in ``shared.sources``)."""

    def active_key(self, kind: KeyKind) -> ConfigurationSigningKey:
        """The key that signs configuration of ``kind``; 409 when there is none."""
        for key in self.signing_keys:
            if key.kind is kind and key.active:
                return key
        raise XRoadError(
            FaultCode.CONFLICT,
            f"the registry has no active {kind.value} signing key",
            kind=ErrorKind.CONFLICT,
        )

    def generator_keys(self, token: Token) -> tuple[globalconf_gen.ConfigurationKeyPair, ...]:
        """The signing keys as :func:`registry.globalconf_gen.generate` takes them, signing through
        ``token`` (reads the token's key list: call it off the event loop)."""
        return tuple(to_generator_key(k, token) for k in self.signing_keys)


def to_generator_key(key: ConfigurationSigningKey, token: Token) -> globalconf_gen.ConfigurationKeyPair:
    """A stored signing key with its token key as the signer, for :mod:`registry.globalconf_gen`;
    ``internal_error`` when the token's key is not the certificate's (``signer.key_not_found`` when the
    token has no such key)."""
    signer = token_signer(token, key.token_key_id)
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if signer.public_key().public_bytes(*spki) != key.certificate.public_key().public_bytes(*spki):
        raise XRoadError(
            FaultCode.INTERNAL_ERROR,
            f"the token's key {key.token_key_id} is not the key of signing key {key.key_id!r}'s certificate",
        )
    return globalconf_gen.ConfigurationKeyPair(key.key_id, signer, key.certificate, key.active, key.kind)
