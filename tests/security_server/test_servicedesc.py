"""Service-description parsers: X-Road's own fixtures, Mongolian example services, hostile documents, and
hypothesis on arbitrary input (only ``XRoadError`` ever comes out)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from security_server.db import DescriptionType
from security_server.servicedesc import (
    MAX_DESCRIPTION_BYTES,
    RESERVED_SERVICE_CODES,
    parse_openapi,
    parse_rest,
    parse_wsdl,
    path_glob,
)
from security_server.servicedesc.openapi import MAX_ENDPOINTS, MAX_NESTING, MAX_YAML_ALIASES
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.wire.faults import http_status_of

DATA = Path(__file__).parent.parent / "data"
XROAD_WSDL = DATA / "xroad" / "soap" / "wsdl" / "ss-admin"
XROAD_OPENAPI = DATA / "xroad" / "rest" / "openapi"
MN = DATA / "servicedesc"
WSDL_URL = "https://civil-registry.gov.mn/xroad/civil-registration.wsdl"
DOC_URL = "https://civil-registry.gov.mn/docs/openapi.yaml"


def _fails(code: str, call: object) -> XRoadError:
    assert callable(call)
    with pytest.raises(XRoadError) as e:
        call()
    assert e.value.code == code, e.value
    assert e.value.http_status == 400
    return e.value


# -- WSDL -------------------------------------------------------------------------------------------------


def test_mongolian_wsdl_operations_become_services() -> None:
    parsed = parse_wsdl((MN / "civil-registration.wsdl").read_bytes(), source_url=WSDL_URL)
    assert parsed.type is DescriptionType.WSDL
    assert parsed.url == WSDL_URL
    assert parsed.document is None
    assert parsed.endpoints == ()
    got = {(s.code, s.version): (s.url, s.title) for s in parsed.services}
    # The SOAP 1.1 and SOAP 1.2 ports carry the same operations: the first port's address is kept.
    assert got == {
        ("getCitizen", "v1"): (
            "https://civil-registry.gov.mn/xroad/soap",
            "Иргэний мэдээлэл регистрийн дугаараар",
        ),
        ("getCitizenAddress", "v1"): (
            "https://civil-registry.gov.mn/xroad/soap",
            "Иргэний оршин суугаа хаяг",
        ),
        ("checkCitizenRegnum", None): ("https://civil-registry.gov.mn/xroad/soap", None),
    }


def test_x_roads_valid_wsdl_gives_its_three_services() -> None:
    # WsdlParserTest.readValidWsdl: three services; the old x-road.ee namespace of xrd:version is read too.
    parsed = parse_wsdl((XROAD_WSDL / "valid.wsdl").read_bytes(), source_url="http://127.0.0.1/valid.wsdl")
    assert {(s.code, s.version) for s in parsed.services} == {
        ("xroadGetRandom", "v1"),
        ("xroadSmallAttachment", "v1"),
        ("xroadBigAttachment", "v1"),
    }
    assert {s.url for s in parsed.services} == {"http://iks2-testhost:8080/testservice-0.1/xroad"}
    assert parsed.services[0].title == "Suvaline sisend document/literal stiilis"


@pytest.mark.parametrize(
    "name",
    [
        "valid-getrandom.wsdl",
        "valid-smallattachment.wsdl",
        "valid-additional-services.wsdl",
        "testservice.wsdl",
    ],
)
def test_x_roads_other_valid_wsdls_parse(name: str) -> None:
    assert parse_wsdl((XROAD_WSDL / name).read_bytes(), source_url="http://127.0.0.1/x.wsdl").services


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("invalid.wsdl", FaultCode.INVALID_WSDL),
        ("xxe.wsdl", FaultCode.INVALID_WSDL),
        ("invalid-servicecode-colon.wsdl", FaultCode.INVALID_WSDL_SERVICE_IDENTIFIER),
        ("invalid-servicecode-all.wsdl", FaultCode.INVALID_WSDL_SERVICE_IDENTIFIER),
        ("invalid-serviceversion-percent.wsdl", FaultCode.INVALID_WSDL_SERVICE_IDENTIFIER),
        ("invalid-serviceurl.wsdl", FaultCode.INVALID_SERVICE_URL),
    ],
)
def test_x_roads_invalid_wsdls_are_refused_with_its_codes(name: str, code: str) -> None:
    _fails(code, lambda: parse_wsdl((XROAD_WSDL / name).read_bytes(), source_url="http://127.0.0.1/x.wsdl"))


def _wsdl(
    operations: str,
    *,
    binding_ops: str | None = None,
    transport: str = "http://schemas.xmlsoap.org/soap/http",
) -> bytes:
    """A minimal WSDL: ``operations`` in the port type, ``binding_ops`` (default: the same) in the binding."""
    names = [n for n in operations.split() if n]
    port_type = "".join(f'<w:operation name="{n}"/>' for n in names)
    bound = (
        binding_ops
        if binding_ops is not None
        else "".join(f'<w:operation name="{n}"><x:version>v1</x:version></w:operation>' for n in names)
    )
    return f"""<w:definitions xmlns:w="http://schemas.xmlsoap.org/wsdl/"
        xmlns:s="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:x="http://x-road.eu/xsd/xroad.xsd"
        xmlns:t="urn:mn:test" targetNamespace="urn:mn:test">
      <w:portType name="P">{port_type}</w:portType>
      <w:binding name="B" type="t:P"><s:binding transport="{transport}"/>{bound}</w:binding>
      <w:service name="S"><w:port name="Q" binding="t:B"><s:address location="http://10.0.0.5/soap"/></w:port></w:service>
    </w:definitions>""".encode()


@pytest.mark.parametrize("reserved", sorted(RESERVED_SERVICE_CODES))
def test_wsdl_operations_with_reserved_codes_are_refused(reserved: str) -> None:
    error = _fails(
        FaultCode.INVALID_WSDL_SERVICE_IDENTIFIER,
        lambda: parse_wsdl(_wsdl(f"getCitizen {reserved}"), source_url=WSDL_URL),
    )
    assert reserved in error.message


XYP_OPERATION = "WS100101_getCitizenIDCardInfo"


def test_wsdl_operations_only_strict_mode_refuses_name_the_setting() -> None:
    document = _wsdl(f"getCitizen {XYP_OPERATION}")
    assert [s.code for s in parse_wsdl(document, source_url=WSDL_URL, strict=False).services] == [
        "getCitizen",
        XYP_OPERATION,
    ]
    error = _fails(
        FaultCode.INVALID_WSDL_SERVICE_IDENTIFIER, lambda: parse_wsdl(document, source_url=WSDL_URL)
    )
    assert error.message == (
        f"the WSDL has service codes or versions X-Road does not allow: {XYP_OPERATION!r} "
        f"({XYP_OPERATION!r} in strict mode only: node setting strict_identifier_checks = true)"
    )
    assert (error.details["identifiers"], error.details["setting"]) == (
        XYP_OPERATION,
        "strict_identifier_checks",
    )
    # A reserved code is refused in every mode, and then the setting is not the remedy.
    reserved = _fails(
        FaultCode.INVALID_WSDL_SERVICE_IDENTIFIER,
        lambda: parse_wsdl(_wsdl("getCitizen listMethods"), source_url=WSDL_URL, strict=False),
    )
    assert "setting" not in reserved.details
    assert "strict" not in reserved.message


def test_openapi_and_rest_codes_only_strict_mode_refuses_name_the_setting() -> None:
    document = (MN / "civil-registration.yaml").read_bytes()
    code = "WS100102_getCitizenPhoto"
    assert (
        parse_openapi(document, service_code=code, source_url=DOC_URL, strict=False).services[0].code == code
    )
    assert parse_rest("https://xyp.gov.mn/api", service_code=code, strict=False).services[0].code == code
    calls: list[Callable[[], object]] = [
        lambda: parse_openapi(document, service_code=code, source_url=DOC_URL),
        lambda: parse_rest("https://xyp.gov.mn/api", service_code=code),
    ]
    for call in calls:
        with pytest.raises(XRoadError) as e:
            call()
        assert (e.value.code, http_status_of(e.value)) == (FaultCode.INVALID_IDENTIFIER, 400)
        assert e.value.message.endswith("in strict mode (node setting strict_identifier_checks = true)")


def test_wsdl_structure_that_does_not_resolve_is_refused() -> None:
    ok = _wsdl("getCitizen")
    assert [s.code for s in parse_wsdl(ok, source_url=WSDL_URL).services] == ["getCitizen"]
    cases = {
        "duplicate operation in a binding": _wsdl(
            "getCitizen", binding_ops='<w:operation name="getCitizen"/><w:operation name="getCitizen"/>'
        ),
        "unknown binding": ok.replace(b'binding="t:B"', b'binding="t:Nope"'),
        "binding in another namespace": ok.replace(b'binding="t:B"', b'binding="s:B"'),
        "unknown prefix": ok.replace(b'binding="t:B"', b'binding="zz:B"'),
        "unknown port type": ok.replace(b'type="t:P"', b'type="t:Nope"'),
        "no operations": _wsdl(""),
        "not SOAP over HTTP": _wsdl("getCitizen", transport="http://www.w3.org/2010/soapjms/"),
        "WSDL 2.0": b'<description xmlns="http://www.w3.org/ns/wsdl"/>',
        "a SOAP fault instead": (DATA / "xroad" / "soap" / "ss-admin-fault.xml").read_bytes(),
        "two port types of one name": ok.replace(b"<w:binding", b'<w:portType name="P"/><w:binding'),
    }
    for why, document in cases.items():
        error = _fails(FaultCode.INVALID_WSDL, lambda d=document: parse_wsdl(d, source_url=WSDL_URL))
        assert error.message, why


def test_binding_operation_missing_from_the_port_type_has_no_title() -> None:
    # WSDL4J adds such an operation to the port type, undefined (X-Road's invalid-servicecode-all.wsdl).
    parsed = parse_wsdl(
        _wsdl("getCitizen", binding_ops='<w:operation name="getOther"/>'), source_url=WSDL_URL
    )
    assert [(s.code, s.version, s.title) for s in parsed.services] == [("getOther", None, None)]


def test_same_operation_in_two_versions_is_two_services() -> None:
    binding = '<w:operation name="getCitizen"><x:version>v1</x:version></w:operation>'
    two = _wsdl("getCitizen", binding_ops=binding).replace(
        b"</w:definitions>",
        b"""<w:binding name="B2" type="t:P"><s:binding transport="http://schemas.xmlsoap.org/soap/http"/>
          <w:operation name="getCitizen"><x:version>v2</x:version></w:operation></w:binding>
          <w:service name="S2"><w:port name="Q2" binding="t:B2"><s:address location="https://10.0.0.6/v2"/>
          </w:port></w:service></w:definitions>""",
    )
    parsed = parse_wsdl(two, source_url=WSDL_URL)
    assert [(s.code, s.version, s.url) for s in parsed.services] == [
        ("getCitizen", "v1", "http://10.0.0.5/soap"),
        ("getCitizen", "v2", "https://10.0.0.6/v2"),
    ]


BILLION_LAUGHS_XML = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<w:definitions xmlns:w="http://schemas.xmlsoap.org/wsdl/"><w:documentation>&lol9;</w:documentation></w:definitions>"""


