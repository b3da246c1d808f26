"""The REST message protocol: X-Road's header part bytes, header filtering, request hash, consistency checks,
hostile header parts, and the REST metaservice bodies."""

from __future__ import annotations

import base64
import doctest
import hashlib
import itertools
import json
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import (
    MemberId,
    RepresentedParty,
    SecurityServerId,
    ServiceId,
    SubsystemId,
    from_xml,
)
from xroad_mn.wire import rest
from xroad_mn.wire.rest import (
    MAX_HEADER_PART_BYTES,
    MAX_HEADERS,
    SKIPPED_HEADERS,
    RequestHasher,
    RestRequest,
    RestResponse,
    RestServiceEntry,
    build_rest_request,
    build_rest_response,
    check_rest_response,
    generate_query_id,
    is_headers_for_client,
    list_clients_json,
    list_clients_xml,
    list_methods_json,
    parse_header_part,
    parse_rest_target,
    provider_is_headers,
    request_hash,
)

DATA = Path(__file__).parent / "data" / "xroad"
# A REST request header part written by X-Road 7.5+ (signed, in the non-batch signature test vector).
REAL_REQUEST = DATA / "signatures" / "globalconf-impl" / "non-batch-sig" / "message.xml"
TARGET = "/r1/MN/GOV/5012345/REG/citizen/v1/people/42?full=1&x=%2F"
CLIENT = SubsystemId("MN", "COM", "9011223", "APP")


def is_request(**extra: str) -> list[tuple[str, str]]:
    headers = [
        ("Host", "ss1.example:8080"),
        ("User-Agent", "curl/8"),
        ("X-Road-Client", "MN/COM/9011223/APP"),
        ("Accept", "application/json"),
        ("Content-Length", "7"),
        ("Connection", "keep-alive"),
        ("X-Custom", "a: b,  c"),
    ]
    headers += list(extra.items())
    return headers


def built(**extra: str) -> RestRequest:
    return build_rest_request("POST", TARGET, is_request(**extra), query_id="MN-q1", request_id="rid-1")


def test_module_examples_run() -> None:
    assert doctest.testmod(rest).failed == 0


# --------------------------------------------------------------------------------------------------------
# Real X-Road bytes


def test_real_header_part_parses_and_serialises_to_the_same_bytes() -> None:
    data = REAL_REQUEST.read_bytes()
    request = parse_header_part(data)
    assert isinstance(request, RestRequest)
    assert request.to_bytes() == data
    assert request.method == "POST"
    assert request.client == SubsystemId("DEV", "COM", "4321", "TestClient")
    assert request.service == ServiceId("DEV", "COM", "1234", "TestService", "mock1")
    assert request.service_path == ""
    assert request.query == ""
    assert request.query_id == "DEV-7012d0aa-a51d-4200-94ed-1e68f43bccfc"
    assert request.request_id == "9bb842bb-9256-429b-8e9d-278c7b94f8f1"
    assert request.header("postman-token") == "81b4e8fa-6ec6-4a5f-9ee5-991567624ba1"
    # X-Road's own headers come last, request id before message id, as X-Road appends them
    assert [n for n, _ in request.headers][-2:] == ["x-road-request-id", "x-road-id"]


def test_rebuilding_the_real_request_from_its_is_headers_gives_x_roads_bytes() -> None:
    real = parse_header_part(REAL_REQUEST.read_bytes())
    assert isinstance(real, RestRequest)
    is_headers = [("Host", "localhost:8080"), ("Content-Length", "17"), *real.headers[:-2]]
    again = build_rest_request(
        real.method, real.target, is_headers, query_id=real.query_id or "", request_id=real.request_id or ""
    )
    assert again.to_bytes() == REAL_REQUEST.read_bytes()


# --------------------------------------------------------------------------------------------------------
# The consumer node's header part


def test_request_bytes_are_x_roads_layout() -> None:
    request = built()
    assert request.to_bytes() == (
        b"POST\r\n" + TARGET.encode() + b"\r\n"
        b"X-Road-Client:MN/COM/9011223/APP\r\n"
        b"Accept:application/json\r\n"
        b"X-Custom:a: b,  c\r\n"
        b"x-road-request-id:rid-1\r\n"
        b"x-road-id:MN-q1\r\n"
    )


