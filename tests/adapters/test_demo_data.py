"""adapters.demo.data: the synthetic world is deterministic, its identifiers valid and unique, its records
consistent with each other (owners exist, ages plausible, addresses real) and its names realistic."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from datetime import date

import pytest

from adapters.demo.data import (
    ADULT_AGE,
    DEFAULT_CITIZENS,
    EMPLOYEE_RATE_PERMILLE,
    EMPLOYER_RATE_PERMILLE,
    MAX_AGE,
    MINIMUM_WAGE_MNT,
    REFERENCE_DATE,
    RETIREMENT_AGE,
    Citizen,
    Dataset,
    TaxpayerKind,
    TaxStatus,
    dataset_digest,
    dataset_json,
    generate,
    vin_check_digit,
)
from adapters.demo.geography import AIMAGS, aimag_by_code
from adapters.demo.names import CLAN_NAMES, FEMALE_NAMES, MALE_NAMES
from adapters.demo.regnum import Sex, decode_regnum, is_regnum
from tests.conftest import REPO_ROOT

PLATE = re.compile(r"[0-9]{4} [А-ЯӨҮ]{3}")
VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")


@pytest.fixture(scope="module")
def world() -> Dataset:
    """The demo's own world: the default seed and size."""
    return generate()


def _age(born: date, on: date = REFERENCE_DATE) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _adult_on(born: date) -> date:
    try:
        return born.replace(year=born.year + ADULT_AGE)
    except ValueError:
        return date(born.year + ADULT_AGE, 3, 1)


# --- determinism --------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_ones() -> None:
    first = dataset_json(generate(seed=5, citizens=700))
    assert dataset_json(generate(seed=5, citizens=700)) == first
    assert dataset_json(generate(seed=6, citizens=700)) != first


def test_the_same_seed_gives_the_same_bytes_in_other_processes_whatever_their_hash_seed() -> None:
    """Nothing may depend on the order of a set or dict of strings (it changes with PYTHONHASHSEED)."""
    expected = dataset_digest(generate(seed=3, citizens=700))
    code = "from adapters.demo.data import dataset_digest, generate; print(dataset_digest(generate(3, 700)))"
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO_ROOT, env={**os.environ, "PYTHONHASHSEED": hash_seed},
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        assert out.stdout.strip() == expected


def test_the_default_world_has_several_thousand_citizens_and_all_registers(world: Dataset) -> None:
    assert len(world.citizens) == DEFAULT_CITIZENS
    assert len(world.organisations) >= 100
    assert len(world.vehicles) >= 1000
    assert len(world.properties) >= 1000
    assert len(world.taxpayers) == len(world.citizens) + len(world.organisations)
    assert len(world.contributions) >= 10 * 1000


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_a_tiny_world_has_exactly_the_citizens_asked_for_and_no_dangling_parents(size: int) -> None:
    small = generate(seed=size, citizens=size)
    assert len(small.citizens) == size
    known = {c.regnum for c in small.citizens}
    for person in small.citizens:
        assert person.father_regnum in known | {None}
        assert person.mother_regnum in known | {None}


# --- identifiers --------------------------------------------------------------------------------------------


def test_identifiers_are_unique(world: Dataset) -> None:
    def unique(values: list[str]) -> bool:
        return len(values) == len(set(values))

    assert unique([c.regnum for c in world.citizens])
    assert unique([c.civil_id for c in world.citizens])
    assert unique([c.passport_number for c in world.citizens if c.passport_number is not None])
    assert unique([o.reg_number for o in world.organisations])
    assert unique([v.plate for v in world.vehicles])
    assert unique([v.vin for v in world.vehicles])
    assert unique([v.certificate_number for v in world.vehicles])
    assert unique([p.property_number for p in world.properties])
    assert unique([p.certificate_number for p in world.properties])
    assert unique([t.tin for t in world.taxpayers])
    assert unique([f"{c.regnum}/{c.year}/{c.month}" for c in world.contributions])


