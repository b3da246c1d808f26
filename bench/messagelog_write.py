"""Message log write throughput on SQLite: records/s of the group-commit writer at several concurrencies.

    $ .venv/bin/python bench/messagelog_write.py

Each line logs :data:`RECORDS` signed SOAP records (a real ~9 KiB XAdES signature from the development PKI,
a ~1 KiB message) into a fresh, migrated node database (WAL, as the node runs) through
:class:`~security_server.messagelog.MessageLog`, with ``concurrency`` callers awaiting ``log()`` at once,
as that many exchanges in flight would. Concurrency 1 commits once per record (the durable-commit ceiling);
higher concurrencies share commits, which is the point of the writer.
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
from xroad_mn.signature import SignatureData, SigningKey, sign

RECORDS: Final = 5000
CONCURRENCIES: Final = (1, 10, 100, 1000)
CLIENT: Final = MemberId("MN", "GOV", "5012345")
SERVICE: Final = MemberId("MN", "GOV", "9999").subsystem("registry").service("people")
MESSAGE: Final = b"<Envelope>" + b"x" * 1024 + b"</Envelope>"


def _signature() -> SignatureData:
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
    key = SigningKey(pki.member_sign.private_key, pki.member_sign.certificate, (ocsp,), pki.member_sign.chain)
    return sign([MessagePart("/message.xml", MESSAGE)], key)


async def _run(path: Path, concurrency: int, signature: SignatureData) -> tuple[float, int]:
    url = sqlite_url(path)
    await migrate(url)
    engine = create_engine(url)
    message_log = MessageLog(MessageLogStore(engine))
    records = [
        LogRecord(f"q-{i}", f"x-{i}", CLIENT, SERVICE, i % 2 == 1, False, MESSAGE, (), signature)
        for i in range(RECORDS)
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
    signature = _signature()
    size = len(signature.signature_xml)
    print(f"message log group commit on SQLite (WAL), {RECORDS} records, signature {size} B")
    with tempfile.TemporaryDirectory() as tmp:
        for concurrency in CONCURRENCIES:
            rate, commits = await _run(Path(tmp) / f"c{concurrency}.db", concurrency, signature)
            print(
                f"  concurrency {concurrency:>5}: {rate:>9,.0f} records/s  "
                f"({commits} commits, {RECORDS / commits:.1f} records per commit)"
            )


if __name__ == "__main__":
    asyncio.run(main())
