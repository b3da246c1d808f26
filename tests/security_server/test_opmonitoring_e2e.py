"""Operational monitoring through two nodes: REST and SOAP exchanges (one failing) are recorded on both
sides, and ``getSecurityServerOperationalData`` / ``getSecurityServerHealthData`` answer with X-Road's
shapes, for the owner everything and for another client only its own records (health data: denied).
Each node's ``/metrics`` counts the same exchanges by side, service and status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Final

import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from security_server.api.call import EXCHANGE_KEY, STORE_KEY
from security_server.messagelog import Timestamper
from tests.security_server.exchange_world import CONSUMER, PROVIDER, SOAP_NS, Federation, federation_in
from tests.security_server.test_node_e2e import OWNERS, Node
from xroad_mn.identifiers import ServiceId, format_id
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


# -- /metrics ------------------------------------------------------------------------------------------------

Counts = dict[tuple[str, str, str], float]


async def _scrape(fed: Federation, node: Node, path: str = "/metrics") -> list[Sample]:
    """``GET /metrics`` of ``node`` with a new observer key from ``node apikey create`` (any role reads),
    parsed by Prometheus' parser."""
    key = await node.cli("apikey", "create", "--role", "xroad-securityserver-observer")
    url = fed.running[node.server_code].admin_url + path
    headers = {"Authorization": f"X-Road-ApiKey token={key['api_key']}"}
    async with fed.session.get(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def _exchange_counts(samples: list[Sample]) -> Counts:
    return {
        (s.labels["side"], s.labels["service"], s.labels["status"]): s.value
        for s in samples
        if s.name == "xroad_exchanges_total"
    }


def _delta(after: Counts, before: Counts) -> Counts:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def _one(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and s.labels.items() >= labels.items()]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def _check_histograms(samples: list[Sample]) -> None:
    """Every latency histogram: cumulative buckets up to +Inf, which equals ``_count`` and the counter."""
    counts = _exchange_counts(samples)
    assert counts
    for (side, service, status), count in counts.items():
        labels = {"side": side, "service": service, "status": status}
        buckets = [
            s
            for s in samples
            if s.name == "xroad_exchange_duration_seconds_bucket" and s.labels.items() >= labels.items()
        ]
        values = [b.value for b in buckets]
        assert values == sorted(values), buckets
        assert buckets[-1].labels["le"] == "+Inf"
        assert values[-1] == count
        assert _one(samples, "xroad_exchange_duration_seconds_count", **labels) == count
        assert 0 <= _one(samples, "xroad_exchange_duration_seconds_sum", **labels) < 60 * count


@pytest.mark.asyncio(loop_scope="module")
async def test_metrics_count_the_exchanges_on_both_nodes(federation: Federation) -> None:
    fed = federation
    nodes = (fed.consumer, fed.provider)
    apps = [fed.running[node.server_code].app for node in nodes]
    for app in apps:  # what earlier tests left in the buffers is counted before
        await app[EXCHANGE_KEY].node.opmon.flush()
    before = [_exchange_counts(await _scrape(fed, node)) for node in nodes]
    await _exchanges(fed)
    for app in apps:
        await app[EXCHANGE_KEY].node.opmon.flush()
    citizens, get_citizen = format_id(PROVIDER.service("citizens")), format_id(GET_CITIZEN)
    unknown = format_id(PROVIDER.service("noSuchService"))
    for node, app, side, earlier in zip(nodes, apps, ("client", "producer"), before, strict=True):
        # Stamp what the exchanges logged now (the interval is global configuration's).
        timestamper = app[EXCHANGE_KEY].node.message_log.timestamper
        assert isinstance(timestamper, Timestamper)
        await timestamper.timestamp_now()
        samples = await _scrape(fed, node)
        assert _delta(_exchange_counts(samples), earlier) == {
            (side, citizens, "success"): 2,  # 200 and 404: the provider answered both
            (side, get_citizen, "success"): 1,
            (side, unknown, "failure"): 1,
        }, node.server_code
        _check_histograms(samples)
        # The message log: nothing waits for a time-stamp, the newest is seconds old; archived at start.
        assert _one(samples, "xroad_messagelog_unstamped_records") == 0
        assert 0 <= _one(samples, "xroad_messagelog_last_timestamp_age_seconds") < 30
        archive_age = _one(samples, "xroad_messagelog_last_archived_age_seconds")
        assert 0 <= archive_age < fed.running[node.server_code].settings.archive_interval_seconds + 30
        # Global configuration: usable, downloaded (every second here) just now, expiring in the future.
        now = time.time()
        assert _one(samples, "xroad_globalconf_valid") == 1
        assert 0 <= _one(samples, "xroad_globalconf_age_seconds") < 15
        assert _one(samples, "xroad_globalconf_expiry_timestamp_seconds") > now
        # The node's auth and sign certificates: their notAfter, a good OCSP response fetched before now.
        certs = await app[STORE_KEY].list_certificates()
        assert len(certs) == 2
        for cert in certs:
            labels = {"key_id": cert.key_id}
            expiry = _one(samples, "xroad_certificate_not_after_timestamp_seconds", **labels)
            assert expiry == cert.certificate.not_valid_after_utc.timestamp()
            assert expiry > now
            assert _one(samples, "xroad_certificate_ocsp_good", **labels) == 1
            assert _one(samples, "xroad_certificate_ocsp_this_update_timestamp_seconds", **labels) <= now
        usages = sorted(s.labels["usage"] for s in samples if s.name == "xroad_certificate_ocsp_good")
        assert usages == ["auth", "sign"]
        assert _one(samples, "xroad_opmonitoring_buffer_dropped_total") == 0
    # The same at the API's path; without a key nothing.
    assert _exchange_counts(await _scrape(fed, fed.consumer, "/api/v1/metrics"))
    for path in ("/metrics", "/api/v1/metrics"):
        async with fed.session.get(fed.running[fed.consumer.server_code].admin_url + path) as resp:
            assert resp.status == 401
            assert resp.headers["X-Road-Error"].endswith("unauthorized")
