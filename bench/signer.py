"""Signatures per second of the node's batch signer with 1, 10 and 100 concurrent callers.

Run by ``make bench``::

    $ .venv/bin/python bench/signer.py

Sets up a real node's signing key in a temporary directory: the dev trust services (CA, OCSP responder) on
loopback, a software token, a SQLite node database, a signing certificate from the dev CA and its OCSP
response in the node's OCSP cache. Then :class:`~security_server.exchange.signer.BatchSigner` signs
:data:`MESSAGES` one-part SOAP messages from each number of concurrent callers and prints messages signed per
second, private-key operations per second and messages per signature. With one caller every message costs
one RSA signature; with more, the messages that wait while a signature is made share the next one.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import aiohttp

from security_server.certs import create_csr, generate_key, import_certificate, request_certificate
from security_server.db import KeyUsage, NodeStore, migrate
from security_server.exchange.signer import BatchSigner
from security_server.ocsp import OwnOcspCache, refresh_ocsp
from trust_services.app import RunningTrustService, TrustSettings, run_trust_service
from trust_services.store import TrustFiles, init_trust_dir
from xroad_mn.certs import EJBCA_PROFILE, load_certificate
from xroad_mn.database import create_engine
from xroad_mn.globalconf.trust import ApprovedCA, OcspResponder, TrustMaterial
from xroad_mn.hashchain import MessagePart
from xroad_mn.identifiers import MemberId
from xroad_mn.tokens import SoftwareToken

MESSAGES: Final = 2000
"""Messages signed per concurrency level."""
CONCURRENCY: Final = (1, 10, 100)
OWNER: Final = MemberId("MN", "GOV", "5012345")
PIN: Final = "bench-pin"


def _trust(service: RunningTrustService) -> TrustMaterial:
    files = TrustFiles(service.directory)
    ca = ApprovedCA(
        name="MN dev CA",
        top_ca=load_certificate(files.ca_cert.read_bytes()),
        intermediates=(),
        ocsp_responders=(OcspResponder(service.urls.ocsp, load_certificate(files.ocsp_cert.read_bytes())),),
        certificate_profile_info=EJBCA_PROFILE,
        authentication_only=False,
        instance="MN",
    )
    return TrustMaterial("MN", (ca,), (), 3600, None)


async def _run_level(signer: BatchSigner, concurrency: int) -> tuple[float, int]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(MESSAGES):
        queue.put_nowait(i)

    async def caller() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            await signer.sign(OWNER, [MessagePart("/message.xml", f"<m>{i}</m>".encode())])

    before = signer.signatures_made
    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return time.perf_counter() - start, signer.signatures_made - before


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        await asyncio.to_thread(init_trust_dir, home / "trust", instance="MN", now=datetime.now(UTC))
        async with (
            run_trust_service(TrustSettings(dir=home / "trust", host="127.0.0.1", port=0)) as service,
            aiohttp.ClientSession() as session,
        ):
            engine = create_engine(f"sqlite+aiosqlite:///{home / 'node.db'}")
            try:
                await migrate(engine)
                store = NodeStore(engine)
                await store.init_server(OWNER, "ss1", address="127.0.0.2")
                token = SoftwareToken(home / "token")
                token.initialize(PIN)
                token.login(PIN)
                trust = _trust(service)
                key = await generate_key(token, store, KeyUsage.SIGNING, member=OWNER)
                new = await create_csr(token, store, trust, key.key_id)
                cert = await request_certificate(session, service.urls.base, new.csr, KeyUsage.SIGNING)
                await import_certificate(token, store, trust, cert)
                cache = OwnOcspCache(home / "ocsp")
                await refresh_ocsp(store, cache, trust, session)
                signer = BatchSigner(store, token, cache, lambda: trust)
                await signer.signing_key(OWNER)
                print(f"batch signer, {MESSAGES} one-part messages per level, RSA-2048 in the software token")
                for concurrency in CONCURRENCY:
                    seconds, signatures = await _run_level(signer, concurrency)
                    print(
                        f"  {concurrency:>3} concurrent: {MESSAGES / seconds:8.0f} messages/s  "
                        f"{signatures / seconds:6.0f} signatures/s  "
                        f"{MESSAGES / signatures:6.1f} messages/signature"
                    )
                await signer.aclose()
            finally:
                await engine.dispose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