def test_request_drops_filtered_and_the_is_request_id_and_hash() -> None:
    request = built(**{"X-Road-Request-Id": "forged", "x-road-request-hash": "forged", "TE": "trailers"})
    names = [n.lower() for n, _ in request.headers]
    assert not SKIPPED_HEADERS & set(names)
    assert names.count("x-road-request-id") == 1
    assert request.request_id == "rid-1"
    assert "x-road-request-hash" not in names


def test_an_x_road_id_the_is_sent_stays_in_place_and_is_not_added_again() -> None:
    headers = [("X-Road-Id", "my-id"), *is_request()]
    request = build_rest_request("GET", TARGET, headers, query_id="MN-unused", request_id="rid")
    assert request.headers[0] == ("X-Road-Id", "my-id")
    assert request.query_id == "my-id"
    assert [n for n, _ in request.headers][-1] == "x-road-request-id"


def test_request_lookups() -> None:
    request = built(
        **{
            "X-Road-UserId": "MN12345",
            "X-Road-Issue": "case-7",
            "X-Road-Represented-Party": "GOV/5012345",
            "X-Road-Security-Server": "MN/GOV/5012345/ss1",
        }
    )
    assert request.client == CLIENT
    assert request.service == ServiceId("MN", "GOV", "5012345", "REG", "citizen")
    assert request.service_path == "/v1/people/42"
    assert request.query == "full=1&x=%2F"
    assert request.user_id == "MN12345"
    assert request.issue == "case-7"
    assert request.represented_party == RepresentedParty("5012345", "GOV")
    assert request.security_server == SecurityServerId("MN", "GOV", "5012345", "ss1")
    assert request.header("ACCEPT") == "application/json"
    assert request.header("absent") is None


def test_last_x_road_client_wins_as_in_x_road() -> None:
    headers = [("X-Road-Client", "MN/COM/1/A"), *is_request()]
    request = build_rest_request("GET", TARGET, headers, query_id="q", request_id="r")
    assert request.client == CLIENT
    assert request.header("x-road-client") == "MN/COM/1/A"


def test_generate_query_id_is_instance_dash_uuid() -> None:
    instance, _, rest_part = generate_query_id("MN").partition("-")
    assert instance == "MN"
    assert uuid.UUID(rest_part).version == 4
    assert generate_query_id("MN") != generate_query_id("MN")


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("/r1/MN/GOV/5012345/REG", FaultCode.INVALID_SERVICE_IDENTIFIER),  # no service code
        ("/r1/MN/GOV/5012345", FaultCode.INVALID_SERVICE_IDENTIFIER),
        ("/r2/MN/GOV/5012345/REG/x", FaultCode.INVALID_PROTOCOL_VERSION),
        ("/api/MN/GOV/5012345/REG/x", FaultCode.BAD_REQUEST),
        ("/r1/MN/GOV/5012345/REG/x#frag", FaultCode.BAD_REQUEST),
        ("/r1/MN/GOV/5012345/REG/x y", FaultCode.BAD_REQUEST),
        ("/r1/MN/GOV/5012345/REG/x%zz", FaultCode.BAD_REQUEST),
        ("r1/MN/GOV/5012345/REG/x", FaultCode.BAD_REQUEST),
        ("/r1/MN/GOV/50%3A12/REG/x", FaultCode.INVALID_SERVICE_IDENTIFIER),  # ':' in strict mode
    ],
)
def test_bad_targets_are_the_callers_fault(target: str, code: str) -> None:
    with pytest.raises(XRoadError) as info:
        parse_rest_target(target)
    assert info.value.code == code
    assert info.value.kind is ErrorKind.BAD_INPUT


def test_target_parts_are_percent_decoded_and_the_path_stays_raw() -> None:
    service, path, query = parse_rest_target("/r1/MN/GOV/50%2B12/R%2DG/get%3DX/a%2Fb/c?q=%20")
    assert service == ServiceId("MN", "GOV", "50+12", "R-G", "get=X")
    assert (path, query) == ("/a%2Fb/c", "q=%20")


def test_target_with_empty_query_keeps_its_question_mark() -> None:
    request = build_rest_request("GET", "/r1/A/B/C/D/e?", is_request(), query_id="q", request_id="r")
    assert request.to_bytes().startswith(b"GET\r\n/r1/A/B/C/D/e?\r\n")
    assert request.query == ""