def test_hostile_wsdls_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    external = (
        f'<!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<w:definitions xmlns:w="http://schemas.xmlsoap.org/wsdl/">&x;</w:definitions>'
    ).encode()
    external_dtd = b'<!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd"><d/>'
    for document in (BILLION_LAUGHS_XML, external, external_dtd):
        error = _fails(FaultCode.INVALID_WSDL, lambda d=document: parse_wsdl(d, source_url=WSDL_URL))
        assert "DOCTYPE" in error.message
        assert "TOP-SECRET" not in error.message
    huge = _wsdl("getCitizen").replace(
        b"<w:portType", b"<!--" + b"x" * MAX_DESCRIPTION_BYTES + b"--><w:portType"
    )
    assert (
        "larger than" in _fails(FaultCode.INVALID_WSDL, lambda: parse_wsdl(huge, source_url=WSDL_URL)).message
    )


# -- OpenAPI ----------------------------------------------------------------------------------------------


def test_mongolian_openapi_yaml_gives_one_service_and_its_operations() -> None:
    document = (MN / "civil-registration.yaml").read_bytes()
    parsed = parse_openapi(document, service_code="citizens", source_url=DOC_URL)
    assert parsed.type is DescriptionType.OPENAPI3
    assert (parsed.url, parsed.document) == (DOC_URL, None)
    [service] = parsed.services
    assert (service.code, service.version) == ("citizens", None)
    assert (
        service.url == "https://civil-registry.gov.mn/api/v1"
    )  # relative server resolved against the document
    assert [(e.service_code, e.method, e.path) for e in parsed.endpoints] == [
        ("citizens", "GET", "/citizens/*"),
        ("citizens", "GET", "/citizens/*/address"),
        ("citizens", "POST", "/consents"),
        ("citizens", "DELETE", "/consents/*"),
    ]


