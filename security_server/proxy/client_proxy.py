"""The client proxy: where a member's information systems (IS) call X-Road services (ports 8080 and 8443).

Routes, as X-Road's client proxy serves them:

- ``{METHOD} /r1/{serviceId}[/path][?query]`` — a REST request (PR-REST r1), any method and content type;
- ``POST /`` (any path but the ones below) — a SOAP 4.0 request, plain, SwA or MTOM;
- ``GET /listClients[?xRoadInstance=..]`` — every member and subsystem of global configuration (XML, or JSON
  with ``Accept: application/json``);
- ``GET /wsdl?xRoadInstance=..&memberClass=..&memberCode=..&subsystemCode=..&serviceCode=..[&version=..]`` —
  the provider's WSDL, fetched with a ``getWsdl`` request through the exchange;
- ``GET /asic?...`` — the message log's evidence of an exchange (loopback ISs only).

Errors are X-Road's: a REST error (JSON, or XML when ``Accept`` asks; ``X-Road-Error`` header; HTTP 400 for
``client.*`` codes and 500 otherwise) or a SOAP fault, coded ``server.clientproxy.*`` unless the code
already names a side.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Final

import structlog
from aiohttp import web
from cryptography import x509
from lxml import etree

from security_server.ids import strict_checked
from security_server.messagelog.export import asic_response
from security_server.messagelog.timestamper import Timestamper
from security_server.opmonitoring import CLIENT, OpTrace, now_ms
from security_server.proxy.handlers import PROXY_VERSION, ConsumerExchange, IsConnection
from security_server.proxy.node import ExchangeNode
from security_server.proxy.server_proxy import NODE_KEY, TRACE_KEY
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import SubsystemId, parse_client_header
from xroad_mn.transport.server import read_body
from xroad_mn.wire import rest as rest_wire
from xroad_mn.wire import soap as soap_wire
from xroad_mn.wire import soapmeta
from xroad_mn.wire.faults import render_rest_error, render_soap_fault

__all__ = ["CLIENT_PROXY_PREFIX", "create_client_proxy_app"]

log = structlog.get_logger(__name__)

CLIENT_PROXY_PREFIX: Final = "server.clientproxy"
REST_PREFIX: Final = "/r1/"


def _coded(err: XRoadError) -> XRoadError:
    """The code the IS sees: ``client.*`` for its own mistakes, else ``server.clientproxy.*``."""
    if err.kind is ErrorKind.BAD_INPUT:
        return err.with_prefix("client")
    return err.with_prefix(CLIENT_PROXY_PREFIX)


def _status(err: XRoadError) -> int:
    return 400 if err.code.startswith("client.") else 500


def _rest_error(request: web.Request, err: XRoadError) -> web.Response:
    err = _coded(err)
    rendered = render_rest_error(err, accept=request.headers.get("Accept"))
    headers = {**rendered.headers, "Content-Type": rendered.content_type}
    return web.Response(status=_status(err), body=rendered.body, headers=headers)


def _soap_fault(err: XRoadError) -> web.Response:
    err = _coded(err)
    return web.Response(
        status=500, body=render_soap_fault(err), headers={"Content-Type": "text/xml; charset=UTF-8"}
    )


def _is_connection(request: web.Request) -> IsConnection:
    """Whether the IS came over HTTPS, and the TLS certificate it presented (verified by the handshake
    against the registered IS certificates)."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_object is None:
        return IsConnection()
    der = ssl_object.getpeercert(binary_form=True)
    return IsConnection(True, x509.load_der_x509_certificate(der) if der else None)


def _raw_headers(request: web.Request) -> list[tuple[str, str]]:
    """The IS's headers as sent: values read as UTF-8 (``X-MN-Data-Subject: УБ99112233``,
    ``X-Road-UserId`` in Cyrillic), so that the REST header part, written in UTF-8, carries the same text;
    a value that is not UTF-8 is kept byte for byte (Latin-1)."""
    return [(k.decode("latin-1"), _header_value(v)) for k, v in request.raw_headers]


