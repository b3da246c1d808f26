"""The one MIME multipart parser: round trips, RFC 2046's rules, bounds, fuzzing, and both callers."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_globalconf_directory import _ec_key_and_cert
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.directory import build_signed_directory, parse_signed_directory
from xroad_mn.management import parse_management_request
from xroad_mn.mime import boundary_of, split_multipart

CODE = FaultCode.INVALID_REQUEST


def split(data: bytes, boundary: str = "b", **kw: object) -> list[tuple[dict[str, str], bytes]]:
    return [(dict(p.headers), p.body) for p in split_multipart(data, boundary, code=CODE, **kw)]  # type: ignore[arg-type]


def refused(data: bytes, words: str, boundary: str = "b", **kw: object) -> None:
    with pytest.raises(XRoadError, match=words) as info:
        split_multipart(data, boundary, code=CODE, **kw)  # type: ignore[arg-type]
    assert info.value.code == CODE


# -- round trips ------------------------------------------------------------------------------------------

_BCHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=?"
boundaries = st.builds(
    lambda inner, last: inner + last,
    st.text(alphabet=_BCHARS + " ", max_size=69),
    st.sampled_from(_BCHARS),
)
header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True)
header_values = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)


@dataclass(frozen=True)
class Layout:
    boundary: str
    eol: bytes
    preamble: bytes
    epilogue: bytes
    padding: bytes
    parts: list[tuple[dict[str, str], bytes]]

    def encode(self) -> bytes:
        dash = b"--" + self.boundary.encode()
        out = [self.preamble + self.eol if self.preamble else b""]
        for headers, body in self.parts:
            out.append(dash + self.padding + self.eol)
            out.extend(f"{name}: {value}".encode() + self.eol for name, value in headers.items())
            out.append(self.eol + body + self.eol)
        out.append(dash + b"--" + self.padding + self.eol + self.epilogue)
        return b"".join(out)


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    boundary = draw(boundaries)
    dash = b"--" + boundary.encode()
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        names = draw(st.lists(header_names, max_size=5, unique_by=str.lower))
        headers = {name: draw(header_values) for name in names}
        # With bare LF line ends a body ending in CR cannot be told from a CRLF before the delimiter.
        body = draw(
            st.binary(max_size=200).filter(lambda b: dash not in b and not (eol == b"\n" and b[-1:] == b"\r"))
        )
        parts.append((headers, body))
    return Layout(
        boundary,
        eol,
        draw(st.binary(max_size=40).filter(lambda b: dash not in b and b"\n" not in b)),
        draw(st.binary(max_size=40)),
        draw(st.sampled_from([b"", b" ", b"\t ", b"  "])),
        parts,
    )


@settings(max_examples=300, deadline=None)
@given(layouts())
def test_round_trip_keeps_every_header_and_body_byte(layout: Layout) -> None:
    data = layout.encode()
    parts = split_multipart(data, layout.boundary, code=CODE)
    assert [(dict(p.headers), p.body) for p in parts] == [
        ({k.lower(): v for k, v in headers.items()}, body) for headers, body in layout.parts
    ]
    for part in parts:
        assert data[part.body_start : part.body_end] == part.body


@settings(max_examples=300, deadline=None)
@given(layouts(), st.data())
def test_round_trip_inside_a_larger_document_keeps_offsets(layout: Layout, data: st.DataObject) -> None:
    before, after = data.draw(st.binary(max_size=30)), data.draw(st.binary(max_size=30))
    inner = layout.encode()
    doc = before + inner + after
    parts = split_multipart(doc, layout.boundary, code=CODE, start=len(before), end=len(before) + len(inner))
    assert [p.body for p in parts] == [body for _, body in layout.parts]
    assert all(doc[p.body_start : p.body_end] == p.body for p in parts)


# -- RFC 2046 rules ---------------------------------------------------------------------------------------


def test_the_line_end_before_a_delimiter_belongs_to_the_delimiter() -> None:
    assert split(b"--b\r\n\r\nbody\r\n\r\n--b--") == [({}, b"body\r\n")]
    assert split(b"--b\n\nbody\n--b--\n") == [({}, b"body")]


def test_preamble_and_epilogue_are_ignored() -> None:
    assert split(b"This is a preamble.\r\n--b\r\nA: 1\r\n\r\nx\r\n--b--\r\nepilogue --b\r\n") == [
        ({"a": "1"}, b"x")
    ]


def test_the_boundary_inside_a_line_is_content() -> None:
    assert split(b"--b\r\n\r\nsee --b here\r\n--b--") == [({}, b"see --b here")]


def test_a_part_of_headers_only_has_an_empty_body() -> None:
    assert split(b"--b\r\nExpire-date: x\r\nVersion: 2\r\n\r\n--b--\r\n") == [
        ({"expire-date": "x", "version": "2"}, b"")
    ]
    assert split(b"--b\r\n--b--") == [({}, b"")]


def test_folded_headers_are_joined() -> None:
    assert split(b"--b\r\nA: one\r\n two\r\n\r\n--b--") == [({"a": "one two"}, b"")]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"--b\r\nA: 1\r\na: 2\r\n\r\nx\r\n--b--", "twice"),
        (b"--b\r\n\r\nx\r\n--b", "malformed delimiter line"),
        (b"--b\r\n\r\nx\r\n", "no closing delimiter"),
        (b"--b--\r\n", "contains no parts"),
        (b"no delimiter at all", "contains no parts"),
        (b"--bc\r\n\r\nx\r\n--b--", "malformed delimiter line"),
        (b"--b x\r\n\r\nx\r\n--b--", "malformed delimiter line"),
        (b"--b\r\n\r\nx\r\n--b--x", "malformed delimiter line"),
        (b"--b\r\nno colon\r\n\r\nx\r\n--b--", "malformed header"),
        (b"--b\r\n folded first\r\n\r\nx\r\n--b--", "continuation"),
        (b"--b\r\nA : 1\r\n\r\nx\r\n--b--", "malformed header"),
        (b"--b\r\nA: \xff\r\n\r\nx\r\n--b--", "not ASCII"),
    ],
    ids=[
        "duplicate-header",
        "unclosed",
        "unclosed-no-delimiter",
        "no-parts",
        "no-delimiter",
        "boundary-prefix",
        "text-after-delimiter",
        "text-after-close",
        "header-without-colon",
        "leading-continuation",
        "space-before-colon",
        "non-ascii-header",
    ],
)
def test_violations_are_refused(data: bytes, words: str) -> None:
    refused(data, words)


def test_a_missing_close_delimiter_when_the_caller_allows_it() -> None:
    assert split(b"--b\r\n\r\nx\r\n--b\r\n\r\ny\r\n", close_optional=True) == [({}, b"x"), ({}, b"y\r\n")]
    refused(b"--b--", "contains no parts", close_optional=True)


@pytest.mark.parametrize("boundary", ["", "a" * 71, "ends with space ", 'no"quote', "tab\there", "é"])
def test_unusable_boundaries_are_refused(boundary: str) -> None:
    with pytest.raises(XRoadError):
        boundary_of({"boundary": boundary}, code=CODE, what="content type")
    refused(b"--x\r\n--x--", "boundary", boundary=boundary)


def test_bounds() -> None:
    three = b"--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b\r\n\r\n3\r\n--b--"
    assert len(split(three, max_parts=3)) == 3
    refused(three, "more than 2 parts", max_parts=2)
    refused(b"--b\r\n\r\n" + b"x" * 11 + b"\r\n--b--", "larger than 10 bytes", max_part_bytes=10)
    refused(b"--b\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n\r\n--b--", "more than 2 header lines", max_header_lines=2)


# -- fuzzing ----------------------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_fuzz_random_bytes_raise_only_xroad_errors(data: bytes, close_optional: bool) -> None:
    with contextlib.suppress(XRoadError):
        for part in split_multipart(data, "b", code=CODE, close_optional=close_optional):
            assert data[part.body_start : part.body_end] == part.body


@settings(max_examples=500, deadline=None)
@given(
    layouts(),
    st.integers(min_value=0),
    st.integers(0, 8),
    st.sampled_from([b"", b"\r", b"\n", b"\r\n", b"--", b"-", b":", b" ", b"\x00", b"\xff", b"b"]),
)
def test_fuzz_mutated_layouts_raise_only_xroad_errors(
    layout: Layout, pos: int, cut: int, token: bytes
) -> None:
    data = layout.encode()
    i = pos % (len(data) + 1)
    mutated = data[:i] + token + data[i + cut :]
    with contextlib.suppress(XRoadError):
        for part in split_multipart(mutated, layout.boundary, code=CODE):
            assert mutated[part.body_start : part.body_end] == part.body


# -- both callers refuse the same things ------------------------------------------------------------------


def test_management_request_with_a_duplicate_part_header_is_refused() -> None:
    body = b"--b\r\nContent-Type: text/xml\r\ncontent-type: text/xml\r\n\r\n<a/>\r\n--b--\r\n"
    with pytest.raises(XRoadError, match="twice") as info:
        parse_management_request(body, "multipart/related; boundary=b")
    assert info.value.code == FaultCode.INVALID_REQUEST


def _directory() -> bytes:
    key, cert = _ec_key_and_cert()
    return build_signed_directory(
        [("SHARED-PARAMETERS", "MN", "/V6/1/shared-params.xml", b"x")],
        datetime(2030, 1, 1, tzinfo=UTC),
        6,
        key,
        cert,
        boundaries=("outer", "inner"),
    )


def test_directory_with_a_duplicate_part_header_is_refused() -> None:
    data = _directory().replace(b"Version: 6\r\n", b"Version: 6\r\nversion: 7\r\n")
    with pytest.raises(XRoadError, match="twice") as info:
        parse_signed_directory(data)
    assert info.value.code == FaultCode.MALFORMED_GLOBALCONF


def test_directory_with_a_line_that_starts_with_the_boundary_is_refused() -> None:
    data = _directory().replace(b"Version: 6\r\n", b"Version: 6\r\n--innerx\r\n")
    with pytest.raises(XRoadError, match="delimiter") as info:
        parse_signed_directory(data)
    assert info.value.code == FaultCode.MALFORMED_GLOBALCONF


def test_management_request_without_its_close_delimiter_is_refused() -> None:
    body = b"--b\r\nContent-Type: text/xml\r\n\r\n<a/>\r\n"
    with pytest.raises(XRoadError, match="closing delimiter") as info:
        parse_management_request(body, "multipart/related; boundary=b")
    assert info.value.code == FaultCode.INVALID_REQUEST
