"""Seconds to build the demo agencies' databases: generating the synthetic world, then loading it.

    $ .venv/bin/python bench/demo_data.py [--citizens 5000] [--pg postgresql+asyncpg://...]

Prints the generation time, then, for fresh SQLite files in a temporary directory (the demo's default), the
time of a first build (generation included) and of a second one (which finds every database built and
generates nothing). With ``--pg`` (or ``XROAD_TEST_PG_URL``) the same in a fresh PostgreSQL schema, dropped
afterwards. ``make demo`` must reach serving in under three minutes on a fresh clone; this part should take
a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.demo.data import DEFAULT_CITIZENS, DEFAULT_SEED, generate
from adapters.demo.registries import AGENCIES, BuildReport, build_demo_registries, build_registries
from xroad_mn.database import create_engine


def _line(what: str, report: BuildReport) -> None:
    rows = sum(report.rows.values())
    print(
        f"{what:<34} {report.total_seconds:6.2f} s  (generate {report.generate_seconds:5.2f} s, "
        f"{rows} rows in {len(report.loaded)} databases, {len(report.already_built)} already built)"
    )


async def _postgres(url: str, citizens: int) -> None:
    schema = f"bench_demo_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        targets: dict[str, str | AsyncEngine] = {a.key: engine for a in AGENCIES}
        _line("PostgreSQL, first build", await build_registries(targets, citizens=citizens))
        _line("PostgreSQL, second build", await build_registries(targets, citizens=citizens))
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def run(citizens: int, pg_url: str | None) -> None:
    started = time.perf_counter()
    world = await asyncio.to_thread(generate, DEFAULT_SEED, citizens)
    print(
        f"{'generate':<34} {time.perf_counter() - started:6.2f} s  ({len(world.citizens)} citizens, "
        f"{len(world.vehicles)} vehicles, {len(world.properties)} properties, "
        f"{len(world.contributions)} contributions)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "registries"
        _line("SQLite files, first build", await build_demo_registries(directory, citizens=citizens))
        _line("SQLite files, second build", await build_demo_registries(directory, citizens=citizens))
    if pg_url:
        await _postgres(pg_url, citizens)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--citizens", type=int, default=DEFAULT_CITIZENS, help="size of the world")
    parser.add_argument("--pg", default=os.environ.get("XROAD_TEST_PG_URL"), help="a PostgreSQL URL")
    args = parser.parse_args(argv)
    asyncio.run(run(args.citizens, args.pg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
