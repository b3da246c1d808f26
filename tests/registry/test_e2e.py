"""End to end, on both database backends, with a live registry over HTTP on a real socket.

``registry.app`` (helper R5) did not exist when this was written, so the registry is composed here from its
parts exactly as the app composes them: the store, :func:`registry.distribution.setup_publishing` (a
:class:`ConfigurationPublisher` regenerating from :meth:`RegistryStore.snapshot` on change) and
:func:`registry.management_service.add_management_routes`. A security server owner builds ``authCertReg`` and
``clientReg`` with :mod:`xroad_mn.management` (dev PKI signing certificate and OCSP response) and POSTs them;
one is approved by hand, one automatically; the next configuration carries them and the configuration
client (anchor from :func:`registry.globalconf_gen.export_anchor`) downloads and stores it. Then: tampered,
expired and wrongly signed directories are refused; two-phase key rotation works without a new anchor; the
client keeps its copy while the registry is down and reports ``global_conf_outdated`` after expiry.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from registry.context import CHANGED_KEY, CLOCK_KEY, STORE_KEY
from registry.db import KeyKind, RegistryStore, RequestState, RequestType
from registry.distribution import (
    PUBLISHER_KEY,
    ConfigurationPublisher,
    create_distribution_app,
    setup_publishing,
)
from registry.globalconf_gen import GeneratedConfiguration, SigningKey, export_anchor, generate
from registry.management_service import MANAGE_PATH, REGISTRATION_PATH, add_management_routes
from registry.requests import approve_request
from tests.registry.test_management_service import auth_der, build, setup_registry
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.anchor import ConfigurationAnchor, parse_anchor
from xroad_mn.globalconf.client import AiohttpConfigurationTransport, ConfigurationClient
from xroad_mn.globalconf.params import SharedParameters, auth_cert_hash, parse_shared_params
from xroad_mn.management import AuthCertRegRequest, ClientRegRequest, parse_management_response
from xroad_mn.trust.pki import DevPki
from xroad_mn.web import xroad_error_middleware

EXPIRE_SECONDS = 600  # the registry's default configurationExpirySeconds


class Clock:
    """The registry's and the client's frozen clock; tests move it on explicitly."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _signing_key(cn: str, now: datetime) -> tuple[bytes, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, cert


async def _build_configuration(
    store: RegistryStore, address: str, now: datetime, keys: tuple[SigningKey, ...] | None = None
) -> GeneratedConfiguration:
    """What the registry app generates: the store's snapshot (versions 2-6 with each server's certificates),
    signed with the store's active keys (or ``keys``)."""
    snapshot = await store.snapshot([address])
    auth_certs = {}
    for ss in snapshot.shared.security_servers:
        sid = ss.owner.server(ss.server_code)
        auth_certs[sid] = await store.list_auth_certs(sid)
    return generate(
        snapshot.shared,
        snapshot.private,
        keys if keys is not None else snapshot.generator_keys(),
        now=now,
        expire_seconds=snapshot.settings.configuration_expiry_seconds,
        auth_certs=auth_certs,
    )


@dataclass
class Registry:
    app: web.Application
    runner: web.AppRunner
    address: str
    """``127.0.0.1:PORT``: the public address in anchors and in shared-params ``source``."""

    @property
    def publisher(self) -> ConfigurationPublisher:
        return self.app[PUBLISHER_KEY]

    async def regenerated(self, clock: Clock) -> GeneratedConfiguration:
        """Signal a change (as the admin API does) and wait for the configuration generated after it."""
        clock.advance(1)
        before = self.publisher.current()
        self.app[CHANGED_KEY].set()
        return await asyncio.wait_for(self.publisher.next_generation(before), 30)


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def live_registry(store: RegistryStore, clock: Clock) -> AsyncIterator[Registry]:
    # The port must be known before the first generation (it is the configuration source's address).
    sock = _bound_socket()
    address = f"127.0.0.1:{sock.getsockname()[1]}"
    app = web.Application(middlewares=[xroad_error_middleware])
    app[STORE_KEY] = store
    now: Callable[[], datetime] = clock
    app[CLOCK_KEY] = now

    async def build_conf() -> GeneratedConfiguration:
        return await _build_configuration(store, address, clock())

    setup_publishing(app, ConfigurationPublisher(build_conf), asyncio.Event(), interval=3600)
    add_management_routes(app, auto_approve={RequestType.CLIENT_REG})
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield Registry(app, runner, address)
    finally:
        await runner.cleanup()


