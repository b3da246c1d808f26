"""The transport message between two X-Road nodes (PR-MESSTRANSP, reference §5.3): a ``multipart/mixed`` body.

The parts, in X-Road's order (``ProxyMessageEncoder``/``ProxyMessageDecoder``):

1. ``application/ocsp-response`` × N: OCSP responses for the sender's authentication certificate chain
   (requests only);
2. the message: SOAP (``text/xml`` or ``application/xop+xml``) followed by an optional nested
   ``multipart/mixed`` of attachments, or REST (``application/x-road-rest-request`` or
   ``application/x-road-rest-response``, the header part of :mod:`xroad_mn.wire.rest`) followed by an
   optional ``application/x-road-rest-body``;
3. batch signatures only: ``application/hash-chain-result`` then ``application/hash-chain``;
4. ``signature/bdoc-1.0/ts``: the XAdES signature, last, so the message can stream; or, in a response whose
   signing failed after streaming began, a ``text/xml`` SOAP fault in its place.

A whole ``text/xml`` response (no multipart) is a SOAP fault: the provider node failed before processing.

Example::

    >>> from xroad_mn.wire.transport import (
    ...     REST_REQUEST_CONTENT_TYPE, TransportMessage, decode_transport_message, encode_transport_message,
    ... )
    >>> msg = TransportMessage((b"0\\x00",), REST_REQUEST_CONTENT_TYPE, b"GET\\r\\n/r1/A/B/C/D/e\\r\\n",
    ...                        rest_body=b'{"x":1}', signature=b"<sig/>")
    >>> content_type, body = encode_transport_message(msg, boundary="xtopEXAMPLE")
    >>> content_type
    'multipart/mixed; charset=UTF-8; boundary=xtopEXAMPLE'
    >>> body.split(b"\\r\\n")[4:8]
    [b'--xtopEXAMPLE', b'content-type: application/x-road-rest-request', b'', b'GET']
    >>> body.split(b"\\r\\n")[-6:]
    [b'--xtopEXAMPLE', b'content-type: signature/bdoc-1.0/ts', b'', b'<sig/>', b'--xtopEXAMPLE--', b'']
    >>> decode_transport_message(content_type, body) == msg
    True

The bytes are X-Road's (``MultipartEncoder``): ``--boundary CRLF``, a lower-case ``content-type: `` line,
the part's other MIME headers as ``Name: value`` lines, a blank line, the content; a CRLF before every later
delimiter; ``CRLF --boundary-- CRLF`` at the end. The decoder reads X-Road's output and the test messages of
X-Road's own suite (LF line ends, ``Content-Type``); it is bounded (:data:`MAX_TRANSPORT_MESSAGE_BYTES`,
:data:`MAX_TRANSPORT_PARTS`, :data:`MAX_OCSP_RESPONSES`, :data:`MAX_ATTACHMENTS`) and fails with X-Road's
codes: ``invalid_content_type`` for a wrong part type, ``invalid_message`` for a malformed or misordered
body or extra content after the signature, ``missing_signature``, ``io_error`` for an OCSP part that is not
DER. Attachments are not parsed further than one nesting level, as X-Road's flat attachment parser.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Final

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.mime import MimePart, boundary_of, split_header_params, split_multipart
from xroad_mn.wire.parts import Attachment

__all__ = [
    "ATTACHMENT_BOUNDARY_PREFIX",
    "HASH_ALGORITHM_SHA512",
    "HASH_CHAIN_CONTENT_TYPE",
    "HASH_CHAIN_RESULT_CONTENT_TYPE",
    "HEADER_HASH_ALGORITHM",
    "HEADER_MESSAGE_TYPE",
    "HEADER_ORIGINAL_CONTENT_TYPE",
    "HEADER_ORIGINAL_SOAP_ACTION",
    "HEADER_PROXY_VERSION",
    "HEADER_REQUEST_ID",
    "MAX_ATTACHMENTS",
    "MAX_OCSP_RESPONSES",
    "MAX_TRANSPORT_MESSAGE_BYTES",
    "MAX_TRANSPORT_PARTS",
    "MESSAGE_TYPE_REST",
    "MULTIPART_MIXED",
    "OCSP_RESPONSE_CONTENT_TYPE",
    "REST_BODY_CONTENT_TYPE",
    "REST_REQUEST_CONTENT_TYPE",
    "REST_RESPONSE_CONTENT_TYPE",
    "SIGNATURE_CONTENT_TYPE",
    "TEXT_XML",
    "TEXT_XML_UTF8",
    "TOP_BOUNDARY_PREFIX",
    "XOP_XML",
    "Attachment",
    "TransportMessage",
    "decode_transport_message",
    "encode_transport_message",
    "multipart_content_type",
]

# HTTP headers of the transport request and response (MimeUtils.HEADER_*)
HEADER_REQUEST_ID: Final = "x-road-request-id"
HEADER_HASH_ALGORITHM: Final = "x-hash-algorithm"
HEADER_ORIGINAL_CONTENT_TYPE: Final = "x-original-content-type"
HEADER_ORIGINAL_SOAP_ACTION: Final = "x-original-soapaction"
HEADER_PROXY_VERSION: Final = "x-proxy-version"
HEADER_MESSAGE_TYPE: Final = "x-road-message-type"
HASH_ALGORITHM_SHA512: Final = "SHA-512"
"""The value of ``x-hash-algorithm`` (the Java name of the part-hash algorithm)."""
MESSAGE_TYPE_REST: Final = "REST"
"""The value of ``x-road-message-type`` for REST messages."""

# Part content types (MimeTypes.*)
OCSP_RESPONSE_CONTENT_TYPE: Final = "application/ocsp-response"
REST_REQUEST_CONTENT_TYPE: Final = "application/x-road-rest-request"
REST_RESPONSE_CONTENT_TYPE: Final = "application/x-road-rest-response"
REST_BODY_CONTENT_TYPE: Final = "application/x-road-rest-body"
HASH_CHAIN_RESULT_CONTENT_TYPE: Final = "application/hash-chain-result"
HASH_CHAIN_CONTENT_TYPE: Final = "application/hash-chain"
SIGNATURE_CONTENT_TYPE: Final = "signature/bdoc-1.0/ts"
TEXT_XML: Final = "text/xml"
TEXT_XML_UTF8: Final = "text/xml; charset=UTF-8"
XOP_XML: Final = "application/xop+xml"
MULTIPART_MIXED: Final = "multipart/mixed"

TOP_BOUNDARY_PREFIX: Final = "xtop"
ATTACHMENT_BOUNDARY_PREFIX: Final = "xatt"
_RANDOM_BOUNDARY_CHARS: Final = 30
"""X-Road's ``MimeUtils.randomBoundary``: 30 random ASCII letters."""

