"""Fetching the OCSP responses of the node's own certificates, and keeping them fresh in the background.

Each certificate the node holds is asked about at the OCSP responders global configuration lists for the
approved CA that issued it (``approvedCA/topCA|intermediateCA/ocsp/url``), one after the other until one
answers with a response that :func:`xroad_mn.ocsp.verify_ocsp_response` accepts (steps 1-5: CertID,
signature, authorised responder, freshness, nextUpdate). A revoked or unknown status is kept as such: it is
what the node must know, and serve. :class:`OcspRefresher` repeats this every ``ocsp_fetch_interval_seconds``
(X-Road's 1200 s), 60 s after a failure (X-Road's ``ocsp-retry-delay``), as a task owned by an aiohttp
application's ``cleanup_ctx``. Example::

    >>> refresher = OcspRefresher(store, cache, lambda: load_trust_material(globalconf_dir(home)),
    ...                           interval_seconds=settings.ocsp_fetch_interval_seconds)  # doctest: +SKIP
    >>> app.cleanup_ctx.append(refresher.cleanup_ctx)  # doctest: +SKIP
    >>> refresher.wake()  # a certificate was imported: fetch now  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Final

import aiohttp
import structlog
from aiohttp import web
from cryptography import x509

from security_server.db import NodeStore
from security_server.ocsp.cache import OcspState, OwnOcspCache
from xroad_mn.certs import issued_by
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import ApprovedCA, TrustMaterial
from xroad_mn.ocsp import build_ocsp_request, verify_ocsp_response
from xroad_mn.tasks import wait_for_wake
from xroad_mn.transport.ocsp import AiohttpOcspTransport

__all__ = [
    "DEFAULT_OCSP_RETRY_DELAY_SECONDS",
    "OcspRefresher",
    "fetch_own_ocsp",
    "find_issuer",
    "refresh_ocsp",
]

log = structlog.get_logger(__name__)

DEFAULT_OCSP_RETRY_DELAY_SECONDS: Final = 60
"""X-Road's ``ocsp-retry-delay``: the next attempt after a failed refresh."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def find_issuer(cert: x509.Certificate, trust: TrustMaterial) -> tuple[x509.Certificate, ApprovedCA]:
    """The approved CA certificate (top or intermediate) that issued ``cert``, and its ``approvedCA``;
    ``invalid_cert_path`` when no approved CA did."""
    for ca in trust.approved_cas:
        for candidate in ca.ca_certificates:
            if issued_by(cert, candidate):
                return candidate, ca
    raise XRoadError(
        FaultCode.INVALID_CERT_PATH,
        f"certificate {cert.subject.rfc4514_string()} was not issued by a CA that global configuration "
        "approves",
    )


async def fetch_own_ocsp(
    cert: x509.Certificate,
    *,
    trust: TrustMaterial,
    session: aiohttp.ClientSession,
    at: datetime,
) -> bytes:
    """A verified OCSP response for ``cert`` from the responders of its CA (status good, revoked or
    unknown). ``ocsp_failed`` with every responder's failure when none gave one."""
    issuer, ca = find_issuer(cert, trust)
    responders = ca.responders_for(issuer)
    if not responders:
        raise XRoadError(
            FaultCode.OCSP_FAILED,
            f"global configuration lists no OCSP responder for CA {issuer.subject.rfc4514_string()}",
        )
    request = build_ocsp_request(cert, issuer)
    failures: list[str] = []
    for responder in responders:
        try:
            response = await AiohttpOcspTransport(responder.url, session).send(request)
            try:
                verify_ocsp_response(
                    response,
                    cert=cert,
                    issuer=issuer,
                    trust=trust,
                    at=at,
                    freshness_seconds=trust.ocsp_freshness_seconds,
                )
            except XRoadError as e:
                # Step 6 (status not GOOD) is the only check that raises cert_validation: the response
                # itself is sound and says the certificate is revoked or unknown. Keep it.
                if not e.has_code(FaultCode.CERT_VALIDATION):
                    raise
            return response
        except XRoadError as e:
            failures.append(f"{responder.url}: {e.message}")
    raise XRoadError(FaultCode.OCSP_FAILED, "no OCSP response: " + "; ".join(failures))


async def refresh_ocsp(
    store: NodeStore,
    cache: OwnOcspCache,
    trust: TrustMaterial,
    session: aiohttp.ClientSession,
    *,
    at: datetime | None = None,
) -> tuple[OcspState, ...]:
    """Fetch a response for every certificate the node holds and put it in ``cache`` (a failure is noted
    per certificate, keeping the response held so far). Returns every certificate's state."""
    when = at or _utc_now()
    certs = [c.certificate for c in await store.list_certificates()]
    cache.track(certs)
    states: list[OcspState] = []
    for cert in certs:
        try:
            response = await fetch_own_ocsp(cert, trust=trust, session=session, at=when)
        except XRoadError as e:
            log.warning("ocsp_fetch_failed", subject=cert.subject.rfc4514_string(), error=e.message)
            states.append(await asyncio.to_thread(cache.fail, cert, e.message))
            continue
        states.append(await asyncio.to_thread(cache.put, cert, response, fetched_at=when))
    return tuple(states)


class OcspRefresher:
    """Keeps the node's OCSP responses fresh: one refresh at start, then every ``interval_seconds``, or
    ``retry_delay_seconds`` after a refresh in which any certificate failed; :meth:`wake` refreshes now."""

    def __init__(
        self,
        store: NodeStore,
        cache: OwnOcspCache,
        load_trust: Callable[[], TrustMaterial],
        *,
        interval_seconds: float,
        retry_delay_seconds: float = DEFAULT_OCSP_RETRY_DELAY_SECONDS,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.store = store
        self.cache = cache
        self._load_trust = load_trust
        self.interval_seconds = interval_seconds
        self.retry_delay_seconds = retry_delay_seconds
        self._clock = clock
        self._wake = asyncio.Event()
        self.refreshes = 0
        """Completed refresh rounds (tests and status wait on it)."""
        self.listeners: list[Callable[[], None]] = []
        """Called after every round (the signer drops the signing keys it resolved with older responses)."""
        self._round_done = asyncio.Condition()

    def wake(self) -> None:
        """Refresh now (e.g. a certificate was imported or revoked)."""
        self._wake.set()

    async def refresh_once(self, session: aiohttp.ClientSession) -> bool:
        """One round; True when every certificate got a response."""
        try:
            trust = await asyncio.to_thread(self._load_trust)
            states = await refresh_ocsp(self.store, self.cache, trust, session, at=self._clock())
        except XRoadError as e:
            log.warning("ocsp_refresh_failed", code=e.code, error=e.message)
            return False
        return all(s.error is None for s in states)

    async def wait_for_round(self, after: int) -> int:
        """Wait until more than ``after`` rounds completed; return the count."""
        async with self._round_done:
            await self._round_done.wait_for(lambda: self.refreshes > after)
            return self.refreshes

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Refresh forever (until cancelled)."""
        while True:
            self._wake.clear()
            ok = await self.refresh_once(session)
            for listener in self.listeners:
                listener()
            async with self._round_done:
                self.refreshes += 1
                self._round_done.notify_all()
            delay = self.interval_seconds if ok else self.retry_delay_seconds
            await wait_for_wake(self._wake, delay)

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: the held responses from disk at once, then the refresh task, stopped
        (and its HTTP session closed) with the application."""
        certs = [c.certificate for c in await self.store.list_certificates()]
        await asyncio.to_thread(self.cache.load, certs)
        async with aiohttp.ClientSession() as session:
            task = asyncio.create_task(self.run(session), name="ocsp-refresh")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
