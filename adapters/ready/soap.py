"""The SOAP adapter: an existing SOAP 1.1 service put behind X-Road, its X-Road header rewritten, no code.

Configured by TOML::

    kind = "soap"
    title = "Citizen ID cards"
    port = 8093
    upstream = "http://legacy.internal/CitizenService"
    namespace = "urn:legacy:citizen"            # the legacy body elements' namespace: the WSDL's (optional)
    server_url = "http://10.0.0.5:8093"         # as the security server reaches the adapter (optional)
    path = "/"                                  # where X-Road's requests come (default)
    wsdl_path = "/wsdl"                         # where GET answers the WSDL (default)

    [[operations]]
    service_code = "getCitizenIDCardInfo"      # what X-Road consumers call
    upstream_element = "getCardInfo"            # the legacy request element (default: the same)
    soap_action = "urn:getCardInfo"
    version = "v1"                              # the service version, xrd:version (default: none)
    title = "A citizen's ID card"               # the service title, xrd:title (default: none)

    [context]                                   # X-Road header fields -> the legacy service's header
    user_id = "{urn:legacy:auth}operator"
    client = "{urn:legacy:auth}callerSystem"

A call, in order: 1. the X-Road message is parsed and checked by the core
(:func:`xroad_mn.wire.soap.parse_soap_message`, the body wrapper matching the service code), 2. the
operation is the configured one for its service code, 3. the X-Road header is rewritten: the legacy
service gets an envelope of its own whose header holds only the configured ``context`` elements (never
X-Road's), and whose body element is renamed to ``upstream_element`` (same namespace, same content),
4. the legacy service's answer is renamed back (``<upstream_element>Response`` to
``<service_code>Response``) and put in an X-Road response echoing the request's header, as PR-MESS requires;
a fault it answers is passed back as it is (HTTP 500), as X-Road passes an IS's faults. Failures of the
adapter itself are SOAP faults with X-Road codes (``server.network_error``, ``server.timeout``,
``server.service_failed``; ``client.*`` for a malformed request).

``GET wsdl_path`` answers the WSDL a security server adds the services from
(:func:`adapters.sdk.soap.wsdl_document`, X-Road's WSDL skeleton): one operation per mapping, named by its
service code, with its ``version`` and ``title``; its address is ``server_url`` + ``path`` (without
``server_url``, the scheme and host the WSDL was fetched by). The adapter does not read the messages it
forwards, so their elements ``<service_code>`` and ``<service_code>Response`` in ``namespace`` take any
content (``xsd:any``, lax). Without ``namespace`` the adapter serves calls as before (an operator who adds
the services to the node by hand needs no WSDL, and a configuration written before the WSDL keeps working),
and ``GET wsdl_path`` answers HTTP 404 ``client.not_found`` naming the missing setting: a WSDL needs the
namespace, which the adapter cannot guess.
"""

from __future__ import annotations

import re
from typing import Final, Literal

import aiohttp
from aiohttp import web
from lxml import etree
from pydantic import Field, field_validator

from adapters.ready.upstream import SESSION_KEY, UpstreamSettings, calling_upstream, with_upstream_session
from adapters.sdk.app import base_url
from adapters.sdk.context import XRoadContext, soap_context
from adapters.sdk.soap import (
    PassThroughOperation,
    answering_soap_faults,
    callers_fault,
    response_name_clash,
    wsdl_document,
    wsdl_name,
)
from xroad_mn import xmlsafe
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.settings import SettingsModel
from xroad_mn.transport.client import read_limited, request_payload
from xroad_mn.transport.server import read_body, xroad_error_middleware
from xroad_mn.wire.faults import SOAP_ENV_NS
from xroad_mn.wire.soap import RESPONSE_SUFFIX, build_soap_response, parse_soap_message, soap_body

__all__ = ["SoapAdapterSettings", "SoapOperationMapping", "create_soap_app"]


_NAME: Final = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"
_CLARK: Final = re.compile(r"^\{[^{}\s]+\}[A-Za-z_][A-Za-z0-9_.\-]*$")
_ContextField = Literal["client", "service", "query_id", "user_id", "issue", "data_subject"]


