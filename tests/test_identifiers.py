"""X-Road identifiers (reference §2): interop fixtures, round trips of every encoding, characters, fuzzing."""

from __future__ import annotations

import contextlib
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from lxml import etree

from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import (
    CLIENT_FORMS,
    ID_NS,
    MAX_ID_XML_BYTES,
    MAX_PART_CHARS,
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    MemberId,
    RepresentedParty,
    SecurityServerId,
    ServiceId,
    SubsystemId,
    XRoadId,
    check_characters,
    client_id_from_xml,
    format_client_header,
    format_colon_id,
    format_for_people,
    format_id,
    format_represented_party_header,
    format_rest_service_path,
    format_security_server_header,
    format_service_header,
    from_xml,
    parse_client_for_people,
    parse_client_header,
    parse_colon_client_id,
    parse_colon_server_id,
    parse_id,
    parse_id_xml,
    parse_member_for_people,
    parse_represented_party_header,
    parse_rest_service_path,
    parse_security_server_header,
    parse_server_for_people,
    parse_service_for_people,
    parse_service_header,
    parse_subject_for_people,
    parse_subsystem_for_people,
    server_id_from_xml,
    service_id_from_xml,
    to_xml,
    to_xroad_string,
    validate_part,
)

XRD_NS = "http://x-road.eu/xsd/xroad.xsd"
CLIENT_TAG = f"{{{XRD_NS}}}client"
STRICT_ALPHABET = string.ascii_letters + string.digits + "'()+,-.=?"
CLIENT_CODE = FaultCode.INVALID_CLIENT_IDENTIFIER.value
SERVICE_CODE = FaultCode.INVALID_SERVICE_IDENTIFIER.value
SERVER_CODE = FaultCode.INVALID_SECURITY_SERVER.value
ID_CODE = FaultCode.INVALID_IDENTIFIER.value

GOV = MemberId("MN", "GOV", "5012345")
REGISTRY = GOV.subsystem("civil-registry")
GET_PERSON = REGISTRY.service("getPerson")


# ------------------------------------------------------------------------------------------------------
# Interop fixtures: the verdicts INDEX.md gives

FIXTURES = (
    "clientid-subsystem.xml",
    "clientid.xml",
    "globalgroupid.xml",
    "invalid-clientid-member.xml",
    "invalid-clientid-subsystem.xml",
    "localgroupid.xml",
    "securityserverid.xml",
    "serviceid-version.xml",
    "serviceid.xml",
)
_VALID = re.compile(r'^VALID -> "([^"]+)"')
_INVALID = re.compile(r"MUST be rejected X_([A-Z_]+)")


