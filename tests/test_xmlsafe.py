"""The one safe XML parser: DOCTYPE and entities refused, syntax errors mapped to the caller's code."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.xmlsafe import parse, parser

CODE = FaultCode.INVALID_XML


@pytest.mark.parametrize(
    "document",
    [
        b'<!DOCTYPE x [<!ENTITY e "MN">]><x>&e;</x>',
        b'<!DOCTYPE x SYSTEM "http://127.0.0.1:1/x.dtd"><x/>',
        b"<!DOCTYPE x><x/>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ELEMENT x ANY>]><x/>',
    ],
)
def test_doctype_is_refused(document: bytes) -> None:
    with pytest.raises(XRoadError, match="DOCTYPE") as e:
        parse(document, code=CODE, what="doc", max_bytes=None)
    assert e.value.code == CODE
    assert e.value.message.startswith("doc ")


def test_xxe_file_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = f'<!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]><r>&x;</r>'.encode()
    with pytest.raises(XRoadError) as e:
        parse(xxe, code=CODE, what="doc", max_bytes=None)
    assert "TOP-SECRET" not in e.value.message
    # The bare parser keeps the document but never resolves the entity either.
    assert b"TOP-SECRET" not in etree.tostring(etree.fromstring(xxe, parser()))


@pytest.mark.parametrize("document", [b"", b"<a>", b"<a></b>", b"\xff\xfe\x00", b"<a>&undefined;</a>"])
def test_syntax_errors_carry_the_callers_code(document: bytes) -> None:
    with pytest.raises(XRoadError, match="not well-formed XML") as e:
        parse(document, code=FaultCode.MALFORMED_GLOBALCONF, what="doc", max_bytes=None)
    assert e.value.code == FaultCode.MALFORMED_GLOBALCONF


def test_size_bound() -> None:
    assert parse(b"<a/>", code=CODE, what="doc", max_bytes=4).tag == "a"
    with pytest.raises(XRoadError, match="larger than 3 bytes"):
        parse(b"<a/>", code=CODE, what="doc", max_bytes=3)


def test_comments_and_pis_kept_unless_removed() -> None:
    document = b"<a>x<!-- c -->y<?pi z?></a>"
    kept = parse(document, code=CODE, what="doc", max_bytes=None)
    assert len(kept) == 2
    removed = parse(document, code=CODE, what="doc", max_bytes=None, remove_comments=True, remove_pis=True)
    assert len(removed) == 0
    assert removed.text == "xy"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_only_xroad_errors_escape(data: bytes) -> None:
    # b"<r>" + anything never closes <r> unless the data does; either way only XRoadError(CODE) escapes.
    codes: list[str] = []
    try:
        root = parse(b"<r>" + data, code=CODE, what="doc", max_bytes=4096)
    except XRoadError as e:
        codes.append(e.code)
    else:
        assert root.tag == "r"
    assert codes in ([], [CODE])