def _header_value(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def _exchange_rest(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    view = node.configuration()
    body = await read_body(request, node.settings.max_message_bytes)
    exchange = ConsumerExchange(node, view, _is_connection(request), request[TRACE_KEY])
    result = await exchange.rest(request.method, request.raw_path, _raw_headers(request), body)
    return result.response()


def _new_trace(request: web.Request) -> OpTrace:
    node = request.app[NODE_KEY]
    trace = OpTrace(CLIENT, now_ms(), internal_ip=node.settings.address, xroad_version=PROXY_VERSION)
    trace.client_server_address = node.settings.address
    request[TRACE_KEY] = trace
    return trace


async def _rest(request: web.Request) -> web.StreamResponse:
    trace = _new_trace(request)
    try:
        response = await _exchange_rest(request)
    except XRoadError as e:
        log.info("clientproxy_refused", code=e.code, error=e.message, detail=e.detail)
        request.app[NODE_KEY].opmon.record(trace.finish(error=_coded(e)))
        return _rest_error(request, e)
    request.app[NODE_KEY].opmon.record(trace.finish(error=None))
    return response


async def _exchange_soap(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    if request.method != "POST":
        raise XRoadError(
            FaultCode.INVALID_HTTP_METHOD,
            f"must use POST for SOAP, not {request.method}",
            kind=ErrorKind.BAD_INPUT,
        )
    view = node.configuration()
    body = await read_body(request, node.settings.max_message_bytes)
    exchange = ConsumerExchange(node, view, _is_connection(request), request[TRACE_KEY])
    result = await exchange.soap(
        request.headers.get("Content-Type", ""), request.headers.get("SOAPAction"), body
    )
    return result.response()


async def _soap(request: web.Request) -> web.StreamResponse:
    trace = _new_trace(request)
    try:
        response = await _exchange_soap(request)
    except XRoadError as e:
        log.info("clientproxy_refused", code=e.code, error=e.message, detail=e.detail)
        request.app[NODE_KEY].opmon.record(trace.finish(error=_coded(e)))
        return _soap_fault(e)
    request.app[NODE_KEY].opmon.record(trace.finish(error=None))
    return response


async def _list_clients(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    try:
        view = node.configuration()
        instance = request.query.get("xRoadInstance", view.instance)
        entries = [(c, name, sub) for c, name, sub in view.clients() if c.instance == instance]
        accept = request.headers.get("Accept", "")
        if "application/json" in accept.lower():
            return web.Response(body=rest_wire.list_clients_json(entries), content_type="application/json")
        return web.Response(
            body=rest_wire.list_clients_xml(entries), headers={"Content-Type": "text/xml; charset=UTF-8"}
        )
    except XRoadError as e:
        return _rest_error(request, e)


def _query(request: web.Request, name: str, *, required: bool = True) -> str | None:
    value = request.query.get(name)
    if required and not value:
        raise XRoadError(
            FaultCode.BAD_REQUEST, f"query parameter {name!r} is missing", kind=ErrorKind.BAD_INPUT
        )
    return value


async def _wsdl(request: web.Request) -> web.StreamResponse:
    try:
        return await _fetch_wsdl(request)
    except XRoadError as e:
        return _rest_error(request, e)


async def _fetch_wsdl(request: web.Request) -> web.StreamResponse:
    """X-Road's ``/wsdl``: a ``getWsdl`` request to the provider through the exchange, asked as the
    ``X-Road-Client`` the IS names, else as the first subsystem this node hosts."""
    node = request.app[NODE_KEY]
    view = node.configuration()
    provider = SubsystemId(
        str(_query(request, "xRoadInstance")),
        str(_query(request, "memberClass")),
        str(_query(request, "memberCode")),
        str(_query(request, "subsystemCode")),
    )
    service_code = str(_query(request, "serviceCode"))
    version = _query(request, "version", required=False)
    client = await _wsdl_client(node, request)
    envelope = _get_wsdl_request(client, provider, service_code, version)
    exchange = ConsumerExchange(node, view, _is_connection(request))
    result = await exchange.soap("text/xml; charset=UTF-8", None, envelope)
    content_type = next((v for k, v in result.headers if k.lower() == "content-type"), "")
    _soap, _type, attachments = soap_wire.split_soap_request(content_type, result.body)
    if not attachments:
        raise XRoadError(FaultCode.INVALID_MESSAGE, "the getWsdl response carries no WSDL attachment")
    wsdl = attachments[0].data
    return web.Response(body=wsdl, headers={"Content-Type": "text/xml; charset=UTF-8"})


def _get_wsdl_request(
    client: SubsystemId, provider: SubsystemId, service_code: str, version: str | None
) -> bytes:
    body = etree.Element(f"{{{soap_wire.XROAD_NS}}}getWsdl", nsmap={"xrd": soap_wire.XROAD_NS})
    etree.SubElement(body, f"{{{soap_wire.XROAD_NS}}}serviceCode").text = service_code
    if version:
        etree.SubElement(body, f"{{{soap_wire.XROAD_NS}}}serviceVersion").text = version
    return soap_wire.build_soap_request(client, provider.service(soapmeta.GET_WSDL), str(uuid.uuid4()), body)


async def _wsdl_client(node: ExchangeNode, request: web.Request) -> SubsystemId:
    """The client of a ``/wsdl`` request: ``X-Road-Client`` when the IS sends it (read in the node's
    ``strict_identifier_checks`` mode), else the first registered subsystem this node hosts."""
    header = request.headers.get("X-Road-Client")
    if header is not None:
        client = strict_checked(
            lambda s: parse_client_header(header, strict=s), strict=node.settings.strict_identifier_checks
        )
        if isinstance(client, SubsystemId):
            return client
    hosted = [c.client for c in await node.store.list_clients() if isinstance(c.client, SubsystemId)]
    if not hosted:
        raise XRoadError(FaultCode.UNKNOWN_MEMBER, "this security server hosts no subsystem to ask as")
    return hosted[0]


def _is_loopback(request: web.Request) -> bool:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not peer:
        return False
    try:
        return ipaddress.ip_address(peer[0]).is_loopback
    except ValueError:
        return False


async def _asic(request: web.Request) -> web.StreamResponse:
    try:
        return await _evidence(request)
    except XRoadError as e:
        rendered = render_rest_error(e, accept=request.headers.get("Accept"))
        return web.Response(
            status=rendered.status, body=rendered.body,
            headers={**rendered.headers, "Content-Type": rendered.content_type},
        )  # fmt: skip


async def _evidence(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    if not _is_loopback(request):
        raise XRoadError(
            FaultCode.ACCESS_DENIED, "message log evidence is served to loopback clients only",
            kind=ErrorKind.DENIED, http_status=403,
        )  # fmt: skip
    timestamper = node.message_log.timestamper
    answer = await asic_response(
        node.message_log.store,
        dict(request.query),
        timestamper=timestamper if isinstance(timestamper, Timestamper) else None,
    )
    return web.Response(
        body=answer.body,
        headers={"Content-Type": answer.content_type, "Content-Disposition": answer.content_disposition},
    )


async def _dispatch(request: web.Request) -> web.StreamResponse:
    path = request.path
    if path.startswith(REST_PREFIX):
        return await _rest(request)
    if request.method == "GET" and path == "/listClients":
        return await _list_clients(request)
    if request.method == "GET" and path == "/wsdl":
        return await _wsdl(request)
    if request.method == "GET" and path == "/asic":
        return await _asic(request)
    return await _soap(request)


def create_client_proxy_app(node: ExchangeNode) -> web.Application:
    """The IS-facing application (served on 8080, and on 8443 with the node's internal TLS context)."""
    app = web.Application(client_max_size=node.settings.max_message_bytes)
    app[NODE_KEY] = node
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app
