"""The demo agencies' databases: one per agency, their tables, and a loader filling them from the generator.

Four agencies keep the registers the demo's services read (table names in brackets):

* the General Authority for State Registration — civil registration (``citizens``), registered addresses
  (``addresses``), property rights (``properties``) and legal entities (``legal_entities``);
* the National Road Transport Centre — vehicles and their owners (``vehicles``);
* the General Department of Taxation — taxpayers, citizens and organisations (``taxpayers``);
* the General Office for Social Insurance — employers (``employers``) and monthly contributions
  (``contributions``).

:func:`build_registries` generates the synthetic world once (:func:`adapters.demo.data.generate`, in a worker
thread) and loads each agency's database at an SQLAlchemy URL — a SQLite file by default
(:func:`registry_urls`), PostgreSQL as well — with one ``executemany`` per table in one transaction. It is
idempotent: every agency's database records the seed and size it was built from (a row of table
``demo_dataset``), a database already built from the same ones is left as it is (and then nothing is
generated), and one built from other ones is refused (``conflict``) rather than mixed. The agencies' table
names differ, so they may also share one database (one PostgreSQL schema, say); on PostgreSQL a builder
holds an advisory lock while it loads, so two builders started at once load everything once::

    >>> import asyncio
    >>> from pathlib import Path
    >>> from adapters.demo.registries import build_demo_registries
    >>> report = asyncio.run(build_demo_registries(Path(".demo/registries")))  # doctest: +SKIP
    >>> report.loaded, report.rows["contributions"]  # doctest: +SKIP
    (('state_registration', 'transport', 'taxation', 'social_insurance'), 23894)
"""

from __future__ import annotations

import asyncio
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

import structlog
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.demo.data import (
    DEFAULT_CITIZENS,
    DEFAULT_SEED,
    Address,
    Dataset,
    PropertyKind,
    TaxpayerKind,
    TaxStatus,
    generate,
)
from adapters.demo.regnum import Sex
from xroad_mn.database import NAMING_CONVENTION, create_engine, sqlite_url, str_enum_column
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError

__all__ = [
    "AGENCIES",
    "GENERATOR_VERSION",
    "Agency",
    "BuildReport",
    "DatasetStamp",
    "build_demo_registries",
    "build_registries",
    "dataset_stamp",
    "load_registry",
    "registry_urls",
]

log = structlog.get_logger(__name__)

GENERATOR_VERSION: Final = 1
"""Bumped whenever :func:`~adapters.demo.data.generate` changes what a seed gives: a database built by an
older generator is refused like one of another seed."""
STAMP_TABLE: Final = "demo_dataset"
PG_LOCK_KEY: Final = 0x786D6E64656D6F
"""The PostgreSQL advisory lock a builder holds while it loads (``xmndemo``)."""
REGNUM: Final = 10
NAME: Final = 64
PLACE: Final = 64
TEXT: Final = 255


def _meta_table(metadata: MetaData) -> Table:
    return Table(
        STAMP_TABLE,
        metadata,
        Column("agency", String(32), primary_key=True),
        Column("seed", BigInteger, nullable=False),
        Column("citizens", Integer, nullable=False),
        Column("generator_version", Integer, nullable=False),
        Column("reference_date", Date, nullable=False),
    )


def _address_columns(prefix: str = "") -> list[Column[Any]]:
    return [
        Column(f"{prefix}aimag_code", String(8), nullable=False),
        Column(f"{prefix}aimag_name", String(PLACE), nullable=False),
        Column(f"{prefix}soum_code", String(8), nullable=False),
        Column(f"{prefix}soum_name", String(PLACE), nullable=False),
        Column(f"{prefix}bag_khoroo", String(PLACE), nullable=False),
        Column(f"{prefix}street", String(PLACE * 2), nullable=False),
        Column(f"{prefix}building", String(PLACE)),
        Column(f"{prefix}apartment", String(PLACE), nullable=False),
        Column(f"{prefix}full_address", String(TEXT), nullable=False),
    ]


