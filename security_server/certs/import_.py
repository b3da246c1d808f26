"""Importing a certificate the CA issued for one of the node's keys, checked as X-Road's signer checks it.

Steps, each refusing with an X-Road code and changing nothing:

1. the bytes are one certificate (PEM, DER or base64) — ``incorrect_certificate``;
2. its public key is a key of the token — ``signer.key_not_found``;
3. its key usage fits the key's: nonRepudiation for a signing key, digitalSignature for the authentication
   key — ``wrong_cert_usage``;
4. it chains to a CA approved in global configuration, valid now (:func:`xroad_mn.validation.verify_chain`
   for that purpose) — ``invalid_cert_path`` / ``cert_validation``;
5. a signing certificate names, through that CA's certificate profile, a member this node hosts (its owner
   or a hosted client's member) and the member its key was made for — ``incorrect_certificate``;
6. the node does not hold it yet — ``conflict``.

Then it is recorded: a signing certificate as ``registered`` (it needs no registration), an authentication
certificate as ``saved`` (registration comes next), both active; the key's CSRs are done with and deleted.
Example::

    >>> imported = await import_certificate(token, store, trust, pem_bytes)  # doctest: +SKIP
    >>> imported.record.status, imported.member  # doctest: +SKIP
    (<CertificateStatus.REGISTERED: 'registered'>, MemberId(instance='MN', ...))
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from security_server.certs.csr import hosted_members
from security_server.db import Certificate, CertificateStatus, KeyUsage, NodeStore
from xroad_mn.certs import key_usage, load_certificate
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.globalconf.trust import ApprovedCA, TrustMaterial
from xroad_mn.identifiers import MemberId, format_id
from xroad_mn.tokens import KeyInfo, Token
from xroad_mn.tokens.base import signer_error
from xroad_mn.validation import CertPurpose, signing_member, verify_chain

__all__ = ["ImportedCertificate", "certificate_usage", "import_certificate"]


@dataclass(frozen=True)
class ImportedCertificate:
    """A certificate the node now holds: its record, the approved CA it chains to, the member it names
    (signing certificates only)."""

    record: Certificate
    ca: ApprovedCA
    member: MemberId | None


def _spki(key: object) -> bytes:
    public_bytes = getattr(key, "public_bytes", None)
    if public_bytes is None:
        return b""
    data: bytes = public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return data


def certificate_usage(cert: x509.Certificate) -> KeyUsage | None:
    """What the certificate's key usage makes it: a signing certificate (nonRepudiation), an authentication
    certificate (digitalSignature without nonRepudiation), or neither."""
    usage = key_usage(cert)
    if usage is None:
        return None
    if usage.content_commitment:
        return KeyUsage.SIGNING
    if usage.digital_signature:
        return KeyUsage.AUTHENTICATION
    return None


def _wrong_usage(message: str) -> XRoadError:
    return XRoadError(FaultCode.WRONG_CERT_USAGE, message, kind=ErrorKind.BAD_INPUT)


def _fits(cert: x509.Certificate, usage: KeyUsage) -> None:
    ku = key_usage(cert)
    if usage is KeyUsage.SIGNING and (ku is None or not ku.content_commitment):
        raise _wrong_usage("the key is a signing key; its certificate must carry key usage nonRepudiation")
    if usage is KeyUsage.AUTHENTICATION and (ku is None or not ku.digital_signature):
        raise _wrong_usage(
            "the key is an authentication key; its certificate must carry key usage digitalSignature"
        )


async def _token_key(token: Token, cert: x509.Certificate) -> KeyInfo:
    wanted = _spki(cert.public_key())
    for info in await asyncio.to_thread(token.list_keys):
        if wanted and _spki(info.public_key) == wanted:
            return info
    raise signer_error(
        FaultCode.KEY_NOT_FOUND,
        f"the token holds no key for certificate {cert.subject.rfc4514_string()} "
        f"(serial {cert.serial_number})",
    )


async def import_certificate(
    token: Token,
    store: NodeStore,
    trust: TrustMaterial,
    data: bytes | x509.Certificate,
    *,
    intermediates: Sequence[x509.Certificate] = (),
    at: datetime | None = None,
) -> ImportedCertificate:
    """Check the certificate ``data`` (steps 1-6 of the module docstring) and record it for its key."""
    when = at or datetime.now(UTC)
    # 1. One certificate.
    cert = data if isinstance(data, x509.Certificate) else load_certificate(data)

    # 2. Its key is in the token; the node's record of that key, if any, says what the key is for.
    info = await _token_key(token, cert)
    recorded = {k.key_id: k for k in await store.list_keys()}.get(info.key_id)
    if recorded is not None:
        usage = recorded.usage
    elif info.usage is not None:
        usage = KeyUsage(info.usage.value)
    else:
        found = certificate_usage(cert)
        if found is None:
            raise _wrong_usage("the certificate is neither a signing nor an authentication certificate")
        usage = found

    # 3. Key usage fits.
    _fits(cert, usage)

    # 4. Chain to an approved CA of the own instance, now.
    purpose: CertPurpose = "signing" if usage is KeyUsage.SIGNING else "authentication"
    ca = verify_chain(
        cert, intermediates=intermediates, trust=trust, at=when, purpose=purpose, instance=trust.instance
    )

    # 5. A signing certificate names a member this node hosts, the one its key signs for.
    member: MemberId | None = None
    if usage is KeyUsage.SIGNING:
        member = signing_member(cert, ca, default_instance=trust.instance)
        if member not in await hosted_members(store):
            raise XRoadError(
                FaultCode.INCORRECT_CERTIFICATE,
                f"the certificate names {format_id(member)}, which is neither the owner nor the member of "
                "a client of this node",
                details={"member": format_id(member)},
                kind=ErrorKind.BAD_INPUT,
            )
        if recorded is not None and recorded.member != member:
            expected = format_id(recorded.member) if recorded.member is not None else "none"
            raise XRoadError(
                FaultCode.INCORRECT_CERTIFICATE,
                f"the certificate names {format_id(member)}, but its key signs for {expected}",
                details={"member": format_id(member), "key_member": expected},
                kind=ErrorKind.BAD_INPUT,
            )

    # 6. Not held yet.
    sha256 = hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()
    if any(c.sha256 == sha256 for c in await store.list_certificates()):
        raise XRoadError(
            FaultCode.CONFLICT,
            "the node already holds this certificate",
            details={"sha256": sha256.hex()},
            kind=ErrorKind.CONFLICT,
        )

    # Record it (the key first, when the token made it outside the node's records).
    added_key = False
    if recorded is None:
        await store.add_key(info.key_id, usage, label=info.label or None, member=member)
        added_key = True
    status = CertificateStatus.REGISTERED if usage is KeyUsage.SIGNING else CertificateStatus.SAVED
    try:
        record = await store.add_certificate(info.key_id, cert, status=status, active=True)
    except BaseException:
        if added_key:
            await store.delete_key(info.key_id)
        raise
    for csr in await store.list_csrs(info.key_id):
        if csr.member == member:
            await store.delete_csr(csr.id)
    return ImportedCertificate(record, ca, member)
