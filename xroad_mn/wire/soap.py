"""X-Road's SOAP message protocol 4.0 (PR-MESS) without I/O: parse, check, build, attach, request hash.

The security server's proxies and the adapter SDK share these functions; they take bytes and return bytes
or frozen objects. The signed bytes are never re-serialised: :attr:`SoapMessage.raw` is what was received.

Example::

    >>> from xroad_mn.identifiers import MemberId
    >>> from xroad_mn.wire.soap import (
    ...     build_soap_request, build_soap_response, check_soap_response, insert_request_hash,
    ...     parse_soap_message, soap_request_hash,
    ... )
    >>> client = MemberId("MN", "GOV", "5012345").subsystem("civil-registry")
    >>> service = MemberId("MN", "GOV", "9010001").subsystem("tax").service("getDebt", "v1")
    >>> raw = build_soap_request(client, service, "q-1", b"<t:getDebt xmlns:t='urn:tax'/>", user_id="EE1")
    >>> request = parse_soap_message(raw)
    >>> request.header.service == service, request.body_element
    (True, 'getDebt')
    >>> answer = build_soap_response(request, b"<t:getDebtResponse xmlns:t='urn:tax'>0</t:getDebtResponse>")
    >>> signed = insert_request_hash(answer, soap_request_hash(request.raw))
    >>> check_soap_response(request, parse_soap_message(signed), soap_request_hash(request.raw))

The rules (reference §4, and X-Road's ``StaxEventSoapParserImpl``, ``SoapUtils``, ``RequestHashInjector``):

* Content type ``text/xml`` or ``application/xop+xml`` (the SOAP part of MTOM); else ``invalid_content_type``.
  The charset parameter (default UTF-8) is kept; a UTF-8 byte order mark is skipped by the XML parser but
  stays in ``raw`` and in the request hash.
* A SOAP 1.1 envelope (a SOAP 1.2 one is ``invalid_soap``), no DTD, no entities, at most
  :data:`MAX_SOAP_BYTES`. A body whose child is ``SOAP-ENV:Fault`` is a fault: it needs no header.
* The header holds ``xrd:client``, ``xrd:id``, ``xrd:protocolVersion`` (``4.x``) and, unless the caller says
  otherwise, ``xrd:service``; ``missing_header_field`` names the first one missing, a repeated field is
  ``duplicate_header_field``, a version not starting with ``4.`` is ``invalid_protocol_version``.
* The body has exactly one element (``invalid_body``) whose local name starts with ``serviceCode``
  (``inconsistent_headers``): X-Road's own rule, which lets ``fooResponse`` through.
  :func:`parse_soap_message` checks the exact wrapper (``foo`` for a request, ``fooResponse`` for a
  response) when asked.
* The provider node puts ``requestHash`` (base64 SHA-512 of the request's SOAP bytes) right after the
  ``xrd:id`` end tag, with the same prefix and indentation, after removing one the provider IS may have
  sent; nothing else changes (:func:`insert_request_hash`). The consumer node checks that the response
  echoes the request's header fields and hash (:func:`check_soap_response`).
* Attachments: SwA ``multipart/related`` with the SOAP part first, or MTOM (``application/xop+xml`` SOAP
  part). Nested ``multipart/*`` parts are flattened into their leaves, as X-Road's MIME parser does
  (:func:`split_soap_message`, :func:`join_soap_message`).
"""

from __future__ import annotations

import base64
import codecs
import copy
import hashlib
import re
import secrets
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeVar
from xml.parsers import expat

from lxml import etree

from xroad_mn import xmlsafe
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import (
    ID_NS,
    ClientId,
    RepresentedParty,
    SecurityServerId,
    ServiceId,
    client_id_from_xml,
    server_id_from_xml,
    service_id_from_xml,
    to_xml,
)
from xroad_mn.mime import MimePart, boundary_of, split_header_params, split_multipart
from xroad_mn.wire.faults import SOAP_ENV_NS, parse_soap_fault
from xroad_mn.wire.parts import Attachment

__all__ = [
    "MAX_ATTACHMENTS",
    "MAX_MULTIPART_DEPTH",
    "MAX_SOAP_BYTES",
    "MAX_SOAP_MESSAGE_BYTES",
    "MTOM_CONTENT_TYPE",
    "PROTOCOL_VERSION",
    "REPR_NS",
    "REQUEST_HASH_ALGORITHM_ID",
    "RESPONSE_SUFFIX",
    "SOAP12_ENV_NS",
    "SOAP_CONTENT_TYPE",
    "SOAP_ENV_NS",
    "XROAD_NS",
    "SoapHeader",
    "SoapMessage",
    "SoapParts",
    "build_soap_request",
    "build_soap_response",
    "check_soap_response",
    "insert_request_hash",
    "join_soap_message",
    "parse_soap_message",
    "soap_body",
    "soap_request_hash",
    "split_soap_message",
    "split_soap_request",
    "to_response",
]

