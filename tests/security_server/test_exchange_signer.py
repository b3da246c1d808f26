"""The batch signer against a real node: keys in a software token, certificates from the dev CA, OCSP from
the dev responder. Concurrent messages share signatures (counted at the token), every signature verifies
with :func:`xroad_mn.signature.verify_signature`, and a member without a usable key gets X-Road's signer
errors."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from security_server.db import NodeStore
from security_server.exchange.signer import BatchSigner
from security_server.ocsp import OwnOcspCache
from tests.security_server.conftest import OWNER
from tests.security_server.node_pki import PIN, dev_trust
from tests.security_server.peer_world import Node, make_node
from trust_services.app import RunningTrustService
from xroad_mn.algorithms import SignatureScheme
from xroad_mn.errors import XRoadError
from xroad_mn.globalconf.trust import TrustMaterial
from xroad_mn.hashchain import MessagePart
from xroad_mn.identifiers import MemberId
from xroad_mn.signature import SignatureData, verify_signature
from xroad_mn.tokens import SoftwareToken

CONCURRENT = 50


class CountingToken(SoftwareToken):
    """The software token, counting the private-key operations it performs."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.signs = 0
        self._count_lock = threading.Lock()

    def sign(self, key_id: str, scheme: SignatureScheme, data: bytes) -> bytes:
        with self._count_lock:
            self.signs += 1
        return super().sign(key_id, scheme, data)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def trust(trust_service: RunningTrustService) -> TrustMaterial:
    return dev_trust(trust_service)


@pytest.fixture
async def node(
    tmp_path: Path,
    store: NodeStore,
    trust: TrustMaterial,
    session: aiohttp.ClientSession,
    trust_service: RunningTrustService,
) -> Node:
    return await make_node(tmp_path, "ss1", "127.0.0.2", OWNER, store, trust, session, trust_service)


def counting_token(node: Node) -> CountingToken:
    token = CountingToken(node.token.directory)
    token.login(PIN)
    return token


def message(i: int) -> list[MessagePart]:
    return [MessagePart("/message.xml", f"<m>{i}</m>".encode())]


def verify(data: SignatureData, parts: list[MessagePart], trust: TrustMaterial) -> None:
    verified = verify_signature(
        data.signature_xml,
        parts,
        trust=trust,
        expected_member=OWNER,
        at=datetime.now(UTC),
        hash_chain_result=data.hash_chain_result,
        hash_chain=data.hash_chain,
    )
    assert verified.signer == OWNER


async def test_concurrent_messages_share_batch_signatures(
    node: Node, store: NodeStore, trust: TrustMaterial
) -> None:
    token = counting_token(node)
    signer = BatchSigner(store, token, node.ocsp, lambda: trust)
    try:
        messages = [message(i) for i in range(CONCURRENT)]
        results = await asyncio.gather(*(signer.sign(OWNER, m) for m in messages))
    finally:
        await signer.aclose()
    assert token.signs == signer.signatures_made
    assert token.signs < CONCURRENT / 5, f"{token.signs} signatures for {CONCURRENT} messages"
    assert signer.messages_signed == CONCURRENT
    assert any(r.is_batch for r in results)
    for data, parts in zip(results, messages, strict=True):
        verify(data, parts, trust)


async def test_single_message_is_signed_alone(node: Node, store: NodeStore, trust: TrustMaterial) -> None:
    token = counting_token(node)
    signer = BatchSigner(store, token, node.ocsp, lambda: trust)
    try:
        single = await signer.sign(OWNER, message(1))
        with_body = [MessagePart("/message.xml", b"GET\r\n/r1/x\r\n"), MessagePart("/attachment1", b"{}")]
        rest = await signer.sign(OWNER, with_body)
    finally:
        await signer.aclose()
    assert token.signs == 2
    assert not single.is_batch
    verify(single, message(1), trust)
    assert rest.is_batch  # a message with a body is signed in the hash-chain form, as X-Road does
    verify(rest, with_body, trust)


async def test_no_fresh_ocsp_refuses_to_sign(
    node: Node, store: NodeStore, trust: TrustMaterial, tmp_path: Path
) -> None:
    empty = OwnOcspCache(tmp_path / "empty-ocsp")
    signer = BatchSigner(store, node.token, empty, lambda: trust)
    with pytest.raises(XRoadError) as caught:
        await signer.sign(OWNER, message(1))
    assert caught.value.code == "signer.internal_error"
    assert f"Member '{OWNER}' has no suitable certificates" in caught.value.message
    assert "no OCSP response" in caught.value.message
    # the responses are there but older than the freshness period allows
    stale = dev_trust_with_freshness(trust, 0)
    signer = BatchSigner(store, node.token, node.ocsp, lambda: stale)
    with pytest.raises(XRoadError) as caught:
        await signer.sign(OWNER, message(1))
    assert caught.value.code == "signer.internal_error"
    assert "too old" in caught.value.message


def dev_trust_with_freshness(trust: TrustMaterial, seconds: int) -> TrustMaterial:
    return TrustMaterial(trust.instance, trust.approved_cas, trust.approved_tsas, seconds, None)


async def test_member_without_certificates_is_unknown(
    node: Node, store: NodeStore, trust: TrustMaterial
) -> None:
    signer = BatchSigner(store, node.token, node.ocsp, lambda: trust)
    stranger = MemberId("MN", "GOV", "0000001")
    with pytest.raises(XRoadError) as caught:
        await signer.sign(stranger, message(1))
    assert caught.value.code == "signer.unknown_member"
    assert f"Could not find any certificates for member '{stranger}'" in caught.value.message


async def test_signing_key_is_cached_until_invalidated(
    node: Node, store: NodeStore, trust: TrustMaterial
) -> None:
    signer = BatchSigner(store, node.token, node.ocsp, lambda: trust)
    first = await signer.signing_key(OWNER)
    assert await signer.signing_key(OWNER) is first
    assert first.signing_key.certificate == node.sign_certificate
    assert first.signing_key.ocsp_responses == (node.ocsp.status(node.sign_certificate).response,)  # type: ignore[union-attr]
    assert first.valid_until <= node.sign_certificate.not_valid_after_utc
    signer.invalidate()
    again = await signer.signing_key(OWNER)
    assert again is not first
    assert again.key_id == first.key_id


async def test_a_cancelled_caller_does_not_break_the_batch(
    node: Node, store: NodeStore, trust: TrustMaterial
) -> None:
    signer = BatchSigner(store, node.token, node.ocsp, lambda: trust)
    try:
        await signer.signing_key(OWNER)
        gone = asyncio.create_task(signer.sign(OWNER, message(0)))
        others = [asyncio.create_task(signer.sign(OWNER, message(i))) for i in range(1, 6)]
        await asyncio.sleep(0)
        gone.cancel()
        results = await asyncio.gather(*others)
    finally:
        await signer.aclose()
    for i, data in enumerate(results, start=1):
        verify(data, message(i), trust)
