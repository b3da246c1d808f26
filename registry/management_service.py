"""The registry's management service over HTTP: ``authCertReg`` and the other management requests.

Routes (X-Road's central server: the public registration service and the internal management service):

* ``POST /managementservice`` (also with a trailing ``/``) — the **public** management service, served on
  the public socket (``add_management_routes(app, internal=False)``) and on the admin socket. It takes
  ``authCertReg``, sent directly by a security server that is not yet registered (proof of possession of
  the authentication key plus the owner's signature), **and every request type that carries a member's
  signature** (:func:`xroad_mn.management.required_signer` is not ``None``): ``clientReg``,
  ``clientDisable``, ``clientEnable``, ``clientRename``, ``ownerChange``, ``addressChange``,
  ``maintenanceModeEnable`` and ``maintenanceModeDisable``, each verified exactly as the internal endpoint
  verifies it (signature over the SOAP part, signing certificate chained to an approved CA, fresh OCSP,
  the certificate naming the member that must sign). The unsigned ``clientDeletion`` and
  ``authCertDeletion`` are refused here (``invalid_request``).

  This is an **interim path**. In X-Road every type but ``authCertReg`` travels as an X-Road message
  through the owner's security server to the management-services security server, which checks the
  message signature and forwards it to the central server's internal endpoint. Until node-to-node
  messaging exists, a node sends its signed requests straight to this public endpoint; the member
  signature each carries is what authenticates it, as it does in X-Road once the message arrives.
* ``POST /managementservice/manage`` (also ``/manage/``) — every request type. Served **only on the
  internal (admin) socket** (``internal=True``), loopback by default like X-Road's port 4002, and never on
  the public socket, which answers 404 there. It needs no API key, but it must stay unreachable from
  outside: ``clientDeletion`` and ``authCertDeletion`` carry no signature of their own. In X-Road they are
  authenticated by the X-Road message signature that the management-services security server checks
  before forwarding them to the central server's internal endpoint; here they are accepted unsigned only
  because this channel is internal. Our security server will take the management-services role later.

Each request is parsed and verified with :mod:`xroad_mn.management` against the registry's own trust
(:func:`registry.trust.registry_trust`) at the time ``CLOCK_KEY`` gives, checked against the registry's
data and recorded through :mod:`registry.requests` (auto-approved when its type is in
:data:`AUTO_APPROVE_KEY`). The answer is the registry's SOAP response carrying the new ``requestId``
(HTTP 200), or a SOAP fault with the X-Road fault code (HTTP 500, as X-Road's
``ManagementRequestSoapExecutor`` answers; an unexpected failure is ``server.internal_error``, never a
REST error). A refused request changes nothing. After an approval the change event (``CHANGED_KEY``) is
set so the next configuration is generated at once.

Flooding bounds: each remote address is rate limited (:data:`MANAGEMENT_LIMITER_KEY`, HTTP 429 with a
``rate_limit_exceeded`` fault); parsing and signature verification are CPU work and run in a worker
thread, at most :data:`MAX_CONCURRENT_VERIFICATIONS` at once (:data:`VERIFY_SLOTS_KEY`); a request that
duplicates one still waiting for approval is a ``conflict`` (:mod:`registry.requests`).

When the app holds the audit log (:data:`xroad_mn.admin.AUDIT_KEY`), every recorded request is audited as
``Submit management request`` and an automatic approval as ``Approve management request``, with the
sender (the client in the request's SOAP header) as ``user``; a verified request refused by the registry's
rules is audited as ``Submit management request failed``. Requests refused before their signatures verify
are only logged, not audited: their sender is unproven and the service is public.

Example::

    >>> from aiohttp import web
    >>> from registry.context import CHANGED_KEY, CLOCK_KEY, STORE_KEY
    >>> from xroad_mn.management import ManagementRequestType
    >>> public = web.Application()
    >>> public[STORE_KEY] = store  # doctest: +SKIP
    >>> add_management_routes(public, internal=False, auto_approve={ManagementRequestType.CLIENT_REG})
    >>> sorted(r.resource.canonical for r in public.router.routes())
    ['/managementservice', '/managementservice/']
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Final

import structlog
from aiohttp import web

from registry.audit import AuditEvent
from registry.context import CHANGED_KEY, CLOCK_KEY, STORE_KEY
from registry.db import ManagementRequestRecord, RequestState
from registry.requests import AUTO_APPROVE_USER, submit_request
from registry.settings import DEFAULT_MANAGEMENT_RATE_PER_MINUTE, DEFAULT_MANAGEMENT_RATE_PER_SECOND
from registry.trust import registry_trust
from xroad_mn.admin import AUDIT_KEY, RateLimiter
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import format_colon_id
from xroad_mn.management import (
    MAX_MANAGEMENT_REQUEST_BYTES,
    ManagementRequestType,
    build_management_response,
    parse_management_request,
    required_signer,
    verify_parsed_management_request,
)
from xroad_mn.transport.server import read_body
from xroad_mn.wire.faults import render_soap_fault

__all__ = [
    "AUTO_APPROVE_KEY",
    "MANAGEMENT_LIMITER_KEY",
    "MANAGE_PATH",
    "MAX_CONCURRENT_VERIFICATIONS",
    "REGISTRATION_PATH",
    "SOAP_CONTENT_TYPE",
    "VERIFY_SLOTS_KEY",
    "add_management_routes",
    "handle_management_request",
]

log = structlog.get_logger(__name__)

REGISTRATION_PATH: Final = "/managementservice"
MANAGE_PATH: Final = "/managementservice/manage"
SOAP_CONTENT_TYPE: Final = "text/xml"
FAULT_HTTP_STATUS: Final = 500
"""X-Road answers a refused management request with HTTP 500 and a SOAP fault."""
RATE_LIMITED_HTTP_STATUS: Final = 429

AUTO_APPROVE_KEY: Final = web.AppKey[frozenset[ManagementRequestType]]("registry_auto_approve")
"""Request types approved as soon as they are submitted (:class:`ManagementRequestType` values)."""

MANAGEMENT_LIMITER_KEY: Final = web.AppKey("registry_management_limiter", RateLimiter)
"""Requests per remote address to the management service (shared by the public and admin apps)."""
VERIFY_SLOTS_KEY: Final = web.AppKey("registry_management_verify_slots", asyncio.Semaphore)
"""Bounds the parse-and-verify threads running at once."""
MAX_CONCURRENT_VERIFICATIONS: Final = 4

_NO_CACHE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache", "Expires": "0"}


def _now() -> datetime:
    return datetime.now(UTC)


def _soap_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(
        body=body, status=status, content_type=SOAP_CONTENT_TYPE, charset="utf-8", headers=_NO_CACHE
    )


async def handle_management_request(
    app: web.Application, body: bytes, content_type: str, *, public: bool
) -> bytes:
    """Verify and record one management request; return the registry's SOAP answer (with the new
    ``requestId``) or raise :class:`XRoadError`.

    Steps: 1. parse (structure, safe XML, body schema); 2. on the ``public`` path only requests a member
    signs (``authCertReg`` and the other signed types; never the unsigned deletions); 3. verify
    signatures, certificates and OCSP against the registry's trust at ``CLOCK_KEY``'s time; 4. check it
    against the registry's data and record it (auto-approving when configured); 5. after an approval set
    ``CHANGED_KEY``.
    """
    store = app[STORE_KEY]
    clock: Callable[[], datetime] = app.get(CLOCK_KEY, _now)
    settings = await store.get_settings()
    provider = settings.management_service_provider
    if provider is None:
        raise XRoadError(FaultCode.INTERNAL_ERROR, "the registry's management service provider is not set")
    slots = app.get(VERIFY_SLOTS_KEY)
    if slots is None:
        slots = asyncio.Semaphore(MAX_CONCURRENT_VERIFICATIONS)
    async with slots:  # CPU work (XML, signatures, OCSP) in a thread, a bounded number at once
        # 1. Structure.
        parsed = await asyncio.to_thread(parse_management_request, body, content_type)
        # 2. The public service takes only what a member signs: the unsigned deletions are internal.
        if public and required_signer(parsed.request) is None:
            raise XRoadError(
                FaultCode.INVALID_REQUEST,
                f"{parsed.request.TYPE} carries no member signature: it is taken only by the internal "
                "management service",
            )
        # 3. Signatures, certificates, OCSP, member binding.
        trust = await registry_trust(store)
        verified = await asyncio.to_thread(
            verify_parsed_management_request, parsed, trust=trust, service_provider=provider, at=clock()
        )
    # 4. Business rules, record, auto-approval.
    auto: frozenset[ManagementRequestType] = app.get(AUTO_APPROVE_KEY, frozenset())
    sender = str(verified.header.client)
    audit = app.get(AUDIT_KEY)
    try:
        record = await submit_request(store, verified.request, raw=body, auto_approve=auto, user=sender)
    except XRoadError as e:
        if audit is not None:
            data = {
                "type": str(verified.request.TYPE),
                "security_server_id": format_colon_id(verified.request.server),
            }
            await audit.record_failure(AuditEvent.SUBMIT_MANAGEMENT_REQUEST, sender, data, e)
        raise
    if audit is not None:
        await audit.record(AuditEvent.SUBMIT_MANAGEMENT_REQUEST, sender, _audit_data(record))
        if record.state is RequestState.APPROVED:
            auto_data = {**_audit_data(record), "approved_by": AUTO_APPROVE_USER}
            # The admin API's approval event, with the sender as user and approved_by auto-approve.
            await audit.record(AuditEvent.APPROVE_MANAGEMENT_REQUEST, sender, auto_data)
    # 5. Regenerate global configuration after a change.
    if record.state is RequestState.APPROVED:
        changed = app.get(CHANGED_KEY)
        if changed is not None:
            changed.set()
    return build_management_response(verified.soap, record.id)


def _audit_data(record: ManagementRequestRecord) -> dict[str, object]:
    return {
        "request_id": record.id,
        "type": record.type.value,
        "state": record.state.value,
        "security_server_id": format_colon_id(record.security_server),
        "client_id": format_colon_id(record.client) if record.client is not None else None,
    }


def _check_rate(request: web.Request) -> None:
    """Take a token for the remote address; ``rate_limit_exceeded`` when it has none left."""
    limiter = request.app.get(MANAGEMENT_LIMITER_KEY)
    wait = limiter.check(f"addr:{request.remote}") if limiter is not None else None
    if wait is not None:
        raise XRoadError(
            FaultCode.RATE_LIMIT_EXCEEDED,
            f"too many management requests; retry in {wait:.1f} s",
            details={"retry_after": round(wait, 3)},
            http_status=RATE_LIMITED_HTTP_STATUS,
        )


def _handler(*, public: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            _check_rate(request)
            body = await read_body(request, MAX_MANAGEMENT_REQUEST_BYTES)
            content_type = request.headers.get("Content-Type", "")
            answer = await handle_management_request(request.app, body, content_type, public=public)
            return _soap_response(answer)
        except XRoadError as e:
            log.info("management_request_refused", path=request.path, code=e.code, message=e.message)
            limited = e.code == FaultCode.RATE_LIMIT_EXCEEDED
            status = RATE_LIMITED_HTTP_STATUS if limited else FAULT_HTTP_STATUS
            return _soap_response(render_soap_fault(e), status)
        except Exception:  # the SOAP client gets a SOAP fault, never a REST error or a traceback
            log.exception("management_request_failed", path=request.path)
            err = XRoadError(FaultCode.INTERNAL_ERROR, "internal error").with_prefix("server")
            return _soap_response(render_soap_fault(err), FAULT_HTTP_STATUS)

    return handle


def add_management_routes(
    app: web.Application,
    *,
    internal: bool,
    auto_approve: Iterable[ManagementRequestType | str] | None = None,
    limiter: RateLimiter | None = None,
    verify_slots: asyncio.Semaphore | None = None,
) -> None:
    """Serve the management service from ``app`` (which must hold ``STORE_KEY``; ``CLOCK_KEY`` and
    ``CHANGED_KEY`` are used when present): the public service (``authCertReg`` and every other signed
    type) always, the every-type endpoint
    ``/managementservice/manage/`` only when ``internal`` (an app served on the internal admin socket,
    never the public one). ``auto_approve`` sets :data:`AUTO_APPROVE_KEY` (keep it ``None`` to leave a
    value set elsewhere); ``limiter`` and ``verify_slots`` (default: new ones with
    the settings' default rates and
    :data:`MAX_CONCURRENT_VERIFICATIONS`) may be shared between apps."""
    if auto_approve is not None:
        app[AUTO_APPROVE_KEY] = frozenset(ManagementRequestType(str(t)) for t in auto_approve)
    app[MANAGEMENT_LIMITER_KEY] = limiter or RateLimiter(
        DEFAULT_MANAGEMENT_RATE_PER_SECOND, DEFAULT_MANAGEMENT_RATE_PER_MINUTE
    )
    app[VERIFY_SLOTS_KEY] = verify_slots or asyncio.Semaphore(MAX_CONCURRENT_VERIFICATIONS)
    registration = _handler(public=True)
    for path in (REGISTRATION_PATH, REGISTRATION_PATH + "/"):
        app.router.add_post(path, registration)
    if internal:
        manage = _handler(public=False)
        for path in (MANAGE_PATH, MANAGE_PATH + "/"):
            app.router.add_post(path, manage)
