"""The node's state at a glance: ``node status`` and ``GET /api/v1/status``.

Owner, server id and address; the token; each certificate with its registration state and the OCSP status
the node holds for it (what port 5577 serves); the installed global configuration's age and expiry; the
hosted clients and their states. Reading status changes nothing and needs no PIN::

    >>> status = await node_status(ctx)  # doctest: +SKIP
    >>> [(c.usage, c.status, c.ocsp_status) for c in status.certificates]  # doctest: +SKIP
    [(<KeyUsage.AUTHENTICATION: 'auth'>, <CertificateStatus.REGISTERED: 'registered'>,
      <OcspStatusKind.GOOD: 'good'>)]
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.db import CertificateStatus, Client, KeyUsage, ServerIdentity
from security_server.home import globalconf_dir
from security_server.ocsp import OcspState, OcspStatusKind, OwnOcspCache, ocsp_dir
from security_server.operations.context import NodeContext
from xroad_mn.confclient.store import METADATA_SUFFIX, check_stored_directory
from xroad_mn.errors import XRoadError
from xroad_mn.globalconf.trust import SHARED_PARAMS_FILE
from xroad_mn.identifiers import MemberId
from xroad_mn.tokens import TokenInfo

__all__ = [
    "CertificateState",
    "GlobalConfState",
    "NodeStatus",
    "certificate_states",
    "globalconf_state",
    "node_status",
]


@dataclass(frozen=True)
class CertificateState:
    key_id: str
    usage: KeyUsage
    member: MemberId | None
    certificate: x509.Certificate
    sha256: str
    status: CertificateStatus
    """Registration state (authentication certificates follow global configuration)."""
    active: bool
    ocsp_status: OcspStatusKind | None
    """``None`` while the node holds no verified OCSP response for it."""
    ocsp_this_update: datetime | None
    ocsp_error: str | None
    ocsp_next_update: datetime | None = None
    """The held response's nextUpdate: a fresh one is needed before then."""


@dataclass(frozen=True)
class GlobalConfState:
    instance: str | None
    downloaded_at: datetime | None
    """When the configuration was last downloaded and verified (its metadata rewritten)."""
    age_seconds: float | None
    expires_at: datetime | None
    error_code: str | None = None
    """Why the installed configuration is unusable (e.g. ``global_conf_outdated``), else ``None``."""
    error: str | None = None


@dataclass(frozen=True)
class NodeStatus:
    identity: ServerIdentity
    token: TokenInfo
    certificates: tuple[CertificateState, ...]
    globalconf: GlobalConfState
    clients: tuple[Client, ...]


def _globalconf(ctx: NodeContext, now: datetime) -> GlobalConfState:
    root = globalconf_dir(ctx.settings.home)
    try:
        check = check_stored_directory(root, at=now)
    except XRoadError as e:
        return GlobalConfState(None, None, None, None, e.code, e.message)
    # Every successful download rewrites the parts' metadata (their new expiry); an unchanged content file is
    # left alone, so its own time is when the configuration last changed, not when it was last downloaded.
    instance_dir = root / check.instance
    downloaded: datetime | None = None
    for name in (SHARED_PARAMS_FILE + METADATA_SUFFIX, SHARED_PARAMS_FILE):
        try:
            downloaded = datetime.fromtimestamp((instance_dir / name).stat().st_mtime, UTC)
            break
        except OSError:
            continue
    age = (now - downloaded).total_seconds() if downloaded is not None else None
    return GlobalConfState(check.instance, downloaded, age, check.expires)


async def _ocsp_states(ctx: NodeContext, certs: list[x509.Certificate]) -> dict[str, OcspState]:
    cache = ctx.ocsp_cache
    if cache is None:  # not the running node: what it keeps on disk
        cache = OwnOcspCache(ocsp_dir(ctx.settings.home))
        await asyncio.to_thread(cache.load, certs)
    states: dict[str, OcspState] = {}
    for cert in certs:
        state = cache.status(cert)
        if state is not None:
            states[state.sha256] = state
    return states


async def node_status(ctx: NodeContext) -> NodeStatus:
    now = ctx.clock()
    identity = await ctx.store.get_server()
    token = await asyncio.to_thread(ctx.token.info)
    certificates = await certificate_states(ctx)
    globalconf = await globalconf_state(ctx, now)
    return NodeStatus(identity, token, certificates, globalconf, await ctx.store.list_clients())


async def certificate_states(ctx: NodeContext) -> tuple[CertificateState, ...]:
    """Each certificate of the node with its key, registration state and OCSP status (two queries)."""
    keys = {k.key_id: k for k in await ctx.store.list_keys()}
    records = await ctx.store.list_certificates()
    ocsp = await _ocsp_states(ctx, [c.certificate for c in records])
    certificates = []
    for record in records:
        digest = hashlib.sha256(record.certificate.public_bytes(Encoding.DER)).hexdigest()
        state = ocsp.get(digest)
        key = keys[record.key_id]
        certificates.append(
            CertificateState(
                key_id=record.key_id,
                usage=key.usage,
                member=key.member,
                certificate=record.certificate,
                sha256=digest,
                status=record.status,
                active=record.active,
                ocsp_status=state.status if state is not None else None,
                ocsp_this_update=state.this_update if state is not None else None,
                ocsp_error=state.error if state is not None else None,
                ocsp_next_update=state.next_update if state is not None else None,
            )
        )
    return tuple(certificates)


async def globalconf_state(ctx: NodeContext, now: datetime) -> GlobalConfState:
    """The installed global configuration's state at ``now`` (read in a worker thread)."""
    return await asyncio.to_thread(_globalconf, ctx, now)
