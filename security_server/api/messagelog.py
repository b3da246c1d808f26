"""The message log for auditors (xroad-mn's own roles; X-Road's roles do not read the log).

* ``POST /messagelog/search`` — a page of records' metadata (auditor, body reader): every filter of
  ``xroad-mn node log search``, the data subject in clear (hashed by the node) or as its keyed hash; the
  filters travel in the body, so a registration number never sits in a URL. Keyset pages: ``after_id``
  is the previous page's ``next_after_id``.
* ``GET /messagelog/records/{record_id}`` — one record's metadata (auditor, body reader).
* ``GET /messagelog/records/{record_id}/body`` — the logged message and attachments, base64 (body reader).
* ``POST /messagelog/export`` — a zip of the ASiC-E containers of the records found and ``manifest.json``
  (body reader: the containers hold the messages). **Bounded**: at most ``limit``
  (:data:`MAX_EXPORT_RECORDS`) records and about :data:`MAX_EXPORT_BYTES` of containers per export,
  written to a spooled temporary file (memory up to
  :data:`EXPORT_SPOOL_BYTES`, then disk) and streamed; an incomplete export's manifest (and the
  ``X-MN-Next-After-Id`` header) gives the ``after_id`` of the next one. An exchange is exported by its
  ``x_road_id``.

Metadata never holds a message body or a data subject in clear. Every call is audited, its filters with
the data subject as its keyed hash.
"""

from __future__ import annotations

import base64
import tempfile
from typing import Final, Literal

from pydantic import Field

from security_server.api.call import NodeCall, int_param
from security_server.api.events import NodeEvent
from security_server.api.models import In, Out
from security_server.api.spec import LOG_BODIES, LOG_METADATA, operation
from security_server.ids import parse_client_id, parse_service_id
from security_server.messagelog.bundle import BUNDLE_CONTENT_TYPE
from security_server.messagelog.report import parse_log_time
from security_server.messagelog.search import DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT, LogEntry, LogFilters
from security_server.operations import messagelog
from xroad_mn.admin import FileBody, Reply

__all__ = ["EXPORT_SPOOL_BYTES", "MAX_EXPORT_BYTES", "MAX_EXPORT_RECORDS", "NEXT_AFTER_ID_HEADER"]

MAX_EXPORT_RECORDS: Final = 1000
"""Most records one export through the API goes through (the CLI's export has no such bound)."""
MAX_EXPORT_BYTES: Final = 256 * 1024 * 1024
"""An export through the API stops once its containers reach this size (the next one continues)."""
EXPORT_SPOOL_BYTES: Final = 8 * 1024 * 1024
"""An export is kept in memory up to this size, then in a temporary file."""
NEXT_AFTER_ID_HEADER: Final = "X-MN-Next-After-Id"


class LogFiltersIn(In):
    """What the records must match (every field given)."""

    from_: str | None = Field(None, alias="from", description="Logged at or after (ISO 8601; UTC if naive)")
    to: str | None = Field(None, description="Logged before (ISO 8601; UTC if naive)")
    client: str | None = Field(None, description="The exchange's client, exactly (either identifier form)")
    service: str | None = Field(None, description="The service (SERVICE:MN/GOV/9010001/sub/code)")
    x_road_id: str | None = None
    x_request_id: str | None = None
    user_id: str | None = None
    issue: str | None = None
    status: int | None = Field(None, ge=100, le=599, description="A REST response's HTTP status")
    data_subject: str | None = Field(
        None, description="The data subject's registration number in clear; the node looks up its hash"
    )
    data_subject_hash: str | None = Field(
        None, description="The data subject's keyed hash, as the audit log and export manifests hold it"
    )
    message: Literal["request", "response"] | None = None

    def filters(self, *, strict: bool) -> LogFilters:
        """The filters asked for, their client and service read in the node's ``strict`` mode."""
        return LogFilters(
            start=parse_log_time(self.from_) if self.from_ is not None else None,
            end=parse_log_time(self.to) if self.to is not None else None,
            client=parse_client_id(self.client, strict=strict) if self.client is not None else None,
            service=parse_service_id(self.service, strict=strict) if self.service is not None else None,
            query_id=self.x_road_id,
            x_request_id=self.x_request_id,
            user_id=self.user_id,
            issue=self.issue,
            status=self.status,
            data_subject=self.data_subject,
            subject_hash=self.data_subject_hash,
            response=None if self.message is None else self.message == "response",
        )


class LogSearchIn(LogFiltersIn):
    limit: int = Field(DEFAULT_SEARCH_LIMIT, ge=1, le=MAX_SEARCH_LIMIT)
    after_id: int | None = Field(None, ge=0, description="The previous page's next_after_id")


class LogExportIn(LogFiltersIn):
    limit: int = Field(MAX_EXPORT_RECORDS, ge=1, le=MAX_EXPORT_RECORDS)
    after_id: int | None = Field(None, ge=0, description="The previous export's next_after_id")