MAX_TRANSPORT_MESSAGE_BYTES: Final = 64 * 1024 * 1024
"""Largest transport message (and so largest part) decoded in memory."""
MAX_TRANSPORT_PARTS: Final = 64
"""Most parts at the top level: OCSP responses, message, body or attachments, hash chains, signature."""
MAX_OCSP_RESPONSES: Final = 16
"""Most OCSP parts (one per certificate of the sender's authentication chain)."""
MAX_ATTACHMENTS: Final = 256
"""Most SOAP attachments in the nested multipart."""

_SOAP_TYPES: Final = frozenset({TEXT_XML, XOP_XML})
_REST_TYPES: Final = frozenset({REST_REQUEST_CONTENT_TYPE, REST_RESPONSE_CONTENT_TYPE})
_CRLF: Final = b"\r\n"
_DER_SEQUENCE: Final = 0x30
_DER_LONG_FORM: Final = 0x80
_DER_MAX_LENGTH_OCTETS: Final = 4


@dataclass(frozen=True)
class TransportMessage:
    """The parts of a transport message (module docstring), as bytes.

    ``message_content_type`` is the message part's content type: a REST header part type, or the SOAP part's
    (``text/xml; charset=UTF-8``, ``application/xop+xml; ...``); ``message_headers`` are the SOAP part's other
    MIME headers. ``rest_body`` is ``None`` when there is no body part (X-Road sends none for an empty body).
    Exactly one of ``signature`` and ``fault`` is set in a well-formed message; a whole ``text/xml`` response
    decodes to ``fault`` with an empty ``message``.
    """

    ocsp_responses: tuple[bytes, ...]
    message_content_type: str
    message: bytes
    attachments: tuple[Attachment, ...] = ()
    rest_body: bytes | None = None
    hash_chain_result: bytes | None = None
    hash_chain: bytes | None = None
    signature: bytes | None = None
    fault: bytes | None = None
    message_headers: tuple[tuple[str, str], ...] = ()

    @property
    def is_rest(self) -> bool:
        """True when the message is a REST header part."""
        return _base_type(self.message_content_type) in _REST_TYPES