def test_uploaded_openapi_31_json_resolves_server_variables_and_path_item_refs() -> None:
    document = (MN / "vehicle-registry.json").read_bytes()
    parsed = parse_openapi(document, service_code="vehicles")
    assert (parsed.url, parsed.document) == (None, document)  # an upload: the store keeps the document
    assert parsed.services[0].url == "https://prod.transport.gov.mn/api/v2"
    assert {(e.method, e.path) for e in parsed.endpoints} == {
        ("GET", "/vehicles/*"),
        ("PUT", "/vehicles/*"),
        ("GET", "/citizens/*/vehicles"),
        ("GET", "/drivers/*/license"),
        ("HEAD", "/drivers/*/license"),
    }


def test_the_administrators_service_url_wins() -> None:
    document = (MN / "civil-registration.yaml").read_bytes()
    parsed = parse_openapi(document, service_code="citizens", service_url="http://10.1.2.3:8080/api")
    assert parsed.services[0].url == "http://10.1.2.3:8080/api"
    _fails(
        FaultCode.INVALID_SERVICE_URL,
        lambda: parse_openapi(document, service_code="c", service_url="ftp://x/"),
    )


@pytest.mark.parametrize(
    "name",
    [
        "ss-admin-openapiparser/valid.yaml",
        "ss-admin-openapiparser/valid.json",
        "ss-admin-openapiparser/v310.yaml",
    ],
)
def test_x_roads_openapi_fixtures_give_its_base_url(name: str) -> None:
    # OpenApiParserTest: base URL https://example.org/api; v310 has three operations.
    parsed = parse_openapi(
        (XROAD_OPENAPI / name).read_bytes(), service_code="test", source_url="http://127.0.0.1/x"
    )
    assert parsed.services[0].url == "https://example.org/api"
    if "v310" in name:
        assert len(parsed.endpoints) == 3


