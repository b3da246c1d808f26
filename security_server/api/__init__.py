"""The node's admin REST API under ``/api/v1``, described by the OpenAPI document it serves.

Every operation is declared once in :data:`API` (an :class:`xroad_mn.admin.AdminApi` with X-Road's security
server roles; who may change what: :mod:`security_server.api.spec`) and calls
:mod:`security_server.operations`, the library the CLI calls too. :func:`add_admin_routes` mounts them with
:mod:`xroad_mn.admin`'s pipeline — ``X-Road-ApiKey`` authentication, rate limit, roles, body limit, the
operation, an audit record of every change and refusal in ``HOME/audit.log`` — and serves
``GET /api/v1/openapi.json``; the Prometheus metrics are at ``GET /metrics`` too (:mod:`.metrics`).

Identifiers in paths and bodies take the colon form (``MN:GOV:9010001:civil-registry``) or X-Road's string
form (``SUBSYSTEM:MN/GOV/9010001/civil-registry``, ``/`` written ``%2F`` in a path). Errors are X-Road REST
errors (``{"type", "message", "detail"}`` and ``X-Road-Error``).

Example::

    $ curl -H 'Authorization: X-Road-ApiKey token=...' http://127.0.0.2:4000/api/v1/status
"""

from __future__ import annotations

from aiohttp import web

from security_server.api import access, clients, keys, messagelog, metrics, services, status
from security_server.api.call import SETTINGS_KEY, NodeCall
from security_server.api.events import NodeEvent
from security_server.api.spec import API

__all__ = ["API", "NodeCall", "NodeEvent", "add_admin_routes"]

# Importing them declares their operations.
_MODULES = (status, keys, clients, services, access, messagelog, metrics)


def add_admin_routes(app: web.Application) -> None:
    """Mount every operation of :data:`API`, ``GET /api/v1/openapi.json`` and ``GET /metrics`` (the same
    as ``/api/v1/metrics``, at Prometheus' default path) on ``app``, which holds the
    keys of :mod:`security_server.api.call` and :mod:`xroad_mn.admin`'s ``AUDIT_KEY``, ``API_KEYS_KEY`` and
    ``LIMITER_KEY`` (see :func:`security_server.app.create_admin_app`)."""
    API.mount(app, max_body_bytes=app[SETTINGS_KEY].max_body_bytes)
    metrics.add_metrics_route(app)