def _verdicts(interop_dir: Path) -> dict[str, str]:
    """Third column of INDEX.md for every ``identifiers/common-domain`` row, keyed by file name."""
    out: dict[str, str] = {}
    for line in (interop_dir / "INDEX.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and cells[1].startswith("identifiers/common-domain/"):
            out[cells[1].rsplit("/", 1)[1]] = cells[3]
    return out


def test_every_identifier_fixture_has_a_verdict_and_is_tested(interop_dir: Path) -> None:
    on_disk = {p.name for p in (interop_dir / "identifiers" / "common-domain").iterdir()}
    assert on_disk == set(FIXTURES)
    assert set(_verdicts(interop_dir)) == set(FIXTURES)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_gets_the_index_verdict(interop_dir: Path, name: str) -> None:
    verdict = _verdicts(interop_dir)[name]
    data = (interop_dir / "identifiers" / "common-domain" / name).read_bytes()
    valid = _VALID.match(verdict)
    if valid is not None:
        expected = valid.group(1)
        parsed = parse_id_xml(data)
        # X-Road's own text of the identifier, exactly as INDEX.md gives it.
        assert to_xroad_string(parsed) == expected
        # Our string form reads back to the same identifier (see test_member_service_with_version_...).
        assert parse_id(format_id(parsed)) == parsed
        if not (isinstance(parsed, ServiceId) and parsed.subsystem_code is None and parsed.service_version):
            assert format_id(parsed) == expected
            assert str(parsed) == expected
            assert parse_id(expected) == parsed
        # And the element parsed in place, as a SOAP header reader does.
        assert from_xml(etree.fromstring(data)) == parsed
        return
    invalid = _INVALID.search(verdict)
    assert invalid is not None, verdict
    with pytest.raises(XRoadError) as exc:
        parse_id_xml(data)
    assert exc.value.code == invalid.group(1).lower()
    with pytest.raises(XRoadError) as exc:
        client_id_from_xml(etree.fromstring(data))
    assert exc.value.code == invalid.group(1).lower()


def test_fixture_details(interop_dir: Path) -> None:
    base = interop_dir / "identifiers" / "common-domain"
    service = parse_id_xml((base / "serviceid.xml").read_bytes())
    assert service == ServiceId("EE", "BUSINESS", "JODA", None, "getState")
    assert isinstance(service, ServiceId)
    assert service.service_version is None
    assert service.client == MemberId("EE", "BUSINESS", "JODA")
    local = parse_id_xml((base / "localgroupid.xml").read_bytes())
    assert local == LocalGroupId("lokaalgrupp")
    assert not hasattr(local, "instance")
    with pytest.raises(XRoadError, match="MEMBER identifier must not have a subsystemCode") as exc:
        parse_id_xml((base / "invalid-clientid-member.xml").read_bytes())
    assert exc.value.details["part"] == "subsystemCode"
    with pytest.raises(XRoadError, match="SUBSYSTEM identifier has no subsystemCode"):
        parse_id_xml((base / "invalid-clientid-subsystem.xml").read_bytes())


def test_member_service_with_version_uses_an_empty_subsystem_slot() -> None:
    """X-Road writes it ``SERVICE:EE/BUSINESS/JODA/getState/v1``, which reads as a subsystem service."""
    versioned = ServiceId("EE", "BUSINESS", "JODA", None, "getState", "v1")
    assert format_id(versioned) == "SERVICE:EE/BUSINESS/JODA//getState/v1"
    assert to_xroad_string(versioned) == "SERVICE:EE/BUSINESS/JODA/getState/v1"
    assert parse_id("SERVICE:EE/BUSINESS/JODA//getState/v1") == versioned
    assert parse_id("SERVICE:EE/BUSINESS/JODA/getState/v1") == ServiceId(
        "EE", "BUSINESS", "JODA", "getState", "v1"
    )
    assert parse_id("SERVICE:MN/GOV/5012345/civil-registry/getPerson/v2") == REGISTRY.service(
        "getPerson", "v2"
    )
    assert parse_id("SERVICE:MN/GOV/5012345/getPerson") == GOV.service("getPerson")


# ------------------------------------------------------------------------------------------------------
# Strategies

_T = TypeVar("_T")


def _outcome(call: Callable[[], _T]) -> _T | XRoadError:
    """The result of ``call``, or the XRoadError it raised (any other exception fails the test)."""
    try:
        return call()
    except XRoadError as e:
        return e


_TRAVERSAL = frozenset({".", ".."})
strict_parts = st.text(alphabet=STRICT_ALPHABET, min_size=1, max_size=12).filter(
    lambda s: s not in _TRAVERSAL
)
lax_parts = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc"), exclude_characters=":;/\\%\ufffe\uffff"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in _TRAVERSAL)


def members(p: st.SearchStrategy[str]) -> st.SearchStrategy[MemberId]:
    return st.builds(MemberId, p, p, p)


def subsystems(p: st.SearchStrategy[str]) -> st.SearchStrategy[SubsystemId]:
    return st.builds(SubsystemId, p, p, p, p)


def clients(p: st.SearchStrategy[str]) -> st.SearchStrategy[ClientId]:
    return st.one_of(members(p), subsystems(p))


def services(p: st.SearchStrategy[str]) -> st.SearchStrategy[ServiceId]:
    return st.builds(ServiceId, p, p, p, st.none() | p, p, st.none() | p)


def rest_services(p: st.SearchStrategy[str]) -> st.SearchStrategy[ServiceId]:
    return st.builds(ServiceId, p, p, p, p, p)


def servers(p: st.SearchStrategy[str]) -> st.SearchStrategy[SecurityServerId]:
    return st.builds(SecurityServerId, p, p, p, p)


def any_ids(p: st.SearchStrategy[str]) -> st.SearchStrategy[XRoadId]:
    return st.one_of(
        members(p),
        subsystems(p),
        services(p),
        servers(p),
        st.builds(GlobalGroupId, p, p),
        st.builds(LocalGroupId, p),
    )


MODES = st.sampled_from([(strict_parts, True), (lax_parts, False)])


# ------------------------------------------------------------------------------------------------------
# Round trips: parse(format(x)) == x for every encoding and every type


@given(any_ids(strict_parts))
def test_string_form_round_trip_strict(x: XRoadId) -> None:
    assert str(x) == format_id(x)
    assert parse_id(format_id(x)) == x


@given(any_ids(lax_parts))
def test_string_form_round_trip_non_strict(x: XRoadId) -> None:
    assert parse_id(format_id(x), strict=False) == x


@given(any_ids(strict_parts))
def test_xroad_string_differs_only_for_member_services_with_a_version(x: XRoadId) -> None:
    if isinstance(x, ServiceId) and x.subsystem_code is None and x.service_version is not None:
        assert to_xroad_string(x) != format_id(x)
    else:
        assert to_xroad_string(x) == format_id(x)


@given(st.data())
def test_xml_round_trip(data: st.DataObject) -> None:
    parts, strict = data.draw(MODES)
    x = data.draw(any_ids(parts))
    element = to_xml(x, CLIENT_TAG)
    assert from_xml(element, strict=strict) == x
    document = etree.tostring(element, xml_declaration=True, encoding="UTF-8")
    assert parse_id_xml(document, strict=strict) == x


@given(any_ids(strict_parts))
def test_xml_has_qualified_object_type_and_xsd_child_order(x: XRoadId) -> None:
    element = to_xml(x, CLIENT_TAG)
    assert element.get(f"{{{ID_NS}}}objectType") == x.object_type
    assert element.get("objectType") is None
    order = [
        "xRoadInstance",
        "memberClass",
        "memberCode",
        "subsystemCode",
        "groupCode",
        "serviceCode",
        "serviceVersion",
        "serverCode",
    ]
    names = [etree.QName(child).localname for child in element]
    assert names == sorted(names, key=order.index)
    assert all(etree.QName(child).namespace == ID_NS for child in element)
    assert b"xmlns:id=" in etree.tostring(element)


@given(st.data())
def test_client_header_round_trip(data: st.DataObject) -> None:
    parts, strict = data.draw(MODES)
    client = data.draw(clients(parts))
    value = format_client_header(client)
    assert value.isascii()
    assert parse_client_header(value, strict=strict) == client
    assert client_id_from_xml(to_xml(client, CLIENT_TAG), strict=strict) == client


@given(st.data())
def test_security_server_header_round_trip(data: st.DataObject) -> None:
    parts, strict = data.draw(MODES)
    server = data.draw(servers(parts))
    value = format_security_server_header(server)
    assert value.isascii()
    assert parse_security_server_header(value, strict=strict) == server
    assert server_id_from_xml(to_xml(server, "securityServer"), strict=strict) == server


@given(st.data())
def test_service_header_round_trip(data: st.DataObject) -> None:
    parts, strict = data.draw(MODES)
    service = data.draw(rest_services(parts))
    value = format_service_header(service)
    assert value.isascii()
    assert parse_service_header(value, strict=strict) == service
    assert service_id_from_xml(to_xml(service, "service"), strict=strict) == service


@given(
    st.data(),
    st.sampled_from(["", "/", "/people/42", "/a%2Fb/c", "//x"]),
    st.sampled_from(["", "?", "?q=1&r=%2F", "?a=b?c"]),
)
def test_rest_path_round_trip(data: st.DataObject, rest: str, query: str) -> None:
    parts, strict = data.draw(MODES)
    service = data.draw(rest_services(parts))
    path = format_rest_service_path(service)
    assert path.startswith("/r1/")
    assert path.isascii()
    assert path.count("/") == 6
    assert parse_rest_service_path(path + rest + query, strict=strict) == (service, rest + query)


@given(st.data())
def test_represented_party_round_trip(data: st.DataObject) -> None:
    parts, strict = data.draw(MODES)
    party = data.draw(st.builds(RepresentedParty, parts, st.none() | parts))
    value = format_represented_party_header(party)
    assert value.isascii()
    assert parse_represented_party_header(value, strict=strict) == party


@given(st.data())
def test_colon_form_round_trip(data: st.DataObject) -> None:
    parts, strict = data.draw(MODES)
    client = data.draw(clients(parts))
    assert parse_colon_client_id(format_colon_id(client), strict=strict) == client
    server = data.draw(servers(parts))
    assert parse_colon_server_id(format_colon_id(server), strict=strict) == server


@given(any_ids(lax_parts))
def test_strict_parsers_accept_or_reject_non_strict_values_with_xroad_error(x: XRoadId) -> None:
    outcome = _outcome(lambda: parse_id(format_id(x)))
    if isinstance(outcome, XRoadError):
        assert outcome.details["part"]
        assert outcome.details["strict"] is True
    else:
        assert outcome == x


# ------------------------------------------------------------------------------------------------------
# Fuzzing: every parser raises nothing but XRoadError

TEXT_PARSERS = [
    parse_id,
    parse_client_header,
    parse_security_server_header,
    parse_service_header,
    parse_represented_party_header,
    parse_colon_client_id,
    parse_colon_server_id,
    parse_rest_service_path,
]
# Text that looks like the encodings, so that the fuzzer gets past the first checks.
id_like_text = st.lists(
    st.sampled_from(
        [*"MNGOV5/:%2F?.-", "MEMBER:", "SUBSYSTEM:", "SERVICE:", "SERVER:", "/r1/", "%C3", "\x00"]
    ),
    max_size=40,
).map("".join)


@pytest.mark.parametrize("parser", TEXT_PARSERS, ids=lambda f: f.__name__)
@given(text=st.text() | id_like_text, strict=st.booleans())
def test_text_parsers_raise_only_xroad_error(parser: object, text: str, strict: bool) -> None:
    assert callable(parser)
    with contextlib.suppress(XRoadError):
        parser(text, strict=strict)


@given(st.binary(max_size=300), st.booleans())
def test_parse_id_xml_fuzzed_bytes(data: bytes, strict: bool) -> None:
    with contextlib.suppress(XRoadError):
        parse_id_xml(data, strict=strict)


xml_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\ufffe\uffff"), max_size=8
)


