"""The SOAP adapter in front of a real legacy SOAP service on loopback: the X-Road header rewritten (never
forwarded, context fields mapped), operations renamed both ways, the legacy service's faults passed back,
and the adapter's own failures as X-Road faults. Its WSDL is read by the node's own WSDL reader, its schema
compiled by lxml and the whole loaded by zeep, which calls through it; without a namespace it has none."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from lxml import etree

from adapters.ready.config import load_ready_adapter
from security_server.servicedesc import DescriptionLoader
from tests.adapters.sdk_sample import served_app
from tests.xroad_xsd import VendoredSchemas, xroad_soap_headers, zeep_client
from xroad_mn.errors import XRoadError
from xroad_mn.identifiers import MemberId, to_xml
from xroad_mn.wire.faults import parse_soap_fault
from xroad_mn.wire.soap import XROAD_NS, build_soap_request, parse_soap_message

LEGACY_NS: Final = "urn:legacy:citizen"
AUTH_NS: Final = "urn:legacy:auth"
SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
CLIENT: Final = MemberId("MN", "COM", "9011223").subsystem("kyc")
CODE: Final = "WS100101_getCitizenIDCardInfo"
SERVICE: Final = MemberId("MN", "GOV", "5012345").subsystem("civil-registry").service(CODE, "v1")
CONFIG: Final = """
kind = "soap"
title = "Citizen ID cards"
upstream = "{upstream}/CitizenService"
timeout_seconds = 2

[[operations]]
service_code = "WS100101_getCitizenIDCardInfo"
upstream_element = "getCitizenIDCardInfo"
soap_action = "urn:getCitizenIDCardInfo"

[context]
user_id = "{{urn:legacy:auth}}operator"
client = "{{urn:legacy:auth}}callerSystem"
"""
# Codes a node takes (X-Road's strict identifier checks refuse "_"); the second is the first one renamed.
DESCRIBED_CONFIG: Final = """
kind = "soap"
title = "Citizen ID cards"
upstream = "{upstream}/CitizenService"
timeout_seconds = 2
namespace = "urn:legacy:citizen"
path = "/CitizenService"
{server_url}

[[operations]]
service_code = "getCitizenIDCardInfo"
version = "v1"
title = "A citizen's ID card"