def _address_values(address: Address) -> dict[str, object]:
    return {
        "aimag_code": address.aimag_code,
        "aimag_name": address.aimag_name,
        "soum_code": address.soum_code,
        "soum_name": address.soum_name,
        "bag_khoroo": address.unit,
        "street": address.street,
        "building": address.building,
        "apartment": address.apartment,
        "full_address": address.full,
    }


# --- General Authority for State Registration --------------------------------------------------------------

STATE_REGISTRATION: Final = MetaData(naming_convention=NAMING_CONVENTION)
_meta_table(STATE_REGISTRATION)
citizens = Table(
    "citizens",
    STATE_REGISTRATION,
    Column("regnum", String(REGNUM), primary_key=True),
    Column("civil_id", String(12), nullable=False, unique=True),
    Column("clan_name", String(NAME), nullable=False),
    Column("last_name", String(NAME), nullable=False),
    Column("first_name", String(NAME), nullable=False),
    Column("sex", str_enum_column(Sex, "sex"), nullable=False),
    Column("birth_date", Date, nullable=False),
    Column("birth_aimag", String(PLACE), nullable=False),
    Column("birth_soum", String(PLACE), nullable=False),
    Column("nationality", String(NAME), nullable=False),
    Column("passport_number", String(16), unique=True),
    Column("father_regnum", String(REGNUM), ForeignKey("citizens.regnum")),
    Column("mother_regnum", String(REGNUM), ForeignKey("citizens.regnum")),
)
"""Civil registration: a citizen by registration number (XYP WS100101-style)."""
addresses = Table(
    "addresses",
    STATE_REGISTRATION,
    Column("regnum", String(REGNUM), ForeignKey("citizens.regnum"), primary_key=True),
    *_address_columns(),
)
"""A citizen's registered address (XYP WS100103-style)."""
legal_entities = Table(
    "legal_entities",
    STATE_REGISTRATION,
    Column("reg_number", String(7), primary_key=True),
    Column("name", String(TEXT), nullable=False),
    Column("legal_form", String(16), nullable=False),
    Column("sector", String(PLACE), nullable=False),
    Column("aimag_code", String(8), nullable=False),
    Column("soum_name", String(PLACE), nullable=False),
    Column("registered_on", Date, nullable=False),
    Column("director_regnum", String(REGNUM), ForeignKey("citizens.regnum"), nullable=False, index=True),
)
"""Legal entities by their 7-digit state registration number (XYP WS100301-style)."""
properties = Table(
    "properties",
    STATE_REGISTRATION,
    Column("property_number", String(16), primary_key=True),
    Column("kind", str_enum_column(PropertyKind, "property_kind"), nullable=False),
    Column("owner_regnum", String(REGNUM), ForeignKey("citizens.regnum"), nullable=False, index=True),
    Column("area_m2", Float, nullable=False),
    Column("value_mnt", BigInteger, nullable=False),
    Column("certificate_number", String(16), nullable=False, unique=True),
    Column("registered_on", Date, nullable=False),
    *_address_columns(),
)
"""Property rights, with the owner's registration number (XYP WS100201/WS100202-style)."""


def _state_registration_rows(dataset: Dataset) -> list[tuple[Table, list[dict[str, object]]]]:
    return [
        (
            citizens,
            [
                {
                    "regnum": c.regnum,
                    "civil_id": c.civil_id,
                    "clan_name": c.clan_name,
                    "last_name": c.last_name,
                    "first_name": c.first_name,
                    "sex": c.sex,
                    "birth_date": c.birth_date,
                    "birth_aimag": c.birth_aimag,
                    "birth_soum": c.birth_soum,
                    "nationality": "Монгол",
                    "passport_number": c.passport_number,
                    "father_regnum": c.father_regnum,
                    "mother_regnum": c.mother_regnum,
                }
                for c in dataset.citizens
            ],
        ),
        (addresses, [{"regnum": c.regnum, **_address_values(c.address)} for c in dataset.citizens]),
        (
            legal_entities,
            [
                {
                    "reg_number": o.reg_number,
                    "name": o.name,
                    "legal_form": o.legal_form,
                    "sector": o.sector,
                    "aimag_code": o.aimag_code,
                    "soum_name": o.soum_name,
                    "registered_on": o.registered_on,
                    "director_regnum": o.director_regnum,
                }
                for o in dataset.organisations
            ],
        ),
        (
            properties,
            [
                {
                    "property_number": p.property_number,
                    "kind": p.kind,
                    "owner_regnum": p.owner_regnum,
                    "area_m2": float(p.area_m2),
                    "value_mnt": p.value_mnt,
                    "certificate_number": p.certificate_number,
                    "registered_on": p.registered_on,
                    **_address_values(p.address),
                }
                for p in dataset.properties
            ],
        ),
    ]