def test_every_registration_number_is_valid_and_encodes_birth_date_sex_and_birthplace(world: Dataset) -> None:
    letters = {(a.name, s.name): a.regnum_letter + s.regnum_letter for a in AIMAGS for s in a.soums}
    for person in world.citizens:
        assert is_regnum(person.regnum), person
        hint = decode_regnum(person.regnum)
        assert hint.birth_date == person.birth_date
        assert hint.sex is person.sex
        assert person.regnum[:2] == letters[person.birth_aimag, person.birth_soum]
        assert re.fullmatch(r"[0-9]{12}", person.civil_id)


def test_organisations_have_7_digit_registration_numbers(world: Dataset) -> None:
    for org in world.organisations:
        assert re.fullmatch(r"[2-9][0-9]{6}", org.reg_number), org
        assert org.name.endswith(org.legal_form)


# --- people -------------------------------------------------------------------------------------------------


def test_ages_are_plausible(world: Dataset) -> None:
    ages = [_age(c.birth_date) for c in world.citizens]
    assert min(ages) >= 0
    assert max(ages) <= MAX_AGE
    assert all(c.birth_date < REFERENCE_DATE for c in world.citizens)
    assert 0.15 < sum(a < ADULT_AGE for a in ages) / len(ages) < 0.5  # Mongolia is young
    assert sum(a >= 60 for a in ages) > 0


def test_families_are_consistent(world: Dataset) -> None:
    by_regnum = {c.regnum: c for c in world.citizens}
    children = [c for c in world.citizens if c.father_regnum is not None]
    assert len(children) > len(world.citizens) // 5
    for child in children:
        father = by_regnum[child.father_regnum or ""]
        mother = by_regnum[child.mother_regnum or ""]
        assert father.sex is Sex.MALE
        assert mother.sex is Sex.FEMALE
        assert child.last_name == father.first_name
        assert child.clan_name == father.clan_name
        assert child.address == father.address == mother.address
        assert 20 <= _age(mother.birth_date, child.birth_date) <= 42
        assert _age(father.birth_date, child.birth_date) >= 16


def test_names_come_from_the_lists_by_sex(world: Dataset) -> None:
    men = {n for n, _ in MALE_NAMES}
    women = {n for n, _ in FEMALE_NAMES}
    clans = {n for n, _ in CLAN_NAMES}
    for person in world.citizens:
        assert person.first_name in (men if person.sex is Sex.MALE else women)
        assert person.last_name in men
        assert person.clan_name in clans
        assert re.fullmatch(r"[А-ЯӨҮЁ][а-яөүё]+(?:[- ][А-ЯӨҮа-яөү][а-яөүё]+)?", person.first_name)


def test_the_population_looks_like_mongolia(world: Dataset) -> None:
    homes = Counter(c.address.aimag_code for c in world.citizens)
    assert 0.3 < homes["MN-1"] / len(world.citizens) < 0.65  # about half live in Ulaanbaatar
    assert set(homes) == {a.code for a in AIMAGS}  # and every aimag has residents
    men = sum(c.sex is Sex.MALE for c in world.citizens)
    assert 0.4 < men / len(world.citizens) < 0.6
    clans = Counter(c.clan_name for c in world.citizens)
    assert clans.most_common(1)[0][0] == "Боржигин"


def test_addresses_are_real_places(world: Dataset) -> None:
    addresses = [c.address for c in world.citizens] + [p.address for p in world.properties]
    for address in addresses:
        aimag = aimag_by_code(address.aimag_code)
        assert address.aimag_name == aimag.name
        soum = next(s for s in aimag.soums if s.code == address.soum_code)
        assert address.soum_name == soum.name
        number, kind = address.unit.split("-р ")
        assert kind == soum.unit_kind
        assert 1 <= int(number) <= soum.units
        head = f"{aimag.name} {aimag.kind}, {soum.name} {soum.kind}, {address.unit}, "
        assert address.full.startswith(head)
    districts = {c.address.soum_name for c in world.citizens if c.address.aimag_code == "MN-1"}
    assert len(districts) == 9


