"""The node's use cases as async functions: what the admin API and the ``xroad-mn node`` CLI both call.

Each function takes a :class:`NodeContext` (settings, store, token, HTTP session) and the caller's parsed
input; identifiers come in parsed (:mod:`security_server.ids` reads both forms people write). Every refusal
is an :class:`~xroad_mn.errors.XRoadError` with an X-Road code and HTTP status, and changes nothing.

* :mod:`~security_server.operations.context` — :class:`NodeContext`, opening the token and database;
* :mod:`~security_server.operations.init` — :func:`init_node` (``node init``);
* :mod:`~security_server.operations.status` — :func:`node_status`;
* :mod:`~security_server.operations.clients` — hosted clients, connection types, IS certificates;
* :mod:`~security_server.operations.certs` — keys, CSRs, certificates (request from a CA, import);
* :mod:`~security_server.operations.registration` — ``authCertReg``, ``clientReg``, state sync;
* :mod:`~security_server.operations.services` — service descriptions, services, endpoints;
* :mod:`~security_server.operations.access` — access rights and local groups;
* :mod:`~security_server.operations.messagelog` — the message log for auditors: search, records, export.

Example::

    >>> async with open_node_store(settings) as store, aiohttp.ClientSession() as session:  # doctest: +SKIP
    ...     ctx = NodeContext(settings, store, await login_token(open_node_token(settings)), session)
    ...     await certs.request_certificate(ctx, KeyUsage.AUTHENTICATION, ca_url="http://127.0.0.1:8899")
    ...     request_id = await registration.register_server(ctx)
"""

from security_server.operations import access, certs, clients, messagelog, registration, services
from security_server.operations.context import (
    NodeContext,
    globalconf_ssl_context,
    login_token,
    open_node_store,
    open_node_token,
    utc_now,
)
from security_server.operations.init import FIRST_KEY_ROLES, InitResult, init_node, install_anchor
from security_server.operations.services import DescriptionReader, ReadDescription, read_description
from security_server.operations.status import (
    CertificateState,
    GlobalConfState,
    NodeStatus,
    certificate_states,
    globalconf_state,
    node_status,
)

__all__ = [
    "FIRST_KEY_ROLES",
    "CertificateState",
    "DescriptionReader",
    "GlobalConfState",
    "InitResult",
    "NodeContext",
    "NodeStatus",
    "ReadDescription",
    "access",
    "certificate_states",
    "certs",
    "clients",
    "globalconf_ssl_context",
    "globalconf_state",
    "init_node",
    "install_anchor",
    "login_token",
    "messagelog",
    "node_status",
    "open_node_store",
    "open_node_token",
    "read_description",
    "registration",
    "services",
    "utc_now",
]
