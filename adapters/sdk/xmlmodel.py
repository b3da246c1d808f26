"""Pydantic models as XML elements of a target namespace: reading, writing and their XML Schema.

A model is a sequence of elements named after its fields (the alias when one is set), qualified in the
target namespace (``elementFormDefault="qualified"``), in field order. A scalar field is an element with text
(``str`` ``xsd:string``, ``int`` ``xsd:integer``, ``float`` ``xsd:double``, ``Decimal`` ``xsd:decimal``,
``bool`` ``xsd:boolean``, ``date`` ``xsd:date``, ``datetime`` ``xsd:dateTime``, a string ``Enum`` or
``Literal`` an enumeration); an optional field (``X | None``) may be absent (``minOccurs="0"``); a
``list[X]`` field repeats (``maxOccurs="unbounded"``); a nested model is a complex type of its own.

Reading collects the element's children into a dictionary that pydantic then validates, so every type
check is pydantic's: an unknown or misplaced child element, a repeated single field or a child inside a
scalar is ``bad_request`` naming the element.

Example::

    >>> class Citizen(BaseModel):
    ...     regnum: str
    ...     age: int
    >>> element = model_to_xml(Citizen(regnum="УБ99112233", age=30), "{urn:x}citizen")
    >>> etree.tostring(element, encoding="unicode")
    '<ns0:citizen xmlns:ns0="urn:x"><ns0:regnum>УБ99112233</ns0:regnum><ns0:age>30</ns0:age></ns0:citizen>'
    >>> Citizen.model_validate(xml_to_dict(Citizen, element))
    Citizen(regnum='УБ99112233', age=30)
"""

from __future__ import annotations

import datetime
import decimal
import enum
import types
import typing
from dataclasses import dataclass
from typing import Any, Final, Union

from lxml import etree
from pydantic import BaseModel

from adapters.sdk.declare import declaration_error, strip_annotated
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError

__all__ = ["XSD_NS", "FieldShape", "field_shapes", "model_schema", "model_to_xml", "xml_to_dict"]

XSD_NS: Final = "http://www.w3.org/2001/XMLSchema"
XSI_NIL: Final = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_XSD_TYPES: Final[dict[type, str]] = {
    str: "string",
    int: "integer",
    float: "double",
    decimal.Decimal: "decimal",
    bool: "boolean",
    datetime.datetime: "dateTime",
    datetime.date: "date",
}


@dataclass(frozen=True)
class FieldShape:
    """How one field of a model is written in XML."""

    name: str
    """The attribute on the model."""
    element: str
    """The element's local name."""
    optional: bool
    repeated: bool
    model: type[BaseModel] | None
    """The nested model, or ``None`` for a scalar."""
    xsd_type: str
    """The scalar's XSD type (local name), ``""`` for a nested model or an enumeration."""
    choices: tuple[str, ...] = ()
    """An enumeration's values."""


def _unwrap(tp: Any) -> tuple[Any, bool, bool]:
    """(item type, optional, repeated)."""
    tp = strip_annotated(tp)
    optional = repeated = False
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise declaration_error(f"a union of {len(args)} types has no XML form")
        optional = True
        tp = strip_annotated(args[0])
        origin = typing.get_origin(tp)
    if origin in (list, tuple, set, frozenset):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if len(args) != 1:
            raise declaration_error("a sequence field needs one item type")
        repeated = True
        tp = strip_annotated(args[0])
    return tp, optional, repeated


def _shape(name: str, element: str, annotation: Any, required: bool) -> FieldShape:
    tp, optional, repeated = _unwrap(annotation)
    optional = optional or not required
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return FieldShape(name, element, optional, repeated, tp, "")
    if typing.get_origin(tp) is typing.Literal:
        values = tuple(str(v) for v in typing.get_args(tp))
        return FieldShape(name, element, optional, repeated, None, "", values)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return FieldShape(name, element, optional, repeated, None, "", tuple(str(m.value) for m in tp))
    for python_type, xsd_type in _XSD_TYPES.items():
        if isinstance(tp, type) and issubclass(tp, python_type):
            return FieldShape(name, element, optional, repeated, None, xsd_type)
    raise declaration_error(f"field {name!r} of type {tp!r} has no XML form")


