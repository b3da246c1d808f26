"""adapters.demo.xyp: the civil registry's XYP-style SOAP service over the demo's state registration database,
served by the SDK: the answer from the database, the WSDL as the node reads it, and bad input or an unknown
citizen answered with SOAP faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import aiohttp
import pytest
from lxml import etree
from sqlalchemy import select

from adapters.demo.registries import build_demo_registries, citizens, registry_urls
from adapters.demo.xyp import NAMESPACE, OPERATION, xyp_adapter
from adapters.sdk import create_app
from security_server.servicedesc import parse_wsdl
from tests.adapters.sdk_sample import served_app
from xroad_mn.database import create_engine
from xroad_mn.identifiers import MemberId
from xroad_mn.wire.soap import build_soap_request, parse_soap_message, soap_body

CLIENT: Final = MemberId("MN", "COM", "2012345").subsystem("kyc")
SERVICE: Final = MemberId("MN", "GOV", "9010001").subsystem("civil-registry").service(OPERATION, "v1")


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("registries")
    asyncio.run(build_demo_registries(directory))
    return directory


@pytest.fixture
async def base(databases: Path) -> AsyncIterator[str]:
    engine = create_engine(registry_urls(databases)["state_registration"])
    try:
        async with served_app(create_app(xyp_adapter(engine, server_url="http://xyp.example.mn"))) as url:
            yield url
    finally:
        await engine.dispose()


async def _call(base: str, regnum: str) -> tuple[int, etree._Element, bool]:
    body = f'<c:{OPERATION} xmlns:c="{NAMESPACE}"><c:regnum>{regnum}</c:regnum></c:{OPERATION}>'.encode()
    request = build_soap_request(CLIENT, SERVICE, "q-1", body, user_id="MN-khanbank-officer-17")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/soap", data=request, headers={"Content-Type": "text/xml"}) as resp,
    ):
        status, data = resp.status, await resp.read()
    message = parse_soap_message(data, content_type="text/xml")
    return status, soap_body(message), message.is_fault


async def test_the_card_comes_from_the_database(base: str, databases: Path) -> None:
    engine = create_engine(registry_urls(databases)["state_registration"])
    async with engine.connect() as conn:
        row = (await conn.execute(select(citizens).order_by(citizens.c.regnum).limit(1))).mappings().one()
    await engine.dispose()
    status, answer, fault = await _call(base, row["regnum"])
    assert (status, fault) == (200, False)
    assert etree.QName(answer).localname == f"{OPERATION}Response"
    ns = {"c": NAMESPACE}
    assert answer.findtext("c:civilId", namespaces=ns) == row["civil_id"]
    assert answer.findtext("c:surname", namespaces=ns) == row["clan_name"]
    assert answer.findtext("c:firstname", namespaces=ns) == row["first_name"]
    assert answer.findtext("c:birthDate", namespaces=ns) == row["birth_date"].isoformat()
    assert answer.findtext("c:fullAddress", namespaces=ns)


@pytest.mark.parametrize(
    ("regnum", "fault"),
    [
        ("ЯЯ99999999", "not_found"),  # well formed, nobody has it
        ("' OR 1=1 --", "bad_request"),  # not a registration number
        ("УБ" + "9" * 500, "bad_request"),  # oversized
    ],
)
async def test_bad_or_unknown_numbers_are_soap_faults(base: str, regnum: str, fault: str) -> None:
    status, answer, is_fault = await _call(base, regnum)
    assert is_fault
    assert status == 500
    assert fault in (answer.findtext("faultcode") or "")


async def test_the_wsdl_names_the_operation_as_the_node_reads_it(base: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/wsdl") as resp:
        wsdl = await resp.read()
    parsed = parse_wsdl(wsdl, source_url=f"{base}/wsdl")
    assert [(s.code, s.version, s.url) for s in parsed.services] == [
        (OPERATION, "v1", "http://xyp.example.mn/soap")
    ]