@st.composite
def fuzzed_id_elements(draw: st.DrawFn) -> etree._Element:
    """Identifier-shaped elements with random object types, children (any namespace) and texts."""
    element = etree.Element(CLIENT_TAG, nsmap={"id": ID_NS})
    object_type = draw(
        st.sampled_from(["MEMBER", "SUBSYSTEM", "SERVICE", "SERVER", "GLOBALGROUP", "LOCALGROUP", "x"])
    )
    attribute = draw(st.sampled_from([f"{{{ID_NS}}}objectType", "objectType", None]))
    if attribute is not None:
        element.set(attribute, object_type)
    names = ["xRoadInstance", "memberClass", "memberCode", "subsystemCode", "groupCode", "serviceCode"]
    names += ["serviceVersion", "serverCode", "other"]
    for name in draw(st.lists(st.sampled_from(names), max_size=8)):
        ns = draw(st.sampled_from([ID_NS, XRD_NS, None]))
        child = etree.SubElement(element, f"{{{ns}}}{name}" if ns else name)
        text = draw(xml_text | strict_parts)
        try:
            child.text = text
        except ValueError:  # lxml refuses control characters XML cannot carry
            child.text = "x"
        if draw(st.booleans()) and draw(st.booleans()):
            etree.SubElement(child, "nested")
    return element


@given(fuzzed_id_elements(), st.booleans())
def test_xml_readers_raise_only_xroad_error(element: etree._Element, strict: bool) -> None:
    for reader in (from_xml, client_id_from_xml, service_id_from_xml, server_id_from_xml):
        try:
            result = reader(element, strict=strict)
        except XRoadError:
            continue
        assert from_xml(to_xml(result, "again"), strict=strict) == result


@given(st.text(max_size=20), st.booleans())
def test_constructors_raise_only_xroad_error(text: str, strict: bool) -> None:
    member = _outcome(lambda: MemberId("MN", "GOV", text))
    if isinstance(member, XRoadError):
        assert member.code == CLIENT_CODE
        assert member.details["part"] == "memberCode"
    else:
        assert parse_id(format_id(member), strict=False) == member
    checked = _outcome(lambda: validate_part("serverCode", text, strict=strict))
    if isinstance(checked, XRoadError):
        assert checked.details["part"] == "serverCode"
    else:
        assert checked == text


