"""The node registers itself, X-Road's way, against the real registry and the real dev trust services.

The flow (:func:`test_node_registers_its_auth_certificate_and_a_client`), on the node's SQLite and
PostgreSQL database: the dev CA issues the node's authentication and signing certificates from CSRs its
software token signed; the node installs global configuration from the registry's anchor; ``authCertReg``
goes by HTTPS pinned to the certificate global configuration publishes; the registry's administrator
approves; the next global configuration makes the certificate ``registered``; the same for ``clientReg``.
Refusals by the registry (a pending or registered duplicate, a client of a server not registered yet) come
back as the registry's X-Road fault and change no state on the node.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.ext.asyncio import AsyncEngine

from registry.app import RunningRegistry, run_registry
from registry.context import PUBLISHER_KEY, STORE_KEY
from registry.db import KeyKind, RegistryStore, RequestState
from registry.operations import configuration_anchor, init_registry, open_store
from registry.requests import approve_request
from registry.settings import RegistrySettings
from registry.signing import create_token, registry_token
from security_server.db import (
    Certificate,
    CertificateStatus,
    ClientState,
    KeyUsage,
    NodeStore,
)
from security_server.home import create_home, globalconf_dir, open_home, token_dir
from security_server.management_client import PinnedManagementTransport, management_transport
from security_server.registration import Registrar, apply_global_configuration, registration_changes
from security_server.settings import NodeSettings
from tests.registry.test_e2e import pinned_context, tls_identity
from tests.security_server.conftest import OWNER
from trust_services.app import RunningTrustService, TrustSettings, run_trust_service
from trust_services.pki import DevPki, build_dev_pki, member_subject, server_subject
from trust_services.store import TrustServiceStore, init_trust_dir
from xroad_mn.certs import XROAD_MN_PROFILE
from xroad_mn.confclient.client import ConfigurationClient
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.anchor import ConfigurationAnchor, parse_anchor
from xroad_mn.globalconf.params import (
    ApprovedCAEntry,
    CaInfo,
    ManagementService,
    OcspInfo,
    SecurityServer,
    SharedParameters,
    auth_cert_hash,
    parse_shared_params,
)
from xroad_mn.identifiers import MemberId
from xroad_mn.management import AuthCertRegRequest, ClientRegRequest
from xroad_mn.tokens import KeyUsage as TokenKeyUsage
from xroad_mn.tokens import SoftwareToken, build_csr, token_signer
from xroad_mn.transport.globalconf import AiohttpConfigurationTransport

REGISTRY_OWNER = MemberId("MN", "GOV", "1000001")
NODE_OWNER = MemberId("MN", "GOV", "9010001")
SUBSYSTEM = NODE_OWNER.subsystem("civil-registry")
PIN = "node-pin-1234"
GENEROUS = {"rate_limit_per_second": 10_000, "rate_limit_per_minute": 100_000}


# -- the world: dev trust services and the registry, both served for real --------------------------------


@dataclass
class World:
    trust: RunningTrustService
    ca: TrustServiceStore
    registry: RunningRegistry
    tls_cert: x509.Certificate
    anchor: ConfigurationAnchor
    session: aiohttp.ClientSession

    @property
    def registry_store(self) -> RegistryStore:
        return self.registry.app[STORE_KEY]

    async def approve(self, request_id: int) -> None:
        """The registry's administrator approves; the next global configuration is published."""
        await approve_request(self.registry_store, request_id, user="admin")
        await self.registry.app[PUBLISHER_KEY].regenerate()


REGISTRY_PIN = "registry PIN"