@pytest.mark.parametrize(
    ("method", "headers", "code"),
    [
        ("get", is_request(), FaultCode.INVALID_HTTP_METHOD),
        ("CONNECT", is_request(), FaultCode.INVALID_HTTP_METHOD),
        ("GET", [("Accept", "*/*")], FaultCode.MISSING_HEADER),
        ("GET", [("X-Road-Client", "MN/COM")], FaultCode.INVALID_CLIENT_IDENTIFIER),
        ("GET", [("X-Road-Client", "MN/COM/1/A/B")], FaultCode.INVALID_CLIENT_IDENTIFIER),
        ("GET", [*is_request(), ("X-Road-Security-Server", "MN/GOV/1")], FaultCode.INVALID_SECURITY_SERVER),
        ("GET", [*is_request(), ("X-Road-Represented-Party", "a/b/c")], FaultCode.INVALID_IDENTIFIER),
        ("GET", [*is_request(), ("X-Road-Id", " ")], FaultCode.BAD_REQUEST),
        ("GET", [*is_request(), ("Bad Name", "x")], FaultCode.BAD_REQUEST),
        ("GET", [*is_request(), ("X-A", "a\r\nInjected: 1")], FaultCode.BAD_REQUEST),
    ],
)
def test_bad_is_requests_are_refused_as_the_callers_fault(
    method: str, headers: list[tuple[str, str]], code: str
) -> None:
    with pytest.raises(XRoadError) as info:
        build_rest_request(method, TARGET, headers, query_id="q", request_id="r")
    assert info.value.code == code
    assert info.value.kind is ErrorKind.BAD_INPUT


# --------------------------------------------------------------------------------------------------------
# The provider node's header part, the request hash, the consumer's check


def test_request_hash_formulas() -> None:
    hp, body = built().to_bytes(), b'{"a":1}'
    h = hashlib.sha512
    with_body = base64.b64encode(h(h(hp).digest() + h(body).digest()).digest()).decode()
    assert request_hash(hp, body) == with_body
    assert request_hash(hp, None) == base64.b64encode(h(hp).digest()).decode()
    assert request_hash(hp, b"") != request_hash(hp, None)  # an empty body part is still a body part


@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0, max_value=2000), max_size=5))
def test_incremental_hash_equals_one_shot(body: bytes, cuts: list[int]) -> None:
    hasher = RequestHasher(b"GET\r\n/r1/A/B/C/D/e\r\n")
    edges = sorted({0, len(body), *(min(c, len(body)) for c in cuts)})
    for a, b in itertools.pairwise(edges):
        hasher.update(body[a:b])
    if len(edges) == 1:
        hasher.update(b"")
    assert hasher.digest() == request_hash(b"GET\r\n/r1/A/B/C/D/e\r\n", body)
    assert hasher.body_digest == hashlib.sha512(body).digest()


def response_for(
    request: RestRequest, digest: str, headers: list[tuple[str, str]] | None = None
) -> RestResponse:
    provider = headers if headers is not None else [("Content-Type", "application/json"), ("Server", "nginx")]
    return build_rest_response(200, "OK", provider, request=request, request_hash=digest)


def test_response_bytes_and_x_road_header_order() -> None:
    request = built()
    digest = request_hash(request.to_bytes(), b"body")
    response = response_for(
        request,
        digest,
        [
            ("Content-Type", "application/json"),
            ("X-Road-Id", "provider-forged"),
            ("x-road-client", "forged"),
            ("X-Road-Request-Hash", "forged"),
            ("X-Road-Request-Id", "forged"),
            ("Transfer-Encoding", "chunked"),
            ("X-Road-Service", "kept-as-sent"),
            ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ],
    )
    assert response.to_bytes() == (
        b"200\r\nOK\r\n"
        b"Content-Type:application/json\r\n"
        b"X-Road-Service:kept-as-sent\r\n"
        b"Date:Mon, 01 Jan 2024 00:00:00 GMT\r\n"
        b"x-road-id:MN-q1\r\n"
        b"x-road-client:MN/COM/9011223/APP\r\n"
        b"x-road-service:MN/GOV/5012345/REG/citizen\r\n"
        b"x-road-request-id:rid-1\r\n"
        b"x-road-request-hash:" + digest.encode() + b"\r\n"
    )


