"""``GET /metrics``: the node's Prometheus metrics (:mod:`security_server.metrics`) on the admin socket.

Served at ``/metrics`` (Prometheus' default ``metrics_path``) and at ``/api/v1/metrics``, through the admin
API's pipeline: an API key of any role (an observer key is enough), the per-key rate limit. X-Road shows
its health over JMX on the machine only; here the admin socket is loopback unless ``admin_host`` says
otherwise, and the key keeps the node's traffic by service and its certificates from anyone who can merely
reach that socket. Prometheus sends the key with::

    authorization:
      type: X-Road-ApiKey
      credentials: token=<key>
"""

from __future__ import annotations

from aiohttp import web

from security_server.api.call import EXCHANGE_KEY, NodeCall
from security_server.api.spec import operation
from security_server.metrics import CONTENT_TYPE, exposition, gather_metrics
from xroad_mn.admin import Reply
from xroad_mn.errors import FaultCode, XRoadError

__all__ = ["METRICS_PATH", "add_metrics_route", "get_metrics"]

METRICS_PATH = "/metrics"


@operation(
    "GET",
    METRICS_PATH,
    "The node's metrics (Prometheus text format)",
    tag="status",
    response=bytes,
    media_type=CONTENT_TYPE,
)
async def get_metrics(call: NodeCall) -> Reply[bytes]:
    exchange = call.request.app.get(EXCHANGE_KEY)
    if exchange is None:
        raise XRoadError(
            FaultCode.INTERNAL_ERROR, "the node's message exchange is not running", http_status=503
        )
    return Reply(exposition(await gather_metrics(call.ctx, exchange.node)))


def add_metrics_route(app: web.Application) -> None:
    """Serve ``GET /metrics`` with the pipeline of the mounted ``/api/v1/metrics`` operation."""
    resource = app.router.named_resources()[get_metrics.__name__]
    for route in resource:
        if route.method == "GET":
            app.router.add_get(METRICS_PATH, route.handler, allow_head=False)
            return
    raise XRoadError(FaultCode.INTERNAL_ERROR, "the metrics operation is not mounted")
