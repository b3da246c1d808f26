"""Message log search: the data subject's keyed hash, user id, issue and REST status, and the indexes of
``node log search`` (each ends with the record id, the order of keyset pagination).

Revision ID: n0003_search
Revises: n0002_messagelog
Create Date: 2027-01-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "n0003_search"
down_revision: str | None = "n0002_messagelog"
branch_labels: str | None = None
depends_on: str | None = None

_SUBJECT_HASH = 64
_SEARCHED = 255

_CLIENT = ["instance", "member_class", "member_code", "subsystem_code"]
_OPTIONAL = ("subject_hash", "user_id", "issue", "status")


def upgrade() -> None:
    op.add_column("message_records", sa.Column("subject_hash", sa.String(_SUBJECT_HASH), nullable=True))
    op.add_column("message_records", sa.Column("user_id", sa.String(_SEARCHED), nullable=True))
    op.add_column("message_records", sa.Column("issue", sa.String(_SEARCHED), nullable=True))
    op.add_column("message_records", sa.Column("status", sa.Integer(), nullable=True))
    op.drop_index("ix_message_records_client", "message_records")
    op.create_index("ix_message_records_client", "message_records", [*_CLIENT, "id"])
    op.create_index("ix_message_records_service", "message_records", ["service", "id"])
    for column in _OPTIONAL:
        op.create_index(
            f"ix_message_records_{column}",
            "message_records",
            [column, "id"],
            sqlite_where=sa.text(f"{column} IS NOT NULL"),
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
        )


def downgrade() -> None:
    for column in _OPTIONAL:
        op.drop_index(f"ix_message_records_{column}", "message_records")
    op.drop_index("ix_message_records_service", "message_records")
    op.drop_index("ix_message_records_client", "message_records")
    op.create_index("ix_message_records_client", "message_records", _CLIENT)
    for column in reversed(_OPTIONAL):
        op.drop_column("message_records", column)  # SQLite 3.35+ drops columns in place
