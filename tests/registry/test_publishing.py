"""Global configuration publishing: generation (XSD-valid parameter files, directories signed with the real
system-test key and checked against the real anchor and with openssl), the served layout, anchor export,
HTTP distribution on a real socket, and regeneration on schedule and on change."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from pydantic import ValidationError

from registry.distribution import (
    ConfigurationPublisher,
    create_distribution_app,
    regenerate_periodically,
    regeneration_ctx,
    setup_publishing,
)
from registry.globalconf_gen import (
    ConfigurationKeyPair,
    GeneratedConfiguration,
    KeyKind,
    export_anchor,
    generate,
    timestamp_dir_name,
)
from registry.settings import RegistrySettings
from security_server.proxy.configuration import ConfigurationHolder
from tests.test_globalconf_directory import _openssl_verify, _split_by_hand
from tests.xroad_xsd import schema_within
from xroad_mn.confclient.client import ConfigurationClient
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.anchor import anchor_hash, parse_anchor
from xroad_mn.globalconf.directory import (
    parse_signed_directory,
    verify_part_content,
    verify_signed_directory,
)
from xroad_mn.globalconf.monitoring import MONITORING_CONTENT_IDENTIFIER, parse_monitoring_params
from xroad_mn.globalconf.params import (
    ApprovedCAEntry,
    ApprovedTSAEntry,
    CaInfo,
    ConfigurationSource,
    GlobalGroup,
    ManagementService,
    Member,
    MemberClass,
    OcspInfo,
    PrivateParameters,
    SecurityServer,
    SharedParameters,
    Subsystem,
    auth_cert_hash,
    parse_private_params,
    parse_shared_params,
)
from xroad_mn.identifiers import MemberId, SecurityServerId
from xroad_mn.transport.globalconf import AiohttpConfigurationTransport
from xroad_mn.transport.server import xroad_error_middleware

NOW = datetime(2026, 2, 1, 12, 30, 45, 123456, tzinfo=UTC)
REAL_ANCHOR = "anchors/system-test-configuration_anchor_CS_internal.xml"
REAL_PUBLIC = "globalconf/signed/system-test-public"
SS_ID = SecurityServerId("MN", "GOV", "5012345", "ss1")


# -- fixtures -----------------------------------------------------------------------------------------


def _self_signed(cn: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem(interop_dir: Path, rel: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((interop_dir / rel).read_bytes())


@pytest.fixture(scope="module")
def keys(interop_dir: Path) -> tuple[ConfigurationKeyPair, ...]:
    """The real system-test internal key (active), a next internal key not yet active, an external key."""
    real_key = serialization.load_pem_private_key(
        (interop_dir / "certs/system-test-sign-keys/internal.key").read_bytes(), password=None
    )
    assert isinstance(real_key, rsa.RSAPrivateKey)
    real_cert = _pem(interop_dir, "certs/system-test-sign-keys/internal.crt")
    next_key, next_cert = _self_signed("next internal configuration signing key")
    ext_key = ec.generate_private_key(ec.SECP256R1())
    ext_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "external")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "external")]))
        .public_key(ext_key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .sign(ext_key, hashes.SHA256())
    )
    return (
        ConfigurationKeyPair("internal-1", real_key, real_cert, True, KeyKind.INTERNAL),
        ConfigurationKeyPair("internal-2", next_key, next_cert, False, KeyKind.INTERNAL),
        ConfigurationKeyPair("external-1", ext_key, ext_cert, True, KeyKind.EXTERNAL),
    )


@pytest.fixture(scope="module")
def auth_cert(interop_dir: Path) -> x509.Certificate:
    return _pem(interop_dir, "certs/common-test/consumer.pem")


@pytest.fixture(scope="module")
def shared(interop_dir: Path, auth_cert: x509.Certificate) -> SharedParameters:
    ca = _pem(interop_dir, "certs/derived-from-globalconf/dev2025-systemtest-V6-topCA-0.pem")
    ocsp = _pem(interop_dir, "certs/derived-from-globalconf/dev2025-systemtest-V6-topCA-ocsp-0.pem")
    tsa = _pem(interop_dir, "certs/derived-from-globalconf/dev2025-systemtest-V6-tsa-0.pem")
    gov = MemberClass("GOV", "Government")
    owner = SS_ID.owner
    return SharedParameters(
        instance="MN",
        ocsp_freshness_seconds=3600,
        approved_cas=(
            ApprovedCAEntry(
                name="MN Test CA",
                top_ca=CaInfo(ca, (OcspInfo("http://ocsp.example.mn", ocsp, "FREE"),)),
                certificate_profile_info="ee.ria.xroad.common.certificateprofile.impl.EjbcaCertificateProfileInfoProvider",
                authentication_only=False,
                default_csr_format="DER",
            ),
        ),
        approved_tsas=(ApprovedTSAEntry("MN TSA", "http://tsa.example.mn", tsa, "FREE"),),
        members=(Member(gov, "5012345", "Ministry", (Subsystem("civil-registry", "Civil registry"),)),),
        security_servers=(
            SecurityServer(
                owner=owner,
                server_code="ss1",
                address="ss1.example.mn",
                auth_cert_hashes=(auth_cert_hash(auth_cert),),
                clients=(owner.subsystem("civil-registry"),),
            ),
        ),
        global_groups=(GlobalGroup("security-server-owners", "Owners", (owner,)),),
        member_classes=(gov,),
    )


@pytest.fixture(scope="module")
def private() -> PrivateParameters:
    return PrivateParameters(
        instance="MN",
        management_service=ManagementService(
            "https://cs.example.mn:4001/managementservice/",
            MemberId("MN", "GOV", "5012345").subsystem("mgmt"),
        ),
        time_stamping_interval_seconds=60,
    )


@pytest.fixture(scope="module")
def conf(
    shared: SharedParameters,
    private: PrivateParameters,
    keys: tuple[ConfigurationKeyPair, ...],
    auth_cert: x509.Certificate,
) -> GeneratedConfiguration:
    return generate(
        shared,
        private,
        keys,
        now=NOW,
        expire_seconds=600,
        source_addresses=["cs.example.mn"],
        auth_certs={SS_ID: [auth_cert]},
    )


@pytest.fixture(scope="module")
def schemas(interop_dir: Path) -> dict[str, etree.XMLSchema]:
    root = interop_dir / "globalconf"
    rels = [f"v{v}/shared-parameters.xsd" for v in range(2, 7)]
    rels += ["v2/private-parameters.xsd", "v3/private-parameters.xsd"]
    return {rel: schema_within(root / "xsd" / rel, root) for rel in rels}


def _validate(schema: etree.XMLSchema, data: bytes) -> None:
    assert schema.validate(etree.fromstring(data)), schema.error_log


# -- generation ---------------------------------------------------------------------------------------


def test_every_version_is_generated_and_validates(
    conf: GeneratedConfiguration, schemas: dict[str, etree.XMLSchema], auth_cert: x509.Certificate
) -> None:
    assert sorted(conf.versions) == [2, 3, 4, 5, 6]
    assert conf.expire_date == (NOW + timedelta(seconds=600)).replace(microsecond=0)
    stamp = timestamp_dir_name(NOW)
    assert stamp == "20260201123045123456000"
    for version, gen in conf.versions.items():
        assert sorted(gen.files) == [
            f"/V{version}/{stamp}/private-params.xml",
            f"/V{version}/{stamp}/shared-params.xml",
        ]
        shared_xml = gen.files[f"/V{version}/{stamp}/shared-params.xml"]
        private_xml = gen.files[f"/V{version}/{stamp}/private-params.xml"]
        _validate(schemas[f"v{version}/shared-parameters.xsd"], shared_xml)
        _validate(
            schemas["v2/private-parameters.xsd" if version == 2 else "v3/private-parameters.xsd"], private_xml
        )
        parsed = parse_shared_params(shared_xml)
        # authCertHash: SHA-1 in V2, SHA-256 from V3, of the same certificate.
        assert parsed.security_servers[0].auth_cert_hashes == (auth_cert_hash(auth_cert, version),)
        assert parse_private_params(private_xml).instance == "MN"
        for kind in (KeyKind.INTERNAL, KeyKind.EXTERNAL):
            directory = parse_signed_directory(gen.directories[kind])
            assert directory.version == version
            assert directory.expire_date == conf.expire_date


def test_sources_list_every_key_of_each_kind(
    conf: GeneratedConfiguration, keys: tuple[ConfigurationKeyPair, ...]
) -> None:
    stamp = timestamp_dir_name(NOW)
    parsed = parse_shared_params(conf.versions[6].files[f"/V6/{stamp}/shared-params.xml"])
    assert parsed.sources == (
        ConfigurationSource(
            "cs.example.mn", (keys[0].certificate, keys[1].certificate), (keys[2].certificate,)
        ),
    )


def test_internal_directory_verifies_with_real_anchor_and_openssl(
    conf: GeneratedConfiguration, interop_dir: Path, openssl: str, tmp_path: Path
) -> None:
    anchor = parse_anchor((interop_dir / REAL_ANCHOR).read_bytes())
    data = conf.directory(KeyKind.INTERNAL, 6)
    assert data is not None
    directory = parse_signed_directory(data)
    assert [p.content_identifier for p in directory.parts] == ["SHARED-PARAMETERS", "PRIVATE-PARAMETERS"]
    assert {p.instance for p in directory.parts} == {"MN"}
    # 1. Our verifier with the real X-Road anchor.
    cert = verify_signed_directory(directory, anchor.verification_certs, at=NOW)
    assert cert == anchor.verification_certs[0]
    for part in directory.parts:
        content = conf.file(part.content_location)
        assert content is not None
        verify_part_content(part, content)
    # 2. openssl on the byte range split by hand.
    signed, signature = _split_by_hand(data)
    assert signed == directory.signed_data
    assert "Verified OK" in _openssl_verify(
        openssl, tmp_path, anchor.verification_certs[0], signed, signature
    )
    assert "Verified OK" not in _openssl_verify(
        openssl,
        tmp_path,
        anchor.verification_certs[0],
        signed.replace(b"Version: 6", b"Version: 5"),
        signature,
    )
    # 3. Expired after Expire-date.
    with pytest.raises(XRoadError) as exc:
        verify_signed_directory(
            directory, anchor.verification_certs, at=conf.expire_date + timedelta(seconds=1)
        )
    assert exc.value.has_code(FaultCode.GLOBAL_CONF_OUTDATED)


def test_same_line_layout_as_real_directory(conf: GeneratedConfiguration, interop_dir: Path) -> None:
    real = (interop_dir / REAL_PUBLIC / "V6/internalconf").read_bytes()
    ours = conf.directory(KeyKind.INTERNAL, 6)
    assert ours is not None

    def shape(d: bytes) -> list[bytes]:
        masked = [re.sub(rb"(boundary=|^--|: ).*", rb"\1", line) for line in d.split(b"\r\n")]
        return [re.sub(rb"^[A-Za-z0-9+/]{40,}={0,2}$", b"<base64>", line) for line in masked]

    assert shape(ours) == shape(real)
    locations = [p.content_location for p in parse_signed_directory(ours).parts]
    real_locations = [p.content_location for p in parse_signed_directory(real).parts]
    pattern = re.compile(r"^/V6/\d{23}/(shared|private)-params\.xml$")
    assert all(pattern.match(loc) for loc in locations + real_locations)


def test_external_directory_has_shared_params_only_and_external_key(
    conf: GeneratedConfiguration, keys: tuple[ConfigurationKeyPair, ...], interop_dir: Path
) -> None:
    data = conf.directory(KeyKind.EXTERNAL, 6)
    assert data is not None
    directory = parse_signed_directory(data)
    assert [p.content_identifier for p in directory.parts] == ["SHARED-PARAMETERS"]
    assert directory.signature_algorithm == "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
    assert verify_signed_directory(directory, [keys[2].certificate], at=NOW) == keys[2].certificate
    internal_anchor = parse_anchor((interop_dir / REAL_ANCHOR).read_bytes())
    with pytest.raises(XRoadError) as exc:
        verify_signed_directory(directory, internal_anchor.verification_certs, at=NOW)
    assert exc.value.has_code(FaultCode.GLOBAL_CONF_INVALID)


def test_write_to_reproduces_the_public_layout(conf: GeneratedConfiguration, tmp_path: Path) -> None:
    out = tmp_path / "public"
    conf.write_to(out)
    stamp = timestamp_dir_name(NOW)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    expected = ["externalconf", "internalconf"]
    for v in range(2, 7):
        expected += [f"V{v}/externalconf", f"V{v}/internalconf"]
        expected += [f"V{v}/{stamp}/private-params.xml", f"V{v}/{stamp}/shared-params.xml"]
    assert written == sorted(expected)
    # The plain paths hold version 2, as nginx serves /internalconf without ?version.
    assert (
        (out / "internalconf").read_bytes()
        == (out / "V2/internalconf").read_bytes()
        == conf.directory(KeyKind.INTERNAL, 2)
    )
    # Every Content-location resolves under the directory, as on a central server.
    for v in range(2, 7):
        for kind in ("internalconf", "externalconf"):
            for part in parse_signed_directory((out / f"V{v}" / kind).read_bytes()).parts:
                verify_part_content(part, (out / part.content_location.lstrip("/")).read_bytes())


def test_version_2_needs_auth_certificates(
    shared: SharedParameters, private: PrivateParameters, keys: tuple[ConfigurationKeyPair, ...]
) -> None:
    default = generate(shared, private, keys, now=NOW, source_addresses=["cs.example.mn"])
    assert sorted(default.versions) == [3, 4, 5, 6]
    assert default.directory(KeyKind.INTERNAL) is None
    with pytest.raises(XRoadError) as exc:
        generate(shared, private, keys, now=NOW, versions=[2, 6], source_addresses=["cs"])
    assert exc.value.has_code(FaultCode.INTERNAL_ERROR)


def test_exactly_one_active_key_of_each_kind(
    shared: SharedParameters, private: PrivateParameters, keys: tuple[ConfigurationKeyPair, ...]
) -> None:
    for bad in (
        keys[:2],
        (replace(keys[0], active=False), keys[1], keys[2]),
        (keys[0], replace(keys[1], active=True), keys[2]),
    ):
        with pytest.raises(XRoadError) as exc:
            generate(shared, private, bad, now=NOW, source_addresses=["cs.example.mn"])
        assert exc.value.has_code(FaultCode.CANNOT_CREATE_SIGNATURE)


def test_instance_mismatch_is_refused(
    shared: SharedParameters, private: PrivateParameters, keys: tuple[ConfigurationKeyPair, ...]
) -> None:
    with pytest.raises(XRoadError):
        generate(shared, replace(private, instance="EE"), keys, now=NOW, source_addresses=["cs"])


def test_exported_anchor(keys: tuple[ConfigurationKeyPair, ...]) -> None:
    exported = export_anchor(
        "MN", ["cs1.example.mn", "https://cs2.example.mn:8443"], keys, KeyKind.INTERNAL, NOW
    )
    anchor = parse_anchor(exported.xml)
    assert anchor.instance == "MN"
    assert [s.download_url for s in anchor.sources] == [
        "http://cs1.example.mn/internalconf",
        "https://cs2.example.mn:8443/internalconf",
    ]
    # Active and not yet active internal keys; no external key.
    assert anchor.verification_certs == (keys[0].certificate, keys[1].certificate)
    assert exported.hash == anchor_hash(exported.xml) == anchor.file_hash
    assert re.fullmatch(r"([0-9A-F]{2}:){27}[0-9A-F]{2}", exported.hash)
    assert exported.hash_hex == hashlib.sha224(exported.xml).hexdigest().upper()
    external = parse_anchor(export_anchor("MN", ["cs1.example.mn"], keys, KeyKind.EXTERNAL, NOW).xml)
    assert external.sources[0].download_url == "http://cs1.example.mn/externalconf"
    assert external.verification_certs == (keys[2].certificate,)


# -- distribution over HTTP ---------------------------------------------------------------------------


@pytest.fixture
async def served(conf: GeneratedConfiguration) -> AsyncIterator[str]:
    runner = web.AppRunner(create_distribution_app(lambda: conf), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_served_directory_verifies_with_exported_anchor(
    served: str, keys: tuple[ConfigurationKeyPair, ...], interop_dir: Path
) -> None:
    anchor = parse_anchor(export_anchor("MN", [served], keys, KeyKind.INTERNAL, NOW).xml)
    real_anchor = parse_anchor((interop_dir / REAL_ANCHOR).read_bytes())
    async with aiohttp.ClientSession() as session:
        async with session.get(anchor.sources[0].download_url, params={"version": "6"}) as resp:
            assert resp.status == 200
            assert resp.headers["Cache-Control"] == "no-cache"
            content_type = resp.headers["Content-Type"]
            body = await resp.read()
        # The stored file is served as is; the HTTP header repeats its first line.
        assert body.split(b"\r\n", 1)[0] == b"Content-Type: " + content_type.encode()
        assert content_type.startswith("multipart/related; charset=UTF-8; boundary=")
        for directory in (parse_signed_directory(body), parse_signed_directory(body, content_type)):
            assert directory.version == 6
            verify_signed_directory(directory, anchor.verification_certs, at=NOW)
            verify_signed_directory(directory, real_anchor.verification_certs, at=NOW)
        for part in directory.parts:
            async with session.get(f"http://{served}{part.content_location}") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == "application/octet-stream"
                verify_part_content(part, await resp.read())


async def test_default_version_and_paths(served: str, conf: GeneratedConfiguration) -> None:
    async with aiohttp.ClientSession() as session:
        for path, kind, version in [
            ("/internalconf", "internal", 2),
            ("/externalconf", "external", 2),
            ("/internalconf?version=6", "internal", 6),
            ("/externalconf?version=5", "external", 5),
            ("/V6/internalconf", "internal", 6),
            ("/V3/externalconf", "external", 3),
        ]:
            async with session.get(f"http://{served}{path}") as resp:
                assert resp.status == 200, path
                body = await resp.read()
            assert body == conf.directory(kind, version)  # type: ignore[arg-type]
            assert parse_signed_directory(body).version == version


async def test_unknown_versions_and_files_are_404(served: str) -> None:
    stamp = timestamp_dir_name(NOW)
    async with aiohttp.ClientSession() as session:
        for path in [
            "/internalconf?version=7",
            "/externalconf?version=1",
            "/internalconf?version=abc",
            "/V7/internalconf",
            f"/V6/{stamp}/monitoring-params.xml",
            f"/V9/{stamp}/shared-params.xml",
            "/V6/20200101000000000000000/shared-params.xml",
            "/otherconf",
        ]:
            async with session.get(f"http://{served}{path}") as resp:
                assert resp.status == 404, path
                assert resp.headers["X-Road-Error"] == "client.not_found", path
                payload = json.loads(await resp.read())
                assert payload["type"] == "client.not_found"


# -- regeneration -------------------------------------------------------------------------------------


async def test_regenerate_periodically_ticks_and_survives_failures() -> None:
    calls = 0
    fourth = asyncio.Event()

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 4:
            fourth.set()
        if calls == 2:
            raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, "no active key")

    task = asyncio.create_task(regenerate_periodically(flaky, 0.01, asyncio.Event()))
    try:
        async with asyncio.timeout(5):
            await fourth.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_regenerates_at_once_on_change_event(
    shared: SharedParameters,
    private: PrivateParameters,
    keys: tuple[ConfigurationKeyPair, ...],
    tmp_path: Path,
) -> None:
    """A long interval: only the event can cause the second generation within the test's time."""
    members: list[Member] = list(shared.members)
    clock = [NOW]

    async def build() -> GeneratedConfiguration:
        clock[0] += timedelta(seconds=1)
        data = replace(shared, members=tuple(members), security_servers=())
        return await asyncio.to_thread(
            generate, data, private, keys, now=clock[0], source_addresses=["cs.example.mn"]
        )

    publisher = ConfigurationPublisher(build, out_dir=tmp_path / "public")
    changed = asyncio.Event()
    app = web.Application(middlewares=[xroad_error_middleware])
    setup_publishing(app, publisher, changed, interval=3600)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession() as session:
            # Generated before serving.
            async with session.get(f"{base}/internalconf?version=6") as resp:
                assert resp.status == 200
                first = parse_signed_directory(await resp.read())
            first_conf = publisher.current()
            members.append(Member(MemberClass("COM", "Commercial"), "9011223", "Company"))
            changed.set()
            async with asyncio.timeout(5):
                await publisher.next_generation(first_conf)
            async with session.get(f"{base}/internalconf?version=6") as resp:
                second = parse_signed_directory(await resp.read())
            assert second.parts[0].content_location != first.parts[0].content_location
            async with session.get(base + second.parts[0].content_location) as resp:
                new_shared = parse_shared_params(await resp.read())
            assert [m.member_code for m in new_shared.members] == ["5012345", "9011223"]
            # The previous generation's files stay available for clients mid-download.
            async with session.get(base + first.parts[0].content_location) as resp:
                assert resp.status == 200
                verify_part_content(first.parts[0], await resp.read())
        written = (tmp_path / "public" / second.parts[0].content_location.lstrip("/")).read_bytes()
        verify_part_content(second.parts[0], written)
    finally:
        await runner.cleanup()


