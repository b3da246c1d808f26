"""Admin REST APIs of xroad-mn's applications, with X-Road's conventions.

- :mod:`~xroad_mn.admin.apikeys`: ``X-Road-ApiKey`` keys (hashed in a JSON file) with X-Road's
  :class:`Role`\\ s; a running app checks them with an :class:`ApiKeyRing`;
- :mod:`~xroad_mn.admin.openapi`: the OpenAPI 3 document built from the operations' declarations;
- :mod:`~xroad_mn.admin.api`: :class:`AdminApi` declares operations and mounts them with the request
  pipeline (authentication → rate limit → role authorisation → body limit and validation → operation →
  audit and change callback);
- :mod:`~xroad_mn.admin.ratelimit` and :mod:`~xroad_mn.admin.audit`: X-Road's per-caller rate limits and its
  JSON-lines audit log (``event``, ``user``, ``ipaddress``, ``auth``, ``url``, ``data``; refusals as
  ``<event> failed``).

Example: an application declares its roles, its audit events and a ``Call`` that reads its resources, then
one operation, and mounts the API (the app holds its ``AUDIT_KEY``, ``API_KEYS_KEY`` and ``LIMITER_KEY``)::

    >>> from enum import StrEnum
    >>> from aiohttp import web
    >>> from pydantic import BaseModel
    >>> class Event(StrEnum):
    ...     API_KEY_AUTHENTICATION = "API key authentication"
    ...     ADD_CLIENT = "Add client"
    >>> class ClientIn(BaseModel):
    ...     client_id: str
    >>> class ClientOut(BaseModel):
    ...     client_id: str
    >>> class NodeCall(Call):
    ...     pass  # properties reading the app's resources: ``self.request.app[STORE_KEY]``, ...
    >>> API = AdminApi(NodeCall, title="Node admin API", version="1.0.0", roles=SECURITY_SERVER_ROLES,
    ...                authentication_event=Event.API_KEY_AUTHENTICATION)
    >>> @API.operation("POST", "/clients", "Add a client", tag="clients",
    ...                roles=frozenset({Role.XROAD_REGISTRATION_OFFICER}), event=Event.ADD_CLIENT,
    ...                body=ClientIn, response=ClientOut, status=201)
    ... async def add_client(call: NodeCall) -> Reply[ClientOut]:
    ...     body = call.typed_body(ClientIn)
    ...     return Reply(ClientOut(client_id=body.client_id), audit={"client_id": body.client_id})
    >>> sorted(API.document()["paths"])
    ['/api/v1/clients']
    >>> app = web.Application()
    >>> API.mount(app, max_body_bytes=50 * 1024)
"""

from __future__ import annotations

from xroad_mn.admin.api import (
    API_KEYS_KEY,
    API_PREFIX,
    AUDIT_KEY,
    AUTH_SCHEME,
    LIMITER_KEY,
    MAX_AUDITED_PATH_CHARS,
    AdminApi,
    Call,
    FileBody,
    Handler,
    Reply,
)
from xroad_mn.admin.apikeys import (
    CENTRAL_SERVER_ROLES,
    MESSAGELOG_ROLES,
    SECURITY_SERVER_ADMIN_ROLES,
    SECURITY_SERVER_ROLES,
    ApiKey,
    ApiKeyRing,
    CreatedApiKey,
    Role,
    create_api_key,
    revoke_api_key,
)
from xroad_mn.admin.audit import AuditData, AuditLog, AuditOrigin, failed_event
from xroad_mn.admin.openapi import ApiSpec, Method, Operation, QueryParam
from xroad_mn.admin.ratelimit import RateLimiter

__all__ = [
    "API_KEYS_KEY",
    "API_PREFIX",
    "AUDIT_KEY",
    "AUTH_SCHEME",
    "CENTRAL_SERVER_ROLES",
    "LIMITER_KEY",
    "MAX_AUDITED_PATH_CHARS",
    "MESSAGELOG_ROLES",
    "SECURITY_SERVER_ADMIN_ROLES",
    "SECURITY_SERVER_ROLES",
    "AdminApi",
    "ApiKey",
    "ApiKeyRing",
    "ApiSpec",
    "AuditData",
    "AuditLog",
    "AuditOrigin",
    "Call",
    "CreatedApiKey",
    "FileBody",
    "Handler",
    "Method",
    "Operation",
    "QueryParam",
    "RateLimiter",
    "Reply",
    "Role",
    "create_api_key",
    "failed_event",
    "revoke_api_key",
]
