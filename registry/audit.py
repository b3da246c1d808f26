"""The registry's audit log: one JSON object a line for every change and every refused attempt.

As X-Road's audit log: ``event`` names what was done (``Add member``); a refused or failed attempt is the
same event with `` failed`` appended and the reason in ``data``; ``user`` is the API key id (or the
operating-system user for the CLI); ``time`` is ISO-8601 UTC.

Example::

    >>> line = audit_line("Add member", "3f9a01c2", {"memberId": "MN:GOV:5012345"},
    ...                   at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> line
    b'{"event": "Add member", "user": "3f9a01c2", "time": "2026-01-01T00:00:00+00:00", "data": {"memberId": "MN:GOV:5012345"}}\\n'
    >>> log = AuditLog(Path("audit.log"))  # doctest: +SKIP
    >>> await log.record("Add member", "3f9a01c2", {"memberId": "MN:GOV:5012345"})  # doctest: +SKIP
"""  # noqa: E501

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from xroad_mn.errors import FaultCode, XRoadError

__all__ = ["FAILED_SUFFIX", "AuditLog", "audit_line", "failed_event"]

FAILED_SUFFIX: Final = " failed"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def failed_event(event: str) -> str:
    """The name X-Road logs for a refused or failed ``event``."""
    return event + FAILED_SUFFIX


def audit_line(event: str, user: str | None, data: Mapping[str, Any], *, at: datetime) -> bytes:
    """One audit record, newline-terminated (non-JSON values are written as strings)."""
    record = {"event": event, "user": user, "time": at.astimezone(UTC).isoformat(), "data": dict(data)}
    return (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")


class AuditLog:
    """Appends audit records to a file; writes are serialised and done off the event loop."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.path = path
        self._clock = clock
        self._lock = asyncio.Lock()

    def _append(self, line: bytes) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as f:
                f.write(line)
        except OSError as e:
            raise XRoadError(
                FaultCode.IO_ERROR, f"cannot write the audit log {self.path}: {e.strerror}"
            ) from e

    def append_sync(self, event: str, user: str | None, data: Mapping[str, Any]) -> None:
        """Write one record now (for the CLI, which has no event loop of its own between commands)."""
        self._append(audit_line(event, user, data, at=self._clock()))

    async def record(self, event: str, user: str | None, data: Mapping[str, Any]) -> None:
        """Write one record."""
        line = audit_line(event, user, data, at=self._clock())
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    async def record_failure(
        self, event: str, user: str | None, data: Mapping[str, Any], error: XRoadError
    ) -> None:
        """Write the ``<event> failed`` record of a refused attempt, with the fault code and reason."""
        await self.record(
            failed_event(event), user, {**data, "reason": {"code": error.code, "message": error.message}}
        )
