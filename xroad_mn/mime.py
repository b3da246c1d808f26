"""MIME as X-Road writes it: header values ``main; name=value; name='value'; name="value"`` and
``multipart/related`` bodies.

Both the signed global configuration directory and management requests carry such headers::

    >>> split_header_params("multipart/related; charset=UTF-8; boundary=xtop1234")
    ('multipart/related', {'charset': 'UTF-8', 'boundary': 'xtop1234'})
    >>> split_header_params("SHARED-PARAMETERS; instance='DEV'")
    ('SHARED-PARAMETERS', {'instance': 'DEV'})

Parameter names are lower-cased (MIME names are case-insensitive); a repeated name keeps its first value;
single and double quotes are both accepted, since X-Road's code writes ``'`` where the spec writes ``"``.

:func:`parse_multipart` splits a multipart body (the security server's OCSP download on port 5577 answers
one with a part per certificate)::

    >>> body = b"--b\\r\\nContent-Type: application/ocsp-response\\r\\n\\r\\nDER\\r\\n--b--\\r\\n"
    >>> [(p.content_type, p.body) for p in parse_multipart(body, "multipart/related; boundary=b")]
    [('application/ocsp-response', b'DER')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from xroad_mn.errors import FaultCode, XRoadError

__all__ = ["MAX_MIME_HEADER_LINES", "MAX_MIME_PARTS", "MimePart", "parse_multipart", "split_header_params"]

MAX_MIME_PARTS: Final = 1000
"""Most parts :func:`parse_multipart` accepts in one body."""
MAX_MIME_HEADER_LINES: Final = 100
"""Most header lines of one part."""
_BOUNDARY_OK: Final = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{1,70}$")
"""RFC 2046 ``bchars``: 1-70 characters."""


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


@dataclass(frozen=True, slots=True)
class MimePart:
    """One part of a multipart body: its headers (names lower-cased) and its content."""

    headers: MappingProxyType[str, str]
    body: bytes

    @property
    def content_type(self) -> str | None:
        """The part's media type, lower-cased, without parameters (``None`` when it has none)."""
        value = self.headers.get("content-type")
        return None if value is None else split_header_params(value)[0].lower()


def _malformed(message: str) -> XRoadError:
    return XRoadError(FaultCode.INVALID_MESSAGE, message)


def _part_headers(block: bytes) -> MappingProxyType[str, str]:
    lines = [line.rstrip(b"\r") for line in block.split(b"\n")] if block else []
    if len(lines) > MAX_MIME_HEADER_LINES:
        raise _malformed(f"a MIME part has more than {MAX_MIME_HEADER_LINES} header lines")
    headers: dict[str, str] = {}
    last: str | None = None
    for line in lines:
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError as e:
            raise _malformed("a MIME part header is not ASCII") from e
        if text[:1] in (" ", "\t") and last is not None:
            headers[last] += " " + text.strip()
            continue
        name, sep, value = text.partition(":")
        if not sep or not name or name != name.strip():
            raise _malformed(f"malformed MIME part header {text[:60]!r}")
        last = name.lower()
        if last in headers:
            raise _malformed(f"MIME part header {last} appears twice")
        headers[last] = value.strip()
    return MappingProxyType(headers)


def parse_multipart(body: bytes, content_type: str, *, expected: str = "multipart/related") -> list[MimePart]:
    """The parts of a multipart ``body`` whose Content-Type is ``content_type`` (RFC 2046).

    The media type must be ``expected``; the line end before each delimiter belongs to the delimiter; the
    close delimiter is required. Anything else raises ``invalid_message`` (``invalid_content_type`` for the
    header itself).
    """
    mime, params = split_header_params(content_type)
    if mime.lower() != expected:
        raise XRoadError(
            FaultCode.INVALID_CONTENT_TYPE, f"content type is {mime[:60]!r}, expected {expected}"
        )
    boundary = params.get("boundary", "")
    if not _BOUNDARY_OK.match(boundary) or boundary.endswith(" "):
        raise XRoadError(FaultCode.INVALID_CONTENT_TYPE, "multipart content type has no usable boundary")
    dash = b"--" + boundary.encode("ascii")
    if body.startswith(dash):
        pos = 0
    else:
        found = body.find(b"\n" + dash)
        if found < 0:
            raise _malformed("multipart body contains no delimiter")
        pos = found + 1
    parts: list[MimePart] = []
    while True:
        after = pos + len(dash)
        if body[after : after + 2] == b"--":
            return parts
        line_end = body.find(b"\n", after)
        if line_end < 0 or body[after:line_end].strip(b" \t\r"):
            raise _malformed("malformed multipart delimiter line")
        start = line_end + 1
        following = body.find(b"\n" + dash, start)
        if following < 0:
            raise _malformed("multipart body has no closing delimiter")
        end = following - 1 if following > start and body[following - 1 : following] == b"\r" else following
        content = body[start:end]
        if content.startswith((b"\r\n", b"\n")):
            head, payload = b"", content[2 if content.startswith(b"\r\n") else 1 :]
        else:
            blank = re.search(rb"\r?\n\r?\n", content)
            if blank is None:
                raise _malformed("a MIME part has no blank line after its headers")
            head, payload = content[: blank.start()], content[blank.end() :]
        if len(parts) >= MAX_MIME_PARTS:
            raise _malformed(f"multipart body has more than {MAX_MIME_PARTS} parts")
        parts.append(MimePart(_part_headers(head), payload))
        pos = following + 1