XROAD_NS: Final = "http://x-road.eu/xsd/xroad.xsd"
REPR_NS: Final = "http://x-road.eu/xsd/representation.xsd"
SOAP12_ENV_NS: Final = "http://www.w3.org/2003/05/soap-envelope"
REQUEST_HASH_ALGORITHM_ID: Final = "http://www.w3.org/2001/04/xmlenc#sha512"
PROTOCOL_VERSION: Final = "4.0"
SOAP_CONTENT_TYPE: Final = "text/xml"
MTOM_CONTENT_TYPE: Final = "application/xop+xml"
MULTIPART_RELATED: Final = "multipart/related"
_SOAP_PART_TYPES: Final = frozenset({SOAP_CONTENT_TYPE, MTOM_CONTENT_TYPE})
DEFAULT_CHARSET: Final = "UTF-8"

MAX_SOAP_BYTES: Final = 32 * 1024 * 1024
"""Largest SOAP part (the XML envelope) the parser reads."""
MAX_SOAP_MESSAGE_BYTES: Final = 256 * 1024 * 1024
"""Largest whole message (SOAP part and attachments) :func:`split_soap_message` reads into memory."""
MAX_ATTACHMENTS: Final = 256
"""Most attachments one message may carry."""
MAX_MULTIPART_DEPTH: Final = 4
"""Deepest nesting of ``multipart/*`` attachments that is flattened; deeper is ``mime_parsing_failed``."""
RESPONSE_SUFFIX: Final = "Response"
_BOUNDARY_CHARS: Final = string.ascii_letters + string.digits
_BOUNDARY_RANDOM_CHARS: Final = 30

_ENVELOPE: Final = f"{{{SOAP_ENV_NS}}}Envelope"
_HEADER: Final = f"{{{SOAP_ENV_NS}}}Header"
_BODY: Final = f"{{{SOAP_ENV_NS}}}Body"
_FAULT: Final = f"{{{SOAP_ENV_NS}}}Fault"


def _xrd(name: str) -> str:
    return f"{{{XROAD_NS}}}{name}"


@dataclass(frozen=True, slots=True)
class SoapHeader:
    """The X-Road fields of a SOAP header (reference §4); ``None`` for an absent optional field."""

    client: ClientId
    service: ServiceId | None
    id: str
    protocol_version: str
    user_id: str | None = None
    issue: str | None = None
    request_hash: str | None = None
    security_server: SecurityServerId | None = None
    represented_party: RepresentedParty | None = None
    request_hash_algorithm: str | None = None


@dataclass(frozen=True, slots=True)
class SoapMessage:
    """A parsed SOAP message: the exact bytes and what the protocol needs of them.

    ``header`` is ``None`` only for a fault (X-Road reads no header from a fault); ``body_element`` is the
    local name of the body's element (``Fault`` for a fault) and ``body_namespace`` its namespace.
    """

    raw: bytes
    header: SoapHeader | None
    body_element: str
    body_namespace: str | None
    is_fault: bool
    charset: str

    @property
    def x_road_header(self) -> SoapHeader:
        """The header of a message that is not a fault; ``invalid_soap`` for a fault."""
        if self.header is None:
            raise XRoadError(FaultCode.INVALID_SOAP, "a SOAP fault carries no X-Road header")
        return self.header

    def fault(self) -> XRoadError:
        """The fault this message carries, as the error it reports (``invalid_soap`` if it is no fault)."""
        if not self.is_fault:
            raise XRoadError(FaultCode.INVALID_SOAP, "message is not a SOAP fault")
        return parse_soap_fault(_xml_bytes(self.raw, self.charset))


# --------------------------------------------------------------------------------------------------------
# Content types and charsets


def _content_type(content_type: str) -> tuple[str, dict[str, str]]:
    base, params = split_header_params(content_type or "")
    return base.lower(), params


def _charset(params: dict[str, str]) -> str:
    charset = params.get("charset", "").strip() or DEFAULT_CHARSET
    try:
        codecs.lookup(charset)
    except LookupError as e:
        raise XRoadError(FaultCode.INVALID_CONTENT_TYPE, f"unknown charset {charset[:40]!r}") from e
    return charset


_ENCODING_DECL: Final = re.compile(rb"^\s*<\?xml[^>]*\bencoding\s*=", re.ASCII)


def _is_utf8(charset: str) -> bool:
    return codecs.lookup(charset).name == "utf-8"


def _xml_bytes(raw: bytes, charset: str) -> bytes:
    """The bytes the XML parser reads: ``raw`` itself, or, when the content type names a charset other than
    UTF-8 and the document declares none, ``raw`` transcoded to UTF-8 (``raw`` itself is never changed)."""
    if _is_utf8(charset) or _ENCODING_DECL.match(raw):
        return raw
    try:
        return raw.decode(charset).encode("utf-8")
    except UnicodeError as e:
        raise XRoadError(FaultCode.INVALID_SOAP, f"SOAP message is not valid {charset}") from e


