"""The node's operational monitoring: a buffer the proxies append to, written to the database by a task.

The proxies never wait for operational data: :meth:`OpMonitor.record` appends to an in-memory buffer (at
most ``opmon_buffer_size`` records; beyond it the oldest are dropped and counted, as X-Road's buffer does)
and returns. One task per process writes the buffer every ``opmon_sending_interval_seconds`` in one
transaction (:meth:`OpMonitoringStore.write`), stamping ``monitoringDataTs``; the node's time-stamping
process also deletes records older than ``opmon_keep_records_for_days`` once an hour. The drops go into
the node's count in the database with the next write, so that ``/metrics`` reports those of every process.
Example::

    >>> monitor = OpMonitor(OpMonitoringStore(engine), settings)  # doctest: +SKIP
    >>> async with monitor.running(retention=True):  # doctest: +SKIP
    ...     monitor.record(op_record)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Final

import structlog

from security_server.opmonitoring.store import OpMonitoringStore
from security_server.settings import NodeSettings
from xroad_mn.errors import XRoadError
from xroad_mn.wire.opmonitoring import OpRecord, bounded

__all__ = ["OpMonitor"]

log = structlog.get_logger(__name__)

RETENTION_INTERVAL_SECONDS: Final = 3600.0
MAX_BATCH: Final = 5000
"""Most records one transaction writes."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OpMonitor:
    """The buffer and writer of one process's operational data."""

    def __init__(
        self,
        store: OpMonitoringStore,
        settings: NodeSettings,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        self._buffer: deque[OpRecord] = deque(maxlen=settings.opmon_buffer_size)
        self._lock = asyncio.Lock()
        self.dropped = 0
        """Records this process dropped: the buffer was full, or their write failed."""
        self._unreported = 0
        """Of :attr:`dropped`, those not yet added to the database's count."""
        self.started_at = clock()
        """When monitoring started in this process (``monitoringStartupTimestamp``)."""

    def record(self, record: OpRecord) -> None:
        """Queue ``record`` for the writer; never blocks, never raises."""
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
            self._unreported += 1
        self._buffer.append(bounded(record))

    def now_ms(self) -> int:
        return int(self._clock().timestamp() * 1000)

    @property
    def unreported_drops(self) -> int:
        """Records dropped in this process and not yet in the database's count."""
        return self._unreported

    async def flush(self) -> int:
        """Write what is buffered now, with the count of records dropped since the last write; how many
        records were written. A failed write keeps nothing (the records are dropped, counted and the
        failure logged: operational data must never stop the exchange)."""
        async with self._lock:
            written = 0
            while self._buffer or self._unreported:
                batch = [self._buffer.popleft() for _ in range(min(MAX_BATCH, len(self._buffer)))]
                dropped = self._unreported
                try:
                    await self.store.write(
                        batch, monitoring_ts=int(self._clock().timestamp()), dropped=dropped
                    )
                except XRoadError as e:
                    self.dropped += len(batch)
                    self._unreported += len(batch)
                    log.warning("opmon_write_failed", code=e.code, error=e.message, records=len(batch))
                    return written
                self._unreported -= dropped
                written += len(batch)
            return written

    async def purge(self) -> int:
        """Delete records older than the retention period."""
        keep = self.settings.opmon_keep_records_for_days * 86400
        return await self.store.delete_older_than(int(self._clock().timestamp()) - keep)

    async def _writer(self) -> None:
        while True:
            await asyncio.sleep(self.settings.opmon_sending_interval_seconds)
            await self.flush()

    async def _retention(self) -> None:
        while True:
            try:
                deleted = await self.purge()
                if deleted:
                    log.info("opmon_records_deleted", count=deleted)
            except XRoadError as e:
                log.warning("opmon_purge_failed", code=e.code, error=e.message)
            await asyncio.sleep(RETENTION_INTERVAL_SECONDS)

    @asynccontextmanager
    async def running(self, *, retention: bool) -> AsyncIterator[OpMonitor]:
        """Run the writer (and, with ``retention``, the purge) in the block; what is buffered at the end
        is written before it closes."""
        tasks = [asyncio.create_task(self._writer(), name="opmon-writer")]
        if retention:
            tasks.append(asyncio.create_task(self._retention(), name="opmon-retention"))
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.flush()