async def test_regenerate_periodically_ends_when_cancelled_as_the_event_is_set() -> None:
    """The cancel and the change land in the same loop iteration: the loop ends, without another run."""
    runs = 0

    async def count() -> None:
        nonlocal runs
        runs += 1

    changed = asyncio.Event()
    task = asyncio.create_task(regenerate_periodically(count, 3600, changed, immediately=False))
    for _ in range(3):
        await asyncio.sleep(0)
    changed.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    if not done:
        task.cancel()
        await asyncio.wait({task})
        pytest.fail("regenerate_periodically took the cancel for a change and kept running")
    assert task.cancelled()
    assert runs == 0


def _regeneration_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "globalconf-regeneration" and not t.done()]


async def test_shutdown_is_prompt_when_a_change_coincides_with_it(
    shared: SharedParameters, private: PrivateParameters, keys: tuple[ConfigurationKeyPair, ...]
) -> None:
    """A change that sets the event just as the app stops (here, deterministically, from a cleanup step
    that runs right before the regeneration task's) must not eat the task's cancellation: on Python 3.11
    ``asyncio.wait_for(event.wait(), interval)`` returned the event's result instead of raising when the
    cancel arrived after the event was set but before ``wait_for`` resumed, so the loop regenerated and went
    back to sleep for the whole interval (3600 s here) while the app's cleanup waited for it."""
    clock = [NOW]

    async def build() -> GeneratedConfiguration:
        clock[0] += timedelta(seconds=1)
        return await asyncio.to_thread(
            generate, shared, private, keys, now=clock[0], source_addresses=["cs.example.mn"]
        )

    publisher = ConfigurationPublisher(build)
    changed = asyncio.Event()
    app = web.Application(middlewares=[xroad_error_middleware])
    setup_publishing(app, publisher, changed, interval=3600)

    async def change_while_stopping(app: web.Application) -> AsyncIterator[None]:
        yield
        changed.set()  # cleanup runs in reverse: the regeneration task is cancelled right after this

    app.cleanup_ctx.append(change_while_stopping)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await publisher.next_generation(None)
    for _ in range(3):  # let the regeneration task start and wait for the event
        await asyncio.sleep(0)
    assert len(_regeneration_tasks()) == 1
    cleanup = asyncio.create_task(runner.cleanup())
    done, _ = await asyncio.wait({cleanup}, timeout=10)
    if not done:  # cancelled again, the stuck task finally ends; fail with the cause
        cleanup.cancel()
        await asyncio.wait({cleanup})
        pytest.fail("the app's cleanup was still waiting for the regeneration task after 10 s")
    await cleanup
    assert _regeneration_tasks() == []


