"""The timestamper: RFC 3161 time-stamps for the message log, in batches, from the approved TSAs in turn.

Every ``timeStampingIntervalSeconds`` of global configuration (60 s when it says nothing) and whenever
woken, :class:`Timestamper` takes up to ``timestamp_records_limit`` records that wait, oldest first, and asks
the approved TSAs of the node's own instance, in the order global configuration lists them, until one
answers with a token that verifies against its approved certificate
(:func:`xroad_mn.timestamp.request_timestamp`):

- one record: a single time-stamp over the decoded ``ds:SignatureValue``; the token goes into the record's
  signature (``xades:SignatureTimeStamp``) and into a time-stamp record;
- several: a batch time-stamp over ``ts-hashchainresult.xml`` of a hash tree over their signatures
  (:func:`xroad_mn.asic.build_timestamp_hash_chains`); the token and the result in a time-stamp record,
  each message record its own ``ts-hashchain.xml``.

After a failed round the next comes ``timestamp_retry_delay_seconds`` later. When time-stamping has kept
failing for longer than ``acceptable_timestamp_failure_period_seconds``, :meth:`Timestamper.check_accepting`
(asked by the message log before every record) raises ``timestamper_failed`` until a round succeeds.
Timestamping runs once per node (one task, as X-Road's), never once per worker.

Example::

    >>> timestamper = Timestamper(store, load_trust, session, settings=settings)  # doctest: +SKIP
    >>> app.cleanup_ctx.append(timestamper.cleanup_ctx)  # doctest: +SKIP
    >>> await timestamper.timestamp_now()  # stamp what waits, now (tests, /asic?force)  # doctest: +SKIP
    3
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import aiohttp
import structlog
from aiohttp import web

from security_server.messagelog.store import MessageLogStore, WaitingRecord
from security_server.settings import (
    DEFAULT_ACCEPTABLE_TIMESTAMP_FAILURE_PERIOD_SECONDS,
    DEFAULT_TIMESTAMP_RECORDS_LIMIT,
    DEFAULT_TIMESTAMP_RETRY_DELAY_SECONDS,
    NodeSettings,
)
from xroad_mn.asic import build_timestamp_hash_chains
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import ApprovedTSA, TrustMaterial
from xroad_mn.signature import embed_timestamp, timestamp_input
from xroad_mn.tasks import wait_for_wake
from xroad_mn.timestamp import DEFAULT_TSA_TIMEOUT_SECONDS, request_timestamp, timestamp_token_gen_time
from xroad_mn.transport.timestamp import AiohttpTimestampTransport

__all__ = ["DEFAULT_TIME_STAMPING_INTERVAL_SECONDS", "Timestamper", "own_tsas"]

log = structlog.get_logger(__name__)

DEFAULT_TIME_STAMPING_INTERVAL_SECONDS: Final = 60
"""X-Road's ``timeStampingIntervalSeconds`` when global configuration does not give one."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def own_tsas(trust: TrustMaterial) -> tuple[ApprovedTSA, ...]:
    """The approved TSAs of the node's own instance, in global configuration's order (federated
    instances' TSAs are trusted for verification, never asked)."""
    return tuple(t for t in trust.approved_tsas if t.instance in ("", trust.instance))


