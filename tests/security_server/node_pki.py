"""Helpers of the node certificate tests: trust material for the running dev CA, a software token, and a
key certified end to end (key in the token → CSR → our CA → checked import)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from cryptography import x509

from security_server.certs import create_csr, generate_key, import_certificate, request_certificate
from security_server.certs.import_ import ImportedCertificate
from security_server.db import KeyUsage, NodeStore
from trust_services.app import RunningTrustService
from trust_services.store import TrustFiles
from xroad_mn.certs import EJBCA_PROFILE, load_certificate
from xroad_mn.globalconf.trust import ApprovedCA, OcspResponder, TrustMaterial
from xroad_mn.identifiers import MemberId
from xroad_mn.tokens import SoftwareToken

PIN = "node-test-pin"
CA_NAME = "MN dev CA"


def ca_certificate(service: RunningTrustService) -> x509.Certificate:
    return load_certificate(TrustFiles(service.directory).ca_cert.read_bytes())


def dev_trust(
    service: RunningTrustService,
    *,
    profile: str = EJBCA_PROFILE,
    ocsp_urls: tuple[str, ...] | None = None,
    freshness_seconds: int = 3600,
) -> TrustMaterial:
    """Global configuration's view of the running dev CA: approved, with its OCSP responder."""
    files = TrustFiles(service.directory)
    responder_cert = load_certificate(files.ocsp_cert.read_bytes())
    urls = ocsp_urls if ocsp_urls is not None else (service.urls.ocsp,)
    ca = ApprovedCA(
        name=CA_NAME,
        top_ca=ca_certificate(service),
        intermediates=(),
        ocsp_responders=tuple(OcspResponder(u, responder_cert) for u in urls),
        certificate_profile_info=profile,
        authentication_only=False,
        instance="MN",
    )
    return TrustMaterial("MN", (ca,), (), freshness_seconds, None)


def software_token(path: Path) -> SoftwareToken:
    token = SoftwareToken(path)
    token.initialize(PIN)
    token.login(PIN)
    return token


async def certify(
    token: SoftwareToken,
    store: NodeStore,
    trust: TrustMaterial,
    session: aiohttp.ClientSession,
    service: RunningTrustService,
    usage: KeyUsage,
    member: MemberId | None = None,
) -> ImportedCertificate:
    key = await generate_key(token, store, usage, member=member)
    new = await create_csr(token, store, trust, key.key_id)
    cert = await request_certificate(session, service.urls.base, new.csr, usage)
    return await import_certificate(token, store, trust, cert)


async def revoke(session: aiohttp.ClientSession, service: RunningTrustService, serial: int) -> None:
    async with session.post(
        service.urls.revocations, json={"serial": serial, "reason": "keyCompromise"}
    ) as resp:
        assert resp.status == 200, await resp.text()
