"""Failed exchanges: the outcome of an exchange that failed after its request was logged (``node log verify``
counts it as failed, not as a request that lost its response). Neither archiving nor cleaning deletes them.

Revision ID: n0006_failures
Revises: n0005_opmonitoring
Create Date: 2027-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "n0006_failures"
down_revision: str | None = "n0005_opmonitoring"
branch_labels: str | None = None
depends_on: str | None = None

_RECORD_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "exchange_failures",
        sa.Column("id", _RECORD_ID, primary_key=True),
        sa.Column("request_record_id", _RECORD_ID, nullable=False),
        sa.Column("query_id", sa.Text(), nullable=False),
        sa.Column("x_request_id", sa.String(255), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code", sa.String(255), nullable=False),
        sa.Column("fault_string", sa.Text(), nullable=False),
    )
    op.create_index("ix_exchange_failures_request_record_id", "exchange_failures", ["request_record_id"])
    op.create_index("ix_exchange_failures_query_id", "exchange_failures", ["query_id"])


def downgrade() -> None:
    op.drop_index("ix_exchange_failures_query_id", "exchange_failures")
    op.drop_index("ix_exchange_failures_request_record_id", "exchange_failures")
    op.drop_table("exchange_failures")
