"""Operational monitoring: ``opmon_counters``, node-wide running counters (the buffer's dropped records) that
every worker process adds to, for ``/metrics``.

Revision ID: n0007_opmon_counters
Revises: n0006_failures
Create Date: 2027-02-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "n0007_opmon_counters"
down_revision: str | None = "n0006_failures"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "opmon_counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("opmon_counters")
