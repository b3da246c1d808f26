"""X-Road's SOAP metaservices (PR-META §3–4) without I/O: ``listMethods``, ``allowedMethods``, ``getWsdl``.

They are ordinary X-Road calls whose ``service`` header names the provider and the metaservice code. The
provider node answers them itself (X-Road's ``MetadataServiceHandlerImpl``); this module reads their
requests and builds their responses, each echoing the request header as any response must.

Example::

    >>> from xroad_mn.identifiers import MemberId
    >>> from xroad_mn.wire.soap import build_soap_request, parse_soap_message
    >>> from xroad_mn.wire.soapmeta import (
    ...     build_method_list_response, metaservice_of, parse_method_list_response,
    ... )
    >>> client = MemberId("MN", "GOV", "5012345")
    >>> provider = MemberId("MN", "GOV", "9010001").subsystem("tax")
    >>> raw = build_soap_request(client, provider.service("listMethods"), "q-1",
    ...                          b"<xrd:listMethods xmlns:xrd='http://x-road.eu/xsd/xroad.xsd'/>")
    >>> request = parse_soap_message(raw)
    >>> metaservice_of(request)
    'listMethods'
    >>> answer = build_method_list_response(request, [provider.service("getDebt", "v1")])
    >>> response = parse_soap_message(answer)
    >>> [s.service_code for s in parse_method_list_response(response)]
    ['getDebt']

``getWsdl`` answers with the WSDL as a SwA attachment, every ``soap:address/@location`` replaced by
:data:`WSDL_ENDPOINT_ADDRESS` so that no provider IS address leaks (:func:`build_get_wsdl_response`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from lxml import etree

from xroad_mn import xmlsafe
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import ID_NS, ServiceId, service_id_from_xml, to_xml
from xroad_mn.wire.parts import Attachment
from xroad_mn.wire.soap import (
    RESPONSE_SUFFIX,
    SOAP_CONTENT_TYPE,
    XROAD_NS,
    SoapMessage,
    build_soap_response,
    join_soap_message,
    soap_body,
    to_response,
)

__all__ = [
    "ALLOWED_METHODS",
    "GET_WSDL",
    "LIST_METHODS",
    "MAX_WSDL_BYTES",
    "METASERVICE_CODES",
    "WSDL_ENDPOINT_ADDRESS",
    "WsdlRequest",
    "build_get_wsdl_response",
    "build_method_list_response",
    "metaservice_of",
    "parse_get_wsdl_request",
    "parse_method_list_request",
    "parse_method_list_response",
    "rewrite_wsdl_endpoints",
]

LIST_METHODS: Final = "listMethods"
ALLOWED_METHODS: Final = "allowedMethods"
GET_WSDL: Final = "getWsdl"
METASERVICE_CODES: Final = frozenset({LIST_METHODS, ALLOWED_METHODS, GET_WSDL})
WSDL_ENDPOINT_ADDRESS: Final = "http://example.org/xroad-endpoint"
"""What every ``soap:address/@location`` of a WSDL served by ``getWsdl`` says (X-Road's constant)."""
MAX_WSDL_BYTES: Final = 32 * 1024 * 1024
"""Largest WSDL :func:`rewrite_wsdl_endpoints` reads."""
WSDL_SOAP_NS: Final = "http://schemas.xmlsoap.org/wsdl/soap/"
_METHOD_LIST_CODES: Final = frozenset({LIST_METHODS, ALLOWED_METHODS})


def metaservice_of(message: SoapMessage) -> str | None:
    """The metaservice a request calls (``listMethods``, ``allowedMethods``, ``getWsdl``), or ``None``."""
    header = message.x_road_header
    if header.service is None or header.service.service_code not in METASERVICE_CODES:
        return None
    return header.service.service_code


def parse_method_list_request(message: SoapMessage) -> str:
    """Check a ``listMethods`` or ``allowedMethods`` request and return which one it is.

    X-Road reads nothing from its body (``<xrd:listMethods/>``); the body wrapper was checked against the
    service code when the message was parsed.
    """
    code = metaservice_of(message)
    if code not in _METHOD_LIST_CODES:
        raise XRoadError(FaultCode.INVALID_REQUEST, "request is not listMethods or allowedMethods")
    return code


@dataclass(frozen=True, slots=True)
class WsdlRequest:
    """What a ``getWsdl`` request asks for: a service code of the provider and an optional version."""

    service_code: str
    service_version: str | None = None

    def service_id(self, provider_service: ServiceId) -> ServiceId:
        """The service asked for, under the provider named by the request's ``service`` header."""
        return provider_service.client.service(self.service_code, self.service_version)


def _child_text(element: etree._Element, name: str) -> str | None:
    child = element.find(f"{{{XROAD_NS}}}{name}")
    if child is None:
        return None
    result = child.xpath("text()")
    assert isinstance(result, list)
    text = "".join(str(t) for t in result).strip()
    return text or None


def parse_get_wsdl_request(message: SoapMessage) -> WsdlRequest:
    """Read a ``getWsdl`` request body (``xrd:getWsdl`` with ``xrd:serviceCode`` and an optional
    ``xrd:serviceVersion``); no service code is ``invalid_request``, as in X-Road."""
    if metaservice_of(message) != GET_WSDL:
        raise XRoadError(FaultCode.INVALID_REQUEST, "request is not getWsdl")
    body = soap_body(message)
    code = _child_text(body, "serviceCode")
    if code is None:
        raise XRoadError(FaultCode.INVALID_REQUEST, "Missing serviceCode in message body")
    return WsdlRequest(code, _child_text(body, "serviceVersion"))


def build_method_list_response(request: SoapMessage, services: Iterable[ServiceId]) -> bytes:
    """The ``listMethodsResponse`` or ``allowedMethodsResponse`` to ``request``: a ``MethodListType`` of
    ``xrd:service`` identifiers (``XRoadServiceIdentifierType``), the request header echoed."""
    code = parse_method_list_request(request)
    element = etree.Element(f"{{{XROAD_NS}}}{code}{RESPONSE_SUFFIX}", nsmap={"xrd": XROAD_NS, "id": ID_NS})
    for service in services:
        to_xml(service, f"{{{XROAD_NS}}}service", parent=element)
    return build_soap_response(request, element)


def parse_method_list_response(message: SoapMessage) -> tuple[ServiceId, ...]:
    """The services a ``listMethodsResponse`` or ``allowedMethodsResponse`` lists (for clients and tests)."""
    if message.is_fault:
        raise message.fault()
    body = soap_body(message)
    qname = etree.QName(body)
    if qname.namespace != XROAD_NS or qname.localname not in {
        c + RESPONSE_SUFFIX for c in _METHOD_LIST_CODES
    }:
        raise XRoadError(FaultCode.INVALID_BODY, f"not a method list response: {qname.localname[:80]!r}")
    return tuple(
        service_id_from_xml(child, strict=False) for child in body.iterchildren(f"{{{XROAD_NS}}}service")
    )


def rewrite_wsdl_endpoints(wsdl: bytes) -> bytes:
    """``wsdl`` with every ``soap:address/@location`` set to :data:`WSDL_ENDPOINT_ADDRESS`, re-serialised in
    UTF-8 (X-Road's ``OverwriteAttributeFilter``); comments are kept, a DOCTYPE is ``invalid_wsdl``."""
    root = xmlsafe.parse(wsdl, code=FaultCode.INVALID_WSDL, what="WSDL", max_bytes=MAX_WSDL_BYTES)
    for address in root.iter(f"{{{WSDL_SOAP_NS}}}address"):
        if address.get("location") is not None:
            address.set("location", WSDL_ENDPOINT_ADDRESS)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def build_get_wsdl_response(request: SoapMessage, wsdl: bytes) -> tuple[str, bytes]:
    """The ``getWsdl`` response to ``request``: (content type, ``multipart/related`` body). The SOAP part is
    the request with its body element renamed ``getWsdlResponse`` (echoing ``serviceCode`` and
    ``serviceVersion``); the one attachment is the rewritten WSDL (``text/xml``,
    ``Content-Transfer-Encoding: binary``, ``Content-ID: <wsdl=UUID@x-road.eu>``), as X-Road sends it."""
    parse_get_wsdl_request(request)
    attachment = Attachment(
        (
            ("Content-Type", SOAP_CONTENT_TYPE),
            ("Content-Transfer-Encoding", "binary"),
            ("Content-ID", f"<wsdl={uuid.uuid4()}@x-road.eu>"),
        ),
        rewrite_wsdl_endpoints(wsdl),
    )
    return join_soap_message(to_response(request), f"{SOAP_CONTENT_TYPE}; charset=UTF-8", [attachment])
