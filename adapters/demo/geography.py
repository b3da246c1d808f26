"""Mongolia's aimags, the capital and their soums and districts, as the demo's addresses use them.

The names are real: the 21 aimags and Ulaanbaatar (ISO 3166-2:MN codes), each aimag's centre and a handful
of its soums, and Ulaanbaatar's nine districts. What is *not* official: the soum codes (the aimag's code and
the soum's place in this list), the registration-number letters (first letter: the 18 aimags of 1988 in
alphabetical order, У for Ulaanbaatar, then the three aimags formed since; second letter: the soum's place
in this list), the number of bags per soum, and the population weights (rounded, for sampling only)::

    >>> from adapters.demo.geography import AIMAGS, aimag_by_code
    >>> len(AIMAGS), sum(1 for a in AIMAGS if a.is_capital)
    (22, 1)
    >>> ub = aimag_by_code("MN-1")
    >>> ub.name, ub.regnum_letter, len(ub.soums)
    ('Улаанбаатар', 'У', 9)
    >>> ub.soums[3].name, ub.soums[3].kind
    ('Баянзүрх', 'дүүрэг')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "AIMAGS",
    "SOUM_LETTERS",
    "Aimag",
    "Soum",
    "aimag_by_code",
]

SOUM_LETTERS: Final = "АБВГДЕЖЗИКЛМНОПРСТУФХЦЧШЭЮЯ"
"""Second letters of registration numbers, given to an aimag's soums in the order of its list."""
PLATE_SERIES_LETTERS: Final = "АБВГДЕЖЗИКЛМНОПРСТУХЦЧШЭЮЯ"
"""Third letters of vehicle plates."""


@dataclass(frozen=True, slots=True)
class Soum:
    """A soum of an aimag (subdivided into bags) or a district of the capital (into khoroos)."""

    code: str
    name: str
    regnum_letter: str
    units: int
    """How many bags (khoroos in the capital) it has."""
    weight: int
    """Relative share of the aimag's residents living here."""
    kind: str
    """``сум`` or ``дүүрэг``."""

    @property
    def unit_kind(self) -> str:
        """``баг`` or ``хороо``."""
        return "хороо" if self.kind == "дүүрэг" else "баг"


@dataclass(frozen=True, slots=True)
class Aimag:
    """An aimag or the capital city."""

    code: str
    """ISO 3166-2:MN code (``MN-073``; the capital ``MN-1``)."""
    name: str
    centre: str
    regnum_letter: str
    plate_prefixes: tuple[str, ...]
    """The two letters that start its vehicle plates."""
    population: int
    """Residents in thousands (rounded; a sampling weight)."""
    soums: tuple[Soum, ...]

    @property
    def is_capital(self) -> bool:
        return self.code == "MN-1"

    @property
    def kind(self) -> str:
        """``аймаг`` or ``хот``."""
        return "хот" if self.is_capital else "аймаг"


def _aimag(
    code: str,
    name: str,
    letter: str,
    plates: tuple[str, ...],
    population: int,
    soums: list[tuple[str, int]],
    *,
    capital: bool = False,
) -> Aimag:
    """An aimag of ``(soum, bags)`` pairs whose first soum is its centre (weight 8, the others 1), or the
    capital of ``(district, khoroos)`` pairs, each district weighted by its number of khoroos."""
    built = []
    for i, (soum_name, units) in enumerate(soums):
        weight = units if capital else (8 if i == 0 else 1)
        built.append(
            Soum(
                code=f"{code.removeprefix('MN-')}{i + 1:02d}",
                name=soum_name,
                regnum_letter=SOUM_LETTERS[i],
                units=units,
                weight=weight,
                kind="дүүрэг" if capital else "сум",
            )
        )
    return Aimag(code, name, soums[0][0] if not capital else name, letter, plates, population, tuple(built))