# ------------------------------------------------------------------------------------------------------
# Characters

FORBIDDEN_STRICT = [*sorted(set(string.printable) - set(STRICT_ALPHABET)), "ä", "Ж", "\u200b", "\x7f", "\x85"]
FORBIDDEN_ALWAYS = [":", ";", "/", "\\", "%", "\x00", "\t", "\n", "\r", "\x1f", "\x7f", "\x9f"]


@pytest.mark.parametrize("char", FORBIDDEN_STRICT, ids=repr)
def test_strict_mode_rejects_every_other_character(char: str) -> None:
    code = f"a{char}b"
    with pytest.raises(XRoadError) as exc:
        parse_client_header(f"MN/GOV/5012345/{_encode(code)}")
    assert exc.value.code == CLIENT_CODE
    assert exc.value.details["part"] == "subsystemCode"
    assert exc.value.details["character"] == char
    assert "subsystemCode" in exc.value.message
    assert repr(char) in exc.value.message
    assert "X-Road identifiers do not allow" in exc.value.message


def _encode(value: str) -> str:
    return quote(value, safe="")


def test_error_message_names_the_part_and_character() -> None:
    with pytest.raises(XRoadError) as exc:
        parse_client_header("MN/GOV/a%2Fb")
    assert exc.value.message == "memberCode 'a/b' contains '/' which X-Road identifiers do not allow"
    assert exc.value.details["part"] == "memberCode"
    assert exc.value.code == CLIENT_CODE


@pytest.mark.parametrize("char", FORBIDDEN_ALWAYS, ids=repr)
def test_non_strict_mode_still_rejects_delimiters_and_control_characters(char: str) -> None:
    with pytest.raises(XRoadError) as exc:
        parse_client_header(f"MN/GOV/{_encode('x' + char)}", strict=False)
    assert exc.value.details["character"] == char
    with pytest.raises(XRoadError):
        MemberId("MN", "GOV", "x" + char)
    with pytest.raises(XRoadError):
        validate_part("memberCode", "x" + char, strict=False)


@pytest.mark.parametrize("value", ["with space", "under_score", "Улаанбаатар", "a#b", "a&b", "😀", "~tilde"])
def test_non_strict_mode_allows_what_strict_mode_rejects(value: str) -> None:
    member = MemberId("MN", "GOV", value)
    with pytest.raises(XRoadError, match="in strict mode"):
        parse_id(format_id(member))
    assert parse_id(format_id(member), strict=False) == member
    assert parse_client_header(format_client_header(member), strict=False) == member


def test_strict_alphabet_is_accepted() -> None:
    member = MemberId("MN", "GOV", STRICT_ALPHABET)
    assert parse_id(f"MEMBER:MN/GOV/{STRICT_ALPHABET}") == member
    assert format_client_header(member) == f"MN/GOV/{STRICT_ALPHABET.replace('?', '%3F')}"


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("MEMBER:/GOV/5012345", "xRoadInstance"),
        ("MEMBER:MN//5012345", "memberClass"),
        ("MEMBER:MN/GOV/", "memberCode"),
        ("SUBSYSTEM:MN/GOV/5012345/", "subsystemCode"),
        ("SERVICE:MN/GOV/5012345/civil-registry/", "serviceCode"),
        ("SERVICE:MN/GOV/5012345/civil-registry/getPerson/", "serviceVersion"),
        ("SERVICE:MN/GOV/5012345///v1", "serviceCode"),
        ("SERVER:MN/GOV/5012345/", "serverCode"),
        ("GLOBALGROUP:MN/", "groupCode"),
        ("LOCALGROUP:", "groupCode"),
    ],
)
def test_empty_parts_are_rejected(text: str, part: str) -> None:
    with pytest.raises(XRoadError, match=f"{part} is empty") as exc:
        parse_id(text, strict=False)
    assert exc.value.details["part"] == part


@pytest.mark.parametrize("value", [".", ".."])
def test_path_traversal_parts_are_rejected(value: str) -> None:
    with pytest.raises(XRoadError, match="path-traversal"):
        MemberId("MN", "GOV", value)
    with pytest.raises(XRoadError, match="path-traversal"):
        parse_rest_service_path(f"/r1/MN/GOV/{value}/sub/svc")
    assert MemberId("MN", "GOV", "...").member_code == "..."


def test_part_length_is_bounded() -> None:
    assert MemberId("MN", "GOV", "x" * MAX_PART_CHARS).member_code
    with pytest.raises(XRoadError, match="longer than") as exc:
        MemberId("MN", "GOV", "x" * (MAX_PART_CHARS + 1))
    assert exc.value.details["length"] == MAX_PART_CHARS + 1


def test_constructor_rejects_non_strings() -> None:
    with pytest.raises(XRoadError, match="must be a string") as exc:
        MemberId("MN", "GOV", 5012345)  # type: ignore[arg-type]
    assert exc.value.details["part"] == "memberCode"
    with pytest.raises(XRoadError, match="subsystemCode must be a string") as exc:
        SubsystemId("MN", "GOV", "5012345", None)  # type: ignore[arg-type]
    with pytest.raises(XRoadError, match="serviceCode must be a string"):
        ServiceId("MN", "GOV", "5012345", None, None)  # type: ignore[arg-type]
    with pytest.raises(XRoadError, match="partyCode must be a string"):
        RepresentedParty(None)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------
