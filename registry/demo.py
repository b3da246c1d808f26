"""The registry's part of ``xroad-mn demo``: a central registry for instance MN with demo agencies.

On the first run it creates the registry home under ``DEMO/registry`` (SQLite, signing keys, an admin
API key), approves the demo trust services (the development CA with its OCSP responder, and the TSA)
and registers a few Mongolian agencies as members with the subsystems that would expose their registers
(standing for the real ХУР/XYP services of those agencies). Every run then
serves the registry, exports the internal configuration anchor, and proves the published global
configuration is sound by downloading it with the configuration client a security server uses.

The registry's token (a software token in ``DEMO/registry/token``, holding the configuration signing keys
PIN-encrypted) gets a PIN the demo generates and, because it is a demo that must start without anyone
typing it, keeps in clear in ``DEMO/registry/demo-token-pin`` (mode 0600). A real registry never stores
its PIN: it comes from ``XROAD_MN_TOKEN_PIN`` or a prompt.

Declared in ``pyproject.toml`` as ``registry = "registry.demo:component"`` in the ``xroad_mn.demo``
entry-point group; ``xroad-mn demo`` starts it beside the trust services.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from registry.app import run_registry
from registry.context import STORE_KEY
from registry.db import KeyKind, RegistryStore
from registry.home import ADMIN_ROLES, SECRET_MODE, create_home, load_registry_settings, settings_file
from registry.operations import configuration_anchor, init_registry, open_store
from registry.settings import RegistrySettings
from registry.signing import TokenLogin, create_token, registry_token
from xroad_mn.admin import create_api_key
from xroad_mn.certs import EJBCA_PROFILE
from xroad_mn.cli.demo import DemoContext
from xroad_mn.confclient.client import ConfigurationClient
from xroad_mn.fileio import write_atomic
from xroad_mn.globalconf.anchor import parse_anchor
from xroad_mn.globalconf.params import ApprovedCAEntry, ApprovedTSAEntry, CaInfo, OcspInfo
from xroad_mn.identifiers import MemberId
from xroad_mn.tokens import Token
from xroad_mn.transport.globalconf import AiohttpConfigurationTransport

__all__ = ["DEMO_AGENCIES", "DEMO_PIN_FILE", "component"]

REGISTRY_OPERATOR: Final = MemberId("MN", "GOV", "9000001")
DEMO_TOKEN_FILE: Final = "demo-admin-token"  # noqa: S105 (a file name, not a secret)
"""The demo keeps its admin token in clear (mode 0600) so every run can print it; a real registry never
stores a token, only its hash."""
TLS_DIR: Final = "registry-tls"
"""The registry's public TLS certificate and key, beside its home (as an operator keeps them)."""
TLS_VALID_DAYS: Final = 365
DEMO_TIMESTAMPING_SECONDS: Final = 2
"""Global configuration's ``timeStampingIntervalSeconds`` in the demo."""
DEMO_PIN_FILE: Final = "demo-token-pin"
"""The demo keeps its key token's PIN in clear (mode 0600) so every run starts unattended; a real
registry takes the PIN from ``XROAD_MN_TOKEN_PIN`` or a prompt and never writes it down."""


DEMO_AGENCIES: Final[tuple[tuple[MemberId, str, tuple[tuple[str, str], ...]], ...]] = (
    (
        MemberId("MN", "GOV", "9010001"),
        "Улсын бүртгэлийн ерөнхий газар (General Authority for State Registration)",
        (
            ("civil-registry", "Civil registration: citizens, births, marriages, addresses"),
            ("property-registry", "Property rights registration"),
        ),
    ),
    (
        MemberId("MN", "GOV", "9010002"),
        "Татварын ерөнхий газар (General Department of Taxation)",
        (("taxpayer", "Taxpayer register"),),
    ),
    (
        MemberId("MN", "GOV", "9010003"),
        "Нийгмийн даатгалын ерөнхий газар (General Office for Social Insurance)",
        (("insurance", "Social insurance contributions and work history"),),
    ),
    (
        MemberId("MN", "GOV", "9010004"),
        "Авто тээврийн үндэсний төв (National Road Transport Centre)",
        (("vehicle-registry", "Vehicle register: vehicles and their owners"),),
    ),
    (
        MemberId("MN", "COM", "2012345"),
        "Хаан банк (Khan Bank)",
        (("kyc", "Know-your-customer checks"),),
    ),
)