AIMAGS: Final[tuple[Aimag, ...]] = (
    _aimag(
        "MN-1", "Улаанбаатар", "У", ("УБ", "УН", "УА", "УК"), 1650,
        [("Багануур", 5), ("Багахангай", 2), ("Баянгол", 34), ("Баянзүрх", 43), ("Налайх", 8),
         ("Сонгинохайрхан", 43), ("Сүхбаатар", 20), ("Хан-Уул", 25), ("Чингэлтэй", 24)],
        capital=True,
    ),
    _aimag("MN-073", "Архангай", "А", ("АР",), 95,
           [("Эрдэнэбулган", 9), ("Батцэнгэл", 4), ("Ихтамир", 5), ("Тариат", 5), ("Хотонт", 4),
            ("Цэнхэр", 5), ("Өгийнуур", 4), ("Жаргалант", 4)]),
    _aimag("MN-071", "Баян-Өлгий", "Б", ("БӨ",), 110,
           [("Өлгий", 13), ("Алтанцөгц", 4), ("Бугат", 4), ("Сагсай", 5), ("Толбо", 4), ("Цэнгэл", 6),
            ("Улаанхус", 5), ("Ногооннуур", 5)]),
    _aimag("MN-069", "Баянхонгор", "В", ("БХ",), 90,
           [("Баянхонгор", 10), ("Баацагаан", 4), ("Бөмбөгөр", 4), ("Галуут", 5), ("Заг", 3),
            ("Шинэжинст", 4), ("Эрдэнэцогт", 5), ("Жаргалант", 4)]),
    _aimag("MN-067", "Булган", "Г", ("БУ",), 63,
           [("Булган", 6), ("Баян-Агт", 4), ("Дашинчилэн", 4), ("Могод", 4), ("Орхон", 3), ("Рашаант", 4),
            ("Хутаг-Өндөр", 5), ("Тэшиг", 4)]),
    _aimag("MN-065", "Говь-Алтай", "Д", ("ГА",), 58,
           [("Есөнбулаг", 7), ("Алтай", 4), ("Бигэр", 4), ("Дарви", 3), ("Тайшир", 3), ("Тонхил", 3),
            ("Халиун", 4), ("Шарга", 3)]),
    _aimag("MN-063", "Дорноговь", "Е", ("ДГ",), 70,
           [("Сайншанд", 7), ("Замын-Үүд", 4), ("Айраг", 4), ("Даланжаргалан", 4), ("Иххэт", 3),
            ("Мандах", 3), ("Өргөн", 3), ("Хатанбулаг", 4)]),
    _aimag("MN-061", "Дорнод", "Ж", ("ДО",), 82,
           [("Хэрлэн", 11), ("Баяндун", 4), ("Дашбалбар", 4), ("Матад", 3), ("Сэргэлэн", 3),
            ("Халхгол", 5), ("Цагаан-Овоо", 4), ("Чойбалсан", 3)]),
    _aimag("MN-059", "Дундговь", "З", ("ДУ",), 46,
           [("Сайнцагаан", 6), ("Адаацаг", 4), ("Говь-Угтаал", 3), ("Гурвансайхан", 4), ("Дэлгэрцогт", 3),
            ("Луус", 3), ("Өлзийт", 4), ("Эрдэнэдалай", 5)]),
    _aimag("MN-057", "Завхан", "И", ("ЗА",), 73,
           [("Улиастай", 9), ("Алдархаан", 4), ("Тосонцэнгэл", 5), ("Тэлмэн", 5), ("Их-Уул", 4),
            ("Яруу", 4), ("Шилүүстэй", 4), ("Нөмрөг", 4)]),
    _aimag("MN-055", "Өвөрхангай", "К", ("ӨВ",), 117,
           [("Арвайхээр", 10), ("Хархорин", 6), ("Бат-Өлзий", 4), ("Баянгол", 4), ("Бүрд", 3),
            ("Есөнзүйл", 4), ("Уянга", 6), ("Хужирт", 4)]),
    _aimag("MN-053", "Өмнөговь", "Л", ("ӨМ",), 70,
           [("Даланзадгад", 8), ("Баяндалай", 3), ("Гурвантэс", 4), ("Мандал-Овоо", 3), ("Ханбогд", 4),
            ("Ханхонгор", 4), ("Цогтцэций", 4), ("Ноён", 3)]),
    _aimag("MN-051", "Сүхбаатар", "М", ("СҮ",), 62,
           [("Баруун-Урт", 8), ("Асгат", 3), ("Дарьганга", 4), ("Мөнххаан", 5), ("Онгон", 5),
            ("Түвшинширээ", 4), ("Уулбаян", 4), ("Эрдэнэцагаан", 5)]),
    _aimag("MN-049", "Сэлэнгэ", "Н", ("СЭ",), 110,
           [("Сүхбаатар", 9), ("Алтанбулаг", 5), ("Баруунбүрэн", 4), ("Ерөө", 5), ("Мандал", 9),
            ("Сант", 4), ("Шаамар", 4), ("Хушаат", 3)]),
    _aimag("MN-047", "Төв", "О", ("ТӨ",), 95,
           [("Зуунмод", 7), ("Алтанбулаг", 4), ("Батсүмбэр", 4), ("Баянжаргалан", 3), ("Борнуур", 4),
            ("Эрдэнэ", 5), ("Лүн", 3), ("Сэргэлэн", 4), ("Заамар", 4)]),
    _aimag("MN-046", "Увс", "П", ("УВ",), 83,
           [("Улаангом", 10), ("Баруунтуруун", 4), ("Давст", 3), ("Завхан", 3), ("Малчин", 3),
            ("Наранбулаг", 4), ("Тариалан", 5), ("Түргэн", 3), ("Хяргас", 4)]),
    _aimag("MN-043", "Ховд", "Р", ("ХО",), 90,
           [("Жаргалант", 10), ("Булган", 5), ("Дарви", 3), ("Зэрэг", 3), ("Манхан", 4), ("Мөст", 3),
            ("Мянгад", 4), ("Эрдэнэбүрэн", 3)]),
    _aimag("MN-041", "Хөвсгөл", "С", ("ХӨ",), 135,
           [("Мөрөн", 14), ("Алаг-Эрдэнэ", 4), ("Галт", 5), ("Рашаант", 4), ("Ренчинлхүмбэ", 5),
            ("Тариалан", 5), ("Ханх", 3), ("Цагааннуур", 3), ("Чандмань-Өндөр", 4)]),
    _aimag("MN-039", "Хэнтий", "Т", ("ХЭ",), 78,
           [("Хэрлэн", 9), ("Батноров", 4), ("Биндэр", 4), ("Галшар", 4), ("Дадал", 4),
            ("Өмнөдэлгэр", 5), ("Цэнхэрмандал", 3), ("Бор-Өндөр", 4)]),
    _aimag("MN-037", "Дархан-Уул", "Ф", ("ДА",), 108,
           [("Дархан", 17), ("Хонгор", 4), ("Шарын гол", 3), ("Орхон", 3)]),
    _aimag("MN-035", "Орхон", "Х", ("ОР",), 110,
           [("Баян-Өндөр", 24), ("Жаргалант", 4)]),
    _aimag("MN-064", "Говьсүмбэр", "Ц", ("ГС",), 18,
           [("Сүмбэр", 5), ("Баянтал", 2), ("Шивээговь", 3)]),
)  # fmt: skip
"""The capital first, then the aimags in the order of their registration-number letters."""


def aimag_by_code(code: str) -> Aimag:
    """The aimag (or the capital) of an ISO 3166-2:MN code; ``KeyError`` for an unknown code."""
    for aimag in AIMAGS:
        if aimag.code == code:
            return aimag
    raise KeyError(code)