def _check_soap_content_type(content_type: str) -> str:
    base, params = _content_type(content_type)
    if base not in _SOAP_PART_TYPES:
        raise XRoadError(FaultCode.INVALID_CONTENT_TYPE, f"Invalid content type: {base[:80]}")
    return _charset(params)


# --------------------------------------------------------------------------------------------------------
# Parsing


def _text(element: etree._Element) -> str:
    """The element's own text (direct text nodes, CDATA included), as X-Road's ``readElementText``."""
    result = element.xpath("text()")
    assert isinstance(result, list)
    return "".join(str(t) for t in result)


def _protocol_version(element: etree._Element) -> str:
    version = _text(element)
    if not version.startswith("4."):
        raise XRoadError(
            FaultCode.INVALID_PROTOCOL_VERSION, f"Unsupported protocol version {version[:40]!r}, expected 4.x"
        )
    return version


_Id = TypeVar("_Id", ClientId, ServiceId, SecurityServerId)
_OBJECT_TYPE_ATTR: Final = f"{{{ID_NS}}}objectType"


def _identifier(read: Callable[..., _Id], element: etree._Element, *allowed: str) -> _Id:
    """Read an identifier element; a missing, unknown or unexpected ``id:objectType`` is ``invalid_xml``,
    as X-Road's ``validateObjectType`` says."""
    object_type = element.get(_OBJECT_TYPE_ATTR, element.get("objectType"))
    if object_type is None:
        raise XRoadError(FaultCode.INVALID_XML, "Missing objectType attribute")
    if object_type not in allowed:
        raise XRoadError(FaultCode.INVALID_XML, f"Unexpected objectType: {object_type[:40]}")
    return read(element, strict=False)


def _represented_party(element: etree._Element) -> RepresentedParty:
    fields: dict[str, str] = {}
    for child in element.iterchildren("{*}*"):
        qname = etree.QName(child)
        if qname.namespace == REPR_NS and qname.localname in ("partyClass", "partyCode"):
            fields[qname.localname] = _text(child)
    if "partyCode" not in fields:
        raise XRoadError(
            FaultCode.MISSING_HEADER_FIELD, "Required field 'representedParty/partyCode' is missing"
        )
    return RepresentedParty(fields["partyCode"], fields.get("partyClass"))


_HEADER_FIELDS: Final = {
    _xrd("client"): "client",
    _xrd("service"): "service",
    _xrd("id"): "id",
    _xrd("userId"): "userId",
    _xrd("issue"): "issue",
    _xrd("protocolVersion"): "protocolVersion",
    _xrd("requestHash"): "requestHash",
    _xrd("securityServer"): "securityServer",
    f"{{{REPR_NS}}}representedParty": "representedParty",
}


def _header_fields(header: etree._Element) -> dict[str, etree._Element]:
    found: dict[str, etree._Element] = {}
    for child in header.iterchildren("{*}*"):
        name = _HEADER_FIELDS.get(str(child.tag))
        if name is None:
            continue  # other header blocks (security tokens, WS-Addressing) pass through untouched
        if name in found:
            raise XRoadError(
                FaultCode.DUPLICATE_HEADER_FIELD, f"SOAP header contains duplicate field '{name}'"
            )
        if name == "protocolVersion":
            _protocol_version(child)
        found[name] = child
    return found


def _missing(name: str) -> XRoadError:
    return XRoadError(FaultCode.MISSING_HEADER_FIELD, f"Required field '{name}' is missing")


def _soap_header(fields: dict[str, etree._Element], *, require_service: bool) -> SoapHeader:
    for name in ("protocolVersion", "client", "id"):
        if name not in fields:
            raise _missing(name)
    if require_service and "service" not in fields:
        raise XRoadError(FaultCode.MISSING_HEADER_FIELD, "Message header must contain service id")

    def text(name: str) -> str | None:
        return _text(fields[name]) if name in fields else None

    request_hash = fields.get("requestHash")
    return SoapHeader(
        client=_identifier(client_id_from_xml, fields["client"], "MEMBER", "SUBSYSTEM"),
        service=_identifier(service_id_from_xml, fields["service"], "SERVICE")
        if "service" in fields
        else None,
        id=_text(fields["id"]),
        protocol_version=_protocol_version(fields["protocolVersion"]),
        user_id=text("userId"),
        issue=text("issue"),
        request_hash=_text(request_hash) if request_hash is not None else None,
        security_server=(
            _identifier(server_id_from_xml, fields["securityServer"], "SERVER")
            if "securityServer" in fields
            else None
        ),
        represented_party=(
            _represented_party(fields["representedParty"]) if "representedParty" in fields else None
        ),
        request_hash_algorithm=request_hash.get("algorithmId") if request_hash is not None else None,
    )