def test_x_roads_petstore_endpoints() -> None:
    parsed = parse_openapi(
        (XROAD_OPENAPI / "metaservice-petstore.json").read_bytes(),
        service_code="pets",
        source_url="http://127.0.0.1/p",
    )
    assert ("GET", "/pet/*") in {(e.method, e.path) for e in parsed.endpoints}
    assert all("{" not in e.path for e in parsed.endpoints)


def test_server_variable_without_a_value_needs_the_administrators_url() -> None:
    # X-Road keeps https://{securityserver}/r1 as the service URL (with a warning); a URL with a template in
    # it cannot be called, so the administrator gives the URL.
    document = (XROAD_OPENAPI / "ss-admin-openapiparser/warnings.yml").read_bytes()
    assert (
        "give the service URL"
        in _fails(
            FaultCode.OPENAPI_PARSING,
            lambda: parse_openapi(document, service_code="meta", source_url=DOC_URL),
        ).message
    )
    parsed = parse_openapi(document, service_code="meta", service_url="https://ss1.gov.mn/r1")
    assert ("GET", "/*/*/*/*/listMethods") in {(e.method, e.path) for e in parsed.endpoints}


def test_relative_server_of_an_upload_needs_the_administrators_url() -> None:
    document = (MN / "civil-registration.yaml").read_bytes()
    _fails(FaultCode.OPENAPI_PARSING, lambda: parse_openapi(document, service_code="citizens"))
    no_servers = b'{"openapi": "3.0.0", "paths": {}}'
    _fails(FaultCode.OPENAPI_PARSING, lambda: parse_openapi(no_servers, service_code="citizens"))
    # No servers means "/" on the document's own host (OpenAPI 3).
    assert parse_openapi(no_servers, service_code="citizens", source_url=DOC_URL).services[0].url == (
        "https://civil-registry.gov.mn/"
    )


