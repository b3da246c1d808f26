"""The node's own certificates against the real dev CA: keys in a software token, CSRs for the CA's
profile, the CA client, and the checked import (every refusal changes nothing)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.certs import (
    create_csr,
    generate_key,
    hosted_members,
    import_certificate,
    request_certificate,
)
from security_server.db import CertificateStatus, KeyUsage, NodeStore
from tests.security_server.conftest import OWNER
from tests.security_server.node_pki import certify, dev_trust, software_token
from trust_services.app import RunningTrustService
from trust_services.pki import member_subject
from trust_services.store import init_trust_dir
from xroad_mn.certs import FIVRK_PROFILE, XROAD_MN_PROFILE
from xroad_mn.errors import XRoadError
from xroad_mn.identifiers import MemberId
from xroad_mn.tokens import KeyUsage as TokenKeyUsage
from xroad_mn.tokens import SoftwareToken, build_csr, token_signer

BANK = MemberId("MN", "COM", "9011223")
STRANGER = MemberId("MN", "COM", "7777777")


@pytest.fixture
def token(tmp_path: Path) -> SoftwareToken:
    return software_token(tmp_path / "token")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _snapshot(store: NodeStore, token: SoftwareToken) -> tuple[object, ...]:
    keys = await asyncio.to_thread(token.list_keys)
    return (
        await store.list_keys(),
        tuple(c.sha256 for c in await store.list_certificates()),
        await store.list_csrs(),
        tuple(k.key_id for k in keys),
    )


async def _refused(code: str, store: NodeStore, token: SoftwareToken, call: object) -> XRoadError:
    before = await _snapshot(store, token)
    with pytest.raises(XRoadError) as e:
        await call  # type: ignore[misc]
    assert e.value.has_code(code), e.value
    assert await _snapshot(store, token) == before, "a refused operation changed the node"
    return e.value


async def test_auth_and_sign_certificates_from_the_dev_ca(
    store: NodeStore,
    token: SoftwareToken,
    trust_service: RunningTrustService,
    session: aiohttp.ClientSession,
) -> None:
    trust = dev_trust(trust_service)
    await store.add_client(BANK.subsystem("bank"))
    assert await hosted_members(store) == {OWNER, BANK}

    # The CSR is recorded with the subject of the CA's profile before anything is submitted.
    key = await generate_key(token, store, KeyUsage.AUTHENTICATION)
    new = await create_csr(token, store, trust, key.key_id)
    assert new.csr.subject.rfc4514_string() == "2.5.4.5=5012345,CN=ss1,O=GOV,C=MN"
    assert new.ca.name == "MN dev CA"
    [record] = await store.list_csrs(key.key_id)
    assert record.der == new.csr.public_bytes(Encoding.DER)
    assert record.member is None
    cert = await request_certificate(session, trust_service.urls.base, new.csr, KeyUsage.AUTHENTICATION)
    auth = await import_certificate(token, store, trust, cert)
    assert auth.record.status is CertificateStatus.SAVED  # registration comes next
    assert auth.record.active
    assert auth.member is None
    assert await store.list_csrs(key.key_id) == ()  # done with

    sign = await certify(token, store, trust, session, trust_service, KeyUsage.SIGNING, OWNER)
    assert sign.member == OWNER
    assert sign.record.status is CertificateStatus.REGISTERED  # signing certificates need no registration
    bank = await certify(token, store, trust, session, trust_service, KeyUsage.SIGNING, BANK)
    assert bank.member == BANK
    assert bank.record.certificate.subject.rfc4514_string() == "CN=9011223,O=COM,C=MN"
    held = {c.sha256 for c in await store.list_certificates()}
    assert held == {auth.record.sha256, sign.record.sha256, bank.record.sha256}
    # The token made the keys with their usage; the node's records agree.
    usages = {k.key_id: k.usage for k in await asyncio.to_thread(token.list_keys)}
    assert usages[key.key_id] is TokenKeyUsage.AUTHENTICATION
    assert usages[sign.record.key_id] is TokenKeyUsage.SIGNING


async def test_csr_subject_follows_the_profile_global_configuration_names(
    store: NodeStore, token: SoftwareToken, trust_service: RunningTrustService
) -> None:
    key = await generate_key(token, store, KeyUsage.SIGNING, member=OWNER)
    ours = await create_csr(token, store, dev_trust(trust_service, profile=XROAD_MN_PROFILE), key.key_id)
    assert ours.csr.subject.rfc4514_string() == "CN=5012345,O=GOV,C=MN"
    fi = await create_csr(
        token, store, dev_trust(trust_service, profile=FIVRK_PROFILE), key.key_id, member_name="Gov Agency"
    )
    assert fi.csr.subject.rfc4514_string() == "CN=5012345,2.5.4.5=MN/ss1/GOV,O=Gov Agency,C=FI"
    assert [c.subject_name for c in await store.list_csrs(key.key_id)] == [
        ours.csr.subject.rfc4514_string(),
        fi.csr.subject.rfc4514_string(),
    ]


async def test_keys_for_members_the_node_does_not_host_are_refused(
    store: NodeStore, token: SoftwareToken
) -> None:
    await _refused(
        "invalid_request", store, token, generate_key(token, store, KeyUsage.SIGNING, member=STRANGER)
    )
    await _refused(
        "invalid_request", store, token, generate_key(token, store, KeyUsage.AUTHENTICATION, member=OWNER)
    )
    await _refused("invalid_request", store, token, generate_key(token, store, KeyUsage.SIGNING))


async def test_bad_certificates_are_refused_and_change_nothing(
    store: NodeStore,
    token: SoftwareToken,
    trust_service: RunningTrustService,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    trust = dev_trust(trust_service)
    base = trust_service.urls.base
    sign_key = await generate_key(token, store, KeyUsage.SIGNING, member=OWNER)
    signer = await asyncio.to_thread(token_signer, token, sign_key.key_id)

    # Not a certificate at all.
    await _refused("incorrect_certificate", store, token, import_certificate(token, store, trust, b"garbage"))

    # A certificate for a key this token does not hold.
    other = software_token(tmp_path / "other-token")
    foreign_key = await asyncio.to_thread(other.generate_key, "x", TokenKeyUsage.SIGNING)
    foreign_csr = build_csr(token_signer(other, foreign_key.key_id), member_subject(OWNER))
    foreign = await request_certificate(session, base, foreign_csr, KeyUsage.SIGNING)
    await _refused("key_not_found", store, token, import_certificate(token, store, trust, foreign))

    # An authentication certificate for a signing key.
    csr = build_csr(signer, member_subject(OWNER))
    as_auth = await request_certificate(session, base, csr, KeyUsage.AUTHENTICATION)
    await _refused("wrong_cert_usage", store, token, import_certificate(token, store, trust, as_auth))

    # A signing certificate for a member the node does not host, and for another member than the key's.
    stranger = await request_certificate(
        session, base, build_csr(signer, member_subject(STRANGER)), KeyUsage.SIGNING
    )
    error = await _refused(
        "incorrect_certificate", store, token, import_certificate(token, store, trust, stranger)
    )
    assert error.details["member"] == "MEMBER:MN/COM/7777777"
    await store.add_client(BANK)
    for_bank = await request_certificate(
        session, base, build_csr(signer, member_subject(BANK)), KeyUsage.SIGNING
    )
    await _refused("incorrect_certificate", store, token, import_certificate(token, store, trust, for_bank))

    # The right certificate, but from a CA global configuration does not approve, or not valid now.
    good = await request_certificate(session, base, csr, KeyUsage.SIGNING)
    elsewhere = tmp_path / "other-trust"
    await asyncio.to_thread(init_trust_dir, elsewhere, instance="MN", now=datetime.now(UTC))
    untrusted = dev_trust(
        RunningTrustService(trust_service.host, trust_service.port, trust_service.urls, elsewhere)
    )
    await _refused("invalid_cert_path", store, token, import_certificate(token, store, untrusted, good))
    later = datetime.now(UTC) + timedelta(days=400)
    await _refused("cert_validation", store, token, import_certificate(token, store, trust, good, at=later))

    # Accepted once; a second import is a conflict.
    imported = await import_certificate(token, store, trust, good.public_bytes(Encoding.PEM))
    assert imported.member == OWNER
    await _refused("conflict", store, token, import_certificate(token, store, trust, good))


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def test_ca_client_refuses_answers_that_are_not_a_certificate(
    store: NodeStore, token: SoftwareToken, trust_service: RunningTrustService, session: aiohttp.ClientSession
) -> None:
    key = await generate_key(token, store, KeyUsage.SIGNING, member=OWNER)
    new = await create_csr(token, store, dev_trust(trust_service), key.key_id)

    async def not_a_certificate(request: web.Request) -> web.Response:
        return web.Response(status=201, text="<html>certificate issued!</html>")

    async def someone_elses(request: web.Request) -> web.Response:
        other = software_token(token.directory.parent / "third")
        info = other.generate_key("x", TokenKeyUsage.SIGNING)
        csr = build_csr(token_signer(other, info.key_id), member_subject(OWNER))
        async with aiohttp.ClientSession() as s:
            cert = await request_certificate(s, trust_service.urls.base, csr, KeyUsage.SIGNING)
        return web.Response(status=201, body=cert.public_bytes(Encoding.PEM))

    app = web.Application()
    app.router.add_post("/bad/ca/certificates", not_a_certificate)
    app.router.add_post("/swap/ca/certificates", someone_elses)
    runner, url = await _serve(app)
    try:
        with pytest.raises(XRoadError, match="did not answer with a certificate") as e:
            await request_certificate(session, f"{url}/bad", new.csr, KeyUsage.SIGNING)
        assert e.value.has_code("incorrect_certificate")
        with pytest.raises(XRoadError, match="for another key") as e:
            await request_certificate(session, f"{url}/swap", new.csr, KeyUsage.SIGNING)
        assert e.value.has_code("incorrect_certificate")
    finally:
        await runner.cleanup()

    # The CA's own refusal carries its message; a CA that is not there is a network error.
    signer = token_signer(token, key.key_id)
    foreign = build_csr(signer, member_subject(MemberId("EE", "GOV", "1")))
    with pytest.raises(XRoadError, match=r"HTTP 400.*instance") as e:
        await request_certificate(session, trust_service.urls.base, foreign, KeyUsage.SIGNING)
    assert e.value.has_code("service_failed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(XRoadError) as e:
        await request_certificate(session, f"http://127.0.0.1:{closed}", new.csr, KeyUsage.SIGNING)
    assert e.value.has_code("network_error")
    with pytest.raises(XRoadError) as e:
        await request_certificate(session, "ftp://127.0.0.1", new.csr, KeyUsage.SIGNING)
    assert e.value.has_code("invalid_request")