@asynccontextmanager
async def running_world(tmp_path: Path) -> AsyncIterator[World]:
    now = datetime.now(UTC)
    init_trust_dir(tmp_path / "trust", instance="MN", now=now)
    ca = TrustServiceStore.open(tmp_path / "trust")
    cert_path, key_path, tls_cert = tls_identity(tmp_path / "tls")
    settings = RegistrySettings(
        home=tmp_path / "registry",
        admin_port=0,
        public_port=0,
        public_tls_cert=cert_path,
        public_tls_key=key_path,
        **GENEROUS,
    )
    async with (
        aiohttp.ClientSession() as session,
        run_trust_service(TrustSettings(dir=tmp_path / "trust", port=0)) as trust,
    ):
        token = registry_token(settings)
        create_token(token, REGISTRY_PIN)
        async with open_store(settings) as store:
            await init_registry(
                store, settings, token, instance="MN", owner=REGISTRY_OWNER, owner_name="Registry", now=now
            )
            await store.add_member(NODE_OWNER, "Ministry of Registers")
            await store.add_ca(
                ApprovedCAEntry(
                    name="MN dev CA",
                    top_ca=CaInfo(ca.ca.certificate, (OcspInfo(trust.urls.ocsp, ca.ocsp.certificate),)),
                    certificate_profile_info=XROAD_MN_PROFILE,
                )
            )
        async with run_registry(settings, pin=REGISTRY_PIN) as registry:
            exported = await configuration_anchor(
                registry.app[STORE_KEY], registry.settings, KeyKind.INTERNAL, now=datetime.now(UTC)
            )
            yield World(trust, ca, registry, tls_cert, parse_anchor(exported.xml), session)


# -- the node -------------------------------------------------------------------------------------------


@dataclass
class Node:
    settings: NodeSettings
    store: NodeStore
    token: SoftwareToken
    conf: ConfigurationClient
    auth: Certificate
    sign: Certificate

    def registrar(self, world: World, **kwargs: object) -> Registrar:
        return Registrar(self.settings, self.store, self.token, world.session, **kwargs)  # type: ignore[arg-type]


async def certify(
    world: World, token: SoftwareToken, store: NodeStore, usage: KeyUsage, subject: x509.Name
) -> Certificate:
    """A key made in the token, a CSR it signs, the dev CA's certificate for it, recorded by the node."""
    key = token.generate_key(
        f"ss1 {usage.value}",
        TokenKeyUsage.AUTHENTICATION if usage is KeyUsage.AUTHENTICATION else TokenKeyUsage.SIGNING,
    )
    csr = build_csr(token_signer(token, key.key_id), subject)
    async with world.session.post(
        world.trust.urls.ca,
        params={"profile": usage.value},
        data=csr.public_bytes(Encoding.PEM),
        headers={"Content-Type": "application/pkcs10"},
    ) as resp:
        assert resp.status == 201, await resp.text()
        cert = x509.load_pem_x509_certificate(await resp.read())
    await store.add_key(key.key_id, usage, member=NODE_OWNER if usage is KeyUsage.SIGNING else None)
    # X-Road activates a signing certificate on import; an authentication certificate waits for registration.
    return await store.add_certificate(key.key_id, cert, active=usage is KeyUsage.SIGNING)


async def make_node(world: World, engine: AsyncEngine, home: Path) -> Node:
    settings = open_home(create_home(home, {"address": "127.0.0.2"}))
    store = NodeStore(engine)
    await store.init_server(NODE_OWNER, "ss1", address="127.0.0.2")
    await store.add_client(SUBSYSTEM)
    token = SoftwareToken(token_dir(home))
    token.initialize(PIN)
    token.login(PIN)
    auth = await certify(
        world, token, store, KeyUsage.AUTHENTICATION, server_subject("MN", "GOV", "ss1", "9010001")
    )
    sign = await certify(world, token, store, KeyUsage.SIGNING, member_subject(NODE_OWNER))
    transport = AiohttpConfigurationTransport(world.session, ssl_context=pinned_context(world.tls_cert))
    conf = ConfigurationClient(world.anchor, globalconf_dir(home), transport)
    await conf.refresh()
    return Node(settings, store, token, conf, auth, sign)