def _envelope_parts(root: etree._Element) -> tuple[etree._Element | None, etree._Element | None]:
    if root.tag == f"{{{SOAP12_ENV_NS}}}Envelope":
        raise XRoadError(FaultCode.INVALID_SOAP, "SOAP 1.2 envelopes are not supported, X-Road uses SOAP 1.1")
    if root.tag != _ENVELOPE:
        raise XRoadError(FaultCode.INVALID_SOAP, "Malformed SOAP message: envelope missing")
    header: etree._Element | None = None
    body: etree._Element | None = None
    for child in root.iterchildren("{*}*"):
        if child.tag == _HEADER:
            if header is not None:
                raise XRoadError(FaultCode.INVALID_SOAP, "Malformed SOAP message: two headers")
            header = child
        elif child.tag == _BODY:
            if body is not None:
                raise XRoadError(FaultCode.INVALID_BODY, "Malformed SOAP message: two bodies")
            body = child
    return header, body


_INVALID_BODY_MESSAGE: Final = "Malformed SOAP message: body must have exactly one child element"


def _body_element(body: etree._Element) -> etree._Element:
    children = list(body.iterchildren("{*}*"))
    if len(children) != 1:
        raise XRoadError(FaultCode.INVALID_BODY, _INVALID_BODY_MESSAGE)
    return children[0]


def _check_wrapper(
    service: ServiceId | None, element: str, expect: Literal["request", "response"] | None
) -> None:
    if service is None:
        return
    code = service.service_code
    if not element.startswith(code):
        raise XRoadError(
            FaultCode.INCONSISTENT_HEADERS,
            "Malformed SOAP message: service code does not match in header and body",
        )
    wanted = {"request": code, "response": code + RESPONSE_SUFFIX, None: element}[expect]
    if element != wanted:
        raise XRoadError(
            FaultCode.INCONSISTENT_HEADERS,
            f"Malformed SOAP message: the {expect} body element must be {wanted!r}, not {element[:80]!r}",
        )


def _parse_root(data: bytes, charset: str) -> etree._Element:
    if len(data) > MAX_SOAP_BYTES:
        raise XRoadError(FaultCode.INVALID_SOAP, f"SOAP message is larger than {MAX_SOAP_BYTES} bytes")
    return xmlsafe.parse(
        _xml_bytes(data, charset), code=FaultCode.INVALID_SOAP, what="SOAP message", max_bytes=None
    )


def parse_soap_message(
    data: bytes,
    *,
    content_type: str = SOAP_CONTENT_TYPE,
    require_service: bool = True,
    expect: Literal["request", "response"] | None = None,
) -> SoapMessage:
    """Parse and validate one SOAP message (the SOAP part only: see :func:`split_soap_message`).

    ``content_type`` is the SOAP part's (``text/xml`` or ``application/xop+xml``, with its charset).
    ``require_service=False`` accepts a header without ``xrd:service`` (X-Road always requires it).
    ``expect`` checks the exact body wrapper: ``serviceCode`` for a request, ``serviceCode + "Response"``
    for a response; without it X-Road's prefix rule applies. Failures: module docstring.
    """
    charset = _check_soap_content_type(content_type)
    root = _parse_root(data, charset)
    header_element, body = _envelope_parts(root)
    children = list(body.iterchildren("{*}*")) if body is not None else []
    if any(child.tag == _FAULT for child in children):
        return SoapMessage(bytes(data), None, "Fault", SOAP_ENV_NS, True, charset)
    # X-Road's order: what its streaming parser refuses on the way (duplicate header fields, a bad protocol
    # version, a second body element), then what is missing at the end.
    fields = _header_fields(header_element) if header_element is not None else {}
    if len(children) > 1:
        raise XRoadError(FaultCode.INVALID_BODY, _INVALID_BODY_MESSAGE)
    if header_element is None:
        raise XRoadError(FaultCode.MISSING_HEADER, "Malformed SOAP message: header missing")
    if body is None:
        raise XRoadError(FaultCode.MISSING_BODY, "Malformed SOAP message: body missing")
    header = _soap_header(fields, require_service=require_service)
    if not children:
        raise XRoadError(FaultCode.INVALID_BODY, _INVALID_BODY_MESSAGE)
    qname = etree.QName(children[0])
    _check_wrapper(header.service, qname.localname, expect)
    return SoapMessage(bytes(data), header, qname.localname, qname.namespace, False, charset)


def soap_body(message: SoapMessage) -> etree._Element:
    """The body element of a parsed message (a fresh tree, safe to change)."""
    root = _parse_root(message.raw, message.charset)
    _, body = _envelope_parts(root)
    if body is None:
        raise XRoadError(FaultCode.MISSING_BODY, "Malformed SOAP message: body missing")
    return _body_element(body)


# --------------------------------------------------------------------------------------------------------
# Building


def _body_tree(body: etree._Element | bytes) -> etree._Element:
    if isinstance(body, bytes):
        return xmlsafe.parse(body, code=FaultCode.INVALID_BODY, what="SOAP body", max_bytes=MAX_SOAP_BYTES)
    return copy.deepcopy(body)