@pytest.mark.parametrize(
    ("path", "glob"),
    [
        ("/citizens/{regnum}", "/citizens/*"),
        ("/a/{x}.{y}/b", "/a/*/b"),  # X-Road's \{[^/]*} is greedy within a segment
        ("/files/{name}.pdf", "/files/*.pdf"),
        ("/literal*star", "/literal\\*star"),
        ("/back\\slash", "/back\\\\slash"),
        ("/", "/"),
    ],
)
def test_path_templates_become_globs(path: str, glob: str) -> None:
    assert path_glob(path) == glob


@pytest.mark.parametrize(
    ("version", "accepted"),
    [
        ("3.0.0", True),
        ("3.0.3", True),
        ("3.0.4", True),
        ("3.1.0", True),
        ("3.1.1", True),
        ("3.2.0", False),
        ("2.0", False),
        ("4.0.0", False),
        ("3", False),
        ("", False),
    ],
)
def test_openapi_versions(version: str, accepted: bool) -> None:
    document = json.dumps({"openapi": version, "servers": [{"url": "https://x.gov.mn"}]}).encode()
    if accepted:
        assert parse_openapi(document, service_code="c").services[0].url == "https://x.gov.mn"
    else:
        _fails(FaultCode.UNSUPPORTED_OPENAPI_VERSION, lambda: parse_openapi(document, service_code="c"))


def test_wrong_versions_are_refused_with_x_roads_code() -> None:
    for document in (
        (XROAD_OPENAPI / "ss-admin-openapiparser/invalid_version.json").read_bytes(),  # 3.2.0
        (XROAD_OPENAPI / "metaservice-openapi_incompatible_version.yaml").read_bytes(),
        b'{"swagger": "2.0", "paths": {}}',
        b"openapi: 3.1",  # a YAML number, not the version string OpenAPI requires
    ):
        _fails(FaultCode.UNSUPPORTED_OPENAPI_VERSION, lambda d=document: parse_openapi(d, service_code="c"))


@pytest.mark.parametrize("reserved", sorted(RESERVED_SERVICE_CODES))
def test_reserved_codes_are_refused_for_openapi_and_rest(reserved: str) -> None:
    document = (MN / "civil-registration.yaml").read_bytes()
    _fails(
        FaultCode.INVALID_SERVICE_IDENTIFIER,
        lambda: parse_openapi(document, service_code=reserved, source_url=DOC_URL),
    )
    _fails(
        FaultCode.INVALID_SERVICE_IDENTIFIER,
        lambda: parse_rest("https://x.gov.mn/api", service_code=reserved),
    )


def test_invalid_service_code_is_refused() -> None:
    with pytest.raises(XRoadError) as e:
        parse_rest("https://x.gov.mn/api", service_code="get:citizen")
    assert e.value.code == FaultCode.INVALID_IDENTIFIER


def test_rest_base_url_is_one_service() -> None:
    parsed = parse_rest("https://tax.gov.mn/api/v1", service_code="taxpayer")
    assert parsed.type is DescriptionType.REST
    assert (parsed.url, parsed.document, parsed.endpoints) == ("https://tax.gov.mn/api/v1", None, ())
    assert [(s.code, s.url) for s in parsed.services] == [("taxpayer", "https://tax.gov.mn/api/v1")]
    _fails(FaultCode.INVALID_SERVICE_URL, lambda: parse_rest("file:///etc/passwd", service_code="x"))


