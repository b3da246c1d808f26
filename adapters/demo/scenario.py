"""The demo's scenario: Khan Bank's KYC system checks a citizen through its own security server.

A demo component (see :mod:`xroad_mn.cli.demo`), started last. Once the federation is up it prints the
scenario and runs it once as a self-check, as Khan Bank's know-your-customer system would, with
the consumer SDK (:class:`~adapters.client.XRoadClient`) through the bank's client proxy — every call with
the data subject (the citizen's registration number), the bank officer's user id and the case (issue):

1. the citizen's record from the civil registry (REST, the SQL adapter behind ``ss-gasr``);
2. the citizen's taxpayer status from the tax office (REST, behind ``ss-tax``);
3. the same citizen's identity-card information from the XYP-style SOAP service
   ``getCitizenIDCardInfo`` (the SDK adapter behind ``ss-gasr``);
4. the property the citizen owns (REST, the SQL adapter of ``property-registry`` behind ``ss-gasr``);
5. the vehicles the citizen owns (REST, the HTTP adapter in front of the transport centre's own API, behind
   ``ss-transport``);
6. the citizen's last six months of salary and social insurance contributions (SOAP, the SOAP adapter in
   front of the social insurance office's own service, behind ``ss-insurance``);
7. the citizen's address endpoint, which the civil registry never granted to the bank: ``access_denied``.

Then it prints the two commands an auditor runs to export and verify the first exchange's evidence from the
bank's node and runs them exactly as printed (waiting for the node's time-stamp), and prints ``curl``
examples of the same calls.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Final
from urllib.parse import quote

from pydantic import BaseModel
from sqlalchemy import ColumnElement, select

from adapters.client import XRoadClient
from adapters.demo.component import REGISTRIES_DIR
from adapters.demo.data import TaxpayerKind
from adapters.demo.insurance_soap import NAMESPACE as INSURANCE_NAMESPACE
from adapters.demo.registries import (
    citizens,
    contributions,
    properties,
    registry_urls,
    taxpayers,
    vehicles,
)
from adapters.demo.services import (
    CIVIL_REGISTRY,
    CONSUMER,
    INSURANCE,
    PROPERTY_REGISTRY,
    SALARY_SERVICE,
    TAXPAYER,
    VEHICLE_REGISTRY,
    in_instance,
)
from adapters.demo.xyp import NAMESPACE, CitizenIDCardInfo, GetCitizenIDCardInfo
from adapters.demo.xyp import OPERATION as SOAP_SERVICE
from xroad_mn.asic import verify_container
from xroad_mn.cli.demo import DemoContext
from xroad_mn.confclient.installed import load_trust_material
from xroad_mn.database import create_engine
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import (
    format_client_header,
    format_id,
    format_rest_service_path,
)

__all__ = ["component"]

USER_ID: Final = "MN-khanbank-officer-17"
"""The bank officer who opens the account (``X-Road-UserId``)."""
ISSUE: Final = "KYC-2026-000417"
"""The bank's case number (``X-Road-Issue``)."""
EVIDENCE_SECONDS: Final = 30.0
"""Longest wait for the bank's node to time-stamp the exchange."""
SALARY_MONTHS: Final = 6
"""How many months of salary the bank asks for."""
TIMESTAMPING_SECONDS: Final = 2.0
"""The demo registry's ``timeStampingIntervalSeconds``: the bank's node time-stamps its log this often."""


async def _column(url: str, column: ColumnElement[str], where: ColumnElement[bool] | None = None) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            query = select(column).distinct()
            if where is not None:
                query = query.where(where)
            return set((await conn.execute(query)).scalars())
    finally:
        await engine.dispose()


async def _data_subject(directory: Path) -> str:
    """A citizen in every register the scenario asks: the first by registration number who is a taxpayer,
    owns property and a vehicle, and has social insurance contributions."""
    urls = registry_urls(directory / REGISTRIES_DIR)
    found = await _column(urls["state_registration"], citizens.c.regnum)
    for url, column, where in (
        (urls["taxation"], taxpayers.c.tin, taxpayers.c.kind == TaxpayerKind.CITIZEN),
        (urls["state_registration"], properties.c.owner_regnum, None),
        (urls["transport"], vehicles.c.owner_regnum, None),
        (urls["social_insurance"], contributions.c.regnum, None),
    ):
        found &= await _column(url, column, where)
    if not found:
        raise XRoadError(FaultCode.INTERNAL_ERROR, "demo: no citizen is in every register the scenario asks")
    return min(found)


