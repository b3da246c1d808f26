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
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Final

import aiohttp

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
    for member, name, subsystems in DEMO_AGENCIES:
        member = MemberId(context.instance, member.member_class, member.member_code)
        await store.add_member(member, name)
        for code, description in subsystems:
            await store.add_subsystem(member.subsystem(code), description)


@asynccontextmanager
async def component(context: DemoContext) -> AsyncIterator[Sequence[str]]:
    """Initialise the demo registry once, serve it, and yield what to print while it runs."""
    home = context.directory / "registry"
    first_run = not settings_file(home).exists()
    if first_run:
        create_home(home, {"admin_host": context.host, "public_host": context.host})
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
        async with aiohttp.ClientSession() as session:
            client = ConfigurationClient(
                parse_anchor(anchor.xml), conf_dir, AiohttpConfigurationTransport(session)
            )
            result = await client.refresh()
        members = await store.list_members()
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
