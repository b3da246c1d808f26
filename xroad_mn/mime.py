"""MIME as X-Road writes it: header values with parameters, and multipart bodies (RFC 2046).

Both the signed global configuration directory and management requests carry such headers::

    >>> split_header_params("multipart/related; charset=UTF-8; boundary=xtop1234")
    ('multipart/related', {'charset': 'UTF-8', 'boundary': 'xtop1234'})
    >>> split_header_params("SHARED-PARAMETERS; instance='DEV'")
    ('SHARED-PARAMETERS', {'instance': 'DEV'})

Parameter names are lower-cased (MIME names are case-insensitive); a repeated name keeps its first value;
single and double quotes are both accepted, since X-Road's code writes ``'`` where the spec writes ``"``.

Multipart bodies are split without copying or re-encoding what a signature covers: each part keeps the
offsets of its body in the original bytes::

    >>> body = b"--b\\r\\nContent-Type: text/plain\\r\\n\\r\\nhello\\r\\n--b--\\r\\n"
    >>> (part,) = split_multipart(body, "b", code="invalid_request")
    >>> part.headers["content-type"], part.body, (part.body_start, part.body_end)
    ('text/plain', b'hello', (33, 38))

The rules (RFC 2046 §5.1.1): a delimiter is ``--boundary`` at the start of a line, followed only by
transport padding (spaces, tabs) and the line end; the line end before a delimiter belongs to the
delimiter, not to the part; the close delimiter ``--boundary--`` is required (unless the caller says
otherwise: X-Road's own configuration test data omits it); the preamble before the
first delimiter and the epilogue after the close delimiter are ignored. A line that starts with
``--boundary`` and goes on with anything else is refused, and so is a header that appears twice in one
part. Lines may end in CRLF or a bare LF (X-Road's files are written both ways).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from xroad_mn.errors import XRoadError

__all__ = [
    "MAX_MULTIPART_PARTS",
    "MAX_PART_BYTES",
    "MAX_PART_HEADER_LINES",
    "MimePart",
    "boundary_of",
    "parse_headers",
    "split_header_params",
    "split_multipart",
]

MAX_MULTIPART_PARTS: Final = 256
"""Most parts one multipart level may have (callers may ask for fewer)."""
MAX_PART_BYTES: Final = 1024 * 1024
"""Largest part (headers and body) of a multipart body (callers may ask for less)."""
MAX_PART_HEADER_LINES: Final = 64
"""Most header lines in one part, continuation lines included (callers may ask for fewer)."""

# RFC 2046: boundary := 0*69<bchars> bcharsnospace
_BOUNDARY: Final = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")
_LINE_END: Final = re.compile(rb"\r?\n")
_PADDING: Final = b" \t"


def split_header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split a header value into its main value (stripped, case kept) and its parameters."""
    pieces = value.split(";")
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        name, sep, val = piece.partition("=")
        if not sep:
            continue
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] and val[0] in "'\"":
            val = val[1:-1]
        params.setdefault(name.strip().lower(), val)
    return pieces[0].strip(), params


def boundary_of(params: Mapping[str, str], *, code: str, what: str) -> str:
    """The ``boundary`` parameter of a multipart Content-Type, if it is one RFC 2046 allows; else ``code``."""
    boundary = params.get("boundary", "")
    if not _BOUNDARY.match(boundary):
        raise XRoadError(code, f"{what} has no usable boundary parameter")
    return boundary


@dataclass(frozen=True, slots=True)
class MimePart:
    """One part: its headers (names lower-cased) and where its body lies in the bytes that were split."""

    headers: Mapping[str, str]
    body_start: int
    body_end: int
    body: bytes
    """``data[body_start:body_end]`` of the split bytes, exactly."""


