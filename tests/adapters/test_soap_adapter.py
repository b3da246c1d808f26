"""The SOAP adapter in front of a real legacy SOAP service on loopback: the X-Road header rewritten (never
forwarded, context fields mapped), operations renamed both ways, the legacy service's faults passed back,
and the adapter's own failures as X-Road faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest_asyncio
from aiohttp import web
from lxml import etree

from adapters.ready.config import load_ready_adapter
from tests.adapters.sdk_sample import served_app
from xroad_mn.identifiers import MemberId
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
