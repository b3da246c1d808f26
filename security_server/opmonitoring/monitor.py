"""The node's operational monitoring: a buffer the proxies append to, written to the database by a task.

The proxies never wait for operational data: :meth:`OpMonitor.record` appends to an in-memory buffer (at
most ``opmon_buffer_size`` records; beyond it the oldest are dropped and counted, as X-Road's buffer does)
and returns. One task per process writes the buffer every ``opmon_sending_interval_seconds`` in one
transaction (:meth:`OpMonitoringStore.write`), stamping ``monitoringDataTs``; the node's time-stamping
process also deletes records older than ``opmon_keep_records_for_days`` once an hour. Example::

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
        """Records dropped because the buffer was full."""
        self.started_at = clock()
        """When monitoring started in this process (``monitoringStartupTimestamp``)."""

    def record(self, record: OpRecord) -> None:
        """Queue ``record`` for the writer; never blocks, never raises."""
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(bounded(record))

    def now_ms(self) -> int:
        return int(self._clock().timestamp() * 1000)

    async def flush(self) -> int:
        """Write what is buffered now; how many records were written. A failed write keeps nothing (the
        records are dropped and the failure logged: operational data must never stop the exchange)."""
        async with self._lock:
            written = 0
            while self._buffer:
                batch = [self._buffer.popleft() for _ in range(min(MAX_BATCH, len(self._buffer)))]
                try:
                    await self.store.write(batch, monitoring_ts=int(self._clock().timestamp()))
                except XRoadError as e:
                    self.dropped += len(batch)
                    log.warning("opmon_write_failed", code=e.code, error=e.message, records=len(batch))
                    return written
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
