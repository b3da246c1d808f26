"""Two security servers' keys for the exchange tests, certified end to end by the running dev CA.

:func:`make_node` gives a node (server ``owner``/``name``) its own software token, an authentication
certificate (registered) and a signing certificate for the store's owner (:data:`OWNER`), and the OCSP
responses fetched from the dev OCSP responder into its :class:`OwnOcspCache`. :func:`shared_params` is
global configuration's view of the servers (owner, address, ``authCertHash``, clients).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.db import CertificateStatus, KeyUsage, NodeStore
from security_server.exchange.tls import AuthenticationKey
from security_server.ocsp import OwnOcspCache, refresh_ocsp
from tests.security_server.conftest import OWNER
from tests.security_server.node_pki import certify, software_token
from trust_services.app import RunningTrustService
from xroad_mn.globalconf.params import SecurityServer, SharedParameters
from xroad_mn.globalconf.trust import TrustMaterial
from xroad_mn.identifiers import ClientId, MemberId, SecurityServerId
from xroad_mn.tokens import SoftwareToken


@dataclass(frozen=True)
class Node:
    server: SecurityServerId
    address: str
    token: SoftwareToken
    auth: AuthenticationKey
    sign_certificate: x509.Certificate
    ocsp: OwnOcspCache


async def make_node(
    tmp_path: Path,
    name: str,
    address: str,
    owner: MemberId,
    store: NodeStore,
    trust: TrustMaterial,
    session: aiohttp.ClientSession,
    service: RunningTrustService,
) -> Node:
    token = software_token(tmp_path / f"{name}-token")
    auth = await certify(token, store, trust, session, service, KeyUsage.AUTHENTICATION)
    await store.set_certificate_status(auth.record.sha256, CertificateStatus.REGISTERED)
    sign = await certify(token, store, trust, session, service, KeyUsage.SIGNING, OWNER)
    cache = OwnOcspCache(tmp_path / f"{name}-ocsp")
    await refresh_ocsp(store, cache, trust, session)
    server = SecurityServerId(owner.instance, owner.member_class, owner.member_code, name)
    return Node(
        server,
        address,
        token,
        AuthenticationKey(auth.record.key_id, auth.record.certificate),
        sign.record.certificate,
        cache,
    )


def auth_cert_hash(cert: x509.Certificate) -> bytes:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()


def shared_params(
    servers: Sequence[tuple[Node, Sequence[ClientId]]], *, maintenance: Sequence[Node] = ()
) -> SharedParameters:
    """Global configuration listing each node with its auth certificate hash and clients."""
    return SharedParameters(
        instance="MN",
        ocsp_freshness_seconds=3600,
        security_servers=tuple(
            SecurityServer(
                owner=node.server.owner,
                server_code=node.server.server_code,
                address=node.address,
                auth_cert_hashes=(auth_cert_hash(node.auth.certificate),),
                clients=tuple(clients),
                in_maintenance_mode=node in maintenance,
            )
            for node, clients in servers
        ),
    )