def _serialise(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def build_soap_request(
    client: ClientId,
    service: ServiceId,
    query_id: str,
    body: etree._Element | bytes,
    *,
    user_id: str | None = None,
    issue: str | None = None,
    protocol_version: str = PROTOCOL_VERSION,
    security_server: SecurityServerId | None = None,
    represented_party: RepresentedParty | None = None,
) -> bytes:
    """A SOAP 1.1 X-Road request (UTF-8) for a client or a test: header fields in X-Road's order, then
    ``body`` (an element, copied, or XML bytes) as the body's one element."""
    nsmap = {"SOAP-ENV": SOAP_ENV_NS, "xrd": XROAD_NS, "id": ID_NS}
    if represented_party is not None:
        nsmap["repr"] = REPR_NS
    envelope = etree.Element(_ENVELOPE, nsmap=nsmap)
    header = etree.SubElement(envelope, _HEADER)
    to_xml(client, _xrd("client"), parent=header)
    to_xml(service, _xrd("service"), parent=header)
    if security_server is not None:
        to_xml(security_server, _xrd("securityServer"), parent=header)
    fields = (("userId", user_id), ("id", query_id), ("issue", issue), ("protocolVersion", protocol_version))
    for name, value in fields:
        if value is not None:
            etree.SubElement(header, _xrd(name)).text = value
    if represented_party is not None:
        party = etree.SubElement(header, f"{{{REPR_NS}}}representedParty")
        if represented_party.party_class is not None:
            etree.SubElement(party, f"{{{REPR_NS}}}partyClass").text = represented_party.party_class
        etree.SubElement(party, f"{{{REPR_NS}}}partyCode").text = represented_party.party_code
    etree.SubElement(envelope, _BODY).append(_body_tree(body))
    return _serialise(envelope)


def _response_envelope(request: SoapMessage) -> tuple[etree._Element, etree._Element]:
    if request.is_fault:
        raise XRoadError(FaultCode.INVALID_SOAP, "a SOAP fault cannot be answered")
    root = _parse_root(request.raw, request.charset)
    header, body = _envelope_parts(root)
    if header is None or body is None:
        raise XRoadError(FaultCode.INVALID_SOAP, "request has no header or no body")
    for stale in header.findall(_xrd("requestHash")):
        header.remove(stale)  # the provider node inserts its own
    return root, body


def build_soap_response(request: SoapMessage, body: etree._Element | bytes) -> bytes:
    """A response to ``request`` (UTF-8): the request's envelope and header echoed as they are (same fields,
    order, values and prefixes, as PR-MESS demands), with ``body`` as the body's one element."""
    root, old_body = _response_envelope(request)
    for child in list(old_body):
        old_body.remove(child)
    old_body.text = None
    old_body.append(_body_tree(body))
    return _serialise(root)


def to_response(request: SoapMessage) -> bytes:
    """X-Road's ``SoapUtils.toResponse``: the request echoed with its body element renamed to
    ``<name>Response`` in the same namespace (the ``getWsdl`` response is built so)."""
    root, body = _response_envelope(request)
    element = _body_element(body)
    qname = etree.QName(element)
    element.tag = etree.QName(qname.namespace, qname.localname + RESPONSE_SUFFIX).text
    return _serialise(root)


# --------------------------------------------------------------------------------------------------------
# Request hash


def soap_request_hash(soap_part: bytes) -> str:
    """The ``requestHash`` value: base64 SHA-512 of the request's SOAP part, byte for byte (SwA/MTOM: the
    first MIME part only; a byte order mark included, as X-Road hashes what it received)."""
    return base64.b64encode(hashlib.sha512(soap_part).digest()).decode("ascii")


@dataclass(slots=True)
class _HashSpots:
    """Where ``xrd:id`` and an old ``xrd:requestHash`` lie in the UTF-8 text of a response."""

    depth: int = 0
    in_header: bool = False
    id_start: int = -1
    id_end: int = -1
    id_prefix: str = ""
    id_declares_prefix: bool = False
    hash_start: int = -1
    hash_end: int = -1
    open_tag: tuple[str, int] | None = None
    """The element whose end is awaited and where its start tag ends."""


def _tag_end(buf: bytes, start: int) -> int:
    """The index just after the ``>`` that closes the tag starting at ``start`` (quotes respected)."""
    quote = 0
    for i in range(start, len(buf)):
        c = buf[i]
        if quote:
            quote = 0 if c == quote else quote
        elif c in b"\"'":
            quote = c
        elif c == ord(">"):
            return i + 1
    raise XRoadError(FaultCode.INVALID_SOAP, "SOAP message ends inside a tag")


def _qname_prefix(buf: bytes, start: int) -> str:
    m = re.compile(rb"<([^\s/>]+)").match(buf, start)
    name = m.group(1).decode("utf-8") if m else ""
    return name.split(":", 1)[0] if ":" in name else ""


def _refuse_dtd(*_: object) -> None:
    raise XRoadError(FaultCode.INVALID_SOAP, "SOAP message must not contain a document type declaration")


def _find_hash_spots(buf: bytes) -> _HashSpots:
    spots = _HashSpots()
    parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=" ")
    declared: list[str] = []

    def start_ns(prefix: str | None, _uri: str) -> None:
        declared.append(prefix or "")

    def start(name: str, _attrs: object) -> None:
        at = parser.CurrentByteIndex
        spots.depth += 1
        if spots.depth == 2 and name == f"{SOAP_ENV_NS} Header":
            spots.in_header = True
        elif spots.in_header and spots.depth == 3 and name in (f"{XROAD_NS} id", f"{XROAD_NS} requestHash"):
            if name.endswith(" requestHash") and spots.hash_start >= 0:
                raise XRoadError(
                    FaultCode.DUPLICATE_HEADER_FIELD, "SOAP header contains duplicate field 'requestHash'"
                )
            if name.endswith(" id"):
                if spots.id_start >= 0:
                    raise XRoadError(
                        FaultCode.DUPLICATE_HEADER_FIELD, "SOAP header contains duplicate field 'id'"
                    )
                spots.id_start = at
                spots.id_prefix = _qname_prefix(buf, at)
                spots.id_declares_prefix = spots.id_prefix in declared
            else:
                spots.hash_start = at
            spots.open_tag = (name, _tag_end(buf, at))
        declared.clear()

    def end(name: str) -> None:
        at = parser.CurrentByteIndex
        if spots.open_tag is not None and spots.depth == 3 and spots.open_tag[0] == name:
            start_tag_end = spots.open_tag[1]
            # expat reports an empty-element tag's end just after the tag itself.
            empty = at == start_tag_end and buf[start_tag_end - 2 : start_tag_end] == b"/>"
            end_at = at if empty else _tag_end(buf, at)
            if name.endswith(" id"):
                spots.id_end = end_at
            else:
                spots.hash_end = end_at
            spots.open_tag = None
        if spots.depth == 2 and name == f"{SOAP_ENV_NS} Header":
            spots.in_header = False
        spots.depth -= 1

    parser.StartNamespaceDeclHandler = start_ns
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    try:
        parser.Parse(buf, True)
    except expat.ExpatError as e:
        raise XRoadError(FaultCode.INVALID_SOAP, f"SOAP message is not well-formed XML: {e}") from e
    return spots


