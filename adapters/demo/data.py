"""The demo's synthetic Mongolia: citizens, organisations, vehicles, property, taxpayers and social insurance.

:func:`generate` builds the whole world from a seed, deterministically: the same seed and size give the
same records, and :func:`dataset_json` the same bytes, on every run and machine (only :class:`random.Random`
with an integer seed, integer arithmetic for money, no clock, no set iteration). The world's "today" is
:data:`REFERENCE_DATE`::

    >>> from adapters.demo.data import dataset_json, generate
    >>> world = generate(seed=7, citizens=300)
    >>> len(world.citizens)
    300
    >>> person = world.citizens[0]
    >>> person.regnum[:2], person.clan_name, person.last_name, person.first_name  # doctest: +SKIP
    ('УЖ', 'Боржигин', 'Ганболд', 'Тэмүүлэн')
    >>> dataset_json(generate(seed=7, citizens=300)) == dataset_json(world)
    True

Citizens come in households sharing an address: a father (whose given name is his children's last name
and whose clan name they carry), a mother with her own clan and father's names, and their children, born
when the mother was 20 to 42; and people living alone. Every registration number is valid and encodes the
holder's birth date and sex; its letters name the aimag and soum of birth. Adults may own vehicles (plates
by the aimag they live in, VINs with a correct check digit) and property, work for an organisation (a
7-digit registration number) that pays monthly social insurance contributions for them, and every citizen
and organisation has a taxpayer record.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Final, Generic, TypeVar

from adapters.demo.geography import AIMAGS, PLATE_SERIES_LETTERS, Aimag, Soum
from adapters.demo.names import (
    CLAN_NAMES,
    COMPANY_FORMS,
    COMPANY_WORDS,
    FEMALE_NAMES,
    MALE_NAMES,
    UB_STREETS,
)
from adapters.demo.regnum import MAX_SERIAL, Sex, make_regnum

__all__ = [
    "DEFAULT_CITIZENS",
    "DEFAULT_SEED",
    "EMPLOYEE_RATE_PERMILLE",
    "EMPLOYER_RATE_PERMILLE",
    "MINIMUM_WAGE_MNT",
    "REFERENCE_DATE",
    "Address",
    "Citizen",
    "Contribution",
    "Dataset",
    "Organisation",
    "Property",
    "PropertyKind",
    "TaxStatus",
    "Taxpayer",
    "TaxpayerKind",
    "Vehicle",
    "dataset_digest",
    "dataset_json",
    "generate",
    "vin_check_digit",
]

REFERENCE_DATE: Final = date(2025, 3, 1)
"""The synthetic world's "today": births, registrations and payments are all before it."""
CONTRIBUTION_YEAR: Final = 2024
"""The year of monthly social insurance contributions (each paid in the following month)."""
DEFAULT_SEED: Final = 11
DEFAULT_CITIZENS: Final = 5000
MAX_AGE: Final = 95
ADULT_AGE: Final = 18
RETIREMENT_AGE: Final = 65
MINIMUM_WAGE_MNT: Final = 660_000
"""The monthly minimum wage of 2024, in tögrög."""
EMPLOYER_RATE_PERMILLE: Final = 125
EMPLOYEE_RATE_PERMILLE: Final = 115
"""Social insurance contribution rates (per mille of the salary) paid by the employer and the employee."""

V = TypeVar("V")


class TaxpayerKind(StrEnum):
    CITIZEN = "citizen"
    ORGANISATION = "organisation"


class TaxStatus(StrEnum):
    ACTIVE = "active"
    """Registered and filing."""
    INACTIVE = "inactive"
    """Registered, with nothing to file (no income of its own)."""
    SUSPENDED = "suspended"
    """Operations suspended (unpaid arrears)."""
    DEREGISTERED = "deregistered"
    """An organisation that was liquidated."""


class PropertyKind(StrEnum):
    APARTMENT = "apartment"
    HOUSE = "house"
    LAND = "land"
    GARAGE = "garage"


