"""The adapter SDK's provider side, served for real on loopback: documents, contexts, validation, faults.

The OpenAPI document is validated by openapi-spec-validator and read by the node's own OpenAPI reader; the
WSDL is read by the node's WSDL reader and loaded by zeep, which then calls the SOAP operation. Invalid
input of every kind (wrong types, missing and unknown fields, oversized values, malformed documents) is
answered in X-Road's own formats.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, Final

import aiohttp
import pytest
import pytest_asyncio
from lxml import etree
from pydantic import BaseModel

from adapters.sdk import Adapter, XRoadContext
from adapters.sdk.context import rest_context
from adapters.sdk.soap import wsdl_name
from security_server.servicedesc.openapi import parse_openapi
from security_server.servicedesc.wsdl import parse_wsdl
from tests.adapters.sdk_sample import (
    NAMESPACE,
    Registry,
    sample_adapter,
    served,
)
from tests.xroad_xsd import xroad_soap_headers, zeep_client
from xroad_mn.errors import XRoadError
from xroad_mn.identifiers import MemberId
from xroad_mn.wire.faults import parse_soap_fault
from xroad_mn.wire.soap import XROAD_NS, build_soap_request, parse_soap_message

OP: Final = "getCitizenRecord"
CLIENT: Final = MemberId("MN", "COM", "9011223").subsystem("kyc")
SERVICE: Final = (
    MemberId("MN", "GOV", "5012345").subsystem("civil-registry").service("getCitizenRecord", "v1")
)
HEADERS: Final = {
    "X-Road-Client": "MN/COM/9011223/kyc",
    "X-Road-Id": "MN-4f1c",
    "x-road-request-id": "7d0e",
    "X-Road-UserId": "MN-officer-7",
    "X-Road-Issue": "case-12",
    "X-MN-Data-Subject": "УБ99112233",
}


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest_asyncio.fixture
async def base(registry: Registry) -> AsyncIterator[str]:
    async with served(sample_adapter(registry)) as url:
        yield url


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def call(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, dict[str, str], Any]:
    headers = {**HEADERS, **kwargs.pop("headers", {})}
    async with session.request(method, url, headers=headers, **kwargs) as resp:
        data = await resp.read()
        body: Any = json.loads(data) if resp.content_type == "application/json" and data else data
        return resp.status, dict(resp.headers), body


def assert_xroad_error(status: int, headers: dict[str, str], body: Any, code: str, *words: str) -> None:
    assert status == 400, body
    assert headers["X-Road-Error"] == code
    assert body["type"] == code
    uuid.UUID(body["detail"])
    for word in words:
        assert word in body["message"], body["message"]


# -- documents --------------------------------------------------------------------------------------------


async def test_openapi_document_is_valid_openapi_3_0_and_the_node_reads_it(
    base: str, session: aiohttp.ClientSession
) -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.validators import OpenAPIV30SpecValidator

    async with session.get(f"{base}/openapi.json") as resp:
        assert resp.status == 200
        document = await resp.json()
    validate(document, cls=OpenAPIV30SpecValidator)
    assert document["openapi"] == "3.0.3"
    assert document["servers"] == [{"url": base}]
    get = document["paths"]["/citizens/{regnum}"]["get"]
    assert get["summary"] == "One citizen by registration number."
    params = {p["name"]: p for p in get["parameters"]}
    assert params["regnum"]["in"] == "path"
    assert params["regnum"]["schema"]["maxLength"] == 10
    assert params["full"] == {"name": "full", "in": "query", "required": False,
                              "schema": {"type": "boolean", "default": False}}  # fmt: skip
    listed = {p["name"]: p for p in document["paths"]["/citizens"]["get"]["parameters"]}
    assert listed["limit"]["schema"]["maximum"] == 100
    assert listed["aimag"]["schema"]["nullable"] is True
    assert listed["aimag"]["schema"]["type"] == "array"
    post = document["paths"]["/citizens"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NewCitizen"
    }
    assert set(post["responses"]) == {"201", "400", "500"}
    assert "204" in document["paths"]["/citizens/{regnum}"]["delete"]["responses"]
    citizen = document["components"]["schemas"]["Citizen"]
    assert citizen["properties"]["note"] == {"type": "string", "nullable": True, "default": None,
                                             "title": "Note"}  # fmt: skip
    # X-Road's own reader of service descriptions finds every endpoint
    parsed = parse_openapi(json.dumps(document).encode(), service_code="citizens", source_url=f"{base}/o")
    assert sorted((e.method, e.path) for e in parsed.endpoints) == [
        ("DELETE", "/citizens/*"), ("GET", "/broken"), ("GET", "/citizens"),
        ("GET", "/citizens/*"), ("POST", "/citizens"),
    ]  # fmt: skip


async def test_wsdl_has_xroad_headers_and_version_and_the_node_reads_it(
    base: str, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{base}/wsdl") as resp:
        assert resp.status == 200
        wsdl = await resp.read()
    root = etree.fromstring(wsdl)
    ns = {"w": "http://schemas.xmlsoap.org/wsdl/", "s": "http://schemas.xmlsoap.org/wsdl/soap/",
          "x": "http://www.w3.org/2001/XMLSchema", "xrd": XROAD_NS}  # fmt: skip
    imports = root.findall("w:types/x:schema/x:import", ns)
    assert [(i.get("namespace"), i.get("schemaLocation")) for i in imports] == [
        (XROAD_NS, "http://x-road.eu/xsd/xroad.xsd")
    ]
    parts = root.findall("w:message[@name='requestheader']/w:part", ns)
    assert [(p.get("name"), p.get("element")) for p in parts] == [
        ("client", "xrd:client"), ("service", "xrd:service"), ("id", "xrd:id"), ("userId", "xrd:userId"),
        ("issue", "xrd:issue"), ("protocolVersion", "xrd:protocolVersion"),
    ]  # fmt: skip
    operation = root.find("w:binding/w:operation[@name='getCitizenRecord']", ns)
    assert operation is not None
    assert operation.findtext("xrd:version", namespaces=ns) == "v1"
    assert len(operation.findall("w:input/s:header", ns)) == 6
    assert root.find("w:service/w:port/s:address", ns).get("location") == f"{base}/soap"  # type: ignore[union-attr]
    parsed = parse_wsdl(wsdl, source_url=f"{base}/wsdl")
    assert [(s.code, s.version, s.url, s.title) for s in parsed.services] == [
        ("getCitizenRecord", "v1", f"{base}/soap", "Get a citizen's record")
    ]


async def test_zeep_loads_the_wsdl_and_calls_the_operation(base: str, registry: Registry) -> None:
    query_id = str(uuid.uuid4())
    header = xroad_soap_headers(CLIENT, SERVICE, query_id, "MN-officer-7")

    def zeep_call() -> Any:
        client = zeep_client(f"{base}/wsdl")
        return client.service.getCitizenRecord(regnum="УБ99112233", with_address=False, _soapheaders=header)

    answer = await asyncio.to_thread(zeep_call)
    assert answer.body["citizen"]["regnum"] == "УБ99112233"
    assert answer.body["citizen"]["address"]["soum"] == "Сүхбаатар"
    assert answer.body["citizen"]["phones"] == ["99112233", "88112233"]
    assert answer.body["asked_by"] == str(CLIENT)
    assert answer.header["id"] == query_id
    seen = registry.seen[-1]
    assert seen["request"].with_address is False
    ctx: XRoadContext = seen["ctx"]
    assert (ctx.protocol, ctx.client, ctx.service, ctx.query_id, ctx.user_id) == (
        "SOAP",
        CLIENT,
        SERVICE,
        query_id,
        "MN-officer-7",
    )


# -- REST calls -------------------------------------------------------------------------------------------


async def test_handler_gets_the_xroad_context_and_typed_values(
    base: str, session: aiohttp.ClientSession, registry: Registry
) -> None:
    status, _headers, body = await call(session, "GET", f"{base}/citizens/%D0%A3%D0%9199112233?full=true")
    assert status == 200, body
    assert body["regnum"] == "УБ99112233"
    assert body["birth_date"] == "1999-11-22"
    seen = registry.seen[-1]
    assert seen["regnum"] == "УБ99112233"
    assert seen["full"] is True
    ctx: XRoadContext = seen["ctx"]
    assert ctx.protocol == "REST"
    assert ctx.client == CLIENT
    assert (ctx.query_id, ctx.request_id, ctx.user_id, ctx.issue, ctx.data_subject) == (
        "MN-4f1c",
        "7d0e",
        "MN-officer-7",
        "case-12",
        "УБ99112233",
    )
    status, _, body = await call(session, "GET", f"{base}/citizens?limit=5&aimag=Дархан&aimag=Орхон")
    assert status == 200, body
    assert registry.seen[-1] == {"op": "list_citizens", "limit": 5, "aimag": ["Дархан", "Орхон"],
                                 "born_after": None}  # fmt: skip
    status, _, body = await call(
        session, "POST", f"{base}/citizens",
        json={"regnum": "ДА01234567", "given_name": "Сараа", "birth_date": "2001-02-03"},
    )  # fmt: skip
    assert status == 201, body
    assert body == {"regnum": "ДА01234567", "given_name": "Сараа", "birth_date": "2001-02-03", "children": 0}
    status, _, body = await call(session, "DELETE", f"{base}/citizens/ДА01234567")
    assert (status, body) == (204, b"")


@pytest.mark.parametrize(
    ("method", "target", "kwargs", "code", "words"),
    [
        ("GET", "/citizens?limit=ten", {}, "client.bad_request", ["query parameter 'limit'", "integer"]),
        ("GET", "/citizens?limit=0", {}, "client.bad_request", ["'limit'", "greater than or equal to 1"]),
        ("GET", "/citizens?limit=1&limit=2", {}, "client.bad_request", ["'limit'", "2 times"]),
        ("GET", "/citizens?born_after=yesterday", {}, "client.bad_request", ["'born_after'", "date"]),
        ("GET", "/citizens?order=name", {}, "client.bad_request", ["'order'", "Extra inputs"]),
        ("GET", "/citizens/ABCDEFGHIJK", {}, "client.bad_request", ["path parameter 'regnum'", "at most 10"]),
        ("GET", "/citizens/x?full=maybe", {}, "client.bad_request", ["'full'", "boolean"]),
        ("GET", "/citizens?aimag=" + "Я" * 1025, {}, "client.bad_request", ["longer than 1024 characters"]),
        ("POST", "/citizens", {"json": {"regnum": "ДА01234567", "birth_date": "2001-02-03"}},
         "client.bad_request", ["request body field 'given_name'", "Field required"]),
        ("POST", "/citizens", {"json": {"regnum": "ДА01234567", "given_name": "С", "birth_date": "2001-02-03",
                                        "children": "many"}},
         "client.bad_request", ["'children'", "integer"]),
        ("POST", "/citizens", {"json": {"regnum": "'; DROP TABLE citizens; --", "given_name": "С",
                                        "birth_date": "2001-02-03"}},
         "client.bad_request", ["'regnum'", "should match pattern"]),
        ("POST", "/citizens", {"json": {"regnum": "ДА01234567", "given_name": "С" * 51,
                                        "birth_date": "2001-02-03"}},
         "client.bad_request", ["'given_name'", "at most 50"]),
        ("POST", "/citizens", {"json": ["not", "an", "object"]}, "client.bad_request", ["request body"]),
        ("POST", "/citizens", {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
         "client.invalid_body", ["not JSON"]),
        ("POST", "/citizens", {"data": b"[" * 100 + b"]" * 100,
                               "headers": {"Content-Type": "application/json"}},
         "client.invalid_body", ["nests deeper"]),
        ("POST", "/citizens", {"data": b"x" * 17000, "headers": {"Content-Type": "application/json"}},
         "client.request_too_large", ["larger than 16384 bytes"]),
        ("POST", "/citizens", {"data": b"regnum=1", "headers": {"Content-Type": "text/plain"}},
         "client.invalid_content_type", ["application/json"]),
        ("GET", "/citizens/x", {"headers": {"X-Road-Client": "MN/COM"}},
         "client.invalid_client_identifier", []),
        ("GET", "/citizens/x", {"headers": {"X-MN-Data-Subject": "У" * 65}},
         "client.invalid_message", ["longer than 64"]),
    ],
)  # fmt: skip
async def test_invalid_input_is_answered_in_xroad_error_format(
    base: str,
    session: aiohttp.ClientSession,
    registry: Registry,
    method: str,
    target: str,
    kwargs: dict[str, Any],
    code: str,
    words: list[str],
) -> None:
    status, headers, body = await call(session, method, base + target, **kwargs)
    assert_xroad_error(status, headers, body, code, *words)
    assert registry.seen == []  # the handler never ran


async def test_a_call_without_x_road_client_is_refused(base: str, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{base}/citizens/x") as resp:
        body = await resp.json()
        assert_xroad_error(resp.status, dict(resp.headers), body, "client.missing_header", "X-Road-Client")


async def test_errors_follow_accept_and_handler_errors_keep_their_codes(
    base: str, session: aiohttp.ClientSession
) -> None:
    status, headers, body = await call(
        session, "GET", f"{base}/citizens?limit=x", headers={"Accept": "application/xml"}
    )
    assert status == 400
    assert etree.fromstring(body).findtext("type") == "client.bad_request"
    status, headers, body = await call(session, "GET", f"{base}/citizens/missing")
    assert (status, headers["X-Road-Error"], body["type"]) == (404, "client.not_found", "client.not_found")
    status, headers, body = await call(session, "GET", f"{base}/nowhere")
    assert (status, body["type"]) == (404, "client.not_found")
    status, headers, body = await call(session, "PUT", f"{base}/citizens")
    assert (status, body["type"]) == (405, "client.invalid_http_method")


async def test_an_answer_that_breaks_its_declared_type_is_a_server_error(
    base: str, session: aiohttp.ClientSession
) -> None:
    status, headers, body = await call(session, "GET", f"{base}/broken")
    assert status == 500
    assert body["type"] == headers["X-Road-Error"] == "server.internal_error"
    assert "42" not in body["message"]


# -- SOAP calls -------------------------------------------------------------------------------------------


def soap_request(body: bytes, **options: Any) -> bytes:
    return build_soap_request(CLIENT, SERVICE, options.pop("query_id", "q-1"), body, **options)


async def post_soap(
    session: aiohttp.ClientSession, base: str, data: bytes, content_type: str = "text/xml"
) -> tuple[int, bytes]:
    async with session.post(f"{base}/soap", data=data, headers={"Content-Type": content_type}) as resp:
        return resp.status, await resp.read()


async def test_soap_response_echoes_the_header_and_carries_the_data_subject(
    base: str, session: aiohttp.ClientSession, registry: Registry
) -> None:
    request = soap_request(
        f'<c:{OP} xmlns:c="{NAMESPACE}"><c:regnum>УБ99112233</c:regnum></c:{OP}>'.encode(),
        user_id="MN-officer-7", issue="case-9",
    )  # fmt: skip
    request = request.replace(
        b"</SOAP-ENV:Header>",
        '<mn:dataSubject xmlns:mn="https://xroad.mn/xsd/extensions">УБ99112233</mn:dataSubject>'
        "</SOAP-ENV:Header>".encode(),
    )
    status, answer = await post_soap(session, base, request)
    assert status == 200, answer
    response = parse_soap_message(answer, expect="response")
    assert response.x_road_header == parse_soap_message(request).x_road_header
    body = etree.fromstring(answer).find(f".//{{{NAMESPACE}}}getCitizenRecordResponse")
    assert body is not None
    assert body.findtext(f"{{{NAMESPACE}}}data_subject") == "УБ99112233"
    assert body.findtext(f"{{{NAMESPACE}}}citizen/{{{NAMESPACE}}}gender") == "male"
    assert registry.seen[-1]["ctx"].issue == "case-9"


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (b"<c:OP xmlns:c='NS'/>", "client.bad_request", ["'regnum'", "Field required"]),
        (b"<c:OP xmlns:c='NS'><c:regnum>x</c:regnum><c:with_address>perhaps</c:with_address>"
         b"</c:OP>", "client.bad_request", ["'with_address'", "boolean"]),
        (b"<c:OP xmlns:c='NS'><c:regnum>ABCDEFGHIJK</c:regnum></c:OP>",
         "client.bad_request", ["'regnum'", "at most 10"]),
        (b"<c:OP xmlns:c='NS'><c:regnum>x</c:regnum><c:regnum>y</c:regnum></c:OP>",
         "client.bad_request", ["repeated"]),
        (b"<c:OP xmlns:c='NS'><c:regnum>x</c:regnum><c:admin>1</c:admin></c:OP>",
         "client.bad_request", ["'admin'"]),
        (b"<c:OP xmlns:c='NS'><c:regnum><c:x/></c:regnum></c:OP>",
         "client.bad_request", ["holds elements"]),
        (b"<c:OP xmlns:c='urn:elsewhere'><c:regnum>x</c:regnum></c:OP>",
         "client.unknown_service", ["urn:elsewhere"]),
    ],
)  # fmt: skip
async def test_invalid_soap_input_is_a_fault_with_xroad_code(
    base: str,
    session: aiohttp.ClientSession,
    registry: Registry,
    body: bytes,
    code: str,
    words: list[str],
) -> None:
    status, answer = await post_soap(
        session,
        base,
        soap_request(body.replace(b"NS", NAMESPACE.encode()).replace(b"OP", b"getCitizenRecord")),
    )
    assert status == 500
    fault = parse_soap_fault(answer)
    assert fault.code == code, fault.message
    for word in words:
        assert word in fault.message
    assert registry.seen == []


async def test_malformed_soap_messages_are_faults(base: str, session: aiohttp.ClientSession) -> None:
    good = soap_request(
        f'<c:getCitizenRecord xmlns:c="{NAMESPACE}"><c:regnum>x</c:regnum></c:getCitizenRecord>'.encode()
    )
    cases = [
        (good.replace(b"<xrd:protocolVersion>4.0</xrd:protocolVersion>", b""), "text/xml",
         "client.missing_header_field"),
        (good, "application/json", "client.invalid_content_type"),
        (b"<not-closed", "text/xml", "client.invalid_soap"),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "text/xml", "client.invalid_soap"),
        (b"x" * 17000, "text/xml", "client.request_too_large"),
    ]  # fmt: skip
    for data, content_type, code in cases:
        status, answer = await post_soap(session, base, data, content_type)
        assert status == 500
        assert parse_soap_fault(answer).code == code


# -- declarations -----------------------------------------------------------------------------------------


class _Body(BaseModel):
    name: str


class _Mapping(BaseModel):
    counts: dict[str, int]


def test_declaration_mistakes_are_found_when_declared() -> None:
    adapter = Adapter("t", namespace="urn:t")

    def expect(fragment: str) -> Any:
        return pytest.raises(XRoadError, match=fragment)

    with expect("async function"):

        @adapter.get("/a")  # type: ignore[type-var]
        def not_async() -> None:
            return None

    with expect("no parameter for"):

        @adapter.get("/a/{regnum}")
        async def no_path_param() -> None:
            return None

    with expect("return annotation"):

        @adapter.get("/a")
        async def no_return():  # type: ignore[no-untyped-def]
            return None

    with expect("has no body"):

        @adapter.get("/a")
        async def get_with_body(body: _Body) -> None:
            return None

    with expect("no XML form"):

        @adapter.soap()
        async def op(request: _Body) -> _Mapping:
            return _Mapping(counts={})

    with expect("not a path template"):

        @adapter.get("a b")
        async def bad_path() -> None:
            return None

    @adapter.get("/a")
    async def first() -> None:
        return None

    with expect("declared twice"):

        @adapter.get("/a", operation_id="second")
        async def second() -> None:
            return None

    @adapter.soap()
    async def lookup(request: _Body) -> _Body:
        return request

    # Its request element and message would be lookup's response element and message.
    with expect("SOAP operation 'lookupResponse' has the name of the response of 'lookup'"):

        @adapter.soap()
        async def lookupResponse(request: _Body) -> _Body:
            return request


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("ХУР civil registry", "хурCivilRegistry"),
        ("1st registry", "adapter1StRegistry"),
        ("---", "adapter"),
    ],
)
def test_wsdl_names_are_xml_names(title: str, name: str) -> None:
    assert wsdl_name(title) == name
    etree.Element(wsdl_name(title))  # lxml refuses a name XML does not allow


def test_rest_context_takes_the_last_header_value_as_xroad_does() -> None:
    ctx = rest_context([("X-Road-Client", "MN/GOV/1"), ("x-road-client", "MN/COM/9011223/kyc")])
    assert ctx.client == CLIENT
    assert ctx.query_id is None
    assert ctx.data_subject is None