def _whitespace_before(buf: bytes, pos: int) -> int:
    while pos > 0 and buf[pos - 1 : pos] in (b" ", b"\t", b"\r", b"\n"):
        pos -= 1
    return pos


def _request_hash_element(spots: _HashSpots, request_hash: str) -> bytes:
    prefix = spots.id_prefix
    name = f"{prefix}:requestHash" if prefix else "requestHash"
    declaration = ""
    if not prefix:
        declaration = f' xmlns="{XROAD_NS}"'
    elif spots.id_declares_prefix:
        declaration = f' xmlns:{prefix}="{XROAD_NS}"'
    return f'<{name}{declaration} algorithmId="{REQUEST_HASH_ALGORITHM_ID}">{request_hash}</{name}>'.encode()


_BASE64: Final = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def insert_request_hash(response_raw: bytes, request_hash: str, *, charset: str = DEFAULT_CHARSET) -> bytes:
    """Put ``<prefix:requestHash algorithmId="…sha512">request_hash</prefix:requestHash>`` into a response
    right after its ``xrd:id`` end tag, as X-Road's provider node does (``RequestHashInjector``).

    A byte-level edit, not a re-serialisation: the new element gets the whitespace that precedes
    ``xrd:id``; a ``requestHash`` the IS put in the header is removed with the whitespace before it; no
    other byte changes, except that a byte order mark is dropped and the text is re-encoded in ``charset``,
    as X-Road writes it. Where X-Road would write a broken document (``xrd:id`` in a default namespace,
    or a ``requestHash`` right after ``xrd:id`` with no whitespace between) this writes the element
    correctly. The result is what the provider signs; parse it with :func:`parse_soap_message`.
    """
    if not _BASE64.match(request_hash):
        raise XRoadError(FaultCode.INTERNAL_ERROR, "request hash must be base64")
    if len(response_raw) > MAX_SOAP_BYTES:
        raise XRoadError(FaultCode.INVALID_SOAP, f"SOAP message is larger than {MAX_SOAP_BYTES} bytes")
    try:
        text = response_raw.decode(charset)
    except (UnicodeError, LookupError) as e:
        raise XRoadError(FaultCode.INVALID_SOAP, f"SOAP message is not valid {charset[:40]}") from e
    buf = text.removeprefix("\ufeff").encode("utf-8")
    spots = _find_hash_spots(buf)
    if spots.id_start < 0:
        raise _missing("id")
    indent = buf[_whitespace_before(buf, spots.id_start) : spots.id_start]
    insert_at = spots.id_end
    edits: list[tuple[int, int, bytes]] = [
        (insert_at, insert_at, indent + _request_hash_element(spots, request_hash))
    ]
    if spots.hash_start >= 0:
        start = _whitespace_before(buf, spots.hash_start)
        if (
            spots.hash_start >= insert_at
        ):  # after xrd:id: the whitespace run starts no earlier than the insert
            start = max(start, insert_at)
        edits.append((start, spots.hash_end, b""))
    out = buf
    for start, stop, insert in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        out = out[:start] + insert + out[stop:]
    return out.decode("utf-8").encode(charset)