@pytest.mark.parametrize(
    ("document", "why"),
    [
        (b"[1, 2]", "not an OpenAPI object"),
        (b"openapi: [3.0.0", "neither JSON nor YAML"),
        (b"\xff\xfe\x00o", "not UTF-8"),
        (b'{"openapi": "3.0.0", "paths": []}', "'paths' is not an object"),
        (b'{"openapi": "3.0.0", "paths": {"pets": {}}}', "does not start with '/'"),
        (b'{"openapi": "3.0.0", "paths": {"/p": {"get": 1}}}', "not an operation object"),
        (b'{"openapi": "3.0.0", "paths": {"/p": {"$ref": "other.yaml#/x"}}}', "inside the document"),
        (b'{"openapi": "3.0.0", "paths": {"/p": {"$ref": "#/nowhere"}}}', "does not resolve"),
        (b'{"openapi": "3.0.0", "x": {"$ref": "#/x"}, "paths": {"/p": {"$ref": "#/x"}}}', "$ref hops"),
        (b'{"openapi": "3.0.0", "servers": "https://x", "paths": {}}', "'servers' is not a list"),
        (b'{"openapi": "3.0.0", "openapi": "3.0.1"}', "appears twice"),
        (b"openapi: 3.0.0\nopenapi: 3.0.1\n", "appears twice"),
        # X-Road's duplicateendpoint.yaml: "get" twice under one path
        ((XROAD_OPENAPI / "ss-admin-openapiparser/duplicateendpoint.yaml").read_bytes(), "appears twice"),
        (b'{"openapi": "3.0.0", "paths": {"/a?b=1": {"get": {}}}}', "query string"),
        (b'{"openapi": "3.0.0", "paths": {"/' + b"a" * 300 + b'": {"get": {}}}}', "at most 255"),
    ],
)
def test_unreadable_openapi_structure_is_refused(document: bytes, why: str) -> None:
    error = _fails(
        FaultCode.OPENAPI_PARSING, lambda: parse_openapi(document, service_code="c", source_url=DOC_URL)
    )
    assert why in error.message


