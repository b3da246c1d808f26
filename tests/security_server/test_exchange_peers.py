"""Peer trust and the connector over real TLS sockets on loopback: node A (client, 127.0.0.38) posts to
node B (127.0.0.39), both with authentication certificates from the running dev CA, B's OCSP responses
downloaded from its port 5577 responder. Accepted for a registered certificate serving the provider;
refused for an unregistered certificate, a revoked one, one from a CA global configuration does not
approve, and a server that does not serve the provider. Provider address selection picks every server of
the provider, narrowed by ``X-Road-Security-Server``, and the connector the fastest that answers."""

from __future__ import annotations

import hashlib
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.db import NodeStore
from security_server.exchange.peers import PeerConnector, PeerTrust, provider_addresses
from security_server.exchange.tls import client_ssl_context, server_ssl_context
from security_server.ocsp import create_ocsp_responder_app, refresh_ocsp
from tests.security_server.node_pki import dev_trust, revoke
from tests.security_server.peer_world import Node, make_node, shared_params
from trust_services.app import RunningTrustService
from trust_services.pki import (
    auth_profile_extensions,
    ca_name,
    generate_rsa_key,
    issue_certificate,
    self_signed_ca,
    server_subject,
)
from xroad_mn.errors import XRoadError
from xroad_mn.globalconf.params import SharedParameters
from xroad_mn.globalconf.trust import TrustMaterial
from xroad_mn.identifiers import MemberId, SecurityServerId, SubsystemId

A_ADDRESS, B_ADDRESS, C_ADDRESS, DEAD_ADDRESS = "127.0.0.38", "127.0.0.39", "127.0.0.40", "127.0.0.41"
A_OWNER = MemberId("MN", "GOV", "5012345")
B_OWNER = MemberId("MN", "GOV", "7000001")
PROVIDER = SubsystemId("MN", "GOV", "7000001", "registry")
OTHER_PROVIDER = SubsystemId("MN", "COM", "8000002", "shop")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        try:
            s.bind((host, 0))
        except OSError:
            pytest.skip(f"cannot bind {host}")
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class World:
    trust: TrustMaterial
    a: Node
    b: Node
    proxy_port: int
    ocsp_port: int


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def world(
    tmp_path: Path, store: NodeStore, session: aiohttp.ClientSession, trust_service: RunningTrustService
) -> World:
    trust = dev_trust(trust_service)
    a = await make_node(tmp_path, "ss-a", A_ADDRESS, A_OWNER, store, trust, session, trust_service)
    b = await make_node(tmp_path, "ss-b", B_ADDRESS, B_OWNER, store, trust, session, trust_service)
    return World(trust, a, b, _free_port(B_ADDRESS), _free_port(B_ADDRESS))


async def _echo(request: web.Request) -> web.Response:
    """The provider side: echoes the body and names the client certificate the handshake carried."""
    peer = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
    der = peer.getpeercert(True) if isinstance(peer, ssl.SSLObject) else None
    client = hashlib.sha256(der).hexdigest() if der else "none"
    return web.Response(body=await request.read(), headers={"X-Client-Cert": client})


@asynccontextmanager
async def serving(
    app: web.Application, host: str, port: int, context: ssl.SSLContext | None = None
) -> AsyncIterator[None]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=context).start()
        yield
    finally:
        await runner.cleanup()


@asynccontextmanager
async def node_b(
    world: World, address: str = B_ADDRESS, context: ssl.SSLContext | None = None
) -> AsyncIterator[None]:
    """Node B's port 5500 (mutual TLS on its auth key) and its port 5577 OCSP responder on ``address``."""
    proxy = web.Application()
    proxy.router.add_post("/", _echo)
    tls = context or server_ssl_context(world.b.token, world.b.auth, world.trust)
    async with (
        serving(proxy, address, world.proxy_port, tls),
        serving(create_ocsp_responder_app(world.b.ocsp), address, world.ocsp_port),
    ):
        yield


def connector(world: World, shared: SharedParameters) -> PeerConnector:
    return PeerConnector(
        client_ssl_context(world.a.token, world.a.auth, world.trust),
        PeerTrust(world.trust, shared),
        proxy_port=world.proxy_port,
        ocsp_port=world.ocsp_port,
    )


def _sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