def test_response_service_header_is_percent_encoded_like_guava() -> None:
    request = build_rest_request(
        "GET", "/r1/MN/GOV/50%20+12/R%C3%A4/get@x", is_request(), query_id="q", request_id="r", strict=False
    )
    response = response_for(request, "h")
    assert response.header("x-road-service") == "MN/GOV/50%20+12/R%C3%A4/get@x"
    assert response.service == request.service


def test_a_consistent_response_passes_and_parses_back() -> None:
    request = built()
    digest = request_hash(request.to_bytes(), None)
    response = response_for(request, digest)
    parsed = parse_header_part(response.to_bytes())
    assert parsed == response
    assert isinstance(parsed, RestResponse)
    check_rest_response(request, parsed, digest)
    assert is_headers_for_client(parsed) == list(parsed.headers)
    assert ("Server", "nginx") not in parsed.headers


@pytest.mark.parametrize(
    "field", ["x-road-client", "x-road-id", "x-road-service", "x-road-request-id", "hash"]
)
def test_each_inconsistency_is_refused(field: str) -> None:
    request = built()
    digest = request_hash(request.to_bytes(), None)
    response = response_for(request, digest)
    changed = {
        "x-road-client": "MN/COM/9011223/OTHER",
        "x-road-id": "other",
        "x-road-service": "MN/GOV/5012345/REG/other",
        "x-road-request-id": "other",
    }
    headers = tuple((n, changed.get(n, v)) for n, v in response.headers)
    expected = digest if field != "hash" else request_hash(request.to_bytes(), b"x")
    with pytest.raises(XRoadError) as info:
        check_rest_response(request, RestResponse(200, "OK", headers), expected)
    assert info.value.code == FaultCode.INCONSISTENT_RESPONSE


def test_provider_is_gets_every_header_of_the_header_part() -> None:
    request = built()
    names = [n for n, _ in provider_is_headers(request)]
    assert {"X-Road-Client", "x-road-id", "x-road-request-id", "Accept"} <= set(names)
    assert not SKIPPED_HEADERS & {n.lower() for n in names}


# --------------------------------------------------------------------------------------------------------
# Hostile header parts from a peer

_VALID = built().to_bytes()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GET\r\n",
        _VALID[:-2],  # no final CRLF
        _VALID.replace(b"\r\n", b"\n"),
        _VALID.replace(b"Accept:", b"Accept"),
        _VALID + b"Host:evil\r\n",
        _VALID + b"content-length:5\r\n",
        _VALID.replace(b"POST", b"BREW"),
        _VALID.replace(b"/r1/", b"/r9/"),
        _VALID.replace(b"X-Road-Client:MN/COM/9011223/APP\r\n", b""),
        _VALID.replace(b"X-Road-Client:MN/COM/9011223/APP", b"X-Road-Client:MN"),
        _VALID + b"\xff\xfe:\x80\r\n",
        b"GET\r\nhttp://evil/r1/A/B/C/D/e\r\nX-Road-Client:A/B/C\r\n",
        b"200\r\nOK\r\nx-road-id:q\r\n",  # no request hash
        b"200\r\nOK\r\nx-road-request-hash:h\r\n",  # no message id
        b"2000\r\nOK\r\nx-road-id:q\r\nx-road-request-hash:h\r\n",
        b"200\r\nOK\r\nx-road-id:q\r\nx-road-request-hash:h\r\nx-road-service:A/B\r\n",
        b"200\r\nO\rK\r\nx-road-id:q\r\nx-road-request-hash:h\r\n",
    ],
)
def test_garbage_header_parts_are_invalid_messages(data: bytes) -> None:
    with pytest.raises(XRoadError) as info:
        parse_header_part(data)
    assert info.value.code == FaultCode.INVALID_MESSAGE


def test_header_part_bounds() -> None:
    many = b"".join(b"X-H:%d\r\n" % i for i in range(MAX_HEADERS + 1))
    with pytest.raises(XRoadError, match="more than"):
        parse_header_part(_VALID + many)
    big = _VALID + b"X-Big:" + b"a" * MAX_HEADER_PART_BYTES + b"\r\n"
    with pytest.raises(XRoadError, match="larger than"):
        parse_header_part(big)


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_parse_or_fail_cleanly(data: bytes) -> None:
    outcome: RestRequest | RestResponse | XRoadError
    try:
        outcome = parse_header_part(data)
    except XRoadError as e:
        outcome = e
    if isinstance(outcome, XRoadError):
        assert outcome.code == FaultCode.INVALID_MESSAGE
    else:
        assert outcome.to_bytes() == data


