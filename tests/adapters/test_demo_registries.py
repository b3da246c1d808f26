"""adapters.demo.registries: the agencies' databases built from the synthetic world on SQLite (a file per
agency) and PostgreSQL (the four agencies in one schema of their own): the rows are the world's, a second
build does nothing, a database of another world is refused, a failed load leaves nothing half-done, and two
builders at once load everything once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.demo.data import Dataset, PropertyKind, TaxpayerKind, generate
from adapters.demo.registries import (
    AGENCIES,
    Agency,
    build_demo_registries,
    build_registries,
    dataset_stamp,
    registry_urls,
)
from xroad_mn.database import create_engine, sqlite_url
from xroad_mn.errors import XRoadError

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SEED = 5
SIZE = 600
KEYS = tuple(agency.key for agency in AGENCIES)
BY_KEY = {agency.key: agency for agency in AGENCIES}


@dataclass(frozen=True)
class Databases:
    """An engine per agency (on PostgreSQL the same engine for all)."""

    engines: Mapping[str, AsyncEngine]

    @property
    def targets(self) -> dict[str, str | AsyncEngine]:
        return dict(self.engines)

    async def count(self, key: str, table: str) -> int:
        async with self.engines[key].connect() as conn:
            return (
                await conn.execute(select(func.count()).select_from(BY_KEY[key].metadata.tables[table]))
            ).scalar_one()

    async def counts(self) -> dict[str, int]:
        return {t: await self.count(a.key, t) for a in AGENCIES for t in a.tables}


@pytest.fixture(params=BACKENDS)
async def databases(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Databases]:
    """Empty databases of each backend: a SQLite file per agency, or one fresh PostgreSQL schema for all."""
    if request.param == "sqlite":
        engines = {key: create_engine(sqlite_url(tmp_path / f"{key}.db")) for key in KEYS}
        try:
            yield Databases(engines)
        finally:
            for engine in engines.values():
                await engine.dispose()
        return
    pg_url: str = request.getfixturevalue("postgres_url")
    schema = f"demo_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(pg_url, connect_args={"server_settings": {"search_path": schema}})
    try:
        yield Databases(dict.fromkeys(KEYS, engine))
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture(scope="module")
def world() -> Dataset:
    return generate(SEED, SIZE)


def _expected_counts(world: Dataset) -> dict[str, int]:
    return {
        "citizens": len(world.citizens),
        "addresses": len(world.citizens),
        "legal_entities": len(world.organisations),
        "properties": len(world.properties),
        "vehicles": len(world.vehicles),
        "taxpayers": len(world.taxpayers),
        "employers": len({c.employer_reg_number for c in world.contributions}),
        "contributions": len(world.contributions),
    }


async def test_a_build_loads_every_register_with_the_worlds_rows(
    databases: Databases, world: Dataset
) -> None:
    report = await build_registries(databases.targets, seed=SEED, citizens=SIZE)
    assert report.loaded == KEYS
    assert report.already_built == ()
    assert dict(report.rows) == _expected_counts(world)
    assert await databases.counts() == _expected_counts(world)
    assert report.generate_seconds > 0

    person = world.citizens[-1]
    sr = BY_KEY["state_registration"].metadata.tables
    async with databases.engines["state_registration"].connect() as conn:
        row = (
            await conn.execute(select(sr["citizens"]).where(sr["citizens"].c.regnum == person.regnum))
        ).one()
        address = (
            await conn.execute(select(sr["addresses"]).where(sr["addresses"].c.regnum == person.regnum))
        ).one()
        props = sr["properties"]
        owned = (
            await conn.execute(
                select(props.c.property_number, props.c.kind, props.c.area_m2).order_by(
                    props.c.property_number
                )
            )
        ).all()
    assert (row.clan_name, row.last_name, row.first_name) == (
        person.clan_name,
        person.last_name,
        person.first_name,
    )
    assert row.birth_date == person.birth_date
    assert isinstance(row.birth_date, date)
    assert row.sex is person.sex
    assert row.father_regnum == person.father_regnum
    assert address.full_address == person.address.full
    assert address.soum_name == person.address.soum_name
    expected = sorted((p.property_number, p.kind, float(p.area_m2)) for p in world.properties)
    assert [tuple(r) for r in owned] == expected
    assert all(isinstance(kind, PropertyKind) for _, kind, _ in owned)

    tx = BY_KEY["taxation"].metadata.tables["taxpayers"]
    async with databases.engines["taxation"].connect() as conn:
        kinds: dict[TaxpayerKind, int] = dict(
            (await conn.execute(select(tx.c.kind, func.count()).group_by(tx.c.kind))).all()
        )
    assert kinds == {TaxpayerKind.CITIZEN: SIZE, TaxpayerKind.ORGANISATION: len(world.organisations)}

    si = BY_KEY["social_insurance"].metadata.tables["contributions"]
    async with databases.engines["social_insurance"].connect() as conn:
        paid = dict(
            (await conn.execute(select(si.c.regnum, func.sum(si.c.salary_mnt)).group_by(si.c.regnum))).all()
        )
    expected_paid: dict[str, int] = {}
    for c in world.contributions:
        expected_paid[c.regnum] = expected_paid.get(c.regnum, 0) + c.salary_mnt
    assert {k: int(v) for k, v in paid.items()} == expected_paid


async def test_owners_in_one_register_are_citizens_of_the_civil_register(databases: Databases) -> None:
    await build_registries(databases.targets, seed=SEED, citizens=SIZE)

    async def column(key: str, table: str, name: str) -> set[str]:
        t = BY_KEY[key].metadata.tables[table]
        async with databases.engines[key].connect() as conn:
            return set((await conn.execute(select(t.c[name]))).scalars())

    citizens = await column("state_registration", "citizens", "regnum")
    assert len(citizens) == SIZE
    assert await column("state_registration", "addresses", "regnum") == citizens
    assert await column("state_registration", "properties", "owner_regnum") <= citizens
    assert await column("transport", "vehicles", "owner_regnum") <= citizens
    assert await column("social_insurance", "contributions", "regnum") <= citizens
    assert citizens <= await column("taxation", "taxpayers", "tin")
    employers = await column("social_insurance", "employers", "reg_number")
    assert employers <= await column("state_registration", "legal_entities", "reg_number")


async def test_a_second_build_does_nothing_and_generates_nothing(
    databases: Databases, world: Dataset
) -> None:
    await build_registries(databases.targets, seed=SEED, citizens=SIZE)
    before = await databases.counts()
    again = await build_registries(databases.targets, seed=SEED, citizens=SIZE)
    assert again.loaded == ()
    assert again.already_built == KEYS
    assert again.rows == {}
    assert again.generate_seconds == 0
    assert await databases.counts() == before == _expected_counts(world)
    for agency in AGENCIES:
        stamp = await dataset_stamp(databases.engines[agency.key], agency)
        assert stamp is not None
        assert (stamp.seed, stamp.citizens) == (SEED, SIZE)


@pytest.mark.parametrize(("seed", "size"), [(SEED + 1, SIZE), (SEED, SIZE + 1)])
async def test_a_database_of_another_world_is_refused_and_kept(
    databases: Databases, seed: int, size: int
) -> None:
    await build_registries(databases.targets, seed=SEED, citizens=SIZE)
    before = await databases.counts()
    with pytest.raises(XRoadError) as exc:
        await build_registries(databases.targets, seed=seed, citizens=size)
    assert exc.value.has_code("conflict")
    assert "remove it to rebuild" in exc.value.message
    assert await databases.counts() == before


async def test_a_failed_load_leaves_nothing_half_done_and_a_later_build_finishes(
    databases: Databases, world: Dataset
) -> None:
    taxation = BY_KEY["taxation"]
    squatter = world.taxpayers[len(world.taxpayers) // 2]
    async with databases.engines["taxation"].begin() as conn:
        await conn.run_sync(lambda sync: taxation.metadata.tables["taxpayers"].create(sync))
        await conn.execute(
            insert(taxation.metadata.tables["taxpayers"]).values(
                tin=squatter.tin, kind=squatter.kind, name="squatter", status=squatter.status,
                vat_payer=False, registered_on=date(2000, 1, 1), tax_office="-", arrears_mnt=0,
                last_filing_year=None,
            )
        )  # fmt: skip

    with pytest.raises(XRoadError) as exc:
        await build_registries(databases.targets, seed=SEED, citizens=SIZE)
    assert exc.value.has_code("io_error")
    assert "taxation" in exc.value.message
    assert len(exc.value.message) < 500  # the driver's reason, not the statement with its parameters
    assert await dataset_stamp(databases.engines["taxation"], taxation) is None
    assert await databases.count("taxation", "taxpayers") == 1  # none of the world's rows stayed
    # the agencies before it were loaded, each in its own transaction; the ones after it were not
    assert await databases.count("state_registration", "citizens") == SIZE
    assert await dataset_stamp(databases.engines["social_insurance"], BY_KEY["social_insurance"]) is None

    async with databases.engines["taxation"].begin() as conn:
        await conn.execute(taxation.metadata.tables["taxpayers"].delete())
    report = await build_registries(databases.targets, seed=SEED, citizens=SIZE)
    assert report.loaded == ("taxation", "social_insurance")
    assert report.already_built == ("state_registration", "transport")
    assert await databases.counts() == _expected_counts(world)


async def test_two_builders_at_once_load_everything_once(databases: Databases, world: Dataset) -> None:
    first, second = await asyncio.gather(
        build_registries(databases.targets, seed=SEED, citizens=SIZE),
        build_registries(databases.targets, seed=SEED, citizens=SIZE),
    )
    assert sorted(first.loaded + second.loaded) == sorted(KEYS)
    assert sorted(first.already_built + second.already_built) == sorted(KEYS)
    assert await databases.counts() == _expected_counts(world)


async def test_only_the_agencies_named_are_built(databases: Databases) -> None:
    report = await build_registries({"transport": databases.engines["transport"]}, seed=SEED, citizens=SIZE)
    assert report.loaded == ("transport",)
    assert await dataset_stamp(databases.engines["taxation"], BY_KEY["taxation"]) is None


async def test_an_unknown_agency_is_invalid_settings(databases: Databases) -> None:
    with pytest.raises(XRoadError) as exc:
        await build_registries({"khan_bank": databases.engines["transport"]})
    assert exc.value.has_code("invalid_settings")


async def test_the_default_databases_are_sqlite_files_with_their_foreign_keys_kept(tmp_path: Path) -> None:
    directory = tmp_path / "demo" / "registries"
    report = await build_demo_registries(directory, seed=SEED, citizens=SIZE)
    assert report.loaded == KEYS
    assert sorted(p.name for p in directory.glob("*.db")) == sorted(f"{key}.db" for key in KEYS)
    for key, url in registry_urls(directory).items():
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                assert (await conn.execute(text("PRAGMA foreign_key_check"))).all() == []
                assert (await conn.execute(text("PRAGMA integrity_check"))).scalar_one() == "ok"
        finally:
            await engine.dispose()
        assert key in report.loaded
    again = await build_demo_registries(directory, seed=SEED, citizens=SIZE)
    assert again.already_built == KEYS


def test_every_agency_has_its_own_tables() -> None:
    names = [name for agency in AGENCIES for name in agency.tables]
    assert len(names) == len(set(names))  # so they may share one database
    assert {a.key: a.tables for a in AGENCIES} == {
        "state_registration": ("citizens", "addresses", "legal_entities", "properties"),
        "transport": ("vehicles",),
        "taxation": ("taxpayers",),
        "social_insurance": ("employers", "contributions"),
    }
    assert all(isinstance(a, Agency) and a.name and a.name_mn for a in AGENCIES)
