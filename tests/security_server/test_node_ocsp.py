"""OCSP for the node's own certificates against the real dev CA and OCSP responder: fetched, verified,
cached on disk, refreshed by a background task, and served on port 5577 (PR-MESSTRANSP §5.2) over real
sockets; each served part is checked with ``openssl ocsp``."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.db import KeyUsage, NodeStore
from security_server.ocsp import (
    OcspRefresher,
    OcspStatusKind,
    OwnOcspCache,
    create_ocsp_responder_app,
    ocsp_dir,
    refresh_ocsp,
    run_node_ocsp_responder,
    run_ocsp_responder,
)
from security_server.settings import NodeSettings
from tests.security_server.conftest import OWNER
from tests.security_server.node_pki import certify, dev_trust, revoke, software_token
from trust_services.app import RunningTrustService
from trust_services.store import TrustFiles
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import TrustMaterial
from xroad_mn.mime import MimePart, boundary_of, split_header_params, split_multipart
from xroad_mn.tokens import SoftwareToken

NODE_ADDRESS = "127.0.0.2"
ROUND_TIMEOUT = 30


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def _ocsp_parts(body: bytes, content_type: str) -> list[MimePart]:
    """The parts of a :5577 answer, read with the core's one multipart parser."""
    media_type, params = split_header_params(content_type)
    assert media_type == "multipart/related"
    boundary = boundary_of(params, code="invalid_message", what="OCSP download")
    return split_multipart(body, boundary, code="invalid_message")


@pytest.fixture
def token(tmp_path: Path) -> SoftwareToken:
    return software_token(tmp_path / "token")


@pytest.fixture
def loopback2() -> str:
    """The node's own loopback address (on Linux all of 127.0.0.0/8 is loopback)."""
    with socket.socket() as s:
        try:
            s.bind((NODE_ADDRESS, 0))
        except OSError:
            pytest.skip(f"cannot bind {NODE_ADDRESS}")
    return NODE_ADDRESS


async def _two_certificates(
    token: SoftwareToken,
    store: NodeStore,
    trust: TrustMaterial,
    session: aiohttp.ClientSession,
    service: RunningTrustService,
) -> tuple[x509.Certificate, x509.Certificate]:
    auth = await certify(token, store, trust, session, service, KeyUsage.AUTHENTICATION)
    sign = await certify(token, store, trust, session, service, KeyUsage.SIGNING, OWNER)
    return auth.record.certificate, sign.record.certificate


def _sha1(cert: x509.Certificate) -> str:
    return hashlib.sha1(cert.public_bytes(Encoding.DER)).hexdigest()


