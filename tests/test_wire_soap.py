"""The SOAP 4.0 message protocol: X-Road's own test messages, request hash insertion byte by byte,
attachments, metaservices, hostile input and fuzzing."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import MemberId, RepresentedParty, parse_id
from xroad_mn.wire.parts import Attachment
from xroad_mn.wire.soap import (
    MAX_SOAP_BYTES,
    REQUEST_HASH_ALGORITHM_ID,
    SOAP_ENV_NS,
    XROAD_NS,
    SoapMessage,
    build_soap_request,
    build_soap_response,
    check_soap_response,
    insert_request_hash,
    join_soap_message,
    parse_soap_message,
    soap_body,
    soap_request_hash,
    split_soap_message,
    split_soap_request,
    to_response,
)
from xroad_mn.wire.soapmeta import (
    WSDL_ENDPOINT_ADDRESS,
    WsdlRequest,
    build_get_wsdl_response,
    build_method_list_response,
    metaservice_of,
    parse_get_wsdl_request,
    parse_method_list_response,
    rewrite_wsdl_endpoints,
)

SOAP_DATA = Path(__file__).parent / "data" / "xroad" / "soap"
QUERIES = SOAP_DATA / "proxy-core-queries"


def corpus(name: str) -> bytes:
    return (SOAP_DATA / name).read_bytes()


def boundary_of_file(data: bytes) -> str:
    """The corpus keeps multipart bodies without an HTTP Content-Type: line one has the boundary."""
    return data.split(b"\n", 1)[0][2:].strip().decode()


def read(name: str, **kw: object) -> tuple[SoapMessage, tuple[Attachment, ...]]:
    """Parse a corpus message the way the client proxy reads one from an IS."""
    data = corpus(name)
    content_type = (
        f"multipart/related; boundary={boundary_of_file(data)}" if data.startswith(b"--") else "text/xml"
    )
    soap, soap_type, attachments = split_soap_request(content_type, data)
    return parse_soap_message(soap, content_type=soap_type, **kw), attachments  # type: ignore[arg-type]


def assert_code(info: pytest.ExceptionInfo[XRoadError], code: str) -> None:
    assert info.value.code == code, info.value


# -- X-Road's own messages ---------------------------------------------------------------------------------

VALID = [
    *(
        f"proxy-core-queries/{n}"
        for n in [
            "allowedMethods.query",
            "attachm-mtom.answer",
            "attachm-mtom.query",
            "attachm.answer",
            "attachm.query",
            "attachm2-utf8bom-inside.answer",
            "attachm2-utf8bom-inside.query",
            "attachm2.answer",
            "attachm2.query",
            "attachment-small-mantis.answer",
            "attachments.answer",
            "attachments.query",
            "bigAttachment.answer",
            "bigAttachment.query",
            "cdata.answer",
            "cdata.query",
            "customfault.answer",
            "customsoapenv.answer",
            "fault.query",
            "faulty-fault.answer",
            "getstate-defaultnamespace.query",
            "getstate-iso88591.answer",
            "getstate-subsystem.answer",
            "getstate-subsystem.query",
            "getstate.answer",
            "getstate.query",
            "invalid-service-address.query",
            "listMethods.query",
            "mimesoap.answer",
            "mimesoap.query",
            "missing-org.query",
            "missing-userId.answer",
            "missing-userId.query",
            "no-signature.query",
            "notAllowed.query",
            "nowhitespace.answer",
            "nowhitespace.query",
            "proxyemulator.query",
            "request-suffix.query",
            "requesthash.answer",
            "response-with-requestId.answer",
            "signing-error-request.query",
            "signing-error-response.query",
            "simple-comment.answer",
            "simple-representedparty.query",
            "simple-rpc.query",
            "simple.answer",
            "simple.query",
            "simplesoap.xml",
            "smallAttachment.answer",
            "smallAttachment.query",
            "soapfault-mtom.answer",
            "soapfault-mtom.query",
            "soapfaulterror.query",
            "split-header.answer",
            "split-header.query",
            "xml.query",
            "xmlencoded.answer",
            "xmlencoded.query",
            "xop.answer",
        ]
    ),
    "X-Road-test-service/request-1.xml",
    "X-Road-test-service/request-2.xml",
    "X-Road-test-service/response-1.xml",
    "dev-stack/gmt-getRandom.xml",
    "dev-stack/gmt-helloService.xml",
    "metaservice-queries/allowedMethods.query",
    "metaservice-queries/getWsdl.query",
    "metaservice-queries/listMethods.query",
    "metaservice-queries/getstate.query",
    "metaservice-queries/getstate.answer",
    "op-monitor/healthdata.request",
    "op-monitor/operationaldata.request",
    "proxymonitor-queries/getMetrics.query",
    "system-test-soap-requests/health-data.request",
    "system-test-soap-requests/operational-data.request",
]


@pytest.mark.parametrize("name", VALID)
def test_x_road_valid_messages_parse(name: str) -> None:
    message, _ = read(name)
    assert message.raw  # the exact bytes are kept
    if message.is_fault:
        assert message.header is None
        assert message.body_element == "Fault"
        assert message.fault().code
    else:
        header = message.x_road_header
        assert header.protocol_version.startswith("4.")
        assert header.service is not None
        assert message.body_element.startswith(header.service.service_code)


INVALID = {
    # SoapMessageTest and ProxyTests (tests/data/xroad/INDEX.md): the code X-Road answers each with.
    "faulty-header.query": FaultCode.MISSING_HEADER_FIELD,
    "faulty-header2.query": FaultCode.DUPLICATE_HEADER_FIELD,
    "inconsistent-headers.query": FaultCode.INCONSISTENT_HEADERS,
    "malformed-body1.query": FaultCode.INVALID_BODY,
    "malformed-body2.query": FaultCode.INVALID_BODY,
    "malformed-body3.query": FaultCode.INCONSISTENT_HEADERS,
    "malformed-protocolVersion.query": FaultCode.INVALID_PROTOCOL_VERSION,
    "wrong-protocolVersion.query": FaultCode.INVALID_PROTOCOL_VERSION,
    "wrong-version.query": FaultCode.INVALID_PROTOCOL_VERSION,
    "missing-body.query": FaultCode.MISSING_BODY,
    "missing-protocolVersion.query": FaultCode.MISSING_HEADER_FIELD,
    "no-header.query": FaultCode.MISSING_HEADER,
    "empty.query": FaultCode.INVALID_SOAP,
    "attachm-error.query": FaultCode.INVALID_CONTENT_TYPE,
    "attachm-no-soap.query": FaultCode.INVALID_CONTENT_TYPE,
    "attachm-faulty-soap.query": FaultCode.MISSING_HEADER_FIELD,
    "missingobjecttype.query": FaultCode.INVALID_XML,
    # Body "test" under service code "testQuery": X-Road's prefix rule refuses it too.
    "attach-error-withsoap.query": FaultCode.INCONSISTENT_HEADERS,
    # A line starting with the boundary that is no delimiter.
    "faulty-multipart.query": FaultCode.MIME_PARSING_FAILED,
}


@pytest.mark.parametrize(("name", "code"), INVALID.items())
def test_x_road_invalid_messages_fail_with_x_road_codes(name: str, code: str) -> None:
    with pytest.raises(XRoadError) as info:
        read(f"proxy-core-queries/{name}")
    assert_code(info, code)


def test_simple_query_header_and_exact_bytes() -> None:
    data = (QUERIES / "simple.query").read_bytes()
    message = parse_soap_message(data)
    header = message.x_road_header
    assert message.raw == data
    assert header.client == parse_id("MEMBER:EE/BUSINESS/consumer")
    assert header.service == parse_id("SERVICE:EE/BUSINESS/producer/testQuery")
    assert (header.user_id, header.id, header.issue, header.protocol_version) == (
        "EE37702211234",
        "1234567890",
        None,
        "4.0",
    )
    assert (message.body_element, message.body_namespace, message.charset) == (
        "testQuery",
        "http://cosumer.ee.xroad.net",
        "UTF-8",
    )
    with pytest.raises(XRoadError) as info:
        parse_soap_message(data, content_type="text/html")
    assert_code(info, FaultCode.INVALID_CONTENT_TYPE)


def test_represented_party_and_issue() -> None:
    header = read("proxy-core-queries/simple-representedparty.query")[0].x_road_header
    assert header.represented_party == RepresentedParty("MEMBER3", "COM")
    assert header.issue == "issue-1"


def test_subsystem_client_and_empty_issue() -> None:
    header = read("proxy-core-queries/getstate-subsystem.query")[0].x_road_header
    assert header.client.object_type == "SUBSYSTEM"
    assert read("proxy-core-queries/getstate.query")[0].x_road_header.issue == ""


def test_exact_wrapper_on_request() -> None:
    with pytest.raises(XRoadError) as info:
        read("proxy-core-queries/request-suffix.query", expect="request")
    assert_code(info, FaultCode.INCONSISTENT_HEADERS)
    read("proxy-core-queries/simple.query", expect="request")
    read("proxy-core-queries/simple.answer", expect="response")
    with pytest.raises(XRoadError):
        read("proxy-core-queries/simple.query", expect="response")


def test_to_response_renames_the_body_element() -> None:
    request = read("proxy-core-queries/request-suffix.query")[0]
    response = parse_soap_message(to_response(request))
    assert response.body_element == "testQueryRequestResponse"
    assert response.body_namespace == request.body_namespace
    assert response.header == request.header


def test_utf8_bom_is_skipped_but_hashed() -> None:
    data = b"\xef\xbb\xbf" + (QUERIES / "simple.query").read_bytes()
    message = parse_soap_message(data, content_type="text/xml; charset=UTF-8")
    assert message.raw == data
    assert soap_request_hash(message.raw) == base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_charset_from_content_type_without_declaration() -> None:
    text = (QUERIES / "simple.query").read_text().replace('<?xml version="1.0" encoding="utf-8"?>', "")
    data = text.replace("EE37702211234", "Jüri").encode("iso-8859-1")
    message = parse_soap_message(data, content_type="text/xml; charset=ISO-8859-1")
    assert message.x_road_header.user_id == "Jüri"
    assert message.charset == "ISO-8859-1"
    with pytest.raises(XRoadError) as info:
        parse_soap_message(data, content_type="text/xml; charset=no-such-charset")
    assert_code(info, FaultCode.INVALID_CONTENT_TYPE)


def test_response_without_service_when_allowed() -> None:
    data = (QUERIES / "simple.answer").read_bytes()
    start, end = data.index(b"<xroad:service"), data.index(b"</xroad:service>") + len(b"</xroad:service>")
    no_service = data[:start] + data[end:]
    with pytest.raises(XRoadError) as info:
        parse_soap_message(no_service)
    assert_code(info, FaultCode.MISSING_HEADER_FIELD)
    assert parse_soap_message(no_service, require_service=False).x_road_header.service is None


# -- request hash ------------------------------------------------------------------------------------------


def test_request_hash_is_base64_sha512_of_the_exact_bytes() -> None:
    data = (QUERIES / "getstate.query").read_bytes()
    assert soap_request_hash(data) == base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_insert_changes_no_other_byte() -> None:
    raw = (QUERIES / "getstate.answer").read_bytes()
    value = soap_request_hash(b"request")
    out = insert_request_hash(raw, value)
    end = raw.index(b"</xroad:id>") + len(b"</xroad:id>")
    line_start = raw.rindex(b"\n", 0, raw.index(b"<xroad:id>"))
    indent = raw[line_start : raw.index(b"<xroad:id>")]
    element = f'<xroad:requestHash algorithmId="{REQUEST_HASH_ALGORITHM_ID}">{value}</xroad:requestHash>'
    assert out == raw[:end] + indent + element.encode() + raw[end:]
    header = parse_soap_message(out).x_road_header
    assert (header.request_hash, header.request_hash_algorithm) == (value, REQUEST_HASH_ALGORITHM_ID)


def test_insert_replaces_the_hash_the_provider_is_sent() -> None:
    raw = (QUERIES / "requesthash.answer").read_bytes()
    assert parse_soap_message(raw).x_road_header.request_hash == "foo"
    value = soap_request_hash(b"x")
    out = insert_request_hash(raw, value)
    assert out.count(b"requestHash") == 2
    assert b">foo<" not in out
    old = raw[raw.index(b"\n", raw.index(b"<xroad:issue/>")) : raw.index(b"</xroad:requestHash>") + 20]
    expected = raw.replace(old, b"")
    end = expected.index(b"</xroad:id>") + len(b"</xroad:id>")
    element = (
        f'\n        <xroad:requestHash algorithmId="{REQUEST_HASH_ALGORITHM_ID}">{value}</xroad:requestHash>'
    )
    assert out == expected[:end] + element.encode() + expected[end:]
    assert parse_soap_message(out).x_road_header.request_hash == value


def test_insert_in_a_message_without_whitespace_and_a_hash_right_after_id() -> None:
    raw = (QUERIES / "nowhitespace.answer").read_bytes()
    out = insert_request_hash(raw, "QUJD")
    assert (
        out.replace(b'<xroad:requestHash algorithmId="' + REQUEST_HASH_ALGORITHM_ID.encode() + b'">QUJD', b"")
        != raw
    )
    assert parse_soap_message(out).x_road_header.request_hash == "QUJD"
    again = insert_request_hash(out, "REVG")  # the old one sits right after </xroad:id>, no whitespace
    assert parse_soap_message(again).x_road_header.request_hash == "REVG"
    assert again.count(b"requestHash") == 2


def test_insert_removes_a_hash_placed_before_id() -> None:
    raw = (QUERIES / "requesthash.answer").read_bytes()
    line = raw[raw.index(b"\n", raw.index(b"<xroad:issue/>")) : raw.index(b"</xroad:requestHash>") + 20]
    moved = raw.replace(line, b"").replace(b"\n        <xroad:id>", line + b"\n        <xroad:id>")
    assert moved.index(b"requestHash") < moved.index(b"<xroad:id>")
    out = insert_request_hash(moved, "QUJD")
    assert out == insert_request_hash(raw, "QUJD")
    assert parse_soap_message(out).x_road_header.request_hash == "QUJD"


def build(body: bytes = b"<t:getDebt xmlns:t='urn:tax'/>", **kw: object) -> bytes:
    client = MemberId("MN", "GOV", "5012345").subsystem("civil-registry")
    service = MemberId("MN", "GOV", "9010001").subsystem("tax").service("getDebt", "v1")
    return build_soap_request(client, service, "q-1", body, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<xrd:id>q-1</xrd:id>", b"<xrd:id/>"),  # empty-element tag
        (b"<xrd:id>q-1</xrd:id>", b'<x:id xmlns:x="http://x-road.eu/xsd/xroad.xsd">q-1</x:id>'),
        (b"<xrd:id>q-1</xrd:id>", b'<id xmlns="http://x-road.eu/xsd/xroad.xsd" a=">">q-1</id>'),
    ],
)
def test_insert_keeps_the_document_well_formed(old: bytes, new: bytes) -> None:
    raw = build().replace(old, new)
    request = parse_soap_message(build())
    answer = parse_soap_message(raw)
    out = insert_request_hash(build_soap_response(answer, b"<t:getDebtResponse xmlns:t='urn:tax'/>"), "QUJD")
    assert parse_soap_message(out).x_road_header.request_hash == "QUJD"
    assert request.x_road_header.client == parse_soap_message(out).x_road_header.client


def test_insert_refuses_hostile_input() -> None:
    with pytest.raises(XRoadError) as info:
        insert_request_hash(b'<!DOCTYPE x [<!ENTITY a "b">]>' + build(), "QUJD")
    assert_code(info, FaultCode.INVALID_SOAP)
    with pytest.raises(XRoadError):
        insert_request_hash(build()[:-20], "QUJD")
    with pytest.raises(XRoadError):
        insert_request_hash(build(), "not base64 <")
    with pytest.raises(XRoadError) as info:
        insert_request_hash(build().replace(b"<xrd:id>q-1</xrd:id>", b""), "QUJD")
    assert_code(info, FaultCode.MISSING_HEADER_FIELD)


# -- consistency of a response ------------------------------------------------------------------------------


def test_check_response_accepts_the_echo_with_the_right_hash() -> None:
    request = read("proxy-core-queries/getstate.query")[0]
    value = soap_request_hash(request.raw)
    answer = parse_soap_message(insert_request_hash(corpus("proxy-core-queries/getstate.answer"), value))
    check_soap_response(request, answer, value)


def test_check_response_refuses_other_headers_and_hashes() -> None:
    request = read("proxy-core-queries/simple.query")[0]
    value = soap_request_hash(request.raw)
    answer = parse_soap_message(insert_request_hash(corpus("proxy-core-queries/getstate.answer"), value))
    with pytest.raises(XRoadError) as info:
        check_soap_response(request, answer, value)
    assert_code(info, FaultCode.INCONSISTENT_HEADERS)

    request = read("proxy-core-queries/getstate.query")[0]
    plain = read("proxy-core-queries/getstate.answer")[0]
    with pytest.raises(XRoadError) as info:
        check_soap_response(request, plain, soap_request_hash(request.raw))
    assert_code(info, FaultCode.INCONSISTENT_RESPONSE)
    wrong = parse_soap_message(insert_request_hash(plain.raw, soap_request_hash(b"other")))
    with pytest.raises(XRoadError) as info:
        check_soap_response(request, wrong, soap_request_hash(request.raw))
    assert_code(info, FaultCode.INCONSISTENT_RESPONSE)
    sha256 = wrong.raw.replace(b"xmlenc#sha512", b"xmlenc#sha256")
    with pytest.raises(XRoadError, match="algorithm"):
        check_soap_response(request, parse_soap_message(sha256), soap_request_hash(request.raw))


@pytest.mark.parametrize(
    ("field", "value"), [("userId", b"EE1"), ("issue", b"x"), ("protocolVersion", b"4.1")]
)
def test_check_response_compares_each_echoed_field(field: str, value: bytes) -> None:
    request = parse_soap_message(build(user_id="EE0", issue="i"))
    response_raw = build_soap_response(request, b"<t:getDebtResponse xmlns:t='urn:tax'/>")
    current = {"userId": b"EE0", "issue": b"i", "protocolVersion": b"4.0"}[field]
    tag = field.encode()
    changed = response_raw.replace(b"<xrd:%s>%s<" % (tag, current), b"<xrd:%s>%s<" % (tag, value))
    assert changed != response_raw
    value_hash = soap_request_hash(request.raw)
    good = parse_soap_message(insert_request_hash(response_raw, value_hash))
    check_soap_response(request, good, value_hash)
    with pytest.raises(XRoadError) as info:
        check_soap_response(request, parse_soap_message(insert_request_hash(changed, value_hash)), value_hash)
    assert_code(info, FaultCode.INCONSISTENT_HEADERS)
    assert field in info.value.message


def test_a_fault_is_passed_on_unchecked() -> None:
    request = read("proxy-core-queries/getstate.query")[0]
    fault = read("proxy-core-queries/faulty-fault.answer")[0]
    check_soap_response(request, fault, "anything")
    with pytest.raises(XRoadError):
        fault.x_road_header  # noqa: B018 (the property raises)


# -- building ---------------------------------------------------------------------------------------------


def test_request_round_trip() -> None:
    server = MemberId("MN", "GOV", "9010001").server("ss1")
    raw = build(
        user_id="EE1", issue="i-1", security_server=server, represented_party=RepresentedParty("7", "COM")
    )
    header = parse_soap_message(raw, expect="request").x_road_header
    assert header.security_server == server
    assert header.represented_party == RepresentedParty("7", "COM")
    assert (header.user_id, header.issue, header.id, header.protocol_version) == ("EE1", "i-1", "q-1", "4.0")
    assert header.service == MemberId("MN", "GOV", "9010001").subsystem("tax").service("getDebt", "v1")


def soap_header_of(data: bytes) -> etree._Element:
    header = etree.fromstring(data).find(f"{{{SOAP_ENV_NS}}}Header")
    assert header is not None
    return header


def test_response_echoes_the_request_header_in_order() -> None:
    for name in ("proxy-core-queries/getstate.query", "proxy-core-queries/simple-representedparty.query"):
        request = read(name)[0]
        assert request.header is not None
        assert request.header.service is not None
        wrapper = request.header.service.service_code + "Response"
        raw = build_soap_response(request, etree.fromstring(f"<a:{wrapper} xmlns:a='urn:a'>1</a:{wrapper}>"))
        sent, got = soap_header_of(request.raw), soap_header_of(raw)
        assert [etree.tostring(c) for c in sent] == [etree.tostring(c) for c in got]
        response = parse_soap_message(raw, require_service=True)
        assert response.header == request.header
        assert response.body_element == wrapper


def test_body_from_bytes_is_parsed_safely() -> None:
    with pytest.raises(XRoadError) as info:
        build(
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b'<t:getDebt xmlns:t="urn:tax">&e;</t:getDebt>'
        )
    assert_code(info, FaultCode.INVALID_BODY)


def test_soap_body_returns_a_fresh_element() -> None:
    request = read("metaservice-queries/getWsdl.query")[0]
    body = soap_body(request)
    body.clear()
    assert len(soap_body(request)) == 1


# -- hostile input ----------------------------------------------------------------------------------------


HOSTILE = {
    "xxe": (
        b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>&x;'
        b"</SOAP-ENV:Body></SOAP-ENV:Envelope>",
        FaultCode.INVALID_SOAP,
    ),
    "billion laughs": (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><SOAP-ENV:Envelope '
        b'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>&c;</SOAP-ENV:Body>'
        b"</SOAP-ENV:Envelope>",
        FaultCode.INVALID_SOAP,
    ),
    "soap 1.2": (
        b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>',
        FaultCode.INVALID_SOAP,
    ),
    "not soap": (b"<html><body>hi</body></html>", FaultCode.INVALID_SOAP),
    "not xml": (b"\x00\xff garbage", FaultCode.INVALID_SOAP),
}


@pytest.mark.parametrize(("data", "code"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_messages_get_a_clear_code(data: bytes, code: str) -> None:
    with pytest.raises(XRoadError) as info:
        parse_soap_message(data)
    assert_code(info, code)


def test_huge_message_is_refused_before_parsing() -> None:
    data = build().replace(b"q-1", b"q" * (MAX_SOAP_BYTES + 1))
    with pytest.raises(XRoadError, match="larger") as info:
        parse_soap_message(data)
    assert_code(info, FaultCode.INVALID_SOAP)


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        (b"<xrd:protocolVersion>4.0</xrd:protocolVersion>", b"", FaultCode.MISSING_HEADER_FIELD),
        (b"<xrd:id>q-1</xrd:id>", b"", FaultCode.MISSING_HEADER_FIELD),
        (
            b"<xrd:id>q-1</xrd:id>",
            b"<xrd:id>q-1</xrd:id><xrd:id>q-2</xrd:id>",
            FaultCode.DUPLICATE_HEADER_FIELD,
        ),
        (b"<t:getDebt", b"<t:getCredit", FaultCode.INCONSISTENT_HEADERS),
        (b'id:objectType="SUBSYSTEM"', b'id:objectType="SERVICE"', FaultCode.INVALID_XML),
        (b"<id:xRoadInstance>MN</id:xRoadInstance>", b"", FaultCode.INVALID_CLIENT_IDENTIFIER),
        (b"</SOAP-ENV:Header>", b"</SOAP-ENV:Header><SOAP-ENV:Header/>", FaultCode.INVALID_SOAP),
        (b"<SOAP-ENV:Body>", b"<SOAP-ENV:Body><x/>", FaultCode.INVALID_BODY),
    ],
)
def test_each_broken_header_or_body_has_x_road_code(old: bytes, new: bytes, code: str) -> None:
    data = build().replace(old, new, 1)
    assert data != build()
    with pytest.raises(XRoadError) as info:
        parse_soap_message(data)
    assert_code(info, code)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=2048))
def test_parser_never_fails_without_a_code_on_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(XRoadError):
        parse_soap_message(data)  # an XRoadError is the one failure allowed


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_parser_on_mutated_messages(data: st.DataObject) -> None:
    raw = bytearray(build(user_id="EE1"))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    with contextlib.suppress(XRoadError):  # an XRoadError is the one failure allowed
        assert parse_soap_message(bytes(raw)).raw == bytes(raw)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=40))
def test_insert_then_parse_keeps_every_field(user_id: str) -> None:
    request = parse_soap_message(build(user_id=user_id))
    response = build_soap_response(request, b"<t:getDebtResponse xmlns:t='urn:tax'/>")
    value = soap_request_hash(request.raw)
    out = insert_request_hash(response, value)
    check_soap_response(request, parse_soap_message(out), value)


# -- attachments ------------------------------------------------------------------------------------------


def test_swa_with_a_nested_multipart_is_flattened_with_headers() -> None:
    message, attachments = read("proxy-core-queries/attachm.query")
    assert message.body_element == "test"
    assert attachments == (
        Attachment((("content-type", "text/plain"), ("client-header", "FooBar")), b"blaah"),
    )


def test_mtom_keeps_the_soap_part_type_and_attachment_ids() -> None:
    data = corpus("proxy-core-queries/attachm-mtom.query")
    parts = split_soap_message(
        f'multipart/related; type="application/xop+xml"; boundary={boundary_of_file(data)}', data
    )
    assert parts.content_type.startswith("application/xop+xml")
    assert parts.soap_headers == (("content-id", "<foo>"),)
    assert parts.attachments[0].header("Content-ID") is not None
    assert parse_soap_message(parts.soap, content_type=parts.content_type).body_element == "test"


def test_several_attachments_round_trip() -> None:
    data = corpus("proxy-core-queries/attachments.query")
    parts = split_soap_message(f"multipart/related; boundary={boundary_of_file(data)}", data)
    assert len(parts.attachments) == 3
    content_type, body = join_soap_message(parts.soap, parts.content_type, parts.attachments)
    assert content_type.startswith('multipart/related; type="text/xml"; charset=UTF-8; boundary=')
    again = split_soap_message(content_type, body)
    assert (again.soap, again.attachments) == (parts.soap, parts.attachments)


def test_plain_soap_is_not_wrapped() -> None:
    assert join_soap_message(b"<x/>", "text/xml; charset=UTF-8", []) == ("text/xml; charset=UTF-8", b"<x/>")
    assert split_soap_request("text/xml", b"<x/>") == (b"<x/>", "text/xml", ())


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        ("", b"<x/>", FaultCode.INVALID_REQUEST),
        ("application/json", b"{}", FaultCode.INVALID_CONTENT_TYPE),
        ("multipart/related; boundary=b", b"", FaultCode.MISSING_SOAP),
        ("multipart/related", b"--b\r\n\r\nx\r\n--b--", FaultCode.MIME_PARSING_FAILED),
        (
            "multipart/related; boundary=b",
            b"--b\r\nX: y\r\n\r\n<x/>\r\n--b--",
            FaultCode.INVALID_CONTENT_TYPE,
        ),
        (
            "multipart/related; boundary=b",
            b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: multipart/mixed; "
            b"boundary=d\r\n\r\n--d\r\nContent-Type: multipart/mixed; boundary=e\r\n\r\n--e\r\nContent-Type: "
            b"multipart/mixed; boundary=f\r\n\r\n--f\r\nContent-Type: text/xml\r\n\r\n<x/>\r\n"
            b"--f--\r\n--e--\r\n--d--\r\n--c--\r\n--b--",
            FaultCode.MIME_PARSING_FAILED,
        ),
    ],
)
def test_broken_multipart_messages(content_type: str, body: bytes, code: str) -> None:
    with pytest.raises(XRoadError) as info:
        split_soap_message(content_type, body)
    assert_code(info, code)


def test_join_refuses_header_injection() -> None:
    with pytest.raises(XRoadError):
        join_soap_message(b"<x/>", "text/xml", [Attachment((("X-A", "v\r\nEvil: 1"),), b"")])


header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True).filter(
    lambda n: n.lower() != "content-type"
)
header_values = st.from_regex(r"[ -~]{0,40}", fullmatch=True).map(str.strip)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.dictionaries(header_names, header_values, max_size=3), st.binary(max_size=200)),
        max_size=5,
    ),
    st.booleans(),
)
def test_split_inverts_join(raw_attachments: list[tuple[dict[str, str], bytes]], mtom: bool) -> None:
    soap = build()
    soap_type = "application/xop+xml; charset=UTF-8" if mtom else "text/xml; charset=UTF-8"
    attachments = [
        Attachment((("content-type", "application/octet-stream"), *((k.lower(), v) for k, v in h.items())), d)
        for h, d in raw_attachments
    ]
    content_type, body = join_soap_message(soap, soap_type, attachments)
    parts = split_soap_message(content_type, body)
    assert (parts.soap, parts.content_type, parts.attachments) == (soap, soap_type, tuple(attachments))


# -- metaservices -----------------------------------------------------------------------------------------


def test_list_and_allowed_methods() -> None:
    for name, code in (("listMethods.query", "listMethods"), ("allowedMethods.query", "allowedMethods")):
        request = read(f"metaservice-queries/{name}")[0]
        assert metaservice_of(request) == code
        provider = request.x_road_header.service
        assert provider is not None
        services = [provider.client.service("getRandom", "v1"), provider.client.service("helloService")]
        response = parse_soap_message(build_method_list_response(request, services), expect="response")
        assert response.body_element == code + "Response"
        assert response.body_namespace == XROAD_NS
        assert response.header == request.header
        assert parse_method_list_response(response) == tuple(services)


def test_get_wsdl_answers_with_the_rewritten_wsdl_as_attachment() -> None:
    request = read("metaservice-queries/getWsdl.query")[0]
    assert parse_get_wsdl_request(request) == WsdlRequest("getRandom")
    wsdl = corpus("wsdl/metaservice-wsdl.wsdl")
    assert b"soap:address" in wsdl
    content_type, body = build_get_wsdl_response(request, wsdl)
    parts = split_soap_message(content_type, body)
    response = parse_soap_message(parts.soap, content_type=parts.content_type, expect="response")
    assert response.body_element == "getWsdlResponse"
    assert response.header == request.header
    code = soap_body(response).find(f"{{{XROAD_NS}}}serviceCode")
    assert code is not None
    assert code.text == "getRandom"
    (attachment,) = parts.attachments
    assert attachment.content_type == "text/xml"
    assert attachment.header("Content-Transfer-Encoding") == "binary"
    assert (attachment.header("content-id") or "").startswith("<wsdl=")
    locations = etree.fromstring(attachment.data).xpath(
        "//s:address/@location", namespaces={"s": "http://schemas.xmlsoap.org/wsdl/soap/"}
    )
    assert locations == [WSDL_ENDPOINT_ADDRESS]


def test_get_wsdl_shape_matches_x_road_fixture() -> None:
    """X-Road's own getWsdl response: SOAP part getWsdlResponse echoing serviceCode, then the WSDL."""
    data = corpus("metaservice-wsdl_response.xml")
    parts = split_soap_message(f"multipart/related; boundary={boundary_of_file(data)}", data)
    response = parse_soap_message(parts.soap, content_type=parts.content_type, expect="response")
    assert response.body_element == "getWsdlResponse"
    assert len(parts.attachments) == 1
    assert parts.attachments[0].content_type == "text/xml"
    assert rewrite_wsdl_endpoints(parts.attachments[0].data).count(WSDL_ENDPOINT_ADDRESS.encode()) == 1


def test_get_wsdl_without_service_code_and_hostile_wsdl() -> None:
    request = parse_soap_message(
        build_soap_request(
            MemberId("EE", "BUSINESS", "consumer"),
            MemberId("EE", "BUSINESS", "producer").service("getWsdl"),
            "q",
            b"<xrd:getWsdl xmlns:xrd='http://x-road.eu/xsd/xroad.xsd'/>",
        )
    )
    with pytest.raises(XRoadError) as info:
        parse_get_wsdl_request(request)
    assert_code(info, FaultCode.INVALID_REQUEST)
    with pytest.raises(XRoadError) as info:
        rewrite_wsdl_endpoints(corpus("wsdl/ss-admin/xxe.wsdl"))
    assert_code(info, FaultCode.INVALID_WSDL)
