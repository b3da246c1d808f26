"""Registering the node at the registry, X-Road's way, and reading its registration state back from global
configuration.

* :meth:`Registrar.register_auth_certificate` sends ``authCertReg`` for one of the node's authentication
  certificates with the node's address (``settings.address``): signed by the authentication key (proof of
  possession) and by the owner's signing key, carrying the owner's signing certificate and a fresh OCSP
  response for it, fetched from the responder global configuration names for its CA. It goes by direct
  HTTPS to ``authCertRegServiceAddress``, the TLS certificate pinned to ``authCertRegServiceCert``
  (:mod:`security_server.management_client`). On success the certificate is ``registration_in_progress``.
* :meth:`Registrar.register_client` sends ``clientReg`` for a hosted client, signed by its member's signing
  key (with certificate and OCSP). In X-Road it travels as an X-Road message through the owner's security
  server to the management-services security server; until node-to-node messaging exists it goes, like
  ``authCertReg``, straight to the registry's public management service, which verifies the member
  signature (see :mod:`registry.management_service`). On success the client is
  ``registration_in_progress``.
* :func:`apply_global_configuration` (and :meth:`Registrar.sync`) updates the states from the installed
  global configuration, as X-Road's ``GlobalConfChecker`` does (:func:`registration_changes` says how).

Both requests return the registry's request id. The registry's refusal — a SOAP fault such as ``conflict``
for a client already registered or waiting for approval — is raised as the :class:`XRoadError` it
carries, unchanged, and then the node changes nothing: a state moves only after the registry accepted.
The node does not refuse a request by its own state first: the registry is the one that knows.

Token keys never leave the token: the requests are signed through :func:`xroad_mn.tokens.token_signer`, in
a worker thread (token operations block). The token must be logged in.

Example::

    >>> async with aiohttp.ClientSession() as session:  # doctest: +SKIP
    ...     registrar = Registrar(settings, store, token, session)
    ...     request_id = await registrar.register_auth_certificate()
    ...     await registrar.register_client(owner.subsystem("civil-registry"), subsystem_name="Civil")
    ...     changes = await registrar.sync()        # after the registry approved and published
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.db import Certificate, CertificateStatus, Client, ClientState, KeyUsage, NodeStore
from security_server.home import globalconf_dir
from security_server.management_client import ManagementTransport, management_transport
from security_server.settings import NodeSettings
from xroad_mn.certs import issued_by
from xroad_mn.confclient.installed import load_trust_material
from xroad_mn.confclient.store import ConfigurationStore, check_stored_directory
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.globalconf.params import (
    PrivateParameters,
    SecurityServer,
    SharedParameters,
    parse_private_params,
    parse_shared_params,
)
from xroad_mn.globalconf.trust import PRIVATE_PARAMS_FILE, SHARED_PARAMS_FILE, TrustMaterial
from xroad_mn.identifiers import ClientId, MemberId, SecurityServerId, format_id
from xroad_mn.management import (
    AuthCertRegRequest,
    BuiltManagementRequest,
    ClientRegRequest,
    ManagementRequest,
    MemberSigner,
    build_management_request,
    parse_management_response,
    required_signer,
)
from xroad_mn.ocsp import OcspCache, fetch_ocsp_response
from xroad_mn.tokens import Token, TokenSigner, token_signer
from xroad_mn.transport.ocsp import AiohttpOcspTransport
from xroad_mn.validation import instance_cas

__all__ = [
    "InstalledConfiguration",
    "Registrar",
    "StateChange",
    "apply_global_configuration",
    "fetch_own_ocsp_response",
    "read_installed_configuration",
    "registration_changes",
]


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------------------
# Installed global configuration


@dataclass(frozen=True)
class InstalledConfiguration:
    """The node's own instance's parameters from its installed global configuration."""

    shared: SharedParameters
    private: PrivateParameters
    trust: TrustMaterial
    """Trust material of the own instance (federated instances' CAs merged in)."""


def read_installed_configuration(conf_dir: Path, *, at: datetime) -> InstalledConfiguration:
    """Read the configuration the configuration client installed in ``conf_dir``, valid at ``at``.

    Raises ``global_conf_outdated`` when it has expired (a node acts on current configuration only),
    ``malformed_global_conf`` when it is unreadable or holds no private parameters (the management service
    address, provider and certificate come from there), ``io_error`` when ``conf_dir`` is not a directory.
    Blocking file I/O: async callers run it in a thread.
    """
    check = check_stored_directory(conf_dir, at=at)
    store = ConfigurationStore(conf_dir)
    shared = store.read_file(check.instance, SHARED_PARAMS_FILE)
    private = store.read_file(check.instance, PRIVATE_PARAMS_FILE)
    if shared is None or private is None:
        raise XRoadError(
            FaultCode.MALFORMED_GLOBALCONF,
            f"the installed global configuration of {check.instance} has no "
            f"{SHARED_PARAMS_FILE if shared is None else PRIVATE_PARAMS_FILE}",
        )
    return InstalledConfiguration(
        parse_shared_params(shared), parse_private_params(private), load_trust_material(conf_dir)
    )


# --------------------------------------------------------------------------------------------------------
# OCSP for the node's own certificates


def _issuer_in(cert: x509.Certificate, trust: TrustMaterial) -> x509.Certificate:
    for ca in instance_cas(trust, trust.instance):
        for candidate in ca.ca_certificates:
            if candidate.subject == cert.issuer and issued_by(cert, candidate):
                return candidate
    raise XRoadError(
        FaultCode.INVALID_CERT_PATH,
        f"certificate {cert.subject.rfc4514_string()[:120]} was not issued by a CA that global "
        f"configuration approves for instance {trust.instance}",
    )


async def fetch_own_ocsp_response(
    cert: x509.Certificate,
    trust: TrustMaterial,
    *,
    session: aiohttp.ClientSession,
    at: datetime,
    cache: OcspCache | None = None,
) -> bytes:
    """A verified, fresh and good OCSP response for one of the node's certificates, from the responders
    global configuration lists for the certificate's CA, tried in order (X-Road's order); the last
    responder's error when none answers well. ``cache`` (when given) is asked first and filled."""
    issuer = _issuer_in(cert, trust)
    responders = [r for ca in trust.cas_for(issuer) for r in ca.responders_for(issuer)]
    if not responders:
        raise XRoadError(
            FaultCode.OCSP_FAILED,
            f"global configuration names no OCSP responder for {issuer.subject.rfc4514_string()[:120]}",
        )
    failure: XRoadError | None = None
    for responder in responders:
        try:
            return await fetch_ocsp_response(
                cert,
                issuer,
                transport=AiohttpOcspTransport(responder.url, session),
                trust=trust,
                at=at,
                cache=cache,
            )
        except XRoadError as e:
            failure = e
    assert failure is not None
    raise failure


# --------------------------------------------------------------------------------------------------------
# Registration state from global configuration


@dataclass(frozen=True)
class StateChange:
    """One state the node changed: of a certificate (``sha256`` set) or of a client (``client`` set)."""

    old: str
    new: str
    sha256: bytes | None = None
    client: ClientId | None = None


_CERT_TO_REGISTERED = frozenset(
    {CertificateStatus.SAVED, CertificateStatus.REGISTRATION_IN_PROGRESS, CertificateStatus.GLOBAL_ERROR}
)
_CLIENT_TO_REGISTERED = frozenset(
    {
        ClientState.SAVED,
        ClientState.REGISTRATION_IN_PROGRESS,
        ClientState.GLOBAL_ERROR,
        ClientState.ENABLING_IN_PROGRESS,
    }
)


def _server_in(shared: SharedParameters, server: SecurityServerId) -> SecurityServer | None:
    for ss in shared.security_servers:
        if ss.owner == server.owner and ss.server_code == server.server_code:
            return ss
    return None


def _hashes_of(cert: x509.Certificate) -> frozenset[bytes]:
    der = cert.public_bytes(Encoding.DER)
    # authCertHash is SHA-1 in version 2, SHA-256 from version 3: the lengths differ, so both can be asked.
    return frozenset({hashlib.sha256(der).digest(), hashlib.sha1(der).digest()})  # noqa: S324 - version 2


def registration_changes(
    shared: SharedParameters,
    server: SecurityServerId,
    certificates: Iterable[Certificate],
    clients: Iterable[Client],
) -> list[StateChange]:
    """The state changes global configuration ``shared`` calls for (sans-I/O; X-Road's
    ``GlobalConfChecker``), for the node ``server``, its authentication ``certificates`` and ``clients``.

    * An authentication certificate is registered when its hash is an ``authCertHash`` of this server: from
      ``saved``, ``registration_in_progress`` or ``global_error`` it becomes ``registered``. A
      ``registered`` certificate whose hash is no longer there becomes ``global_error``.
    * A client is registered when it is in this server's client list, or is the server's owner and the
      server is listed: from ``saved``, ``registration_in_progress``, ``global_error`` or
      ``enabling_in_progress`` it becomes ``registered``. When it is not: ``registered`` becomes
      ``global_error`` and ``disabling_in_progress`` becomes ``disabled`` (a disabled client leaves the
      list).
    * Any other state (``deletion_in_progress``, ``disabled``, ...) is left alone.
    """
    listed = _server_in(shared, server)
    hashes = frozenset(listed.auth_cert_hashes) if listed is not None else frozenset()
    members = frozenset((*listed.clients, listed.owner)) if listed is not None else frozenset()
    changes: list[StateChange] = []
    for cert in certificates:
        registered = not hashes.isdisjoint(_hashes_of(cert.certificate))
        new_status: CertificateStatus | None = None
        if registered and cert.status in _CERT_TO_REGISTERED:
            new_status = CertificateStatus.REGISTERED
        elif not registered and cert.status is CertificateStatus.REGISTERED:
            new_status = CertificateStatus.GLOBAL_ERROR
        if new_status is not None:
            changes.append(StateChange(cert.status.value, new_status.value, sha256=cert.sha256))
    for client in clients:
        in_list = client.client in members
        new_state: ClientState | None = None
        if in_list and client.state in _CLIENT_TO_REGISTERED:
            new_state = ClientState.REGISTERED
        elif not in_list and client.state is ClientState.REGISTERED:
            new_state = ClientState.GLOBAL_ERROR
        elif not in_list and client.state is ClientState.DISABLING_IN_PROGRESS:
            new_state = ClientState.DISABLED
        if new_state is not None:
            changes.append(StateChange(client.state.value, new_state.value, client=client.client))
    return changes


async def apply_global_configuration(store: NodeStore, shared: SharedParameters) -> list[StateChange]:
    """Update the node's certificate and client states from ``shared`` (:func:`registration_changes`);
    returns what changed. Only authentication certificates have a registration state to follow."""
    identity = await store.get_server()
    auth_keys = {k.key_id for k in await store.list_keys(KeyUsage.AUTHENTICATION)}
    certificates = [c for c in await store.list_certificates() if c.key_id in auth_keys]
    changes = registration_changes(shared, identity.server, certificates, await store.list_clients())
    for change in changes:
        if change.sha256 is not None:
            await store.set_certificate_status(change.sha256, CertificateStatus(change.new))
        elif change.client is not None:
            await store.set_client_state(change.client, ClientState(change.new))
    return changes


# --------------------------------------------------------------------------------------------------------
# Sending requests


@dataclass(frozen=True)
class Registrar:
    """Sends the node's registration requests and follows their outcome in global configuration.

    ``settings`` gives the node's address and home (whose ``globalconf/`` holds the installed global
    configuration); ``store`` the node's records; ``token`` its keys (logged in); ``session`` the HTTP
    client for OCSP responders and the registry. ``transport`` replaces the pinned HTTPS transport built
    from global configuration (tests); ``ocsp_cache`` is asked before an OCSP responder.
    """

    settings: NodeSettings
    store: NodeStore
    token: Token
    session: aiohttp.ClientSession
    clock: Callable[[], datetime] = _utc_now
    ocsp_cache: OcspCache | None = None
    transport: ManagementTransport | None = None

    async def configuration(self, at: datetime | None = None) -> InstalledConfiguration:
        """The installed global configuration, valid at ``at`` (default now)."""
        when = at if at is not None else self.clock()
        return await asyncio.to_thread(
            read_installed_configuration, globalconf_dir(self.settings.home), at=when
        )

    async def sync(self) -> list[StateChange]:
        """Update the registration states from the installed global configuration."""
        conf = await self.configuration()
        return await apply_global_configuration(self.store, conf.shared)

    async def register_auth_certificate(
        self, sha256: bytes | None = None, *, address: str | None = None
    ) -> int:
        """Send ``authCertReg`` for the authentication certificate with SHA-256 ``sha256`` (default: the
        newest one in state ``saved``) at ``address`` (default ``settings.address``); return the
        registry's request id. The certificate becomes ``registration_in_progress``."""
        cert = await self._auth_certificate(sha256)
        identity = await self.store.get_server()
        der = cert.certificate.public_bytes(Encoding.DER)
        request = AuthCertRegRequest(identity.server, address or self.settings.address, der)
        auth_key = await asyncio.to_thread(token_signer, self.token, cert.key_id)
        request_id = await self._send(request, auth_key=auth_key)
        await self.store.set_certificate_status(cert.sha256, CertificateStatus.REGISTRATION_IN_PROGRESS)
        return request_id

    async def register_client(self, client: ClientId, *, subsystem_name: str | None = None) -> int:
        """Send ``clientReg`` for the hosted ``client`` (with its ``subsystem_name``, when given); return the
        registry's request id. The client becomes ``registration_in_progress``."""
        await self.store.get_client(client)  # not_found unless hosted here
        identity = await self.store.get_server()
        request_id = await self._send(ClientRegRequest(identity.server, client, subsystem_name))
        await self.store.set_client_state(client, ClientState.REGISTRATION_IN_PROGRESS)
        return request_id

    # -- the steps ------------------------------------------------------------------------------------------

    async def _auth_certificate(self, sha256: bytes | None) -> Certificate:
        auth_keys = {k.key_id for k in await self.store.list_keys(KeyUsage.AUTHENTICATION)}
        if sha256 is not None:
            cert = await self.store.get_certificate(sha256)
            if cert.key_id not in auth_keys:
                raise XRoadError(
                    FaultCode.INVALID_REQUEST,
                    "the certificate is not an authentication certificate of this node",
                    details={"sha256": sha256.hex()},
                    kind=ErrorKind.BAD_INPUT,
                )
            return cert
        saved = [
            c
            for c in await self.store.list_certificates()
            if c.key_id in auth_keys and c.status is CertificateStatus.SAVED
        ]
        if not saved:
            raise XRoadError(
                FaultCode.NOT_FOUND,
                "the node has no authentication certificate in state saved to register",
                kind=ErrorKind.NOT_FOUND,
            )
        return max(saved, key=lambda c: c.created_at)

    async def _member_signer(
        self, member: MemberId, conf: InstalledConfiguration, at: datetime
    ) -> MemberSigner:
        """The newest active signing certificate of ``member`` valid at ``at``, its key in the token, and a
        fresh OCSP response for it."""
        candidates: list[Certificate] = []
        for key in await self.store.list_keys(KeyUsage.SIGNING):
            if key.member != member:
                continue
            for cert in await self.store.list_certificates(key.key_id):
                c = cert.certificate
                if cert.active and c.not_valid_before_utc <= at <= c.not_valid_after_utc:
                    candidates.append(cert)
        if not candidates:
            raise XRoadError(
                FaultCode.CANNOT_CREATE_SIGNATURE,
                f"{format_id(member)} has no active signing certificate valid now on this node",
                details={"member": format_id(member)},
                kind=ErrorKind.CONFLICT,
            )
        chosen = max(candidates, key=lambda c: c.created_at)
        signer = await asyncio.to_thread(token_signer, self.token, chosen.key_id)
        ocsp = await fetch_own_ocsp_response(
            chosen.certificate, conf.trust, session=self.session, at=at, cache=self.ocsp_cache
        )
        return MemberSigner(signer, chosen.certificate, ocsp)

    async def _send(self, request: ManagementRequest, *, auth_key: TokenSigner | None = None) -> int:
        """Sign ``request`` as X-Road signs it, send it, and return the request id the registry answers;
        the registry's fault is raised as it came."""
        at = self.clock()
        conf = await self.configuration(at)
        member = required_signer(request)
        assert member is not None  # authCertReg and clientReg are signed
        signer = await self._member_signer(member, conf, at)
        provider = conf.private.management_service.management_request_service_provider_id
        built: BuiltManagementRequest = await asyncio.to_thread(
            build_management_request,
            request,
            sender=request.server.owner,
            service_provider=provider,
            signer=signer,
            auth_key=auth_key,
        )
        transport = self.transport or management_transport(conf.private.management_service, self.session)
        answer = await transport.send(built.body, built.content_type)
        response = parse_management_response(answer, request=built.header)
        if response.request_id is None:
            raise XRoadError(
                FaultCode.INVALID_SOAP, f"the registry's answer to {request.TYPE} has no requestId"
            )
        return response.request_id