[[operations]]
service_code = "getCitizenCard"
upstream_element = "getCitizenIDCardInfo"
"""
WSDL_NS: Final = {
    "w": "http://schemas.xmlsoap.org/wsdl/",
    "s": "http://schemas.xmlsoap.org/wsdl/soap/",
    "x": "http://www.w3.org/2001/XMLSchema",
    "xrd": XROAD_NS,
}


@dataclass
class Legacy:
    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)


def legacy_app(state: Legacy) -> web.Application:
    async def service(request: web.Request) -> web.Response:
        body = await request.read()
        state.seen.append({"headers": dict(request.headers), "body": body})
        root = etree.fromstring(body)
        regnum = root.findtext(f".//{{{LEGACY_NS}}}regnum")
        if regnum == "fault":
            fault = (
                f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><s:Fault><faultcode>s:Server</faultcode>'
                "<faultstring>legacy lookup failed</faultstring></s:Fault></s:Body></s:Envelope>"
            )
            return web.Response(status=500, text=fault, content_type="text/xml")
        answer = (
            f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><l:getCitizenIDCardInfoResponse xmlns:l="{LEGACY_NS}">'
            f"<l:regnum>{regnum}</l:regnum><l:cardNumber>MN-778812</l:cardNumber>"
            "</l:getCitizenIDCardInfoResponse></s:Body></s:Envelope>"
        )
        return web.Response(text=answer, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/CitizenService", service)
    return app


@pytest_asyncio.fixture
async def legacy() -> AsyncIterator[Legacy]:
    state = Legacy()
    async with served_app(legacy_app(state)) as url:
        state.url = url
        yield state


@pytest_asyncio.fixture
async def base(legacy: Legacy, tmp_path: Path) -> AsyncIterator[str]:
    path = tmp_path / "cards.toml"
    path.write_text(CONFIG.format(upstream=legacy.url), encoding="utf-8")
    async with served_app(load_ready_adapter(path, env={}).create_app()) as url:
        yield url


def request_for(regnum: str, code: str = CODE) -> bytes:
    body = f'<c:{code} xmlns:c="{LEGACY_NS}"><c:regnum>{regnum}</c:regnum></c:{code}>'.encode()
    service = SERVICE.client.service(code, "v1")
    return build_soap_request(CLIENT, service, "MN-q1", body, user_id="MN-officer-7")


async def post(url: str, data: bytes) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers={"Content-Type": "text/xml; charset=utf-8"}) as resp,
    ):
        return resp.status, await resp.read()


async def test_the_legacy_service_gets_its_own_header_and_the_answer_is_an_xroad_response(
    base: str, legacy: Legacy
) -> None:
    request = request_for("УБ99112233")
    status, answer = await post(f"{base}/", request)
    assert status == 200, answer
    seen = legacy.seen[-1]
    assert seen["headers"]["SOAPAction"] == '"urn:getCitizenIDCardInfo"'
    sent = etree.fromstring(seen["body"])
    assert sent.find(f".//{{{XROAD_NS}}}client") is None  # X-Road's header never reaches the legacy service
    assert XROAD_NS.encode() not in seen["body"]
    assert sent.findtext(f"{{{SOAP_ENV}}}Header/{{{AUTH_NS}}}operator") == "MN-officer-7"
    assert sent.findtext(f"{{{SOAP_ENV}}}Header/{{{AUTH_NS}}}callerSystem") == str(CLIENT)
    assert sent.find(f"{{{SOAP_ENV}}}Body/{{{LEGACY_NS}}}getCitizenIDCardInfo") is not None
    response = parse_soap_message(answer, expect="response")
    assert response.x_road_header == parse_soap_message(request).x_road_header
    assert response.body_element == f"{CODE}Response"
    assert etree.fromstring(answer).findtext(f".//{{{LEGACY_NS}}}cardNumber") == "MN-778812"


async def test_legacy_faults_pass_back_and_adapter_failures_are_xroad_faults(
    base: str, legacy: Legacy, tmp_path: Path
) -> None:
    status, answer = await post(f"{base}/", request_for("fault"))
    assert status == 500
    assert parse_soap_fault(answer).message == "legacy lookup failed"
    calls = len(legacy.seen)
    status, answer = await post(f"{base}/", request_for("x", code="getEverything"))
    assert (status, parse_soap_fault(answer).code) == (500, "client.unknown_service")
    status, answer = await post(f"{base}/", request_for("x").replace(b"<xrd:id>MN-q1</xrd:id>", b""))
    assert parse_soap_fault(answer).code == "client.missing_header_field"
    status, answer = await post(f"{base}/", b'<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>')
    assert parse_soap_fault(answer).code == "client.invalid_soap"
    assert len(legacy.seen) == calls
    path = tmp_path / "gone.toml"
    path.write_text(CONFIG.format(upstream="http://127.0.0.1:9"), encoding="utf-8")
    async with served_app(load_ready_adapter(path, env={}).create_app()) as gone:
        status, answer = await post(f"{gone}/", request_for("x"))
    assert (status, parse_soap_fault(answer).code) == (500, "server.network_error")


# -- the WSDL -----------------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def described(legacy: Legacy, tmp_path: Path) -> AsyncIterator[str]:
    """An adapter with a namespace whose server_url is not its own loopback address."""
    path = tmp_path / "described.toml"
    server_url = 'server_url = "http://adapter.example.mn:8093/"'
    path.write_text(DESCRIBED_CONFIG.format(upstream=legacy.url, server_url=server_url), encoding="utf-8")
    async with served_app(load_ready_adapter(path, env={}).create_app()) as url:
        yield url


async def get(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def test_the_wsdl_names_the_mapped_operations_as_the_node_reads_them(described: str) -> None:
    status, headers, wsdl = await get(f"{described}/wsdl")
    assert status == 200, wsdl
    assert headers["Content-Type"].startswith("text/xml")
    root = etree.fromstring(wsdl)
    assert root.get("targetNamespace") == LEGACY_NS
    binding = {o.get("name"): o for o in root.iterfind("w:binding/w:operation", WSDL_NS)}
    assert list(binding) == ["getCitizenIDCardInfo", "getCitizenCard"]
    assert binding["getCitizenIDCardInfo"].findtext("xrd:version", namespaces=WSDL_NS) == "v1"
    assert binding["getCitizenCard"].find("xrd:version", WSDL_NS) is None
    assert len(binding["getCitizenCard"].findall("w:output/s:header", WSDL_NS)) == 6
    for name in ("getCitizenCard", "getCitizenCardResponse"):  # the messages are forwarded unread
        element = root.find(f"w:types/x:schema/x:element[@name='{name}']", WSDL_NS)
        assert element is not None
        (any_,) = element.findall("x:complexType/x:sequence/*", WSDL_NS)
        assert (any_.tag, any_.get("processContents"), any_.get("maxOccurs")) == (
            f"{{{WSDL_NS['x']}}}any",
            "lax",
            "unbounded",
        )
    location = "http://adapter.example.mn:8093/CitizenService"
    assert root.find("w:service/w:port/s:address", WSDL_NS).get("location") == location  # type: ignore[union-attr]
    # the node fetches and reads it as X-Road does
    async with aiohttp.ClientSession() as session:
        parsed = await DescriptionLoader(session).wsdl(f"{described}/wsdl")
    assert [(s.code, s.version, s.url, s.title) for s in parsed.services] == [
        ("getCitizenIDCardInfo", "v1", location, "A citizen's ID card"),
        ("getCitizenCard", None, location, None),
    ]


async def test_the_wsdls_schema_compiles_and_takes_the_legacy_messages(described: str) -> None:
    _, _, wsdl = await get(f"{described}/wsdl")
    schema_element = etree.fromstring(wsdl).find("w:types/x:schema", WSDL_NS)
    assert schema_element is not None
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(VendoredSchemas())
    schema = etree.XMLSchema(etree.fromstring(etree.tostring(schema_element), parser))
    body = f'<c:getCitizenCard xmlns:c="{LEGACY_NS}"><c:regnum>УБ99112233</c:regnum></c:getCitizenCard>'
    schema.assertValid(etree.fromstring(body))
    schema.assertValid(etree.fromstring(f'<c:getCitizenCardResponse xmlns:c="{LEGACY_NS}"/>'))
    assert not schema.validate(etree.fromstring(f'<c:getEverything xmlns:c="{LEGACY_NS}"/>'))
    schema.assertValid(to_xml(SERVICE, f"{{{XROAD_NS}}}service"))  # X-Road's header schema was imported


async def test_zeep_loads_the_wsdl_and_calls_through_it_at_the_address_it_was_fetched_by(
    legacy: Legacy, tmp_path: Path
) -> None:
    path = tmp_path / "own-address.toml"
    path.write_text(DESCRIBED_CONFIG.format(upstream=legacy.url, server_url=""), encoding="utf-8")
    query_id = "MN-q7"
    service = SERVICE.client.service("getCitizenCard", None)
    header = xroad_soap_headers(CLIENT, service, query_id, "MN-officer-7")
    regnum = etree.Element(f"{{{LEGACY_NS}}}regnum")
    regnum.text = "УБ99112233"

    def zeep_call(url: str) -> tuple[str, list[str], Any]:
        client = zeep_client(url)
        port = client.wsdl.services["citizenIdCardsService"].ports["citizenIdCardsPort"]
        answer = client.service.getCitizenCard(_value_1=[regnum], _soapheaders=header)
        return port.binding_options["address"], sorted(port.binding.all()), answer

    async with served_app(load_ready_adapter(path, env={}).create_app()) as base:
        address, operations, answer = await asyncio.to_thread(zeep_call, f"{base}/wsdl")
    assert address == f"{base}/CitizenService"
    assert operations == ["getCitizenCard", "getCitizenIDCardInfo"]
    sent = etree.fromstring(legacy.seen[-1]["body"])
    assert sent.findtext(f"{{{SOAP_ENV}}}Body/{{{LEGACY_NS}}}getCitizenIDCardInfo/{{{LEGACY_NS}}}regnum") == (
        "УБ99112233"
    )
    assert answer.header["id"] == query_id
    card = {etree.QName(e).localname: e.text for e in answer.body["_value_1"]}
    assert card == {"regnum": "УБ99112233", "cardNumber": "MN-778812"}


async def test_without_a_namespace_there_is_no_wsdl(base: str) -> None:
    status, headers, body = await get(f"{base}/wsdl")
    assert (status, headers["X-Road-Error"]) == (404, "client.not_found")
    assert "sets no namespace" in json.loads(body)["message"]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(XRoadError) as raised:
            await DescriptionLoader(session).wsdl(f"{base}/wsdl")
    assert raised.value.has_code("wsdl_download_failed")
    status, answer = await post(f"{base}/", request_for("УБ99112233"))  # calls are served as before
    assert status == 200, answer


@pytest.mark.parametrize(
    ("setting", "bad", "word"),
    [
        ('service_code = "getCitizenCard"', 'service_code = "getCitizenIDCardInfo"', "twice"),
        (
            'service_code = "getCitizenCard"',
            'service_code = "getCitizenIDCardInfoResponse"',
            "is the name of the response of 'getCitizenIDCardInfo'",
        ),
        ('version = "v1"', 'version = "v 1"', "version"),
        ('title = "A citizen\'s ID card"', 'title = "two\\nlines"', "title"),
        ('namespace = "urn:legacy:citizen"', 'namespace = "urn:<legacy>"', "namespace"),
    ],
)
def test_settings_a_wsdl_cannot_carry_are_refused_at_load(
    tmp_path: Path, setting: str, bad: str, word: str
) -> None:
    config = DESCRIBED_CONFIG.format(upstream="http://127.0.0.1:9", server_url="")
    assert setting in config
    path = tmp_path / "bad.toml"
    path.write_text(config.replace(setting, bad), encoding="utf-8")
    with pytest.raises(XRoadError) as raised:
        load_ready_adapter(path, env={})
    assert raised.value.has_code("invalid_settings")
    assert word in str(raised.value)
