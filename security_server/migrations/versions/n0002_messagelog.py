"""The message log: message records, time-stamp records and message attachments (X-Road's ``logrecord``).

Revision ID: n0002_messagelog
Revises: n0001_initial
Create Date: 2026-12-10
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "n0002_messagelog"
down_revision: str | None = "n0001_initial"
branch_labels: str | None = None
depends_on: str | None = None

_PART = 255
_X_REQUEST_ID = 255
_SIGNATURE_HASH = 128


def _record_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(column: str) -> sa.Column[datetime]:
    return sa.Column(column, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "timestamp_records",
        sa.Column("id", _record_id(), primary_key=True),
        _at("time"),
        sa.Column("token", sa.LargeBinary(), nullable=False),
        sa.Column("hash_chain_result", sa.LargeBinary(), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_timestamp_records_time", "timestamp_records", ["time"])
    op.create_index("ix_timestamp_records_archived", "timestamp_records", ["archived"])
    op.create_table(
        "message_records",
        sa.Column("id", _record_id(), primary_key=True),
        _at("time"),
        sa.Column("query_id", sa.Text(), nullable=False),
        sa.Column("x_request_id", sa.String(_X_REQUEST_ID), nullable=False),
        sa.Column("instance", sa.String(_PART), nullable=False),
        sa.Column("member_class", sa.String(_PART), nullable=False),
        sa.Column("member_code", sa.String(_PART), nullable=False),
        sa.Column("subsystem_code", sa.String(_PART), nullable=True),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("response", sa.Boolean(), nullable=False),
        sa.Column("rest", sa.Boolean(), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("signature_hash", sa.String(_SIGNATURE_HASH), nullable=False),
        sa.Column("hash_chain_result", sa.LargeBinary(), nullable=True),
        sa.Column("hash_chain", sa.LargeBinary(), nullable=True),
        sa.Column("timestamp_id", _record_id(), sa.ForeignKey("timestamp_records.id"), nullable=True),
        sa.Column("timestamp_hash_chain", sa.LargeBinary(), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
    )
    for column in ("time", "query_id", "x_request_id", "timestamp_id", "archived"):
        op.create_index(f"ix_message_records_{column}", "message_records", [column])
    op.create_index(
        "ix_message_records_client",
        "message_records",
        ["instance", "member_class", "member_code", "subsystem_code"],
    )
    op.create_index(
        "ix_message_records_unstamped",
        "message_records",
        ["id"],
        sqlite_where=sa.text("timestamp_id IS NULL"),
        postgresql_where=sa.text("timestamp_id IS NULL"),
    )
    op.create_table(
        "message_attachments",
        sa.Column(
            "record_id",
            _record_id(),
            sa.ForeignKey("message_records.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("number", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    for table in ("message_attachments", "message_records", "timestamp_records"):
        op.drop_table(table)