# Fault codes by type and segment counts


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("MEMBER:MN/GOV/a b", CLIENT_CODE),
        ("SUBSYSTEM:MN/GOV/1/a b", CLIENT_CODE),
        ("SERVICE:MN/GOV/1/sub/a b", SERVICE_CODE),
        ("SERVER:MN/GOV/1/a b", SERVER_CODE),
        ("GLOBALGROUP:MN/a b", ID_CODE),
        ("LOCALGROUP:a b", ID_CODE),
        ("THING:MN/GOV/1", ID_CODE),
        ("member:MN/GOV/1", ID_CODE),
        ("MN/GOV/1", ID_CODE),
    ],
)
def test_fault_code_follows_the_type(text: str, code: str) -> None:
    with pytest.raises(XRoadError) as exc:
        parse_id(text)
    assert exc.value.code == code


@pytest.mark.parametrize(
    "text",
    [
        "MEMBER:MN/GOV",
        "MEMBER:MN/GOV/1/2",
        "SUBSYSTEM:MN/GOV/1",
        "SUBSYSTEM:MN/GOV/1/2/3",
        "SERVICE:MN/GOV/1",
        "SERVICE:MN/GOV/1/2/3/4/5",
        "SERVER:MN/GOV/1",
        "SERVER:MN/GOV/1/2/3",
        "GLOBALGROUP:MN",
        "GLOBALGROUP:MN/a/b",
        "LOCALGROUP:a/b",
    ],
)
def test_string_form_segment_counts(text: str) -> None:
    with pytest.raises(XRoadError, match="parts, expected"):
        parse_id(text)


@pytest.mark.parametrize(
    ("parser", "value", "code"),
    [
        (parse_client_header, "MN/GOV", CLIENT_CODE),
        (parse_client_header, "MN/GOV/1/sub/x", CLIENT_CODE),
        (parse_client_header, "", CLIENT_CODE),
        (parse_security_server_header, "MN/GOV/1", SERVER_CODE),
        (parse_security_server_header, "MN/GOV/1/ss/x", SERVER_CODE),
        (parse_service_header, "MN/GOV/1/svc", SERVICE_CODE),
        (parse_service_header, "MN/GOV/1/sub/svc/v1", SERVICE_CODE),
        (parse_represented_party_header, "a/b/c", ID_CODE),
        (parse_colon_client_id, "MN:GOV", CLIENT_CODE),
        (parse_colon_client_id, "MN:GOV:1:sub:x", CLIENT_CODE),
        (parse_colon_server_id, "MN:GOV:1", SERVER_CODE),
    ],
)
def test_header_and_colon_segment_counts(parser: object, value: str, code: str) -> None:
    assert callable(parser)
    with pytest.raises(XRoadError) as exc:
        parser(value)
    assert exc.value.code == code


def test_headers_are_percent_decoded_per_segment() -> None:
    assert parse_client_header(" MN/GOV/5012345/civil-registry\t") == REGISTRY
    assert parse_client_header("MN/GOV/5012345") == GOV
    assert parse_client_header("MN/GOV/50%31%32345") == GOV
    assert parse_client_header("MN/COM/a+b") == MemberId("MN", "COM", "a+b")
    assert parse_client_header("MN/COM/a%2Bb") == MemberId("MN", "COM", "a+b")
    assert format_client_header(MemberId("MN", "COM", "a b")) == "MN/COM/a%20b"
    assert format_client_header(SubsystemId("MN", "GOV", "5012345", "what?")) == "MN/GOV/5012345/what%3F"
    assert parse_security_server_header("MN/GOV/5012345/ss1") == GOV.server("ss1")
    assert format_service_header(GET_PERSON) == "MN/GOV/5012345/civil-registry/getPerson"
    assert parse_service_header("MN/GOV/5012345/civil-registry/getPerson") == GET_PERSON
    assert parse_represented_party_header("COM/9011223") == RepresentedParty("9011223", "COM")
    assert parse_represented_party_header("9011223") == RepresentedParty("9011223")
    assert format_represented_party_header(RepresentedParty("9011223", "COM")) == "COM/9011223"


@pytest.mark.parametrize("value", ["MN/GOV/a%2", "MN/GOV/a%zz", "MN/GOV/%", "MN/GOV/%FF", "MN/GOV/%C3%28"])
def test_malformed_percent_encoding_is_rejected(value: str) -> None:
    with pytest.raises(XRoadError) as exc:
        parse_client_header(value)
    assert exc.value.code == CLIENT_CODE
    assert exc.value.details["part"] == "memberCode"


def test_colon_form() -> None:
    assert format_colon_id(REGISTRY) == "MN:GOV:5012345:civil-registry"
    assert format_colon_id(GOV) == "MN:GOV:5012345"
    assert format_colon_id(GOV.server("ss1")) == "MN:GOV:5012345:ss1"
    assert parse_colon_client_id("MN:GOV:5012345:civil-registry") == REGISTRY
    assert parse_colon_server_id("MN:GOV:5012345:ss1") == GOV.server("ss1")
    with pytest.raises(XRoadError):
        format_colon_id(GET_PERSON)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------
# REST path


def test_rest_path_examples() -> None:
    assert format_rest_service_path(GET_PERSON) == "/r1/MN/GOV/5012345/civil-registry/getPerson"
    path = "/r1/MN/GOV/5012345/civil-registry/getPerson"
    assert parse_rest_service_path(path) == (GET_PERSON, "")
    assert parse_rest_service_path(path + "/") == (GET_PERSON, "/")
    assert parse_rest_service_path(path + "?a=1") == (GET_PERSON, "?a=1")
    assert parse_rest_service_path(path + "/people/42?full=1&x=%2F") == (
        GET_PERSON,
        "/people/42?full=1&x=%2F",
    )
    odd = ServiceId("MN", "COM", "a b", "what?", "get#it")
    assert format_rest_service_path(odd) == "/r1/MN/COM/a%20b/what%3F/get%23it"
    assert parse_rest_service_path("/r1/MN/COM/a%20b/what%3F/get%23it/x", strict=False) == (odd, "/x")
    with pytest.raises(XRoadError, match="memberCode 'a b' contains ' '"):
        parse_rest_service_path("/r1/MN/COM/a%20b/what%3F/get%23it/x")
    with pytest.raises(XRoadError, match="serviceCode 'get/it' contains '/'"):
        parse_rest_service_path("/r1/MN/COM/1/sub/get%2Fit", strict=False)


