"""ORM models of the registry database (SQLAlchemy 2, typed ``Mapped[...]`` columns).

The schema itself is created by the alembic migrations in :mod:`registry.migrations`; these classes describe
it for queries, and a test checks that the migrated schema and these models agree.

Example::

    >>> from sqlalchemy import select
    >>> from registry.db.models import MemberRow, RequestState
    >>> query = select(MemberRow.code).where(MemberRow.name == "Ministry")
    >>> MemberRow.__tablename__, RequestState.SUBMITTED.value
    ('members', 'submitted')

One instance per database: members carry no instance column, the instance identifier is the single
``registry_settings`` row. Identifier parts are ``varchar(255)`` as in X-Road; identifiers that refer to
members of any instance (management requests) are kept in their string form (``format_id``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from registry.globalconf_gen import KeyKind
from xroad_mn.database import NAMING_CONVENTION, UtcDateTime, column_types, str_enum_column
from xroad_mn.identifiers import MAX_ID_TEXT_CHARS, MAX_PART_CHARS
from xroad_mn.management import ManagementRequestType

__all__ = [
    "ID_PART_LENGTH",
    "AnchorSourcesRow",
    "ApprovedCaRow",
    "ApprovedTsaRow",
    "AuthCertRow",
    "Base",
    "CaCertRow",
    "GlobalGroupMemberRow",
    "GlobalGroupRow",
    "ManagementRequestEventRow",
    "ManagementRequestRow",
    "MemberClassRow",
    "MemberRow",
    "OcspResponderRow",
    "RequestState",
    "SecurityServerClientRow",
    "SecurityServerRow",
    "SettingsRow",
    "SigningKeyRow",
    "SubsystemRow",
    "UtcDateTime",
]

ID_PART_LENGTH: Final = MAX_PART_CHARS
"""Longest identifier part (X-Road's ``varchar(255)``)."""
ID_TEXT_LENGTH: Final = MAX_ID_TEXT_CHARS
"""Longest identifier in string form: five parts, separators and the type prefix."""
SETTINGS_ROW_ID: Final = 1


class RequestState(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = column_types({dict[str, object]: JSON()})


class SettingsRow(Base):
    """The registry's single settings row: instance identifier and global settings."""

    __tablename__ = "registry_settings"
    __table_args__ = (CheckConstraint(f"id = {SETTINGS_ROW_ID}", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    instance_identifier: Mapped[str]
    ocsp_freshness_seconds: Mapped[int] = mapped_column(default=3600)
    timestamping_interval_seconds: Mapped[int] = mapped_column(default=60)
    configuration_expiry_seconds: Mapped[int] = mapped_column(default=600)
    management_service_provider: Mapped[str | None] = mapped_column(String(ID_TEXT_LENGTH))
    """The management service provider (a client identifier in ``format_id`` form)."""
    management_service_address: Mapped[str | None] = mapped_column(String(1024))
    management_service_cert: Mapped[bytes | None]


class MemberClassRow(Base):
    __tablename__ = "member_classes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(unique=True)
    description: Mapped[str] = mapped_column(Text)


class MemberRow(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("member_class_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_class_id: Mapped[int] = mapped_column(ForeignKey("member_classes.id"))
    code: Mapped[str]
    name: Mapped[str] = mapped_column(String(1024))


class SubsystemRow(Base):
    __tablename__ = "subsystems"
    __table_args__ = (UniqueConstraint("member_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    code: Mapped[str]
    name: Mapped[str | None] = mapped_column(String(1024))


class SecurityServerRow(Base):
    __tablename__ = "security_servers"
    __table_args__ = (UniqueConstraint("owner_id", "server_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    server_code: Mapped[str]
    address: Mapped[str | None] = mapped_column(String(1024))
    in_maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    maintenance_message: Mapped[str | None] = mapped_column(Text)


class AuthCertRow(Base):
    """An authentication certificate of a security server; its SHA-256 is unique across the instance."""

    __tablename__ = "auth_certs"

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("security_servers.id", ondelete="CASCADE"))
    cert_der: Mapped[bytes]
    cert_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)


class SecurityServerClientRow(Base):
    """A client registered on a security server: a member (``subsystem_id`` NULL) or one of its subsystems.

    ``enabled`` is false while an approved ``clientDisable`` holds: the client stays registered (it cannot be
    registered again, ``clientEnable`` turns it back on) but global configuration leaves it out of the
    server's clients, as X-Road's central server does (``server_clients.enabled``).
    """

    __tablename__ = "security_server_clients"
    __table_args__ = (
        Index(
            "uq_security_server_clients_member",
            "server_id",
            "member_id",
            unique=True,
            sqlite_where=text("subsystem_id IS NULL"),
            postgresql_where=text("subsystem_id IS NULL"),
        ),
        UniqueConstraint("server_id", "subsystem_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("security_servers.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    subsystem_id: Mapped[int | None] = mapped_column(ForeignKey("subsystems.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class GlobalGroupRow(Base):
    __tablename__ = "global_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(unique=True)
    description: Mapped[str] = mapped_column(Text)


class GlobalGroupMemberRow(Base):
    """A member of a global group: a member (``subsystem_id`` NULL) or a subsystem."""

    __tablename__ = "global_group_members"
    __table_args__ = (
        Index(
            "uq_global_group_members_member",
            "group_id",
            "member_id",
            unique=True,
            sqlite_where=text("subsystem_id IS NULL"),
            postgresql_where=text("subsystem_id IS NULL"),
        ),
        UniqueConstraint("group_id", "subsystem_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("global_groups.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    subsystem_id: Mapped[int | None] = mapped_column(ForeignKey("subsystems.id", ondelete="CASCADE"))


class ApprovedCaRow(Base):
    __tablename__ = "approved_cas"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    certificate_profile_info: Mapped[str] = mapped_column(String(1024))
    authentication_only: Mapped[bool] = mapped_column(Boolean, default=False)


class CaCertRow(Base):
    """A certificate of an approved CA: the top CA (``is_top``) or an intermediate, in ``position`` order."""

    __tablename__ = "ca_certs"

    id: Mapped[int] = mapped_column(primary_key=True)
    ca_id: Mapped[int] = mapped_column(ForeignKey("approved_cas.id", ondelete="CASCADE"))
    is_top: Mapped[bool] = mapped_column(Boolean)
    position: Mapped[int]
    cert_der: Mapped[bytes]


class OcspResponderRow(Base):
    __tablename__ = "ocsp_responders"

    id: Mapped[int] = mapped_column(primary_key=True)
    ca_cert_id: Mapped[int] = mapped_column(ForeignKey("ca_certs.id", ondelete="CASCADE"))
    position: Mapped[int]
    url: Mapped[str] = mapped_column(String(1024))
    cert_der: Mapped[bytes | None]


class ApprovedTsaRow(Base):
    __tablename__ = "approved_tsas"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    url: Mapped[str] = mapped_column(String(1024))
    cert_der: Mapped[bytes]


class SigningKeyRow(Base):
    """A configuration signing key (its token key id and certificate); at most one active key per kind."""

    __tablename__ = "signing_keys"
    __table_args__ = (
        Index(
            "uq_signing_keys_active_kind",
            "kind",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[KeyKind] = mapped_column(str_enum_column(KeyKind, "key_kind"))
    key_id: Mapped[str] = mapped_column(unique=True)
    token_key_id: Mapped[str] = mapped_column(String(255))
    """The key in the registry's token (``[token]``): the private key is never in the database."""
    cert_der: Mapped[bytes]
    created_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(Boolean, default=False)


class AnchorSourcesRow(Base):
    """What the anchor of one kind (internal, external) was last exported from, and since when.

    ``sources_sha256`` digests the anchor's content except ``generatedAt`` (instance, sources and their
    verification certificates); while it stays the same, the anchor keeps its ``generated_at`` and so its
    bytes and hash, as X-Road regenerates an anchor only when its sources change.
    """

    __tablename__ = "anchor_sources"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    sources_sha256: Mapped[str] = mapped_column(String(64))
    generated_at: Mapped[datetime]


class ManagementRequestRow(Base):
    __tablename__ = "management_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[ManagementRequestType] = mapped_column(
        str_enum_column(ManagementRequestType, "request_type")
    )
    state: Mapped[RequestState] = mapped_column(str_enum_column(RequestState, "request_state"), index=True)
    security_server: Mapped[str] = mapped_column(String(ID_TEXT_LENGTH))
    client: Mapped[str | None] = mapped_column(String(ID_TEXT_LENGTH))
    payload: Mapped[dict[str, object]]
    """The request's fields beyond type, server and client (:mod:`registry.db.request_rows`)."""
    raw: Mapped[bytes | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ManagementRequestEventRow(Base):
    """One state change of a management request (its submission included)."""

    __tablename__ = "management_request_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("management_requests.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    from_state: Mapped[RequestState | None] = mapped_column(
        str_enum_column(RequestState, "request_event_from")
    )
    to_state: Mapped[RequestState] = mapped_column(str_enum_column(RequestState, "request_event_to"))
    user: Mapped[str | None]
    comment: Mapped[str | None] = mapped_column(Text)
