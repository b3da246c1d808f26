"""The data subject of an exchange: the citizen a request is about, named in an extension of our own.

A REST message names it in the header ``X-MN-Data-Subject`` (not in X-Road's ``X-Road-*`` namespace, so an
X-Road node forwards it as any user header and signs it inside the REST header part); a SOAP message in the
header element ``<mn:dataSubject xmlns:mn="https://xroad.mn/xsd/extensions">`` (X-Road forwards header
blocks it does not know, and they are signed with the SOAP part). The value is a registration number
(``УБ99112233``); it is read in Unicode NFC without surrounding white space, at most
:data:`MAX_DATA_SUBJECT_CHARS` characters, with no control characters. Absent, the exchange names no
subject (``None``).

Example::

    >>> data_subject_of_rest([("X-Road-Client", "MN/GOV/5012345/crm"), ("X-MN-Data-Subject", " УБ99112233 ")])
    'УБ99112233'
    >>> soap = (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>'
    ...         b'<mn:dataSubject xmlns:mn="https://xroad.mn/xsd/extensions">AA12345678</mn:dataSubject>'
    ...         b'</s:Header><s:Body><x/></s:Body></s:Envelope>')
    >>> data_subject_of_soap(soap)
    'AA12345678'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final
from urllib.parse import unquote
from xml.parsers import expat

from xroad_mn.errors import ErrorKind, FaultCode, XRoadError

__all__ = [
    "DATA_SUBJECT_ELEMENT",
    "DATA_SUBJECT_HEADER",
    "EXTENSIONS_NS",
    "MAX_DATA_SUBJECT_CHARS",
    "data_subject_of_rest",
    "data_subject_of_soap",
    "normalise_data_subject",
    "path_without_subjects",
]

DATA_SUBJECT_HEADER: Final = "x-mn-data-subject"
"""The REST header naming the data subject (compared case-insensitively)."""
EXTENSIONS_NS: Final = "https://xroad.mn/xsd/extensions"
"""The namespace of our SOAP header extensions."""
DATA_SUBJECT_ELEMENT: Final = "dataSubject"
MAX_DATA_SUBJECT_CHARS: Final = 64
REGISTRATION_NUMBER: Final = re.compile(r"[А-ЯӨҮ]{2}[0-9]{8}")
"""A Mongolian civil registration number (two Cyrillic capitals, eight digits) anywhere in a text."""
SUBJECT_PLACEHOLDER: Final = "{dataSubject}"
"""Longest data subject accepted (a registration number is about ten characters)."""

_SOAP_ENV_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
_HEADER: Final = f"{_SOAP_ENV_NS} Header"
_BODY: Final = f"{_SOAP_ENV_NS} Body"
_SUBJECT: Final = f"{EXTENSIONS_NS} {DATA_SUBJECT_ELEMENT}"
_HEADER_DEPTH: Final = 2
_FIELD_DEPTH: Final = 3


def _invalid(message: str) -> XRoadError:
    return XRoadError(FaultCode.INVALID_MESSAGE, message, kind=ErrorKind.BAD_INPUT)


def normalise_data_subject(value: str) -> str:
    """``value`` in NFC without surrounding white space; ``invalid_message`` when it is empty, longer than
    :data:`MAX_DATA_SUBJECT_CHARS` or holds a control character."""
    subject = unicodedata.normalize("NFC", value).strip()
    if not subject:
        raise _invalid("the data subject is empty")
    if len(subject) > MAX_DATA_SUBJECT_CHARS:
        raise _invalid(f"the data subject is longer than {MAX_DATA_SUBJECT_CHARS} characters")
    if any(unicodedata.category(c) == "Cc" for c in subject):
        raise _invalid("the data subject holds a control character")
    return subject


def _one(values: list[str], where: str) -> str | None:
    subjects = {normalise_data_subject(v) for v in values}
    if len(subjects) > 1:
        raise XRoadError(
            FaultCode.DUPLICATE_HEADER_FIELD,
            f"{where} names {len(subjects)} different data subjects",
            kind=ErrorKind.BAD_INPUT,
        )
    return next(iter(subjects), None)


def data_subject_of_rest(headers: Iterable[tuple[str, str]]) -> str | None:
    """The data subject of a REST message's headers (``X-MN-Data-Subject``), or ``None``. A repeated header
    must repeat the same value."""
    return _one([v for k, v in headers if k.lower() == DATA_SUBJECT_HEADER], "the REST message")


class _HeaderEnd(Exception):
    """Raised inside the parser once the SOAP header is read: the body is never parsed."""


def _refuse_dtd(*_: object) -> None:
    raise XRoadError(FaultCode.INVALID_SOAP, "SOAP message must not contain a document type declaration")


class _SubjectReader:
    """Expat handlers collecting ``mn:dataSubject`` texts among the SOAP header's children."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_header = False
        self.collecting: list[str] | None = None
        self.values: list[str] = []

    def start(self, name: str, _attrs: object) -> None:
        self.depth += 1
        if self.depth == _HEADER_DEPTH:
            if name == _BODY:
                raise _HeaderEnd
            self.in_header = name == _HEADER
        elif self.in_header and self.depth == _FIELD_DEPTH and name == _SUBJECT:
            self.collecting = []
        elif self.collecting is not None:
            raise _invalid("the data subject element must hold text only")

    def text(self, data: str) -> None:
        if self.collecting is not None:
            self.collecting.append(data)

    def end(self, name: str) -> None:
        if self.collecting is not None and self.depth == _FIELD_DEPTH:
            self.values.append("".join(self.collecting))
            self.collecting = None
        if self.depth == _HEADER_DEPTH and name == _HEADER:
            raise _HeaderEnd
        self.depth -= 1


def data_subject_of_soap(soap: bytes) -> str | None:
    """The data subject of a SOAP message (``mn:dataSubject`` in its header), or ``None``. Only the envelope
    up to the end of the header is read; a repeated element must repeat the same value."""
    reader = _SubjectReader()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.text
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    try:
        parser.Parse(soap, True)
    except _HeaderEnd:
        pass
    except expat.ExpatError as e:
        raise XRoadError(FaultCode.INVALID_SOAP, f"SOAP message is not well-formed XML: {e}") from e
    return _one(reader.values, "the SOAP header")


def path_without_subjects(path: str, data_subject: str | None = None) -> str:
    """A REST service path fit for metadata kept in clear (operational monitoring): every segment that holds
    the exchange's ``data_subject`` or any registration number, read percent-decoded, becomes
    ``{dataSubject}``; the rest is kept as sent.

    >>> path_without_subjects("/people/%D0%A3%D0%9199112233/vehicles")
    '/people/{dataSubject}/vehicles'
    >>> path_without_subjects("/cases/AB-1/parties", "AB-1")
    '/cases/{dataSubject}/parties'
    """
    segments = path.split("/")
    for i, segment in enumerate(segments):
        text = unicodedata.normalize("NFC", unquote(segment))
        if (data_subject and data_subject in text) or REGISTRATION_NUMBER.search(text):
            segments[i] = SUBJECT_PLACEHOLDER
    return "/".join(segments)
