"""Message log write throughput, then search latency over a large log, on SQLite and (with
``XROAD_TEST_PG_URL``) PostgreSQL.

    $ .venv/bin/python bench/messagelog.py                  # 1 million records
    $ .venv/bin/python bench/messagelog.py --ten-million    # 10 million (about 10 GB of disk on SQLite)
    $ .venv/bin/python bench/messagelog.py --records 200000 --db /tmp/mlog.db   # keep and reuse a database
    $ .venv/bin/python bench/messagelog.py --search-only    # skip the write throughput part

The write throughput part is :mod:`messagelog_write` (the group-commit writer with real signatures).

Fills a migrated node database through :meth:`~security_server.messagelog.MessageLogStore.insert_records`
(the writer's own insert: keyed subject hashes, searched columns, every index) with records of
:data:`CLIENTS` clients, :data:`SERVICES` services, a data subject on every other exchange, user ids,
issues and REST statuses, logged over a year; then times :func:`~security_server.messagelog.search.search_log`
for the filters auditors use, first page of :data:`PAGE` records, median and worst of :data:`RUNS` runs. The
records carry a small message and signature: search reads neither, and write throughput with real
signatures is :mod:`bench.messagelog_write`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import messagelog_write
from sqlalchemy import event, text

from security_server.db import migrate
from security_server.messagelog import ExchangeFacts, LogRecord, MessageLogStore, SubjectKey
from security_server.messagelog.search import LogFilters, search_log
from xroad_mn.database import create_engine, sqlite_url
from xroad_mn.identifiers import ClientId, MemberId, ServiceId
from xroad_mn.signature import SignatureData

DEFAULT_RECORDS: Final = 1_000_000
TEN_MILLION: Final = 10_000_000
BATCH: Final = 5000
CLIENTS: Final = 1000
SERVICES: Final = 200
USERS: Final = 10_000
PAGE: Final = 100
FILL_CACHE_KIB: Final = 2 * 1024 * 1024
"""SQLite page cache of the filling connection (2 GiB)."""
RUNS: Final = 20
START: Final = datetime(2026, 1, 1, tzinfo=UTC)
SPAN: Final = timedelta(days=365)
MESSAGE: Final = b"<Envelope><Header/><Body><q/></Body></Envelope>"
SIGNATURE: Final = SignatureData(b"<Signature/>")


def _client(i: int) -> ClientId:
    member = MemberId("MN", "GOV", f"{1000000 + i % CLIENTS}")
    return member.subsystem(f"sub{i % 3}") if i % 2 else member


def _service(i: int) -> ServiceId:
    return MemberId("MN", "GOV", f"{9000000 + i % SERVICES}").subsystem("api").service(f"svc{i % SERVICES}")


def subject_of(exchange: int) -> str | None:
    return f"УБ{exchange:08d}" if exchange % 2 == 0 else None


def _records(first_exchange: int, count: int) -> Iterator[LogRecord]:
    """``count`` records from exchange ``first_exchange / 2``: a request, then its response."""
    for n in range(first_exchange, first_exchange + count):
        exchange, response = divmod(n, 2)
        rest = exchange % 4 == 0
        facts = ExchangeFacts(
            subject_of(exchange), f"EE{exchange % USERS}", f"case-{exchange}" if exchange % 50 == 0 else None
        )
        message = f"{200 if exchange % 10 else 500}\r\nOK\r\n".encode() if rest and response else MESSAGE
        yield LogRecord(
            f"MN-{exchange}", f"x-{exchange}", _client(exchange), _service(exchange), bool(response), rest,
            message, (), SIGNATURE, facts,
        )  # fmt: skip


async def _fill(store: MessageLogStore, total: int) -> None:
    async with store.engine.connect() as conn:
        present = int((await conn.execute(text("SELECT count(*) FROM message_records"))).scalar_one())
    if present >= total:
        print(f"  reusing {present:,} records")
        return
    began = time.perf_counter()
    for first in range(present, total, BATCH):
        at = START + SPAN * (first / total)
        await store.insert_records(list(_records(first, min(BATCH, total - first))), at=at)
        if first and first % (BATCH * 100) == 0:
            print(
                f"  {first:,} records, {(first - present) / (time.perf_counter() - began):,.0f}/s", flush=True
            )
    elapsed = time.perf_counter() - began
    print(f"  inserted {total - present:,} records in {elapsed:.0f} s ({(total - present) / elapsed:,.0f}/s)")
    if store.engine.dialect.name == "postgresql":
        async with store.engine.begin() as conn:
            await conn.execute(text("ANALYZE message_records"))
    else:
        async with store.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))


def _cases(total: int) -> list[tuple[str, LogFilters, int | None]]:
    exchanges = total // 2
    middle = START + SPAN / 2
    return [
        ("data subject", LogFilters(data_subject=subject_of((exchanges // 3) * 2) or ""), None),
        ("X-Road id", LogFilters(query_id=f"MN-{exchanges // 2}"), None),
        ("client", LogFilters(client=_client(exchanges // 7)), None),
        (
            "client + one day",
            LogFilters(client=_client(1), start=middle, end=middle + timedelta(days=1)),
            None,
        ),
        ("service", LogFilters(service=_service(5)), None),
        ("user id", LogFilters(user_id="EE4242"), None),
        ("issue", LogFilters(issue=f"case-{(exchanges // 100) * 50}"), None),
        ("status 500", LogFilters(status=500), None),
        ("one hour", LogFilters(start=middle, end=middle + timedelta(hours=1)), None),
        ("everything, last page", LogFilters(), total - PAGE),
    ]


async def _time(
    store: MessageLogStore, filters: LogFilters, after_id: int | None
) -> tuple[float, float, int]:
    times = []
    found = 0
    for _ in range(RUNS):
        began = time.perf_counter()
        page = await search_log(store, filters, limit=PAGE, after_id=after_id)
        times.append(time.perf_counter() - began)
        found = len(page.records)
    return statistics.median(times), max(times), found


def _large_cache(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA cache_size = -{FILL_CACHE_KIB}")
    cursor.close()


async def _bench(name: str, url: str, total: int, key: SubjectKey, engine_args: dict[str, object]) -> None:
    print(f"{name}: {total:,} records")
    engine = create_engine(url, **engine_args)
    await migrate(engine)
    store = MessageLogStore(engine, subject_key=key)
    if engine.dialect.name == "sqlite":
        # The fill writes through the writer's own engine; a large page cache keeps the random inserts into
        # the hashed-subject and user-id indexes of a 10-million-record table off the disk.
        event.listen(store.writing_engine, "connect", _large_cache)
    try:
        await _fill(store, total)
        for label, filters, after_id in _cases(total):
            median, worst, found = await _time(store, filters, after_id)
            print(
                f"  {label:<24} {median * 1000:8.2f} ms median  {worst * 1000:8.2f} ms worst  ({found} found)"
            )
    finally:
        store.close()
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--ten-million", action="store_true", help="10 million records")
    parser.add_argument("--db", type=Path, help="SQLite file to fill (kept, and reused when full)")
    parser.add_argument("--search-only", action="store_true", help="skip the write throughput part")
    args = parser.parse_args()
    if not args.search_only:
        await messagelog_write.main()
    total = TEN_MILLION if args.ten_million else args.records
    key = SubjectKey(bytes(range(32)))
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "node.db"
        await _bench("SQLite (WAL)", sqlite_url(path), total, key, {})
    pg_url = os.environ.get("XROAD_TEST_PG_URL")
    if pg_url:
        schema = f"bench_messagelog_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg_url)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            args_pg: dict[str, object] = {"connect_args": {"server_settings": {"search_path": schema}}}
            await _bench("PostgreSQL", pg_url, total, key, args_pg)
        finally:
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
