"""The node's keys and certificate signing requests: a key made in the token, a CSR for the approved CA.

A signing key signs for one member the node hosts (its owner or a hosted client's member); the
authentication key names none. The CSR's subject is laid out as the CA's certificate profile expects
(:mod:`security_server.certs.subjects`); the CA is an ``approvedCA`` of global configuration. Example::

    >>> key = await generate_key(token, store, KeyUsage.SIGNING, member=owner)  # doctest: +SKIP
    >>> new = await create_csr(token, store, trust, key.key_id)  # doctest: +SKIP
    >>> new.csr.subject.rfc4514_string(), new.ca.name  # doctest: +SKIP
    ('CN=5012345,O=GOV,C=MN', 'MN xroad-mn development CA')

Token operations block (files, an HSM, RSA), so they run in a worker thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.certs.subjects import auth_subject, sign_subject
from security_server.db import Csr, KeyUsage, NodeStore, TokenKey
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.globalconf.trust import ApprovedCA, TrustMaterial
from xroad_mn.identifiers import MemberId, format_id
from xroad_mn.tokens import KeyAlgorithm, Token, build_csr, token_signer

__all__ = ["NewCsr", "choose_ca", "create_csr", "generate_key", "hosted_members"]


@dataclass(frozen=True)
class NewCsr:
    """A CSR made for a key of the node, with the approved CA it is meant for and its record."""

    csr: x509.CertificateSigningRequest
    ca: ApprovedCA
    record: Csr


async def hosted_members(store: NodeStore) -> frozenset[MemberId]:
    """The members this node signs for: its owner and the member of every hosted client."""
    server = (await store.get_server()).server
    clients = await store.list_clients()
    return frozenset({server.owner, *(c.client.member for c in clients)})


async def generate_key(
    token: Token,
    store: NodeStore,
    usage: KeyUsage,
    *,
    member: MemberId | None = None,
    label: str | None = None,
    algorithm: KeyAlgorithm = KeyAlgorithm.RSA_2048,
) -> TokenKey:
    """Make a key in ``token`` and record it. A signing key names a ``member`` the node hosts; an
    authentication key names none (``invalid_request`` otherwise). If recording fails the key is deleted
    from the token again, so nothing changes."""
    if (usage is KeyUsage.SIGNING) != (member is not None):
        raise XRoadError(
            FaultCode.INVALID_REQUEST,
            "a signing key names the member it signs for; an authentication key names none",
            kind=ErrorKind.BAD_INPUT,
        )
    if member is not None:
        if not isinstance(member, MemberId):
            raise XRoadError(
                FaultCode.INVALID_REQUEST, "a signing key signs for a member", kind=ErrorKind.BAD_INPUT
            )
        if member not in await hosted_members(store):
            raise XRoadError(
                FaultCode.INVALID_REQUEST,
                f"{format_id(member)} is neither the owner nor the member of a client of this node",
                details={"member": format_id(member)},
                kind=ErrorKind.BAD_INPUT,
            )
    server = (await store.get_server()).server
    name = label or (f"{server.server_code} auth" if member is None else f"{format_id(member)} sign")
    info = await asyncio.to_thread(token.generate_key, name, usage, algorithm)
    try:
        return await store.add_key(info.key_id, usage, label=name, member=member)
    except BaseException:
        await asyncio.to_thread(token.delete_key, info.key_id)
        raise


def choose_ca(trust: TrustMaterial, usage: KeyUsage, name: str | None = None) -> ApprovedCA:
    """The approved CA of the own instance a CSR is made for: the one called ``name``, or the only one
    that issues certificates of ``usage`` (a CA approved for authentication only issues no signing
    certificates). ``not_found`` when there is no such CA, ``invalid_request`` when several fit."""
    own = [ca for ca in trust.approved_cas if (ca.instance or trust.instance) == trust.instance]
    fit = [ca for ca in own if usage is KeyUsage.AUTHENTICATION or not ca.authentication_only]
    if name is not None:
        chosen = [ca for ca in fit if ca.name == name]
        if not chosen:
            raise XRoadError(
                FaultCode.NOT_FOUND,
                f"no approved CA {name!r} issues {usage.value} certificates for instance {trust.instance}",
                details={"ca": name},
                kind=ErrorKind.NOT_FOUND,
            )
        return chosen[0]
    if len(fit) != 1:
        if not fit:
            raise XRoadError(
                FaultCode.NOT_FOUND,
                f"global configuration approves no CA for {usage.value} certificates of {trust.instance}",
                kind=ErrorKind.NOT_FOUND,
            )
        raise XRoadError(
            FaultCode.INVALID_REQUEST,
            f"several CAs are approved ({', '.join(ca.name for ca in fit)}); name one",
            kind=ErrorKind.BAD_INPUT,
        )
    return fit[0]


async def create_csr(
    token: Token,
    store: NodeStore,
    trust: TrustMaterial,
    key_id: str,
    *,
    ca_name: str | None = None,
    member_name: str | None = None,
) -> NewCsr:
    """A CSR for the recorded key ``key_id``, signed in the token, for the CA ``ca_name`` (default: the only
    one that fits) with the subject its profile expects, recorded in the node store.

    ``member_name`` is the member's (or, for an auth key, the owner's) name where the profile writes one.
    """
    key = await store.get_key(key_id)
    identity = await store.get_server()
    ca = choose_ca(trust, key.usage, ca_name)
    ca_instance = ca.instance or trust.instance
    if key.usage is KeyUsage.SIGNING:
        assert key.member is not None  # the store holds a member for every signing key
        if key.member not in await hosted_members(store):
            raise XRoadError(
                FaultCode.INVALID_REQUEST,
                f"{format_id(key.member)} is no longer a member this node hosts",
                kind=ErrorKind.BAD_INPUT,
            )
        subject = sign_subject(
            ca.certificate_profile_info,
            ca_instance,
            key.member,
            server_code=identity.server.server_code,
            member_name=member_name,
        )
    else:
        subject = auth_subject(
            ca.certificate_profile_info,
            ca_instance,
            identity.server,
            owner_name=member_name,
            dns_name=identity.address,
        )
    signer = await asyncio.to_thread(token_signer, token, key_id)
    csr = await asyncio.to_thread(build_csr, signer, subject)
    record = await store.add_csr(
        key_id, csr.public_bytes(Encoding.DER), subject_name=subject.rfc4514_string(), member=key.member
    )
    return NewCsr(csr, ca, record)