async def test_cancelling_the_cleanup_while_a_generation_runs_is_not_swallowed() -> None:
    """The cleanup waits for the cancelled regeneration task (here mid-generation, in a thread, its
    cancellation handling taking a moment as a database rollback does); when the cleanup is itself
    cancelled meanwhile, that cancellation reaches its caller instead of being taken for the task's own."""
    calls = 0
    gate = threading.Event()
    in_thread = asyncio.Event()
    unwinding = asyncio.Event()

    async def generate_fn() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            return  # the generation before serving
        in_thread.set()
        try:
            await asyncio.to_thread(gate.wait)
        finally:
            unwinding.set()
            await asyncio.to_thread(gate.wait)

    changed = asyncio.Event()
    app = web.Application()
    app.cleanup_ctx.append(regeneration_ctx(generate_fn, changed, 3600))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        changed.set()
        async with asyncio.timeout(10):
            await in_thread.wait()
        cleanup = asyncio.create_task(runner.cleanup())
        async with asyncio.timeout(10):
            await unwinding.wait()
        cleanup.cancel()
        done, _ = await asyncio.wait({cleanup}, timeout=10)
        assert done, "the cleanup did not end"
        assert cleanup.cancelled()
        assert _regeneration_tasks() == []
    finally:
        gate.set()