# --- National Road Transport Centre -------------------------------------------------------------------------

TRANSPORT: Final = MetaData(naming_convention=NAMING_CONVENTION)
_meta_table(TRANSPORT)
vehicles = Table(
    "vehicles",
    TRANSPORT,
    Column("plate", String(16), primary_key=True),
    Column("vin", String(17), nullable=False, unique=True),
    Column("certificate_number", String(16), nullable=False, unique=True),
    Column("make", String(NAME), nullable=False),
    Column("model", String(NAME), nullable=False),
    Column("build_year", Integer, nullable=False),
    Column("colour", String(32), nullable=False),
    Column("fuel", String(32), nullable=False),
    Column("engine_cc", Integer, nullable=False),
    Column("mass_kg", Integer, nullable=False),
    Column("import_date", Date, nullable=False),
    Column("registered_on", Date, nullable=False),
    Column("owner_regnum", String(REGNUM), nullable=False, index=True),
    Column("owner_last_name", String(NAME), nullable=False),
    Column("owner_first_name", String(NAME), nullable=False),
    Column("owner_type", String(16), nullable=False),
    Column("owner_country", String(NAME), nullable=False),
)
"""Vehicles by plate, with their owner as the vehicle register keeps them (XYP WS100401/WS100406-style)."""


def _transport_rows(dataset: Dataset) -> list[tuple[Table, list[dict[str, object]]]]:
    owners = {c.regnum: c for c in dataset.citizens}
    return [
        (
            vehicles,
            [
                {
                    "plate": v.plate,
                    "vin": v.vin,
                    "certificate_number": v.certificate_number,
                    "make": v.make,
                    "model": v.model,
                    "build_year": v.build_year,
                    "colour": v.colour,
                    "fuel": v.fuel,
                    "engine_cc": v.engine_cc,
                    "mass_kg": v.mass_kg,
                    "import_date": v.import_date,
                    "registered_on": v.registered_on,
                    "owner_regnum": v.owner_regnum,
                    "owner_last_name": owners[v.owner_regnum].last_name,
                    "owner_first_name": owners[v.owner_regnum].first_name,
                    "owner_type": "citizen",
                    "owner_country": "Монгол",
                }
                for v in dataset.vehicles
            ],
        )
    ]


# --- General Department of Taxation -------------------------------------------------------------------------

TAXATION: Final = MetaData(naming_convention=NAMING_CONVENTION)
_meta_table(TAXATION)
taxpayers = Table(
    "taxpayers",
    TAXATION,
    Column("tin", String(REGNUM), primary_key=True),
    Column("kind", str_enum_column(TaxpayerKind, "taxpayer_kind"), nullable=False),
    Column("name", String(TEXT), nullable=False),
    Column("status", str_enum_column(TaxStatus, "tax_status"), nullable=False),
    Column("vat_payer", Boolean, nullable=False),
    Column("registered_on", Date, nullable=False),
    Column("tax_office", String(TEXT), nullable=False),
    Column("arrears_mnt", BigInteger, nullable=False),
    Column("last_filing_year", Integer),
)
"""Taxpayers by number: a citizen's registration number or an organisation's (XYP WS100601-style)."""