async def test_registered_server_is_accepted(world: World) -> None:
    shared = shared_params([(world.a, ()), (world.b, (PROVIDER,))])
    async with node_b(world), connector(world, shared) as peers:
        addresses = provider_addresses(shared, PROVIDER, None)
        assert addresses == [(world.b.server, B_ADDRESS)]
        response = await peers.post(
            addresses, {"Content-Type": "application/octet-stream"}, b"hello", provider=PROVIDER
        )
        again = await peers.post(addresses, {}, b"again", provider=PROVIDER)
    assert (response.status, response.body, response.address) == (200, b"hello", B_ADDRESS)
    assert response.server == world.b.server
    assert response.server_certificate == world.b.auth.certificate
    assert response.headers["X-Client-Cert"] == _sha256(world.a.auth.certificate)
    assert again.body == b"again"


async def test_unregistered_certificate_is_refused(world: World) -> None:
    shared = shared_params([(world.b, (PROVIDER,))])
    unregistered = SharedParameters(
        instance="MN",
        ocsp_freshness_seconds=3600,
        security_servers=tuple(
            type(s)(s.owner, s.server_code, s.address, (b"\x00" * 32,), s.clients)
            for s in shared.security_servers
        ),
    )
    async with node_b(world), connector(world, unregistered) as peers:
        with pytest.raises(XRoadError) as caught:
            await peers.post([(world.b.server, B_ADDRESS)], {}, b"x", provider=PROVIDER)
    assert caught.value.code == "server.clientproxy.ssl_authentication_failed"
    assert "is not associated with any security server" in caught.value.message


async def test_server_not_serving_the_provider_is_refused(world: World) -> None:
    shared = shared_params([(world.b, (PROVIDER,))])
    async with node_b(world), connector(world, shared) as peers:
        with pytest.raises(XRoadError) as caught:
            await peers.post([(world.b.server, B_ADDRESS)], {}, b"x", provider=OTHER_PROVIDER)
    assert caught.value.code == "server.clientproxy.ssl_authentication_failed"
    assert (
        f"Client '{OTHER_PROVIDER}' is not registered at security server {world.b.server}"
        in caught.value.message
    )


async def test_revoked_certificate_is_refused(
    world: World, store: NodeStore, session: aiohttp.ClientSession, trust_service: RunningTrustService
) -> None:
    await revoke(session, trust_service, world.b.auth.certificate.serial_number)
    await refresh_ocsp(store, world.b.ocsp, world.trust, session)
    shared = shared_params([(world.b, (PROVIDER,))])
    async with node_b(world), connector(world, shared) as peers:
        with pytest.raises(XRoadError) as caught:
            await peers.post([(world.b.server, B_ADDRESS)], {}, b"x", provider=PROVIDER)
    assert caught.value.code.startswith("server.clientproxy.ssl_authentication_failed.")
    assert "revoked" in caught.value.message.lower()


def _unapproved_server_context(tmp_path: Path) -> ssl.SSLContext:
    """A TLS server on an auth certificate that a CA global configuration does not list issued."""
    now = datetime.now(UTC)
    rogue_ca = self_signed_ca(
        ca_name("rogue CA"),
        generate_rsa_key(),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
    )
    key = generate_rsa_key()
    cert = issue_certificate(
        rogue_ca,
        subject=server_subject("MN", "GOV", "ss-b"),
        public_key=key.public_key(),
        not_before=now - timedelta(hours=1),
        not_after=now + timedelta(days=10),
        extensions=auth_profile_extensions(),
    )
    from cryptography.hazmat.primitives import serialization

    path = tmp_path / "rogue.pem"
    path.write_bytes(
        cert.public_bytes(Encoding.PEM)
        + key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(path)
    return context


async def test_certificate_from_unapproved_ca_is_refused(world: World, tmp_path: Path) -> None:
    shared = shared_params([(world.b, (PROVIDER,))])
    async with node_b(world, context=_unapproved_server_context(tmp_path)), connector(world, shared) as peers:
        with pytest.raises(XRoadError) as caught:
            await peers.post([(world.b.server, B_ADDRESS)], {}, b"x", provider=PROVIDER)
    assert caught.value.code == "server.clientproxy.ssl_authentication_failed.invalid_cert_path"
    assert caught.value.details["address"] == B_ADDRESS


async def test_client_without_certificate_is_refused_by_the_server(world: World) -> None:
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.check_hostname = False
    bare.verify_mode = ssl.CERT_NONE
    async with node_b(world), aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientError):
            async with s.post(f"https://{B_ADDRESS}:{world.proxy_port}/", data=b"x", ssl=bare) as resp:
                await resp.read()