async def test_nothing_served_before_first_generation() -> None:
    async def failing() -> GeneratedConfiguration:
        raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, "no key yet")

    publisher = ConfigurationPublisher(failing)
    with pytest.raises(XRoadError) as exc:
        await publisher.regenerate()
    assert exc.value.has_code(FaultCode.CANNOT_CREATE_SIGNATURE)
    runner = web.AppRunner(create_distribution_app(publisher.current), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/internalconf"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 404
            assert resp.headers["X-Road-Error"] == "client.not_found"
    finally:
        await runner.cleanup()


# -- the MONITORING part ------------------------------------------------------------------------------------

MONITOR = MemberId("MN", "GOV", "7000001").subsystem("monitor")


async def test_monitoring_client_reaches_the_nodes_view(
    shared: SharedParameters,
    private: PrivateParameters,
    keys: tuple[ConfigurationKeyPair, ...],
    auth_cert: x509.Certificate,
    tmp_path: Path,
) -> None:
    """A registry that names a central monitoring client publishes it in the internal directory's MONITORING
    part (not the external one); a node downloading that configuration sees it in its view."""
    conf = generate(
        shared, private, keys, now=NOW, source_addresses=["cs.example.mn"], auth_certs={SS_ID: [auth_cert]},
        monitoring_client=MONITOR,
    )  # fmt: skip
    for version, generated in conf.versions.items():
        internal = parse_signed_directory(generated.directories[KeyKind.INTERNAL])
        monitoring = [p for p in internal.parts if p.content_identifier == MONITORING_CONTENT_IDENTIFIER]
        assert [p.content_location.rsplit("/", 1)[1] for p in monitoring] == ["monitoring-params.xml"]
        data = generated.files[monitoring[0].content_location]
        verify_part_content(monitoring[0], data)
        assert parse_monitoring_params(data).monitoring_client == MONITOR, version
        external = parse_signed_directory(generated.directories[KeyKind.EXTERNAL])
        assert {p.content_identifier for p in external.parts} == {"SHARED-PARAMETERS"}

    runner = web.AppRunner(create_distribution_app(lambda: conf), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        address = f"127.0.0.1:{runner.addresses[0][1]}"
        anchor = parse_anchor(export_anchor("MN", [address], keys, KeyKind.INTERNAL, NOW).xml)
        async with aiohttp.ClientSession() as session:
            client = ConfigurationClient(
                anchor, tmp_path / "gc", AiohttpConfigurationTransport(session), clock=lambda: NOW
            )
            await client.refresh()
    finally:
        await runner.cleanup()
    holder = ConfigurationHolder(tmp_path / "gc")
    view = holder.reload()
    assert view is not None
    assert view.monitoring_client == MONITOR

    # Without the setting no part is published, and the node's view names no monitoring client.
    plain = generate(shared, private, keys, now=NOW, source_addresses=["cs.example.mn"])
    for generated in plain.versions.values():
        internal = parse_signed_directory(generated.directories[KeyKind.INTERNAL])
        assert MONITORING_CONTENT_IDENTIFIER not in {p.content_identifier for p in internal.parts}


def test_monitoring_client_setting(tmp_path: Path) -> None:
    settings = RegistrySettings(home=tmp_path, monitoring_client="SUBSYSTEM:MN/GOV/7000001/monitor")
    assert settings.monitoring_client_id() == MONITOR
    assert RegistrySettings(home=tmp_path).monitoring_client_id() is None
    member = RegistrySettings(home=tmp_path, monitoring_client="MEMBER:MN/GOV/7000001")
    assert member.monitoring_client_id() == MONITOR.member
    for bad in ("SERVICE:MN/GOV/7000001/monitor/getX", "MN:GOV:7000001", "SUBSYSTEM:MN/GOV"):
        with pytest.raises(ValidationError, match="monitoring_client"):
            RegistrySettings(home=tmp_path, monitoring_client=bad)
