"""The configuration client over real HTTP on 127.0.0.1: directories we sign, the real X-Road V6 directory
with its real anchor, the refusals (tampered, wrong signer, expired), a registry that goes away, key rotation
without a new anchor, several sources, federation, and the ``globalconf download`` command."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner
from yarl import URL

from xroad_mn.cli.main import build_app
from xroad_mn.confclient.client import (
    AllowedFederations,
    ConfigurationClient,
    configuration_locations,
    content_url,
    versioned_url,
)
from xroad_mn.confclient.store import ConfigurationStore, PartMetadata, part_file_name
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.anchor import AnchorSource, ConfigurationAnchor, build_anchor, parse_anchor
from xroad_mn.globalconf.directory import PartSpec, build_signed_directory
from xroad_mn.globalconf.params import (
    ConfigurationSource,
    ManagementService,
    PrivateParameters,
    SharedParameters,
    build_private_params,
    build_shared_params,
    parse_shared_params,
)
from xroad_mn.identifiers import MemberId
from xroad_mn.transport.globalconf import AiohttpConfigurationTransport

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
REAL_ANCHOR = "anchors/system-test-configuration_anchor_CS_internal.xml"
REAL_PUBLIC = "globalconf/signed/system-test-public"
REAL_AT = datetime(2025, 11, 11, tzinfo=UTC)
"""After the V6 files were generated (2025-11-10T17:00) and before they expire (2035-11-11T03:07:40Z)."""


# -- test infrastructure: a signing key, a configuration server, a clock --------------------------------


@dataclass(frozen=True)
class SigningKey:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate


def _signing_key(name: str) -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=365))
        .not_valid_after(NOW + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return SigningKey(key, cert)


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {name: _signing_key(name) for name in ("internal", "rotated", "stranger", "partner")}


class ConfServer:
    """Serves files the way a central server's nginx does: ``/internalconf?version=N`` is
    ``/V{N}/internalconf`` (no parameter means version 2); anything missing is 404."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(str(request.rel_url))
        path = request.path
        if path in ("/internalconf", "/externalconf"):
            path = f"/V{request.query.get('version', '2')}{path}"
        body = self.files.get(path)
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type="application/octet-stream")

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def server() -> AsyncIterator[ConfServer]:
    srv = ConfServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def _closed_port() -> int:
    """A port nothing listens on (bound, then released): connections are refused for real."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Conf:
    """One generation of a configuration as the registry would publish it."""

    instance: str = "MN"
    sources: tuple[ConfigurationSource, ...] = (ConfigurationSource("cs.invalid"),)
    partners: tuple[ConfigurationAnchor, ...] = ()
    expire: datetime = NOW + timedelta(minutes=10)
    version: int = 6
    stamp: str = "20250601120000000000000"
    kind: str = "internalconf"
    extra_parts: tuple[PartSpec, ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)

    def shared(self) -> bytes:
        return build_shared_params(
            SharedParameters(instance=self.instance, ocsp_freshness_seconds=3600, sources=self.sources),
            version=self.version,
        )

    def private(self) -> bytes:
        return build_private_params(
            PrivateParameters(
                instance=self.instance,
                management_service=ManagementService(
                    "https://cs.example.mn:4001/managementservice/",
                    MemberId(self.instance, "GOV", "1").subsystem("mgmt"),
                ),
                time_stamping_interval_seconds=60,
                configuration_anchors=self.partners,
            ),
            version=self.version,
        )

    def publish(
        self,
        signer: SigningKey,
        *,
        cert: x509.Certificate | None = None,
        tamper: bool = False,
    ) -> dict[str, bytes]:
        """The files to serve: the signed directory and its parts (``tamper`` alters a part after signing)."""
        prefix = f"/V{self.version}/{self.stamp}"
        parts = [PartSpec("SHARED-PARAMETERS", self.instance, f"{prefix}/shared-params.xml", self.shared())]
        if self.kind == "internalconf":
            parts.append(
                PartSpec("PRIVATE-PARAMETERS", self.instance, f"{prefix}/private-params.xml", self.private())
            )
        parts += self.extra_parts
        directory = build_signed_directory(
            parts, self.expire, self.version, signer.key, cert if cert is not None else signer.cert
        )
        files = {p.content_location: p.content for p in parts}
        files[f"/V{self.version}/{self.kind}"] = directory
        if tamper:
            files[parts[0].content_location] = parts[0].content.replace(b"3600", b"7200")
        return files


def _anchor(instance: str, urls: list[str], certs: list[x509.Certificate]) -> ConfigurationAnchor:
    return parse_anchor(build_anchor(instance, [(u, certs) for u in urls], NOW - timedelta(days=1)))


def _snapshot(root: Path) -> dict[str, bytes]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- pure parts ---------------------------------------------------------------------------------------------


def test_allowed_federations_parse() -> None:
    assert not AllowedFederations.parse("none").allows("EE", own_instance="MN")
    assert AllowedFederations.parse("all").allows("EE", own_instance="MN")
    assert not AllowedFederations.parse("all").allows("mn", own_instance="MN")
    allowed = AllowedFederations.parse("EE, fi")
    assert allowed.allows("ee", own_instance="MN")
    assert allowed.allows("FI", own_instance="MN")
    assert not allowed.allows("LV", own_instance="MN")
    assert not AllowedFederations.parse("all,none").allows("EE", own_instance="MN")
    assert str(AllowedFederations.parse("")) == "none"


def test_configuration_locations_order() -> None:
    shared = SharedParameters("MN", 3600, sources=(ConfigurationSource("cs1"), ConfigurationSource("cs2")))
    anchor_urls = ["http://a/internalconf", "https://a/internalconf"]
    assert configuration_locations(anchor_urls, None, "internalconf") == (
        "https://a/internalconf",
        "http://a/internalconf",
    )
    assert configuration_locations(
        anchor_urls, shared, "internalconf", preferred="http://a/internalconf"
    ) == (
        "http://a/internalconf",
        "https://cs1/internalconf",
        "https://cs2/internalconf",
        "http://cs1/internalconf",
        "http://cs2/internalconf",
        "https://a/internalconf",
    )


def test_urls() -> None:
    assert versioned_url("http://cs/internalconf", 6) == "http://cs/internalconf?version=6"
    assert content_url("http://cs:80/internalconf?version=6", "/V6/1/shared-params.xml") == (
        "http://cs/V6/1/shared-params.xml"
    )
    for foreign in ("http://evil/V6/x.xml", "//evil/x.xml", "https://cs/x.xml"):
        with pytest.raises(XRoadError) as exc:
            content_url("http://cs/internalconf?version=6", foreign)
        assert exc.value.has_code(FaultCode.GLOBAL_CONF_INVALID)


def test_part_file_names() -> None:
    assert part_file_name("SHARED-PARAMETERS", "/V6/1/whatever.xml", None) == "shared-params.xml"
    assert part_file_name("MONITORING", "/V6/1/monitoring-params.xml", None) == "monitoring-params.xml"
    assert part_file_name("MONITORING", "/V6/1/x.xml", "mon.xml") == "mon.xml"
    for bad in (
        "/V6/1/..",
        "/V6/",
        "/V6/1/x.xml.metadata",
        "/V6/1/instance-identifier",
        "/V6/1/shared-params.xml",
    ):
        with pytest.raises(XRoadError) as exc:
            part_file_name("OTHER", bad, None)
        assert exc.value.has_code(FaultCode.MALFORMED_GLOBALCONF)


def test_metadata_of_real_installations_parse(interop_dir: Path) -> None:
    files = sorted((interop_dir / "globalconf").rglob("*.metadata"))
    assert files
    for path in files:
        meta = PartMetadata.from_json(path.read_bytes())
        assert meta.expiration_date is None or meta.expiration_date.tzinfo is not None
    meta = PartMetadata.from_json(
        (interop_dir / "globalconf/dirs/globalconf_good_v4/EE/shared-params.xml.metadata").read_bytes()
    )
    assert (meta.content_identifier, meta.instance_identifier, meta.configuration_version) == (
        "SHARED-PARAMETERS",
        "EE",
        4,
    )
    assert meta.expiration_date == datetime(2124, 5, 20, 17, 42, 55, tzinfo=UTC)
    again = PartMetadata.from_json(meta.to_json())
    assert again == meta


# -- the real X-Road V6 directory and anchor ----------------------------------------------------------------


class HostMapTransport:
    """The real aiohttp transport with a hosts table: the anchor names ``cs`` (and shared-params ``ss0``,
    ``ss1``), which this test network puts on 127.0.0.1 ports."""

    def __init__(self, inner: AiohttpConfigurationTransport, hosts: Mapping[str, int]) -> None:
        self.inner = inner
        self.hosts = hosts
        self.urls: list[str] = []

    async def get(self, url: str) -> tuple[bytes, str]:
        self.urls.append(url)
        u = URL(url)
        port = self.hosts.get(u.host or "")
        if port is not None:
            u = u.with_host("127.0.0.1").with_port(port)
        return await self.inner.get(str(u))


async def test_real_v6_configuration_downloads_and_stores(
    interop_dir: Path, server: ConfServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    public = interop_dir / REAL_PUBLIC
    server.files = {
        "/" + str(p.relative_to(public)): p.read_bytes() for p in public.rglob("*") if p.is_file()
    }
    anchor = parse_anchor((interop_dir / REAL_ANCHOR).read_bytes())
    closed = _closed_port()
    transport = HostMapTransport(
        AiohttpConfigurationTransport(session), {"cs": server.port, "ss0": closed, "ss1": closed}
    )
    store_dir = tmp_path / "globalconf"
    client = ConfigurationClient(anchor, store_dir, transport, clock=Clock(REAL_AT))

    result = await client.refresh()

    assert result.own.instance == "DEV"
    assert result.own.version == 6
    assert result.own.expire_date == datetime(2035, 11, 11, 3, 7, 40, tzinfo=UTC)
    # https is tried first; the test server speaks plain http, so the http source serves it.
    assert result.own.source_url == "http://cs/internalconf"
    assert [f.url for f in result.own.failures] == ["https://cs/internalconf"]
    assert (store_dir / "instance-identifier").read_bytes() == b"DEV"
    stamp = "20251110170000548026000"
    for name in ("shared-params.xml", "private-params.xml"):
        assert (store_dir / "DEV" / name).read_bytes() == (public / "V6" / stamp / name).read_bytes()
    meta = json.loads((store_dir / "DEV/shared-params.xml.metadata").read_bytes())
    assert meta == {
        "contentIdentifier": "SHARED-PARAMETERS",
        "instanceIdentifier": "DEV",
        "expirationDate": "2035-11-11T03:07:40Z",
        "contentFileName": None,
        "contentLocation": f"/V6/{stamp}/shared-params.xml",
        "configurationVersion": "6",
    }
    assert sorted(p.name for p in (store_dir / "DEV").iterdir()) == [
        "private-params.xml",
        "private-params.xml.metadata",
        "shared-params.xml",
        "shared-params.xml.metadata",
    ]
    status = client.status()
    assert (status.instance, status.version) == ("DEV", 6)

    # The next refresh also knows the installed shared-params' sources (cs, ss0, ss1) and starts with
    # the location that worked.
    transport.urls.clear()
    again = await client.refresh()
    assert again.own.failures == ()
    assert transport.urls[0] == "http://cs/internalconf?version=6"
    assert parse_shared_params((store_dir / "DEV/shared-params.xml").read_bytes()).instance == "DEV"


async def test_real_v6_refused_after_expiry(
    interop_dir: Path, server: ConfServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    public = interop_dir / REAL_PUBLIC
    server.files = {
        "/" + str(p.relative_to(public)): p.read_bytes() for p in public.rglob("*") if p.is_file()
    }
    anchor = parse_anchor((interop_dir / REAL_ANCHOR).read_bytes())
    transport = HostMapTransport(AiohttpConfigurationTransport(session), {"cs": server.port})
    late = Clock(datetime(2035, 11, 11, 3, 7, 41, tzinfo=UTC))
    client = ConfigurationClient(anchor, tmp_path / "gc", transport, clock=late)
    with pytest.raises(XRoadError) as exc:
        await client.refresh()
    assert exc.value.has_code(FaultCode.GLOBAL_CONF_OUTDATED)
    assert _snapshot(tmp_path / "gc") == {}


# -- configurations we sign ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [6, 3])
async def test_happy_path_stored_in_xroad_layout(
    version: int,
    keys: dict[str, SigningKey],
    server: ConfServer,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    conf = Conf(version=version, stamp="20250601120000000000001")
    monitoring = PartSpec(
        "MONITORING", "MN", f"/V{version}/{conf.stamp}/monitoring-params.xml", b"<monitoringParams/>"
    )
    conf.extra_parts = (monitoring,)
    server.files = conf.publish(keys["internal"])
    anchor = _anchor("MN", [f"{server.base}/internalconf"], [keys["internal"].cert])
    clock = Clock()
    client = ConfigurationClient(anchor, tmp_path / "gc", AiohttpConfigurationTransport(session), clock=clock)
    with pytest.raises(XRoadError) as exc:
        client.status()
    assert exc.value.has_code(FaultCode.GLOBAL_CONF_OUTDATED)

    result = await client.refresh()

    assert result.own.version == version
    assert result.own.directory_url == f"{server.base}/internalconf?version={version}"
    root = tmp_path / "gc"
    assert (root / "instance-identifier").read_text() == "MN"
    assert (root / "MN/shared-params.xml").read_bytes() == conf.shared()
    assert (root / "MN/private-params.xml").read_bytes() == conf.private()
    assert (root / "MN/monitoring-params.xml").read_bytes() == b"<monitoringParams/>"
    meta = PartMetadata.from_json((root / "MN/private-params.xml.metadata").read_bytes())
    assert meta.expiration_date == conf.expire.replace(microsecond=0)
    assert meta.content_location == f"/V{version}/{conf.stamp}/private-params.xml"
    assert meta.configuration_version == version
    assert set(result.own.files) == {p for p in (root / "MN").iterdir()}
    assert client.status().expire_date == conf.expire.replace(microsecond=0)
    assert not [p for p in root.rglob(".*")], "no temporary files are left behind"

    # The next generation drops the monitoring part: the stale file goes.
    conf2 = Conf(version=version, stamp="20250601121000000000000", expire=NOW + timedelta(minutes=20))
    server.files = conf2.publish(keys["internal"])
    await client.refresh()
    assert not (root / "MN/monitoring-params.xml").exists()
    assert client.status().expire_date == conf2.expire.replace(microsecond=0)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("tampered", FaultCode.GLOBAL_CONF_INVALID),
        ("stranger", FaultCode.GLOBAL_CONF_INVALID),
        ("forged", FaultCode.INVALID_SIGNATURE_VALUE),
        ("expired", FaultCode.GLOBAL_CONF_OUTDATED),
        ("wrong-instance", FaultCode.GLOBAL_CONF_INVALID),
    ],
)
async def test_refused_download_changes_nothing(
    case: str,
    code: str,
    keys: dict[str, SigningKey],
    server: ConfServer,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    anchor = _anchor("MN", [f"{server.base}/internalconf"], [keys["internal"].cert])
    clock = Clock()
    client = ConfigurationClient(anchor, tmp_path / "gc", AiohttpConfigurationTransport(session), clock=clock)
    good = Conf()
    server.files = good.publish(keys["internal"])
    await client.refresh()
    before = _snapshot(tmp_path / "gc")
    expire_before = client.status().expire_date

    bad = Conf(stamp="20250601121000000000000", expire=NOW + timedelta(minutes=30))
    if case == "tampered":
        server.files = bad.publish(keys["internal"], tamper=True)
    elif case == "stranger":
        server.files = bad.publish(keys["stranger"])
    elif case == "forged":  # names the anchor's certificate, signed by another key
        server.files = bad.publish(keys["stranger"], cert=keys["internal"].cert)
    elif case == "expired":
        server.files = replace(bad, expire=NOW - timedelta(seconds=1)).publish(keys["internal"])
    else:  # a part listed for MN whose content is another instance's
        # Listed (and signed) as MN's shared-params, but the file is EE's.
        ee_shared = Conf(instance="EE").shared()
        part = PartSpec("SHARED-PARAMETERS", "MN", f"/V6/{bad.stamp}/shared-params.xml", ee_shared)
        directory = build_signed_directory([part], bad.expire, 6, keys["internal"].key, keys["internal"].cert)
        server.files = {part.content_location: ee_shared, "/V6/internalconf": directory}

    with pytest.raises(XRoadError) as exc:
        await client.refresh()
    assert exc.value.has_code(code), exc.value
    assert _snapshot(tmp_path / "gc") == before
    assert client.status().expire_date == expire_before
    assert client.status().last_error is not None


async def test_wrong_signer_on_first_download_stores_nothing(
    keys: dict[str, SigningKey], server: ConfServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    server.files = Conf().publish(keys["stranger"])
    anchor = _anchor("MN", [f"{server.base}/internalconf"], [keys["internal"].cert])
    client = ConfigurationClient(
        anchor, tmp_path / "gc", AiohttpConfigurationTransport(session), clock=Clock()
    )
    with pytest.raises(XRoadError) as exc:
        await client.refresh()
    assert exc.value.has_code(FaultCode.GLOBAL_CONF_INVALID)
    assert exc.value.details["instance"] == "MN"
    assert _snapshot(tmp_path / "gc") == {}


async def test_registry_down_serves_stored_copy_until_expiry(
    keys: dict[str, SigningKey], server: ConfServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    conf = Conf(expire=NOW + timedelta(minutes=10))
    server.files = conf.publish(keys["internal"])
    anchor = _anchor("MN", [f"{server.base}/internalconf"], [keys["internal"].cert])
    clock = Clock()
    client = ConfigurationClient(anchor, tmp_path / "gc", AiohttpConfigurationTransport(session), clock=clock)
    await client.refresh()
    before = _snapshot(tmp_path / "gc")

    await server.stop()
    clock.now = NOW + timedelta(minutes=5)
    with pytest.raises(XRoadError) as exc:
        await client.refresh()
    assert exc.value.has_code(FaultCode.NETWORK_ERROR)
    status = client.status()  # still served from the stored copy
    assert status.expire_date == conf.expire.replace(microsecond=0)
    assert status.last_error is not None
    assert status.last_error.has_code(FaultCode.NETWORK_ERROR)
    assert _snapshot(tmp_path / "gc") == before

    # A restarted security server reads the same state from disk.
    restarted = ConfigurationClient(
        anchor, tmp_path / "gc", AiohttpConfigurationTransport(session), clock=clock
    )
    assert restarted.status().expire_date == conf.expire.replace(microsecond=0)

    clock.now = conf.expire + timedelta(seconds=1)
    for c in (client, restarted):
        with pytest.raises(XRoadError) as exc:
            c.status()
        assert exc.value.has_code(FaultCode.GLOBAL_CONF_OUTDATED)
    assert exc.value.details["expire_date"] == conf.expire.replace(microsecond=0).isoformat()


async def test_key_rotation_without_new_anchor(
    keys: dict[str, SigningKey], server: ConfServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    old, new = keys["internal"], keys["rotated"]
    anchor = _anchor("MN", [f"http://localhost:{server.port}/internalconf"], [old.cert])
    address = f"127.0.0.1:{server.port}"
    # Phase 1: the registry puts the new key's certificate in shared-params, still signing with the old.
    phase1 = Conf(sources=(ConfigurationSource(address, (old.cert, new.cert), (old.cert,)),))
    server.files = phase1.publish(old)
    clock = Clock()
    client = ConfigurationClient(anchor, tmp_path / "gc", AiohttpConfigurationTransport(session), clock=clock)
    await client.refresh()

    # Phase 2: it signs with the new key; the anchor still holds only the old certificate.
    phase2 = Conf(
        sources=(ConfigurationSource(address, (new.cert,), (old.cert,)),),
        stamp="20250601121000000000000",
        expire=NOW + timedelta(minutes=20),
    )
    server.files = phase2.publish(new)
    # A restarted client (no remembered location) starts with the installed shared-params' sources.
    client = ConfigurationClient(anchor, tmp_path / "gc", AiohttpConfigurationTransport(session), clock=clock)
    result = await client.refresh()
    assert (tmp_path / "gc/MN/shared-params.xml").read_bytes() == phase2.shared()
    # The shared-params source (https, then http) came first; http on it served the directory.
    assert result.own.source_url == f"http://{address}/internalconf"
    assert [f.url for f in result.own.failures] == [f"https://{address}/internalconf"]

    # Without the installed configuration the new key is not trusted.
    fresh = ConfigurationClient(
        anchor, tmp_path / "fresh", AiohttpConfigurationTransport(session), clock=clock
    )
    with pytest.raises(XRoadError) as exc:
        await fresh.refresh()
    assert exc.value.has_code(FaultCode.GLOBAL_CONF_INVALID)


async def test_second_anchor_source_used_when_first_is_down(
    keys: dict[str, SigningKey], server: ConfServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    server.files = Conf().publish(keys["internal"])
    down = f"http://127.0.0.1:{_closed_port()}/internalconf"
    up = f"{server.base}/internalconf"
    anchor = _anchor("MN", [down, up], [keys["internal"].cert])
    client = ConfigurationClient(
        anchor, tmp_path / "gc", AiohttpConfigurationTransport(session), clock=Clock()
    )
    result = await client.refresh()
    assert result.own.source_url == up
    assert [(f.url, f.code) for f in result.own.failures] == [(down, FaultCode.NETWORK_ERROR)]
    # The working source is remembered and tried first next time.
    server.requests.clear()
    again = await client.refresh()
    assert again.own.failures == ()


async def test_no_version_served_is_http_error(
    keys: dict[str, SigningKey], server: ConfServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    anchor = _anchor("MN", [f"{server.base}/internalconf"], [keys["internal"].cert])
    client = ConfigurationClient(
        anchor, tmp_path / "gc", AiohttpConfigurationTransport(session), clock=Clock()
    )
    with pytest.raises(XRoadError) as exc:
        await client.refresh()
    assert exc.value.has_code(FaultCode.HTTP_ERROR)
    assert [r for r in server.requests] == [f"/internalconf?version={v}" for v in range(6, 1, -1)]


@pytest.mark.parametrize(
    ("allowed", "followed"),
    [("none", False), ("all", True), ("EE", True), ("ee,fi", True), ("FI", False)],
)
async def test_federation_followed_only_when_allowed(
    allowed: str,
    followed: bool,
    keys: dict[str, SigningKey],
    server: ConfServer,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    partner_anchor = ConfigurationAnchor(
        "EE", (AnchorSource(f"{server.base}/externalconf", (keys["partner"].cert,)),)
    )
    own = Conf(partners=(partner_anchor,))
    external = Conf(instance="EE", kind="externalconf", stamp="20250601115900000000000")
    # The partner also lists a part claiming the own instance: it must never be stored.
    hijack = PartSpec("SHARED-PARAMETERS", "MN", "/V6/hijack/shared-params.xml", Conf(instance="MN").shared())
    external.extra_parts = (hijack,)
    server.files = {**external.publish(keys["partner"]), **own.publish(keys["internal"])}
    anchor = _anchor("MN", [f"{server.base}/internalconf"], [keys["internal"].cert])
    client = ConfigurationClient(
        anchor,
        tmp_path / "gc",
        AiohttpConfigurationTransport(session),
        allowed_federations=allowed,
        clock=Clock(),
    )
    result = await client.refresh()
    ee = tmp_path / "gc/EE"
    if followed:
        assert [f.instance for f in result.federations] == ["EE"]
        assert result.federations[0].result is not None
        assert (ee / "shared-params.xml").read_bytes() == external.shared()
        assert sorted(p.name for p in ee.iterdir()) == ["shared-params.xml", "shared-params.xml.metadata"]
        assert "/V6/hijack/shared-params.xml" not in server.requests
        assert (tmp_path / "gc/MN/shared-params.xml").read_bytes() == own.shared()
    else:
        assert result.federations == ()
        assert not ee.exists()

    # Following stops when it is no longer allowed: the partner's directory is removed.
    if followed:
        stopped = ConfigurationClient(
            anchor,
            tmp_path / "gc",
            AiohttpConfigurationTransport(session),
            allowed_federations="none",
            clock=Clock(),
        )
        again = await stopped.refresh()
        assert again.removed_instances == ("EE",)
        assert not ee.exists()


async def test_federation_failure_does_not_fail_refresh(
    keys: dict[str, SigningKey], server: ConfServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    partner_anchor = ConfigurationAnchor(
        "EE", (AnchorSource(f"{server.base}/externalconf", (keys["partner"].cert,)),)
    )
    own = Conf(partners=(partner_anchor,))
    external = Conf(instance="EE", kind="externalconf", stamp="20250601115900000000000")
    # Signed by a key the partner anchor does not hold.
    server.files = {**external.publish(keys["stranger"]), **own.publish(keys["internal"])}
    anchor = _anchor("MN", [f"{server.base}/internalconf"], [keys["internal"].cert])
    client = ConfigurationClient(
        anchor,
        tmp_path / "gc",
        AiohttpConfigurationTransport(session),
        allowed_federations="all",
        clock=Clock(),
    )
    result = await client.refresh()
    assert [(f.instance, f.code) for f in result.federations] == [("EE", FaultCode.GLOBAL_CONF_INVALID)]
    assert not (tmp_path / "gc/EE").exists()
    assert client.status().instance == "MN"


async def test_run_periodically_refreshes_until_cancelled(
    keys: dict[str, SigningKey], server: ConfServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    server.files = Conf().publish(keys["internal"])
    anchor = _anchor("MN", [f"{server.base}/internalconf"], [keys["internal"].cert])
    client = ConfigurationClient(
        anchor, tmp_path / "gc", AiohttpConfigurationTransport(session), clock=Clock()
    )
    task = asyncio.create_task(client.run_periodically(0.05))
    try:
        for _ in range(200):
            if server.requests.count("/internalconf?version=6") >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert server.requests.count("/internalconf?version=6") >= 2
    assert client.status().instance == "MN"


async def test_store_reads_what_it_wrote(tmp_path: Path) -> None:
    store = ConfigurationStore(tmp_path)
    assert store.instance_identifier() is None
    store.write_instance_identifier("MN")
    assert store.instance_identifier() == "MN"
    assert store.stored_instances() == ()
    with pytest.raises(XRoadError) as exc:
        store.instance_dir("../etc")
    assert exc.value.has_code(FaultCode.MALFORMED_GLOBALCONF)


# -- the command line ---------------------------------------------------------------------------------------


async def test_cli_download(keys: dict[str, SigningKey], server: ConfServer, tmp_path: Path) -> None:
    conf = Conf(expire=datetime.now(UTC) + timedelta(minutes=10))
    server.files = conf.publish(keys["internal"])
    anchor_file = tmp_path / "anchor.xml"
    anchor_file.write_bytes(
        build_anchor("MN", [(f"{server.base}/internalconf", [keys["internal"].cert])], NOW)
    )
    out = tmp_path / "gc"
    runner = CliRunner()
    app = build_app()
    args = ["globalconf", "download", "--anchor", str(anchor_file), "--out", str(out)]
    result = await asyncio.to_thread(runner.invoke, app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is True
    assert doc["own"]["instance"] == "MN"
    assert doc["own"]["version"] == 6
    assert (out / "MN/shared-params.xml").read_bytes() == conf.shared()
    assert (out / "instance-identifier").read_bytes() == b"MN"

    text = await asyncio.to_thread(runner.invoke, app, args)
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith("stored MN version 6 from ")

    # Nothing listening: exit 1 with the fault code.
    anchor_file.write_bytes(
        build_anchor(
            "MN", [(f"http://127.0.0.1:{_closed_port()}/internalconf", [keys["internal"].cert])], NOW
        )
    )
    failed = await asyncio.to_thread(runner.invoke, app, [*args, "--json"])
    assert failed.exit_code == 1
    err = json.loads(failed.stdout)
    assert err["ok"] is False
    assert err["code"] == FaultCode.NETWORK_ERROR
    assert (out / "MN/shared-params.xml").read_bytes() == conf.shared()

    plain = await asyncio.to_thread(runner.invoke, app, args)
    assert plain.exit_code == 1
    assert "network_error" in plain.output


_PROC_NOPE = (Path("/proc/nope"),) if Path("/proc/self").exists() else ()
"""The path of the report (procfs refuses new directories, even to root); only where procfs exists."""


def test_store_root_that_cannot_be_created_is_io_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    for root in (blocker / "globalconf", *_PROC_NOPE):
        store = ConfigurationStore(root)
        with pytest.raises(XRoadError) as exc:
            store.write_instance_identifier("MN")
        assert exc.value.has_code(FaultCode.IO_ERROR)
        assert str(root) in exc.value.message
    with pytest.raises(XRoadError) as exc:
        ConfigurationStore(blocker / "globalconf").write_parts("MN", [], delete_others=False)
    assert exc.value.has_code(FaultCode.IO_ERROR)


async def test_cli_download_into_uncreatable_out_is_io_error(
    keys: dict[str, SigningKey], server: ConfServer, tmp_path: Path
) -> None:
    conf = Conf(expire=datetime.now(UTC) + timedelta(minutes=10))
    server.files = conf.publish(keys["internal"])
    anchor_file = tmp_path / "anchor.xml"
    anchor_file.write_bytes(
        build_anchor("MN", [(f"{server.base}/internalconf", [keys["internal"].cert])], NOW)
    )
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    runner = CliRunner()
    app = build_app()
    for out in (*_PROC_NOPE, blocker / "gc"):
        args = ["globalconf", "download", "--anchor", str(anchor_file), "--out", str(out)]
        failed = await asyncio.to_thread(runner.invoke, app, [*args, "--json"])
        assert failed.exit_code == 1, failed.output
        doc = json.loads(failed.stdout)
        assert (doc["ok"], doc["code"]) == (False, FaultCode.IO_ERROR)
        plain = await asyncio.to_thread(runner.invoke, app, args)
        assert plain.exit_code == 1
        assert "io_error" in plain.output
        assert "internal error" not in plain.output
    assert not any(p.exists() for p in _PROC_NOPE)


async def test_parsing_and_verification_run_off_the_event_loop(
    keys: dict[str, SigningKey],
    server: ConfServer,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Directory parsing, its signature check, part hashes and parameter parsing never run on the event loop:
    a security server keeps serving while megabytes of configuration are verified."""
    import xroad_mn.confclient.client as client_module

    on_loop: dict[str, list[bool]] = {}

    def spy(name: str) -> None:
        real = getattr(client_module, name)

        def wrapper(*args: object, **kwargs: object) -> object:
            try:
                asyncio.get_running_loop()
                on_loop.setdefault(name, []).append(True)
            except RuntimeError:
                on_loop.setdefault(name, []).append(False)
            return real(*args, **kwargs)

        monkeypatch.setattr(client_module, name, wrapper)

    for name in (
        "parse_signed_directory",
        "verify_signed_directory",
        "verify_part_content",
        "parse_shared_params",
        "parse_private_params",
    ):
        spy(name)
    conf = Conf(stamp="20250601120000000000009")
    server.files = conf.publish(keys["internal"])
    anchor = _anchor("MN", [f"{server.base}/internalconf"], [keys["internal"].cert])
    transport = AiohttpConfigurationTransport(session)
    client = ConfigurationClient(anchor, tmp_path / "gc", transport, clock=Clock())
    await client.refresh()
    await client.refresh()  # the second one also reads the installed shared-params
    assert set(on_loop) == {
        "parse_signed_directory",
        "verify_signed_directory",
        "verify_part_content",
        "parse_shared_params",
        "parse_private_params",
    }
    assert {name: any(calls) for name, calls in on_loop.items()} == dict.fromkeys(on_loop, False)
