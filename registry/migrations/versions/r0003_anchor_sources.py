"""The anchor of each kind keeps its ``generatedAt`` (and so its bytes and hash) until its sources change:
``anchor_sources`` holds the digest of what it was last exported from and the time of that change.

Revision ID: r0003
Revises: r0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0003"
down_revision: str | None = "r0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "anchor_sources",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("sources_sha256", sa.String(64), nullable=False),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("anchor_sources")