def check_soap_response(request: SoapMessage, response: SoapMessage, expected_hash: str) -> None:
    """Verify, as the consumer node does, that ``response`` answers ``request``.

    1. Header fields: ``client``, ``service``, ``id``, ``userId``, ``issue`` and ``protocolVersion`` equal
       the request's (``inconsistent_headers``, X-Road's ``SoapUtils.checkConsistency``).
    2. ``requestHash`` is there, SHA-512, and equals ``expected_hash`` (:func:`soap_request_hash` of the
       request's SOAP part) (``inconsistent_response``).

    A fault is not checked: X-Road hands a provider's fault to the client as it is.
    """
    if response.is_fault:
        return
    sent, got = request.x_road_header, response.x_road_header
    # 1. Echoed header fields
    pairs = (
        ("client", sent.client, got.client),
        ("service", sent.service, got.service),
        ("id", sent.id, got.id),
        ("userId", sent.user_id, got.user_id),
        ("issue", sent.issue, got.issue),
        ("protocolVersion", sent.protocol_version, got.protocol_version),
    )
    for name, mine, theirs in pairs:
        if mine != theirs:
            raise XRoadError(
                FaultCode.INCONSISTENT_HEADERS, f"Field '{name}' does not match in request and response"
            )
    # 2. Request hash
    if got.request_hash is None:
        raise XRoadError(
            FaultCode.INCONSISTENT_RESPONSE, "Response from the provider is missing the request hash"
        )
    if got.request_hash_algorithm not in (None, REQUEST_HASH_ALGORITHM_ID):
        raise XRoadError(
            FaultCode.INCONSISTENT_RESPONSE,
            f"Unsupported request hash algorithm {got.request_hash_algorithm[:80]!r}",
        )
    if got.request_hash.strip() != expected_hash:
        raise XRoadError(
            FaultCode.INCONSISTENT_RESPONSE, "Request hash in the response does not match the request"
        )


# --------------------------------------------------------------------------------------------------------
# Attachments: SwA and MTOM


@dataclass(frozen=True, slots=True)
class SoapParts:
    """A SOAP message split into its SOAP part and attachments.

    ``soap_headers`` are the SOAP part's MIME headers other than ``Content-Type`` (X-Road passes them on);
    ``multipart`` says whether the message came as ``multipart/related``.
    """

    soap: bytes
    content_type: str
    soap_headers: tuple[tuple[str, str], ...]
    attachments: tuple[Attachment, ...]
    multipart: bool


def _leaves(data: bytes, parts: Iterable[MimePart], depth: int) -> Iterable[MimePart]:
    for part in parts:
        base, params = _content_type(part.headers.get("content-type", ""))
        if not base.startswith("multipart/"):
            yield part
            continue
        if depth >= MAX_MULTIPART_DEPTH:
            raise XRoadError(
                FaultCode.MIME_PARSING_FAILED, f"attachments nest deeper than {MAX_MULTIPART_DEPTH}"
            )
        inner = boundary_of(params, code=FaultCode.MIME_PARSING_FAILED, what="nested multipart attachment")
        nested = split_multipart(
            data,
            inner,
            code=FaultCode.MIME_PARSING_FAILED,
            what="nested multipart attachment",
            start=part.body_start,
            end=part.body_end,
            max_parts=MAX_ATTACHMENTS,
            max_part_bytes=MAX_SOAP_MESSAGE_BYTES,
        )
        yield from _leaves(data, nested, depth + 1)


