"""Initial schema: settings, members, security servers, global groups, trust services, signing keys and
management requests.

Revision ID: r0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_PART = 255
_ID_TEXT = 1300
_KEY_KINDS = ("internal", "external")
_REQUEST_TYPES = (
    "authCertReg",
    "clientReg",
    "clientDeletion",
    "authCertDeletion",
    "ownerChange",
    "addressChange",
    "clientDisable",
    "clientEnable",
    "clientRename",
    "maintenanceModeEnable",
    "maintenanceModeDisable",
)
_REQUEST_STATES = ("submitted", "approved", "rejected", "revoked")


def _enum(values: tuple[str, ...], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _fk(column: str, target: str, *, nullable: bool = False, cascade: bool = True) -> sa.Column[int]:
    return sa.Column(
        column,
        sa.Integer(),
        sa.ForeignKey(target, ondelete="CASCADE" if cascade else None),
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "registry_settings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("instance_identifier", sa.String(_PART), nullable=False),
        sa.Column("ocsp_freshness_seconds", sa.Integer(), nullable=False),
        sa.Column("timestamping_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("configuration_expiry_seconds", sa.Integer(), nullable=False),
        sa.Column("management_service_provider", sa.String(_ID_TEXT), nullable=True),
        sa.Column("management_service_address", sa.String(1024), nullable=True),
        sa.Column("management_service_cert", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint("id = 1", name="single_row"),
    )
    op.create_table(
        "member_classes",
        _id(),
        sa.Column("code", sa.String(_PART), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False),
    )
    op.create_table(
        "members",
        _id(),
        _fk("member_class_id", "member_classes.id", cascade=False),
        sa.Column("code", sa.String(_PART), nullable=False),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.UniqueConstraint("member_class_id", "code"),
    )
    op.create_table(
        "subsystems",
        _id(),
        _fk("member_id", "members.id"),
        sa.Column("code", sa.String(_PART), nullable=False),
        sa.Column("name", sa.String(1024), nullable=True),
        sa.UniqueConstraint("member_id", "code"),
    )
    op.create_table(
        "security_servers",
        _id(),
        _fk("owner_id", "members.id", cascade=False),
        sa.Column("server_code", sa.String(_PART), nullable=False),
        sa.Column("address", sa.String(1024), nullable=True),
        sa.Column("in_maintenance", sa.Boolean(), nullable=False),
        sa.Column("maintenance_message", sa.Text(), nullable=True),
        sa.UniqueConstraint("owner_id", "server_code"),
    )
    op.create_table(
        "auth_certs",
        _id(),
        _fk("server_id", "security_servers.id"),
        sa.Column("cert_der", sa.LargeBinary(), nullable=False),
        sa.Column("cert_hash", sa.LargeBinary(32), nullable=False, unique=True),
    )
    op.create_table(
        "security_server_clients",
        _id(),
        _fk("server_id", "security_servers.id"),
        _fk("member_id", "members.id"),
        _fk("subsystem_id", "subsystems.id", nullable=True),
        sa.UniqueConstraint("server_id", "subsystem_id"),
    )
    op.create_index(
        "uq_security_server_clients_member",
        "security_server_clients",
        ["server_id", "member_id"],
        unique=True,
        sqlite_where=sa.text("subsystem_id IS NULL"),
        postgresql_where=sa.text("subsystem_id IS NULL"),
    )
    op.create_table(
        "global_groups",
        _id(),
        sa.Column("code", sa.String(_PART), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False),
    )
    op.create_table(
        "global_group_members",
        _id(),
        _fk("group_id", "global_groups.id"),
        _fk("member_id", "members.id"),
        _fk("subsystem_id", "subsystems.id", nullable=True),
        sa.UniqueConstraint("group_id", "subsystem_id"),
    )
    op.create_index(
        "uq_global_group_members_member",
        "global_group_members",
        ["group_id", "member_id"],
        unique=True,
        sqlite_where=sa.text("subsystem_id IS NULL"),
        postgresql_where=sa.text("subsystem_id IS NULL"),
    )
    op.create_table(
        "approved_cas",
        _id(),
        sa.Column("name", sa.String(_PART), nullable=False, unique=True),
        sa.Column("certificate_profile_info", sa.String(1024), nullable=False),
        sa.Column("authentication_only", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "ca_certs",
        _id(),
        _fk("ca_id", "approved_cas.id"),
        sa.Column("is_top", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("cert_der", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "ocsp_responders",
        _id(),
        _fk("ca_cert_id", "ca_certs.id"),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("cert_der", sa.LargeBinary(), nullable=True),
    )
    op.create_table(
        "approved_tsas",
        _id(),
        sa.Column("name", sa.String(_PART), nullable=False, unique=True),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("cert_der", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "signing_keys",
        _id(),
        sa.Column("kind", _enum(_KEY_KINDS, "key_kind"), nullable=False),
        sa.Column("key_id", sa.String(_PART), nullable=False, unique=True),
        sa.Column("private_key_pem", sa.Text(), nullable=False),
        sa.Column("cert_der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_index(
        "uq_signing_keys_active_kind",
        "signing_keys",
        ["kind"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "management_requests",
        _id(),
        sa.Column("type", _enum(_REQUEST_TYPES, "request_type"), nullable=False),
        sa.Column("state", _enum(_REQUEST_STATES, "request_state"), nullable=False),
        sa.Column("security_server", sa.String(_ID_TEXT), nullable=False),
        sa.Column("client", sa.String(_ID_TEXT), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_management_requests_state", "management_requests", ["state"])
    op.create_table(
        "management_request_events",
        _id(),
        _fk("request_id", "management_requests.id"),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_state", _enum(_REQUEST_STATES, "request_event_from"), nullable=True),
        sa.Column("to_state", _enum(_REQUEST_STATES, "request_event_to"), nullable=False),
        sa.Column("user", sa.String(_PART), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
    )
    op.create_index("ix_management_request_events_request_id", "management_request_events", ["request_id"])


def downgrade() -> None:
    for table in (
        "management_request_events",
        "management_requests",
        "signing_keys",
        "approved_tsas",
        "ocsp_responders",
        "ca_certs",
        "approved_cas",
        "global_group_members",
        "global_groups",
        "security_server_clients",
        "auth_certs",
        "security_servers",
        "subsystems",
        "members",
        "member_classes",
        "registry_settings",
    ):
        op.drop_table(table)