@dataclass(frozen=True, slots=True)
class Address:
    """A registered address: aimag or city, soum or district, bag or khoroo, street, building, apartment."""

    aimag_code: str
    aimag_name: str
    soum_code: str
    soum_name: str
    unit: str
    """The bag or khoroo (``3-р хороо``)."""
    street: str
    building: str | None
    """An apartment block (``15-р байр``), or ``None`` for a house in a ger district."""
    apartment: str
    """Apartment or yard number (``42 тоот``)."""

    @property
    def full(self) -> str:
        """The address as one line, capital to apartment::

        >>> Address("MN-1", "Улаанбаатар", "104", "Баянзүрх", "26-р хороо", "Энхтайваны өргөн чөлөө",
        ...         "15-р байр", "42 тоот").full
        'Улаанбаатар хот, Баянзүрх дүүрэг, 26-р хороо, Энхтайваны өргөн чөлөө, 15-р байр, 42 тоот'
        """
        capital = self.aimag_code == "MN-1"
        parts = [
            f"{self.aimag_name} {'хот' if capital else 'аймаг'}",
            f"{self.soum_name} {'дүүрэг' if capital else 'сум'}",
            self.unit,
            self.street,
        ]
        if self.building is not None:
            parts.append(self.building)
        parts.append(self.apartment)
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Citizen:
    """A citizen as the civil registry knows them."""

    regnum: str
    civil_id: str
    """The 12-digit civil identifier of the ID card."""
    clan_name: str
    last_name: str
    """The father's given name (the mother's when no father is registered)."""
    first_name: str
    sex: Sex
    birth_date: date
    birth_aimag: str
    birth_soum: str
    address: Address
    passport_number: str | None
    father_regnum: str | None
    mother_regnum: str | None


@dataclass(frozen=True, slots=True)
class Organisation:
    """A legal entity with its 7-digit state registration number."""

    reg_number: str
    name: str
    legal_form: str
    sector: str
    aimag_code: str
    soum_name: str
    registered_on: date
    director_regnum: str


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A registered vehicle and its owner."""

    plate: str
    vin: str
    certificate_number: str
    make: str
    model: str
    build_year: int
    colour: str
    fuel: str
    engine_cc: int
    mass_kg: int
    import_date: date
    registered_on: date
    owner_regnum: str


@dataclass(frozen=True, slots=True)
class Property:
    """A property right: an apartment, a house, a land plot or a garage, and its owner."""

    property_number: str
    kind: PropertyKind
    address: Address
    area_m2: Decimal
    value_mnt: int
    """Assessed value in tögrög."""
    certificate_number: str
    registered_on: date
    owner_regnum: str


@dataclass(frozen=True, slots=True)
class Taxpayer:
    """A taxpayer: a citizen (taxpayer number = registration number) or an organisation."""

    tin: str
    kind: TaxpayerKind
    name: str
    status: TaxStatus
    vat_payer: bool
    registered_on: date
    tax_office: str
    arrears_mnt: int
    last_filing_year: int | None


@dataclass(frozen=True, slots=True)
class Contribution:
    """One month's social insurance contribution an employer paid for an employee."""

    regnum: str
    employer_reg_number: str
    year: int
    month: int
    salary_mnt: int
    employer_mnt: int
    employee_mnt: int
    paid_on: date


@dataclass(frozen=True, slots=True)
class Dataset:
    """The whole synthetic world of one seed."""

    seed: int
    reference_date: date
    citizens: tuple[Citizen, ...]
    organisations: tuple[Organisation, ...]
    vehicles: tuple[Vehicle, ...]
    properties: tuple[Property, ...]
    taxpayers: tuple[Taxpayer, ...]
    contributions: tuple[Contribution, ...]


# --- sampling helpers ---------------------------------------------------------------------------------------


class _Weighted(Generic[V]):
    """Values with integer weights, sampled by cumulative weight (one bisect per draw)."""

    def __init__(self, pairs: Sequence[tuple[V, int]]) -> None:
        self.values = [v for v, _ in pairs]
        self.cumulative = list(itertools.accumulate(w for _, w in pairs))

    def pick(self, rng: random.Random) -> V:
        return self.values[bisect.bisect_right(self.cumulative, rng.randrange(self.cumulative[-1]))]