def split_soap_message(content_type: str, body: bytes) -> SoapParts:
    """Split a message from an IS (or for one) into its SOAP part and attachments, as X-Road's
    ``SoapMessageDecoder``: ``text/xml`` and ``application/xop+xml`` are the SOAP part alone;
    ``multipart/related`` has the SOAP part first and attachments after it, nested ``multipart/*`` parts
    flattened into their leaves. Every part needs a ``Content-Type`` (``invalid_content_type``)."""
    if not content_type or not content_type.strip():
        raise XRoadError(FaultCode.INVALID_REQUEST, "Could not get content type from request")
    if len(body) > MAX_SOAP_MESSAGE_BYTES:
        raise XRoadError(
            FaultCode.REQUEST_TOO_LARGE, f"message is larger than {MAX_SOAP_MESSAGE_BYTES} bytes"
        )
    base, params = _content_type(content_type)
    if base in _SOAP_PART_TYPES:
        return SoapParts(body, content_type, (), (), multipart=False)
    if base != MULTIPART_RELATED:
        raise XRoadError(FaultCode.INVALID_CONTENT_TYPE, f"Invalid content type: {base[:80]}")
    if not body.strip():
        raise XRoadError(FaultCode.MISSING_SOAP, "multipart message has no SOAP part")
    boundary = boundary_of(params, code=FaultCode.MIME_PARSING_FAILED, what="multipart/related message")
    # X-Road's MIME parser (mime4j) ends a body at a last delimiter without "--", or at the end of the data.
    trailing = b"--" + boundary.encode("ascii")
    unclosed = body.rstrip(b"\r\n")
    framed = unclosed + b"--" if unclosed.endswith(b"\n" + trailing) else body
    top = split_multipart(
        framed,
        boundary,
        code=FaultCode.MIME_PARSING_FAILED,
        what="multipart/related message",
        max_parts=MAX_ATTACHMENTS + 1,
        max_part_bytes=MAX_SOAP_MESSAGE_BYTES,
        close_optional=True,
    )
    leaves = list(_leaves(framed, top, 1))
    for leaf in leaves:
        if "content-type" not in leaf.headers:
            raise XRoadError(FaultCode.INVALID_CONTENT_TYPE, "Could not get content type for part")
    if not leaves:
        raise XRoadError(FaultCode.MISSING_SOAP, "multipart message has no SOAP part")
    if len(leaves) > MAX_ATTACHMENTS + 1:
        raise XRoadError(
            FaultCode.MIME_PARSING_FAILED, f"message has more than {MAX_ATTACHMENTS} attachments"
        )
    soap, *rest = leaves
    soap_type = soap.headers["content-type"]
    _check_soap_content_type(soap_type)
    soap_headers = tuple((k, v) for k, v in soap.headers.items() if k != "content-type")
    attachments = tuple(Attachment(tuple(p.headers.items()), p.body) for p in rest)
    return SoapParts(soap.body, soap_type, soap_headers, attachments, multipart=True)


def split_soap_request(content_type: str, body: bytes) -> tuple[bytes, str, tuple[Attachment, ...]]:
    """:func:`split_soap_message` as (SOAP part, its content type, attachments)."""
    parts = split_soap_message(content_type, body)
    return parts.soap, parts.content_type, parts.attachments


_HEADER_TOKEN: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _header_line(name: str, value: str) -> bytes:
    if not _HEADER_TOKEN.match(name) or any(c in value for c in "\r\n\x00"):
        raise XRoadError(FaultCode.INVALID_MESSAGE, f"MIME header {name[:40]!r} cannot be written")
    return f"{name}: {value}\r\n".encode()


def _new_boundary(parts: Sequence[bytes]) -> str:
    while True:
        boundary = "xroad" + "".join(secrets.choice(_BOUNDARY_CHARS) for _ in range(_BOUNDARY_RANDOM_CHARS))
        if not any(boundary.encode() in part for part in parts):
            return boundary


def join_soap_message(
    soap: bytes,
    soap_content_type: str,
    attachments: Sequence[Attachment],
    *,
    soap_headers: Sequence[tuple[str, str]] = (),
    boundary: str | None = None,
) -> tuple[str, bytes]:
    """The inverse of :func:`split_soap_message`: (content type, body).

    Without attachments a ``text/xml`` SOAP part is sent as it is; otherwise (and always for MTOM) a
    ``multipart/related; type="<SOAP part type>"; charset=UTF-8; boundary=…`` body (X-Road's
    ``MimeUtils.mpRelatedContentType``) with the SOAP part first and each attachment's headers as given.
    """
    root_type = _content_type(soap_content_type)[0]
    if root_type not in _SOAP_PART_TYPES:
        raise XRoadError(FaultCode.INVALID_CONTENT_TYPE, f"Invalid content type: {root_type[:80]}")
    if not attachments and root_type == SOAP_CONTENT_TYPE:
        return soap_content_type, soap
    boundary = boundary or _new_boundary([soap, *(a.data for a in attachments)])
    delimiter = b"--" + boundary.encode("ascii")
    out = bytearray()
    parts: list[tuple[Sequence[tuple[str, str]], bytes]] = [
        (
            (
                ("Content-Type", soap_content_type),
                *((k, v) for k, v in soap_headers if k.lower() != "content-type"),
            ),
            soap,
        )
    ]
    parts.extend((a.headers, a.data) for a in attachments)
    for headers, data in parts:
        out += delimiter + b"\r\n"
        for name, value in headers:
            out += _header_line(name, value)
        out += b"\r\n" + data + b"\r\n"
    out += delimiter + b"--\r\n"
    content_type = f'{MULTIPART_RELATED}; type="{root_type}"; charset=UTF-8; boundary={boundary}'
    return content_type, bytes(out)
