"""Configuration signing keys move into the registry's token: each private key kept in clear
(``signing_keys.private_key_pem``) is imported into the software token, written encrypted under the PIN,
its ``token_key_id`` recorded, and the column dropped.

The token comes from ``config.attributes["token"]`` (a :data:`registry.db.engine.TokenSource`, as
:func:`registry.db.migrate` passes it), called only when there are keys to move. Without it, or with a
token that cannot import keys (PKCS#11), the migration fails and the database keeps its keys. Keys are
imported before the database changes: a failure afterwards rolls the database back and leaves unused
copies in the token, never a lost key. SQLite overwrites the deleted text (``secure_delete``); PostgreSQL
keeps dead row versions until they are vacuumed: run ``VACUUM FULL signing_keys`` after migrating.

Revision ID: r0004
Revises: r0003
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.tokens import PIN_ENV, KeyUsage, SoftwareToken
from xroad_mn.tokens.base import signer_error

revision = "r0004"
down_revision: str | None = "r0003"
branch_labels: str | None = None
depends_on: str | None = None

_PART = 255


def _token(count: int) -> SoftwareToken:
    what = f"the database holds {count} configuration signing key(s) in clear, which move into the token"
    source = context.config.attributes.get("token")
    if source is None:
        raise signer_error(
            FaultCode.TOKEN_NOT_ACTIVE,
            f"{what}: migrate with the registry's token (`xroad-mn registry serve`, with {PIN_ENV} set or on "
            "a terminal); nothing was changed",
        )
    token = source()
    if not isinstance(token, SoftwareToken):
        raise signer_error(
            FaultCode.TOKEN_NOT_AVAILABLE,
            f"{what}, and only a software token imports keys: migrate with the default software token, "
            "then generate new keys in the HSM; nothing was changed",
        )
    return token


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("PRAGMA secure_delete = ON")  # zero the pages the keys' text leaves
    rows = bind.execute(
        sa.text("SELECT id, kind, key_id, private_key_pem FROM signing_keys ORDER BY id")
    ).all()
    token_key_ids: dict[int, str] = {}
    if rows:
        token = _token(len(rows))
        for row_id, kind, key_id, pem in rows:
            try:
                key = load_pem_private_key(str(pem).encode("ascii"), password=None)
            except (ValueError, TypeError, UnicodeEncodeError) as e:
                raise XRoadError(
                    FaultCode.INTERNAL_ERROR,
                    f"stored signing key {key_id!r} is unreadable; nothing was changed",
                ) from e
            if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
                raise XRoadError(
                    FaultCode.INTERNAL_ERROR,
                    f"stored signing key {key_id!r} is neither RSA nor EC; nothing was changed",
                )
            label = f"{str(key_id)[:60]} {kind} configuration signing"
            token_key_ids[row_id] = token.import_key(key, label, KeyUsage.SIGNING).key_id
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(sa.Column("token_key_id", sa.String(_PART), nullable=True))
    for row_id, token_key_id in token_key_ids.items():
        bind.execute(
            sa.text(
                "UPDATE signing_keys SET token_key_id = :token_key_id, private_key_pem = '' WHERE id = :id"
            ),
            {"token_key_id": token_key_id, "id": row_id},
        )
    with op.batch_alter_table("signing_keys") as batch:
        batch.alter_column("token_key_id", existing_type=sa.String(_PART), nullable=False)
        batch.drop_column("private_key_pem")


def downgrade() -> None:
    """Only a registry without signing keys goes back: keys never leave the token for the database."""
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM signing_keys")).scalar_one():
        raise XRoadError(
            FaultCode.CONFLICT,
            "configuration signing keys stay in the token: r0004 is not undone while the registry has keys",
        )
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(sa.Column("private_key_pem", sa.Text(), nullable=False))
        batch.drop_column("token_key_id")
