"""The data subject extension: REST header and SOAP header element, normalised and bounded; the SOAP
parser lets the element through; hostile input."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import MemberId
from xroad_mn.wire.rest import build_rest_request, parse_header_part
from xroad_mn.wire.soap import build_soap_request, parse_soap_message
from xroad_mn.wire.subject import (
    EXTENSIONS_NS,
    MAX_DATA_SUBJECT_CHARS,
    data_subject_of_rest,
    data_subject_of_soap,
    normalise_data_subject,
    path_without_subjects,
)

CLIENT = MemberId("MN", "GOV", "5012345").subsystem("crm")
SERVICE = MemberId("MN", "GOV", "9010001").subsystem("tax").service("getDebt", "v1")
SUBJECT = "УБ99112233"


def _with_subject(soap: bytes, *elements: str) -> bytes:
    """``soap`` with ``elements`` (inner text of ``mn:dataSubject``) added at the end of its header."""
    extra = "".join(f'<mn:dataSubject xmlns:mn="{EXTENSIONS_NS}">{e}</mn:dataSubject>' for e in elements)
    head, sep, tail = soap.partition(b"</SOAP-ENV:Header>")
    assert sep, "the built request has a SOAP-ENV:Header"
    return head + extra.encode() + sep + tail


def _soap(*subjects: str) -> bytes:
    return _with_subject(
        build_soap_request(CLIENT, SERVICE, "q-1", b"<t:getDebt xmlns:t='urn:tax'/>"), *subjects
    )


def test_rest_header_is_read_case_insensitively_in_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Йө12345678")
    assert decomposed != "Йө12345678"
    assert data_subject_of_rest([("x-mn-data-subject", f"  {decomposed}\t")]) == "Йө12345678"
    assert data_subject_of_rest([("X-MN-Data-Subject", SUBJECT), ("X-MN-DATA-SUBJECT", SUBJECT)]) == SUBJECT
    assert data_subject_of_rest([("X-Road-Client", "MN/GOV/1")]) is None


def test_rest_header_survives_the_header_part_round_trip() -> None:
    request = build_rest_request(
        "GET",
        "/r1/MN/GOV/9010001/tax/debt",
        [("X-Road-Client", "MN/GOV/5012345/crm"), ("X-MN-Data-Subject", SUBJECT)],
        query_id="q-1",
        request_id="r-1",
    )
    parsed = parse_header_part(request.to_bytes())
    assert data_subject_of_rest(parsed.headers) == SUBJECT


def test_soap_header_element_is_read_and_the_parser_tolerates_it() -> None:
    soap = _soap(f" {SUBJECT} ")
    message = parse_soap_message(soap, expect="request")
    assert message.x_road_header.client == CLIENT
    assert data_subject_of_soap(soap) == SUBJECT
    assert data_subject_of_soap(_soap()) is None


def test_soap_subject_in_the_body_is_not_the_subject() -> None:
    inner = f'<mn:dataSubject xmlns:mn="{EXTENSIONS_NS}">X</mn:dataSubject>'
    body = f'<t:getDebt xmlns:t="urn:tax">{inner}</t:getDebt>'
    soap = build_soap_request(CLIENT, SERVICE, "q-1", body.encode())
    assert data_subject_of_soap(soap) is None


def test_soap_reading_stops_at_the_header() -> None:
    # Garbage after the body starts is never read: the body is the provider's business, not ours.
    soap = _soap(SUBJECT)
    cut = soap.index(b"<SOAP-ENV:Body>") + len(b"<SOAP-ENV:Body>")
    assert data_subject_of_soap(soap[:cut] + b"<<<not xml") == SUBJECT


@pytest.mark.parametrize(
    ("subjects", "code"),
    [
        (("A1", "B2"), FaultCode.DUPLICATE_HEADER_FIELD),
        (("  ",), FaultCode.INVALID_MESSAGE),
        (("X" * (MAX_DATA_SUBJECT_CHARS + 1),), FaultCode.INVALID_MESSAGE),
        (("A&#1;B",), FaultCode.INVALID_SOAP),  # a control character is not even XML 1.0
        (("A<b/>",), FaultCode.INVALID_MESSAGE),
    ],
)
def test_bad_soap_subjects_are_refused(subjects: tuple[str, ...], code: str) -> None:
    with pytest.raises(XRoadError) as err:
        data_subject_of_soap(_soap(*subjects))
    assert err.value.code == code


def test_repeated_equal_soap_subjects_are_one() -> None:
    assert data_subject_of_soap(_soap(SUBJECT, f" {SUBJECT}")) == SUBJECT


def test_hostile_soap_is_refused() -> None:
    doctype = b'<!DOCTYPE x [<!ENTITY e "A">]>' + _soap("&e;")
    with pytest.raises(XRoadError) as err:
        data_subject_of_soap(doctype)
    assert err.value.code == FaultCode.INVALID_SOAP
    with pytest.raises(XRoadError) as err:
        data_subject_of_soap(b"<unclosed")
    assert err.value.code == FaultCode.INVALID_SOAP


def test_bad_rest_subjects_are_refused() -> None:
    with pytest.raises(XRoadError) as err:
        data_subject_of_rest([("X-MN-Data-Subject", "A1"), ("X-MN-Data-Subject", "B2")])
    assert err.value.code == FaultCode.DUPLICATE_HEADER_FIELD
    with pytest.raises(XRoadError) as err:
        data_subject_of_rest([("X-MN-Data-Subject", "A\x7fB")])
    assert err.value.code == FaultCode.INVALID_MESSAGE


@given(st.text(max_size=100))
def test_normalisation_is_idempotent_or_refuses(value: str) -> None:
    try:
        subject = normalise_data_subject(value)
    except XRoadError as e:
        code = e.code
        assert code == FaultCode.INVALID_MESSAGE
        return
    assert normalise_data_subject(subject) == subject
    assert 0 < len(subject) <= MAX_DATA_SUBJECT_CHARS
    assert unicodedata.is_normalized("NFC", subject)


@given(st.binary(max_size=300))
def test_soap_reader_never_fails_unexpectedly(data: bytes) -> None:
    try:
        data_subject_of_soap(data)
    except XRoadError as e:
        code = e.code
        assert code in {FaultCode.INVALID_SOAP, FaultCode.INVALID_MESSAGE, FaultCode.DUPLICATE_HEADER_FIELD}


_LETTERS = "АБВГДЕЖЗИЙКЛМНОӨПРСТУҮФХЦЧШЩЭЮЯ"


@given(
    st.text(_LETTERS, min_size=2, max_size=2),
    st.integers(0, 99_999_999),
    st.lists(st.text("abcxyz-_.~0123456789", min_size=1, max_size=8), max_size=4),
    st.integers(0, 4),
)
def test_a_registration_number_never_stays_in_a_monitored_path(
    letters: str, digits: int, others: list[str], at: int
) -> None:
    regnum = f"{letters}{digits:08d}"
    segments = [quote(s) for s in others]
    segments.insert(min(at, len(segments)), quote(f"id-{regnum}"))
    masked = path_without_subjects("/" + "/".join(segments))
    assert regnum not in unquote(masked)
    assert masked.split("/").count("{dataSubject}") == 1
    assert [s for s in masked.split("/") if s != "{dataSubject}"] == ["", *(quote(s) for s in others)]


def test_the_exchanges_own_subject_is_masked_in_any_form() -> None:
    assert path_without_subjects("/cases/CASE-77/x", "CASE-77") == "/cases/{dataSubject}/x"
    assert path_without_subjects("/people/%D0%A3%D0%9199112233") == "/people/{dataSubject}"
    assert path_without_subjects("/people/42/vehicles", "УБ99112233") == "/people/42/vehicles"
    assert path_without_subjects("") == ""
