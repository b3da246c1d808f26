"""X-Road's error formats on the wire: REST error bodies (JSON and XML) and SOAP 1.1 faults.

Rendering and parsing of :class:`~xroad_mn.errors.XRoadError` live here, with the wire code, so the exception
type itself carries no XML library. One middleware (:mod:`xroad_mn.transport.server`) calls these for every
failing request.

Example::

    >>> from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
    >>> from xroad_mn.wire.faults import parse_soap_fault, render_rest_error, render_soap_fault
    >>> err = XRoadError(FaultCode.ACCESS_DENIED, "Request is not allowed").with_prefix("server.serverproxy")
    >>> render_rest_error(err, accept="application/json").status
    500
    >>> parse_soap_fault(render_soap_fault(err)).code
    'server.serverproxy.access_denied'
    >>> parse_soap_fault(render_soap_fault(XRoadError(FaultCode.BAD_REQUEST, "no", http_status=400))).code
    'client.bad_request'

Both formats send a code with X-Road's ``client.``/``server.`` prefix (:func:`as_sent`): an error raised with
a bare code gets ``client.`` when its HTTP status is 4xx (the caller's fault) and ``server.`` otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from lxml import etree

from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.xmlsafe import parser

__all__ = [
    "FAULT_SIDES",
    "MAX_ERROR_BODY_BYTES",
    "SOAP_ENV_NS",
    "RenderedError",
    "as_sent",
    "http_status_of",
    "parse_rest_error",
    "parse_soap_fault",
    "render_rest_error",
    "render_soap_fault",
]

SOAP_ENV_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
MAX_ERROR_BODY_BYTES: Final = 1024 * 1024
"""Largest error body the parsers read; anything longer is not an X-Road error message."""


@dataclass(frozen=True, slots=True)
class RenderedError:
    """An error rendered for HTTP: status, content type, body and the headers X-Road adds."""

    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str]


# Characters XML 1.0 cannot carry (and lone surrogates, which UTF-8 cannot encode): dropped before
# rendering, so a peer's message with a control character can never break the error path itself.
_UNRENDERABLE: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _renderable(text: str) -> str:
    return _UNRENDERABLE.sub("\ufffd", text)


_XML_ACCEPT: Final = re.compile(r"(^|[,\s])(text/xml|application/xml|text/\*)", re.IGNORECASE)


FAULT_SIDES: Final = ("client", "server", "signer")
"""The first part of every fault code on the wire: who failed (X-Road's ``ErrorCodes`` prefixes)."""


HTTP_STATUS_BY_KIND: Final[Mapping[ErrorKind, int]] = MappingProxyType(
    {
        ErrorKind.BAD_INPUT: 400,
        ErrorKind.DENIED: 403,
        ErrorKind.NOT_FOUND: 404,
        ErrorKind.CONFLICT: 409,
    }
)


def http_status_of(err: XRoadError) -> int:
    """The HTTP status ``err`` is answered with: the HTTP layer's own, else its kind's, else 400 for a
    ``client.`` code, else 500."""
    if err.http_status is not None:
        return err.http_status
    if err.kind in HTTP_STATUS_BY_KIND:
        return HTTP_STATUS_BY_KIND[err.kind]
    return 400 if err.code.startswith("client.") else 500


def as_sent(err: XRoadError) -> XRoadError:
    """``err`` as a peer receives it, in a REST error or a SOAP fault alike: a code that does not start with
    ``client.``/``server.``/``signer.`` gets ``client.`` when the error is the caller's (HTTP status 4xx)
    and ``server.`` otherwise. The one prefixing rule of every error format."""
    if err.code.split(".", 1)[0] in FAULT_SIDES:
        return err
    return err.with_prefix("client" if 400 <= http_status_of(err) < 500 else "server")


def render_rest_error(err: XRoadError, accept: str | None = None) -> RenderedError:
    """Render ``err`` as X-Road's REST error body (PR-REST), with the ``X-Road-Error`` header.

    JSON ``{"type", "message", "detail"}`` by default; ``<error><type/><message/><detail/></error>`` when
    ``Accept`` contains ``text/xml``, ``application/xml`` or ``text/*``.
    """
    err = as_sent(err)
    headers = {"X-Road-Error": err.code}
    status = http_status_of(err)
    if accept and _XML_ACCEPT.search(accept):
        root = etree.Element("error")
        for name, value in (("type", err.code), ("message", err.message), ("detail", err.detail)):
            etree.SubElement(root, name).text = _renderable(value)
        body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        return RenderedError(status, "text/xml; charset=utf-8", body, headers)
    payload = {"type": _renderable(err.code), "message": _renderable(err.message), "detail": err.detail}
    body = json.dumps(payload, ensure_ascii=False).encode()
    return RenderedError(status, "application/json; charset=utf-8", body, headers)


def render_soap_fault(err: XRoadError, actor: str = "") -> bytes:
    """Render ``err`` as X-Road's SOAP 1.1 fault (``SoapFault.createFaultXml``), its code prefixed as
    :func:`as_sent` says."""
    err = as_sent(err)
    env = etree.Element(f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"SOAP-ENV": SOAP_ENV_NS})
    body = etree.SubElement(env, f"{{{SOAP_ENV_NS}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP_ENV_NS}}}Fault")
    etree.SubElement(fault, "faultcode").text = _renderable(err.code)
    etree.SubElement(fault, "faultstring").text = _renderable(err.message)
    etree.SubElement(fault, "faultactor").text = _renderable(actor)
    detail = etree.SubElement(fault, "detail")
    etree.SubElement(detail, "faultDetail", nsmap={None: ""}).text = _renderable(err.detail)  # type: ignore[dict-item]
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def _safe_parser() -> etree.XMLParser:
    # Unlike xmlsafe.parse, a DOCTYPE in an error body is tolerated (entities stay unresolved): the peer's
    # error is still reported.
    return parser()