_AIMAG_PICK: Final = _Weighted([(a, a.population) for a in AIMAGS])
_SOUM_PICKS: Final = {a.code: _Weighted([(s, s.weight) for s in a.soums]) for a in AIMAGS}
_CLANS: Final = _Weighted(CLAN_NAMES)
_MALE: Final = _Weighted(MALE_NAMES)
_FEMALE: Final = _Weighted(FEMALE_NAMES)
_FORMS: Final = _Weighted(COMPANY_FORMS)
_CHILDREN: Final = _Weighted([(0, 2), (1, 4), (2, 5), (3, 3), (4, 1)])

SECTORS: Final = (
    "Уул уурхай", "Барилга", "Худалдаа", "Боловсрол", "Эрүүл мэнд", "Санхүү", "Тээвэр", "Хөдөө аж ахуй",
    "Мэдээлэл, харилцаа холбоо", "Төрийн захиргаа", "Аялал жуулчлал", "Үйлдвэрлэл",
)  # fmt: skip
COLOURS: Final = _Weighted(
    [("Цагаан", 30), ("Мөнгөлөг", 20), ("Хар", 18), ("Саарал", 12), ("Улаан", 5), ("Цэнхэр", 5),
     ("Хүрэн", 4), ("Ногоон", 3), ("Шар", 1)]
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Model:
    make: str
    model: str
    wmi: str
    fuel: str
    engine_cc: int
    mass_kg: int
    first_year: int


_MODELS: Final = _Weighted(
    [
        (_Model("Toyota", "Prius", "JTD", "Хайбрид", 1800, 1380, 2004), 30),
        (_Model("Toyota", "Aqua", "JTD", "Хайбрид", 1500, 1100, 2012), 5),
        (_Model("Toyota", "Land Cruiser 200", "JTM", "Дизель", 4500, 2600, 2008), 6),
        (_Model("Toyota", "Land Cruiser Prado", "JTE", "Бензин", 2700, 2100, 2003), 6),
        (_Model("Toyota", "Camry", "JTN", "Бензин", 2500, 1500, 2002), 3),
        (_Model("Toyota", "Harrier", "JTE", "Хайбрид", 2500, 1700, 2005), 3),
        (_Model("Lexus", "LX 570", "JTJ", "Бензин", 5700, 2700, 2008), 2),
        (_Model("Lexus", "RX 450h", "JTJ", "Хайбрид", 3500, 2100, 2009), 2),
        (_Model("Hyundai", "Accent", "KMH", "Бензин", 1600, 1150, 2000), 4),
        (_Model("Hyundai", "Sonata", "KMH", "Газ", 2000, 1500, 2005), 4),
        (_Model("Hyundai", "Elantra", "KMH", "Бензин", 1600, 1300, 2006), 3),
        (_Model("Hyundai", "Porter II", "KMF", "Дизель", 2500, 1900, 2004), 4),
        (_Model("Hyundai", "Santa Fe", "KMH", "Дизель", 2200, 1900, 2006), 2),
        (_Model("Nissan", "X-Trail", "JN1", "Бензин", 2000, 1550, 2001), 3),
        (_Model("Mitsubishi", "Delica", "JA4", "Дизель", 2800, 2000, 1995), 3),
        (_Model("Honda", "Fit", "JHM", "Хайбрид", 1500, 1100, 2010), 3),
        (_Model("УАЗ", "469", "XTT", "Бензин", 2400, 1650, 1995), 3),
        (_Model("УАЗ", "452 Фургон", "XTT", "Бензин", 2700, 1850, 1995), 3),
        (_Model("Kia", "Bongo III", "KNC", "Дизель", 2500, 1850, 2005), 2),
    ]
)

_VIN_CHARS: Final = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_VIN_VALUES: Final = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS: Final = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_YEARS: Final = "ABCDEFGHJKLMNPRSTVWXY123456789"
"""Model-year codes of VIN position 10, from 1980 (A) in a 30-year cycle."""


def vin_check_digit(vin: str) -> str:
    """The check digit (position 9) of a 17-character VIN, ISO 3779 / 49 CFR 565::

    >>> vin_check_digit("1M8GDM9AXKP042788")
    'X'
    """
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def _vin(rng: random.Random, wmi: str, year: int) -> str:
    vds = "".join(rng.choice(_VIN_CHARS) for _ in range(5))
    year_code = _VIN_YEARS[(year - 1980) % len(_VIN_YEARS)]
    plant = rng.choice(_VIN_CHARS)
    draft = f"{wmi}{vds}0{year_code}{plant}{rng.randrange(10**6):06d}"
    return draft[:8] + vin_check_digit(draft) + draft[9:]


def _years_before(rng: random.Random, day: date, low: int, high: int) -> date:
    """A day between ``high`` and ``low`` years (inclusive of ``low``) before ``day``."""
    earliest = day - timedelta(days=math.floor(high * 365.25))
    latest = day - timedelta(days=math.ceil(low * 365.25))
    return earliest + timedelta(days=rng.randrange((latest - earliest).days + 1))


def _adult_birth(rng: random.Random, low: int, high: int, mean_above: float) -> date:
    """A birth date of someone ``low`` to ``high`` years old, their age above ``low`` drawn exponentially
    with mean ``mean_above`` (Mongolia's adults are young: the median age is about 28)."""
    age = min(high, low + int(rng.expovariate(1 / mean_above)))
    latest = _birthday(REFERENCE_DATE, -age)  # turns ``age`` today
    earliest = _birthday(REFERENCE_DATE, -age - 1) + timedelta(days=1)
    return _between(rng, earliest, latest)


def _between(rng: random.Random, start: date, end: date) -> date:
    """A day in ``[start, end]`` (``start`` when ``end`` is earlier)."""
    span = (end - start).days
    return start + timedelta(days=rng.randrange(span + 1)) if span > 0 else start


def _age(birth: date, on: date = REFERENCE_DATE) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _birthday(birth: date, years: int) -> date:
    """The day someone born on ``birth`` turns ``years`` (1 March for 29 February in a common year)."""
    try:
        return birth.replace(year=birth.year + years)
    except ValueError:
        return date(birth.year + years, 3, 1)


# --- the generator ------------------------------------------------------------------------------------------


class _Generator:
    """The state of one generation: a seeded random source and the identifiers already given out."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 (synthetic data, reproducible by design)
        self.regnums: set[str] = set()
        self.civil_ids: set[str] = set()
        self.plates: set[str] = set()
        self.numbers: set[str] = set()
        """Other identifiers that must be unique (registration, property and certificate numbers)."""

    def unique(self, taken: set[str], prefix: str, digits: int, suffix: str = "") -> str:
        """``prefix``, ``digits`` random digits and ``suffix``, not yet in ``taken`` (which then holds it)."""
        while True:
            value = f"{prefix}{self.rng.randrange(10**digits):0{digits}d}{suffix}"
            if value not in taken:
                taken.add(value)
                return value

    # people

    def address(self, aimag: Aimag, soum: Soum, *, apartment_share: float) -> Address:
        rng = self.rng
        unit = f"{rng.randrange(1, soum.units + 1)}-р {soum.unit_kind}"
        if aimag.is_capital:
            street = UB_STREETS[rng.randrange(len(UB_STREETS))]
        else:
            street = f"{rng.randrange(1, 25)}-р гудамж"
        if rng.random() < apartment_share:
            return Address(
                aimag.code, aimag.name, soum.code, soum.name, unit, street,
                f"{rng.randrange(1, 120)}-р байр", f"{rng.randrange(1, 96)} тоот",
            )  # fmt: skip
        return Address(aimag.code, aimag.name, soum.code, soum.name, unit, street, None,
                       f"{rng.randrange(1, 300)} тоот")  # fmt: skip

    def home(self) -> Address:
        aimag = _AIMAG_PICK.pick(self.rng)
        soum = _SOUM_PICKS[aimag.code].pick(self.rng)
        centre = soum is aimag.soums[0]
        share = 0.6 if aimag.is_capital else (0.4 if centre else 0.05)
        return self.address(aimag, soum, apartment_share=share)

    def regnum(self, aimag: Aimag, soum: Soum, birth: date, sex: Sex) -> str:
        letters = aimag.regnum_letter + soum.regnum_letter
        first = self.rng.randrange(MAX_SERIAL + 1)
        for step in range(MAX_SERIAL + 1):
            value = make_regnum(letters, birth, sex, (first + step) % (MAX_SERIAL + 1))
            if value not in self.regnums:
                self.regnums.add(value)
                return value
        raise AssertionError(f"all registration numbers of {letters} {birth} {sex} are taken")

    def citizen(
        self,
        home: Address,
        sex: Sex,
        birth: date,
        *,
        clan: str | None = None,
        last_name: str | None = None,
        born_at_home: float,
        father: str | None = None,
        mother: str | None = None,
    ) -> Citizen:
        rng = self.rng
        if rng.random() < born_at_home:
            aimag = next(a for a in AIMAGS if a.code == home.aimag_code)
            soum = next(s for s in aimag.soums if s.code == home.soum_code)
        else:
            aimag = _AIMAG_PICK.pick(rng)
            soum = _SOUM_PICKS[aimag.code].pick(rng)
        first = (_MALE if sex is Sex.MALE else _FEMALE).pick(rng)
        passport = None
        if _age(birth) >= 16 and rng.random() < 0.45:
            passport = self.unique(self.numbers, "E", 7)
        return Citizen(
            regnum=self.regnum(aimag, soum, birth, sex),
            civil_id=self.unique(self.civil_ids, "", 12),
            clan_name=clan if clan is not None else _CLANS.pick(rng),
            last_name=last_name if last_name is not None else _MALE.pick(rng),
            first_name=first,
            sex=sex,
            birth_date=birth,
            birth_aimag=aimag.name,
            birth_soum=soum.name,
            address=home,
            passport_number=passport,
            father_regnum=father,
            mother_regnum=mother,
        )

    def household(self) -> list[Citizen]:
        """A family (father, mother, children) or a person living alone, at one address."""
        rng = self.rng
        home = self.home()
        if rng.random() < 0.3:
            sex = Sex.MALE if rng.random() < 0.5 else Sex.FEMALE
            birth = _adult_birth(rng, ADULT_AGE, MAX_AGE, 20)
            return [self.citizen(home, sex, birth, born_at_home=0.5)]
        father_birth = _adult_birth(rng, 22, 85, 21)
        father = self.citizen(home, Sex.MALE, father_birth, born_at_home=0.5)
        mother_birth = _years_before(rng, _birthday(father_birth, 8), 0, 11)
        if _age(mother_birth) < ADULT_AGE:
            mother_birth = _years_before(rng, REFERENCE_DATE, ADULT_AGE, 19)
        mother = self.citizen(home, Sex.FEMALE, mother_birth, born_at_home=0.5)
        family = [father, mother]
        for _ in range(_CHILDREN.pick(rng)):
            earliest = _birthday(mother_birth, 20)
            latest = min(_birthday(mother_birth, 42), REFERENCE_DATE - timedelta(days=1))
            if earliest > latest:
                break
            sex = Sex.MALE if rng.random() < 0.51 else Sex.FEMALE
            child = self.citizen(
                home, sex, _between(rng, earliest, latest),
                clan=father.clan_name, last_name=father.first_name, born_at_home=0.85,
                father=father.regnum, mother=mother.regnum,
            )  # fmt: skip
            family.append(child)
        return family

    # organisations, assets, taxes, insurance

    def organisations(self, count: int, adults: Sequence[Citizen]) -> list[Organisation]:
        rng = self.rng
        result = []
        for _ in range(count):
            aimag = _AIMAG_PICK.pick(rng)
            first, second = rng.sample(COMPANY_WORDS, 2)
            form = _FORMS.pick(rng)
            result.append(
                Organisation(
                    reg_number=self.unique(self.numbers, str(rng.randrange(2, 7)), 6),
                    name=f"{first} {second.lower()} {form}",
                    legal_form=form,
                    sector=SECTORS[rng.randrange(len(SECTORS))],
                    aimag_code=aimag.code,
                    soum_name=_SOUM_PICKS[aimag.code].pick(rng).name,
                    registered_on=_between(rng, date(1992, 1, 1), REFERENCE_DATE - timedelta(days=400)),
                    director_regnum=adults[rng.randrange(len(adults))].regnum,
                )
            )
        return result

    def vehicles(self, owner: Citizen) -> list[Vehicle]:
        rng = self.rng
        draw = rng.random()
        count = 0 if draw < 0.68 else (1 if draw < 0.94 else 2)
        if _birthday(owner.birth_date, ADULT_AGE) > REFERENCE_DATE - timedelta(days=60):
            count = 0  # an owner of age for two months at least
        aimag = next(a for a in AIMAGS if a.code == owner.address.aimag_code)
        result = []
        for _ in range(count):
            model = _MODELS.pick(rng)
            year = rng.randrange(max(model.first_year, 1995), REFERENCE_DATE.year)
            adult_on = _birthday(owner.birth_date, ADULT_AGE)
            last_day = REFERENCE_DATE - timedelta(days=1)
            imported = _between(rng, max(date(year, 6, 1), adult_on), last_day - timedelta(days=30))
            prefix = aimag.plate_prefixes[rng.randrange(len(aimag.plate_prefixes))]
            series = PLATE_SERIES_LETTERS[rng.randrange(len(PLATE_SERIES_LETTERS))]
            result.append(
                Vehicle(
                    plate=self.unique(self.plates, "", 4, f" {prefix}{series}"),
                    vin=_vin(rng, model.wmi, year),
                    certificate_number=self.unique(self.numbers, "ТГ", 8),
                    make=model.make,
                    model=model.model,
                    build_year=year,
                    colour=COLOURS.pick(rng),
                    fuel=model.fuel,
                    engine_cc=model.engine_cc,
                    mass_kg=model.mass_kg + 10 * rng.randrange(-5, 6),
                    import_date=imported,
                    registered_on=min(_between(rng, imported, imported + timedelta(days=20)), last_day),
                    owner_regnum=owner.regnum,
                )
            )
        return result

    def properties(self, owner: Citizen) -> list[Property]:
        rng = self.rng
        result: list[Property] = []
        adult_on = _birthday(owner.birth_date, ADULT_AGE)
        if adult_on > REFERENCE_DATE - timedelta(days=60):
            return result
        home = owner.address
        if rng.random() < 0.45:
            kind = PropertyKind.APARTMENT if home.building is not None else PropertyKind.HOUSE
            result.append(self.property(owner, kind, home, adult_on))
        if rng.random() < 0.2:
            result.append(self.property(owner, PropertyKind.LAND, self.home(), adult_on))
        if home.building is not None and rng.random() < 0.08:
            result.append(self.property(owner, PropertyKind.GARAGE, home, adult_on))
        return result

    def property(self, owner: Citizen, kind: PropertyKind, where: Address, since: date) -> Property:
        rng = self.rng
        if kind is PropertyKind.APARTMENT:
            area, per_m2 = rng.randrange(280, 1500), 3_500_000
        elif kind is PropertyKind.HOUSE:
            area, per_m2 = rng.randrange(300, 1800), 1_200_000
        elif kind is PropertyKind.LAND:
            area, per_m2 = rng.randrange(3500, 7000), 40_000
        else:
            area, per_m2 = rng.randrange(180, 300), 900_000
        value = area * per_m2 // 10 // 100_000 * 100_000
        if kind is PropertyKind.LAND:
            where = dataclasses.replace(where, building=None, apartment=f"{rng.randrange(1, 400)} тоот")
        return Property(
            property_number=self.unique(self.numbers, "Ү-22", 8),
            kind=kind,
            address=where,
            area_m2=Decimal(area).scaleb(-1),
            value_mnt=value,
            certificate_number=self.unique(self.numbers, "", 9),
            registered_on=_between(rng, max(since, date(1997, 6, 1)), REFERENCE_DATE - timedelta(days=1)),
            owner_regnum=owner.regnum,
        )

    def contributions(
        self, worker: Citizen, local: Sequence[Organisation], everywhere: Sequence[Organisation]
    ) -> list[Contribution]:
        rng = self.rng
        pool = local if local and rng.random() < 0.85 else everywhere
        employer = pool[rng.randrange(len(pool))]
        salary = max(MINIMUM_WAGE_MNT, int(round(rng.lognormvariate(math.log(1_700_000), 0.45), -4)))
        switch = rng.randrange(2, 13) if rng.random() < 0.12 else None
        gap = rng.randrange(1, 13) if rng.random() < 0.06 else None
        result = []
        for month in range(1, 13):
            if month == gap:
                continue
            if month == switch:
                employer = everywhere[rng.randrange(len(everywhere))]
                salary = max(MINIMUM_WAGE_MNT, salary + 10_000 * rng.randrange(-20, 41))
            paid = date(CONTRIBUTION_YEAR + month // 12, month % 12 + 1, rng.randrange(5, 26))
            result.append(
                Contribution(
                    regnum=worker.regnum,
                    employer_reg_number=employer.reg_number,
                    year=CONTRIBUTION_YEAR,
                    month=month,
                    salary_mnt=salary,
                    employer_mnt=salary * EMPLOYER_RATE_PERMILLE // 1000,
                    employee_mnt=salary * EMPLOYEE_RATE_PERMILLE // 1000,
                    paid_on=paid,
                )
            )
        return result

    def tax_office(self, aimag_code: str, soum_name: str) -> str:
        if aimag_code == "MN-1":
            return f"{soum_name} дүүргийн Татварын хэлтэс"
        aimag = next(a for a in AIMAGS if a.code == aimag_code)
        return f"{aimag.name} аймгийн Татварын хэлтэс"

    def citizen_taxpayer(self, person: Citizen, earning: bool) -> Taxpayer:
        rng = self.rng
        adult = _age(person.birth_date) >= ADULT_AGE
        status = TaxStatus.ACTIVE if earning else TaxStatus.INACTIVE
        arrears = 0
        if earning and rng.random() < 0.08:
            arrears = 10_000 * rng.randrange(5, 500)
            if rng.random() < 0.25:
                status = TaxStatus.SUSPENDED
        registered = _birthday(person.birth_date, ADULT_AGE) if adult else person.birth_date
        return Taxpayer(
            tin=person.regnum,
            kind=TaxpayerKind.CITIZEN,
            name=f"{person.last_name} {person.first_name}",
            status=status,
            vat_payer=earning and rng.random() < 0.03,
            registered_on=min(max(registered, date(1993, 1, 1)), REFERENCE_DATE - timedelta(days=1)),
            tax_office=self.tax_office(person.address.aimag_code, person.address.soum_name),
            arrears_mnt=arrears,
            last_filing_year=CONTRIBUTION_YEAR if earning else None,
        )

    def organisation_taxpayer(self, org: Organisation) -> Taxpayer:
        rng = self.rng
        draw = rng.random()
        status = TaxStatus.ACTIVE
        if draw >= 0.94:
            status = TaxStatus.DEREGISTERED
        elif draw >= 0.88:
            status = TaxStatus.SUSPENDED
        arrears = 100_000 * rng.randrange(1, 2000) if status is TaxStatus.SUSPENDED else 0
        return Taxpayer(
            tin=org.reg_number,
            kind=TaxpayerKind.ORGANISATION,
            name=org.name,
            status=status,
            vat_payer=status is not TaxStatus.DEREGISTERED and rng.random() < 0.6,
            registered_on=org.registered_on,
            tax_office=self.tax_office(org.aimag_code, org.soum_name),
            arrears_mnt=arrears,
            last_filing_year=CONTRIBUTION_YEAR if status is TaxStatus.ACTIVE else CONTRIBUTION_YEAR - 2,
        )


def generate(seed: int = DEFAULT_SEED, citizens: int = DEFAULT_CITIZENS) -> Dataset:
    """The synthetic world of ``seed`` with exactly ``citizens`` citizens (the last household is cut
    short), about one organisation per 25 citizens and their vehicles, property, taxpayer records and a year
    of monthly social insurance contributions. Pure and deterministic; CPU-bound (run it off the event
    loop: about a second for the default 5,000 citizens)."""
    if citizens < 1:
        raise ValueError("at least one citizen")
    gen = _Generator(seed)
    people: list[Citizen] = []
    while len(people) < citizens:
        people.extend(gen.household())
    del people[citizens:]
    known = {p.regnum for p in people}
    people = [
        dataclasses.replace(
            p,
            father_regnum=p.father_regnum if p.father_regnum in known else None,
            mother_regnum=p.mother_regnum if p.mother_regnum in known else None,
        )
        for p in people
    ]
    adults = [p for p in people if _age(p.birth_date) >= ADULT_AGE]
    organisations = gen.organisations(max(20, citizens // 25), adults or people)
    taxpayers = [gen.organisation_taxpayer(org) for org in organisations]
    closed = {t.tin for t in taxpayers if t.status is TaxStatus.DEREGISTERED}
    employers = [org for org in organisations if org.reg_number not in closed]
    by_aimag: dict[str, list[Organisation]] = {}
    for org in employers:
        by_aimag.setdefault(org.aimag_code, []).append(org)

    vehicles: list[Vehicle] = []
    properties: list[Property] = []
    contributions: list[Contribution] = []
    directors = {o.director_regnum for o in organisations}
    for person in people:
        owned: list[Vehicle] = []
        worked: list[Contribution] = []
        if _age(person.birth_date) >= ADULT_AGE:
            owned = gen.vehicles(person)
            properties.extend(gen.properties(person))
            working_age = (
                _age(person.birth_date, date(CONTRIBUTION_YEAR, 1, 1)) >= ADULT_AGE
                and _age(person.birth_date, date(CONTRIBUTION_YEAR, 12, 31)) < RETIREMENT_AGE
            )
            if working_age and gen.rng.random() < 0.62:
                local = by_aimag.get(person.address.aimag_code, [])
                worked = gen.contributions(person, local, employers)
        vehicles.extend(owned)
        contributions.extend(worked)
        earning = bool(owned or worked) or person.regnum in directors
        taxpayers.append(gen.citizen_taxpayer(person, earning))
    return Dataset(
        seed=seed,
        reference_date=REFERENCE_DATE,
        citizens=tuple(people),
        organisations=tuple(organisations),
        vehicles=tuple(vehicles),
        properties=tuple(properties),
        taxpayers=tuple(taxpayers),
        contributions=tuple(contributions),
    )


def _plain(value: object) -> object:
    """``json.dumps``'s fallback: a record as the mapping of its fields (json then walks them), a date in ISO
    form, an area as its decimal text."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: getattr(value, name) for name in value.__dataclass_fields__}
    raise TypeError(f"{type(value).__name__} is not serialisable")


def dataset_json(dataset: Dataset) -> bytes:
    """The whole dataset as canonical JSON (UTF-8, sorted keys, no spaces): equal datasets, equal bytes."""
    return json.dumps(
        dataset, default=_plain, ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode()


def dataset_digest(dataset: Dataset) -> str:
    """SHA-256 (hex) of :func:`dataset_json`: the dataset's fingerprint, kept beside a loaded database."""
    return hashlib.sha256(dataset_json(dataset)).hexdigest()