def _taxation_rows(dataset: Dataset) -> list[tuple[Table, list[dict[str, object]]]]:
    return [
        (
            taxpayers,
            [
                {
                    "tin": t.tin,
                    "kind": t.kind,
                    "name": t.name,
                    "status": t.status,
                    "vat_payer": t.vat_payer,
                    "registered_on": t.registered_on,
                    "tax_office": t.tax_office,
                    "arrears_mnt": t.arrears_mnt,
                    "last_filing_year": t.last_filing_year,
                }
                for t in dataset.taxpayers
            ],
        )
    ]


# --- General Office for Social Insurance --------------------------------------------------------------------

SOCIAL_INSURANCE: Final = MetaData(naming_convention=NAMING_CONVENTION)
_meta_table(SOCIAL_INSURANCE)
employers = Table(
    "employers",
    SOCIAL_INSURANCE,
    Column("reg_number", String(7), primary_key=True),
    Column("name", String(TEXT), nullable=False),
    Column("aimag_code", String(8), nullable=False),
)
"""Organisations registered as employers."""
contributions = Table(
    "contributions",
    SOCIAL_INSURANCE,
    Column("regnum", String(REGNUM), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("month", Integer, primary_key=True),
    Column("employer_reg_number", String(7), ForeignKey("employers.reg_number"), nullable=False, index=True),
    Column("salary_mnt", BigInteger, nullable=False),
    Column("employer_mnt", BigInteger, nullable=False),
    Column("employee_mnt", BigInteger, nullable=False),
    Column("paid_on", Date, nullable=False),
)
"""Monthly contributions per insured person (XYP WS100501/WS100512/WS100542-style)."""


def _social_insurance_rows(dataset: Dataset) -> list[tuple[Table, list[dict[str, object]]]]:
    paying = {c.employer_reg_number for c in dataset.contributions}
    return [
        (
            employers,
            [
                {"reg_number": o.reg_number, "name": o.name, "aimag_code": o.aimag_code}
                for o in dataset.organisations
                if o.reg_number in paying
            ],
        ),
        (
            contributions,
            [
                {
                    "regnum": c.regnum,
                    "year": c.year,
                    "month": c.month,
                    "employer_reg_number": c.employer_reg_number,
                    "salary_mnt": c.salary_mnt,
                    "employer_mnt": c.employer_mnt,
                    "employee_mnt": c.employee_mnt,
                    "paid_on": c.paid_on,
                }
                for c in dataset.contributions
            ],
        ),
    ]


# --- agencies and the loader -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agency:
    """An agency and its database: its tables and how the dataset fills them (parents before children)."""

    key: str
    """Name of its database (``state_registration`` → ``state_registration.db``)."""
    name: str
    name_mn: str
    metadata: MetaData
    rows: Callable[[Dataset], list[tuple[Table, list[dict[str, object]]]]] = field(repr=False)

    @property
    def tables(self) -> tuple[str, ...]:
        """Its register tables (not the ``demo_dataset`` stamp)."""
        return tuple(name for name in self.metadata.tables if name != STAMP_TABLE)


AGENCIES: Final = (
    Agency(
        "state_registration",
        "General Authority for State Registration",
        "Улсын бүртгэлийн ерөнхий газар",
        STATE_REGISTRATION,
        _state_registration_rows,
    ),
    Agency(
        "transport",
        "National Road Transport Centre",
        "Авто тээврийн үндэсний төв",
        TRANSPORT,
        _transport_rows,
    ),
    Agency("taxation", "General Department of Taxation", "Татварын ерөнхий газар", TAXATION, _taxation_rows),
    Agency(
        "social_insurance",
        "General Office for Social Insurance",
        "Нийгмийн даатгалын ерөнхий газар",
        SOCIAL_INSURANCE,
        _social_insurance_rows,
    ),
)
"""The demo's agencies, each with a database of its own."""


@dataclass(frozen=True, slots=True)
class DatasetStamp:
    """What a database was built from."""

    seed: int
    citizens: int
    generator_version: int
    reference_date: date


@dataclass(frozen=True)
class BuildReport:
    """What :func:`build_registries` did: the agencies it loaded now and those it found already built, the
    rows it inserted per table and how long it took (``generate_seconds`` is 0 when nothing was
    generated)."""

    loaded: tuple[str, ...]
    already_built: tuple[str, ...]
    rows: Mapping[str, int]
    generate_seconds: float
    total_seconds: float


def registry_urls(directory: Path) -> dict[str, str]:
    """The default databases: a SQLite file per agency in ``directory`` (``state_registration.db``, ...)."""
    return {agency.key: sqlite_url(directory / f"{agency.key}.db") for agency in AGENCIES}


def _stamp_of(conn: Connection, agency: Agency) -> DatasetStamp | None:
    if not inspect(conn).has_table(STAMP_TABLE):
        return None
    table = agency.metadata.tables[STAMP_TABLE]
    row = conn.execute(
        select(table.c.seed, table.c.citizens, table.c.generator_version, table.c.reference_date).where(
            table.c.agency == agency.key
        )
    ).first()
    if row is None:
        return None
    return DatasetStamp(row.seed, row.citizens, row.generator_version, row.reference_date)


async def dataset_stamp(engine: AsyncEngine, agency: Agency) -> DatasetStamp | None:
    """What the agency's database at ``engine`` was built from, or ``None`` when it is not built (creates
    nothing). A database that cannot be read is ``io_error``."""
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_stamp_of, agency)
    except SQLAlchemyError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot read the {agency.key} database: {e}") from e