async def refused(call: Awaitable[object], code: str) -> XRoadError:
    """The call fails with ``code``; the registry's faults arrive with X-Road's ``client.`` prefix."""
    with pytest.raises(XRoadError) as e:
        await call
    assert e.value.code in (code, f"client.{code}"), e.value
    return e.value


def _stored_shared(node: Node) -> SharedParameters:
    data = node.conf.store.read_file("MN", "shared-params.xml")
    assert data is not None
    return parse_shared_params(data)


# -- tests ----------------------------------------------------------------------------------------------


async def test_node_registers_its_auth_certificate_and_a_client(node_db: AsyncEngine, tmp_path: Path) -> None:
    async with running_world(tmp_path) as world:
        node = await make_node(world, node_db, tmp_path / "node")
        registrar = node.registrar(world)
        registry = world.registry_store
        server = NODE_OWNER.server("ss1")
        assert await registrar.sync() == []  # not in global configuration yet: nothing to change

        # The TLS certificate must be the one global configuration publishes: nothing else is trusted.
        stranger_cert = tls_identity(tmp_path / "stranger")[2]
        address = world.registry.public_url + "/managementservice/"
        misled = node.registrar(
            world, transport=PinnedManagementTransport(address, world.session, pinned=stranger_cert)
        )
        await refused(misled.register_auth_certificate(), FaultCode.SSL_AUTH_FAILED)
        assert await registry.list_requests() == ()
        assert (await node.store.get_certificate(node.auth.sha256)).status is CertificateStatus.SAVED

        # A client of a server the registry does not know yet: the registry's fault, unchanged.
        await refused(
            registrar.register_client(SUBSYSTEM, subsystem_name="Civil registry"),
            FaultCode.INVALID_SECURITY_SERVER,
        )
        assert (await node.store.get_client(SUBSYSTEM)).state is ClientState.SAVED

        # 1. authCertReg by pinned HTTPS, with the node's address.
        auth_reg = await registrar.register_auth_certificate()
        record = await registry.get_request(auth_reg)
        assert record.state is RequestState.SUBMITTED
        assert record.request == AuthCertRegRequest(
            server, "127.0.0.2", node.auth.certificate.public_bytes(Encoding.DER)
        )
        assert record.history[0].user == str(NODE_OWNER)
        assert (await node.store.get_certificate(node.auth.sha256)).status is (
            CertificateStatus.REGISTRATION_IN_PROGRESS
        )
        # Pending at the registry: a second request is the registry's conflict; the state stays.
        err = await refused(registrar.register_auth_certificate(node.auth.sha256), FaultCode.CONFLICT)
        assert "already registers this authentication certificate" in err.message
        assert (await node.store.get_certificate(node.auth.sha256)).status is (
            CertificateStatus.REGISTRATION_IN_PROGRESS
        )
        assert await registrar.sync() == []  # still not in global configuration

        # 2. Approved; the next global configuration shows it; the certificate (and the owner) registered.
        await world.approve(auth_reg)
        await node.conf.refresh()
        (listed,) = [ss for ss in _stored_shared(node).security_servers if ss.owner == NODE_OWNER]
        assert listed.auth_cert_hashes == (auth_cert_hash(node.auth.certificate),)
        assert listed.address == "127.0.0.2"
        changes = await registrar.sync()
        assert {(c.sha256, c.client, c.old, c.new) for c in changes} == {
            (node.auth.sha256, None, "registration_in_progress", "registered"),
            (None, NODE_OWNER, "saved", "registered"),
        }
        assert (await node.store.get_certificate(node.auth.sha256)).status is CertificateStatus.REGISTERED
        assert await registrar.sync() == []
        # Registered: sending it again is the registry's conflict, and the state stays registered.
        err = await refused(registrar.register_auth_certificate(node.auth.sha256), FaultCode.CONFLICT)
        assert "already registered" in err.message
        assert (await node.store.get_certificate(node.auth.sha256)).status is CertificateStatus.REGISTERED

        # 3. clientReg, signed by the subsystem's owner, to the registry's public management service.
        client_reg = await registrar.register_client(SUBSYSTEM, subsystem_name="Civil registry")
        record = await registry.get_request(client_reg)
        assert record.request == ClientRegRequest(server, SUBSYSTEM, "Civil registry")
        assert record.state is RequestState.SUBMITTED
        assert (await node.store.get_client(SUBSYSTEM)).state is ClientState.REGISTRATION_IN_PROGRESS
        err = await refused(registrar.register_client(SUBSYSTEM), FaultCode.CONFLICT)  # pending
        assert f"already registers {SUBSYSTEM}" in err.message
        assert (await node.store.get_client(SUBSYSTEM)).state is ClientState.REGISTRATION_IN_PROGRESS

        await world.approve(client_reg)
        await node.conf.refresh()
        changes = await registrar.sync()
        assert [(c.client, c.old, c.new) for c in changes] == [
            (SUBSYSTEM, "registration_in_progress", "registered")
        ]
        assert (await node.store.get_client(SUBSYSTEM)).state is ClientState.REGISTERED
        err = await refused(registrar.register_client(SUBSYSTEM), FaultCode.CONFLICT)  # registered
        assert "already a client" in err.message
        assert (await node.store.get_client(SUBSYSTEM)).state is ClientState.REGISTERED

        # Nothing on disk holds a private key in clear.
        for path in tmp_path.joinpath("node").rglob("*"):
            if path.is_file():
                assert b"PRIVATE KEY-----" not in path.read_bytes().replace(b"ENCRYPTED PRIVATE KEY", b""), (
                    path
                )