_NAMES = st.from_regex(r"X-[A-Za-z0-9\-]{1,12}", fullmatch=True)
_VALUES = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00"), max_size=40)


@given(
    st.sampled_from(sorted(rest.REST_METHODS)),
    st.from_regex(r"(/[A-Za-z0-9\-._~%!$&'()*+,;=:@]{0,8}){0,3}(\?[A-Za-z0-9=&%/?]{0,12})?", fullmatch=True),
    st.lists(st.tuples(_NAMES, _VALUES), max_size=8),
)
def test_built_requests_round_trip_byte_for_byte(
    method: str, tail: str, extra: list[tuple[str, str]]
) -> None:
    target = "/r1/MN/GOV/5012345/REG/citizen" + tail
    built_or_error: RestRequest | XRoadError
    try:
        built_or_error = build_rest_request(
            method, target, [*is_request(), *extra], query_id="q", request_id="r"
        )
    except XRoadError as e:
        built_or_error = e
    if isinstance(built_or_error, XRoadError):
        assert built_or_error.kind is ErrorKind.BAD_INPUT  # e.g. a '%' not followed by two hex digits
        return
    request = built_or_error
    data = request.to_bytes()
    assert parse_header_part(data) == request
    assert parse_header_part(data).to_bytes() == data


# --------------------------------------------------------------------------------------------------------
# Metaservice bodies


def test_list_methods_json_shape() -> None:
    svc = ServiceId("MN", "GOV", "5012345", "REG", "citizen")
    body = list_methods_json(
        [
            RestServiceEntry(svc, "OPENAPI", (("GET", "/pets/*"), ("*", "/**"))),
            RestServiceEntry(ServiceId("MN", "GOV", "5012345", "REG", "plain"), "REST"),
        ]
    )
    assert json.loads(body) == {
        "service": [
            {
                "member_class": "GOV",
                "member_code": "5012345",
                "subsystem_code": "REG",
                "object_type": "SERVICE",
                "xroad_instance": "MN",
                "service_code": "citizen",
                "service_type": "OPENAPI",
                "endpoint_list": [{"method": "GET", "path": "/pets/*"}, {"method": "*", "path": "/**"}],
            },
            {
                "member_class": "GOV",
                "member_code": "5012345",
                "subsystem_code": "REG",
                "object_type": "SERVICE",
                "xroad_instance": "MN",
                "service_code": "plain",
                "service_type": "REST",
                "endpoint_list": [],
            },
        ]
    }


def test_list_clients_json_leaves_out_null_fields() -> None:
    member = MemberId("MN", "GOV", "5012345")
    body = json.loads(
        list_clients_json([(member, "Registry", None), (member.subsystem("REG"), "Registry", "Reg")])
    )
    assert body["member"][0] == {
        "id": {
            "member_class": "GOV",
            "member_code": "5012345",
            "object_type": "MEMBER",
            "xroad_instance": "MN",
        },
        "name": "Registry",
    }
    assert body["member"][1]["id"]["subsystem_code"] == "REG"
    assert body["member"][1]["subsystem_name"] == "Reg"


def test_list_clients_xml_reads_back() -> None:
    member = MemberId("MN", "GOV", "5012345")
    xml = list_clients_xml([(member, "Registry", None), (member.subsystem("REG"), None, "Reg")])
    root = etree.fromstring(xml)
    ns = {"xrd": rest.XROAD_NS}
    assert root.tag == f"{{{rest.XROAD_NS}}}clientList"
    members = root.findall("xrd:member", ns)
    ids = [m.find("xrd:id", ns) for m in members]
    assert [from_xml(i) for i in ids if i is not None] == [member, member.subsystem("REG")]
    assert members[0].findtext("xrd:name", namespaces=ns) == "Registry"
    assert members[0].find("xrd:subsystemName", ns) is None
    assert members[1].findtext("xrd:subsystemName", namespaces=ns) == "Reg"