def _next_line(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(end of the line at ``pos`` without its line end, start of the next line)."""
    m = _LINE_END.search(data, pos, end)
    return (m.start(), m.end()) if m is not None else (end, end)


def parse_headers(
    data: bytes, start: int, end: int, *, code: str, what: str, max_lines: int = MAX_PART_HEADER_LINES
) -> tuple[dict[str, str], int]:
    """Header lines of ``data[start:end]`` up to a blank line or ``end``; returns (lower-case name -> value,
    body start). Continuation lines fold into the header before them; a repeated header is refused."""
    headers: dict[str, str] = {}
    last: str | None = None
    count = 0
    pos = start
    while pos < end:
        line_end, next_pos = _next_line(data, pos, end)
        if line_end == pos:
            return headers, next_pos
        count += 1
        if count > max_lines:
            raise XRoadError(code, f"{what} has more than {max_lines} header lines")
        try:
            text = data[pos:line_end].decode("ascii")
        except UnicodeDecodeError as e:
            raise XRoadError(code, f"{what} has a header line that is not ASCII") from e
        if text[0] in " \t":
            if last is None:
                raise XRoadError(code, f"{what} starts its headers with a continuation line")
            headers[last] += " " + text.strip()
        else:
            name, sep, value = text.partition(":")
            if not sep or not name.strip() or name != name.strip():
                raise XRoadError(code, f"{what} has a malformed header line {text[:60]!r}")
            last = name.lower()
            if last in headers:
                raise XRoadError(code, f"{what} has header {name[:60]!r} twice")
            headers[last] = value.strip()
        pos = next_pos
    return headers, end


@dataclass(frozen=True, slots=True)
class _Delimiter:
    before: int
    """Where the delimiter starts, the line end before it included."""
    after: int
    """Where the line after the delimiter starts."""
    close: bool


def _delimiters(
    data: bytes,
    start: int,
    end: int,
    boundary: str,
    code: str,
    what: str,
    max_parts: int,
    close_optional: bool,
) -> list[_Delimiter]:
    """Every delimiter line up to and including the close delimiter (at most ``max_parts`` parts); with
    ``close_optional`` a missing close delimiter stands at ``end``."""
    dash = b"--" + boundary.encode("ascii")
    found: list[_Delimiter] = []
    pos = start
    while True:
        at = data.find(dash, pos, end)
        if at < 0:
            if found and close_optional:
                found.append(_Delimiter(end, end, close=True))
                return found
            missing = "has no closing delimiter" if found else "contains no parts"
            raise XRoadError(code, f"{what} {missing}")
        if at != start and data[at - 1 : at] != b"\n":
            pos = at + 1  # the boundary text inside a line is content
            continue
        tail = at + len(dash)
        close = data.startswith(b"--", tail, end)
        if close:
            tail += 2
        while tail < end and data[tail] in _PADDING:
            tail += 1
        if data.startswith(b"\r\n", tail, end):
            after = tail + 2
        elif data.startswith(b"\n", tail, end):
            after = tail + 1
        elif tail == end and close:
            after = end
        else:
            raise XRoadError(code, f"{what} has a malformed delimiter line")
        before = at
        if at - start >= 2 and data[at - 2 : at] == b"\r\n":
            before = at - 2
        elif at > start and data[at - 1 : at] == b"\n":
            before = at - 1
        found.append(_Delimiter(before, after, close))
        if close:
            return found
        if len(found) > max_parts:
            raise XRoadError(code, f"{what} has more than {max_parts} parts")
        pos = after


def split_multipart(
    data: bytes,
    boundary: str,
    *,
    code: str,
    what: str = "multipart body",
    start: int = 0,
    end: int | None = None,
    max_parts: int = MAX_MULTIPART_PARTS,
    max_part_bytes: int = MAX_PART_BYTES,
    max_header_lines: int = MAX_PART_HEADER_LINES,
    close_optional: bool = False,
) -> list[MimePart]:
    """The parts of the multipart body ``data[start:end]`` (module docstring for the rules); ``code`` for
    any violation, more than ``max_parts`` parts, a part larger than ``max_part_bytes`` or one with more than
    ``max_header_lines`` header lines. Offsets in the parts are offsets in ``data``.

    ``close_optional`` lets the last part run to ``end`` when the close delimiter is missing, as X-Road's
    configuration client (mime4j) does; only the signed directory reader asks for it."""
    stop = len(data) if end is None else end
    if not _BOUNDARY.match(boundary):
        raise XRoadError(code, f"{what} has an unusable boundary")
    delimiters = _delimiters(data, start, stop, boundary, code, what, max_parts, close_optional)
    if len(delimiters) == 1:
        raise XRoadError(code, f"{what} contains no parts")
    parts: list[MimePart] = []
    for opening, closing in itertools.pairwise(delimiters):
        content_start = opening.after
        content_end = max(closing.before, content_start)
        if content_end - content_start > max_part_bytes:
            raise XRoadError(code, f"{what} has a part larger than {max_part_bytes} bytes")
        headers, body_start = parse_headers(
            data, content_start, content_end, code=code, what=f"{what} part", max_lines=max_header_lines
        )
        body_start = min(body_start, content_end)
        parts.append(
            MimePart(MappingProxyType(headers), body_start, content_end, data[body_start:content_end])
        )
    return parts
