"""ORM models of operational monitoring: one row per exchange and side, running totals and counters for
``/metrics``.

:class:`OpRecordRow` (``opmon_records``) is X-Road's ``operational_data`` table: the columns are the record's
fields (:class:`~xroad_mn.wire.opmonitoring.OpRecord`), searched by ``monitoring_data_ts`` and by the client
and service provider. :class:`OpTotalsRow` (``opmon_totals``) holds, per side, service and outcome, the
number of exchanges ever recorded and a cumulative latency histogram: every worker process adds to it in
the transaction that writes its records, so the counters are right across processes and outlive the
records' retention. Both are created by the migration ``n0005_opmonitoring``. :class:`OpCounterRow`
(``opmon_counters``, migration ``n0007_opmon_counters``) holds node-wide counters by name, added to the same
way: :data:`DROPPED` counts the records the processes' buffers dropped.

Example::

    >>> OpRecordRow.__tablename__, OpTotalsRow.__tablename__, OpCounterRow.__tablename__
    ('opmon_records', 'opmon_totals', 'opmon_counters')
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from security_server.db.models import Base

__all__ = ["DROPPED", "LATENCY_BUCKETS", "OpCounterRow", "OpRecordRow", "OpTotalsRow", "bucket_column"]

_ID: Final = BigInteger().with_variant(Integer(), "sqlite")
_TEXT: Final = 255
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the latency histogram (Prometheus' defaults); ``+Inf`` is the count."""
DROPPED: Final = "buffer_dropped"
"""The counter of operational data records dropped, buffer full or write failed, by any process."""


def bucket_column(bound: float) -> str:
    """The column of the cumulative bucket ``le=bound``: ``le_5ms`` ... ``le_10000ms``."""
    return f"le_{round(bound * 1000)}ms"


class OpRecordRow(Base):
    """One side's operational data of one exchange (field meanings: PR-OPMON's JSON schema)."""

    __tablename__ = "opmon_records"
    __table_args__ = (
        Index(
            "ix_opmon_records_client",
            "client_xroad_instance",
            "client_member_class",
            "client_member_code",
            "client_subsystem_code",
        ),
        Index(
            "ix_opmon_records_service",
            "service_xroad_instance",
            "service_member_class",
            "service_member_code",
            "service_subsystem_code",
        ),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    monitoring_data_ts: Mapped[int] = mapped_column(BigInteger, index=True)
    security_server_internal_ip: Mapped[str | None] = mapped_column(String(_TEXT))
    security_server_type: Mapped[str] = mapped_column(String(16))
    request_in_ts: Mapped[int] = mapped_column(BigInteger, index=True)
    request_out_ts: Mapped[int | None] = mapped_column(BigInteger)
    response_in_ts: Mapped[int | None] = mapped_column(BigInteger)
    response_out_ts: Mapped[int | None] = mapped_column(BigInteger)
    client_xroad_instance: Mapped[str | None] = mapped_column(String(_TEXT))
    client_member_class: Mapped[str | None] = mapped_column(String(_TEXT))
    client_member_code: Mapped[str | None] = mapped_column(String(_TEXT))
    client_subsystem_code: Mapped[str | None] = mapped_column(String(_TEXT))
    service_xroad_instance: Mapped[str | None] = mapped_column(String(_TEXT))
    service_member_class: Mapped[str | None] = mapped_column(String(_TEXT))
    service_member_code: Mapped[str | None] = mapped_column(String(_TEXT))
    service_subsystem_code: Mapped[str | None] = mapped_column(String(_TEXT))
    service_code: Mapped[str | None] = mapped_column(String(_TEXT))
    service_version: Mapped[str | None] = mapped_column(String(_TEXT))
    represented_party_class: Mapped[str | None] = mapped_column(String(_TEXT))
    represented_party_code: Mapped[str | None] = mapped_column(String(_TEXT))
    message_id: Mapped[str | None] = mapped_column(String(_TEXT))
    message_user_id: Mapped[str | None] = mapped_column(String(_TEXT))
    message_issue: Mapped[str | None] = mapped_column(String(_TEXT))
    message_protocol_version: Mapped[str | None] = mapped_column(String(_TEXT))
    client_security_server_address: Mapped[str | None] = mapped_column(String(_TEXT))
    service_security_server_address: Mapped[str | None] = mapped_column(String(_TEXT))
    request_size: Mapped[int | None] = mapped_column(BigInteger)
    request_mime_size: Mapped[int | None] = mapped_column(BigInteger)
    request_attachment_count: Mapped[int | None]
    response_size: Mapped[int | None] = mapped_column(BigInteger)
    response_mime_size: Mapped[int | None] = mapped_column(BigInteger)
    response_attachment_count: Mapped[int | None]
    succeeded: Mapped[bool] = mapped_column(Boolean)
    fault_code: Mapped[str | None] = mapped_column(String(_TEXT))
    fault_string: Mapped[str | None] = mapped_column(Text)
    service_type: Mapped[str | None] = mapped_column(String(16))
    status_code: Mapped[int | None]
    rest_method: Mapped[str | None] = mapped_column(String(16))
    rest_path: Mapped[str | None] = mapped_column(Text)
    x_request_id: Mapped[str | None] = mapped_column(String(_TEXT))
    xroad_version: Mapped[str | None] = mapped_column(String(32))


class OpTotalsRow(Base):
    """Exchanges ever recorded for one (side, service, outcome), with a cumulative latency histogram."""

    __tablename__ = "opmon_totals"

    side: Mapped[str] = mapped_column(String(16), primary_key=True)
    service: Mapped[str] = mapped_column(String(1024), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    duration_sum_ms: Mapped[int] = mapped_column(BigInteger)
    le_5ms: Mapped[int] = mapped_column(BigInteger)
    le_10ms: Mapped[int] = mapped_column(BigInteger)
    le_25ms: Mapped[int] = mapped_column(BigInteger)
    le_50ms: Mapped[int] = mapped_column(BigInteger)
    le_100ms: Mapped[int] = mapped_column(BigInteger)
    le_250ms: Mapped[int] = mapped_column(BigInteger)
    le_500ms: Mapped[int] = mapped_column(BigInteger)
    le_1000ms: Mapped[int] = mapped_column(BigInteger)
    le_2500ms: Mapped[int] = mapped_column(BigInteger)
    le_5000ms: Mapped[int] = mapped_column(BigInteger)
    le_10000ms: Mapped[int] = mapped_column(BigInteger)


class OpCounterRow(Base):
    """A node-wide running counter, added to by every process in the transaction of its write."""

    __tablename__ = "opmon_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
