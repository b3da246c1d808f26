"""The message log writer: every logged message committed before the exchange answers, many per commit.

:meth:`MessageLog.log` queues a record and returns its id once the record is durable. One writer task
drains the queue: the records that arrived while the previous commit was running go into the next
transaction together (group commit), so a busy node commits a few times per millisecond-scale round instead
of once per message. :meth:`MessageLog.log_failure` notes the outcome of an exchange that failed after its
request was logged, in the same group commits. A failed transaction fails every waiter of its group with
``logging_failed`` and writes none of its records; the next group is tried afresh. While the timestamper
has failed for longer than the acceptable period, new records are refused with ``timestamper_failed``
(X-Road's message log does the same, and the node stops serving rather than keep unstamped evidence).

Example (the node's ``cleanup_ctx`` owns the writer task)::

    >>> message_log = MessageLog(MessageLogStore(engine), timestamper=timestamper)  # doctest: +SKIP
    >>> async with message_log.running():  # doctest: +SKIP
    ...     record_id = await message_log.log(record)  # committed when this returns
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

import structlog

from security_server.messagelog.bodylog import BodyLoggingPolicy
from security_server.messagelog.records import ExchangeFailure, LogRecord
from security_server.messagelog.store import MessageLogStore
from xroad_mn.errors import FaultCode, XRoadError

__all__ = ["MAX_GROUP_RECORDS", "MessageLog", "TimestamperHealth"]

log = structlog.get_logger(__name__)

MAX_GROUP_RECORDS: Final = 1000
"""Most records one transaction writes; a longer queue is written in several consecutive groups."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TimestamperHealth(Protocol):
    """What the writer asks the timestamper before it takes a record."""

    def check_accepting(self) -> None:
        """Raise ``timestamper_failed`` when time-stamping has failed for longer than allowed."""


@dataclass
class _Pending:
    record: LogRecord | ExchangeFailure
    """A record to write, or the outcome of a failed exchange (written in the same group commit)."""
    done: asyncio.Future[int] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class MessageLog:
    """The group-commit writer of the message log; run it with :meth:`running` (or :meth:`cleanup_ctx`).

    ``body_logging`` is the node's body-logging policy, for the proxies to apply with
    :func:`~security_server.messagelog.bodylog.loggable_record` before :meth:`log`.
    """

    def __init__(
        self,
        store: MessageLogStore,
        *,
        timestamper: TimestamperHealth | None = None,
        body_logging: BodyLoggingPolicy | None = None,
        clock: Callable[[], datetime] = _utc_now,
        max_group: int = MAX_GROUP_RECORDS,
    ) -> None:
        self.store = store
        self.timestamper = timestamper
        self.body_logging = body_logging or BodyLoggingPolicy()
        self._clock = clock
        self._max_group = max_group
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._accepting = False
        self.commits = 0
        """Transactions committed so far (one per group)."""

    def check_accepting(self) -> None:
        """Raise what :meth:`log` would refuse a record with now: ``timestamper_failed`` when
        time-stamping has failed too long, ``logging_failed`` when the log is not running."""
        if self.timestamper is not None:
            self.timestamper.check_accepting()
        if not self._accepting or self._task is None or self._task.done():
            raise XRoadError(FaultCode.LOGGING_FAILED, "the message log is not running")

    async def log(self, record: LogRecord) -> int:
        """Write ``record``; return its id once committed. ``timestamper_failed`` when time-stamping has
        failed too long, ``logging_failed`` when the database fails or the log is not running."""
        self.check_accepting()
        pending = _Pending(record)
        self._queue.put_nowait(pending)
        return await asyncio.shield(pending.done)

    async def log_failure(self, failure: ExchangeFailure) -> None:
        """Write the outcome of an exchange that failed after its request was logged, with the next group
        (no commit of its own). ``logging_failed`` when the database fails or the log is not running."""
        if not self._accepting or self._task is None or self._task.done():
            raise XRoadError(FaultCode.LOGGING_FAILED, "the message log is not running")
        pending = _Pending(failure)
        self._queue.put_nowait(pending)
        await asyncio.shield(pending.done)

    def _take_group(self, first: _Pending) -> tuple[list[_Pending], bool]:
        """``first`` and what else is queued (at most ``max_group``); True when the stop mark was reached."""
        group = [first]
        while len(group) < self._max_group:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            if item is None:
                return group, True
            group.append(item)
        return group, False

    async def _write(self, group: list[_Pending]) -> None:
        records = [(p, p.record) for p in group if isinstance(p.record, LogRecord)]
        failures = [(p, p.record) for p in group if isinstance(p.record, ExchangeFailure)]
        try:
            ids = await self.store.insert_records(
                [r for _, r in records], at=self._clock(), failures=[f for _, f in failures]
            )
        except XRoadError as e:
            log.error(  # noqa: TRY400 - the code and message say it; no trace
                "message_log_write_failed", records=len(group), code=e.code, error=e.message
            )
            for p in group:
                if not p.done.done():
                    p.done.set_exception(XRoadError(FaultCode.LOGGING_FAILED, e.message))
            return
        self.commits += 1
        results = [*ids, *(f.request_record_id for _, f in failures)]
        for p, record_id in zip([p for p, _ in records] + [p for p, _ in failures], results, strict=True):
            if not p.done.done():
                p.done.set_result(record_id)

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            group, stop = self._take_group(first)
            try:
                await self._write(group)
            except BaseException as e:
                # Cancelled (or a bug) while the group was being written: whether its transaction committed
                # is unknown, so its waiters fail rather than wait forever.
                for p in group:
                    if not p.done.done():
                        p.done.set_exception(
                            XRoadError(FaultCode.LOGGING_FAILED, f"message log writer stopped: {e!r}")
                        )
                raise
            if stop:
                return

    @asynccontextmanager
    async def running(self) -> AsyncIterator[MessageLog]:
        """Run the writer task in the block. At the end new records are refused, those queued are written
        and the task ends."""
        self._accepting = True
        self._task = asyncio.create_task(self._run(), name="message-log-writer")
        try:
            yield self
        finally:
            self._accepting = False
            self._queue.put_nowait(None)
            task = self._task
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                raise
            finally:
                self._task = None
