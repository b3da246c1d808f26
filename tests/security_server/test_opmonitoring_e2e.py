"""Operational monitoring through two nodes: REST and SOAP exchanges (one failing) are recorded on both
sides, and ``getSecurityServerOperationalData`` / ``getSecurityServerHealthData`` answer with X-Road's
shapes, for the owner everything and for another client only its own records (health data: denied)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Final

import pytest
import pytest_asyncio

from tests.security_server.exchange_world import CONSUMER, PROVIDER, SOAP_NS, Federation, federation_in
from tests.security_server.test_node_e2e import OWNERS
from xroad_mn.identifiers import ServiceId
from xroad_mn.wire import opmonitoring as om
from xroad_mn.wire.soap import build_soap_request, parse_soap_message

ADDRESSES: Final = ("127.0.0.20", "127.0.0.21")
GET_CITIZEN: Final = PROVIDER.service("getCitizen", "v1")
OVERRIDES: Final = {"opmon_records_available_offset_seconds": 0, "opmon_sending_interval_seconds": 0.2}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with federation_in(
        tmp_path_factory.mktemp("opmon"), addresses=ADDRESSES, overrides=OVERRIDES
    ) as fed:
        await fed.grant("getCitizen")
        await fed.grant("citizens")
        yield fed


async def _soap(fed: Federation, body: bytes) -> tuple[int, str, bytes]:
    async with fed.session.post(
        f"{fed.client_proxy}/", data=body, headers={"Content-Type": "text/xml; charset=UTF-8"}
    ) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def _exchanges(fed: Federation) -> float:
    start = time.time()
    async with fed.session.get(fed.rest_url("citizens", "/42"), headers=fed.client_header()) as resp:
        assert resp.status == 200
    async with fed.session.get(fed.rest_url("citizens", "/missing"), headers=fed.client_header()) as resp:
        assert resp.status == 404
    ok = f'<c:getCitizen xmlns:c="{SOAP_NS}"><c:regnum>УБ99112233</c:regnum></c:getCitizen>'.encode()
    status, _, _ = await _soap(fed, build_soap_request(CONSUMER, GET_CITIZEN, "q-ok", ok))
    assert status == 200
    bad = f'<c:noSuchService xmlns:c="{SOAP_NS}"/>'.encode()
    unknown = build_soap_request(CONSUMER, PROVIDER.service("noSuchService"), "q-bad", bad)
    status, _, _ = await _soap(fed, unknown)
    assert status == 500
    await asyncio.sleep(1.5)  # written by the 0.2 s flush, and out of the current second
    return start


@pytest.mark.asyncio(loop_scope="module")
async def test_operational_and_health_data_through_two_nodes(federation: Federation) -> None:
    fed = federation
    start = await _exchanges(fed)
    # The consumer node's owner reads its own node's data: every record of the four exchanges.
    request = build_soap_request(
        OWNERS[0], OWNERS[0].service(om.GET_OPERATIONAL_DATA), "opmon-1",
        om.operational_data_request_body(int(start) - 1, int(time.time()) + 3600),
        security_server=OWNERS[0].server(fed.consumer.server_code),
    )  # fmt: skip
    status, content_type, body = await _soap(fed, request)
    assert status == 200, body
    result = om.parse_operational_data_response(content_type, body)
    assert result.next_records_from is not None  # recordsTo was in the future
    client_side = [r for r in result.records if r["securityServerType"] == "Client"
                   and r.get("serviceCode") in ("citizens", "getCitizen", "noSuchService")]  # fmt: skip
    assert result.records_count == len(result.records)
    assert len(client_side) == 4, result.records
    by_code = {(r["serviceCode"], r.get("restPath")): r for r in client_side}
    rest_ok = by_code[("citizens", "/42")]
    assert rest_ok["succeeded"] is True
    assert rest_ok["statusCode"] == 200
    assert rest_ok["restMethod"] == "GET"
    assert rest_ok["clientSubsystemCode"] == CONSUMER.subsystem_code
    times = [int(str(rest_ok[k])) for k in ("requestInTs", "requestOutTs", "responseInTs", "responseOutTs")]
    assert times == sorted(times)
    assert by_code[("citizens", "/missing")]["statusCode"] == 404
    soap_ok = by_code[("getCitizen", None)]
    assert soap_ok["succeeded"] is True
    assert soap_ok["messageId"] == "q-ok"
    assert soap_ok["serviceType"] == "WSDL"
    failed = by_code[("noSuchService", None)]
    assert failed["succeeded"] is False
    assert (
        "unknown_service" in str(failed["faultCode"]).lower()
        or "unknownservice" in str(failed["faultCode"]).lower()
    )
    assert "securityServerInternalIp" in rest_ok

    # The provider node's data, read by the consumer subsystem (not its owner): only its own records, no
    # internal address; its health data is refused.
    request = build_soap_request(
        CONSUMER, OWNERS[1].service(om.GET_OPERATIONAL_DATA), "opmon-2",
        om.operational_data_request_body(int(start) - 1, int(time.time()) - 1),
        security_server=OWNERS[1].server(fed.provider.server_code),
    )  # fmt: skip
    status, content_type, body = await _soap(fed, request)
    assert status == 200, body
    provider_side = om.parse_operational_data_response(content_type, body)
    assert provider_side.records, "the provider node recorded the exchanges"
    assert all(r["securityServerType"] == "Producer" for r in provider_side.records)
    assert all(r["clientSubsystemCode"] == CONSUMER.subsystem_code for r in provider_side.records)
    assert all("securityServerInternalIp" not in r for r in provider_side.records)
    codes = sorted(str(r["serviceCode"]) for r in provider_side.records)
    assert codes == ["citizens", "citizens", "getCitizen", "noSuchService"], codes

    request = build_soap_request(
        CONSUMER, OWNERS[1].service(om.GET_HEALTH_DATA), "opmon-3", om.health_data_request_body(),
        security_server=OWNERS[1].server(fed.provider.server_code),
    )  # fmt: skip
    status, _, body = await _soap(fed, request)
    assert status == 500
    assert b"access_denied" in body.lower() or b"accessdenied" in body.lower(), body

    # The consumer node's owner reads its node's health data: it provides no service, so none are listed.
    request = build_soap_request(
        OWNERS[0], OWNERS[0].service(om.GET_HEALTH_DATA), "opmon-4", om.health_data_request_body(),
        security_server=OWNERS[0].server(fed.consumer.server_code),
    )  # fmt: skip
    status, _, body = await _soap(fed, request)
    assert status == 200, body
    health = om.parse_health_data_response(parse_soap_message(body, require_service=False))
    assert health.period_seconds == 600
    assert all(isinstance(s, ServiceId) for s in health.services)