class FailureOut(Out):
    """How an exchange failed after its request was logged."""

    code: str = Field(description="The X-Road fault code the exchange failed with")
    fault_string: str
    failed_at: str


class LogEntryOut(Out):
    """One record's metadata: the exchange's parties, service and ids, the times and the state."""

    id: int
    x_road_id: str
    x_request_id: str
    client: str
    provider: str
    service: str
    message: Literal["request", "response"]
    protocol: Literal["REST", "SOAP"]
    logged_at: str
    timestamped_at: str | None
    status: int | None
    user_id: str | None
    issue: str | None
    signed: bool
    timestamped: bool
    archived: bool
    failure: FailureOut | None = Field(
        description="A request whose exchange failed after it was logged; null otherwise"
    )


class LogPageOut(Out):
    records: list[LogEntryOut]
    next_after_id: int | None = Field(description="Give as after_id for the next page; null on the last")


class LogBodyOut(Out):
    record: LogEntryOut
    message_base64: str = Field(description="The SOAP message or the REST header part, as signed")
    attachments_base64: list[str] = Field(description="SOAP attachments in order, or the REST body")


def _entry_out(entry: LogEntry) -> LogEntryOut:
    return LogEntryOut.model_validate(entry.as_json())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@operation(
    "POST", "/messagelog/search", "Search the message log", tag="message log", roles=LOG_METADATA,
    event=NodeEvent.SEARCH_MESSAGE_LOG, body=LogSearchIn, response=LogPageOut, read=True,
)  # fmt: skip
async def search_message_log(call: NodeCall) -> Reply[LogPageOut]:
    body = call.typed_body(LogSearchIn)
    filters = body.filters(strict=call.strict)
    page = await messagelog.search(
        call.settings, call.node_store, filters, limit=body.limit, after_id=body.after_id
    )
    asked = await messagelog.filters_audit(call.settings, call.node_store, filters)
    out = LogPageOut(records=[_entry_out(e) for e in page.records], next_after_id=page.next_after_id)
    audit = {"filters": asked, "after_id": body.after_id, "records": len(page.records)}
    return Reply(out, audit=audit)


@operation(
    "GET", "/messagelog/records/{record_id}", "Get a message log record's metadata", tag="message log",
    roles=LOG_METADATA, event=NodeEvent.READ_MESSAGE_LOG_RECORD, response=LogEntryOut,
)  # fmt: skip
async def get_message_log_record(call: NodeCall) -> Reply[LogEntryOut]:
    record_id = int_param(call, "record_id", "message log record")
    entry = await messagelog.record(call.settings, call.node_store, record_id)
    return Reply(_entry_out(entry), audit={"record_id": record_id, "x_road_id": entry.query_id})


@operation(
    "GET", "/messagelog/records/{record_id}/body", "Get a logged message", tag="message log",
    roles=LOG_BODIES, event=NodeEvent.READ_MESSAGE_BODY, response=LogBodyOut,
)  # fmt: skip
async def get_message_log_body(call: NodeCall) -> Reply[LogBodyOut]:
    record_id = int_param(call, "record_id", "message log record")
    logged = await messagelog.message(call.settings, call.node_store, record_id)
    out = LogBodyOut(
        record=_entry_out(logged.entry),
        message_base64=_b64(logged.message),
        attachments_base64=[_b64(a) for a in logged.attachments],
    )
    return Reply(out, audit={"record_id": record_id, "x_road_id": logged.entry.query_id})


@operation(
    "POST", "/messagelog/export", "Export message log records as ASiC-E containers", tag="message log",
    roles=LOG_BODIES, event=NodeEvent.EXPORT_MESSAGE_LOG, body=LogExportIn, response=FileBody,
    media_type=BUNDLE_CONTENT_TYPE, read=True,
)  # fmt: skip
async def export_message_log(call: NodeCall) -> Reply[FileBody]:
    body = call.typed_body(LogExportIn)
    filters = body.filters(strict=call.strict)
    asked = await messagelog.filters_audit(call.settings, call.node_store, filters)
    now = call.now
    spool = tempfile.SpooledTemporaryFile(max_size=EXPORT_SPOOL_BYTES)  # noqa: SIM115 (the pipeline closes it)
    try:
        summary = await messagelog.export(
            call.settings, call.node_store, filters, spool, now=now, after_id=body.after_id,
            limit=body.limit, max_bytes=MAX_EXPORT_BYTES,
        )  # fmt: skip
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    headers = {
        "Content-Disposition": f'attachment; filename="messagelog-{now.strftime("%Y%m%dT%H%M%SZ")}.zip"'
    }
    if summary.next_after_id is not None:
        headers[NEXT_AFTER_ID_HEADER] = str(summary.next_after_id)
    audit = {
        "filters": asked,
        "after_id": body.after_id,
        "containers": summary.containers,
        "skipped": summary.skipped,
        "next_after_id": summary.next_after_id,
    }
    return Reply(FileBody(spool, size), audit=audit, headers=headers)