def _base_type(content_type: str) -> str:
    return split_header_params(content_type)[0].lower()


def multipart_content_type(boundary: str) -> str:
    """``multipart/mixed; charset=UTF-8; boundary=...`` (``MimeUtils.mpMixedContentType``)."""
    return f"{MULTIPART_MIXED}; charset=UTF-8; boundary={boundary}"


# --------------------------------------------------------------------------------------------------------
# Encoding


def _random_boundary() -> str:
    letters = string.ascii_letters
    return "".join(letters[b % len(letters)] for b in secrets.token_bytes(_RANDOM_BOUNDARY_CHARS))


class _Writer:
    """X-Road's ``MultipartEncoder``: a CRLF before every delimiter but the first."""

    def __init__(self) -> None:
        self.out = bytearray()
        self._started = False

    def part(
        self, boundary: str, content_type: str, headers: tuple[tuple[str, str], ...], data: bytes
    ) -> None:
        if self._started:
            self.out += _CRLF
        self._started = True
        lines = [f"--{boundary}", f"content-type: {content_type}", *(f"{n}: {v}" for n, v in headers)]
        self.out += "\r\n".join(lines).encode("latin-1") + _CRLF + _CRLF + data

    def close(self, boundary: str) -> None:
        self.out += b"\r\n--" + boundary.encode("ascii") + b"--\r\n"


def _check_encodable(msg: TransportMessage) -> None:
    if (msg.signature is None) == (msg.fault is None):
        raise XRoadError(FaultCode.INTERNAL_ERROR, "transport message needs either a signature or a fault")
    if (msg.hash_chain_result is None) != (msg.hash_chain is None):
        raise XRoadError(FaultCode.INTERNAL_ERROR, "hash chain result and hash chain go together")
    if msg.is_rest and msg.attachments:
        raise XRoadError(FaultCode.INTERNAL_ERROR, "a REST message carries a body, not attachments")
    if not msg.is_rest and msg.rest_body is not None:
        raise XRoadError(FaultCode.INTERNAL_ERROR, "a SOAP message carries attachments, not a REST body")
    if any(a.header("content-type") is None for a in msg.attachments):
        raise XRoadError(FaultCode.INTERNAL_ERROR, "every attachment needs a content-type header")


