"""The operational monitoring messages against X-Road's own requests, and the MONITORING part."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from xroad_mn.errors import XRoadError
from xroad_mn.globalconf.monitoring import parse_monitoring_params
from xroad_mn.identifiers import MemberId, SubsystemId
from xroad_mn.wire import opmonitoring as om
from xroad_mn.wire.soap import build_soap_request, parse_soap_message

DATA: Final = Path(__file__).parent / "data" / "xroad"
OWNER: Final = MemberId("MN", "GOV", "9010001")


def test_x_road_operational_data_request_is_read() -> None:
    message = parse_soap_message((DATA / "soap/op-monitor/operationaldata.request").read_bytes())
    asked = om.parse_operational_data_request(message)
    assert (asked.records_from, asked.records_to, asked.client, asked.output_fields) == (
        1477468193, 1477468205, None, frozenset()
    )  # fmt: skip


def test_x_road_health_data_request_is_read() -> None:
    message = parse_soap_message((DATA / "soap/op-monitor/healthdata.request").read_bytes())
    assert om.parse_health_data_request(message).client == SubsystemId(
        "XTEE-CI-XM", "GOV", "00000001", "System1"
    )


@pytest.mark.parametrize(
    ("name", "client"),
    [
        ("valid-monitoring-params.xml", MemberId("fdev", "GOV", "66655666")),
        ("cs-int-test-monitoring-params_upload.xml", SubsystemId("CS", "TEST", "TEST1", "SUB1")),
        ("empty-monitoring-params.xml", None),
    ],
)
def test_monitoring_params(name: str, client: object) -> None:
    data = (DATA / "globalconf/optional-parts" / name).read_bytes()
    assert parse_monitoring_params(data).monitoring_client == client


def test_invalid_monitoring_params_are_refused() -> None:
    with pytest.raises(XRoadError, match="malformed_global_conf"):
        parse_monitoring_params(
            (DATA / "globalconf/optional-parts/invalid-monitoring-params.xml").read_bytes()
        )


def _request(body: object) -> bytes:
    from lxml import etree

    assert isinstance(body, etree._Element)
    return build_soap_request(OWNER, OWNER.service(om.GET_OPERATIONAL_DATA), "q", body)


@given(st.integers(0, 2**40), st.integers(0, 2**40), st.lists(st.sampled_from(sorted(om.OUTPUT_FIELDS))))
def test_request_round_trip(records_from: int, records_to: int, fields: list[str]) -> None:
    raw = _request(om.operational_data_request_body(records_from, records_to, output_fields=fields))
    message = parse_soap_message(raw)
    if records_to < records_from:
        with pytest.raises(XRoadError, match="invalid_request"):
            om.parse_operational_data_request(message)
        return
    asked = om.parse_operational_data_request(message)
    assert (asked.records_from, asked.records_to, asked.output_fields) == (
        records_from,
        records_to,
        frozenset(fields),
    )


@example("9223372036854775808")  # past a Java long
@example("2200000000000")  # after recordsTo
@example("-0")  # zero, as Java reads it
@example("1_000")  # Python's int() reads it; Java does not
@given(st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Cc", "Cs")), max_size=30))
def test_garbage_times_are_invalid_request(text: str) -> None:
    records_to = 2**41
    body = om.operational_data_request_body(1, records_to)
    body[0][0].text = text
    message = parse_soap_message(_request(body))
    # Valid: what Java's Long.parseLong reads, not negative and no later than recordsTo (a larger one is out
    # of order, or past a long).
    if re.fullmatch(r"[+-]?[0-9]+", text.strip()) and 0 <= int(text) <= records_to:
        assert om.parse_operational_data_request(message).records_from == int(text)
    else:
        with pytest.raises(XRoadError, match="invalid_request"):
            om.parse_operational_data_request(message)


def test_unknown_output_field_is_refused() -> None:
    message = parse_soap_message(_request(om.operational_data_request_body(1, 2, output_fields=["nope"])))
    with pytest.raises(XRoadError, match="Unknown output field"):
        om.parse_operational_data_request(message)


def test_health_statistics() -> None:
    service = OWNER.subsystem("reg").service("get", "v1")

    def record(start: int, ok: bool) -> om.OpRecord:
        return om.OpRecord(
            om.PRODUCER, start, response_out_ts=start + 10, succeeded=ok, request_size=100, response_size=200,
            service_xroad_instance="MN", service_member_class="GOV", service_member_code="9010001",
            service_subsystem_code="reg", service_code="get", service_version="v1",
        )  # fmt: skip

    events = om.service_events(
        [record(1_000_000, True), record(1_000_100, False), record(100, True)],
        now_ms=1_000_200,
        period_seconds=1,
    )
    assert len(events) == 1
    e = events[0]
    assert e.service == service
    assert (e.last_successful_ms, e.last_unsuccessful_ms) == (1_000_010, 1_000_110)
    assert (e.statistics.successful, e.statistics.unsuccessful) == (1, 1)
    assert e.statistics.request_duration == (10, 10.0, 10, 0.0)
    request = parse_soap_message(build_soap_request(OWNER, OWNER.service(om.GET_HEALTH_DATA), "h",
                                                    om.health_data_request_body()))  # fmt: skip
    answer = om.build_health_data_response(request, startup_ms=5, period_seconds=1, services=events)
    parsed = om.parse_health_data_response(parse_soap_message(answer, require_service=False))
    assert parsed.services[service]["successfulRequestCount"] == "1"
    assert parsed.services[service]["requestMaxDuration"] == "10"
