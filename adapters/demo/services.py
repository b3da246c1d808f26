"""The agencies' services in ``xroad-mn demo``: their adapters served on the agencies' hosts.

A demo component (see :mod:`xroad_mn.cli.demo`), started after the agency databases are built. Each agency
puts its register behind X-Road the way that suits what it already has — all three ready adapters and the
SDK are used:

* the General Authority for State Registration (first agency host, e.g. 127.0.0.2):
  - subsystem ``civil-registry``: the citizen lookup as REST through the **SQL ready adapter**
    (``configs/demo/adapters/civil-registry.toml``, port 8091), and the XYP-style SOAP service
    ``getCitizenIDCardInfo`` written with the **SDK** (:mod:`adapters.demo.xyp`, port 8092);
  - subsystem ``property-registry``: property rights as REST through the SQL ready adapter
    (``property-registry.toml``, port 8094);
* the General Department of Taxation (second host): taxpayer status through the SQL ready adapter
  (``taxpayer.toml``, port 8093);
* Khan Bank (third host) provides nothing: it is the consumer;
* the National Road Transport Centre (fourth host): its existing REST API (:mod:`adapters.demo.transport_api`,
  port 9095) put behind X-Road by the **HTTP ready adapter** (``vehicle-registry.toml``, port 8095);
* the General Office for Social Insurance (fifth host): its existing SOAP service
  (:mod:`adapters.demo.insurance_soap`, port 9096) put behind X-Road by the **SOAP ready adapter**
  (``social-insurance.toml``, port 8096), which serves the WSDL the node publishes.

Each service is put on the demo's board for the agency's security server to publish (from the adapter's
OpenAPI document or WSDL, or as a REST base URL) and to grant to Khan Bank's KYC subsystem — all but the
citizen's address endpoint, which stays without an access right so that the demo can show
``access_denied``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.demo.component import REGISTRIES_DIR
from adapters.demo.insurance_soap import PATH as INSURANCE_PATH
from adapters.demo.insurance_soap import insurance_service
from adapters.demo.registries import registry_urls
from adapters.demo.transport_api import API_KEY_HEADER, BASE_PATH, transport_api
from adapters.demo.xyp import xyp_adapter
from adapters.ready.config import load_ready_adapter
from adapters.sdk import create_app
from xroad_mn.cli.demo import DemoContext, DemoService
from xroad_mn.database import create_engine
from xroad_mn.identifiers import MemberId, SubsystemId, format_id
from xroad_mn.transport.server import Served, ServerTimeouts, http_url, listening, serve

__all__ = [
    "CIVIL_REGISTRY",
    "CONFIGS_DIR",
    "CONSUMER",
    "INSURANCE",
    "PROPERTY_REGISTRY",
    "PROVIDERS",
    "SALARY_SERVICE",
    "TAXPAYER",
    "VEHICLE_REGISTRY",
    "component",
    "in_instance",
]

CONFIGS_DIR: Final = Path(__file__).resolve().parents[2] / "configs" / "demo" / "adapters"
"""The ready adapters' configurations (worked examples in the repository)."""
CIVIL_REST_PORT: Final = 8091
CIVIL_SOAP_PORT: Final = 8092
TAX_REST_PORT: Final = 8093
PROPERTY_REST_PORT: Final = 8094
VEHICLE_ADAPTER_PORT: Final = 8095
TRANSPORT_API_PORT: Final = 9095
INSURANCE_ADAPTER_PORT: Final = 8096
INSURANCE_SOAP_PORT: Final = 9096

GASR: Final = MemberId("MN", "GOV", "9010001")
CIVIL_REGISTRY: Final = GASR.subsystem("civil-registry")
PROPERTY_REGISTRY: Final = GASR.subsystem("property-registry")
TAXPAYER: Final = MemberId("MN", "GOV", "9010002").subsystem("taxpayer")
INSURANCE: Final = MemberId("MN", "GOV", "9010003").subsystem("insurance")
VEHICLE_REGISTRY: Final = MemberId("MN", "GOV", "9010004").subsystem("vehicle-registry")
SALARY_SERVICE: Final = "getCitizenSalaryInfo"
"""The social insurance service's code (``social-insurance.toml``), from its WSDL."""
CONSUMER: Final = MemberId("MN", "COM", "2012345").subsystem("kyc")
"""Khan Bank's KYC system, the consumer every service is granted to."""
PROVIDERS: Final[tuple[tuple[SubsystemId, ...], ...]] = (
    (CIVIL_REGISTRY, PROPERTY_REGISTRY),
    (TAXPAYER,),
    (),
    (VEHICLE_REGISTRY,),
    (INSURANCE,),
)
"""The providing subsystems of each agency host, in host order (Khan Bank, the third, provides none)."""


def in_instance(instance: str, subsystem: SubsystemId) -> SubsystemId:
    """``subsystem`` in the demo's ``instance`` (the constants are written for ``MN``)."""
    return replace(subsystem, instance=instance)


