"""Shared batch signatures: a signature document used by several records of one write is kept once.

A batch signature (one XAdES document over a hash tree of many messages) is ~9 KiB with its certificates and
OCSP responses, most of each record. ``message_signatures`` keeps it once per batch; the records refer to it
by ``signature_hash`` (now indexed) and store an empty ``signature``.

Revision ID: n0004_shared_signatures
Revises: n0003_search
Create Date: 2027-02-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "n0004_shared_signatures"
down_revision: str | None = "n0003_search"
branch_labels: str | None = None
depends_on: str | None = None

_SIGNATURE_HASH = 128


def upgrade() -> None:
    op.create_table(
        "message_signatures",
        sa.Column("hash", sa.String(_SIGNATURE_HASH), primary_key=True),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("hash_chain_result", sa.LargeBinary(), nullable=True),
    )
    op.create_index("ix_message_records_signature_hash", "message_records", ["signature_hash"])


def downgrade() -> None:
    # Put every shared document back into its records before the table goes.
    op.execute(
        "UPDATE message_records SET "
        "signature = (SELECT s.document FROM message_signatures s "
        "WHERE s.hash = message_records.signature_hash), "
        "hash_chain_result = (SELECT s.hash_chain_result FROM message_signatures s "
        "WHERE s.hash = message_records.signature_hash) "
        "WHERE length(signature) = 0"
    )
    op.drop_index("ix_message_records_signature_hash", "message_records")
    op.drop_table("message_signatures")
