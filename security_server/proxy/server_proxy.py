"""The server proxy: port 5500, mutual TLS, messages from other security servers to this node's services.

Processing follows X-Road's order (PR-MESSTRANSP §5.3) exactly, and the first failure ends it:

1. only ``POST``;
2. global configuration valid;
3. parse the transport message and its header part, then the ``securityServer`` target check;
4. the client is registered in global configuration;
5. the TLS client certificate is the authentication certificate of a server of that client (chain, OCSP
   from the request's parts, registered hash);
6. the service exists here and is of the message's type (SOAP ↔ WSDL, REST ↔ REST/OpenAPI);
7. access rights, deny by default (REST: method and path against the endpoints);
8. the service is not disabled;
9. the request's signature (by the client's member, trust cached per signer);
10. the request is committed to the message log;
11. the information system is called with the service's timeout;
12. the response is signed by the provider's member, logged, and sent.

Every failure is answered with X-Road's SOAP fault as the whole ``text/xml`` body (the consumer node turns it
into its IS's format), coded ``server.serverproxy.*`` unless the code already names a side.
"""

from __future__ import annotations

from typing import Final

import structlog
from aiohttp import web
from cryptography import x509

from security_server.opmonitoring import PRODUCER, OpTrace, now_ms
from security_server.proxy.handlers import PROXY_VERSION, ProviderExchange
from security_server.proxy.node import ExchangeNode
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.transport.server import read_body
from xroad_mn.wire.faults import render_soap_fault

__all__ = ["NODE_KEY", "SERVER_PROXY_PREFIX", "create_server_proxy_app"]

log = structlog.get_logger(__name__)

SERVER_PROXY_PREFIX = "server.serverproxy"
NODE_KEY = web.AppKey("exchange_node", ExchangeNode)
TRACE_KEY: Final = web.RequestKey("xroad_mn_op_trace", OpTrace)
"""The request's :class:`~security_server.opmonitoring.OpTrace` (a request key, set by the handler)."""


def _fault_response(err: XRoadError) -> web.Response:
    err = err.with_prefix(SERVER_PROXY_PREFIX)
    return web.Response(
        status=500, body=render_soap_fault(err), headers={"Content-Type": "text/xml; charset=UTF-8"}
    )


def _peer_certificate(request: web.Request) -> x509.Certificate:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        raise XRoadError(FaultCode.SSL_AUTH_FAILED, "the client security server presented no TLS certificate")
    return x509.load_der_x509_certificate(der)


async def _serve(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    if request.method != "POST":  # (1)
        raise XRoadError(FaultCode.INVALID_HTTP_METHOD, f"must use POST, not {request.method}")
    view = node.configuration()  # (2)
    body = await read_body(request, node.settings.max_message_bytes)
    exchange = ProviderExchange(node, view, request[TRACE_KEY])
    return await exchange.handle(
        content_type=request.headers.get("Content-Type", ""),
        headers=request.headers,
        body=body,
        tls_certificate=lambda: _peer_certificate(request),
    )


async def _handle(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    trace = OpTrace(PRODUCER, now_ms(), internal_ip=node.settings.address, xroad_version=PROXY_VERSION)
    trace.service_server_address = node.settings.address
    request[TRACE_KEY] = trace
    try:
        response = await _serve(request)
    except XRoadError as e:
        log.info("serverproxy_refused", code=e.code, error=e.message, detail=e.detail)
        node.opmon.record(trace.finish(error=e.with_prefix(SERVER_PROXY_PREFIX)))
        return _fault_response(e)
    node.opmon.record(trace.finish(error=None))
    return response


def create_server_proxy_app(node: ExchangeNode) -> web.Application:
    """The port 5500 application (served with the node's mutual-TLS context)."""
    app = web.Application(client_max_size=node.settings.max_message_bytes)
    app[NODE_KEY] = node
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app
