"""ORM models of the message log: X-Road's ``logrecord`` table, split by its discriminator.

X-Road keeps message records (discriminator ``m``) and time-stamp records (``t``) in one ``logrecord`` table;
here they are :class:`MessageRecordRow` (``message_records``), :class:`TimestampRecordRow`
(``timestamp_records``) and, since a SOAP message may carry several attachments, the attachments of a
message record in :class:`MessageAttachmentRow` (``message_attachments``). The tables belong to the node's
metadata and are created by the migration ``n0002_messagelog``; ``n0003_search`` adds the searched
columns (the data subject only as a keyed hash) and their indexes; ``n0004_shared_signatures`` keeps a batch
signature shared by several records of one write once, in :class:`MessageSignatureRow`; ``n0006_failures``
the outcomes of exchanges that failed after their request was logged (:class:`ExchangeFailureRow`).

Example::

    >>> from sqlalchemy import select
    >>> query = select(MessageRecordRow.id).where(MessageRecordRow.timestamp_id.is_(None))
    >>> MessageRecordRow.__tablename__, TimestampRecordRow.__tablename__
    ('message_records', 'timestamp_records')
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from security_server.db.models import Base

__all__ = [
    "FAULT_STRING_LENGTH",
    "RECORD_ID",
    "SEARCHED_VALUE_LENGTH",
    "SIGNATURE_HASH_LENGTH",
    "SUBJECT_HASH_LENGTH",
    "ExchangeFailureRow",
    "MessageAttachmentRow",
    "MessageRecordRow",
    "MessageSignatureRow",
    "TimestampRecordRow",
]

RECORD_ID: Final = BigInteger().with_variant(Integer(), "sqlite")
"""Record ids are ``bigint`` as in X-Road (SQLite's auto-increment needs its ``INTEGER`` primary key)."""
SIGNATURE_HASH_LENGTH: Final = 128
"""Room for a base64 SHA-512 digest (88 characters) of a signature document."""
X_REQUEST_ID_LENGTH: Final = 255
SUBJECT_HASH_LENGTH: Final = 64
"""Hex HMAC-SHA256 of a data subject."""
SEARCHED_VALUE_LENGTH: Final = 255
"""Room for a user id or an issue; longer values are kept (and searched) cut to this length."""
FAULT_STRING_LENGTH: Final = 1000
"""A failed exchange's fault string is kept cut to this many characters."""
_OPTIONAL_SEARCHED: Final = ("subject_hash", "user_id", "issue", "status")


def _searched_index(column: str) -> Index:
    """The index of an optional searched column: only records that have it, ordered by id."""
    return Index(
        f"ix_message_records_{column}",
        column,
        "id",
        sqlite_where=text(f"{column} IS NOT NULL"),
        postgresql_where=text(f"{column} IS NOT NULL"),
    )


class TimestampRecordRow(Base):
    """A time-stamp (X-Road's ``t`` record): the token and, for a batch, ``ts-hashchainresult.xml``."""

    __tablename__ = "timestamp_records"

    id: Mapped[int] = mapped_column(RECORD_ID, primary_key=True)
    time: Mapped[datetime] = mapped_column(index=True)
    """The token's ``genTime``."""
    token: Mapped[bytes]
    """The RFC 3161 token (DER), the TSA certificate embedded."""
    hash_chain_result: Mapped[bytes | None]
    """Batch time-stamps: the exact bytes of ``ts-hashchainresult.xml`` the token covers."""
    archived: Mapped[bool] = mapped_column(Boolean, index=True)


class MessageRecordRow(Base):
    """A logged request or response (X-Road's ``m`` record) with its signature and time-stamp data."""

    __tablename__ = "message_records"
    __table_args__ = (
        Index("ix_message_records_client", "instance", "member_class", "member_code", "subsystem_code", "id"),
        Index("ix_message_records_service", "service", "id"),
        *(_searched_index(column) for column in _OPTIONAL_SEARCHED),
        Index(
            "ix_message_records_unstamped",
            "id",
            sqlite_where=text("timestamp_id IS NULL"),
            postgresql_where=text("timestamp_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(RECORD_ID, primary_key=True)
    time: Mapped[datetime] = mapped_column(index=True)
    query_id: Mapped[str] = mapped_column(Text, index=True)
    """SOAP ``id`` or REST ``X-Road-Id``."""
    x_request_id: Mapped[str] = mapped_column(String(X_REQUEST_ID_LENGTH), index=True)
    """The exchange's ``x-road-request-id``: pairs a request with its response."""
    instance: Mapped[str]
    member_class: Mapped[str]
    member_code: Mapped[str]
    subsystem_code: Mapped[str | None]
    """The exchange's client (a member when NULL), as X-Road groups and looks up records."""
    service: Mapped[str] = mapped_column(Text)
    """The service in string form (:func:`~xroad_mn.identifiers.format_id`)."""
    response: Mapped[bool] = mapped_column(Boolean)
    rest: Mapped[bool] = mapped_column(Boolean)
    message: Mapped[bytes]
    """The SOAP message or the REST header part, exactly as signed (unless body logging is off)."""
    signature: Mapped[bytes]
    """The XAdES document; a single time-stamp is embedded into it when it comes. Empty when the document
    is shared with other records: it is then the :class:`MessageSignatureRow` of ``signature_hash``."""
    signature_hash: Mapped[str] = mapped_column(String(SIGNATURE_HASH_LENGTH), index=True)
    """base64 SHA-512 of ``signature`` (X-Road's ``signaturehash``)."""
    hash_chain_result: Mapped[bytes | None]
    """Batch signatures: ``sig-hashchainresult.xml`` (NULL when the signature is shared: it is kept with
    the shared document)."""
    hash_chain: Mapped[bytes | None]
    """Batch signatures: this message's ``sig-hashchain.xml``."""
    timestamp_id: Mapped[int | None] = mapped_column(
        RECORD_ID, ForeignKey("timestamp_records.id"), index=True
    )
    """The time-stamp covering this record; NULL while it waits for the timestamper."""
    timestamp_hash_chain: Mapped[bytes | None]
    """Batch time-stamps: this record's ``ts-hashchain.xml``."""
    archived: Mapped[bool] = mapped_column(Boolean, index=True)
    subject_hash: Mapped[str | None] = mapped_column(String(SUBJECT_HASH_LENGTH))
    """HMAC-SHA256 (hex) of the exchange's data subject under the node's subject key; never the subject."""
    user_id: Mapped[str | None] = mapped_column(String(SEARCHED_VALUE_LENGTH))
    """The request's ``userId`` / ``X-Road-UserId``."""
    issue: Mapped[str | None] = mapped_column(String(SEARCHED_VALUE_LENGTH))
    """The request's ``issue`` / ``X-Road-Issue``."""
    status: Mapped[int | None]
    """A REST response's HTTP status."""


class MessageAttachmentRow(Base):
    """An attachment of a message record: SOAP attachment ``number`` (from 1), or the REST body (1)."""

    __tablename__ = "message_attachments"

    record_id: Mapped[int] = mapped_column(
        RECORD_ID, ForeignKey("message_records.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class MessageSignatureRow(Base):
    """A batch signature document shared by several message records (the records of one batch are logged
    together), kept once instead of once per record: a signature with its certificates and OCSP responses
    is ~9 KiB, most of a record. The records name it by ``signature_hash`` and store an empty
    ``signature``; the row goes when no record refers to it any more."""

    __tablename__ = "message_signatures"

    hash: Mapped[str] = mapped_column(String(SIGNATURE_HASH_LENGTH), primary_key=True)
    """X-Road's ``signaturehash`` of ``document``."""
    document: Mapped[bytes]
    hash_chain_result: Mapped[bytes | None]
    """``sig-hashchainresult.xml`` of the batch."""


class ExchangeFailureRow(Base):
    """An exchange that failed after its request was logged: the request's record, the X-Road fault code and
    fault string, and when it failed. Our addition to X-Road's tables: X-Road keeps such a request alone.

    The row outlives its request's record (neither archiving nor cleaning deletes it), so that ``node log
    verify`` knows, for a request found only in an archive, that its exchange failed; archives keep X-Road's
    layout. A row is small and written only when an exchange fails."""

    __tablename__ = "exchange_failures"

    id: Mapped[int] = mapped_column(RECORD_ID, primary_key=True)
    request_record_id: Mapped[int] = mapped_column(RECORD_ID, index=True)
    """The request's ``message_records.id`` (no foreign key: the cleaner deletes the record, not this)."""
    query_id: Mapped[str] = mapped_column(Text, index=True)
    x_request_id: Mapped[str] = mapped_column(String(X_REQUEST_ID_LENGTH))
    time: Mapped[datetime]
    """When the exchange failed."""
    code: Mapped[str] = mapped_column(String(SEARCHED_VALUE_LENGTH))
    """The X-Road fault code the exchange failed with (``server.serverproxy.service_failed...``)."""
    fault_string: Mapped[str] = mapped_column(Text)
