"""Initial schema: the node's identity and clients, IS certificates, service descriptions, services,
endpoints, access rights, local groups, and the token's key, certificate and CSR records.

Revision ID: n0001_initial
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "n0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_PART = 255
_ID_TEXT = 1300
_URL = 2048
_METHOD = 16
_CONNECTION_TYPES = ("NOSSL", "SSLNOAUTH", "SSLAUTH")
_CLIENT_STATES = (
    "saved",
    "registration_in_progress",
    "registered",
    "deletion_in_progress",
    "global_error",
    "disabling_in_progress",
    "disabled",
    "enabling_in_progress",
)
_DESCRIPTION_TYPES = ("WSDL", "OPENAPI3", "REST")
_KEY_USAGES = ("auth", "sign")
_CERTIFICATE_STATUSES = (
    "saved",
    "registration_in_progress",
    "registered",
    "deletion_in_progress",
    "global_error",
)


def _enum(values: tuple[str, ...], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _fk(column: str, target: str, *, cascade: bool = True) -> sa.Column[int]:
    return sa.Column(
        column, sa.Integer(), sa.ForeignKey(target, ondelete="CASCADE" if cascade else None), nullable=False
    )


def _at(column: str) -> sa.Column[datetime]:
    return sa.Column(column, sa.DateTime(timezone=True), nullable=False)


def _member_unique(table: str, *columns: str) -> None:
    op.create_index(
        f"uq_{table}_member",
        table,
        list(columns),
        unique=True,
        sqlite_where=sa.text("subsystem_code IS NULL"),
        postgresql_where=sa.text("subsystem_code IS NULL"),
    )


def upgrade() -> None:
    op.create_table(
        "clients",
        _id(),
        sa.Column("instance", sa.String(_PART), nullable=False),
        sa.Column("member_class", sa.String(_PART), nullable=False),
        sa.Column("member_code", sa.String(_PART), nullable=False),
        sa.Column("subsystem_code", sa.String(_PART), nullable=True),
        sa.Column("connection_type", _enum(_CONNECTION_TYPES, "connection_type"), nullable=False),
        sa.Column("state", _enum(_CLIENT_STATES, "client_state"), nullable=False),
        sa.UniqueConstraint("instance", "member_class", "member_code", "subsystem_code"),
    )
    _member_unique("clients", "instance", "member_class", "member_code")
    op.create_table(
        "server",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        _fk("owner_id", "clients.id", cascade=False),
        sa.Column("server_code", sa.String(_PART), nullable=False),
        sa.Column("address", sa.String(_URL), nullable=True),
        sa.CheckConstraint("id = 1", name="single_row"),
    )
    op.create_table(
        "is_certs",
        _id(),
        _fk("client_id", "clients.id"),
        sa.Column("cert_der", sa.LargeBinary(), nullable=False),
        sa.Column("cert_hash", sa.LargeBinary(32), nullable=False),
        sa.UniqueConstraint("client_id", "cert_hash"),
    )
    op.create_table(
        "service_descriptions",
        _id(),
        _fk("client_id", "clients.id"),
        sa.Column("type", _enum(_DESCRIPTION_TYPES, "description_type"), nullable=False),
        sa.Column("url", sa.String(_URL), nullable=True),
        sa.Column("document", sa.LargeBinary(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_notice", sa.Text(), nullable=True),
        _at("refreshed_at"),
        sa.UniqueConstraint("client_id", "url"),
        sa.CheckConstraint("url IS NOT NULL OR document IS NOT NULL", name="has_source"),
    )
    op.create_index("ix_service_descriptions_client_id", "service_descriptions", ["client_id"])
    op.create_table(
        "services",
        _id(),
        _fk("description_id", "service_descriptions.id"),
        _fk("client_id", "clients.id"),
        sa.Column("service_code", sa.String(_PART), nullable=False),
        sa.Column("service_version", sa.String(_PART), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("url", sa.String(_URL), nullable=True),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("ssl_authentication", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("client_id", "service_code", "service_version"),
    )
    op.create_index("ix_services_description_id", "services", ["description_id"])
    op.create_index(
        "uq_services_unversioned",
        "services",
        ["client_id", "service_code"],
        unique=True,
        sqlite_where=sa.text("service_version IS NULL"),
        postgresql_where=sa.text("service_version IS NULL"),
    )
    op.create_table(
        "endpoints",
        _id(),
        _fk("client_id", "clients.id"),
        sa.Column("service_code", sa.String(_PART), nullable=False),
        sa.Column("method", sa.String(_METHOD), nullable=False),
        sa.Column("path", sa.String(_PART), nullable=False),
        sa.Column("generated", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("client_id", "service_code", "method", "path"),
    )
    op.create_table(
        "access_rights",
        _id(),
        _fk("client_id", "clients.id"),
        _fk("endpoint_id", "endpoints.id"),
        sa.Column("subject", sa.String(_ID_TEXT), nullable=False),
        _at("granted_at"),
        sa.UniqueConstraint("endpoint_id", "subject"),
    )
    op.create_index("ix_access_rights_client_id", "access_rights", ["client_id"])
    op.create_table(
        "local_groups",
        _id(),
        _fk("client_id", "clients.id"),
        sa.Column("code", sa.String(_PART), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _at("updated_at"),
        sa.UniqueConstraint("client_id", "code"),
    )
    op.create_table(
        "local_group_members",
        _id(),
        _fk("group_id", "local_groups.id"),
        sa.Column("member", sa.String(_ID_TEXT), nullable=False),
        _at("added_at"),
        sa.UniqueConstraint("group_id", "member"),
    )
    op.create_table(
        "token_keys",
        _id(),
        sa.Column("key_id", sa.String(_PART), nullable=False, unique=True),
        sa.Column("usage", _enum(_KEY_USAGES, "key_usage"), nullable=False),
        sa.Column("label", sa.String(_PART), nullable=True),
        sa.Column("member", sa.String(_ID_TEXT), nullable=True),
        _at("created_at"),
        sa.CheckConstraint(
            "(usage = 'sign' AND member IS NOT NULL) OR (usage = 'auth' AND member IS NULL)",
            name="sign_key_member",
        ),
    )
    op.create_table(
        "certificates",
        _id(),
        _fk("key_id", "token_keys.id"),
        sa.Column("cert_der", sa.LargeBinary(), nullable=False),
        sa.Column("cert_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("status", _enum(_CERTIFICATE_STATUSES, "certificate_status"), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _at("created_at"),
    )
    op.create_index("ix_certificates_key_id", "certificates", ["key_id"])
    op.create_table(
        "csrs",
        _id(),
        _fk("key_id", "token_keys.id"),
        sa.Column("member", sa.String(_ID_TEXT), nullable=True),
        sa.Column("subject_name", sa.Text(), nullable=False),
        sa.Column("csr_der", sa.LargeBinary(), nullable=False),
        _at("created_at"),
    )
    op.create_index("ix_csrs_key_id", "csrs", ["key_id"])


def downgrade() -> None:
    for table in (
        "csrs",
        "certificates",
        "token_keys",
        "local_group_members",
        "local_groups",
        "access_rights",
        "endpoints",
        "services",
        "service_descriptions",
        "is_certs",
        "server",
        "clients",
    ):
        op.drop_table(table)
