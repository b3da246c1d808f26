"""The Mongolian civil registration number (регистрийн дугаар): strict validation, decoding, generation.

A registration number is two Cyrillic capitals and eight ASCII digits (``^[А-ЯӨҮ]{2}[0-9]{8}$``): the first
letter names the aimag or city of first registration, the second the soum or district; digits 1–6 are the
birth date ``YYMMDD`` with 20 added to the month for births from 2000; the ninth character (the seventh
digit) is odd for a man and even for a woman. No check digit is known, and the decoding rules come from
community code rather than an official source, so :func:`parse_regnum` checks the *format* only and
:func:`decode_regnum` gives the birth date and sex as a *hint* (``birth_date`` is ``None`` when the digits
are not a date)::

    >>> from datetime import date
    >>> from adapters.demo.regnum import Sex, decode_regnum, make_regnum, parse_regnum
    >>> parse_regnum("УК03271614")
    'УК03271614'
    >>> hint = decode_regnum("УК03271614")
    >>> hint.birth_date, hint.sex
    (datetime.date(2003, 7, 16), <Sex.MALE: 'male'>)
    >>> make_regnum("УБ", date(1987, 11, 2), Sex.FEMALE, serial=7)
    'УБ87110241'
    >>> decode_regnum(make_regnum("УБ", date(2004, 2, 29), Sex.MALE, serial=0)).birth_date
    datetime.date(2004, 2, 29)

Bad input (wrong length, Latin look-alike letters, non-ASCII digits, a trailing newline) is the
protocol's ``bad_request`` error, never an exception of another kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from xroad_mn.errors import ErrorKind, FaultCode, XRoadError

__all__ = [
    "MAX_SERIAL",
    "REGNUM_LETTERS",
    "REGNUM_PATTERN",
    "RegnumHint",
    "Sex",
    "decode_regnum",
    "is_regnum",
    "make_regnum",
    "parse_regnum",
]

REGNUM_LETTERS: Final = "АБВГДЕЖЗИЙКЛМНОӨПРСТУҮФХЦЧШЩЪЫЬЭЮЯ"
"""The letters a registration number may hold: the Russian capitals А–Я plus Ө and Ү (Ё is not in the
range А–Я of the published pattern, so it is refused)."""
REGNUM_PATTERN: Final = re.compile(r"[А-ЯӨҮ]{2}[0-9]{8}")
"""The published format ``^[А-ЯӨҮ]{2}\\d{8}$``, written with ASCII digits (Python's ``\\d`` takes any
Unicode digit) and used with :meth:`re.Pattern.fullmatch` (``$`` would accept a trailing newline)."""
REGNUM_LENGTH: Final = 10
MILLENNIUM_MONTH_OFFSET: Final = 20
"""Added to the month of a birth from 2000 on."""
FIRST_YEAR: Final = 1900
LAST_YEAR: Final = 2099
"""The birth years a registration number can encode (two year digits, two centuries by the month)."""
SEX_DIGITS: Final = 5
"""Odd (or even) values of the sex digit: a number has 5 × 10 serials per letters, birth date and sex."""
MAX_SERIAL: Final = SEX_DIGITS * 10 - 1
"""Largest ``serial`` of :func:`make_regnum`."""


class Sex(StrEnum):
    """Sex as a registration number encodes it."""

    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True, slots=True)
class RegnumHint:
    """What a registration number suggests about its holder (community rules: a hint, not a fact)."""

    regnum: str
    aimag_letter: str
    """Aimag or city of first registration."""
    soum_letter: str
    """Soum or district of first registration."""
    birth_date: date | None
    """The birth date the digits encode, or ``None`` when they encode no date."""
    sex: Sex


def _bad(message: str, value: str) -> XRoadError:
    return XRoadError(
        FaultCode.BAD_REQUEST,
        message,
        details={"regnum": value[:32]},
        kind=ErrorKind.BAD_INPUT,
    )


def is_regnum(value: str) -> bool:
    """Whether ``value`` has the format of a registration number (exactly, nothing stripped)::

    >>> is_regnum("УБ99112233"), is_regnum("УБ9911223"), is_regnum("YБ99112233"), is_regnum("УБ99112233\\n")
    (True, False, False, False)
    """
    return REGNUM_PATTERN.fullmatch(value) is not None


def parse_regnum(value: str) -> str:
    """``value`` when it is a registration number, else ``bad_request`` (kind ``bad_input``) saying why.

    Nothing is normalised: lower case, surrounding space and Latin look-alike letters are refused.
    """
    if len(value) != REGNUM_LENGTH:
        raise _bad(f"a registration number has {REGNUM_LENGTH} characters, not {len(value)}", value)
    if not is_regnum(value):
        raise _bad("a registration number is two Cyrillic capitals and eight digits", value)
    return value


def _birth_date(digits: str) -> date | None:
    yy, mm, dd = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    century = 1900
    if mm > MILLENNIUM_MONTH_OFFSET:
        century, mm = 2000, mm - MILLENNIUM_MONTH_OFFSET
    try:
        return date(century + yy, mm, dd)
    except ValueError:
        return None


def decode_regnum(value: str) -> RegnumHint:
    """The letters, birth date and sex a registration number encodes; ``bad_request`` when ``value`` is not
    one (see :func:`parse_regnum`). ``birth_date`` is ``None`` when the digits are no calendar date."""
    regnum = parse_regnum(value)
    digits = regnum[2:]
    sex = Sex.MALE if int(digits[6]) % 2 == 1 else Sex.FEMALE
    return RegnumHint(regnum, regnum[0], regnum[1], _birth_date(digits), sex)


def make_regnum(letters: str, birth_date: date, sex: Sex, serial: int) -> str:
    """A registration number of first registration ``letters`` (aimag then soum letter), encoding
    ``birth_date`` and ``sex``; ``serial`` (0 to :data:`MAX_SERIAL`) tells apart the 50 numbers that share
    them. ``ValueError`` for letters outside the format, a year outside 1900–2099 or a serial out of range.
    """
    if len(letters) != 2 or any(c not in REGNUM_LETTERS for c in letters):
        raise ValueError(f"registration letters must be two of {REGNUM_LETTERS}, not {letters!r}")
    if not FIRST_YEAR <= birth_date.year <= LAST_YEAR:
        raise ValueError(f"a registration number encodes births in {FIRST_YEAR}–{LAST_YEAR} only")
    if not 0 <= serial <= MAX_SERIAL:
        raise ValueError(f"serial must be in 0..{MAX_SERIAL}, not {serial}")
    month = birth_date.month + (MILLENNIUM_MONTH_OFFSET if birth_date.year >= 2000 else 0)
    sex_digit = 2 * (serial % SEX_DIGITS) + (1 if sex is Sex.MALE else 0)
    last_digit = serial // SEX_DIGITS
    return f"{letters}{birth_date.year % 100:02d}{month:02d}{birth_date.day:02d}{sex_digit}{last_digit}"
