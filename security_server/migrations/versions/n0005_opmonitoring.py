"""Operational monitoring: ``opmon_records`` (one row per exchange and side) and ``opmon_totals`` (running
counters and latency histograms for ``/metrics``).

Revision ID: n0005_opmonitoring
Revises: n0004_shared_signatures
Create Date: 2027-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "n0005_opmonitoring"
down_revision: str | None = "n0004_shared_signatures"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TEXT = 255
_TEXT_COLUMNS = (
    "client_xroad_instance", "client_member_class", "client_member_code", "client_subsystem_code",
    "service_xroad_instance", "service_member_class", "service_member_code", "service_subsystem_code",
    "service_code", "service_version", "represented_party_class", "represented_party_code", "message_id",
    "message_user_id", "message_issue", "message_protocol_version", "client_security_server_address",
    "service_security_server_address",
)  # fmt: skip
_BUCKETS = ("le_5ms", "le_10ms", "le_25ms", "le_50ms", "le_100ms", "le_250ms", "le_500ms", "le_1000ms",
            "le_2500ms", "le_5000ms", "le_10000ms")  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "opmon_records",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("monitoring_data_ts", sa.BigInteger(), nullable=False),
        sa.Column("security_server_internal_ip", sa.String(_TEXT), nullable=True),
        sa.Column("security_server_type", sa.String(16), nullable=False),
        sa.Column("request_in_ts", sa.BigInteger(), nullable=False),
        sa.Column("request_out_ts", sa.BigInteger(), nullable=True),
        sa.Column("response_in_ts", sa.BigInteger(), nullable=True),
        sa.Column("response_out_ts", sa.BigInteger(), nullable=True),
        *(sa.Column(name, sa.String(_TEXT), nullable=True) for name in _TEXT_COLUMNS),
        sa.Column("request_size", sa.BigInteger(), nullable=True),
        sa.Column("request_mime_size", sa.BigInteger(), nullable=True),
        sa.Column("request_attachment_count", sa.Integer(), nullable=True),
        sa.Column("response_size", sa.BigInteger(), nullable=True),
        sa.Column("response_mime_size", sa.BigInteger(), nullable=True),
        sa.Column("response_attachment_count", sa.Integer(), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("fault_code", sa.String(_TEXT), nullable=True),
        sa.Column("fault_string", sa.Text(), nullable=True),
        sa.Column("service_type", sa.String(16), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("rest_method", sa.String(16), nullable=True),
        sa.Column("rest_path", sa.Text(), nullable=True),
        sa.Column("x_request_id", sa.String(_TEXT), nullable=True),
        sa.Column("xroad_version", sa.String(32), nullable=True),
    )
    op.create_index("ix_opmon_records_monitoring_data_ts", "opmon_records", ["monitoring_data_ts"])
    op.create_index("ix_opmon_records_request_in_ts", "opmon_records", ["request_in_ts"])
    op.create_index("ix_opmon_records_client", "opmon_records", list(_TEXT_COLUMNS[0:4]))
    op.create_index("ix_opmon_records_service", "opmon_records", list(_TEXT_COLUMNS[4:8]))
    op.create_table(
        "opmon_totals",
        sa.Column("side", sa.String(16), primary_key=True),
        sa.Column("service", sa.String(1024), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("duration_sum_ms", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _BUCKETS),
    )


def downgrade() -> None:
    op.drop_table("opmon_totals")
    for name in ("service", "client", "request_in_ts", "monitoring_data_ts"):
        op.drop_index(f"ix_opmon_records_{name}", "opmon_records")
    op.drop_table("opmon_records")