async def test_registration_needs_current_global_configuration_and_a_signing_certificate(
    node_db: AsyncEngine, tmp_path: Path
) -> None:
    """No installed configuration, or an expired one, or no active signing certificate of the member that
    must sign: a clear error, nothing sent, no state changed."""
    async with running_world(tmp_path) as world:
        node = await make_node(world, node_db, tmp_path / "node")
        later = node.registrar(world, clock=lambda: datetime.now(UTC) + timedelta(days=1))
        await refused(later.register_auth_certificate(), FaultCode.GLOBAL_CONF_OUTDATED)
        await node.store.set_certificate_active(node.sign.sha256, False)
        err = await refused(
            node.registrar(world).register_auth_certificate(), FaultCode.CANNOT_CREATE_SIGNATURE
        )
        assert "9010001" in err.message
        for child in globalconf_dir(node.settings.home).iterdir():
            if child.is_file():
                child.unlink()
        await refused(node.registrar(world).sync(), FaultCode.MALFORMED_GLOBALCONF)
        assert await world.registry_store.list_requests() == ()
        assert (await node.store.get_certificate(node.auth.sha256)).status is CertificateStatus.SAVED
        # A client the node does not host.
        await refused(
            node.registrar(world).register_client(NODE_OWNER.subsystem("other")), FaultCode.NOT_FOUND
        )


async def test_management_transport_trusts_only_a_published_certificate(tmp_path: Path) -> None:
    """Global configuration that publishes no certificate, or an address that is not https: refused, never
    a fallback to plain HTTP or to the system's CAs."""
    cert = tls_identity(tmp_path)[2]
    provider = REGISTRY_OWNER.subsystem("MANAGEMENT")
    https, http = "https://127.0.0.1:4001/managementservice/", "http://127.0.0.1:4001/managementservice/"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(XRoadError) as e:
            management_transport(ManagementService(https, provider), session)
        assert e.value.code == FaultCode.MALFORMED_GLOBALCONF
        with pytest.raises(XRoadError) as e:
            management_transport(ManagementService(http, provider, cert), session)
        assert e.value.code == FaultCode.INVALID_REQUEST
        assert management_transport(ManagementService(https, provider, cert), session).url == https


# -- the state rules, sans-I/O and on the store ------------------------------------------------------------


