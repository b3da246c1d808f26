"""X-Road's batch signer: messages that wait while a signature is being made are signed together.

:meth:`BatchSigner.sign` queues a message (its named parts: ``/message.xml`` first, then ``/attachmentN``)
for the signing key of ``member``. One drain task per key takes everything waiting (at most
:data:`MAX_BATCH_SIZE` messages) and signs it off the event loop: several messages with one signature over a
hash tree (:func:`xroad_mn.signature.sign_batch`), one message alone (:func:`xroad_mn.signature.sign`).
While that signature is being made the next messages queue up, so under load one private-key operation
covers many messages and an idle node signs each message at once.

The member's :class:`~xroad_mn.signature.SigningKey` is its active, registered signing certificate with the
key in the node's token, that certificate's fresh OCSP response from :class:`OwnOcspCache` (X-Road's signer
refuses to sign without one), the intermediate CAs from global configuration and their OCSP responses. It
is resolved once and kept until the OCSP response's freshness ends, the certificate expires, or
:meth:`BatchSigner.invalidate` (the OCSP refresher and certificate changes call it).

Errors are X-Road's signer errors: a member with no signing certificate at all is ``signer.unknown_member``
("Could not find any certificates for member"), one whose certificates are all unusable (not active, not
registered, OCSP missing, stale or not good) is ``signer.internal_error`` ("Member ... has no suitable
certificates").

Example::

    >>> signer = BatchSigner(store, token, ocsp_cache, lambda: current_trust)  # doctest: +SKIP
    >>> data = await signer.sign(client.member, [MessagePart("/message.xml", soap)])  # doctest: +SKIP
    >>> data.is_batch, len(data.signature_xml) > 0  # doctest: +SKIP
    (False, True)
    >>> signer.invalidate()  # OCSP refreshed: resolve signing keys anew  # doctest: +SKIP
    >>> await signer.aclose()  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography.x509 import ocsp

from security_server.db import CertificateStatus, KeyUsage
from security_server.db.keys import KeyStore
from security_server.db.records import Certificate
from security_server.exchange.tls import intermediate_chain
from security_server.ocsp.cache import OcspStatusKind, OwnOcspCache
from xroad_mn.errors import FaultCode, FaultPrefix, XRoadError
from xroad_mn.globalconf.trust import TrustMaterial
from xroad_mn.hashchain import MessagePart
from xroad_mn.identifiers import MemberId
from xroad_mn.signature import SignatureData, SigningKey, sign, sign_batch
from xroad_mn.tokens import Token, token_signer
from xroad_mn.tokens.base import signer_error

__all__ = [
    "MAX_BATCH_SIZE",
    "MAX_WAITING_MESSAGES",
    "SIGN_TIMEOUT_SECONDS",
    "BatchSigner",
    "ResolvedSigningKey",
]

MAX_BATCH_SIZE: Final = 1000
"""Most messages one signature covers (the rest wait for the next signature)."""
MAX_WAITING_MESSAGES: Final = 10_000
"""Most messages waiting for one key's signature; more callers wait for room (back-pressure)."""
SIGN_TIMEOUT_SECONDS: Final = 60.0
"""X-Road's signer ``client-timeout``: the longest a message waits for its signature."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ResolvedSigningKey:
    """A member's signing key as resolved: the token's key id, what signing needs, and until when it holds."""

    key_id: str
    signing_key: SigningKey
    valid_until: datetime
    """The earliest of the OCSP responses' freshness limits and nextUpdates and the certificate's expiry."""


@dataclass
class _Waiting:
    parts: Sequence[MessagePart]
    key: SigningKey
    future: asyncio.Future[SignatureData]


@dataclass
class _KeyQueue:
    queue: asyncio.Queue[_Waiting]
    drainer: asyncio.Task[None] | None = None


@dataclass
class _Cache:
    generation: int = 0
    keys: dict[MemberId, ResolvedSigningKey] = field(default_factory=dict)


def _ocsp_limit(response_der: bytes, this_update: datetime, freshness_seconds: int) -> datetime:
    """Until when an OCSP response may be embedded: its freshness limit, or its nextUpdate if earlier."""
    limit = this_update + timedelta(seconds=freshness_seconds)
    try:
        for single in ocsp.load_der_ocsp_response(response_der).responses:
            if single.next_update_utc is not None:
                limit = min(limit, single.next_update_utc)
    except ValueError:
        pass  # the cache verified the response when it took it: its thisUpdate stands
    return limit


class BatchSigner:
    """Signs messages for the node's members, in batches per signing key. One per event loop (worker).

    ``trust`` returns the current trust material (intermediate CAs, OCSP freshness); ``clock`` gives the
    signing time and decides freshness.
    """

    def __init__(
        self,
        store: KeyStore,
        token: Token,
        ocsp_cache: OwnOcspCache,
        trust: Callable[[], TrustMaterial],
        *,
        clock: Callable[[], datetime] = _utc_now,
        max_batch_size: int = MAX_BATCH_SIZE,
        max_waiting: int = MAX_WAITING_MESSAGES,
        timeout_seconds: float = SIGN_TIMEOUT_SECONDS,
    ) -> None:
        self._store = store
        self._token = token
        self._ocsp = ocsp_cache
        self._trust = trust
        self._clock = clock
        self._max_batch_size = max_batch_size
        self._max_waiting = max_waiting
        self._timeout = timeout_seconds
        self._cache = _Cache()
        self._resolving = asyncio.Lock()
        self._queues: dict[str, _KeyQueue] = {}
        self.signatures_made = 0
        """Signatures made so far (each covers one batch)."""
        self.messages_signed = 0

    # -- signing ------------------------------------------------------------------------------------------

    async def sign(self, member: MemberId, parts: Sequence[MessagePart]) -> SignatureData:
        """Sign one message with ``member``'s key; waits for the batch it joins (at most the timeout)."""
        if not parts:
            raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, "nothing to sign: no message parts")
        resolved = await self.signing_key(member)
        future: asyncio.Future[SignatureData] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(resolved.key_id)
        if queue is None:
            queue = self._queues[resolved.key_id] = _KeyQueue(asyncio.Queue(self._max_waiting))
        try:
            async with asyncio.timeout(self._timeout):
                await queue.queue.put(_Waiting(parts, resolved.signing_key, future))
                if queue.drainer is None:
                    queue.drainer = asyncio.create_task(
                        self._drain(queue), name=f"sign-{resolved.key_id[:8]}"
                    )
                return await future
        except TimeoutError as e:
            raise XRoadError(
                f"{FaultPrefix.SIGNER}.{FaultCode.CANNOT_CREATE_SIGNATURE}",
                f"no signature for member '{member}' within {self._timeout:g} s",
            ) from e

    async def _drain(self, queue: _KeyQueue) -> None:
        try:
            while not queue.queue.empty():
                batch: list[_Waiting] = []
                while len(batch) < self._max_batch_size and not queue.queue.empty():
                    waiting = queue.queue.get_nowait()
                    if not waiting.future.done():  # its caller gave up
                        batch.append(waiting)
                if batch:
                    try:
                        await self._sign_waiting(batch)
                    except asyncio.CancelledError:
                        _fail(batch, "the signer is stopping")
                        raise
        finally:
            queue.drainer = None

    async def _sign_waiting(self, batch: list[_Waiting]) -> None:
        # Messages queued across an invalidate() may carry different keys: one signature per key.
        groups: dict[int, list[_Waiting]] = {}
        for waiting in batch:
            groups.setdefault(id(waiting.key), []).append(waiting)
        for group in groups.values():
            try:
                results = await asyncio.to_thread(
                    self._sign_now, [w.parts for w in group], group[0].key, self._clock()
                )
            except Exception as e:  # every failure goes to the waiting callers
                error = e if isinstance(e, XRoadError) else _cannot_sign(e)
                for waiting in group:
                    if not waiting.future.done():
                        waiting.future.set_exception(error)
                continue
            self.signatures_made += 1
            self.messages_signed += len(group)
            for waiting, result in zip(group, results, strict=True):
                if not waiting.future.done():
                    waiting.future.set_result(result)

    @staticmethod
    def _sign_now(
        messages: list[Sequence[MessagePart]], key: SigningKey, at: datetime
    ) -> list[SignatureData]:
        if len(messages) == 1:
            return [sign(messages[0], key, signing_time=at)]
        return sign_batch(messages, key, signing_time=at)

    async def aclose(self) -> None:
        """Stop the drain tasks; messages still waiting fail with ``signer.cannot_create_signature``."""
        for queue in list(self._queues.values()):
            if queue.drainer is not None:
                queue.drainer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await queue.drainer
            left: list[_Waiting] = []
            while not queue.queue.empty():
                left.append(queue.queue.get_nowait())
            _fail(left, "the signer is stopping")
        self._queues.clear()

    # -- signing keys -------------------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget every resolved signing key: certificates or OCSP responses changed."""
        self._cache = _Cache(self._cache.generation + 1)

    async def signing_key(self, member: MemberId) -> ResolvedSigningKey:
        """``member``'s signing key, from the cache while it holds, else resolved anew."""
        cache = self._cache
        now = self._clock()
        cached = cache.keys.get(member)
        if cached is not None and now < cached.valid_until:
            return cached
        async with self._resolving:
            cache = self._cache
            cached = cache.keys.get(member)
            if cached is not None and now < cached.valid_until:
                return cached
            resolved = await self._resolve(member, now)
            if cache is self._cache:  # not invalidated meanwhile
                cache.keys[member] = resolved
            return resolved

    async def _resolve(self, member: MemberId, now: datetime) -> ResolvedSigningKey:
        trust = await asyncio.to_thread(self._trust)
        certificates = await self._member_certificates(member)
        if not certificates:
            raise signer_error(
                FaultCode.UNKNOWN_MEMBER, f"Could not find any certificates for member '{member}'"
            )
        reasons: list[str] = []
        for cert in certificates:
            why = self._unsuitable(cert, trust, now)
            if why is not None:
                reasons.append(f"{cert.sha256.hex()[:16]}: {why}")
                continue
            return await self._signing_key_of(cert, trust, now)
        raise signer_error(
            FaultCode.INTERNAL_ERROR,
            f"Member '{member}' has no suitable certificates ({'; '.join(reasons)})",
        )

    async def _member_certificates(self, member: MemberId) -> list[Certificate]:
        out: list[Certificate] = []
        for key in await self._store.list_keys(KeyUsage.SIGNING):
            if key.member == member:
                out.extend(await self._store.list_certificates(key.key_id))
        return out

    def _unsuitable(self, cert: Certificate, trust: TrustMaterial, now: datetime) -> str | None:
        """Why ``cert`` cannot sign now (X-Road's ``isSuitableCertificate``), or None."""
        if not cert.active:
            return "not active"
        if cert.status is not CertificateStatus.REGISTERED:
            return f"status {cert.status.value}"
        if not cert.certificate.not_valid_before_utc <= now <= cert.certificate.not_valid_after_utc:
            return "outside its validity period"
        state = self._ocsp.status(cert.certificate)
        if state is None or state.response is None or state.this_update is None:
            return "no OCSP response"
        if state.status is not OcspStatusKind.GOOD:
            return f"OCSP status {state.status.value if state.status else 'unknown'}"
        if now >= _ocsp_limit(state.response, state.this_update, trust.ocsp_freshness_seconds):
            return f"OCSP response is too old (thisUpdate: {state.this_update.isoformat()})"
        return None

    async def _signing_key_of(
        self, cert: Certificate, trust: TrustMaterial, now: datetime
    ) -> ResolvedSigningKey:
        leaf = cert.certificate
        intermediates = intermediate_chain(leaf, trust)
        responses: list[bytes] = []
        limits = [leaf.not_valid_after_utc]
        missing: list[str] = []
        for c in (leaf, *intermediates):
            state = self._ocsp.status(c)
            if (
                state is None
                or state.response is None
                or state.this_update is None
                or state.status is not OcspStatusKind.GOOD
            ):
                missing.append(c.subject.rfc4514_string())
                continue
            limit = _ocsp_limit(state.response, state.this_update, trust.ocsp_freshness_seconds)
            if now >= limit:
                missing.append(c.subject.rfc4514_string())
                continue
            responses.append(state.response)
            limits.append(limit)
        if missing:
            raise signer_error(
                FaultCode.CANNOT_CREATE_SIGNATURE,
                f"Could not get OCSP responses for certificates ({', '.join(missing)})",
            )
        signer = await asyncio.to_thread(token_signer, self._token, cert.key_id)
        return ResolvedSigningKey(
            cert.key_id, SigningKey(signer, leaf, tuple(responses), intermediates), min(limits)
        )


def _fail(batch: Sequence[_Waiting], message: str) -> None:
    error = XRoadError(f"{FaultPrefix.SIGNER}.{FaultCode.CANNOT_CREATE_SIGNATURE}", message)
    for waiting in batch:
        if not waiting.future.done():
            waiting.future.set_exception(error)


def _cannot_sign(e: Exception) -> XRoadError:
    error = XRoadError(
        f"{FaultPrefix.SIGNER}.{FaultCode.CANNOT_CREATE_SIGNATURE}",
        f"signing failed: {type(e).__name__}: {e}",
    )
    error.__cause__ = e
    return error
