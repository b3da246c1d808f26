"""The agencies' services in ``xroad-mn demo``: their adapters served on the agencies' hosts.

A demo component (see :mod:`xroad_mn.cli.demo`), started after the agency databases are built:

* the General Authority for State Registration (first agency host, e.g. 127.0.0.2): its citizen lookup as
  REST through the SQL ready adapter (``configs/demo/adapters/civil-registry.toml``, port 8091) and the
  XYP-style SOAP service ``getCitizenIDCardInfo`` written with the SDK (:mod:`adapters.demo.xyp`,
  port 8092);
* the General Department of Taxation (second host): taxpayer status as REST through the SQL ready adapter
  (``configs/demo/adapters/taxpayer.toml``, port 8093).

Each is put on the demo's board for the agency's security server to publish (from the adapter's OpenAPI
document or WSDL) and to grant to Khan Bank's KYC subsystem — all but the citizen's address endpoint,
which stays without an access right so that the demo can show ``access_denied``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Final

from adapters.demo.component import REGISTRIES_DIR
from adapters.demo.registries import registry_urls
from adapters.demo.xyp import xyp_adapter
from adapters.ready.config import load_ready_adapter
from adapters.sdk import create_app
from xroad_mn.cli.demo import DemoContext, DemoService
from xroad_mn.database import create_engine
from xroad_mn.identifiers import MemberId
from xroad_mn.transport.server import Served, ServerTimeouts, http_url, listening, serve

__all__ = ["CONFIGS_DIR", "CONSUMER", "PROVIDERS", "component"]

CONFIGS_DIR: Final = Path(__file__).resolve().parents[2] / "configs" / "demo" / "adapters"
"""The ready adapters' configurations (worked examples in the repository)."""
CIVIL_REST_PORT: Final = 8091
CIVIL_SOAP_PORT: Final = 8092
TAX_REST_PORT: Final = 8093
PROVIDERS: Final = (MemberId("MN", "GOV", "9010001"), MemberId("MN", "GOV", "9010002"))
"""The providing agencies, on the first and second agency host."""
CONSUMER: Final = MemberId("MN", "COM", "2012345").subsystem("kyc")
"""Khan Bank's KYC system, the consumer every service is granted to."""


def _subsystem(context: DemoContext, member: MemberId, code: str) -> str:
    return f"SUBSYSTEM:{context.instance}/{member.member_class}/{member.member_code}/{code}"


@asynccontextmanager
async def component(context: DemoContext) -> AsyncIterator[Sequence[str]]:
    """Serve the agencies' adapters; put their services on the board; yield what to print."""
    databases = registry_urls(context.directory / REGISTRIES_DIR)
    civil_host, tax_host = context.agency_address(0), context.agency_address(1)
    civil_base = http_url(civil_host, CIVIL_REST_PORT)
    xyp_base = http_url(civil_host, CIVIL_SOAP_PORT)
    tax_base = http_url(tax_host, TAX_REST_PORT)
    civil = load_ready_adapter(
        CONFIGS_DIR / "civil-registry.toml",
        env={},
        overrides={
            "host": civil_host,
            "server_url": civil_base,
            "database": {"url": databases["state_registration"]},
        },
    )
    tax = load_ready_adapter(
        CONFIGS_DIR / "taxpayer.toml",
        env={},
        overrides={"host": tax_host, "server_url": tax_base, "database": {"url": databases["taxation"]}},
    )
    async with AsyncExitStack() as stack:
        engine = create_engine(databases["state_registration"])
        stack.push_async_callback(engine.dispose)
        xyp = xyp_adapter(engine, server_url=xyp_base)
        sockets = stack.enter_context(
            listening((civil_host, CIVIL_REST_PORT), (civil_host, CIVIL_SOAP_PORT), (tax_host, TAX_REST_PORT))
        )
        apps = [civil.create_app, lambda: create_app(xyp), tax.create_app]
        await stack.enter_async_context(
            serve([Served(app, sock) for app, sock in zip(apps, sockets, strict=True)], ServerTimeouts())
        )
        civil_registry = _subsystem(context, PROVIDERS[0], "civil-registry")
        taxpayer = _subsystem(context, PROVIDERS[1], "taxpayer")
        kyc = _subsystem(context, CONSUMER.member, CONSUMER.subsystem_code)
        context.board.services.extend(
            [
                DemoService(
                    civil_registry, "openapi", f"{civil_base}/openapi.json", code="citizens",
                    granted_to=(kyc,), endpoints=(("GET", "/citizens/*"),),
                ),
                DemoService(civil_registry, "wsdl", f"{xyp_base}/wsdl", granted_to=(kyc,)),
                DemoService(
                    taxpayer, "openapi", f"{tax_base}/openapi.json", code="taxpayer", granted_to=(kyc,)
                ),
            ]
        )  # fmt: skip
        yield [
            "Agency services (adapters behind the provider nodes):",
            f"  {civil.title:<28} SQL adapter   {civil_base}  (OpenAPI {civil_base}/openapi.json)",
            f"  {xyp.title:<28} SDK, SOAP     {xyp_base}/soap  (WSDL {xyp_base}/wsdl)",
            f"  {tax.title:<28} SQL adapter   {tax_base}  (OpenAPI {tax_base}/openapi.json)",
        ]
