"""SOAP operations (X-Road message protocol 4.0, document/literal wrapped) and their WSDL 1.1.

An operation ``getCitizen`` takes the body element ``tns:getCitizen`` (its request model's fields as
children) and answers ``tns:getCitizenResponse``, in the adapter's target namespace. The response echoes
the request's X-Road header, as PR-MESS requires (:func:`xroad_mn.wire.soap.build_soap_response`).

A call is checked in this order: 1. the SOAP message and its X-Road header
(:func:`xroad_mn.wire.soap.parse_soap_message`: content type, envelope, mandatory header fields, the body
wrapper matching the service code), 2. the operation (the body element in the target namespace), 3. the
data subject header, 4. the body against the request model. Any failure is a SOAP fault carrying X-Road's
fault code and string (``client.bad_request`` for invalid input), HTTP 500 as SOAP 1.1 binds faults.

The WSDL (:func:`wsdl_document`) is what X-Road's own example WSDLs are: the X-Road header elements
(``xrd:client``, ``xrd:service``, ``xrd:id``, ``xrd:userId``, ``xrd:issue``, ``xrd:protocolVersion``)
imported from X-Road's namespace into a ``requestheader`` message bound as ``soap:header`` of every input
and output, ``xrd:title`` in each port type operation that has a title and ``xrd:version`` in each binding
operation that has a version. Its operations are any :class:`WsdlOperation`: a :class:`SoapOperation`
writes its request and response models' types into the schema, a :class:`PassThroughOperation` (a service
whose messages are forwarded unread) elements of any content.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import structlog
from aiohttp import web
from lxml import etree
from pydantic import BaseModel, ValidationError

from adapters.sdk.context import soap_context
from adapters.sdk.declare import Handler, HandlerParams, declaration_error, read_params, validation_error
from adapters.sdk.xmlmodel import XSD_NS, model_schema, model_to_xml, xml_to_dict
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.transport.server import read_body
from xroad_mn.wire.faults import render_soap_fault
from xroad_mn.wire.soap import (
    RESPONSE_SUFFIX,
    XROAD_NS,
    build_soap_response,
    parse_soap_message,
    soap_body,
)

__all__ = [
    "HEADER_PARTS",
    "PassThroughOperation",
    "SoapOperation",
    "WsdlOperation",
    "answering_soap_faults",
    "callers_fault",
    "response_name_clash",
    "soap_endpoint",
    "soap_fault_response",
    "soap_operation",
    "wsdl_document",
    "wsdl_name",
]

log = structlog.get_logger(__name__)

WSDL_NS: Final = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS: Final = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP_HTTP_TRANSPORT: Final = "http://schemas.xmlsoap.org/soap/http"
XROAD_XSD_LOCATION: Final = "http://x-road.eu/xsd/xroad.xsd"
HEADER_PARTS: Final = ("client", "service", "id", "userId", "issue", "protocolVersion")
"""The X-Road header elements every operation's input and output carry (X-Road's example WSDLs)."""
SOAP_FAULT_STATUS: Final = 500


class WsdlOperation(Protocol):
    """An operation as its WSDL describes it."""

    @property
    def name(self) -> str:
        """The operation and service code (the request element's local name)."""
        ...

    @property
    def version(self) -> str | None:
        """The service version (``xrd:version`` in the WSDL binding)."""
        ...

    @property
    def title(self) -> str:
        """The service title (``xrd:title`` in the port type operation's documentation); none when empty."""
        ...

    def schema_elements(self, schema: etree._Element) -> None:
        """Append the request element ``name`` and the response element ``name`` + ``Response`` (and the
        types they need) to the ``xsd:schema`` element ``schema`` of the target namespace."""
        ...


@dataclass(frozen=True)
class SoapOperation:
    """One declared SOAP operation."""

    name: str
    """The operation and service code (the request element's local name)."""
    version: str | None
    """The service version (``xrd:version`` in the WSDL binding)."""
    handler: Handler
    documentation: str
    params: HandlerParams

    @property
    def request_model(self) -> type[BaseModel]:
        model: type[BaseModel] = self.params.body_type
        return model

    @property
    def response_model(self) -> type[BaseModel]:
        model: type[BaseModel] = self.params.response_type
        return model

    @property
    def title(self) -> str:
        """The first line of the handler's documentation."""
        return self.documentation.splitlines()[0].strip() if self.documentation else ""

    def schema_elements(self, schema: etree._Element) -> None:
        model_schema(self.request_model, schema, element=self.name)
        model_schema(self.response_model, schema, element=self.name + RESPONSE_SUFFIX)


@dataclass(frozen=True)
class PassThroughOperation:
    """An operation whose messages the WSDL leaves open: its request and response elements take any
    content (``xsd:any``, ``processContents="lax"``), as for a service the adapter forwards unread."""

    name: str
    version: str | None = None
    title: str = ""

    def schema_elements(self, schema: etree._Element) -> None:
        for name in (self.name, self.name + RESPONSE_SUFFIX):
            element = etree.SubElement(schema, f"{{{XSD_NS}}}element", name=name)
            sequence = etree.SubElement(
                etree.SubElement(element, f"{{{XSD_NS}}}complexType"), f"{{{XSD_NS}}}sequence"
            )
            etree.SubElement(
                sequence, f"{{{XSD_NS}}}any", processContents="lax", minOccurs="0", maxOccurs="unbounded"
            )


def soap_operation(handler: Handler, *, name: str | None = None, version: str | None = None) -> SoapOperation:
    """Declare ``handler`` as SOAP operation ``name`` (its function name by default): one pydantic model
    parameter (the request) and a pydantic model return annotation (the response)."""
    op_name = name or handler.__name__
    if not op_name.isidentifier():
        raise declaration_error(f"SOAP operation name {op_name!r} is not an XML name X-Road can carry")
    params = read_params(
        handler, operation_id=op_name, path_names=frozenset(), method="POST", body_required=True
    )
    for tp, what in ((params.body_type, "request"), (params.response_type, "response")):
        if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
            raise declaration_error(f"{op_name}: the {what} type must be a pydantic model")
    if params.query_model.model_fields:
        names = [str(f.alias) for f in params.query_model.model_fields.values()]
        raise declaration_error(
            f"{op_name}: a SOAP operation takes no parameters besides its request: {names}"
        )
    # Every field must have an XML form: found now, not at the first call.
    model_schema(params.body_type, etree.Element(f"{{{XSD_NS}}}schema"))
    model_schema(params.response_type, etree.Element(f"{{{XSD_NS}}}schema"))
    return SoapOperation(op_name, version, handler, (handler.__doc__ or "").strip(), params)


def callers_fault(err: XRoadError) -> XRoadError:
    """A message the caller sent wrong: ``client.`` side, whatever the core's parser says."""
    return XRoadError(err.code, err.message, details=err.details, detail=err.detail, kind=ErrorKind.BAD_INPUT)


def soap_fault_response(err: XRoadError) -> web.Response:
    """``err`` as the SOAP fault a SOAP endpoint answers."""
    return web.Response(
        status=SOAP_FAULT_STATUS, body=render_soap_fault(err), content_type="text/xml", charset="utf-8"
    )


def answering_soap_faults(
    call: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """``call`` with every failure answered as a SOAP fault: an X-Road error as itself, anything else as
    ``server.internal_error`` (logged with its trace, never sent)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await call(request)
        except XRoadError as e:
            log.info("soap_refused", code=e.code, message=e.message)
            return soap_fault_response(e)
        except Exception:
            err = XRoadError(f"server.{FaultCode.INTERNAL_ERROR}", "Internal error")
            log.exception("soap_crashed", detail=err.detail)
            return soap_fault_response(err)

    return handle


def soap_endpoint(operations: dict[str, SoapOperation], namespace: str, *, max_body_bytes: int) -> Handler:
    """The aiohttp handler of the SOAP operations: every failure answered as a SOAP fault."""

    async def _call(request: web.Request) -> web.StreamResponse:
        # 1. the message and its X-Road header
        data = await read_body(request, max_body_bytes)
        try:
            message = parse_soap_message(
                data, content_type=request.headers.get("Content-Type", ""), expect="request"
            )
        except XRoadError as e:
            raise callers_fault(e) from e
        # 2. the operation
        op = operations.get(message.body_element)
        if op is None or message.body_namespace != namespace:
            raise XRoadError(
                FaultCode.UNKNOWN_SERVICE,
                f"this service has no operation {{{message.body_namespace}}}{message.body_element}",
                http_status=400,
            )
        # 3. the context
        context = soap_context(message)
        # 4. the body
        element = soap_body(message)
        try:
            value = op.request_model.model_validate(xml_to_dict(op.request_model, element))
        except ValidationError as e:
            raise validation_error(e, f"{op.name} element") from e
        kwargs: dict[str, Any] = {typing.cast(str, op.params.body): value}
        if op.params.context:
            kwargs[op.params.context] = context
        if op.params.request:
            kwargs[op.params.request] = request
        result = await op.handler(**kwargs)
        if not isinstance(result, op.response_model):
            raise XRoadError(
                FaultCode.INTERNAL_ERROR,
                f"{op.name} answered a {type(result).__name__}, not its response type",
            )
        answer = model_to_xml(result, f"{{{namespace}}}{op.name}{RESPONSE_SUFFIX}")
        return web.Response(
            body=build_soap_response(message, answer), content_type="text/xml", charset="utf-8"
        )

    return answering_soap_faults(_call)


def _w(name: str) -> str:
    return f"{{{WSDL_NS}}}{name}"


def _s(name: str) -> str:
    return f"{{{WSDL_SOAP_NS}}}{name}"


def wsdl_name(title: str) -> str:
    """The WSDL's name for a service titled ``title``: its words joined, camel case (``adapter`` when it has
    none, and before a title that starts with a digit: an XML name cannot), prefixed to the port type,
    binding, service and port names."""
    name = "".join(ch for ch in title.title() if ch.isalnum())
    if not name or not name[0].isalpha():
        name = "Adapter" + name
    return name[0].lower() + name[1:]


def response_name_clash(names: Iterable[str]) -> str | None:
    """The first of the operation ``names`` that is another's response (``XResponse`` beside ``X``): both
    would declare the element and message ``XResponse`` in the WSDL and the body. ``None`` when none is."""
    known = set(names)
    clashing = sorted(n for n in known if n.endswith(RESPONSE_SUFFIX) and n[: -len(RESPONSE_SUFFIX)] in known)
    return clashing[0] if clashing else None


def wsdl_document(operations: Iterable[WsdlOperation], *, name: str, namespace: str, location: str) -> bytes:
    """The WSDL 1.1 document of ``operations`` (document/literal), served at ``location``."""
    ops = list(operations)
    nsmap = {"wsdl": WSDL_NS, "soap": WSDL_SOAP_NS, "xsd": XSD_NS, "xrd": XROAD_NS, "tns": namespace}
    root = etree.Element(_w("definitions"), nsmap=nsmap, name=name, targetNamespace=namespace)
    types_element = etree.SubElement(root, _w("types"))
    schema = etree.SubElement(
        types_element, f"{{{XSD_NS}}}schema", targetNamespace=namespace, elementFormDefault="qualified"
    )
    etree.SubElement(schema, f"{{{XSD_NS}}}import", namespace=XROAD_NS, schemaLocation=XROAD_XSD_LOCATION)
    for op in ops:
        op.schema_elements(schema)
    header = etree.SubElement(root, _w("message"), name="requestheader")
    for part in HEADER_PARTS:
        etree.SubElement(header, _w("part"), name=part, element=f"xrd:{part}")
    for op in ops:
        for message in (op.name, op.name + RESPONSE_SUFFIX):
            m = etree.SubElement(root, _w("message"), name=message)
            etree.SubElement(m, _w("part"), name="body", element=f"tns:{message}")
    port_type = etree.SubElement(root, _w("portType"), name=f"{name}PortType")
    for op in ops:
        operation = etree.SubElement(port_type, _w("operation"), name=op.name)
        if op.title:  # X-Road reads a service's title from xrd:title here
            documentation = etree.SubElement(operation, _w("documentation"))
            etree.SubElement(documentation, f"{{{XROAD_NS}}}title").text = op.title
        etree.SubElement(operation, _w("input"), message=f"tns:{op.name}")
        etree.SubElement(operation, _w("output"), message=f"tns:{op.name}{RESPONSE_SUFFIX}")
    binding = etree.SubElement(root, _w("binding"), name=f"{name}Binding", type=f"tns:{name}PortType")
    etree.SubElement(binding, _s("binding"), style="document", transport=SOAP_HTTP_TRANSPORT)
    for op in ops:
        operation = etree.SubElement(binding, _w("operation"), name=op.name)
        etree.SubElement(operation, _s("operation"), soapAction="", style="document")
        if op.version:
            etree.SubElement(operation, f"{{{XROAD_NS}}}version").text = op.version
        for direction in ("input", "output"):
            io = etree.SubElement(operation, _w(direction))
            etree.SubElement(io, _s("body"), parts="body", use="literal")
            for part in HEADER_PARTS:
                etree.SubElement(io, _s("header"), message="tns:requestheader", part=part, use="literal")
    service = etree.SubElement(root, _w("service"), name=f"{name}Service")
    port = etree.SubElement(service, _w("port"), name=f"{name}Port", binding=f"tns:{name}Binding")
    etree.SubElement(port, _s("address"), location=location)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
