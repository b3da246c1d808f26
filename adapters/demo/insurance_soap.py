"""The General Office for Social Insurance's own SOAP service, as it ran before X-Road: the upstream of the
demo's SOAP ready adapter.

A plain SOAP 1.1 document/literal service over the social insurance database (:mod:`adapters.demo.registries`,
tables ``contributions`` and ``employers``), with its own names and its own header — it knows nothing of
X-Road. The SOAP ready adapter (``configs/demo/adapters/social-insurance.toml``) publishes its one operation
as the X-Road service ``getCitizenSalaryInfo`` (XYP WS100501 salary info-style), renaming the body element
both ways and writing X-Road's client and user id into this service's header:

* request ``{NAMESPACE}GetInsuredSalaries``: ``regnum`` and optionally ``months`` (1-60, default 12);
  header ``{AUTH_NAMESPACE}callerSystem`` (required) and ``{AUTH_NAMESPACE}operator``;
* response ``{NAMESPACE}GetInsuredSalariesResponse``: ``regnum``, ``insured`` (any contribution paid in the
  last three months), ``months``, then one ``salary`` per month paid, newest first (``year``, ``month``,
  ``employerRegNumber``, ``employerName``, ``salaryAmount``, ``employeeContribution``,
  ``employerContribution``, ``paidDate``);
* a bad request is a ``soapenv:Client`` fault, anything else a ``soapenv:Server`` fault, as SOAP 1.1 says.
"""

from __future__ import annotations

import re
from typing import Final

import structlog
from aiohttp import web
from lxml import etree
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.demo.registries import contributions, employers
from xroad_mn import xmlsafe
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.wire.faults import SOAP_ENV_NS

__all__ = ["AUTH_NAMESPACE", "MAX_REQUEST_BYTES", "NAMESPACE", "OPERATION", "PATH", "insurance_service"]

log = structlog.get_logger(__name__)

NAMESPACE: Final = "http://ndaatgal.gov.mn/insurance/v1"
AUTH_NAMESPACE: Final = "http://ndaatgal.gov.mn/auth"
OPERATION: Final = "GetInsuredSalaries"
PATH: Final = "/ndaatgal/InsuranceService"
DEFAULT_MONTHS: Final = 12
MAX_MONTHS: Final = 60
MAX_REQUEST_BYTES: Final = 64 * 1024
INSURED_MONTHS: Final = 3
"""Insured means a contribution was paid for one of the last three months on record."""
_REGNUM: Final = re.compile(r"^[А-ЯӨҮ]{2}[0-9]{8}$")


def _fault(code: str, message: str) -> web.Response:
    envelope = etree.Element(f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"soapenv": SOAP_ENV_NS})
    fault = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Body"), f"{{{SOAP_ENV_NS}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soapenv:{code}"
    etree.SubElement(fault, "faultstring").text = message
    body = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    return web.Response(status=500, body=body, content_type="text/xml", charset="utf-8")


def _request(data: bytes) -> tuple[str, int, str, str | None]:
    """The registration number, months, calling system and operator of a request (a Client fault if
    malformed)."""
    try:
        root = xmlsafe.parse(
            data, code=FaultCode.INVALID_XML, what="the request", max_bytes=MAX_REQUEST_BYTES
        )
    except XRoadError as e:
        raise XRoadError(FaultCode.BAD_REQUEST, e.message) from e
    header = f"{{{SOAP_ENV_NS}}}Header/{{{AUTH_NAMESPACE}}}"
    caller = (root.findtext(f"{header}callerSystem") or "").strip()
    operator = root.findtext(f"{header}operator")
    if not caller:
        raise XRoadError(FaultCode.BAD_REQUEST, "the header must name the calling system (auth:callerSystem)")
    operation = root.find(f"{{{SOAP_ENV_NS}}}Body/{{{NAMESPACE}}}{OPERATION}")
    if operation is None:
        raise XRoadError(FaultCode.BAD_REQUEST, f"this service has one operation, {OPERATION}")
    regnum = (operation.findtext(f"{{{NAMESPACE}}}regnum") or "").strip()
    if not _REGNUM.match(regnum):
        raise XRoadError(FaultCode.BAD_REQUEST, "regnum is two Cyrillic letters and eight digits")
    months_text = operation.findtext(f"{{{NAMESPACE}}}months")
    months = DEFAULT_MONTHS
    if months_text is not None:
        if not months_text.strip().isascii() or not months_text.strip().isdigit():
            raise XRoadError(FaultCode.BAD_REQUEST, "months is a whole number")
        months = int(months_text.strip())
        if not 1 <= months <= MAX_MONTHS:
            raise XRoadError(FaultCode.BAD_REQUEST, f"months is between 1 and {MAX_MONTHS}")
    return regnum, months, caller, operator


def insurance_service(engine: AsyncEngine) -> web.Application:
    """The office's SOAP service over the social insurance database ``engine`` reads (its owner disposes
    of it), at :data:`PATH`."""

    async def handle(request: web.Request) -> web.Response:
        try:
            regnum, months, caller, operator = _request(await request.read())
        except web.HTTPRequestEntityTooLarge:
            return _fault("Client", f"the request is larger than {MAX_REQUEST_BYTES} bytes")
        except XRoadError as e:  # a malformed request is the caller's fault
            return _fault("Client", e.message)
        log.info("insurance_call", caller=caller, operator=operator)
        query = (
            select(contributions, employers.c.name)
            .join(employers, employers.c.reg_number == contributions.c.employer_reg_number)
            .where(contributions.c.regnum == regnum)
            .order_by(contributions.c.year.desc(), contributions.c.month.desc())
            .limit(months)
        )
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(query)).mappings().all()
                latest = (
                    await conn.execute(
                        select(contributions.c.year, contributions.c.month)
                        .order_by(contributions.c.year.desc(), contributions.c.month.desc())
                        .limit(1)
                    )
                ).first()
        except Exception:  # the register's own failure: a Server fault, never a stack trace
            log.exception("insurance_query_failed")
            return _fault("Server", "the social insurance register cannot answer now")
        recent: set[tuple[int, int]] = set()
        if latest is not None:
            for back in range(INSURED_MONTHS):
                year, month = divmod(latest.year * 12 + latest.month - 1 - back, 12)
                recent.add((year, month + 1))
        ns = f"{{{NAMESPACE}}}"
        envelope = etree.Element(
            f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"soapenv": SOAP_ENV_NS, "ins": NAMESPACE}
        )
        body = etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Body")
        answer = etree.SubElement(body, f"{ns}{OPERATION}Response")
        etree.SubElement(answer, f"{ns}regnum").text = regnum
        insured = any((r["year"], r["month"]) in recent for r in rows)
        etree.SubElement(answer, f"{ns}insured").text = "true" if insured else "false"
        etree.SubElement(answer, f"{ns}months").text = str(len(rows))
        for r in rows:
            salary = etree.SubElement(answer, f"{ns}salary")
            for name, value in (
                ("year", r["year"]),
                ("month", r["month"]),
                ("employerRegNumber", r["employer_reg_number"]),
                ("employerName", r["name"]),
                ("salaryAmount", r["salary_mnt"]),
                ("employeeContribution", r["employee_mnt"]),
                ("employerContribution", r["employer_mnt"]),
                ("paidDate", r["paid_on"].isoformat()),
            ):
                etree.SubElement(salary, f"{ns}{name}").text = str(value)
        data = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        return web.Response(body=data, content_type="text/xml", charset="utf-8")

    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app.router.add_post(PATH, handle)
    return app