def test_service_id_with_slash_cannot_exist() -> None:
    with pytest.raises(XRoadError, match="serviceCode 'get/it' contains '/'") as exc:
        ServiceId("MN", "COM", "1", "sub", "get/it")
    assert exc.value.code == SERVICE_CODE


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("", FaultCode.BAD_REQUEST),
        ("r1/MN/GOV/1/sub/svc", FaultCode.BAD_REQUEST),
        ("/", FaultCode.BAD_REQUEST),
        ("/rest/MN/GOV/1/sub/svc", FaultCode.BAD_REQUEST),
        ("/r2/MN/GOV/1/sub/svc", FaultCode.INVALID_PROTOCOL_VERSION),
        ("/r1", SERVICE_CODE),
        ("/r1/MN/GOV/1/svc", SERVICE_CODE),
        ("/r1/MN/GOV/1/sub?x=/svc", SERVICE_CODE),
        ("/r1/MN/GOV/1/sub/", SERVICE_CODE),
        ("/r1/MN/GOV//sub/svc", SERVICE_CODE),
        ("/r1/MN/GOV/1/sub/s%zz", SERVICE_CODE),
        ("/r1/MN/GOV/1/sub/s%3Bx", SERVICE_CODE),
    ],
)
def test_rest_path_rejections(path: str, code: str) -> None:
    with pytest.raises(XRoadError) as exc:
        parse_rest_service_path(path)
    assert exc.value.code == code


@pytest.mark.parametrize(
    ("service", "part"),
    [(GOV.service("getPerson"), "subsystemCode"), (REGISTRY.service("getPerson", "v1"), "serviceVersion")],
)
def test_rest_forms_need_a_subsystem_and_no_version(service: ServiceId, part: str) -> None:
    for formatter in (format_rest_service_path, format_service_header):
        with pytest.raises(XRoadError) as exc:
            formatter(service)
        assert exc.value.code == SERVICE_CODE
        assert exc.value.details["part"] == part


# ------------------------------------------------------------------------------------------------------
# XML


def _xml(object_type: str | None, *children: tuple[str, str], qualified: bool = True) -> bytes:
    attr = ""
    if object_type is not None:
        attr = f' id:objectType="{object_type}"' if qualified else f' objectType="{object_type}"'
    body = "".join(f"<id:{name}>{text}</id:{name}>" for name, text in children)
    return f'<xrd:client xmlns:xrd="{XRD_NS}" xmlns:id="{ID_NS}"{attr}>{body}</xrd:client>'.encode()


MEMBER_PARTS = (("xRoadInstance", "MN"), ("memberClass", "GOV"), ("memberCode", "5012345"))


def test_xml_unqualified_object_type_is_accepted() -> None:
    assert parse_id_xml(_xml("MEMBER", *MEMBER_PARTS, qualified=False)) == GOV


def test_xml_parts_in_any_order_are_accepted() -> None:
    assert parse_id_xml(_xml("MEMBER", *reversed(MEMBER_PARTS))) == GOV


@pytest.mark.parametrize(
    ("document", "code", "match"),
    [
        (
            _xml("MEMBER", *MEMBER_PARTS, ("subsystemCode", "sub")),
            CLIENT_CODE,
            "must not have a subsystemCode",
        ),
        (_xml("SUBSYSTEM", *MEMBER_PARTS), CLIENT_CODE, "has no subsystemCode"),
        (_xml("MEMBER", *MEMBER_PARTS[:2]), CLIENT_CODE, "has no memberCode"),
        (_xml("SERVICE", *MEMBER_PARTS), SERVICE_CODE, "has no serviceCode"),
        (
            _xml("SERVICE", *MEMBER_PARTS, ("serviceCode", "s"), ("serverCode", "x")),
            SERVICE_CODE,
            "serverCode",
        ),
        (_xml("SERVER", *MEMBER_PARTS, ("groupCode", "g")), SERVER_CODE, "must not have a groupCode"),
        (_xml("GLOBALGROUP", ("groupCode", "g")), ID_CODE, "has no xRoadInstance"),
        (_xml("LOCALGROUP", ("xRoadInstance", "MN"), ("groupCode", "g")), ID_CODE, "xRoadInstance"),
        (_xml("PERSON", *MEMBER_PARTS), ID_CODE, "unknown identifier objectType 'PERSON'"),
        (_xml(" MEMBER", *MEMBER_PARTS), ID_CODE, "unknown identifier objectType"),
        (_xml(None, *MEMBER_PARTS), ID_CODE, "no objectType"),
        (_xml("MEMBER", *MEMBER_PARTS, ("memberCode", "2")), CLIENT_CODE, "memberCode twice"),
        (_xml("MEMBER", *MEMBER_PARTS, ("securityCategoryCode", "x")), CLIENT_CODE, "unknown child"),
        (
            _xml("MEMBER", ("xRoadInstance", "MN"), ("memberClass", "GOV"), ("memberCode", "")),
            CLIENT_CODE,
            "empty",
        ),
        (
            _xml("MEMBER", ("xRoadInstance", "MN"), ("memberClass", "GOV"), ("memberCode", "a b")),
            CLIENT_CODE,
            "' '",
        ),
        (_xml("MEMBER", *MEMBER_PARTS[:2], ("memberCode", "<x/>")), CLIENT_CODE, "only text"),
    ],
)
def test_xml_rejections(document: bytes, code: str, match: str) -> None:
    with pytest.raises(XRoadError, match=match) as exc:
        parse_id_xml(document)
    assert exc.value.code == code