class GetCitizenSalaryInfo(BaseModel):
    """The bank's request to the social insurance service (its WSDL's request element)."""

    regnum: str
    months: int


class SalaryMonth(BaseModel):
    year: int
    month: int
    employerRegNumber: str
    employerName: str
    salaryAmount: int
    employeeContribution: int
    employerContribution: int
    paidDate: date


class CitizenSalaryInfo(BaseModel):
    """The answer, as the bank reads it."""

    regnum: str
    insured: bool
    months: int
    salary: list[SalaryMonth] = []


def _xroad_mn() -> list[str]:
    """How to run ``xroad-mn``: the script beside this Python (the virtual environment's), else by module."""
    script = Path(sys.executable).with_name("xroad-mn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "xroad_mn"]


async def _run(argv: list[str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return (proc.returncode if proc.returncode is not None else -1), out.decode("utf-8", "replace")


def _verify_all(containers: Sequence[Path], conf: Path) -> None:
    """Verify each container against the global configuration in ``conf``, as ``xroad-mn asic verify``."""
    trust = load_trust_material(conf)
    for container in containers:
        try:
            verify_container(container.read_bytes(), trust=trust)
        except XRoadError as e:
            raise XRoadError(e.code, f"demo: {container.name} does not verify: {e.message}") from e


async def _audit(home: Path, query_id: str, out: Path) -> tuple[list[list[str]], list[str]]:
    """Export the exchange's evidence from the bank's node and verify each container, with the commands
    printed; the commands and the containers verified. Waits for the node's time-stamp."""
    export = [
        *_xroad_mn(),
        "node",
        "log",
        "export",
        "--dir",
        str(home),
        "--x-road-id",
        query_id,
        "--out",
        str(out),
    ]
    deadline = time.monotonic() + EVIDENCE_SECONDS
    await asyncio.sleep(TIMESTAMPING_SECONDS)  # the node time-stamps its log every 2 s in the demo
    while True:
        code, output = await _run(export)
        if code == 0:
            break
        if time.monotonic() > deadline or "not_found" not in output:
            raise XRoadError(FaultCode.INTERNAL_ERROR, f"demo: the auditor's export failed: {output[-500:]}")
        await asyncio.sleep(TIMESTAMPING_SECONDS)
    containers = sorted(await asyncio.to_thread(lambda: list(out.glob("*.asice"))))
    if not containers:
        raise XRoadError(FaultCode.INTERNAL_ERROR, f"demo: the auditor's export wrote no container in {out}")
    # What `xroad-mn asic verify` runs for each container, here in a worker thread rather than one process
    # per container (the test runs the printed commands themselves).
    verify = [*_xroad_mn(), "asic", "verify", "--conf", str(home / "globalconf")]
    await asyncio.to_thread(_verify_all, containers, home / "globalconf")
    return [export, [*verify, str(out / "*.asice")]], [c.name for c in containers]


@asynccontextmanager
async def component(context: DemoContext) -> AsyncIterator[Sequence[str]]:
    """Run the scenario once as a self-check; yield what it showed and how to repeat it."""
    instance = context.instance
    kyc = in_instance(instance, CONSUMER)
    civil = in_instance(instance, CIVIL_REGISTRY)
    proxy = context.board.client_proxies.get(format_id(kyc))
    home = context.board.node_homes.get(format_id(kyc))
    if proxy is None or home is None:
        raise XRoadError(FaultCode.INVALID_SETTINGS, "demo: Khan Bank's security server is not running")
    regnum = await _data_subject(context.directory)
    citizens_service = civil.service("citizens")
    tax_service = in_instance(instance, TAXPAYER).service("taxpayer")
    soap_service = civil.service(SOAP_SERVICE, "v1")
    property_service = in_instance(instance, PROPERTY_REGISTRY).service("property")
    vehicle_service = in_instance(instance, VEHICLE_REGISTRY).service("vehicles")
    salary_service = in_instance(instance, INSURANCE).service(SALARY_SERVICE, "v1")
    options = {"user_id": USER_ID, "issue": ISSUE, "data_subject": regnum}
    async with XRoadClient(proxy, kyc, retries=0) as xroad:
        record = await xroad.get(citizens_service, f"/citizens/{regnum}", **options)
        status = await xroad.get(tax_service, f"/taxpayers/{regnum}/status", **options)
        card = await xroad.soap_call(
            soap_service,
            GetCitizenIDCardInfo(regnum=regnum),
            CitizenIDCardInfo,
            namespace=NAMESPACE,
            **options,
        )
        owned = await xroad.get(property_service, f"/owners/{regnum}/properties", **options)
        cars = await xroad.get(vehicle_service, f"/owners/{regnum}/vehicles", **options)
        salary = await xroad.soap_call(
            salary_service,
            GetCitizenSalaryInfo(regnum=regnum, months=SALARY_MONTHS),
            CitizenSalaryInfo,
            namespace=INSURANCE_NAMESPACE,
            **options,
        )
        try:
            await xroad.get(citizens_service, f"/citizens/{regnum}/address", **options)
        except XRoadError as e:
            denied = e
        else:
            raise XRoadError(
                FaultCode.INTERNAL_ERROR, "demo: the address endpoint answered without an access right"
            )
    answered = {"civil registry": record, "tax office": status, "property": owned, "vehicles": cars}
    failed = {name: answer.status for name, answer in answered.items() if answer.status != 200}
    if failed:
        raise XRoadError(FaultCode.INTERNAL_ERROR, f"demo: the registers answered {failed}")
    if denied.code != FaultCode.ACCESS_DENIED and not denied.code.endswith(FaultCode.ACCESS_DENIED.value):
        raise XRoadError(FaultCode.INTERNAL_ERROR, f"demo: expected access_denied, got {denied.code}")
    person, taxpayer = record.json(), status.json()
    rights, fleet = owned.json()["items"], cars.json()["cars"]
    if not rights or not fleet or not salary.salary:
        raise XRoadError(
            FaultCode.INTERNAL_ERROR,
            f"demo: {regnum} should own property and a vehicle and have contributions: "
            f"{len(rights)} properties, {len(fleet)} vehicles, {len(salary.salary)} months",
        )
    evidence = context.directory / "evidence" / record.query_id
    commands, containers = await _audit(home, record.query_id, evidence)

    def curl_rest(service_path: str) -> str:
        headers = [
            f"X-Road-Client: {format_client_header(kyc)}",
            f"X-Road-UserId: {USER_ID}",
            f"X-Road-Issue: {ISSUE}",
        ]
        url = proxy + quote(service_path)
        return "curl -s " + " ".join(f"-H {shlex.quote(h)}" for h in headers) + f" {shlex.quote(url)}"

    soap_body = (
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xrd="http://x-road.eu/xsd/xroad.xsd" xmlns:id="http://x-road.eu/xsd/identifiers" '
        f'xmlns:x="{NAMESPACE}"><SOAP-ENV:Header>'
        f'<xrd:client id:objectType="SUBSYSTEM"><id:xRoadInstance>{instance}</id:xRoadInstance>'
        f"<id:memberClass>{kyc.member_class}</id:memberClass><id:memberCode>{kyc.member_code}</id:memberCode>"
        f"<id:subsystemCode>{kyc.subsystem_code}</id:subsystemCode></xrd:client>"
        f'<xrd:service id:objectType="SERVICE"><id:xRoadInstance>{instance}</id:xRoadInstance>'
        f"<id:memberClass>{civil.member_class}</id:memberClass><id:memberCode>{civil.member_code}</id:memberCode>"
        f"<id:subsystemCode>{civil.subsystem_code}</id:subsystemCode><id:serviceCode>{SOAP_SERVICE}</id:serviceCode>"
        "<id:serviceVersion>v1</id:serviceVersion></xrd:service>"
        f"<xrd:id>demo-curl-1</xrd:id><xrd:userId>{USER_ID}</xrd:userId>"
        "<xrd:protocolVersion>4.0</xrd:protocolVersion></SOAP-ENV:Header>"
        f"<SOAP-ENV:Body><x:{SOAP_SERVICE}><x:regnum>{regnum}</x:regnum></x:{SOAP_SERVICE}></SOAP-ENV:Body>"
        "</SOAP-ENV:Envelope>"
    )
    name = f"{person['last_name']} {person['first_name']} ({person['clan_name']})"
    first_right, first_car, last_month = rights[0], fleet[0], salary.salary[0]
    lines = [
        "Scenario: Khan Bank's KYC system checks a new customer through its own security server",
        f"  client {format_id(kyc)}, user {USER_ID}, issue {ISSUE}, data subject {regnum}",
        f"  1. civil registry (REST, SQL adapter): {name}, born {person['birth_date']} in "
        f"{person['birth_aimag']}, lives in {person['full_address']}",
        f"     X-Road id {record.query_id}",
        f"  2. tax office (REST, SQL adapter): taxpayer {taxpayer['tin']} {taxpayer['status']}, "
        f"VAT payer {'yes' if taxpayer['vat_payer'] else 'no'}, arrears {taxpayer['arrears_mnt']} MNT, "
        f"last filed {taxpayer['last_filing_year']}",
        f"     X-Road id {status.query_id}",
        f"  3. civil registry (SOAP, SDK adapter) {SOAP_SERVICE}: civil id {card.civilId}, {card.gender}, "
        f"born {card.birthDate}",
        f"  4. property register (REST, SQL adapter): {len(rights)} right(s), the first "
        f"{first_right['kind']} {first_right['property_number']} of {first_right['area_m2']} m², "
        f"valued {first_right['value_mnt']} MNT",
        f"  5. vehicle register (REST, HTTP adapter in front of the centre's own API): "
        f"{len(fleet)} vehicle(s), the first {first_car['markName']} {first_car['modelName']} "
        f"{first_car['buildYear']}, plate {first_car['plateNumber']}",
        f"  6. social insurance (SOAP, SOAP adapter in front of the office's own service) {SALARY_SERVICE}: "
        f"{'insured' if salary.insured else 'not insured now'}, {salary.months} month(s), the last "
        f"{last_month.year}-{last_month.month:02d} salary {last_month.salaryAmount} MNT "
        f"from {last_month.employerName}",
        f"  7. the address endpoint, not granted to the bank: {denied.code}",
        f"     ({denied.message[:200]})",
        "  answer 1 as the bank received it:",
        *("    " + line for line in json.dumps(person, ensure_ascii=False, indent=2).splitlines()),
        "Auditor: export and verify the evidence of exchange 1 in the bank's message log:",
        "  " + shlex.join(commands[0]),
        "  for f in " + shlex.quote(str(evidence)) + "/*.asice; do "
        + shlex.join(commands[1][:-1]) + ' "$f"; done',
        f"Self-check: the scenario ran; {len(containers)} containers exported and verified "
        f"({', '.join(containers)}).",
        "Try it yourself while the demo serves:",
        "  # REST through Khan Bank's client proxy: a citizen's record",
        "  " + curl_rest(format_rest_service_path(citizens_service) + f"/citizens/{regnum}"),
        "  # SOAP: the XYP-style identity-card service",
        "  curl -s -H 'Content-Type: text/xml; charset=utf-8' --data-binary "
        + shlex.quote(soap_body) + " " + shlex.quote(proxy + "/"),
        "  # REST through the HTTP adapter: the vehicles the citizen owns",
        "  " + curl_rest(format_rest_service_path(vehicle_service) + f"/owners/{regnum}/vehicles"),
        "  # no access right: access_denied",
        "  " + curl_rest(format_rest_service_path(citizens_service) + f"/citizens/{regnum}/address"),
    ]  # fmt: skip
    yield lines