async def test_fastest_live_server_wins_and_a_dead_one_is_a_network_error(world: World) -> None:
    c_server = SecurityServerId("MN", "GOV", "7000001", "ss-c")
    shared = shared_params([(world.b, (PROVIDER,))])
    async with node_b(world), connector(world, shared) as peers:
        both = [(c_server, DEAD_ADDRESS), (world.b.server, B_ADDRESS)]
        for _ in range(3):
            response = await peers.post(both, {}, b"x", provider=PROVIDER, connect_timeout=5)
            assert response.address == B_ADDRESS
        with pytest.raises(XRoadError) as caught:
            await peers.post([(c_server, DEAD_ADDRESS)], {}, b"x", provider=PROVIDER, connect_timeout=5)
    assert caught.value.code == "server.clientproxy.network_error"
    assert DEAD_ADDRESS in caught.value.message


async def test_client_certificate_check_uses_the_request_ocsp_and_caches(world: World) -> None:
    shared = shared_params([(world.a, (A_OWNER,)), (world.b, (PROVIDER,))])
    trust = PeerTrust(world.trust, shared)
    ocsp = world.a.ocsp.status(world.a.auth.certificate)
    assert ocsp is not None
    assert ocsp.response is not None
    now = datetime.now(UTC)
    verdict = trust.check_client_certificate(
        world.a.auth.certificate, A_OWNER, at=now, ocsp_responses=[ocsp.response]
    )
    assert verdict.server == world.a.server
    assert trust.cached(world.a.auth.certificate, A_OWNER, at=now, ocsp_responses=[ocsp.response]) == verdict
    # A request carrying other OCSP responses (a newer, perhaps revoked one) is decided on them.
    assert trust.cached(world.a.auth.certificate, A_OWNER, at=now) is None
    assert verdict.valid_until <= ocsp.this_update + timedelta(seconds=3600)  # type: ignore[operator]
    with pytest.raises(XRoadError) as caught:
        trust.check_client_certificate(
            world.a.auth.certificate, PROVIDER, at=now, ocsp_responses=[ocsp.response]
        )
    assert caught.value.code == "ssl_authentication_failed"
    with pytest.raises(XRoadError) as caught:  # no OCSP carried
        trust.check_client_certificate(world.b.auth.certificate, PROVIDER, at=now, ocsp_responses=[])
    assert caught.value.code == "ssl_authentication_failed.cert_validation"
    trust.update(
        world.trust, shared_params([(world.b, (PROVIDER,))])
    )  # A unregistered by the next configuration
    assert trust.cached(world.a.auth.certificate, A_OWNER, at=now, ocsp_responses=[ocsp.response]) is None
    with pytest.raises(XRoadError):
        trust.check_client_certificate(
            world.a.auth.certificate, A_OWNER, at=now, ocsp_responses=[ocsp.response]
        )


def test_provider_addresses_select_narrow_and_fail() -> None:
    from xroad_mn.globalconf.params import SecurityServer

    def server(code: str, address: str, *clients: SubsystemId, maintenance: bool = False) -> SecurityServer:
        return SecurityServer(B_OWNER, code, address, (), clients, in_maintenance_mode=maintenance)

    shared = SharedParameters(
        "MN",
        3600,
        security_servers=(
            server("ss1", "10.0.0.1", PROVIDER),
            server("ss2", "10.0.0.2", PROVIDER),
            server("ss3", "10.0.0.3", OTHER_PROVIDER),
            server("ss4", "10.0.0.4", PROVIDER, maintenance=True),
        ),
    )
    ids = {code: SecurityServerId("MN", "GOV", "7000001", code) for code in ("ss1", "ss2", "ss3", "ss4")}
    assert provider_addresses(shared, PROVIDER, None) == [(ids["ss1"], "10.0.0.1"), (ids["ss2"], "10.0.0.2")]
    assert provider_addresses(shared, PROVIDER, ids["ss2"]) == [(ids["ss2"], "10.0.0.2")]
    # the owner member is a client of each of its servers
    assert len(provider_addresses(shared, B_OWNER, None)) == 3
    with pytest.raises(XRoadError) as caught:
        provider_addresses(shared, PROVIDER, ids["ss3"])
    assert caught.value.code == "unknown_member"
    with pytest.raises(XRoadError) as caught:
        provider_addresses(shared, SubsystemId("MN", "GOV", "1", "x"), None)
    assert caught.value.code == "unknown_member"
    with pytest.raises(XRoadError) as caught:
        provider_addresses(shared, PROVIDER, ids["ss4"])
    assert caught.value.code == "maintenance_mode"