def test_xml_both_object_type_attributes_must_agree() -> None:
    element = etree.fromstring(_xml("MEMBER", *MEMBER_PARTS))
    element.set("objectType", "MEMBER")
    assert from_xml(element) == GOV
    element.set("objectType", "SUBSYSTEM")
    with pytest.raises(XRoadError, match="two different objectType"):
        from_xml(element)


def test_xml_typed_readers_reject_other_types() -> None:
    with pytest.raises(XRoadError, match="must not be a SERVICE") as exc:
        client_id_from_xml(to_xml(GET_PERSON, CLIENT_TAG))
    assert exc.value.code == CLIENT_CODE
    with pytest.raises(XRoadError) as exc:
        service_id_from_xml(to_xml(REGISTRY, "service"))
    assert exc.value.code == SERVICE_CODE
    with pytest.raises(XRoadError) as exc:
        server_id_from_xml(to_xml(GOV, "securityServer"))
    assert exc.value.code == SERVER_CODE
    # A broken client element read as a client carries the client code whatever is wrong with it.
    with pytest.raises(XRoadError) as exc:
        client_id_from_xml(etree.fromstring(_xml("PERSON", *MEMBER_PARTS)))
    assert exc.value.code == CLIENT_CODE


def test_to_xml_appends_to_a_parent_in_xsd_order() -> None:
    header = etree.Element("{http://schemas.xmlsoap.org/soap/envelope/}Header")
    element = to_xml(REGISTRY.service("getPerson", "v1"), CLIENT_TAG, parent=header)
    assert element.getparent() is header
    assert [etree.QName(c).localname for c in element] == [
        "xRoadInstance",
        "memberClass",
        "memberCode",
        "subsystemCode",
        "serviceCode",
        "serviceVersion",
    ]
    assert service_id_from_xml(header[0]) == REGISTRY.service("getPerson", "v1")


@pytest.mark.parametrize(
    "document",
    [
        b'<!DOCTYPE x [<!ENTITY e "MN">]>' + _xml("MEMBER", ("xRoadInstance", "&e;"), *MEMBER_PARTS[1:]),
        b'<!DOCTYPE x SYSTEM "http://127.0.0.1:1/x.dtd">' + _xml("MEMBER", *MEMBER_PARTS),
        b"<!DOCTYPE x>" + _xml("MEMBER", *MEMBER_PARTS),
        b"",
        b"<not-closed>",
        b"\xff\xfe\x00",
        _xml("MEMBER", *MEMBER_PARTS) + b" " * MAX_ID_XML_BYTES,
    ],
)
def test_parse_id_xml_is_safe(document: bytes) -> None:
    with pytest.raises(XRoadError) as exc:
        parse_id_xml(document)
    assert exc.value.code == FaultCode.INVALID_XML


def test_xml_comments_are_ignored() -> None:
    document = _xml("MEMBER", *MEMBER_PARTS).replace(b"<id:memberClass>", b"<!-- c --><id:memberClass>")
    assert parse_id_xml(document) == GOV


# ------------------------------------------------------------------------------------------------------
# The dataclasses


def test_relations() -> None:
    assert REGISTRY.member == GOV
    assert GOV.member == GOV
    assert GET_PERSON.client == REGISTRY
    assert GET_PERSON.member == GOV
    assert GOV.service("getPerson").client == GOV
    assert GOV.server("ss1").owner == GOV
    assert REGISTRY.service("getPerson", "v1").versionless == GET_PERSON
    assert GET_PERSON.versionless is GET_PERSON
    assert GOV.subsystem("civil-registry") == SubsystemId("MN", "GOV", "5012345", "civil-registry")


def test_equality_hash_and_order() -> None:
    ids: list[XRoadId] = [
        GET_PERSON,
        GOV.service("getPerson", "v1"),
        LocalGroupId("auditors"),
        GlobalGroupId("MN", "security-server-owners"),
        GOV.server("ss1"),
        REGISTRY,
        MemberId("MN", "COM", "9011223"),
        GOV,
        GOV.service("getPerson"),
    ]
    assert sorted(ids) == [
        MemberId("MN", "COM", "9011223"),
        GOV,
        REGISTRY,
        GOV.server("ss1"),
        GlobalGroupId("MN", "security-server-owners"),
        LocalGroupId("auditors"),
        GOV.service("getPerson"),
        GOV.service("getPerson", "v1"),
        GET_PERSON,
    ]
    assert len(set(ids) | {MemberId("MN", "GOV", "5012345")}) == len(ids)
    member: XRoadId = MemberId("MN", "GOV", "1")
    subsystem: XRoadId = SubsystemId("MN", "GOV", "1", "x")
    assert member != subsystem
    assert hash(GOV) == hash(MemberId("MN", "GOV", "5012345"))
    with pytest.raises(TypeError):
        assert GOV < "MEMBER:MN/GOV/5012345"
    with pytest.raises(AttributeError):
        GOV.member_code = "1"  # type: ignore[misc]


def test_client_id_alias_works_with_isinstance() -> None:
    assert isinstance(GOV, ClientId)
    assert isinstance(REGISTRY, ClientId)
    assert not isinstance(GET_PERSON, ClientId)
    assert isinstance(GET_PERSON, XRoadId)


