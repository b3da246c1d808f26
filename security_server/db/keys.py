"""The node's records of its token: keys (by their id in the token), their certificates and CSRs.

The keys themselves never enter the database; the token holds them. Example::

    >>> async def enrol(store: KeyStore, member: MemberId, csr_der: bytes, cert: x509.Certificate) -> None:
    ...     await store.add_key("5f1c0a", KeyUsage.SIGNING, label="sign-2026", member=member)
    ...     await store.add_csr("5f1c0a", csr_der, subject_name="C=MN, O=GOV, CN=5012345", member=member)
    ...     await store.add_certificate("5f1c0a", cert, status=CertificateStatus.REGISTERED, active=True)
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from security_server.db.base import StoreBase, parse_member
from security_server.db.checks import check_text, conflict, invalid, not_found
from security_server.db.models import (
    ID_PART_LENGTH,
    CertificateRow,
    CertificateStatus,
    CsrRow,
    KeyUsage,
    TokenKeyRow,
)
from security_server.db.records import Certificate, Csr, TokenKey
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import MemberId, format_id

__all__ = ["KeyStore"]


def _key(row: TokenKeyRow) -> TokenKey:
    return TokenKey(row.key_id, row.usage, row.label, parse_member(row.member), row.created_at)


def _certificate(row: CertificateRow, key_id: str) -> Certificate:
    return Certificate(
        key_id=key_id,
        certificate=x509.load_der_x509_certificate(row.cert_der),
        sha256=row.cert_hash,
        status=row.status,
        active=row.active,
        created_at=row.created_at,
    )


def _csr(row: CsrRow, key_id: str) -> Csr:
    return Csr(row.id, key_id, parse_member(row.member), row.subject_name, row.csr_der, row.created_at)


class KeyStore(StoreBase):
    """Token keys, certificates and certificate signing requests."""

    # -- keys ---------------------------------------------------------------------------------------------

    async def add_key(
        self, key_id: str, usage: KeyUsage, *, label: str | None = None, member: MemberId | None = None
    ) -> TokenKey:
        """Record a key of the token. A signing key signs for ``member``; the authentication key has none."""
        check_text("key id", key_id, limit=ID_PART_LENGTH)
        if label is not None:
            check_text("key label", label, limit=ID_PART_LENGTH)
        if (usage is KeyUsage.SIGNING) != (member is not None):
            raise invalid("a signing key names its member; an authentication key names none")
        if member is not None and not isinstance(member, MemberId):
            raise invalid("a signing key signs for a member, not a subsystem")
        async with self._tx() as s:
            if (await s.scalars(select(TokenKeyRow.id).where(TokenKeyRow.key_id == key_id))).first():
                raise conflict(f"key {key_id!r} is already recorded", key_id=key_id)
            row = TokenKeyRow(
                key_id=key_id,
                usage=usage,
                label=label,
                member=format_id(member) if member is not None else None,
                created_at=self._clock(),
            )
            s.add(row)
            await s.flush()
            return _key(row)

    async def get_key(self, key_id: str) -> TokenKey:
        async with self._tx() as s:
            return _key(await self._key_row(s, key_id))

    async def list_keys(self, usage: KeyUsage | None = None) -> tuple[TokenKey, ...]:
        query = select(TokenKeyRow).order_by(TokenKeyRow.usage, TokenKeyRow.created_at, TokenKeyRow.id)
        if usage is not None:
            query = query.where(TokenKeyRow.usage == usage)
        async with self._tx() as s:
            return tuple(_key(r) for r in await s.scalars(query))

    async def set_key_label(self, key_id: str, label: str | None) -> TokenKey:
        if label is not None:
            check_text("key label", label, limit=ID_PART_LENGTH)
        async with self._tx() as s:
            row = await self._key_row(s, key_id)
            row.label = label
            return _key(row)

    async def delete_key(self, key_id: str) -> None:
        """Forget a key with its certificates and CSRs (deleting it from the token is the token's job)."""
        async with self._tx() as s:
            await s.delete(await self._key_row(s, key_id))

    # -- certificates -------------------------------------------------------------------------------------

    async def add_certificate(
        self,
        key_id: str,
        cert: x509.Certificate,
        *,
        status: CertificateStatus = CertificateStatus.SAVED,
        active: bool = False,
    ) -> Certificate:
        """Record a certificate of a key (409 when the node already has it)."""
        der = cert.public_bytes(Encoding.DER)
        digest = hashlib.sha256(der).digest()
        async with self._tx() as s:
            key = await self._key_row(s, key_id)
            if (await s.scalars(select(CertificateRow.id).where(CertificateRow.cert_hash == digest))).first():
                raise conflict("the certificate is already recorded", sha256=digest.hex())
            row = CertificateRow(
                key_id=key.id,
                cert_der=der,
                cert_hash=digest,
                status=status,
                active=active,
                created_at=self._clock(),
            )
            s.add(row)
            await s.flush()
            return _certificate(row, key_id)

    async def get_certificate(self, sha256: bytes) -> Certificate:
        async with self._tx() as s:
            row, key_id = await self._certificate_row(s, sha256)
            return _certificate(row, key_id)

    async def list_certificates(self, key_id: str | None = None) -> tuple[Certificate, ...]:
        query = (
            select(CertificateRow, TokenKeyRow.key_id)
            .join(TokenKeyRow, CertificateRow.key_id == TokenKeyRow.id)
            .order_by(TokenKeyRow.key_id, CertificateRow.created_at, CertificateRow.id)
        )
        if key_id is not None:
            query = query.where(TokenKeyRow.key_id == key_id)
        async with self._tx() as s:
            return tuple(_certificate(r, k) for r, k in (await s.execute(query)))

    async def set_certificate_status(self, sha256: bytes, status: CertificateStatus) -> Certificate:
        async with self._tx() as s:
            row, key_id = await self._certificate_row(s, sha256)
            row.status = status
            return _certificate(row, key_id)

    async def set_certificate_active(self, sha256: bytes, active: bool) -> Certificate:
        async with self._tx() as s:
            row, key_id = await self._certificate_row(s, sha256)
            row.active = active
            return _certificate(row, key_id)

    async def delete_certificate(self, sha256: bytes) -> None:
        async with self._tx() as s:
            row, _ = await self._certificate_row(s, sha256)
            await s.delete(row)

    # -- certificate signing requests ---------------------------------------------------------------------

    async def add_csr(
        self, key_id: str, der: bytes, *, subject_name: str, member: MemberId | None = None
    ) -> Csr:
        """Record a CSR made for a key (``member`` for a signing key's CSR); ``der`` must be a CSR."""
        try:
            x509.load_der_x509_csr(der)
        except ValueError as e:
            raise XRoadError(
                FaultCode.INVALID_CSR, f"not a DER certificate request: {e}", kind=ErrorKind.BAD_INPUT
            ) from e
        check_text("subject name", subject_name)
        async with self._tx() as s:
            key = await self._key_row(s, key_id)
            if (key.usage is KeyUsage.SIGNING) != (member is not None):
                raise invalid("a signing key's CSR names its member; an authentication key's names none")
            row = CsrRow(
                key_id=key.id,
                member=format_id(member) if member is not None else None,
                subject_name=subject_name,
                csr_der=der,
                created_at=self._clock(),
            )
            s.add(row)
            await s.flush()
            return _csr(row, key_id)

    async def list_csrs(self, key_id: str | None = None) -> tuple[Csr, ...]:
        query = (
            select(CsrRow, TokenKeyRow.key_id)
            .join(TokenKeyRow, CsrRow.key_id == TokenKeyRow.id)
            .order_by(CsrRow.id)
        )
        if key_id is not None:
            query = query.where(TokenKeyRow.key_id == key_id)
        async with self._tx() as s:
            return tuple(_csr(r, k) for r, k in (await s.execute(query)))

    async def delete_csr(self, csr_id: int) -> None:
        async with self._tx() as s:
            row = await s.get(CsrRow, csr_id)
            if row is None:
                raise not_found(f"CSR {csr_id} does not exist", id=csr_id)
            await s.delete(row)

    # -- inside a transaction -----------------------------------------------------------------------------

    async def _key_row(self, s: AsyncSession, key_id: str) -> TokenKeyRow:
        query = select(TokenKeyRow).where(TokenKeyRow.key_id == key_id)
        row: TokenKeyRow = await self._one(s, query, not_found(f"no key {key_id!r}", key_id=key_id))
        return row

    async def _certificate_row(self, s: AsyncSession, sha256: bytes) -> tuple[CertificateRow, str]:
        query = (
            select(CertificateRow, TokenKeyRow.key_id)
            .join(TokenKeyRow, CertificateRow.key_id == TokenKeyRow.id)
            .where(CertificateRow.cert_hash == sha256)
        )
        found = (await s.execute(query)).one_or_none()
        if found is None:
            raise not_found("no such certificate", sha256=sha256.hex())
        return found
