"""Message log write throughput on SQLite: records/s of the group-commit writer at several concurrencies.

    $ .venv/bin/python bench/messagelog_write.py

Each line logs :data:`RECORDS` signed SOAP records (~1 KiB messages, real XAdES signatures of ~9 KiB from the
development PKI) into a fresh, migrated node database (WAL, as the node runs) through
:class:`~security_server.messagelog.MessageLog`, with ``concurrency`` callers awaiting ``log()`` at once,
as that many exchanges in flight would. The records are signed as the node's batch signer signs them at that
concurrency: one signature per message at concurrency 1, one batch signature (hash chains) over up to
``concurrency`` messages above it (:data:`MAX_BATCH` at most). Concurrency 1 commits once per record (the
durable-commit ceiling); higher concurrencies share commits, which is the point of the writer, and the
records of one batch share their signature document in the database.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from security_server.db import migrate
from security_server.messagelog import LogRecord, MessageLog, MessageLogStore
from trust_services.ocsp_responder import build_ocsp_response, status_lookup
from trust_services.pki import build_dev_pki
from xroad_mn.database import create_engine, sqlite_url
from xroad_mn.hashchain import MessagePart
from xroad_mn.identifiers import MemberId
from xroad_mn.ocsp import build_ocsp_request
from xroad_mn.signature import SignatureData, SigningKey, sign, sign_batch

RECORDS: Final = 10000
MAX_BATCH: Final = 256
"""Most messages the bench puts under one batch signature."""
CONCURRENCIES: Final = (1, 10, 100, 1000)
CLIENT: Final = MemberId("MN", "GOV", "5012345")
SERVICE: Final = MemberId("MN", "GOV", "9999").subsystem("registry").service("people")
MESSAGE: Final = b"<Envelope>" + b"x" * 1024 + b"</Envelope>"


def _signing_key() -> SigningKey:
    now = datetime.now(UTC)
    pki = build_dev_pki(now)
    issued = [c.certificate.serial_number for c in pki.issued_by_intermediate]
    ocsp = build_ocsp_response(
        build_ocsp_request(pki.member_sign.certificate, pki.intermediate.certificate),
        issuer=pki.intermediate,
        responder=pki.ocsp_responder,
        status_of=status_lookup(pki.revocations, issued),
        now=now,
    )
    return SigningKey(
        pki.member_sign.private_key, pki.member_sign.certificate, (ocsp,), pki.member_sign.chain
    )


def _signatures(key: SigningKey, batch: int) -> list[SignatureData]:
    """One signature per record, made in batches of ``batch`` messages as the batch signer would."""
    parts = [[MessagePart("/message.xml", _message(i))] for i in range(RECORDS)]
    if batch == 1:
        return [sign(p, key) for p in parts]
    return [s for start in range(0, RECORDS, batch) for s in sign_batch(parts[start : start + batch], key)]


def _message(i: int) -> bytes:
    return MESSAGE.replace(b"x" * 8, f"{i:08d}".encode(), 1)


async def _run(path: Path, concurrency: int, signatures: list[SignatureData]) -> tuple[float, int]:
    url = sqlite_url(path)
    await migrate(url)
    engine = create_engine(url)
    message_log = MessageLog(MessageLogStore(engine))
    records = [
        LogRecord(f"q-{i}", f"x-{i}", CLIENT, SERVICE, i % 2 == 1, False, _message(i), (), signature)
        for i, signature in enumerate(signatures)
    ]
    queue = iter(records)

    async def caller() -> None:
        for record in queue:
            await message_log.log(record)

    try:
        async with message_log.running():
            start = time.perf_counter()
            await asyncio.gather(*(caller() for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
    finally:
        await engine.dispose()
    return RECORDS / elapsed, message_log.commits


async def main() -> None:
    key = _signing_key()
    print(f"message log group commit on SQLite (WAL), {RECORDS} records of ~1 KiB, real XAdES signatures")
    with tempfile.TemporaryDirectory() as tmp:
        for concurrency in CONCURRENCIES:
            batch = min(concurrency, MAX_BATCH)
            signatures = _signatures(key, batch)
            size = len(signatures[0].signature_xml)
            rate, commits = await _run(Path(tmp) / f"c{concurrency}.db", concurrency, signatures)
            print(
                f"  concurrency {concurrency:>5} (signature {size} B per {batch} messages): "
                f"{rate:>9,.0f} records/s  ({commits} commits, {RECORDS / commits:.1f} records per commit)"
            )


if __name__ == "__main__":
    asyncio.run(main())