# ------------------------------------------------------------------------------------------------------
# Identifiers as people write them (CLIs and admin APIs of the registry and the node)


@given(st.one_of(clients(strict_parts), servers(strict_parts)))
def test_people_read_both_forms_of_clients_and_servers(x: ClientId | SecurityServerId) -> None:
    read = parse_server_for_people if isinstance(x, SecurityServerId) else parse_client_for_people
    assert read(format_for_people(x)) == read(format_id(x)) == x
    assert format_for_people(x) == format_colon_id(x)


@given(st.one_of(clients(strict_parts), st.builds(GlobalGroupId, strict_parts, strict_parts)))
def test_people_read_subjects_and_services(x: ClientId | GlobalGroupId) -> None:
    assert parse_subject_for_people(format_for_people(x)) == x
    service = ServiceId("MN", "GOV", "9010001", "civil", x.instance if isinstance(x, GlobalGroupId) else "s")
    assert parse_service_for_people(format_id(service)) == service


def test_people_readers_refuse_other_kinds_and_name_the_accepted_forms() -> None:
    assert parse_member_for_people("MN:GOV:9010001") == MemberId("MN", "GOV", "9010001")
    assert parse_subsystem_for_people("SUBSYSTEM:MN/GOV/9010001/civil") == SubsystemId(
        "MN", "GOV", "9010001", "civil"
    )
    assert parse_subject_for_people("LOCALGROUP:auditors") == LocalGroupId("auditors")
    assert format_for_people(LocalGroupId("auditors")) == "LOCALGROUP:auditors"
    cases: list[tuple[Callable[[object], object], object, str]] = [
        (parse_member_for_people, "MN:GOV:9010001:civil", CLIENT_CODE),
        (parse_client_for_people, "MN/GOV", CLIENT_CODE),
        (parse_client_for_people, "LOCALGROUP:auditors", CLIENT_CODE),
        (parse_client_for_people, 42, CLIENT_CODE),
        (parse_server_for_people, "MN:GOV:9010001", FaultCode.INVALID_SECURITY_SERVER.value),
        (parse_server_for_people, "MEMBER:MN/GOV/9010001", FaultCode.INVALID_SECURITY_SERVER.value),
        (parse_subject_for_people, "SERVER:MN/GOV/9010001/ss1", FaultCode.INVALID_IDENTIFIER.value),
        (parse_service_for_people, "MN:GOV:9010001:civil", FaultCode.INVALID_SERVICE_IDENTIFIER.value),
    ]
    for read, text, code in cases:
        with pytest.raises(XRoadError) as exc:
            read(text)
        assert (exc.value.code, exc.value.kind) == (code, ErrorKind.BAD_INPUT)
        assert f"{str(text)!r} is not " in exc.value.message
        assert exc.value.details["value"] == str(text)
    with pytest.raises(XRoadError) as exc:
        parse_client_for_people("MN:GOV")
    assert exc.value.details["accepted_forms"] == CLIENT_FORMS
    assert "has 2 parts" in exc.value.message  # why the text was no identifier at all


@given(st.one_of(clients(lax_parts), servers(lax_parts)))
def test_people_read_lax_identifiers_when_not_strict(x: ClientId | SecurityServerId) -> None:
    assume(not format_colon_id(x).startswith(("LOCALGROUP:", "GLOBALGROUP:")))
    read = parse_server_for_people if isinstance(x, SecurityServerId) else parse_client_for_people
    assert read(format_for_people(x), strict=False) == read(format_id(x), strict=False) == x


def test_people_readers_take_strict_mode() -> None:
    service = "SERVICE:MN/GOV/9010001/xyp/WS100101_getCitizenIDCardInfo"
    assert parse_service_for_people(service, strict=False).service_code == "WS100101_getCitizenIDCardInfo"
    assert parse_client_for_people("MN:GOV:9010001:xyp_sub", strict=False) == SubsystemId(
        "MN", "GOV", "9010001", "xyp_sub"
    )
    for read, text in ((parse_service_for_people, service), (parse_client_for_people, "MN:GOV:9010001:a_b")):
        with pytest.raises(XRoadError, match="in strict mode") as exc:
            read(text)
        assert exc.value.kind is ErrorKind.BAD_INPUT
    with pytest.raises(XRoadError, match="'%' which X-Road identifiers do not allow\\)"):  # in no mode
        parse_service_for_people("SERVICE:MN/GOV/9010001/xyp/a%b", strict=False)


@given(st.text(max_size=60))
def test_people_readers_fail_only_with_bad_input(text: str) -> None:
    for read in (parse_client_for_people, parse_server_for_people, parse_subject_for_people):
        error: XRoadError | None = None
        try:
            read(text)
        except XRoadError as e:
            error = e
        if error is not None:
            assert error.kind is ErrorKind.BAD_INPUT
            assert "accepted_forms" in error.details


def test_check_characters_holds_a_leniently_read_identifier_to_strict_mode() -> None:
    service = parse_id("SERVICE:MN/GOV/9010001/civil-registry/WS100101_getCitizenIDCardInfo/v1", strict=False)
    check_characters(service, strict=False)
    with pytest.raises(XRoadError) as caught:
        check_characters(service, strict=True)
    assert caught.value.code == FaultCode.INVALID_SERVICE_IDENTIFIER
    assert "'_'" in caught.value.message
    client = parse_id("SUBSYSTEM:MN/GOV/9010001/xyp_gateway", strict=False)
    with pytest.raises(XRoadError) as caught:
        check_characters(client)
    assert caught.value.code == FaultCode.INVALID_CLIENT_IDENTIFIER
    check_characters(parse_id("SUBSYSTEM:MN/GOV/9010001/civil-registry"))
