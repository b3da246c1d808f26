"""Security server clients get an ``enabled`` flag (``clientDisable`` / ``clientEnable``); existing clients
are enabled.

Revision ID: r0002
Revises: r0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0002"
down_revision: str | None = "r0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "security_server_clients",
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    op.drop_column("security_server_clients", "enabled")