def _sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _openssl_status(
    openssl: str, service: RunningTrustService, cert: x509.Certificate, der: bytes, tmp_path: Path
) -> str:
    """``openssl ocsp`` verifies the served response against the CA and its responder; the status it reads."""
    (tmp_path / "resp.der").write_bytes(der)
    (tmp_path / "leaf.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    files = TrustFiles(service.directory)
    out = subprocess.run(
        [
            openssl, "ocsp", "-respin", "resp.der", "-issuer", str(files.ca_cert), "-cert", "leaf.pem",
            "-VAfile", str(files.ocsp_cert), "-no_nonce",
        ],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Response verify OK" in out.stderr
    return out.stdout.split("leaf.pem:", 1)[1].split()[0]


async def test_refresh_fetches_verifies_caches_and_sees_revocation(
    store: NodeStore,
    token: SoftwareToken,
    trust_service: RunningTrustService,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    trust = dev_trust(trust_service)
    auth, sign = await _two_certificates(token, store, trust, session, trust_service)
    cache = OwnOcspCache(ocsp_dir(tmp_path / "home"))
    states = {s.sha256: s for s in await refresh_ocsp(store, cache, trust, session)}
    assert {s.status for s in states.values()} == {OcspStatusKind.GOOD}
    assert all(s.error is None and s.this_update is not None for s in states.values())
    # On disk in the node's home, private.
    assert stat.S_IMODE(cache.directory.stat().st_mode) == 0o700
    for cert in (auth, sign):
        path = cache.directory / f"{_sha256(cert)}.der"
        assert path.read_bytes() == cache.response_by_sha1(_sha1(cert))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    await revoke(session, trust_service, auth.serial_number)
    await refresh_ocsp(store, cache, trust, session)
    auth_state, sign_state = cache.status(auth), cache.status(sign)
    assert auth_state is not None
    assert sign_state is not None
    assert auth_state.status is OcspStatusKind.REVOKED
    assert auth_state.revocation_time is not None
    assert sign_state.status is OcspStatusKind.GOOD

    # A restarted node serves what it held, before any refresh.
    restarted = OwnOcspCache(ocsp_dir(tmp_path / "home"))
    restarted.load([auth, sign])
    loaded = restarted.status(auth)
    assert loaded is not None
    assert loaded.status is OcspStatusKind.REVOKED
    assert restarted.response_by_sha256(_sha256(sign)) == cache.response_by_sha256(_sha256(sign))


async def test_a_failed_fetch_keeps_the_held_response_and_says_why(
    store: NodeStore,
    token: SoftwareToken,
    trust_service: RunningTrustService,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    trust = dev_trust(trust_service)
    auth, _ = await _two_certificates(token, store, trust, session, trust_service)
    cache = OwnOcspCache(ocsp_dir(tmp_path))
    await refresh_ocsp(store, cache, trust, session)
    held = cache.response_by_sha1(_sha1(auth))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/ocsp"
    for broken, words in (
        (dev_trust(trust_service, ocsp_urls=(closed,)), "unreachable"),
        (dev_trust(trust_service, ocsp_urls=()), "no OCSP responder"),
        (dev_trust(trust_service, ocsp_urls=(trust_service.urls.ca,)), "HTTP"),  # not an OCSP responder
    ):
        await refresh_ocsp(store, cache, broken, session)
        state = cache.status(auth)
        assert state is not None
        assert state.error is not None
        assert words in state.error
        assert state.status is OcspStatusKind.GOOD
        assert cache.response_by_sha1(_sha1(auth)) == held
    # The next good fetch clears the error; a second responder is tried after a failing first.
    await refresh_ocsp(
        store, cache, dev_trust(trust_service, ocsp_urls=(closed, trust_service.urls.ocsp)), session
    )
    state = cache.status(auth)
    assert state is not None
    assert state.error is None


async def test_responder_on_5577_serves_multipart_openssl_verifies(
    store: NodeStore,
    token: SoftwareToken,
    trust_service: RunningTrustService,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    openssl: str,
    loopback2: str,
) -> None:
    trust = dev_trust(trust_service)
    auth, sign = await _two_certificates(token, store, trust, session, trust_service)
    cache = OwnOcspCache(ocsp_dir(tmp_path / "home"))
    await refresh_ocsp(store, cache, trust, session)
    settings = NodeSettings(home=tmp_path / "home", address=loopback2, ocsp_responder_port=0)
    async with run_node_ocsp_responder(settings, create_ocsp_responder_app(cache)) as (host, port):
        assert host == loopback2
        base = f"http://{host}:{port}/"
        # SHA-1 (cert=, PR-MESSTRANSP) and SHA-256 (cert_hash=, 7.8 clients), repeated.
        query = [("cert", _sha1(auth).upper()), ("cert_hash", _sha256(sign)), ("cert", _sha1(auth))]
        async with session.get(base, params=query) as resp:
            assert resp.status == 200
            body = await resp.read()
            content_type = resp.headers["Content-Type"]
        parts = _ocsp_parts(body, content_type)
        assert [p.headers["content-type"] for p in parts] == ["application/ocsp-response"] * 2
        assert _openssl_status(openssl, trust_service, auth, parts[0].body, tmp_path) == "good"
        assert _openssl_status(openssl, trust_service, sign, parts[1].body, tmp_path) == "good"

        async with session.head(base) as resp:
            assert resp.status == 200
        unknown = hashlib.sha1(b"not ours").hexdigest()
        async with session.get(base, params={"cert": unknown}) as resp:
            assert resp.status == 404
            assert resp.headers["X-Road-Error"].endswith(FaultCode.OCSP_FAILED)
        for params in ({}, {"cert": "xyz"}, {"cert_hash": _sha1(auth)}):
            async with session.get(base, params=params) as resp:
                assert resp.status == 400
                assert resp.headers["X-Road-Error"].endswith(FaultCode.BAD_REQUEST)


async def test_background_refresh_owned_by_the_app(
    store: NodeStore,
    token: SoftwareToken,
    trust_service: RunningTrustService,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    openssl: str,
    loopback2: str,
) -> None:
    trust = dev_trust(trust_service)
    auth, _ = await _two_certificates(token, store, trust, session, trust_service)
    home = tmp_path / "home"
    refresher = OcspRefresher(store, OwnOcspCache(ocsp_dir(home)), lambda: trust, interval_seconds=1200)
    app = create_ocsp_responder_app(refresher.cache, refresher=refresher)
    async with run_ocsp_responder(app, loopback2, 0) as (host, port):
        await asyncio.wait_for(refresher.wait_for_round(0), ROUND_TIMEOUT)
        state = refresher.cache.status(auth)
        assert state is not None
        assert state.status is OcspStatusKind.GOOD
        # A good round waits the fetch interval (1200 s) for the next one...
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(refresher.wait_for_round(1), 0.5)
        # ...unless woken, e.g. after a revocation.
        await revoke(session, trust_service, auth.serial_number)
        refresher.wake()
        await asyncio.wait_for(refresher.wait_for_round(1), ROUND_TIMEOUT)
        state = refresher.cache.status(auth)
        assert state is not None
        assert state.status is OcspStatusKind.REVOKED
        async with session.get(f"http://{host}:{port}/", params={"cert": _sha1(auth)}) as resp:
            [part] = _ocsp_parts(await resp.read(), resp.headers["Content-Type"])
        assert _openssl_status(openssl, trust_service, auth, part.body, tmp_path) == "revoked"
    assert refresher.refreshes == 2

    # Restarted without reachable trust: what is on disk is served at once, and failed rounds retry
    # after the retry delay, not the fetch interval.
    def no_globalconf() -> TrustMaterial:
        raise XRoadError(FaultCode.MALFORMED_GLOBALCONF, "no global configuration yet")

    restarted = OcspRefresher(
        store, OwnOcspCache(ocsp_dir(home)), no_globalconf, interval_seconds=1200, retry_delay_seconds=0.05
    )
    app = create_ocsp_responder_app(restarted.cache, refresher=restarted)
    async with run_ocsp_responder(app, loopback2, 0) as (host, port):
        async with session.get(f"http://{host}:{port}/", params={"cert": _sha1(auth)}) as resp:
            assert resp.status == 200
        await asyncio.wait_for(restarted.wait_for_round(2), ROUND_TIMEOUT)
