"""ORM models of the node database: what X-Road's ``serverconf`` holds, plus the key and certificate records.

The schema is created by the alembic migrations in :mod:`security_server.migrations`; these classes describe
it for queries, and a test checks that the migrated schema and these models agree.

Example::

    >>> from sqlalchemy import select
    >>> from security_server.db.models import ClientRow, ConnectionType
    >>> query = select(ClientRow.id).where(ClientRow.connection_type == ConnectionType.SSLAUTH)
    >>> ClientRow.__tablename__, ConnectionType.SSLAUTH.value
    ('clients', 'SSLAUTH')

Identifier parts are ``varchar(255)`` as in X-Road. Identifiers that name parties outside this node
(access right subjects, local group members, the member of a signing key) are kept in their string form
(:func:`xroad_mn.identifiers.format_id`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from sqlalchemy import (
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
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from xroad_mn.database import NAMING_CONVENTION, column_types, str_enum_column
from xroad_mn.identifiers import MAX_ID_TEXT_CHARS, MAX_PART_CHARS
from xroad_mn.tokens import KeyUsage

__all__ = [
    "ID_PART_LENGTH",
    "ID_TEXT_LENGTH",
    "METHOD_LENGTH",
    "SERVER_ROW_ID",
    "URL_LENGTH",
    "AccessRightRow",
    "Base",
    "CertificateRow",
    "CertificateStatus",
    "ClientRow",
    "ClientState",
    "ConnectionType",
    "CsrRow",
    "DescriptionType",
    "EndpointRow",
    "IsCertRow",
    "KeyUsage",
    "LocalGroupMemberRow",
    "LocalGroupRow",
    "ServerRow",
    "ServiceDescriptionRow",
    "ServiceRow",
    "TokenKeyRow",
]

ID_PART_LENGTH: Final = MAX_PART_CHARS
"""Longest identifier part (X-Road's ``varchar(255)``)."""
ID_TEXT_LENGTH: Final = MAX_ID_TEXT_CHARS
"""Longest identifier in string form: five parts, separators and the type prefix."""
URL_LENGTH: Final = 2048
METHOD_LENGTH: Final = 16
SERVER_ROW_ID: Final = 1


class ConnectionType(StrEnum):
    """How an information system of a client connects to the client proxy (X-Road's ``isAuthentication``)."""

    NOSSL = "NOSSL"
    """Plain HTTP."""
    SSLNOAUTH = "SSLNOAUTH"
    """HTTPS without a client certificate."""
    SSLAUTH = "SSLAUTH"
    """HTTPS with one of the client's information system certificates (X-Road's default)."""


class ClientState(StrEnum):
    """Registration state of a client on this node (X-Road's ``clientStatus``)."""

    SAVED = "saved"
    REGISTRATION_IN_PROGRESS = "registration_in_progress"
    REGISTERED = "registered"
    DELETION_IN_PROGRESS = "deletion_in_progress"
    GLOBAL_ERROR = "global_error"
    DISABLING_IN_PROGRESS = "disabling_in_progress"
    DISABLED = "disabled"
    ENABLING_IN_PROGRESS = "enabling_in_progress"


class DescriptionType(StrEnum):
    """Kind of a service description (X-Road's ``DescriptionType``)."""

    WSDL = "WSDL"
    OPENAPI3 = "OPENAPI3"
    REST = "REST"


class CertificateStatus(StrEnum):
    """Registration state of a certificate of the node (X-Road's ``CertificateInfo`` status)."""

    SAVED = "saved"
    REGISTRATION_IN_PROGRESS = "registration_in_progress"
    REGISTERED = "registered"
    DELETION_IN_PROGRESS = "deletion_in_progress"
    GLOBAL_ERROR = "global_error"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = column_types()


def _member_unique(table: str, *columns: str) -> Index:
    """Unique over ``columns`` for member rows (``subsystem_code`` NULL): NULLs never collide in a unique
    constraint, so members need a partial index of their own."""
    return Index(
        f"uq_{table}_member",
        *columns,
        unique=True,
        sqlite_where=text("subsystem_code IS NULL"),
        postgresql_where=text("subsystem_code IS NULL"),
    )


class ClientRow(Base):
    """A client hosted by this node: a member (``subsystem_code`` NULL) or a subsystem."""

    __tablename__ = "clients"
    __table_args__ = (
        UniqueConstraint("instance", "member_class", "member_code", "subsystem_code"),
        _member_unique("clients", "instance", "member_class", "member_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance: Mapped[str]
    member_class: Mapped[str]
    member_code: Mapped[str]
    subsystem_code: Mapped[str | None]
    connection_type: Mapped[ConnectionType] = mapped_column(
        str_enum_column(ConnectionType, "connection_type")
    )
    state: Mapped[ClientState] = mapped_column(str_enum_column(ClientState, "client_state"))


class ServerRow(Base):
    """The node's identity: its owner (a member client) and server code, and its address. One row."""

    __tablename__ = "server"
    __table_args__ = (CheckConstraint(f"id = {SERVER_ROW_ID}", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    server_code: Mapped[str]
    address: Mapped[str | None] = mapped_column(String(URL_LENGTH))


class IsCertRow(Base):
    """A TLS certificate of an information system of a client (X-Road's ``certificate`` of a client)."""

    __tablename__ = "is_certs"
    __table_args__ = (UniqueConstraint("client_id", "cert_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    cert_der: Mapped[bytes]
    cert_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class ServiceDescriptionRow(Base):
    """A WSDL (by URL), an OpenAPI 3 document (by URL, or uploaded: ``document``) or a REST base URL."""

    __tablename__ = "service_descriptions"
    __table_args__ = (
        UniqueConstraint("client_id", "url"),
        CheckConstraint("url IS NOT NULL OR document IS NOT NULL", name="has_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    type: Mapped[DescriptionType] = mapped_column(str_enum_column(DescriptionType, "description_type"))
    url: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    document: Mapped[bytes | None]
    """The OpenAPI document as uploaded (a description added from a file)."""
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_notice: Mapped[str | None] = mapped_column(Text)
    refreshed_at: Mapped[datetime]


class ServiceRow(Base):
    """A service of a description. ``client_id`` repeats the description's client so that a client's service
    codes are unique across its descriptions."""

    __tablename__ = "services"
    __table_args__ = (
        UniqueConstraint("client_id", "service_code", "service_version"),
        Index(
            "uq_services_unversioned",
            "client_id",
            "service_code",
            unique=True,
            sqlite_where=text("service_version IS NULL"),
            postgresql_where=text("service_version IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    description_id: Mapped[int] = mapped_column(
        ForeignKey("service_descriptions.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    service_code: Mapped[str]
    service_version: Mapped[str | None]
    title: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    timeout_seconds: Mapped[int]
    ssl_authentication: Mapped[bool] = mapped_column(Boolean)
    enabled: Mapped[bool] = mapped_column(Boolean)


class EndpointRow(Base):
    """An endpoint of a client's service: a method (or ``*``) and a path pattern (``*``/``**`` globs).

    Every service code has a generated base endpoint ``* **``: an access right to it is a right to the
    whole service (and the only right a SOAP request can use), as in X-Road.
    """

    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("client_id", "service_code", "method", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    service_code: Mapped[str]
    method: Mapped[str] = mapped_column(String(METHOD_LENGTH))
    path: Mapped[str]
    generated: Mapped[bool] = mapped_column(Boolean)


class AccessRightRow(Base):
    """A subject (``MEMBER:``, ``SUBSYSTEM:``, ``GLOBALGROUP:`` or ``LOCALGROUP:`` in string form) may call
    an endpoint of the client that owns it."""

    __tablename__ = "access_rights"
    __table_args__ = (UniqueConstraint("endpoint_id", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(ID_TEXT_LENGTH))
    granted_at: Mapped[datetime]


class LocalGroupRow(Base):
    __tablename__ = "local_groups"
    __table_args__ = (UniqueConstraint("client_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    code: Mapped[str]
    description: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class LocalGroupMemberRow(Base):
    """A member of a local group: a member or subsystem of any instance, in string form."""

    __tablename__ = "local_group_members"
    __table_args__ = (UniqueConstraint("group_id", "member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("local_groups.id", ondelete="CASCADE"))
    member: Mapped[str] = mapped_column(String(ID_TEXT_LENGTH))
    added_at: Mapped[datetime]


class TokenKeyRow(Base):
    """A key of the node's token: its id in the token, usage, label and, for a signing key, its member."""

    __tablename__ = "token_keys"
    __table_args__ = (
        CheckConstraint(
            "(usage = 'sign' AND member IS NOT NULL) OR (usage = 'auth' AND member IS NULL)",
            name="sign_key_member",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(unique=True)
    usage: Mapped[KeyUsage] = mapped_column(str_enum_column(KeyUsage, "key_usage"))
    label: Mapped[str | None]
    member: Mapped[str | None] = mapped_column(String(ID_TEXT_LENGTH))
    created_at: Mapped[datetime]


class CertificateRow(Base):
    """A certificate of one of the node's keys; its SHA-256 is unique on the node."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("token_keys.id", ondelete="CASCADE"), index=True)
    cert_der: Mapped[bytes]
    cert_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    status: Mapped[CertificateStatus] = mapped_column(
        str_enum_column(CertificateStatus, "certificate_status")
    )
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]


class CsrRow(Base):
    """A certificate signing request made for one of the node's keys."""

    __tablename__ = "csrs"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("token_keys.id", ondelete="CASCADE"), index=True)
    member: Mapped[str | None] = mapped_column(String(ID_TEXT_LENGTH))
    subject_name: Mapped[str] = mapped_column(Text)
    csr_der: Mapped[bytes]
    created_at: Mapped[datetime]