@asynccontextmanager
async def component(context: DemoContext) -> AsyncIterator[Sequence[str]]:
    """Serve the agencies' adapters; put their services on the board; yield what to print."""
    databases = registry_urls(context.directory / REGISTRIES_DIR)
    gasr_host, tax_host = context.agency_address(0), context.agency_address(1)
    transport_host, insurance_host = context.agency_address(3), context.agency_address(4)
    civil_base = http_url(gasr_host, CIVIL_REST_PORT)
    xyp_base = http_url(gasr_host, CIVIL_SOAP_PORT)
    property_base = http_url(gasr_host, PROPERTY_REST_PORT)
    tax_base = http_url(tax_host, TAX_REST_PORT)
    vehicle_base = http_url(transport_host, VEHICLE_ADAPTER_PORT)
    transport_api_base = http_url(transport_host, TRANSPORT_API_PORT)
    insurance_base = http_url(insurance_host, INSURANCE_ADAPTER_PORT)
    legacy_soap_base = http_url(insurance_host, INSURANCE_SOAP_PORT)
    state_registration = {"database": {"url": databases["state_registration"]}}
    civil = load_ready_adapter(
        CONFIGS_DIR / "civil-registry.toml",
        env={},
        overrides={"host": gasr_host, "server_url": civil_base, **state_registration},
    )
    property_rights = load_ready_adapter(
        CONFIGS_DIR / "property-registry.toml",
        env={},
        overrides={"host": gasr_host, "server_url": property_base, **state_registration},
    )
    tax = load_ready_adapter(
        CONFIGS_DIR / "taxpayer.toml",
        env={},
        overrides={"host": tax_host, "server_url": tax_base, "database": {"url": databases["taxation"]}},
    )
    # The transport centre's API key: new for every run, known only to its API and its adapter.
    api_key = secrets.token_urlsafe(24)
    vehicles = load_ready_adapter(
        CONFIGS_DIR / "vehicle-registry.toml",
        env={},
        overrides={
            "host": transport_host,
            "upstream": transport_api_base + BASE_PATH,
            "headers": {"set": {API_KEY_HEADER: api_key}},
        },
    )
    insurance = load_ready_adapter(
        CONFIGS_DIR / "social-insurance.toml",
        env={},
        overrides={
            "host": insurance_host,
            "server_url": insurance_base,
            "upstream": legacy_soap_base + INSURANCE_PATH,
        },
    )
    async with AsyncExitStack() as stack:
        engines: dict[str, AsyncEngine] = {}
        for key in ("state_registration", "transport", "social_insurance"):
            engines[key] = create_engine(databases[key])
            stack.push_async_callback(engines[key].dispose)
        xyp = xyp_adapter(engines["state_registration"], server_url=xyp_base)
        served = [
            ((gasr_host, CIVIL_REST_PORT), civil.create_app),
            ((gasr_host, CIVIL_SOAP_PORT), lambda: create_app(xyp)),
            ((gasr_host, PROPERTY_REST_PORT), property_rights.create_app),
            ((tax_host, TAX_REST_PORT), tax.create_app),
            (
                (transport_host, TRANSPORT_API_PORT),
                lambda: transport_api(engines["transport"], api_key=api_key),
            ),
            ((transport_host, VEHICLE_ADAPTER_PORT), vehicles.create_app),
            ((insurance_host, INSURANCE_SOAP_PORT), lambda: insurance_service(engines["social_insurance"])),
            ((insurance_host, INSURANCE_ADAPTER_PORT), insurance.create_app),
        ]
        sockets = stack.enter_context(listening(*(address for address, _ in served)))
        await stack.enter_async_context(
            serve(
                [Served(app, sock) for (_, app), sock in zip(served, sockets, strict=True)],
                ServerTimeouts(),
            )
        )
        kyc = (format_id(in_instance(context.instance, CONSUMER)),)

        def provider(subsystem: SubsystemId) -> str:
            return format_id(in_instance(context.instance, subsystem))

        context.board.services.extend(
            [
                DemoService(
                    provider(CIVIL_REGISTRY), "openapi", f"{civil_base}/openapi.json", code="citizens",
                    granted_to=kyc, endpoints=(("GET", "/citizens/*"),),
                ),
                DemoService(provider(CIVIL_REGISTRY), "wsdl", f"{xyp_base}/wsdl", granted_to=kyc),
                DemoService(
                    provider(PROPERTY_REGISTRY), "openapi", f"{property_base}/openapi.json", code="property",
                    granted_to=kyc,
                ),
                DemoService(
                    provider(TAXPAYER), "openapi", f"{tax_base}/openapi.json", code="taxpayer", granted_to=kyc
                ),
                DemoService(
                    provider(VEHICLE_REGISTRY), "rest", vehicle_base, code="vehicles", granted_to=kyc
                ),
                DemoService(provider(INSURANCE), "wsdl", f"{insurance_base}/wsdl", granted_to=kyc),
            ]
        )  # fmt: skip
        yield [
            "Agency services (adapters behind the provider nodes):",
            f"  {civil.title:<38} SQL adapter   {civil_base}  (OpenAPI {civil_base}/openapi.json)",
            f"  {xyp.title:<38} SDK, SOAP     {xyp_base}/soap  (WSDL {xyp_base}/wsdl)",
            f"  {property_rights.title:<38} SQL adapter   {property_base}  "
            f"(OpenAPI {property_base}/openapi.json)",
            f"  {tax.title:<38} SQL adapter   {tax_base}  (OpenAPI {tax_base}/openapi.json)",
            f"  {vehicles.title:<38} HTTP adapter  {vehicle_base}  in front of the centre's API "
            f"{transport_api_base}{BASE_PATH}",
            f"  {insurance.title:<38} SOAP adapter  {insurance_base}  (WSDL {insurance_base}/wsdl) in front "
            f"of the office's SOAP service {legacy_soap_base}",
        ]
