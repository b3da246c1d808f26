"""An application's audit log: one JSON object a line for every change and every refused attempt.

As X-Road's audit log: ``event`` names what was done (a member of the application's own event enum, e.g.
``Add member``); a refused or failed attempt is the same event with `` failed`` appended and the reason in
``data``; ``user`` is the API key id (or the operating-system user for a CLI); ``ipaddress``, ``auth``
(``ApiKey`` for the admin API) and ``url`` say where a request came from (null outside HTTP); ``time`` is
ISO-8601 UTC.

Example::

    >>> from enum import StrEnum
    >>> class Event(StrEnum):
    ...     ADD_MEMBER = "Add member"
    >>> line = audit_line(Event.ADD_MEMBER, "3f9a01c2", {"memberId": "MN:GOV:5012345"},
    ...                   at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> json.loads(line)["event"], json.loads(line)["data"]
    ('Add member', {'memberId': 'MN:GOV:5012345'})
    >>> origin = AuditOrigin(ipaddress="127.0.0.1", auth=API_KEY_AUTH, url="/api/v1/members")
    >>> json.loads(audit_line(Event.ADD_MEMBER, "3f9a01c2", {}, at=datetime(2026, 1, 1, tzinfo=UTC),
    ...                       failed=True, origin=origin))["event"]
    'Add member failed'
    >>> log = AuditLog(Path("audit.log"))  # doctest: +SKIP
    >>> await log.record(Event.ADD_MEMBER, "3f9a01c2", {"memberId": "MN:GOV:5012345"})  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Final

from xroad_mn.errors import FaultCode, XRoadError

__all__ = [
    "API_KEY_AUTH",
    "FAILED_SUFFIX",
    "AuditData",
    "AuditLog",
    "AuditOrigin",
    "audit_line",
    "failed_event",
]

FAILED_SUFFIX: Final = " failed"
API_KEY_AUTH: Final = "ApiKey"
"""X-Road's ``auth`` value for a call authenticated by an API key."""

AuditData = Mapping[str, object]
"""An audit record's ``data``: JSON values (anything else is written as its ``str``)."""


@dataclass(frozen=True)
class AuditOrigin:
    """Where an audited request came from, in X-Road's audit fields."""

    ipaddress: str | None
    auth: str | None
    url: str | None


_NO_ORIGIN: Final = AuditOrigin(None, None, None)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def failed_event(event: StrEnum) -> str:
    """The name X-Road logs for a refused or failed ``event``."""
    return event.value + FAILED_SUFFIX


def audit_line(
    event: StrEnum,
    user: str | None,
    data: AuditData,
    *,
    at: datetime,
    failed: bool = False,
    origin: AuditOrigin | None = None,
) -> bytes:
    """One audit record of ``event`` (``<event> failed`` when ``failed``), newline-terminated (non-JSON
    values are written as strings)."""
    where = origin or _NO_ORIGIN
    record = {
        "event": failed_event(event) if failed else event.value,
        "user": user,
        "time": at.astimezone(UTC).isoformat(),
        "ipaddress": where.ipaddress,
        "auth": where.auth,
        "url": where.url,
        "data": dict(data),
    }
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

    def append_sync(self, event: StrEnum, user: str | None, data: AuditData) -> None:
        """Write one record now (for a CLI, which has no event loop of its own between commands)."""
        self._append(audit_line(event, user, data, at=self._clock()))

    async def record(
        self, event: StrEnum, user: str | None, data: AuditData, *, origin: AuditOrigin | None = None
    ) -> None:
        """Write one record."""
        await self._write(audit_line(event, user, data, at=self._clock(), origin=origin))

    async def record_failure(
        self,
        event: StrEnum,
        user: str | None,
        data: AuditData,
        error: XRoadError,
        *,
        origin: AuditOrigin | None = None,
    ) -> None:
        """Write the ``<event> failed`` record of a refused attempt, with the fault code and reason."""
        reason = {"code": error.code, "message": error.message}
        line = audit_line(
            event, user, {**data, "reason": reason}, at=self._clock(), failed=True, origin=origin
        )
        await self._write(line)

    async def _write(self, line: bytes) -> None:
        async with self._lock:
            await asyncio.to_thread(self._append, line)