class SoapOperationMapping(SettingsModel):
    """One X-Road service code mapped to an operation of the legacy service."""

    service_code: str = Field(pattern=_NAME)
    upstream_element: str | None = Field(default=None, pattern=_NAME)
    soap_action: str = ""
    version: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]+$")
    """The service version: ``xrd:version`` of the operation in the WSDL (none by default)."""
    title: str = Field(default="", max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")
    """The service title: ``xrd:title`` in the WSDL (none when empty)."""


class SoapAdapterSettings(UpstreamSettings):
    """A SOAP adapter's configuration file."""

    kind: Literal["soap"] = "soap"
    port: int = Field(default=8093, ge=0, le=65535)
    path: str = "/"
    """Where the adapter takes X-Road's SOAP requests (the service URL registered at the node)."""
    namespace: str | None = Field(default=None, pattern=r"^\S+$")
    """The namespace of the legacy service's body elements, kept as they are forwarded: the WSDL's target
    namespace. Without it the adapter serves no WSDL."""
    server_url: str | None = Field(default=None, pattern=r"^https?://")
    """The adapter's URL as the security server reaches it (the WSDL's address is ``server_url`` + ``path``);
    when ``None``, the scheme and host the WSDL was fetched by."""
    wsdl_path: str = Field(default="/wsdl", pattern=r"^/")
    """Where ``GET`` answers the WSDL."""
    operations: list[SoapOperationMapping] = Field(min_length=1)
    context: dict[_ContextField, str] = Field(default_factory=dict)
    """X-Road header field -> the legacy header element (``{namespace}name``) it is written to."""

    @field_validator("context")
    @classmethod
    def _clark_names(cls, value: dict[_ContextField, str]) -> dict[_ContextField, str]:
        bad = [v for v in value.values() if not _CLARK.match(v)]
        if bad:
            raise ValueError(f"header elements must be written {{namespace}}name: {bad}")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace_uri(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                etree.Element("probe", nsmap={"tns": value})
            except ValueError as e:
                raise ValueError(f"namespace {value!r} is not a URI an XML namespace can be") from e
        return value

    @field_validator("operations")
    @classmethod
    def _one_mapping_per_code(cls, value: list[SoapOperationMapping]) -> list[SoapOperationMapping]:
        codes = [op.service_code for op in value]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"service codes mapped twice: {twice}")
        clash = response_name_clash(codes)
        if clash is not None:
            of = clash.removesuffix(RESPONSE_SUFFIX)
            raise ValueError(f"service code {clash!r} is the name of the response of {of!r}")
        return value


def _rename(element: etree._Element, local: str) -> None:
    element.tag = etree.QName(etree.QName(element).namespace, local).text


def _upstream_envelope(body: etree._Element, ctx: XRoadContext, context: dict[_ContextField, str]) -> bytes:
    envelope = etree.Element(f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"soapenv": SOAP_ENV_NS})
    fields = [(tag, getattr(ctx, name)) for name, tag in context.items() if getattr(ctx, name) is not None]
    if fields:
        header = etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Header")
        for tag, value in fields:
            etree.SubElement(header, tag).text = str(value)
    etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Body").append(body)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


def _upstream_answer(data: bytes) -> tuple[etree._Element, bool]:
    """The legacy service's body element, and whether it is a fault."""
    root = xmlsafe.parse(
        data, code=FaultCode.SERVICE_FAILED, what="the legacy service's answer", max_bytes=None
    )
    if root.tag != f"{{{SOAP_ENV_NS}}}Envelope":
        raise XRoadError(FaultCode.SERVICE_FAILED, "the legacy service did not answer a SOAP 1.1 envelope")
    body = root.find(f"{{{SOAP_ENV_NS}}}Body")
    children = list(body.iterchildren("{*}*")) if body is not None else []
    if len(children) != 1:
        raise XRoadError(FaultCode.SERVICE_FAILED, "the legacy service's answer has no single body element")
    return children[0], children[0].tag == f"{{{SOAP_ENV_NS}}}Fault"


def create_soap_app(settings: SoapAdapterSettings) -> web.Application:
    """The SOAP adapter's application; its client session opens and closes with it."""
    operations = {op.service_code: op for op in settings.operations}

    async def call(request: web.Request) -> web.StreamResponse:
        # 1. the X-Road message
        data = await read_body(request, settings.max_body_bytes)
        try:
            message = parse_soap_message(
                data, content_type=request.headers.get("Content-Type", ""), expect="request"
            )
            ctx = soap_context(message)
        except XRoadError as e:
            raise callers_fault(e) from e
        # 2. the operation
        op = operations.get(message.body_element)
        if op is None:
            raise XRoadError(
                FaultCode.UNKNOWN_SERVICE,
                f"this adapter maps no service {message.body_element[:80]!r}",
                http_status=400,
            )
        # 3. the rewritten request
        body = soap_body(message)
        if op.upstream_element:
            _rename(body, op.upstream_element)
        envelope = _upstream_envelope(body, ctx, settings.context)
        async with (
            calling_upstream(settings, "the legacy SOAP service"),
            request.app[SESSION_KEY].post(
                settings.upstream,
                data=request_payload(envelope),
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{op.soap_action}"'},
                timeout=aiohttp.ClientTimeout(total=settings.timeout_seconds),
                ssl=settings.verify_tls,
                allow_redirects=False,
            ) as resp,
        ):
            answer = await read_limited(resp.content, settings.max_response_bytes)
        if answer is None:
            raise XRoadError(FaultCode.SERVICE_FAILED, "the legacy service's answer is too large")
        # 4. the answer, renamed back, in an X-Road response
        element, is_fault = _upstream_answer(answer)
        if is_fault:
            return web.Response(status=500, body=answer, content_type="text/xml", charset="utf-8")
        if op.upstream_element and etree.QName(element).localname == op.upstream_element + RESPONSE_SUFFIX:
            _rename(element, op.service_code + RESPONSE_SUFFIX)
        return web.Response(
            body=build_soap_response(message, element), content_type="text/xml", charset="utf-8"
        )

    described = [PassThroughOperation(op.service_code, op.version, op.title) for op in settings.operations]

    async def wsdl(request: web.Request) -> web.Response:
        if settings.namespace is None:
            raise XRoadError(
                FaultCode.NOT_FOUND,
                "this SOAP adapter has no WSDL: its configuration sets no namespace (set namespace to the "
                "namespace of the legacy service's request and response elements)",
                kind=ErrorKind.NOT_FOUND,
            )
        document = wsdl_document(
            described,
            name=wsdl_name(settings.title),
            namespace=settings.namespace,
            location=base_url(request, settings.server_url).rstrip("/") + settings.path,
        )
        return web.Response(body=document, content_type="text/xml")

    app = web.Application(middlewares=[xroad_error_middleware], client_max_size=settings.max_body_bytes + 1)
    app.router.add_post(settings.path, answering_soap_faults(call))
    app.router.add_get(settings.wsdl_path, wsdl)
    return with_upstream_session(app)