@pytest.fixture(scope="module")
def pki() -> DevPki:
    return build_dev_pki(datetime.now(UTC))


async def test_states_follow_global_configuration_as_xroad_does(store: NodeStore, pki: DevPki) -> None:
    """X-Road's ``GlobalConfChecker`` rules on the node's store (both backends)."""
    server = OWNER.server("ss1")
    await store.add_key("auth1", KeyUsage.AUTHENTICATION)
    await store.add_key("sign1", KeyUsage.SIGNING, member=OWNER)
    listed = await store.add_certificate(
        "auth1", pki.member_auth.certificate, status=CertificateStatus.REGISTRATION_IN_PROGRESS
    )
    gone = await store.add_certificate(
        "auth1", pki.expired_sign.certificate, status=CertificateStatus.REGISTERED
    )
    saved = await store.add_certificate("auth1", pki.revoked_sign.certificate)
    v2 = await store.add_certificate(
        "auth1", pki.not_yet_valid_sign.certificate, status=CertificateStatus.GLOBAL_ERROR
    )
    await store.add_certificate(
        "sign1", pki.member_sign.certificate, status=CertificateStatus.REGISTERED, active=True
    )
    states = {
        "in-progress": ClientState.REGISTRATION_IN_PROGRESS,  # listed
        "gone": ClientState.REGISTERED,  # not listed
        "disabling": ClientState.DISABLING_IN_PROGRESS,  # not listed
        "deleting": ClientState.DELETION_IN_PROGRESS,  # listed: left alone
        "enabling": ClientState.ENABLING_IN_PROGRESS,  # listed
        "saved": ClientState.SAVED,  # not listed: left alone
    }
    for code, state in states.items():
        await store.add_client(OWNER.subsystem(code), state=state)
    der_v2 = pki.not_yet_valid_sign.certificate.public_bytes(Encoding.DER)
    shared = SharedParameters(
        instance="MN",
        ocsp_freshness_seconds=600,
        security_servers=(
            SecurityServer(
                OWNER,
                "ss1",
                "127.0.0.2",
                (auth_cert_hash(listed.certificate), hashlib.sha1(der_v2).digest()),
                tuple(OWNER.subsystem(c) for c in ("in-progress", "deleting", "enabling")),
            ),
            SecurityServer(OWNER, "ss2", None, (auth_cert_hash(gone.certificate),)),  # another server's
        ),
    )
    changes = await apply_global_configuration(store, shared)
    assert {(c.sha256 or c.client, c.old, c.new) for c in changes} == {
        (listed.sha256, "registration_in_progress", "registered"),
        (gone.sha256, "registered", "global_error"),
        (v2.sha256, "global_error", "registered"),
        (OWNER, "saved", "registered"),
        (OWNER.subsystem("in-progress"), "registration_in_progress", "registered"),
        (OWNER.subsystem("gone"), "registered", "global_error"),
        (OWNER.subsystem("disabling"), "disabling_in_progress", "disabled"),
        (OWNER.subsystem("enabling"), "enabling_in_progress", "registered"),
    }
    assert (await store.get_certificate(saved.sha256)).status is CertificateStatus.SAVED
    assert (await store.get_client(OWNER.subsystem("deleting"))).state is ClientState.DELETION_IN_PROGRESS
    assert await apply_global_configuration(store, shared) == []  # settled
    # The server leaves global configuration: whatever was registered is a global error.
    empty = SharedParameters(instance="MN", ocsp_freshness_seconds=600)
    certificates = [c for c in await store.list_certificates() if c.key_id == "auth1"]
    after = registration_changes(empty, server, certificates, await store.list_clients())
    assert {c.new for c in after} == {"global_error"}
    assert {c.sha256 for c in after if c.sha256} == {listed.sha256, v2.sha256}
    assert {c.client for c in after if c.client} == {
        OWNER,
        OWNER.subsystem("in-progress"),
        OWNER.subsystem("enabling"),
    }