@asynccontextmanager
async def mirror(conf: GeneratedConfiguration) -> AsyncIterator[str]:
    """Another configuration source serving ``conf`` (a bad one) over HTTP; yields its address."""
    runner = web.AppRunner(create_distribution_app(lambda: conf))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"{host}:{port}"
    finally:
        await runner.cleanup()


def _anchor(address: str, keys: tuple[SigningKey, ...], now: datetime) -> ConfigurationAnchor:
    return parse_anchor(export_anchor("MN", [address], keys, "internal", now).xml)


def _stored_shared(client: ConfigurationClient) -> SharedParameters:
    data = client.store.read_file("MN", "shared-params.xml")
    assert data is not None
    return parse_shared_params(data)


async def _refused_by_fresh_client(
    anchor: ConfigurationAnchor, directory: Path, session: aiohttp.ClientSession, clock: Clock
) -> XRoadError:
    client = ConfigurationClient(anchor, directory, AiohttpConfigurationTransport(session), clock=clock)
    with pytest.raises(XRoadError) as e:
        await client.refresh()
    assert client.store.read_file("MN", "shared-params.xml") is None  # nothing stored
    with pytest.raises(XRoadError) as status:
        client.status()
    assert status.value.code == FaultCode.GLOBAL_CONF_OUTDATED
    return e.value