def parse_soap_fault(data: bytes) -> XRoadError:
    """Read a SOAP fault produced by any X-Road version back into an :class:`XRoadError`."""
    if len(data) > MAX_ERROR_BODY_BYTES:
        raise XRoadError(FaultCode.INVALID_SOAP, "SOAP fault is too large")
    try:
        root = etree.fromstring(data, _safe_parser())
    except etree.XMLSyntaxError as e:
        raise XRoadError(FaultCode.INVALID_SOAP, f"SOAP fault is not well-formed XML: {e}") from e
    fault = root.find(f"{{{SOAP_ENV_NS}}}Body/{{{SOAP_ENV_NS}}}Fault")
    if fault is None:
        raise XRoadError(FaultCode.INVALID_SOAP, "message contains no SOAP fault")
    code = fault.findtext("faultcode") or ""
    if not code:
        raise XRoadError(FaultCode.INVALID_SOAP, "SOAP fault has no faultcode")
    detail = fault.findtext("detail/faultDetail")
    return XRoadError(code, fault.findtext("faultstring") or "", detail=detail)


def parse_rest_error(data: bytes, content_type: str = "application/json") -> XRoadError:
    """Read an X-Road REST error body (JSON or XML) back into an :class:`XRoadError`."""
    if len(data) > MAX_ERROR_BODY_BYTES:
        raise XRoadError(FaultCode.INVALID_MESSAGE, "error body is too large")
    fields: dict[str, str | None]
    if "xml" in content_type.lower():
        try:
            root = etree.fromstring(data, _safe_parser())
        except etree.XMLSyntaxError as e:
            raise XRoadError(FaultCode.INVALID_MESSAGE, f"error body is not well-formed XML: {e}") from e
        fields = {name: root.findtext(name) for name in ("type", "message", "detail")}
    else:
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise XRoadError(FaultCode.INVALID_MESSAGE, f"error body is not JSON: {e}") from e
        if not isinstance(obj, dict):
            raise XRoadError(FaultCode.INVALID_MESSAGE, "error body is not a JSON object")
        fields = {k: (str(obj[k]) if obj.get(k) is not None else None) for k in ("type", "message", "detail")}
    if not fields["type"]:
        raise XRoadError(FaultCode.INVALID_MESSAGE, "error body has no type")
    return XRoadError(fields["type"], fields["message"] or "", detail=fields["detail"])
