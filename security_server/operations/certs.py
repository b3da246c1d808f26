"""The node's keys, CSRs and certificates, on :mod:`security_server.certs`.

:func:`request_certificate` is ``node certs request``: a key in the token, a CSR for the approved CA's
profile, submitted to a CA that speaks our trust service's ``POST /ca/certificates``, the answer checked and
imported. When any step fails the key is deleted again (from the token and the records), so a refused
request changes nothing. :func:`generate_key_and_csr` and :func:`import_certificate` are the two halves for
a CA that answers out of band::

    >>> imported = await request_certificate(ctx, KeyUsage.AUTHENTICATION, ca_url="http://127.0.0.1:8899")
    ... # doctest: +SKIP
    >>> imported.record.certificate.serial_number  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib

from cryptography import x509

from security_server import certs
from security_server.certs import ImportedCertificate, NewCsr
from security_server.db import Certificate, CertificateStatus, Csr, KeyUsage, TokenKey
from security_server.operations.context import NodeContext
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import MemberId

__all__ = [
    "create_csr",
    "delete_certificate",
    "delete_csr",
    "delete_key",
    "generate_key",
    "generate_key_and_csr",
    "import_certificate",
    "list_certificates",
    "list_csrs",
    "list_keys",
    "request_certificate",
    "set_certificate_active",
]


async def list_keys(ctx: NodeContext) -> tuple[TokenKey, ...]:
    return await ctx.store.list_keys()


async def list_certificates(ctx: NodeContext) -> tuple[Certificate, ...]:
    return await ctx.store.list_certificates()


async def list_csrs(ctx: NodeContext) -> tuple[Csr, ...]:
    return await ctx.store.list_csrs()


async def generate_key(
    ctx: NodeContext, usage: KeyUsage, *, member: MemberId | None = None, label: str | None = None
) -> TokenKey:
    """A key in the token for ``usage`` (a signing key for ``member``, default the owner)."""
    if usage is KeyUsage.SIGNING and member is None:
        member = (await ctx.store.get_server()).server.owner
    return await certs.generate_key(ctx.token, ctx.store, usage, member=member, label=label)


async def create_csr(
    ctx: NodeContext, key_id: str, *, ca_name: str | None = None, member_name: str | None = None
) -> NewCsr:
    return await certs.create_csr(
        ctx.token, ctx.store, await ctx.trust(), key_id, ca_name=ca_name, member_name=member_name
    )


async def delete_key(ctx: NodeContext, key_id: str) -> None:
    """Delete a key from the token and forget it with its certificates and CSRs."""
    await ctx.store.get_key(key_id)  # not_found first: nothing is deleted from the token for a stranger
    await asyncio.to_thread(ctx.token.delete_key, key_id)
    await ctx.store.delete_key(key_id)
    ctx.certificates_changed()


async def _forget_new_key(ctx: NodeContext, key_id: str) -> None:
    with contextlib.suppress(XRoadError):
        await asyncio.to_thread(ctx.token.delete_key, key_id)
    with contextlib.suppress(XRoadError):
        await ctx.store.delete_key(key_id)


async def generate_key_and_csr(
    ctx: NodeContext,
    usage: KeyUsage,
    *,
    member: MemberId | None = None,
    ca_name: str | None = None,
    member_name: str | None = None,
    label: str | None = None,
) -> NewCsr:
    """A new key and its CSR (X-Road's "generate key and CSR"); the key is deleted again when the CSR
    cannot be made."""
    trust = await ctx.trust()
    certs.choose_ca(trust, usage, ca_name)  # a CA that fits, before the key is made
    key = await generate_key(ctx, usage, member=member, label=label)
    try:
        return await certs.create_csr(
            ctx.token, ctx.store, trust, key.key_id, ca_name=ca_name, member_name=member_name
        )
    except BaseException:
        await _forget_new_key(ctx, key.key_id)
        raise


async def import_certificate(ctx: NodeContext, data: bytes | x509.Certificate) -> ImportedCertificate:
    """Check and record a certificate for one of the token's keys (:func:`security_server.certs.import_`)."""
    imported = await certs.import_certificate(ctx.token, ctx.store, await ctx.trust(), data, at=ctx.clock())
    ctx.certificates_changed()
    return imported


async def request_certificate(
    ctx: NodeContext,
    usage: KeyUsage,
    *,
    ca_url: str,
    member: MemberId | None = None,
    ca_name: str | None = None,
    member_name: str | None = None,
) -> ImportedCertificate:
    """Key, CSR, ``POST {ca_url}/ca/certificates``, checked import; nothing stays behind on failure."""
    new = await generate_key_and_csr(ctx, usage, member=member, ca_name=ca_name, member_name=member_name)
    key_id = new.record.key_id
    try:
        cert = await certs.request_certificate(ctx.session, ca_url, new.csr, usage)
        return await import_certificate(ctx, cert)
    except BaseException:
        await _forget_new_key(ctx, key_id)
        raise


async def delete_csr(ctx: NodeContext, csr_id: int) -> None:
    await ctx.store.delete_csr(csr_id)


async def set_certificate_active(ctx: NodeContext, sha256: bytes, active: bool) -> Certificate:
    return await ctx.store.set_certificate_active(sha256, active)


async def delete_certificate(ctx: NodeContext, sha256: bytes) -> None:
    """Forget a certificate (not a registered authentication certificate: unregister it first)."""
    cert = await ctx.store.get_certificate(sha256)
    if cert.status in (CertificateStatus.REGISTERED, CertificateStatus.REGISTRATION_IN_PROGRESS):
        key = await ctx.store.get_key(cert.key_id)
        if key.usage is KeyUsage.AUTHENTICATION:
            raise XRoadError(
                FaultCode.CONFLICT,
                f"the authentication certificate is {cert.status.value}: unregister it first",
                details={"sha256": sha256.hex()},
                http_status=409,
            )
    await ctx.store.delete_certificate(sha256)
    ctx.certificates_changed()
