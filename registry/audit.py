"""The registry's audit log: one JSON object a line for every change and every refused attempt.

As X-Road's audit log: ``event`` names what was done (one :class:`AuditEvent`, e.g. ``Add member``); a
refused or failed attempt is the same event with `` failed`` appended and the reason in ``data``; ``user`` is
the API key id (or the operating-system user for the CLI); ``time`` is ISO-8601 UTC.

Example::

    >>> line = audit_line(AuditEvent.ADD_MEMBER, "3f9a01c2", {"memberId": "MN:GOV:5012345"},
    ...                   at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> line
    b'{"event": "Add member", "user": "3f9a01c2", "time": "2026-01-01T00:00:00+00:00", "data": {"memberId": "MN:GOV:5012345"}}\\n'
    >>> log = AuditLog(Path("audit.log"))  # doctest: +SKIP
    >>> await log.record(AuditEvent.ADD_MEMBER, "3f9a01c2", {"memberId": "MN:GOV:5012345"})  # doctest: +SKIP
"""  # noqa: E501

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Final

from xroad_mn.errors import FaultCode, XRoadError

__all__ = ["FAILED_SUFFIX", "AuditData", "AuditEvent", "AuditLog", "audit_line", "failed_event"]

FAILED_SUFFIX: Final = " failed"

AuditData = Mapping[str, object]
"""An audit record's ``data``: JSON values (anything else is written as its ``str``)."""


class AuditEvent(StrEnum):
    """Every event the registry audits (X-Road's central server names), from the admin API, the CLI and the
    management service."""

    API_KEY_AUTHENTICATION = "API key authentication"
    ACTIVATE_CONFIGURATION_SIGNING_KEY = "Activate configuration signing key"
    ADD_CERTIFICATION_SERVICE = "Add certification service"
    ADD_GLOBAL_GROUP = "Add global group"
    ADD_MEMBER = "Add member"
    ADD_MEMBER_CLASS = "Add member class"
    ADD_MEMBERS_TO_GLOBAL_GROUP = "Add members to global group"
    ADD_SECURITY_SERVER = "Add security server"
    ADD_SECURITY_SERVER_AUTHENTICATION_CERTIFICATE = "Add security server authentication certificate"
    ADD_SUBSYSTEM = "Add subsystem"
    ADD_TIMESTAMPING_SERVICE = "Add timestamping service"
    APPROVE_MANAGEMENT_REQUEST = "Approve management request"
    CREATE_API_KEY = "Create API key"
    DELETE_CERTIFICATION_SERVICE = "Delete certification service"
    DELETE_CONFIGURATION_SIGNING_KEY = "Delete configuration signing key"
    DELETE_MEMBER_FROM_GLOBAL_GROUP = "Delete member from global group"
    DELETE_SECURITY_SERVER_AUTHENTICATION_CERTIFICATE = "Delete security server authentication certificate"
    DELETE_TIMESTAMPING_SERVICE = "Delete timestamping service"
    EDIT_GLOBAL_SETTINGS = "Edit global settings"
    EDIT_MEMBER_CLASS = "Edit member class"
    EDIT_MEMBER_NAME = "Edit member name"
    EDIT_SECURITY_SERVER = "Edit security server"
    EDIT_SUBSYSTEM_NAME = "Edit subsystem name"
    GENERATE_CONFIGURATION_SIGNING_KEY = "Generate configuration signing key"
    INITIALIZE_REGISTRY = "Initialize registry"
    REGENERATE_GLOBAL_CONFIGURATION = "Regenerate global configuration"
    REGISTER_CLIENT = "Register client"
    REJECT_MANAGEMENT_REQUEST = "Reject management request"
    REVOKE_API_KEY = "Revoke API key"
    REVOKE_MANAGEMENT_REQUEST = "Revoke management request"
    SUBMIT_MANAGEMENT_REQUEST = "Submit management request"
    UNREGISTER_CLIENT = "Unregister client"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def failed_event(event: AuditEvent) -> str:
    """The name X-Road logs for a refused or failed ``event``."""
    return event + FAILED_SUFFIX


def audit_line(
    event: AuditEvent, user: str | None, data: AuditData, *, at: datetime, failed: bool = False
) -> bytes:
    """One audit record of ``event`` (``<event> failed`` when ``failed``), newline-terminated (non-JSON
    values are written as strings)."""
    name = failed_event(event) if failed else event.value
    record = {"event": name, "user": user, "time": at.astimezone(UTC).isoformat(), "data": dict(data)}
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

    def append_sync(self, event: AuditEvent, user: str | None, data: AuditData) -> None:
        """Write one record now (for the CLI, which has no event loop of its own between commands)."""
        self._append(audit_line(event, user, data, at=self._clock()))

    async def record(self, event: AuditEvent, user: str | None, data: AuditData) -> None:
        """Write one record."""
        await self._write(audit_line(event, user, data, at=self._clock()))

    async def record_failure(
        self, event: AuditEvent, user: str | None, data: AuditData, error: XRoadError
    ) -> None:
        """Write the ``<event> failed`` record of a refused attempt, with the fault code and reason."""
        reason = {"code": error.code, "message": error.message}
        await self._write(audit_line(event, user, {**data, "reason": reason}, at=self._clock(), failed=True))

    async def _write(self, line: bytes) -> None:
        async with self._lock:
            await asyncio.to_thread(self._append, line)
