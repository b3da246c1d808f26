"""The SDK's mapping of pydantic models to XML: a round trip for any values, and any XML read fails only
with X-Road's errors (property-based)."""

from __future__ import annotations

import contextlib
import datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from pydantic import BaseModel, ValidationError

from adapters.sdk.xmlmodel import model_to_xml, xml_to_dict
from xroad_mn.errors import XRoadError

NS = "urn:test"
# Text XML 1.0 can carry, without CR (XML normalises line ends) and surrounding white space kept
XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"), max_size=30
)


class Inner(BaseModel):
    name: str
    count: int


class Outer(BaseModel):
    title: str
    amount: Decimal
    ratio: float
    flag: bool
    day: datetime.date
    tags: list[str] = []
    inner: Inner
    others: list[Inner] = []
    note: str | None = None


OUTERS = st.builds(
    Outer,
    title=XML_TEXT,
    amount=st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**9), max_value=10**9),
    ratio=st.floats(allow_nan=False, allow_infinity=False),
    flag=st.booleans(),
    day=st.dates(),
    tags=st.lists(XML_TEXT, max_size=4),
    inner=st.builds(Inner, name=XML_TEXT, count=st.integers()),
    others=st.lists(st.builds(Inner, name=XML_TEXT, count=st.integers()), max_size=3),
    note=st.none() | XML_TEXT,
)


@given(OUTERS)
def test_round_trip(value: Outer) -> None:
    element = model_to_xml(value, f"{{{NS}}}outer")
    reparsed = etree.fromstring(etree.tostring(element))
    assert Outer.model_validate(xml_to_dict(Outer, reparsed)) == value


@given(
    st.recursive(
        st.builds(
            lambda name, text: (name, text),
            st.sampled_from(["title", "inner", "name", "x", "tags"]),
            XML_TEXT,
        ),
        lambda children: st.builds(
            lambda name, kids: (name, kids),
            st.sampled_from(["inner", "others", "title", "y"]),
            st.lists(children, max_size=4),
        ),
        max_leaves=12,
    )
)
def test_any_tree_is_read_or_refused_with_xroad_errors(tree: tuple[str, object]) -> None:
    def build(node: tuple[str, object], parent: etree._Element) -> None:
        name, content = node
        element = etree.SubElement(parent, f"{{{NS}}}{name}")
        if isinstance(content, str):
            element.text = content
        else:
            assert isinstance(content, list)
            for child in content:
                build(child, element)

    root = etree.Element(f"{{{NS}}}outer")
    build(tree, root)
    with contextlib.suppress(XRoadError, ValidationError):
        Outer.model_validate(xml_to_dict(Outer, root))
