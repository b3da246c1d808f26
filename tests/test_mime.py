"""xroad_mn.mime: header parameters and the multipart parser (round trips, and refusals)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from xroad_mn.errors import XRoadError
from xroad_mn.mime import MAX_MIME_PARTS, parse_multipart, split_header_params

BOUNDARY = "ocsp0123456789abcdef"
CT = f"multipart/related; boundary={BOUNDARY}"


def _build(parts: list[tuple[str, bytes]], *, eol: bytes = b"\r\n", boundary: str = BOUNDARY) -> bytes:
    out = b""
    for content_type, body in parts:
        out += b"--" + boundary.encode() + eol + f"Content-Type: {content_type}".encode() + eol + eol
        out += body + eol
    return out + b"--" + boundary.encode() + b"--" + eol


def test_header_params() -> None:
    assert split_header_params('multipart/related; type="application/x"; boundary=b') == (
        "multipart/related",
        {"type": "application/x", "boundary": "b"},
    )


@given(
    st.lists(
        st.tuples(st.sampled_from(["application/ocsp-response", "text/plain"]), st.binary(max_size=300)),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from([b"\r\n", b"\n"]),
)
def test_multipart_round_trip(parts: list[tuple[str, bytes]], eol: bytes) -> None:
    bodies = [b.replace(BOUNDARY.encode(), b"x") for _, b in parts]  # the boundary never occurs in content
    # With bare LF line ends a body ending in CR is ambiguous (RFC 2046's delimiter is CRLF--boundary).
    assume(eol == b"\r\n" or not any(b.endswith(b"\r") for b in bodies))
    data = _build([(t, b) for (t, _), b in zip(parts, bodies, strict=True)], eol=eol)
    parsed = parse_multipart(data, CT)
    assert [(p.content_type, p.body) for p in parsed] == [
        (t, b) for (t, _), b in zip(parts, bodies, strict=True)
    ]


@given(st.binary(max_size=400))
def test_arbitrary_bytes_parse_or_refuse(data: bytes) -> None:
    try:
        parse_multipart(data, CT)
    except XRoadError as e:
        code = e.code
    else:
        code = "client.invalid_message"
    assert code.endswith("invalid_message")


@pytest.mark.parametrize(
    ("content_type", "code"),
    [
        ("text/xml", "invalid_content_type"),
        ("multipart/related", "invalid_content_type"),
        ("multipart/related; boundary=" + "b" * 71, "invalid_content_type"),
    ],
)
def test_bad_content_types(content_type: str, code: str) -> None:
    with pytest.raises(XRoadError) as e:
        parse_multipart(_build([("text/plain", b"x")]), content_type)
    assert e.value.has_code(code)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"no delimiter at all", "no delimiter"),
        (b"--" + BOUNDARY.encode() + b"\r\nContent-Type: a/b\r\n\r\nbody", "no closing delimiter"),
        (b"--" + BOUNDARY.encode() + b"junk\r\n\r\nx\r\n--" + BOUNDARY.encode() + b"--", "delimiter line"),
        (b"--" + BOUNDARY.encode() + b"\r\nno-colon\r\n\r\nx\r\n--" + BOUNDARY.encode() + b"--", "header"),
        (
            b"--" + BOUNDARY.encode() + b"\r\nA: 1\r\nA: 2\r\n\r\nx\r\n--" + BOUNDARY.encode() + b"--",
            "twice",
        ),
    ],
)
def test_malformed_bodies(data: bytes, words: str) -> None:
    with pytest.raises(XRoadError, match=words) as e:
        parse_multipart(data, CT)
    assert e.value.has_code("invalid_message")


def test_part_count_is_bounded() -> None:
    data = _build([("a/b", b"x")] * (MAX_MIME_PARTS + 1))
    with pytest.raises(XRoadError, match="more than"):
        parse_multipart(data, CT)
    assert len(parse_multipart(_build([("a/b", b"x")] * MAX_MIME_PARTS), CT)) == MAX_MIME_PARTS