def test_yaml_billion_laughs_is_refused_quickly() -> None:
    lines = ["openapi: 3.0.0", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("paths: {}")
    started = time.monotonic()
    error = _fails(
        FaultCode.OPENAPI_PARSING, lambda: parse_openapi("\n".join(lines).encode(), service_code="c")
    )
    assert f"more than {MAX_YAML_ALIASES} YAML aliases" in error.message
    assert time.monotonic() - started < 2


def test_a_few_yaml_aliases_are_fine() -> None:
    document = b"""openapi: 3.0.3
servers: [{url: 'https://x.gov.mn'}]
paths:
  /a: &item {get: {responses: {'200': {description: OK}}}}
  /b: *item
"""
    assert {e.path for e in parse_openapi(document, service_code="c").endpoints} == {"/a", "/b"}


@pytest.mark.parametrize("style", ["json", "yaml"])
def test_deep_nesting_is_refused(style: str) -> None:
    depth = MAX_NESTING + 5 if style == "yaml" else 100_000
    document = ('{"openapi": "3.0.0", "x": ' + "[" * depth + "]" * depth + "}").encode()
    if style == "yaml":
        document = ("openapi: 3.0.0\nx: " + "[" * depth + "]" * depth + "\n").encode()
    assert (
        "nested deeper"
        in _fails(FaultCode.OPENAPI_PARSING, lambda: parse_openapi(document, service_code="c")).message
    )


def test_huge_openapi_documents_are_refused_before_parsing() -> None:
    huge = b'{"openapi": "3.0.0", "x": "' + b"a" * MAX_DESCRIPTION_BYTES + b'"}'
    started = time.monotonic()
    assert (
        "larger than"
        in _fails(FaultCode.OPENAPI_PARSING, lambda: parse_openapi(huge, service_code="c")).message
    )
    assert time.monotonic() - started < 1


def test_too_many_operations_are_refused() -> None:
    paths: dict[str, object] = {f"/p{i}": {"get": {}} for i in range(MAX_ENDPOINTS + 1)}
    document = json.dumps({"openapi": "3.0.0", "paths": paths}).encode()
    assert (
        "operations"
        in _fails(
            FaultCode.OPENAPI_PARSING, lambda: parse_openapi(document, service_code="c", source_url=DOC_URL)
        ).message
    )


# -- only XRoadError on arbitrary input ---------------------------------------------------------------------


def _only_xroad_errors(call: object) -> None:
    assert callable(call)
    error: XRoadError | None = None
    try:
        call()
    except XRoadError as e:
        error = e
    assert error is None or error.http_status == 400


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)
_PATH_KEYS = st.text(max_size=30).map(lambda s: "/" + s) | st.text(max_size=10)
_METHOD_KEYS = st.sampled_from(["get", "post", "parameters", "$ref", "x-a", "head"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_openapi_parser_raises_only_xroad_errors_on_bytes(data: bytes) -> None:
    _only_xroad_errors(lambda: parse_openapi(data, service_code="c", source_url=DOC_URL))


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from(["3.0.0", "3.1.0", "3.0", 3.0, None]) | _JSON,
    servers=st.none()
    | _JSON
    | st.lists(st.fixed_dictionaries({"url": st.text(max_size=40)}, optional={"variables": _JSON})),
    paths=st.none()
    | _JSON
    | st.dictionaries(_PATH_KEYS, st.dictionaries(_METHOD_KEYS, _JSON, max_size=3), max_size=4),
    as_yaml=st.booleans(),
    source=st.sampled_from([None, DOC_URL]),
)
def test_openapi_parser_raises_only_xroad_errors_on_documents(
    version: object, servers: object, paths: object, as_yaml: bool, source: str | None
) -> None:
    root = {"openapi": version, "servers": servers, "paths": paths}
    text = yaml.safe_dump(root) if as_yaml else json.dumps(root)
    _only_xroad_errors(lambda: parse_openapi(text.encode(), service_code="c", source_url=source))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_wsdl_parser_raises_only_xroad_errors_on_bytes(data: bytes) -> None:
    _only_xroad_errors(lambda: parse_wsdl(data, source_url=WSDL_URL))


_NAMES = st.sampled_from(["getCitizen", "getWsdl", "a:b", "", "getCitizen", "x" * 300, "checkCitizenRegnum"])


@settings(max_examples=300, deadline=None)
@given(
    port_type_ops=st.lists(_NAMES, max_size=4),
    binding_ops=st.lists(st.tuples(_NAMES, st.sampled_from(["", "v1", "v%", " "])), max_size=4),
    binding_ref=st.sampled_from(["t:B", "B", "x:B", "t:C", ""]),
    type_ref=st.sampled_from(["t:P", "P", ""]),
    location=st.sampled_from(["http://10.0.0.5/soap", "sftp://x", "", "https://a b", "http://"]),
    transport=st.sampled_from(["http://schemas.xmlsoap.org/soap/http", "urn:other", ""]),
)
def test_wsdl_parser_raises_only_xroad_errors_on_wsdl_shaped_documents(
    port_type_ops: list[str],
    binding_ops: list[tuple[str, str]],
    binding_ref: str,
    type_ref: str,
    location: str,
    transport: str,
) -> None:
    pt = "".join(
        f'<w:operation name="{n}"><w:documentation><x:title>t</x:title></w:documentation></w:operation>'
        for n in port_type_ops
    )
    bo = "".join(f'<w:operation name="{n}"><x:version>{v}</x:version></w:operation>' for n, v in binding_ops)
    document = f"""<w:definitions xmlns:w="http://schemas.xmlsoap.org/wsdl/"
        xmlns:s="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:x="http://x-road.eu/xsd/xroad.xsd"
        xmlns:t="urn:mn:test" targetNamespace="urn:mn:test">
      <w:portType name="P">{pt}</w:portType>
      <w:binding name="B" type="{type_ref}"><s:binding transport="{transport}"/>{bo}</w:binding>
      <w:service name="S"><w:port name="Q" binding="{binding_ref}">
        <s:address location="{location}"/></w:port></w:service>
    </w:definitions>""".encode()
    _only_xroad_errors(lambda: parse_wsdl(document, source_url=WSDL_URL))
