"""The node's TLS contexts on real sockets: mutual TLS 1.2 with X-Road's cipher suites between two nodes'
authentication certificates from the dev CA; a client without a certificate, or with one the trust
material's CAs did not issue, is refused until :meth:`NodeTlsContexts.update_trust` brings in its CA; the
authentication key leaves the software token only for TLS and only through an in-memory file."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.db import CertificateStatus, NodeStore
from security_server.exchange.tls import (
    TLS_VERSION,
    XROAD_TLS_CIPHERS,
    NodeTlsContexts,
    active_authentication_key,
    client_ssl_context,
    server_ssl_context,
)
from tests.security_server.node_pki import dev_trust
from tests.security_server.peer_world import Node, make_node
from trust_services.app import RunningTrustService
from trust_services.pki import (
    auth_profile_extensions,
    ca_name,
    generate_rsa_key,
    issue_certificate,
    self_signed_ca,
    server_subject,
)
from xroad_mn.certs import EJBCA_PROFILE
from xroad_mn.errors import XRoadError
from xroad_mn.globalconf.trust import ApprovedCA, TrustMaterial
from xroad_mn.identifiers import MemberId

A_OWNER = MemberId("MN", "GOV", "5012345")
HOST = "127.0.0.1"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def trust(trust_service: RunningTrustService) -> TrustMaterial:
    return dev_trust(trust_service)


@pytest.fixture
async def nodes(
    tmp_path: Path,
    store: NodeStore,
    trust: TrustMaterial,
    session: aiohttp.ClientSession,
    trust_service: RunningTrustService,
) -> tuple[Node, Node]:
    a = await make_node(tmp_path, "ss-a", HOST, A_OWNER, store, trust, session, trust_service)
    b = await make_node(tmp_path, "ss-b", HOST, A_OWNER, store, trust, session, trust_service)
    return a, b


@asynccontextmanager
async def tls_server(context: ssl.SSLContext) -> AsyncIterator[int]:
    """A TLS echo server on loopback; yields its port."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(await reader.read(100))
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, HOST, 0, ssl=context)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def exchange(port: int, context: ssl.SSLContext) -> tuple[bytes, ssl.SSLObject]:
    reader, writer = await asyncio.open_connection(HOST, port, ssl=context)
    try:
        writer.write(b"ping")
        await writer.drain()
        data = await reader.read(100)
        ssl_object = writer.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        return data, ssl_object
    finally:
        writer.close()


async def refusal(port: int, context: ssl.SSLContext) -> Exception | bytes:
    """The handshake's failure, or (wrongly) the answer."""
    try:
        data, _ = await exchange(port, context)
    except (ssl.SSLError, ConnectionError) as e:
        return e
    return data


def _rogue_client(tmp_path: Path) -> tuple[ssl.SSLContext, ApprovedCA]:
    """A client on an auth certificate of a CA the trust material does not approve (yet)."""
    now = datetime.now(UTC)
    ca = self_signed_ca(
        ca_name("other CA"),
        generate_rsa_key(),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=9),
    )
    key = generate_rsa_key()
    cert = issue_certificate(
        ca,
        subject=server_subject("MN", "GOV", "ss-x"),
        public_key=key.public_key(),
        not_before=now - timedelta(hours=1),
        not_after=now + timedelta(days=5),
        extensions=auth_profile_extensions(),
    )
    path = tmp_path / "rogue.pem"
    path.write_bytes(
        cert.public_bytes(Encoding.PEM)
        + key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(path)
    approved = ApprovedCA("other CA", ca.certificate, (), (), EJBCA_PROFILE, False, "MN")
    return context, approved


async def test_mutual_tls_between_two_nodes(nodes: tuple[Node, Node], trust: TrustMaterial) -> None:
    a, b = nodes
    async with tls_server(server_ssl_context(b.token, b.auth, trust)) as port:
        data, ssl_object = await exchange(port, client_ssl_context(a.token, a.auth, trust))
    assert data == b"ping"
    assert ssl_object.version() == "TLSv1.2"
    cipher = ssl_object.cipher()
    assert cipher is not None
    assert cipher[0] in XROAD_TLS_CIPHERS
    assert ssl_object.getpeercert(True) == b.auth.certificate.public_bytes(Encoding.DER)
    assert TLS_VERSION is ssl.TLSVersion.TLSv1_2


async def test_server_requires_a_client_certificate(nodes: tuple[Node, Node], trust: TrustMaterial) -> None:
    _, b = nodes
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.check_hostname = False
    bare.verify_mode = ssl.CERT_NONE
    async with tls_server(server_ssl_context(b.token, b.auth, trust)) as port:
        assert isinstance(await refusal(port, bare), Exception)


async def test_unapproved_ca_is_refused_until_global_configuration_approves_it(
    nodes: tuple[Node, Node], trust: TrustMaterial, tmp_path: Path
) -> None:
    _, b = nodes
    rogue, approved = _rogue_client(tmp_path)
    contexts = NodeTlsContexts.create(b.token, b.auth, trust)
    async with tls_server(contexts.server) as port:
        assert isinstance(await refusal(port, rogue), Exception)
        contexts.update_trust(TrustMaterial("MN", (*trust.approved_cas, approved), (), 3600, None))
        data, _ = await exchange(port, rogue)
    assert data == b"ping"


async def test_authentication_key_leaves_the_token_only_for_tls(
    nodes: tuple[Node, Node], store: NodeStore
) -> None:
    a, _ = nodes
    pem = a.token.tls_authentication_key_pem(a.auth.key_id)
    private = serialization.load_pem_private_key(pem, password=None)
    assert private.public_key().public_bytes(
        Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == a.auth.certificate.public_key().public_bytes(
        Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sign_key = next(k for k in await store.list_keys() if k.member is not None)
    with pytest.raises(XRoadError) as caught:
        a.token.tls_authentication_key_pem(sign_key.key_id)
    assert caught.value.code == "signer.wrong_cert_usage"


async def test_loading_the_key_leaves_no_file_open(nodes: tuple[Node, Node], trust: TrustMaterial) -> None:
    a, _ = nodes
    before = set(os.listdir("/proc/self/fd"))
    client_ssl_context(a.token, a.auth, trust)
    assert set(os.listdir("/proc/self/fd")) <= before


async def test_active_authentication_key_is_the_registered_one(
    nodes: tuple[Node, Node], store: NodeStore
) -> None:
    a, b = nodes
    found = await active_authentication_key(store)
    assert found.certificate in (a.auth.certificate, b.auth.certificate)
    for cert in (a.auth.certificate, b.auth.certificate):
        await store.set_certificate_status(
            (await store.list_certificates(a.auth.key_id if cert is a.auth.certificate else b.auth.key_id))[
                0
            ].sha256,
            CertificateStatus.SAVED,
        )
    with pytest.raises(XRoadError) as caught:
        await active_authentication_key(store)
    assert caught.value.code == "signer.key_not_found"