def _check_stamp(agency: Agency, stamp: DatasetStamp, seed: int, size: int) -> None:
    if (stamp.seed, stamp.citizens, stamp.generator_version) != (seed, size, GENERATOR_VERSION):
        raise XRoadError(
            FaultCode.CONFLICT,
            f"the {agency.key} database was built from seed {stamp.seed} with {stamp.citizens} citizens "
            f"(generator {stamp.generator_version}), not seed {seed} with {size} (generator "
            f"{GENERATOR_VERSION}); remove it to rebuild",
            details={"agency": agency.key, "seed": stamp.seed, "citizens": stamp.citizens},
            kind=ErrorKind.CONFLICT,
        )


@dataclass(frozen=True)
class _Batch:
    """The rows of one table, ready for one ``executemany``: positional driver parameters for ``sql``, or
    (a dialect with named parameters) SQLAlchemy's own parameter mappings when ``sql`` is ``None``."""

    table: Table
    sql: str | None
    params: list[Any]


def _batches(agency: Agency, dataset: Dataset, dialect: Dialect) -> list[_Batch]:
    """The agency's rows as driver parameters: SQLAlchemy's per-row parameter processing would cost more
    than the database's own work, so dates (SQLite) and enums are converted here, column by column, in a
    worker thread. Values stay bound parameters."""
    sqlite = dialect.name == "sqlite"
    batches = []
    for table, rows in agency.rows(dataset):
        compiled = insert(table).compile(dialect=dialect)
        names = compiled.positiontup
        if not names or len(names) < 2:  # named parameters; or one column, which itemgetter gives bare
            batches.append(_Batch(table, None, rows))
            continue
        converters: list[tuple[str, Callable[[Any], object]]] = []
        for name in names:
            column_type = table.c[name].type
            if isinstance(column_type, Enum):
                converters.append((name, operator.attrgetter("value")))
            elif sqlite and isinstance(column_type, Date):
                converters.append((name, date.isoformat))  # SQLAlchemy's SQLite DATE storage format
        for row in rows:
            for name, convert in converters:
                value = row[name]
                if value is not None:
                    row[name] = convert(value)
        getter = operator.itemgetter(*names)
        batches.append(_Batch(table, compiled.string, [getter(row) for row in rows]))
    return batches