def field_shapes(model: type[BaseModel]) -> list[FieldShape]:
    """The XML shape of each of ``model``'s fields, in order (``declaration_error`` for a type with no XML
    form, such as a dict or a union of two types)."""
    return [
        _shape(name, field.alias or name, field.annotation, field.is_required())
        for name, field in model.model_fields.items()
    ]


def _bad(message: str) -> XRoadError:
    return XRoadError(FaultCode.BAD_REQUEST, message, kind=ErrorKind.BAD_INPUT)


def xml_to_dict(model: type[BaseModel], element: etree._Element) -> dict[str, Any]:
    """The children of ``element`` as the input of ``model.model_validate`` (keys are element names, so
    aliases apply)."""
    namespace = etree.QName(element).namespace
    shapes = {s.element: s for s in field_shapes(model)}
    out: dict[str, Any] = {}
    for child in element.iterchildren("{*}*"):
        qname = etree.QName(child)
        shape = shapes.get(qname.localname)
        if shape is None or qname.namespace != namespace:
            raise _bad(f"element {qname.localname[:60]!r} is not part of {etree.QName(element).localname}")
        value: Any
        if child.get(XSI_NIL) in ("true", "1"):
            value = None
        elif shape.model is not None:
            value = xml_to_dict(shape.model, child)
        elif len(child):
            raise _bad(f"element {qname.localname!r} holds elements; it takes a value")
        else:
            value = child.text or ""
        if shape.repeated:
            out.setdefault(shape.element, []).append(value)
        elif shape.element in out:
            raise _bad(f"element {qname.localname!r} is repeated; it takes one value")
        else:
            out[shape.element] = value
    return out


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def model_to_xml(value: BaseModel, tag: str, *, parent: etree._Element | None = None) -> etree._Element:
    """``value`` as element ``tag`` (``{namespace}name``); its fields as children in the same namespace."""
    element = etree.Element(tag) if parent is None else etree.SubElement(parent, tag)
    namespace = etree.QName(tag).namespace
    for shape in field_shapes(type(value)):
        field_value = getattr(value, shape.name)
        if field_value is None:
            continue
        items = list(field_value) if shape.repeated else [field_value]
        child_tag = f"{{{namespace}}}{shape.element}" if namespace else shape.element
        for item in items:
            if isinstance(item, BaseModel):
                model_to_xml(item, child_tag, parent=element)
            else:
                etree.SubElement(element, child_tag).text = _text(item)
    return element


def _xsd(name: str) -> str:
    return f"{{{XSD_NS}}}{name}"


def model_schema(model: type[BaseModel], schema: etree._Element, *, element: str | None = None) -> None:
    """Append ``model``'s complex type (named after the model) and those of its nested models to the
    ``xsd:schema`` element ``schema``; with ``element``, a global element of that name and type too."""
    done = {str(t.get("name")) for t in schema.iterchildren(_xsd("complexType"))}
    _complex_type(model, schema, done)
    if element is not None:
        etree.SubElement(schema, _xsd("element"), name=element, type=f"tns:{model.__name__}")


def _complex_type(model: type[BaseModel], schema: etree._Element, done: set[str]) -> None:
    if model.__name__ in done:
        return
    done.add(model.__name__)
    shapes = field_shapes(model)
    complex_type = etree.SubElement(schema, _xsd("complexType"), name=model.__name__)
    sequence = etree.SubElement(complex_type, _xsd("sequence"))
    for shape in shapes:
        attrs = {"name": shape.element}
        if shape.optional:
            attrs["minOccurs"] = "0"
        if shape.repeated:
            attrs["maxOccurs"] = "unbounded"
        child = etree.SubElement(sequence, _xsd("element"), attrs)
        description = model.model_fields[shape.name].description
        if description:
            annotation = etree.SubElement(child, _xsd("annotation"))
            etree.SubElement(annotation, _xsd("documentation")).text = description
        if shape.model is not None:
            child.set("type", f"tns:{shape.model.__name__}")
        elif shape.choices:
            simple = etree.SubElement(child, _xsd("simpleType"))
            restriction = etree.SubElement(simple, _xsd("restriction"), base="xsd:string")
            for choice in shape.choices:
                etree.SubElement(restriction, _xsd("enumeration"), value=choice)
        else:
            child.set("type", f"xsd:{shape.xsd_type}")
    for shape in shapes:
        if shape.model is not None:
            _complex_type(shape.model, schema, done)
