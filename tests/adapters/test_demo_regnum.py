"""adapters.demo.regnum: the civil registration number's strict format, its decoding and generation."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.demo.regnum import (
    MAX_SERIAL,
    REGNUM_LETTERS,
    Sex,
    decode_regnum,
    is_regnum,
    make_regnum,
    parse_regnum,
)
from xroad_mn.errors import ErrorKind, XRoadError

letters = st.text(alphabet=REGNUM_LETTERS, min_size=2, max_size=2)
births = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
sexes = st.sampled_from(Sex)
serials = st.integers(min_value=0, max_value=MAX_SERIAL)


@given(letters, births, sexes, serials)
def test_every_generated_number_validates_and_decodes_back(
    pair: str, born: date, sex: Sex, serial: int
) -> None:
    regnum = make_regnum(pair, born, sex, serial)
    assert is_regnum(regnum)
    assert parse_regnum(regnum) == regnum
    hint = decode_regnum(regnum)
    assert (hint.aimag_letter, hint.soum_letter) == (pair[0], pair[1])
    assert hint.birth_date == born
    assert hint.sex is sex


@given(letters, births, sexes)
def test_the_serials_of_one_birth_give_distinct_numbers(pair: str, born: date, sex: Sex) -> None:
    numbers = {make_regnum(pair, born, sex, serial) for serial in range(MAX_SERIAL + 1)}
    assert len(numbers) == MAX_SERIAL + 1


@given(st.from_regex(r"[А-ЯӨҮ]{2}[0-9]{8}", fullmatch=True))
def test_any_well_formed_number_decodes_without_error(regnum: str) -> None:
    hint = decode_regnum(regnum)
    assert hint.regnum == regnum
    assert hint.sex is (Sex.MALE if int(regnum[8]) % 2 else Sex.FEMALE)


@given(st.text(max_size=14))
def test_anything_else_is_bad_request(value: str) -> None:
    if is_regnum(value):
        assert parse_regnum(value) == value
        return
    with pytest.raises(XRoadError) as exc:
        parse_regnum(value)
    assert exc.value.has_code("bad_request")
    assert exc.value.kind is ErrorKind.BAD_INPUT


@pytest.mark.parametrize(
    ("regnum", "born", "sex"),
    [
        ("УК03271614", date(2003, 7, 16), Sex.MALE),  # month + 20: born in 2000 or later
        ("УБ99112233", date(1999, 11, 22), Sex.MALE),
        ("АА56082908", date(1956, 8, 29), Sex.FEMALE),
        ("ӨҮ00210124", date(2000, 1, 1), Sex.FEMALE),
    ],
)
def test_known_numbers_decode_to_their_birth_date_and_sex(regnum: str, born: date, sex: Sex) -> None:
    hint = decode_regnum(regnum)
    assert (hint.birth_date, hint.sex) == (born, sex)


@pytest.mark.parametrize("regnum", ["УБ99133233", "УБ99023033", "УБ01022933", "УБ00000011"])
def test_digits_that_are_no_date_give_no_birth_date_but_still_validate(regnum: str) -> None:
    assert parse_regnum(regnum) == regnum
    assert decode_regnum(regnum).birth_date is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "УБ9911223",  # nine digits
        "УБ991122334",  # eleven
        "уб99112233",  # lower case
        "YБ99112233",  # Latin Y
        "AБ99112233",  # Latin A, looks like Cyrillic А
        "ЁБ99112233",  # Ё is outside А–Я
        "УБ99112233\n",  # "$" would have let a trailing newline through
        " УБ99112233",
        "УБ٩٩112233",  # Arabic-Indic digits are \\d to Python, not to us
        "УБ９９112233",  # fullwidth digits
        "УБ99-112233",
        "99112233УБ",
        "У\u0301Б99112233",  # a combining accent
    ],
)
def test_hostile_values_are_refused(value: str) -> None:
    assert not is_regnum(value)
    with pytest.raises(XRoadError) as exc:
        parse_regnum(value)
    assert exc.value.has_code("bad_request")


@pytest.mark.parametrize(
    ("pair", "born", "serial"),
    [
        ("УBB", date(1990, 1, 1), 0),
        ("UB", date(1990, 1, 1), 0),
        ("ЁБ", date(1990, 1, 1), 0),
        ("УБ", date(1899, 12, 31), 0),
        ("УБ", date(2100, 1, 1), 0),
        ("УБ", date(1990, 1, 1), -1),
        ("УБ", date(1990, 1, 1), MAX_SERIAL + 1),
    ],
)
def test_impossible_numbers_are_not_made(pair: str, born: date, serial: int) -> None:
    with pytest.raises(ValueError, match=r"letters|births|serial"):
        make_regnum(pair, born, Sex.MALE, serial)