def _fill(
    conn: Connection, agency: Agency, dataset: Dataset, batches: Sequence[_Batch]
) -> dict[str, int] | None:
    """In the caller's transaction: create the tables, then insert every table's rows and the stamp, unless
    a stamp is there already (``None``: nothing done)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
    agency.metadata.create_all(conn, checkfirst=True)
    stamp = _stamp_of(conn, agency)
    if stamp is not None:
        _check_stamp(agency, stamp, dataset.seed, len(dataset.citizens))
        return None
    counts: dict[str, int] = {}
    for batch in batches:
        if batch.params and batch.sql is not None:
            conn.exec_driver_sql(batch.sql, batch.params)
        elif batch.params:
            conn.execute(insert(batch.table), batch.params)
        counts[batch.table.name] = len(batch.params)
    conn.execute(
        insert(agency.metadata.tables[STAMP_TABLE]).values(
            agency=agency.key,
            seed=dataset.seed,
            citizens=len(dataset.citizens),
            generator_version=GENERATOR_VERSION,
            reference_date=dataset.reference_date,
        )
    )
    return counts


async def load_registry(engine: AsyncEngine, agency: Agency, dataset: Dataset) -> dict[str, int] | None:
    """Create and fill the agency's database at ``engine`` from ``dataset`` in one transaction; the rows
    inserted per table, or ``None`` when it was already built from the same seed and size (nothing done).
    Built from another seed, size or generator: ``conflict``; a database error: ``io_error`` (and nothing
    is left half-loaded)."""
    batches = await asyncio.to_thread(_batches, agency, dataset, engine.dialect)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(_fill, agency, dataset, batches)
    except SQLAlchemyError as e:
        reason = getattr(e, "orig", None) or e  # the driver's words, not the SQL and its 40,000 parameters
        raise XRoadError(FaultCode.IO_ERROR, f"cannot load the {agency.key} database: {reason}") from e


async def build_registries(
    targets: Mapping[str, str | AsyncEngine],
    *,
    seed: int = DEFAULT_SEED,
    citizens: int = DEFAULT_CITIZENS,
) -> BuildReport:
    """Build the databases of the agencies named in ``targets`` (agency key → URL or engine; see
    :func:`registry_urls`) from the world of ``seed`` with ``citizens`` citizens. The world is generated
    (in a worker thread) only when some database is not built yet; databases already built from the same
    seed and size are left as they are. An unknown agency key is ``invalid_settings``."""
    known = {agency.key: agency for agency in AGENCIES}
    unknown = sorted(set(targets) - set(known))
    if unknown:
        raise XRoadError(FaultCode.INVALID_SETTINGS, f"no demo agency named {', '.join(unknown)}")
    started = time.perf_counter()
    engines = {key: create_engine(t) if isinstance(t, str) else t for key, t in targets.items()}
    try:
        pending: list[Agency] = []
        built: list[str] = []
        for key in targets:
            stamp = await dataset_stamp(engines[key], known[key])
            if stamp is None:
                pending.append(known[key])
            else:
                _check_stamp(known[key], stamp, seed, citizens)
                built.append(key)
        rows: dict[str, int] = {}
        generate_seconds = 0.0
        loaded: list[str] = []
        if pending:
            dataset = await asyncio.to_thread(generate, seed, citizens)
            generate_seconds = time.perf_counter() - started
            for agency in pending:
                counts = await load_registry(engines[agency.key], agency, dataset)
                if counts is None:  # another builder got there first
                    built.append(agency.key)
                    continue
                rows.update(counts)
                loaded.append(agency.key)
        report = BuildReport(
            tuple(loaded), tuple(built), rows, generate_seconds, time.perf_counter() - started
        )
        log.info(
            "demo registries built",
            loaded=report.loaded,
            already_built=report.already_built,
            rows=sum(rows.values()),
            generate_seconds=round(generate_seconds, 3),
            total_seconds=round(report.total_seconds, 3),
        )
        return report
    finally:
        for key, target in targets.items():
            if isinstance(target, str):
                await engines[key].dispose()


async def build_demo_registries(
    directory: Path, *, seed: int = DEFAULT_SEED, citizens: int = DEFAULT_CITIZENS
) -> BuildReport:
    """:func:`build_registries` on the default SQLite files in ``directory`` (created when missing)."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    return await build_registries(registry_urls(directory), seed=seed, citizens=citizens)