# --- assets -------------------------------------------------------------------------------------------------


def _adults(world: Dataset) -> dict[str, Citizen]:
    return {c.regnum: c for c in world.citizens if _age(c.birth_date) >= ADULT_AGE}


def test_every_vehicle_has_an_adult_owner_a_valid_plate_and_vin(world: Dataset) -> None:
    adults = _adults(world)
    for vehicle in world.vehicles:
        owner = adults[vehicle.owner_regnum]
        assert PLATE.fullmatch(vehicle.plate), vehicle.plate
        assert vehicle.plate[5:7] in aimag_by_code(owner.address.aimag_code).plate_prefixes
        assert VIN.fullmatch(vehicle.vin), vehicle.vin
        assert vehicle.vin[8] == vin_check_digit(vehicle.vin)
        assert vehicle.build_year <= vehicle.import_date.year
        assert _adult_on(owner.birth_date) <= vehicle.import_date <= vehicle.registered_on < REFERENCE_DATE


def test_vin_check_digits_follow_iso_3779() -> None:
    assert vin_check_digit("1M8GDM9AXKP042788") == "X"
    assert vin_check_digit("11111111111111111") == "1"


def test_every_property_has_an_adult_owner_and_a_plausible_registration(world: Dataset) -> None:
    adults = _adults(world)
    for prop in world.properties:
        owner = adults[prop.owner_regnum]
        assert _adult_on(owner.birth_date) <= prop.registered_on < REFERENCE_DATE
        assert prop.area_m2 > 0
        assert prop.value_mnt > 0
        assert re.fullmatch(r"Ү-22[0-9]{8}", prop.property_number)


# --- taxes and social insurance -----------------------------------------------------------------------------


def test_every_citizen_and_organisation_is_a_taxpayer(world: Dataset) -> None:
    by_tin = {t.tin: t for t in world.taxpayers}
    for person in world.citizens:
        taxpayer = by_tin[person.regnum]
        assert taxpayer.kind is TaxpayerKind.CITIZEN
        assert taxpayer.name == f"{person.last_name} {person.first_name}"
        assert person.birth_date <= taxpayer.registered_on < REFERENCE_DATE
    for org in world.organisations:
        taxpayer = by_tin[org.reg_number]
        assert taxpayer.kind is TaxpayerKind.ORGANISATION
        assert taxpayer.name == org.name
    statuses = Counter(t.status for t in world.taxpayers)
    assert set(statuses) == set(TaxStatus)


def test_contributions_are_paid_by_live_employers_for_working_age_citizens(world: Dataset) -> None:
    people = {c.regnum: c for c in world.citizens}
    employers = {o.reg_number: o for o in world.organisations}
    taxpayers = {t.tin: t for t in world.taxpayers}
    for paid in world.contributions:
        worker = people[paid.regnum]
        assert _age(worker.birth_date, date(paid.year, 1, 1)) >= ADULT_AGE
        assert _age(worker.birth_date, date(paid.year, 12, 31)) < RETIREMENT_AGE
        employer = employers[paid.employer_reg_number]
        assert employer.registered_on < date(paid.year, 1, 1)
        assert taxpayers[employer.reg_number].status is not TaxStatus.DEREGISTERED
        assert taxpayers[worker.regnum].status in {TaxStatus.ACTIVE, TaxStatus.SUSPENDED}
        assert paid.salary_mnt >= MINIMUM_WAGE_MNT
        assert paid.employer_mnt == paid.salary_mnt * EMPLOYER_RATE_PERMILLE // 1000
        assert paid.employee_mnt == paid.salary_mnt * EMPLOYEE_RATE_PERMILLE // 1000
        assert date(paid.year, paid.month, 28) < paid.paid_on < REFERENCE_DATE
    insured = {paid.regnum for paid in world.contributions}
    assert 0.3 < len(insured) / len(_adults(world)) < 0.8
