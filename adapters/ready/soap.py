"""The SOAP adapter: an existing SOAP 1.1 service put behind X-Road, its X-Road header rewritten, no code.

Configured by TOML::

    kind = "soap"
    title = "Citizen ID cards"
    port = 8093
    upstream = "http://legacy.internal/CitizenService"

    [[operations]]
    service_code = "WS100101_getCitizenIDCardInfo"   # what X-Road consumers call
    upstream_element = "getCitizenIDCardInfo"         # the legacy request element (default: the same)
    soap_action = "urn:getCitizenIDCardInfo"

    [context]                                         # X-Road header fields -> the legacy service's header
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
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Final, Literal

import aiohttp
import structlog
from aiohttp import web
from lxml import etree
from pydantic import Field, field_validator

from adapters.sdk.context import XRoadContext, soap_context
from adapters.sdk.soap import answering_soap_faults, callers_fault
from xroad_mn import xmlsafe
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.settings import SettingsModel
from xroad_mn.transport.client import read_limited, request_payload
from xroad_mn.transport.server import read_body
from xroad_mn.wire.faults import SOAP_ENV_NS
from xroad_mn.wire.soap import RESPONSE_SUFFIX, build_soap_response, parse_soap_message, soap_body

__all__ = ["SoapAdapterSettings", "SoapOperationMapping", "create_soap_app"]

log = structlog.get_logger(__name__)

_CLARK: Final = re.compile(r"^\{[^{}\s]+\}[A-Za-z_][A-Za-z0-9_.\-]*$")
SESSION_KEY: Final = web.AppKey("soap_adapter_session", aiohttp.ClientSession)
_ContextField = Literal["client", "service", "query_id", "user_id", "issue", "data_subject"]


class SoapOperationMapping(SettingsModel):
    """One X-Road service code mapped to an operation of the legacy service."""

    service_code: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
    upstream_element: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
    soap_action: str = ""


class SoapAdapterSettings(SettingsModel):
    """A SOAP adapter's configuration file."""

    kind: Literal["soap"] = "soap"
    title: str
    host: str = "127.0.0.1"
    port: int = Field(default=8093, ge=0, le=65535)
    upstream: str = Field(pattern=r"^https?://")
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    verify_tls: bool = True
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    max_response_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    path: str = "/"
    """Where the adapter takes X-Road's SOAP requests (the service URL registered at the node)."""
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
        try:
            async with request.app[SESSION_KEY].post(
                settings.upstream,
                data=request_payload(envelope),
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{op.soap_action}"'},
                timeout=aiohttp.ClientTimeout(total=settings.timeout_seconds),
                ssl=settings.verify_tls,
                allow_redirects=False,
            ) as resp:
                answer = await read_limited(resp.content, settings.max_response_bytes)
        except TimeoutError as e:
            raise XRoadError(
                FaultCode.TIMEOUT, f"the legacy service did not answer in {settings.timeout_seconds:g} s"
            ) from e
        except aiohttp.ClientError as e:
            log.warning("upstream_failed", reason=str(e))
            raise XRoadError(FaultCode.NETWORK_ERROR, "cannot reach the legacy SOAP service") from e
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

    app = web.Application(client_max_size=settings.max_body_bytes + 1)
    app.router.add_post(settings.path, answering_soap_faults(call))

    async def session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as client:
            app[SESSION_KEY] = client
            yield

    app.cleanup_ctx.append(session)
    return app