def _other_headers(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((n, v) for n, v in headers if n.lower() != "content-type")


def encode_transport_message(msg: TransportMessage, *, boundary: str | None = None) -> tuple[str, bytes]:
    """Encode ``msg`` as X-Road does; returns (HTTP content type, body).

    The boundary is ``xtop`` + 30 random letters unless given; the attachments' boundary is ``xatt`` with the
    same suffix. A message needs exactly one of ``signature`` and ``fault``.
    """
    _check_encodable(msg)
    suffix = _random_boundary()
    top = boundary if boundary is not None else TOP_BOUNDARY_PREFIX + suffix
    if boundary is not None:
        suffix = boundary.removeprefix(TOP_BOUNDARY_PREFIX)
    att = ATTACHMENT_BOUNDARY_PREFIX + suffix
    w = _Writer()
    for ocsp in msg.ocsp_responses:
        w.part(top, OCSP_RESPONSE_CONTENT_TYPE, (), ocsp)
    w.part(top, msg.message_content_type, _other_headers(msg.message_headers), msg.message)
    if msg.rest_body is not None:
        w.part(top, REST_BODY_CONTENT_TYPE, (), msg.rest_body)
    if msg.attachments:
        w.part(top, multipart_content_type(att), (), b"")
        for a in msg.attachments:
            w.part(att, a.content_type or "", _other_headers(a.headers), a.data)
        w.close(att)
    if msg.signature is not None:
        if msg.hash_chain_result is not None and msg.hash_chain is not None:
            w.part(top, HASH_CHAIN_RESULT_CONTENT_TYPE, (), msg.hash_chain_result)
            w.part(top, HASH_CHAIN_CONTENT_TYPE, (), msg.hash_chain)
        w.part(top, SIGNATURE_CONTENT_TYPE, (), msg.signature)
    elif msg.fault is not None:
        w.part(top, TEXT_XML_UTF8, (), msg.fault)
    w.close(top)
    return multipart_content_type(top), bytes(w.out)


# --------------------------------------------------------------------------------------------------------
# Decoding


def _check_ocsp_der(data: bytes) -> None:
    """The OCSP part must be one DER SEQUENCE (X-Road: ``new OCSPResp(bytes)``, else ``io_error``)."""
    bad = XRoadError(FaultCode.IO_ERROR, "OCSP response part is not a DER-encoded OCSP response")
    if len(data) < 2 or data[0] != _DER_SEQUENCE:
        raise bad
    first = data[1]
    if first < _DER_LONG_FORM:
        header, length = 2, first
    else:
        octets = first & 0x7F
        if not 1 <= octets <= _DER_MAX_LENGTH_OCTETS or len(data) < 2 + octets:
            raise bad
        header, length = 2 + octets, int.from_bytes(data[2 : 2 + octets], "big")
    if header + length != len(data):
        raise bad


class _Parts:
    """The top-level parts, read in order."""

    def __init__(self, parts: list[MimePart]) -> None:
        self._parts = parts
        self._i = 0

    def peek_type(self) -> str | None:
        if self._i >= len(self._parts):
            return None
        return _base_type(self._parts[self._i].headers.get("content-type", ""))

    def take(self) -> MimePart:
        part = self._parts[self._i]
        self._i += 1
        return part

    def take_if(self, base_type: str) -> MimePart | None:
        return self.take() if self.peek_type() == base_type else None


def _headers_of(part: MimePart) -> tuple[tuple[str, str], ...]:
    return tuple((n, v) for n, v in part.headers.items() if n != "content-type")


def _ocsp_parts(parts: _Parts) -> tuple[bytes, ...]:
    found: list[bytes] = []
    while (part := parts.take_if(OCSP_RESPONSE_CONTENT_TYPE)) is not None:
        if len(found) == MAX_OCSP_RESPONSES:
            raise XRoadError(FaultCode.INVALID_MESSAGE, f"more than {MAX_OCSP_RESPONSES} OCSP response parts")
        _check_ocsp_der(part.body)
        found.append(part.body)
    return tuple(found)


def _attachments(part: MimePart) -> tuple[Attachment, ...]:
    boundary = boundary_of(
        split_header_params(part.headers["content-type"])[1],
        code=FaultCode.INVALID_MESSAGE,
        what="attachment multipart",
    )
    nested = split_multipart(
        part.body,
        boundary,
        code=FaultCode.INVALID_MESSAGE,
        what="attachment multipart",
        max_parts=MAX_ATTACHMENTS,
        max_part_bytes=MAX_TRANSPORT_MESSAGE_BYTES,
    )
    return tuple(Attachment(tuple(p.headers.items()), p.body) for p in nested)


def _signature_or_fault(parts: _Parts) -> tuple[bytes | None, bytes | None]:
    kind = parts.peek_type()
    if kind is None:
        raise XRoadError(FaultCode.MISSING_SIGNATURE, "transport message has no signature")
    part = parts.take()
    if kind == SIGNATURE_CONTENT_TYPE:
        return part.body, None
    if kind == TEXT_XML:
        return None, part.body
    raise XRoadError(
        FaultCode.INVALID_CONTENT_TYPE, f"received content type {kind[:60]!r} instead of signature"
    )


def _decode_parts(parts: _Parts) -> TransportMessage:
    ocsp = _ocsp_parts(parts)
    kind = parts.peek_type()
    if kind is None:
        raise XRoadError(FaultCode.INVALID_MESSAGE, "transport message has no message part")
    if kind not in _REST_TYPES and kind not in _SOAP_TYPES:
        raise XRoadError(
            FaultCode.INVALID_CONTENT_TYPE, f"invalid content type for the message: {kind[:60]!r}"
        )
    message = parts.take()
    rest_body: bytes | None = None
    attachments: tuple[Attachment, ...] = ()
    if kind in _REST_TYPES:
        body_part = parts.take_if(REST_BODY_CONTENT_TYPE)
        rest_body = None if body_part is None else body_part.body
    elif (nested := parts.take_if(MULTIPART_MIXED)) is not None:
        attachments = _attachments(nested)
    chain_result = parts.take_if(HASH_CHAIN_RESULT_CONTENT_TYPE)
    chain = parts.take_if(HASH_CHAIN_CONTENT_TYPE)
    if (chain_result is None) != (chain is None):
        raise XRoadError(FaultCode.INVALID_MESSAGE, "hash chain result and hash chain must come together")
    signature, fault = _signature_or_fault(parts)
    if (extra := parts.peek_type()) is not None:
        raise XRoadError(FaultCode.INVALID_MESSAGE, f"extra content ({extra[:60]}) after signature")
    return TransportMessage(
        ocsp_responses=ocsp,
        message_content_type=message.headers["content-type"],
        message=message.body,
        attachments=attachments,
        rest_body=rest_body,
        hash_chain_result=None if chain_result is None else chain_result.body,
        hash_chain=None if chain is None else chain.body,
        signature=signature,
        fault=fault,
        message_headers=_headers_of(message),
    )


def decode_transport_message(content_type: str, body: bytes) -> TransportMessage:
    """Decode a transport message (module docstring for the order and the errors).

    ``content_type`` is the HTTP ``Content-Type``: ``multipart/mixed`` with a boundary, or ``text/xml`` for
    a whole-message SOAP fault (returned as ``fault``, with an empty ``message``).
    """
    if len(body) > MAX_TRANSPORT_MESSAGE_BYTES:
        raise XRoadError(
            FaultCode.INVALID_MESSAGE, f"transport message is larger than {MAX_TRANSPORT_MESSAGE_BYTES} bytes"
        )
    base, params = split_header_params(content_type)
    if base.lower() == TEXT_XML:
        return TransportMessage((), content_type, b"", fault=body)
    if base.lower() != MULTIPART_MIXED:
        raise XRoadError(FaultCode.INVALID_CONTENT_TYPE, f"invalid content type: {base[:60]!r}")
    boundary = boundary_of(params, code=FaultCode.INVALID_CONTENT_TYPE, what="transport message content type")
    parts = split_multipart(
        body,
        boundary,
        code=FaultCode.INVALID_MESSAGE,
        what="transport message",
        max_parts=MAX_TRANSPORT_PARTS,
        max_part_bytes=MAX_TRANSPORT_MESSAGE_BYTES,
    )
    return _decode_parts(_Parts(parts))
