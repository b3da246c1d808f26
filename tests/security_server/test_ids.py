"""Identifiers as people write them to the node, and where the admin API listens by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from security_server.ids import (
    STRICT_SETTING,
    format_for_people,
    format_subject,
    parse_client_id,
    parse_member_id,
    parse_service_id,
    parse_subject,
    parse_subsystem_id,
    strict_checked,
    strict_only,
)
from security_server.settings import NodeSettings
from xroad_mn.errors import ErrorKind, XRoadError
from xroad_mn.identifiers import GlobalGroupId, LocalGroupId, MemberId
from xroad_mn.wire.faults import http_status_of

OWNER = MemberId("MN", "GOV", "9010001")


def test_both_forms_are_read() -> None:
    assert parse_member_id("MN:GOV:9010001") == parse_member_id("MEMBER:MN/GOV/9010001") == OWNER
    sub = OWNER.subsystem("civil")
    assert (
        parse_subsystem_id("MN:GOV:9010001:civil") == parse_client_id("SUBSYSTEM:MN/GOV/9010001/civil") == sub
    )
    assert parse_subject("GLOBALGROUP:MN/owners") == GlobalGroupId("MN", "owners")
    assert parse_subject("LOCALGROUP:auditors") == LocalGroupId("auditors")
    assert parse_subject("MN:GOV:9010001:civil") == sub
    assert parse_service_id("SERVICE:MN/GOV/9010001/civil/people").service_code == "people"
    assert format_for_people(sub) == "MN:GOV:9010001:civil"
    assert format_subject(LocalGroupId("auditors")) == "LOCALGROUP:auditors"


@pytest.mark.parametrize(
    ("parse", "text", "code"),
    [
        (parse_member_id, "MN:GOV:9010001:civil", "invalid_client_identifier"),
        (parse_subsystem_id, "MEMBER:MN/GOV/9010001", "invalid_client_identifier"),
        (parse_client_id, "GLOBALGROUP:MN/owners", "invalid_client_identifier"),
        (parse_client_id, "MN/GOV", "invalid_client_identifier"),
        (parse_subject, "SERVER:MN/GOV/9010001/ss1", "invalid_identifier"),
        (parse_service_id, "MN:GOV:9010001:civil", "invalid_service_identifier"),
    ],
)
def test_wrong_identifiers_name_the_accepted_forms(parse: object, text: str, code: str) -> None:
    with pytest.raises(XRoadError) as e:
        parse(text)  # type: ignore[operator]
    assert (e.value.code, http_status_of(e.value)) == (code, 400)
    assert "write" in e.value.message
    assert "accepted_forms" in e.value.details


XYP = "SERVICE:MN/GOV/9010001/xyp/WS100101_getCitizenIDCardInfo"


def test_strict_mode_is_the_default_and_its_refusals_name_the_setting() -> None:
    assert parse_service_id(XYP, strict=False).service_code == "WS100101_getCitizenIDCardInfo"
    assert parse_subject("LOCALGROUP:kyc_officers", strict=False) == LocalGroupId("kyc_officers")
    for parse, text, code in (
        (parse_service_id, XYP, "invalid_service_identifier"),
        (parse_client_id, "MN:GOV:9010001:xyp_gateway", "invalid_client_identifier"),
        (parse_subject, "LOCALGROUP:kyc_officers", "invalid_identifier"),
    ):
        with pytest.raises(XRoadError) as e:
            parse(text)
        assert (e.value.code, http_status_of(e.value)) == (code, 400)
        assert e.value.message.endswith("in strict mode) (node setting strict_identifier_checks = true)")
        assert e.value.details["setting"] == STRICT_SETTING == "strict_identifier_checks"
        assert strict_only(e.value)


def test_what_no_mode_allows_is_refused_without_naming_the_setting() -> None:
    for strict in (True, False):
        with pytest.raises(XRoadError) as e:
            parse_service_id("SERVICE:MN/GOV/9010001/xyp/WS_1%3A2", strict=strict)
        assert "strict" not in e.value.message
        assert not strict_only(e.value)


def test_strict_checked_runs_a_check_in_the_nodes_mode() -> None:
    def check(strict: bool) -> str:
        if strict:
            raise XRoadError("invalid_identifier", "refused in strict mode", kind=ErrorKind.BAD_INPUT)
        return "accepted"

    assert strict_checked(check, strict=False) == "accepted"
    with pytest.raises(XRoadError) as e:
        strict_checked(check, strict=True)
    assert (e.value.code, e.value.kind) == ("invalid_identifier", ErrorKind.BAD_INPUT)
    assert e.value.message == "refused in strict mode (node setting strict_identifier_checks = true)"
    assert isinstance(e.value.__cause__, XRoadError)


@pytest.mark.parametrize(
    ("address", "admin_host", "bound"),
    [
        ("127.0.0.2", None, "127.0.0.2"),  # nodes on one machine: each its own admin port 4000
        ("::1", None, "::1"),
        ("localhost", None, "localhost"),
        ("10.1.2.3", None, "127.0.0.1"),  # a public address: the admin API stays on the machine
        ("ss1.example.mn", None, "127.0.0.1"),
        ("10.1.2.3", "10.1.2.3", "10.1.2.3"),  # unless the operator says otherwise
    ],
)
def test_admin_bind_host(address: str, admin_host: str | None, bound: str) -> None:
    settings = NodeSettings(home=Path("/n"), address=address, admin_host=admin_host)
    assert settings.admin_bind_host() == bound