class Timestamper:
    """Time-stamps the message log's waiting records in the background (see the module docstring)."""

    def __init__(
        self,
        store: MessageLogStore,
        load_trust: Callable[[], TrustMaterial],
        session: aiohttp.ClientSession,
        *,
        records_limit: int = DEFAULT_TIMESTAMP_RECORDS_LIMIT,
        retry_delay_seconds: float = DEFAULT_TIMESTAMP_RETRY_DELAY_SECONDS,
        acceptable_failure_period_seconds: float = DEFAULT_ACCEPTABLE_TIMESTAMP_FAILURE_PERIOD_SECONDS,
        tsa_timeout_seconds: float = DEFAULT_TSA_TIMEOUT_SECONDS,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.store = store
        self._load_trust = load_trust
        self._session = session
        self.records_limit = records_limit
        self.retry_delay_seconds = retry_delay_seconds
        self.acceptable_failure_period = timedelta(seconds=acceptable_failure_period_seconds)
        self._tsa_timeout = tsa_timeout_seconds
        self._clock = clock
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.last_success: datetime | None = None
        """When a round last succeeded."""
        self.failing_since: datetime | None = None
        """When the current run of failed rounds began (None while time-stamping works)."""
        self.last_error: XRoadError | None = None
        self.rounds = 0
        """Rounds of the background task completed so far (tests and status wait on it)."""
        self._round_done = asyncio.Condition()

    @classmethod
    def from_settings(
        cls,
        settings: NodeSettings,
        store: MessageLogStore,
        load_trust: Callable[[], TrustMaterial],
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> Timestamper:
        return cls(
            store,
            load_trust,
            session,
            records_limit=settings.timestamp_records_limit,
            retry_delay_seconds=settings.timestamp_retry_delay_seconds,
            acceptable_failure_period_seconds=settings.acceptable_timestamp_failure_period_seconds,
            clock=clock,
        )

    def wake(self) -> None:
        """Run a round now (records are waiting that should not wait for the interval)."""
        self._wake.set()

    def check_accepting(self) -> None:
        """``timestamper_failed`` when time-stamping has failed for longer than the acceptable period."""
        if self.failing_since is None or self.acceptable_failure_period <= timedelta(0):
            return
        failing_for = self._clock() - self.failing_since
        if failing_for > self.acceptable_failure_period:
            reason = self.last_error.message if self.last_error is not None else "unknown"
            raise XRoadError(
                FaultCode.TIMESTAMPER_FAILED,
                f"time-stamping has failed for {int(failing_for.total_seconds())} s, more than the "
                f"acceptable {int(self.acceptable_failure_period.total_seconds())} s: {reason}",
            )

    async def timestamp_now(self) -> int:
        """One round now: stamp up to ``records_limit`` waiting records; return how many were stamped.
        A failure is recorded (see :meth:`check_accepting`) and raised (``timestamper_failed``)."""
        async with self._lock:
            try:
                stamped = await self._round()
            except XRoadError as e:
                if self.failing_since is None:
                    self.failing_since = self._clock()
                self.last_error = e
                log.warning("timestamping_failed", code=e.code, error=e.message)
                if e.has_code(FaultCode.TIMESTAMPER_FAILED):
                    raise
                raise XRoadError(FaultCode.TIMESTAMPER_FAILED, e.message) from e
            self.last_success = self._clock()
            self.failing_since = None
            self.last_error = None
            return stamped

    async def _round(self) -> int:
        waiting = await self.store.unstamped(self.records_limit)
        if not waiting:
            return 0
        trust = await asyncio.to_thread(self._load_trust)
        transports = [
            AiohttpTimestampTransport(t.url, self._session, timeout=self._tsa_timeout)
            for t in own_tsas(trust)
        ]
        if len(waiting) == 1:
            await self._single(waiting[0], transports, trust)
        else:
            await self._batch(waiting, transports, trust)
        log.info("records_timestamped", records=len(waiting))
        return len(waiting)

    async def _single(
        self, record: WaitingRecord, transports: Sequence[AiohttpTimestampTransport], trust: TrustMaterial
    ) -> None:
        data = timestamp_input(record.signature_xml)
        token = await request_timestamp(data, transports, trust.tsa_certificates)
        signature_xml = embed_timestamp(record.signature_xml, token)
        await self.store.save_single_timestamp(
            record.id, token=token, gen_time=timestamp_token_gen_time(token), signature_xml=signature_xml
        )

    async def _batch(
        self,
        records: Sequence[WaitingRecord],
        transports: Sequence[AiohttpTimestampTransport],
        trust: TrustMaterial,
    ) -> None:
        chains = await asyncio.to_thread(build_timestamp_hash_chains, [r.signature_xml for r in records])
        token = await request_timestamp(chains.result_xml, transports, trust.tsa_certificates)
        await self.store.save_batch_timestamp(
            [r.id for r in records],
            token=token,
            gen_time=timestamp_token_gen_time(token),
            hash_chain_result=chains.result_xml,
            hash_chains=chains.chains,
        )

    def _interval(self) -> float:
        try:
            interval = self._load_trust().time_stamping_interval_seconds
        except XRoadError:
            interval = None
        return float(interval or DEFAULT_TIME_STAMPING_INTERVAL_SECONDS)

    async def wait_for_round(self, after: int) -> int:
        """Wait until the background task completed more than ``after`` rounds; return the count."""
        async with self._round_done:
            await self._round_done.wait_for(lambda: self.rounds > after)
            return self.rounds

    async def run(self) -> None:
        """Stamp forever (until cancelled): every interval, sooner after a wake, a retry delay after a
        failure."""
        while True:
            self._wake.clear()
            try:
                stamped = await self.timestamp_now()
            except XRoadError:
                delay = self.retry_delay_seconds
            else:
                delay = 0.0 if stamped >= self.records_limit else await asyncio.to_thread(self._interval)
            async with self._round_done:
                self.rounds += 1
                self._round_done.notify_all()
            if delay > 0:
                await wait_for_wake(self._wake, delay)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Timestamper]:
        """Run :meth:`run` as a task in the block."""
        task = asyncio.create_task(self.run(), name="timestamper")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: the timestamping task, stopped with the application."""
        async with self.running():
            yield
