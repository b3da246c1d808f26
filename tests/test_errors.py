"""X-Road error codes and error formats (reference §3–4)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from xroad_mn.errors import FaultCode, FaultPrefix, XRoadError, normalize_fault_code
from xroad_mn.wire.faults import parse_rest_error, parse_soap_fault, render_rest_error, render_soap_fault


@pytest.mark.parametrize(
    ("written", "emitted"),
    [
        ("Server.ServerProxy.AccessDenied", "server.serverproxy.access_denied"),
        ("server.serverproxy.access_denied", "server.serverproxy.access_denied"),
        ("Server.ClientProxy.ServiceFailed.MissingBody", "server.clientproxy.service_failed.missing_body"),
        ("Client.BadRequest", "client.bad_request"),
        ("Server.ClientProxy.OutdatedGlobalConf", "server.clientproxy.global_conf_outdated"),
        ("SERVER.SERVERPROXY.ACCESS_DENIED", "server.serverproxy.access_denied"),
        (
            "Server.ServerProxy.ServiceFailed.SslAuthenticationFailed",
            "server.serverproxy.service_failed.ssl_authentication_failed",
        ),
        ("InvalidClientIdentifier", "invalid_client_identifier"),
    ],
)
def test_codes_are_parsed_in_both_forms_and_emitted_lowercase(written: str, emitted: str) -> None:
    assert normalize_fault_code(written) == emitted
    assert XRoadError(written, "x").code == emitted


def test_prefix_is_added_once_at_the_boundary() -> None:
    err = XRoadError(FaultCode.ACCESS_DENIED, "Request is not allowed")
    translated = err.with_prefix(FaultPrefix.SERVER_SERVERPROXY)
    assert translated.code == "server.serverproxy.access_denied"
    assert translated.detail == err.detail
    assert translated.with_prefix("server.clientproxy").code == "server.serverproxy.access_denied"
    assert translated.has_code("Server.ServerProxy.AccessDenied")
    assert translated.has_code("access_denied")
    assert not translated.has_code("denied")


def test_rest_error_is_json_by_default_with_x_road_error_header() -> None:
    err = XRoadError("server.serverproxy.network_error", "Connect to provider failed")
    rendered = render_rest_error(err, accept=None)
    assert rendered.status == 500
    assert rendered.headers["X-Road-Error"] == "server.serverproxy.network_error"
    assert rendered.content_type.startswith("application/json")
    assert json.loads(rendered.body) == {
        "type": "server.serverproxy.network_error",
        "message": "Connect to provider failed",
        "detail": err.detail,
    }


@pytest.mark.parametrize(
    "accept", ["text/xml", "application/xml", "text/*", "application/json, text/xml;q=0.5"]
)
def test_rest_error_is_xml_when_accept_asks(accept: str) -> None:
    err = XRoadError("client.bad_request", "Missing X-Road-Client header")
    rendered = render_rest_error(err, accept=accept)
    assert rendered.status == 400
    root = etree.fromstring(rendered.body)
    assert root.tag == "error"
    assert [c.tag for c in root] == ["type", "message", "detail"]
    assert root.findtext("type") == "client.bad_request"
    assert parse_rest_error(rendered.body, rendered.content_type).code == "client.bad_request"


def test_http_status_override() -> None:
    err = XRoadError(FaultCode.INVALID_CSR, "CSR is not PKCS#10", http_status=400)
    assert render_rest_error(err).status == 400


def test_soap_fault_has_x_road_layout_and_round_trips() -> None:
    err = XRoadError("server.clientproxy.service_failed.missing_body", "Message has no body")
    data = render_soap_fault(err, actor="actor")
    root = etree.fromstring(data)
    ns = {"s": "http://schemas.xmlsoap.org/soap/envelope/"}
    fault = root.find("s:Body/s:Fault", ns)
    assert fault is not None
    assert [c.tag for c in fault] == ["faultcode", "faultstring", "faultactor", "detail"]
    assert fault.findtext("faultcode") == "server.clientproxy.service_failed.missing_body"
    assert fault.findtext("detail/faultDetail") == err.detail
    back = parse_soap_fault(data)
    assert (back.code, back.message, back.detail) == (err.code, err.message, err.detail)


def test_old_style_soap_fault_is_read() -> None:
    data = (
        b'<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>'
        b"<SOAP-ENV:Fault><faultcode>Server.ClientProxy.OutdatedGlobalConf</faultcode>"
        b"<faultstring>Global configuration is expired</faultstring></SOAP-ENV:Fault>"
        b"</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    assert parse_soap_fault(data).code == "server.clientproxy.global_conf_outdated"


def test_soap_fault_parser_refuses_entities() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>'
        b"<SOAP-ENV:Fault><faultcode>x</faultcode><faultstring>&x;</faultstring></SOAP-ENV:Fault>"
        b"</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    err = parse_soap_fault(xxe)
    assert "root:" not in err.message


@given(st.binary(max_size=512))
def test_error_parsers_raise_only_xroad_errors(data: bytes) -> None:
    for parse in (parse_soap_fault, lambda d: parse_rest_error(d), lambda d: parse_rest_error(d, "text/xml")):
        with contextlib.suppress(XRoadError):
            parse(data)


@given(st.text(max_size=200))
def test_normalize_never_fails(code: str) -> None:
    assert normalize_fault_code(code) == normalize_fault_code(normalize_fault_code(code))


@pytest.mark.parametrize(
    ("old_form", "code"),
    [
        ("Server.ServerProxy.InvalidCertPath", FaultCode.INVALID_CERT_PATH),
        ("MalformedGlobalConf", FaultCode.MALFORMED_GLOBALCONF),
        ("InvalidHashChain", FaultCode.INVALID_HASH_CHAIN_RESULT),
        ("SignatureVerification", FaultCode.SIGNATURE_VERIFICATION_FAILED),
        ("Server.ClientProxy.SslAuthenticationFailed", FaultCode.SSL_AUTH_FAILED),
    ],
)
def test_codes_match_x_roads_wire_values(old_form: str, code: FaultCode) -> None:
    """Our code values are X-Road's ErrorCodes wire values, so a peer's old-style code matches ours."""
    assert XRoadError(old_form, "x").has_code(code)


@given(st.text(max_size=100))
def test_renderers_never_fail_on_any_message(message: str) -> None:
    err = XRoadError("server.serverproxy.service_failed", message)
    for accept in (None, "text/xml"):
        rendered = render_rest_error(err, accept)
        assert rendered.body
    etree.fromstring(render_soap_fault(err, actor=message))
    etree.fromstring(render_rest_error(err, "text/xml").body)