async def _seed(store: RegistryStore, settings: RegistrySettings, token: Token, context: DemoContext) -> None:
    """First run only: the registry itself, the demo trust services and the demo agencies."""
    now = datetime.now(UTC)
    await init_registry(
        store,
        settings,
        token,
        instance=context.instance,
        owner=MemberId(context.instance, REGISTRY_OPERATOR.member_class, REGISTRY_OPERATOR.member_code),
        owner_name="E-Mongolia central registry",
        now=now,
    )
    await store.add_ca(
        ApprovedCAEntry(
            name="xroad-mn demo CA",
            top_ca=CaInfo(
                context.trust.ca_certificate,
                (OcspInfo(context.trust.ocsp_url, context.trust.ocsp_certificate),),
            ),
            # X-Road's own class for the dev CA's subject layout (C = instance, O = member class,
            # CN = member code), so a real X-Road security server can load it.
            certificate_profile_info=EJBCA_PROFILE,
        )
    )
    await store.add_tsa(
        ApprovedTSAEntry("xroad-mn demo TSA", context.trust.tsa_url, context.trust.tsa_certificate)
    )
    # The nodes time-stamp their message logs every few seconds (X-Road: 60 s), so that an exchange's
    # evidence can be exported moments after the demo's scenario made it.
    await store.update_settings(timestamping_interval_seconds=DEMO_TIMESTAMPING_SECONDS)
    for member, name, subsystems in DEMO_AGENCIES:
        member = MemberId(context.instance, member.member_class, member.member_code)
        await store.add_member(member, name)
        for code, description in subsystems:
            await store.add_subsystem(member.subsystem(code), description)


def _tls_identity(directory: Path, host: str) -> tuple[Path, Path]:
    """First run only: a self-signed TLS certificate for the registry's public socket (SAN ``host``) and
    its key, in ``directory`` beside the registry's home (the key 0600). Global configuration publishes
    the certificate, and the nodes pin the registry's management service to it."""
    cert_path, key_path = directory / "public-tls.crt", directory / "public-tls.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry.demo.xroad-mn")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=TLS_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    write_atomic(key_path, key_pem, mode=SECRET_MODE, make_parents=True)
    write_atomic(cert_path, cert.public_bytes(Encoding.PEM))
    return cert_path, key_path


@asynccontextmanager
async def component(context: DemoContext) -> AsyncIterator[Sequence[str]]:
    """Initialise the demo registry once, serve it, and yield what to print while it runs."""
    home = context.directory / "registry"
    first_run = not settings_file(home).exists()
    if first_run:
        cert_file, key_file = await asyncio.to_thread(
            _tls_identity, context.directory / TLS_DIR, context.host
        )
        create_home(
            home,
            {
                "admin_host": context.host,
                "public_host": context.host,
                "public_tls_cert": cert_file.resolve(),
                "public_tls_key": key_file.resolve(),
            },
        )
    overrides: dict[str, object] = {"admin_port": 0, "public_port": 0} if context.ephemeral_ports else {}
    settings = load_registry_settings(home, overrides=overrides)
    pin_file = home / DEMO_PIN_FILE
    if not pin_file.exists():  # a new demo, or one made before the keys moved into a token
        new_pin = secrets.token_urlsafe(24)
        await asyncio.to_thread(create_token, registry_token(settings), new_pin)
        write_atomic(pin_file, new_pin.encode("utf-8"), mode=SECRET_MODE)
    pin = pin_file.read_text(encoding="utf-8").strip()
    if first_run:
        login = TokenLogin(registry_token(settings), pin=pin)
        try:
            async with open_store(settings, token=login.for_migration) as store:
                await _seed(store, settings, await asyncio.to_thread(login), context)
        finally:
            login.logout()
        created = create_api_key(settings.api_keys_path(), ADMIN_ROLES, datetime.now(UTC))
        write_atomic(home / DEMO_TOKEN_FILE, created.token.encode("utf-8"), mode=SECRET_MODE)
    token = (home / DEMO_TOKEN_FILE).read_text(encoding="utf-8").strip()

    async with run_registry(settings, pin=pin) as running:
        store = running.app[STORE_KEY]
        anchor = await configuration_anchor(store, running.settings, KeyKind.INTERNAL, now=datetime.now(UTC))
        anchor_path = home / "anchor-internal.xml"
        anchor_path.write_bytes(anchor.xml)
        # Prove the published configuration: download and verify it as a security server would.
        conf_dir = context.directory / "globalconf"
        tls: ssl.SSLContext | bool = True
        if settings.public_tls_cert is not None:
            tls = ssl.create_default_context(cafile=str(settings.public_tls_cert))
        async with aiohttp.ClientSession() as session:
            client = ConfigurationClient(
                parse_anchor(anchor.xml), conf_dir, AiohttpConfigurationTransport(session, ssl_context=tls)
            )
            result = await client.refresh()
        members = await store.list_members()
        context.board.registry_admin_url = running.admin_url
        context.board.registry_api_key = token
        context.board.anchor_file = anchor_path
        context.board.registry_tls_cert = settings.public_tls_cert
        yield [
            f"Central registry (instance {context.instance}){' — created' if first_run else ''}:",
            f"  admin API  {running.admin_url}/api/v1  (Authorization: X-Road-ApiKey token={token})",
            f"  OpenAPI    {running.admin_url}/api/v1/openapi.json",
            f"  global configuration  {running.public_url}/internalconf?version=6",
            f"  anchor     {anchor_path}  (SHA-224 {anchor.hash})",
            f"  members    {len(members)}: " + ", ".join(str(m.id(context.instance)) for m in members),
            f"Self-check: the configuration client verified version {result.own.version} of the global "
            f"configuration (expires {result.own.expire_date.isoformat()}) and stored it in {conf_dir}.",
        ]