async def test_registry_end_to_end(store: RegistryStore, pki: DevPki, tmp_path: Path) -> None:
    clock = Clock(pki.now)
    # -- the registry: members, CA (dev PKI intermediate/root + OCSP responder), TSA, signing keys
    await setup_registry(store, pki)
    for kind, key_id in ((KeyKind.INTERNAL, "internal-1"), (KeyKind.EXTERNAL, "external-1")):
        pem, cert = _signing_key(key_id, clock())
        await store.add_signing_key(kind, key_id, pem, cert)
    first_keys = tuple((await store.snapshot(["x"])).generator_keys())

    async with aiohttp.ClientSession() as session:
        async with live_registry(store, clock) as registry:
            base = f"http://{registry.address}"
            anchor = _anchor(registry.address, first_keys, clock())
            client = ConfigurationClient(
                anchor, tmp_path / "globalconf", AiohttpConfigurationTransport(session), clock=clock
            )
            first = await client.refresh()
            assert first.own.version == 6
            assert _stored_shared(client).security_servers == ()

            # -- authCertReg over HTTP, approved by an administrator
            server = pki.member.server("ss1")
            built = build(pki, AuthCertRegRequest(server, "ss1.example.mn", auth_der(pki)))
            async with session.post(
                base + REGISTRATION_PATH, data=built.body, headers={"Content-Type": built.content_type}
            ) as resp:
                assert resp.status == 200
                answer = parse_management_response(await resp.read(), request=built.header)
            assert answer.request_id is not None
            assert (await store.get_request(answer.request_id)).state is RequestState.SUBMITTED
            await approve_request(store, answer.request_id, user="admin")
            await registry.regenerated(clock)

            # -- clientReg over HTTP, auto-approved: the service itself triggers regeneration
            subsystem = pki.member.subsystem("civil-registry")
            built = build(pki, ClientRegRequest(server, subsystem, "Civil registry"))
            before = registry.publisher.current()
            clock.advance(1)
            async with session.post(
                base + MANAGE_PATH, data=built.body, headers={"Content-Type": built.content_type}
            ) as resp:
                assert resp.status == 200
                answer = parse_management_response(await resp.read(), request=built.header)
            assert answer.request_id is not None
            assert (await store.get_request(answer.request_id)).state is RequestState.APPROVED
            await asyncio.wait_for(registry.publisher.next_generation(before), 30)

            # -- the configuration client picks both up
            await client.refresh()
            shared = _stored_shared(client)
            (ss,) = shared.security_servers
            assert (ss.owner, ss.server_code, ss.address) == (pki.member, "ss1", "ss1.example.mn")
            assert ss.auth_cert_hashes == (auth_cert_hash(pki.member_auth.certificate),)
            assert ss.clients == (subsystem,)
            member = next(m for m in shared.members if m.id("MN") == pki.member)
            assert [(s.code, s.name) for s in member.subsystems] == [("civil-registry", "Civil registry")]
            assert [ca.name for ca in shared.approved_cas] == ["MN dev CA"]
            assert [t.name for t in shared.approved_tsas] == ["MN dev TSA"]

            # -- tampered, expired and wrongly signed directories are refused (nothing stored)
            good = registry.publisher.current()
            v6 = good.versions[6]
            tampered_files = {
                loc: (
                    data.replace(b"ss1.example.mn", b"evil.example.mn")
                    if loc.endswith("shared-params.xml")
                    else data
                )
                for loc, data in v6.files.items()
            }
            tampered = replace(
                good, versions=MappingProxyType({6: replace(v6, files=MappingProxyType(tampered_files))})
            )
            expired = await _build_configuration(
                store, "unused", clock() - timedelta(seconds=EXPIRE_SECONDS + 60)
            )
            pem, stranger_cert = _signing_key("stranger", clock())
            stranger = tuple(
                SigningKey(
                    f"stranger-{kind}",
                    serialization.load_pem_private_key(pem, None),  # type: ignore[arg-type]
                    stranger_cert,
                    True,
                    kind,
                )
                for kind in ("internal", "external")
            )
            wrongly_signed = await _build_configuration(store, "unused", clock(), keys=stranger)
            codes = {}
            for name, bad in (
                ("tampered", tampered),
                ("expired", expired),
                ("wrongly-signed", wrongly_signed),
            ):
                async with mirror(bad) as address:
                    err = await _refused_by_fresh_client(
                        _anchor(address, first_keys, clock()), tmp_path / name, session, clock
                    )
                    codes[name] = err.code
            assert codes == {
                "tampered": FaultCode.GLOBAL_CONF_INVALID,
                "expired": FaultCode.GLOBAL_CONF_OUTDATED,
                "wrongly-signed": FaultCode.GLOBAL_CONF_INVALID,
            }, codes

            # -- two-phase key rotation without a new anchor
            pem, new_cert = _signing_key("internal-2", clock())
            pending = await store.add_signing_key(KeyKind.INTERNAL, "internal-2", pem, new_cert)
            assert not pending.active
            await registry.regenerated(clock)
            await client.refresh()  # still signed by internal-1; shared-params now lists internal-2 too
            assert new_cert in _stored_shared(client).verification_certs(external=False)
            await store.activate_signing_key("internal-2")
            rotated = await registry.regenerated(clock)
            assert rotated.directory("internal", 6) != good.directory("internal", 6)
            assert new_cert not in anchor.verification_certs
            result = await client.refresh()  # verified with the source certificate, not the anchor
            assert result.own.expire_date == rotated.expire_date
            # a client that only has the old anchor cannot verify the rotated configuration
            err = await _refused_by_fresh_client(anchor, tmp_path / "old-anchor-only", session, clock)
            assert err.code == FaultCode.GLOBAL_CONF_INVALID, err

            stored = client.store.read_file("MN", "shared-params.xml")

        # -- the registry is down: the client keeps serving its copy until it expires
        with pytest.raises(XRoadError):
            await client.refresh()
        status = client.status()
        assert status.instance == "MN"
        assert status.last_error is not None
        assert client.store.read_file("MN", "shared-params.xml") == stored
        clock.advance(EXPIRE_SECONDS + 1)
        with pytest.raises(XRoadError) as outdated:
            client.status()
        assert outdated.value.code == FaultCode.GLOBAL_CONF_OUTDATED
        assert client.store.read_file("MN", "shared-params.xml") == stored
