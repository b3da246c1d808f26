"""X-Road identifiers: the six identifier types and every encoding X-Road puts them in.

An identifier is a frozen dataclass. Each encoding has a ``format_*`` and a ``parse_*`` function, and
``parse(format(x)) == x`` holds for every identifier and every encoding that can carry it.

Example::

    >>> from xroad_mn.identifiers import (
    ...     MemberId, ServiceId, parse_id, parse_client_header, parse_rest_service_path,
    ...     format_rest_service_path, to_xml, from_xml,
    ... )
    >>> member = MemberId("MN", "GOV", "5012345")
    >>> client = member.subsystem("civil-registry")
    >>> str(client)
    'SUBSYSTEM:MN/GOV/5012345/civil-registry'
    >>> parse_id("SUBSYSTEM:MN/GOV/5012345/civil-registry") == client
    True
    >>> parse_client_header("MN/COM/9011223") == MemberId("MN", "COM", "9011223")
    True
    >>> service = client.service("getPerson")
    >>> format_rest_service_path(service)
    '/r1/MN/GOV/5012345/civil-registry/getPerson'
    >>> parse_rest_service_path("/r1/MN/GOV/5012345/civil-registry/getPerson/people/42?full=1")
    (ServiceId(instance='MN', member_class='GOV', member_code='5012345', subsystem_code='civil-registry', \
service_code='getPerson', service_version=None), '/people/42?full=1')
    >>> from_xml(to_xml(client, "{http://x-road.eu/xsd/xroad.xsd}client")) == client
    True

Encodings (reference §2.1–2.2):

* **String form** ``TYPE:A/B/C`` (:func:`parse_id`, :func:`format_id`, ``str(x)``), as X-Road writes in
  logs and docs: ``MEMBER:MN/GOV/5012345``, ``SUBSYSTEM:MN/GOV/5012345/civil-registry``,
  ``SERVER:MN/GOV/5012345/ss1``, ``GLOBALGROUP:MN/security-server-owners``, ``LOCALGROUP:auditors``,
  ``SERVICE:MN/GOV/5012345/civil-registry/getPerson[/v1]``.
  X-Road's own ``toString`` leaves absent service parts out, so its five-part service form is ambiguous:
  ``SERVICE:EE/BUSINESS/JODA/getState/v1`` may be a member-level service with a version or a subsystem
  service without one. Our rule: **a five-part service is subsystem + service code** (the REST case), and a
  member-level service *with a version* is written with an empty subsystem slot,
  ``SERVICE:EE/BUSINESS/JODA//getState/v1``, which :func:`parse_id` reads back. Every other identifier is
  written exactly as X-Road writes it. :func:`to_xroad_string` gives X-Road's own (lossy) text.
* **REST path** ``/r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICECODE[/path][?query]``, each part
  percent-encoded on its own (:func:`parse_rest_service_path`, :func:`format_rest_service_path`).
* **Headers** ``X-Road-Client`` (``INSTANCE/CLASS/MEMBER[/SUBSYSTEM]``), ``X-Road-Security-Server``
  (``INSTANCE/CLASS/MEMBER/SERVERCODE``), ``X-Road-Service`` (``INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICECODE``)
  and ``X-Road-Represented-Party`` (``[CLASS/]CODE``), percent-encoded segments.
* **XML** ``XRoad*IdentifierType`` in namespace ``http://x-road.eu/xsd/identifiers`` with the
  namespace-qualified ``id:objectType`` attribute (:func:`from_xml`, :func:`to_xml`, :func:`parse_id_xml`).
* **Admin API colon form** ``MN:GOV:5012345:civil-registry`` (:func:`parse_colon_client_id`,
  :func:`format_colon_id`).
* **For people** (CLIs, admin APIs): either the colon or the string form, errors that name the accepted
  forms (:class:`PeopleIdReader`: ``parse_member_for_people`` and its kin, :func:`format_for_people`).

Characters. Every parser takes ``strict`` (default ``True``): strict mode is X-Road's
``strict-identifier-checks`` and allows only ``A-Z a-z 0-9 ' ( ) + , - . = ?``. Non-strict mode forbids only
what no encoding can carry: ``: ; / \\ %``, control characters, and code points XML cannot hold. Both modes
reject empty parts, parts longer than :data:`MAX_PART_CHARS`, and the path-traversal parts ``.`` and ``..``.
Constructing a dataclass applies the non-strict rules, so every instance can be written in every encoding
that has room for it. Errors are :class:`~xroad_mn.errors.XRoadError` with code
``invalid_client_identifier`` (members and subsystems), ``invalid_service_identifier``,
``invalid_security_server`` or ``invalid_identifier`` (groups, unknown types), a message naming the part,
and ``details["part"]``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import ClassVar, Final, Generic, TypeAlias, TypeVar
from urllib.parse import quote, unquote_to_bytes

from lxml import etree

from xroad_mn import xmlsafe
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError

__all__ = [
    "CLIENT_FORMS",
    "ID_NS",
    "MAX_ID_TEXT_CHARS",
    "MAX_ID_XML_BYTES",
    "MAX_PART_CHARS",
    "MEMBER_FORMS",
    "REST_PROTOCOL_SEGMENT",
    "SERVER_FORMS",
    "SERVICE_FORMS",
    "SUBJECT_FORMS",
    "SUBSYSTEM_FORMS",
    "ClientId",
    "GlobalGroupId",
    "LocalGroupId",
    "MemberId",
    "PeopleIdReader",
    "RepresentedParty",
    "SecurityServerId",
    "ServiceId",
    "SubsystemId",
    "XRoadId",
    "XRoadObjectType",
    "check_characters",
    "client_id_from_xml",
    "format_client_header",
    "format_colon_id",
    "format_for_people",
    "format_id",
    "format_represented_party_header",
    "format_rest_service_path",
    "format_security_server_header",
    "format_service_header",
    "from_xml",
    "parse_client_for_people",
    "parse_client_header",
    "parse_colon_client_id",
    "parse_colon_server_id",
    "parse_id",
    "parse_id_xml",
    "parse_member_for_people",
    "parse_represented_party_header",
    "parse_rest_service_path",
    "parse_security_server_header",
    "parse_server_for_people",
    "parse_service_for_people",
    "parse_service_header",
    "parse_subject_for_people",
    "parse_subsystem_for_people",
    "server_id_from_xml",
    "service_id_from_xml",
    "to_xml",
    "to_xroad_string",
    "validate_part",
]

ID_NS: Final = "http://x-road.eu/xsd/identifiers"
"""Namespace of the identifier elements and of the ``objectType`` attribute."""
ID_PREFIX: Final = "id"
MAX_PART_CHARS: Final = 255
"""Longest identifier part: X-Road keeps each part in a ``varchar(255)`` column."""
MAX_ID_TEXT_CHARS: Final = 1300
"""Longest identifier in string form (five parts, separators and the type prefix): the column size
databases give a stored identifier."""
MAX_ID_XML_BYTES: Final = 64 * 1024
"""Largest XML document :func:`parse_id_xml` reads; an identifier is a few hundred bytes."""
REST_PROTOCOL_SEGMENT: Final = "r1"
"""The only REST protocol version X-Road 7 speaks (PR-REST 1.0)."""
_MAX_SHOWN_CHARS: Final = 80

_STRICT_BAD: Final = re.compile(r"[^A-Za-z0-9'()+,\-.=?]")
# Non-strict: the delimiters of X-Road's encodings, ISO control characters (Java's
# Character.isISOControl) and code points XML 1.0 cannot carry (surrogates, U+FFFE, U+FFFF).
_LAX_BAD: Final = re.compile("[:;/\\\\%\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_BAD_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Guava's urlPathSegmentEscaper (what X-Road uses for the X-Road-Service header) keeps these unescaped.
_PATH_SEGMENT_SAFE: Final = "!$&'()*+,;=:@"
_HTTP_OWS: Final = " \t"


class XRoadObjectType(StrEnum):
    """The ``objectType`` of an identifier."""

    MEMBER = "MEMBER"
    SUBSYSTEM = "SUBSYSTEM"
    SERVER = "SERVER"
    GLOBALGROUP = "GLOBALGROUP"
    LOCALGROUP = "LOCALGROUP"
    SERVICE = "SERVICE"


# Part names as X-Road spells them (XML element names), in XML order, with the dataclass field each maps to.
_PART_FIELDS: Final[Mapping[str, str]] = {
    "xRoadInstance": "instance",
    "memberClass": "member_class",
    "memberCode": "member_code",
    "subsystemCode": "subsystem_code",
    "groupCode": "group_code",
    "serviceCode": "service_code",
    "serviceVersion": "service_version",
    "serverCode": "server_code",
}
_FIELD_PARTS: Final[Mapping[str, str]] = {v: k for k, v in _PART_FIELDS.items()}
_XML_ORDER: Final = tuple(_PART_FIELDS)


def _shown(value: str) -> str:
    return value if len(value) <= _MAX_SHOWN_CHARS else value[:_MAX_SHOWN_CHARS] + "…"


def validate_part(
    part: str, value: object, *, code: str = FaultCode.INVALID_IDENTIFIER, strict: bool = True
) -> str:
    """Check one identifier part and return it; raise :class:`XRoadError` naming ``part`` if it is invalid.

    ``part`` is X-Road's name for it (``memberCode``); ``code`` is the fault code to raise with.
    """
    if not isinstance(value, str):
        raise XRoadError(code, f"{part} must be a string, not {type(value).__name__}", details={"part": part})
    if not value:
        raise XRoadError(code, f"{part} is empty", details={"part": part, "value": value})
    if len(value) > MAX_PART_CHARS:
        raise XRoadError(
            code,
            f"{part} {_shown(value)!r} is longer than {MAX_PART_CHARS} characters",
            details={"part": part, "value": _shown(value), "length": len(value)},
        )
    bad = _LAX_BAD.search(value)
    strict_only = False
    if bad is None and strict:
        bad = _STRICT_BAD.search(value)
        strict_only = True
    if bad is not None:
        char = bad.group()
        where = " in strict mode" if strict_only else ""
        raise XRoadError(
            code,
            f"{part} {_shown(value)!r} contains {char!r} which X-Road identifiers do not allow{where}",
            details={"part": part, "value": _shown(value), "character": char, "strict": strict},
        )
    if value in (".", ".."):
        raise XRoadError(
            code,
            f"{part} {value!r} is a path-traversal segment, which X-Road identifiers do not allow",
            details={"part": part, "value": value},
        )
    return value


@functools.lru_cache(maxsize=4096)
def _lax_valid(value: str) -> bool:
    """Whether ``value`` passes :func:`validate_part` in lax mode (remembered: the same member classes,
    codes and service codes come in every message)."""
    return 0 < len(value) <= MAX_PART_CHARS and _LAX_BAD.search(value) is None and value not in (".", "..")


class _Identifier:
    """Behaviour shared by the six identifier dataclasses: validation, ordering, ``str``."""

    __slots__ = ()
    object_type: ClassVar[XRoadObjectType]
    fault_code: ClassVar[FaultCode]
    _rank: ClassVar[int]
    _optional: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None and f.name in self._optional:
                continue
            if isinstance(value, str) and _lax_valid(value):
                continue
            validate_part(_FIELD_PARTS[f.name], value, code=self.fault_code, strict=False)

    def parts(self) -> dict[str, str]:
        """The present parts, keyed by X-Road's part names, in XML order."""
        out: dict[str, str] = {}
        for name in _XML_ORDER:
            value = getattr(self, _PART_FIELDS[name], None)
            if value is not None:
                out[name] = value
        return out

    def _sort_key(self) -> tuple[int, tuple[str, ...]]:
        return self._rank, tuple(getattr(self, f.name) or "" for f in fields(self))  # type: ignore[arg-type]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, _Identifier):
            return NotImplemented
        return self._sort_key() < other._sort_key()

    def __le__(self, other: object) -> bool:
        if not isinstance(other, _Identifier):
            return NotImplemented
        return self._sort_key() <= other._sort_key()

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, _Identifier):
            return NotImplemented
        return self._sort_key() > other._sort_key()

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, _Identifier):
            return NotImplemented
        return self._sort_key() >= other._sort_key()

    def __str__(self) -> str:
        return format_id(self)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, repr=True, eq=True)
class MemberId(_Identifier):
    """An X-Road member: ``MEMBER:MN/GOV/5012345``."""

    object_type: ClassVar[XRoadObjectType] = XRoadObjectType.MEMBER
    fault_code: ClassVar[FaultCode] = FaultCode.INVALID_CLIENT_IDENTIFIER
    _rank: ClassVar[int] = 0

    instance: str
    member_class: str
    member_code: str

    def subsystem(self, subsystem_code: str) -> SubsystemId:
        """The subsystem ``subsystem_code`` of this member."""
        return SubsystemId(self.instance, self.member_class, self.member_code, subsystem_code)

    def service(self, service_code: str, service_version: str | None = None) -> ServiceId:
        """A member-level service (SOAP only: REST services live under a subsystem)."""
        return ServiceId(
            self.instance, self.member_class, self.member_code, None, service_code, service_version
        )

    def server(self, server_code: str) -> SecurityServerId:
        """The security server ``server_code`` owned by this member."""
        return SecurityServerId(self.instance, self.member_class, self.member_code, server_code)

    @property
    def member(self) -> MemberId:
        """The member itself, so that ``client.member`` works for any :data:`ClientId`."""
        return self


@dataclass(frozen=True, slots=True, repr=True, eq=True)
class SubsystemId(_Identifier):
    """A subsystem of an X-Road member: ``SUBSYSTEM:MN/GOV/5012345/civil-registry``."""

    object_type: ClassVar[XRoadObjectType] = XRoadObjectType.SUBSYSTEM
    fault_code: ClassVar[FaultCode] = FaultCode.INVALID_CLIENT_IDENTIFIER
    _rank: ClassVar[int] = 1

    instance: str
    member_class: str
    member_code: str
    subsystem_code: str

    @property
    def member(self) -> MemberId:
        """The member that owns this subsystem."""
        return MemberId(self.instance, self.member_class, self.member_code)

    def service(self, service_code: str, service_version: str | None = None) -> ServiceId:
        """The service ``service_code`` provided by this subsystem."""
        return ServiceId(
            self.instance,
            self.member_class,
            self.member_code,
            self.subsystem_code,
            service_code,
            service_version,
        )


@dataclass(frozen=True, slots=True, repr=True, eq=True)
class ServiceId(_Identifier):
    """A service of a subsystem (or, in SOAP, of a member), optionally versioned.

    ``SERVICE:MN/GOV/5012345/civil-registry/getPerson`` or ``.../getPerson/v1``. Versions do not take part
    in access control (PR-MESS §3.1); :attr:`versionless` gives the identifier ACLs are keyed on.
    """

    object_type: ClassVar[XRoadObjectType] = XRoadObjectType.SERVICE
    fault_code: ClassVar[FaultCode] = FaultCode.INVALID_SERVICE_IDENTIFIER
    _rank: ClassVar[int] = 5
    _optional: ClassVar[frozenset[str]] = frozenset({"subsystem_code", "service_version"})

    instance: str
    member_class: str
    member_code: str
    subsystem_code: str | None
    service_code: str
    service_version: str | None = None

    @property
    def client(self) -> MemberId | SubsystemId:
        """The provider: the subsystem, or the member for a member-level service."""
        if self.subsystem_code is None:
            return MemberId(self.instance, self.member_class, self.member_code)
        return SubsystemId(self.instance, self.member_class, self.member_code, self.subsystem_code)

    @property
    def member(self) -> MemberId:
        """The member that provides the service (directly or through a subsystem)."""
        return MemberId(self.instance, self.member_class, self.member_code)

    @property
    def versionless(self) -> ServiceId:
        """The same service without a version."""
        if self.service_version is None:
            return self
        return ServiceId(
            self.instance, self.member_class, self.member_code, self.subsystem_code, self.service_code
        )


@dataclass(frozen=True, slots=True, repr=True, eq=True)
class SecurityServerId(_Identifier):
    """A security server, named by its owner member and server code: ``SERVER:MN/GOV/5012345/ss1``."""

    object_type: ClassVar[XRoadObjectType] = XRoadObjectType.SERVER
    fault_code: ClassVar[FaultCode] = FaultCode.INVALID_SECURITY_SERVER
    _rank: ClassVar[int] = 2

    instance: str
    member_class: str
    member_code: str
    server_code: str

    @property
    def owner(self) -> MemberId:
        """The member that owns the security server."""
        return MemberId(self.instance, self.member_class, self.member_code)


@dataclass(frozen=True, slots=True, repr=True, eq=True)
class GlobalGroupId(_Identifier):
    """A global group of an instance: ``GLOBALGROUP:MN/security-server-owners``."""

    object_type: ClassVar[XRoadObjectType] = XRoadObjectType.GLOBALGROUP
    fault_code: ClassVar[FaultCode] = FaultCode.INVALID_IDENTIFIER
    _rank: ClassVar[int] = 3

    instance: str
    group_code: str


@dataclass(frozen=True, slots=True, repr=True, eq=True)
class LocalGroupId(_Identifier):
    """A local group of a security server client: ``LOCALGROUP:auditors`` (no instance)."""

    object_type: ClassVar[XRoadObjectType] = XRoadObjectType.LOCALGROUP
    fault_code: ClassVar[FaultCode] = FaultCode.INVALID_IDENTIFIER
    _rank: ClassVar[int] = 4

    group_code: str


ClientId: TypeAlias = MemberId | SubsystemId
"""A member or a subsystem: what may be a client (consumer) or service provider."""
XRoadId: TypeAlias = MemberId | SubsystemId | ServiceId | SecurityServerId | GlobalGroupId | LocalGroupId
"""Any of the six identifier types."""

_CLASSES: Final[Mapping[XRoadObjectType, type[XRoadId]]] = {
    cls.object_type: cls
    for cls in (MemberId, SubsystemId, ServiceId, SecurityServerId, GlobalGroupId, LocalGroupId)
}
# Parts each type must have and may have.
_REQUIRED: Final[Mapping[XRoadObjectType, tuple[str, ...]]] = {
    XRoadObjectType.MEMBER: ("xRoadInstance", "memberClass", "memberCode"),
    XRoadObjectType.SUBSYSTEM: ("xRoadInstance", "memberClass", "memberCode", "subsystemCode"),
    XRoadObjectType.SERVICE: ("xRoadInstance", "memberClass", "memberCode", "serviceCode"),
    XRoadObjectType.SERVER: ("xRoadInstance", "memberClass", "memberCode", "serverCode"),
    XRoadObjectType.GLOBALGROUP: ("xRoadInstance", "groupCode"),
    XRoadObjectType.LOCALGROUP: ("groupCode",),
}
_OPTIONAL: Final[Mapping[XRoadObjectType, tuple[str, ...]]] = {
    XRoadObjectType.SERVICE: ("subsystemCode", "serviceVersion"),
}


def _build(
    object_type: XRoadObjectType, parts: Mapping[str, str], *, strict: bool, code: str | None = None
) -> XRoadId:
    """Make the identifier of ``object_type`` from named parts, with X-Road's semantic checks.

    ``code`` overrides the fault code of the type (a client header raises ``invalid_client_identifier``
    whatever it holds).
    """
    cls = _CLASSES[object_type]
    fault = code if code is not None else cls.fault_code
    required = _REQUIRED[object_type]
    allowed = required + _OPTIONAL.get(object_type, ())
    for name in _XML_ORDER:
        if name in parts and name not in allowed:
            raise XRoadError(
                fault,
                f"{object_type} identifier must not have a {name} ({_shown(parts[name])!r})",
                details={"part": name, "objectType": str(object_type)},
            )
    for name in required:
        if name not in parts:
            raise XRoadError(
                fault,
                f"{object_type} identifier has no {name}",
                details={"part": name, "objectType": str(object_type)},
            )
    kwargs: dict[str, str | None] = {}
    for name in allowed:
        value = parts.get(name)
        kwargs[_PART_FIELDS[name]] = (
            None if value is None else validate_part(name, value, code=fault, strict=strict)
        )
    return cls(**kwargs)  # type: ignore[arg-type]


def check_characters(identifier: XRoadId, *, strict: bool = True) -> None:
    """Check each part of ``identifier`` in ``strict`` mode (X-Road's ``strict-identifier-checks``): for an
    identifier read leniently, as from a SOAP header, which a node then holds to its own mode. Raises the
    identifier type's fault code."""
    for name, value in identifier.parts().items():
        validate_part(name, value, code=identifier.fault_code, strict=strict)


def _object_type(text: str, code: str) -> XRoadObjectType:
    try:
        return XRoadObjectType(text)
    except ValueError:
        raise XRoadError(
            code,
            f"unknown identifier objectType {_shown(text)!r}",
            details={"part": "objectType", "value": _shown(text)},
        ) from None


# --------------------------------------------------------------------------------------------------------
# String form TYPE:A/B/C


def format_id(x: XRoadId) -> str:
    """The string form ``TYPE:A/B/C``; ``str(x)`` gives the same (see the module docstring for services)."""
    values = list(x.parts().values())
    if isinstance(x, ServiceId) and x.subsystem_code is None and x.service_version is not None:
        values = [x.instance, x.member_class, x.member_code, "", x.service_code, x.service_version]
    return f"{x.object_type}:{'/'.join(values)}"


def to_xroad_string(x: XRoadId) -> str:
    """Exactly X-Road's ``XRoadId.toString()``: the present parts joined with ``/``.

    The same as :func:`format_id` except for a member-level service with a version, which X-Road writes in a
    form :func:`parse_id` reads as a subsystem service. Use it to compare with X-Road's logs and docs.
    """
    return f"{x.object_type}:{'/'.join(x.parts().values())}"


_STRING_LAYOUTS: Final[Mapping[XRoadObjectType, Mapping[int, tuple[str, ...]]]] = {
    XRoadObjectType.MEMBER: {3: ("xRoadInstance", "memberClass", "memberCode")},
    XRoadObjectType.SUBSYSTEM: {4: ("xRoadInstance", "memberClass", "memberCode", "subsystemCode")},
    XRoadObjectType.SERVER: {4: ("xRoadInstance", "memberClass", "memberCode", "serverCode")},
    XRoadObjectType.GLOBALGROUP: {2: ("xRoadInstance", "groupCode")},
    XRoadObjectType.LOCALGROUP: {1: ("groupCode",)},
    XRoadObjectType.SERVICE: {
        4: ("xRoadInstance", "memberClass", "memberCode", "serviceCode"),
        5: ("xRoadInstance", "memberClass", "memberCode", "subsystemCode", "serviceCode"),
        6: ("xRoadInstance", "memberClass", "memberCode", "subsystemCode", "serviceCode", "serviceVersion"),
    },
}


def parse_id(text: str, *, strict: bool = True) -> XRoadId:
    """Read the string form ``TYPE:A/B/C`` written by :func:`format_id` (or by X-Road).

    A service has 4 parts (member-level), 5 (subsystem + service code) or 6 (with a version; an empty
    subsystem part means a member-level service).
    """
    if not isinstance(text, str):
        raise XRoadError(FaultCode.INVALID_IDENTIFIER, "identifier must be a string")
    type_text, sep, rest = text.partition(":")
    if not sep:
        raise XRoadError(
            FaultCode.INVALID_IDENTIFIER,
            f"identifier {_shown(text)!r} is not of the form TYPE:PART/PART/...",
            details={"value": _shown(text)},
        )
    object_type = _object_type(type_text, FaultCode.INVALID_IDENTIFIER)
    fault = _CLASSES[object_type].fault_code
    segments = rest.split("/")
    layout = _STRING_LAYOUTS[object_type].get(len(segments))
    if layout is None:
        counts = " or ".join(str(n) for n in _STRING_LAYOUTS[object_type])
        raise XRoadError(
            fault,
            f"{object_type} identifier {_shown(text)!r} has {len(segments)} parts, expected {counts}",
            details={"value": _shown(text), "parts": len(segments)},
        )
    parts = dict(zip(layout, segments, strict=True))
    if object_type is XRoadObjectType.SERVICE and len(segments) == 6 and parts["subsystemCode"] == "":
        del parts["subsystemCode"]
    return _build(object_type, parts, strict=strict)


# --------------------------------------------------------------------------------------------------------
# Percent-encoded forms: REST path and HTTP headers


def _pct_encode(value: str) -> str:
    return quote(value, safe=_PATH_SEGMENT_SAFE)


def _pct_decode(segment: str, part: str, code: str) -> str:
    """Percent-decode one segment as UTF-8 (``+`` stays ``+``, like Spring's ``UriUtils.decode``)."""
    if _BAD_PERCENT.search(segment):
        raise XRoadError(
            code,
            f"{part} {_shown(segment)!r} has a malformed percent-escape",
            details={"part": part, "value": _shown(segment)},
        )
    try:
        return unquote_to_bytes(segment).decode("utf-8")
    except UnicodeError:
        raise XRoadError(
            code,
            f"{part} {_shown(segment)!r} is not percent-encoded UTF-8",
            details={"part": part, "value": _shown(segment)},
        ) from None


def _header_segments(
    value: object, counts: Mapping[int, tuple[str, ...]], code: str, what: str
) -> dict[str, str]:
    if not isinstance(value, str):
        raise XRoadError(code, f"{what} header must be a string")
    value = value.strip(_HTTP_OWS)
    n = value.count("/") + 1
    names = counts.get(n)
    if names is None:
        expected = " or ".join(str(k) for k in counts)
        raise XRoadError(
            code,
            f"{what} header {_shown(value)!r} has {n} segments, expected {expected}",
            details={"header": what, "value": _shown(value), "segments": n},
        )
    return {name: _pct_decode(seg, name, code) for name, seg in zip(names, value.split("/"), strict=True)}


_MEMBER_PARTS: Final = ("xRoadInstance", "memberClass", "memberCode")
_CLIENT_HEADER: Final[Mapping[int, tuple[str, ...]]] = {
    3: _MEMBER_PARTS,
    4: (*_MEMBER_PARTS, "subsystemCode"),
}
_SERVER_HEADER: Final[Mapping[int, tuple[str, ...]]] = {4: (*_MEMBER_PARTS, "serverCode")}
_SERVICE_HEADER: Final[Mapping[int, tuple[str, ...]]] = {5: (*_MEMBER_PARTS, "subsystemCode", "serviceCode")}


def _join_encoded(values: list[str]) -> str:
    return "/".join(_pct_encode(v) for v in values)


def format_client_header(client: ClientId) -> str:
    """The ``X-Road-Client`` header value ``INSTANCE/CLASS/MEMBER[/SUBSYSTEM]``."""
    if not isinstance(client, MemberId | SubsystemId):
        raise XRoadError(FaultCode.INVALID_CLIENT_IDENTIFIER, "X-Road-Client must be a member or a subsystem")
    return _join_encoded(list(client.parts().values()))


def parse_client_header(value: str, *, strict: bool = True) -> ClientId:
    """Read an ``X-Road-Client`` header value: 3 (member) or 4 (subsystem) percent-encoded segments."""
    parts = _header_segments(value, _CLIENT_HEADER, FaultCode.INVALID_CLIENT_IDENTIFIER, "X-Road-Client")
    object_type = XRoadObjectType.SUBSYSTEM if "subsystemCode" in parts else XRoadObjectType.MEMBER
    result = _build(object_type, parts, strict=strict)
    assert isinstance(result, MemberId | SubsystemId)
    return result


def format_security_server_header(server: SecurityServerId) -> str:
    """The ``X-Road-Security-Server`` header value ``INSTANCE/CLASS/MEMBER/SERVERCODE``."""
    if not isinstance(server, SecurityServerId):
        raise XRoadError(
            FaultCode.INVALID_SECURITY_SERVER, "X-Road-Security-Server must be a security server"
        )
    return _join_encoded(list(server.parts().values()))


def parse_security_server_header(value: str, *, strict: bool = True) -> SecurityServerId:
    """Read an ``X-Road-Security-Server`` header value: exactly 4 percent-encoded segments."""
    parts = _header_segments(
        value, _SERVER_HEADER, FaultCode.INVALID_SECURITY_SERVER, "X-Road-Security-Server"
    )
    result = _build(XRoadObjectType.SERVER, parts, strict=strict)
    assert isinstance(result, SecurityServerId)
    return result


def _require_rest_service(service: ServiceId) -> tuple[str, str, str, str, str]:
    if not isinstance(service, ServiceId):
        raise XRoadError(
            FaultCode.INVALID_SERVICE_IDENTIFIER, "a REST service identifier must be a ServiceId"
        )
    if service.subsystem_code is None:
        raise XRoadError(
            FaultCode.INVALID_SERVICE_IDENTIFIER,
            f"REST service {format_id(service)} has no subsystem: REST services live under a subsystem",
            details={"part": "subsystemCode"},
        )
    if service.service_version is not None:
        raise XRoadError(
            FaultCode.INVALID_SERVICE_IDENTIFIER,
            f"REST service {format_id(service)} has a version, which REST identifiers cannot carry",
            details={"part": "serviceVersion"},
        )
    return (
        service.instance,
        service.member_class,
        service.member_code,
        service.subsystem_code,
        service.service_code,
    )


def format_service_header(service: ServiceId) -> str:
    """The ``X-Road-Service`` response header value ``INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICECODE``."""
    return _join_encoded(list(_require_rest_service(service)))


def parse_service_header(value: str, *, strict: bool = True) -> ServiceId:
    """Read an ``X-Road-Service`` header value: exactly 5 percent-encoded segments."""
    parts = _header_segments(value, _SERVICE_HEADER, FaultCode.INVALID_SERVICE_IDENTIFIER, "X-Road-Service")
    result = _build(XRoadObjectType.SERVICE, parts, strict=strict)
    assert isinstance(result, ServiceId)
    return result


def format_rest_service_path(service: ServiceId) -> str:
    """The REST request path ``/r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICECODE``.

    Each part is percent-encoded on its own (``/`` inside a part would be ``%2F``). Append the service's
    own path and query to it as they are.
    """
    return f"/{REST_PROTOCOL_SEGMENT}/{_join_encoded(list(_require_rest_service(service)))}"


_REST_ID_PARTS: Final = (*_MEMBER_PARTS, "subsystemCode", "serviceCode")
_REST_VERSION: Final = re.compile(r"r[0-9]")


def parse_rest_service_path(path: str, *, strict: bool = True) -> tuple[ServiceId, str]:
    """Split a raw REST request target into the service identifier and the rest of the path and query.

    ``/r1/MN/GOV/5012345/civil-registry/getPerson/people/42?x=1`` gives the service and
    ``"/people/42?x=1"``. As in X-Road's ``RestRequest``, exactly five identifier segments follow ``/r1``
    (the subsystem is mandatory, there is no version) and each is percent-decoded on its own; the rest is
    returned raw, as X-Road passes it on unmodified.
    """
    code = FaultCode.INVALID_SERVICE_IDENTIFIER
    if not isinstance(path, str):
        raise XRoadError(code, "REST request path must be a string")
    raw_path, qmark, query = path.partition("?")
    segments = raw_path.split("/", 7)
    if len(segments) < 2 or segments[0] != "":
        raise XRoadError(
            FaultCode.BAD_REQUEST,
            f"REST request path {_shown(path)!r} does not start with '/'",
            details={"value": _shown(path)},
        )
    if segments[1] != REST_PROTOCOL_SEGMENT:
        if _REST_VERSION.fullmatch(segments[1]):
            raise XRoadError(
                FaultCode.INVALID_PROTOCOL_VERSION,
                f"REST protocol version {segments[1]!r} is not supported (only {REST_PROTOCOL_SEGMENT!r})",
                details={"value": segments[1]},
            )
        raise XRoadError(
            FaultCode.BAD_REQUEST,
            f"REST request path {_shown(path)!r} does not start with /{REST_PROTOCOL_SEGMENT}/",
            details={"value": _shown(path)},
        )
    if len(segments) < 7:
        raise XRoadError(
            code,
            f"REST request path {_shown(path)!r} has {len(segments) - 2} service identifier segments, "
            "expected 5 (INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICECODE)",
            details={"value": _shown(path), "segments": len(segments) - 2},
        )
    parts = {
        name: _pct_decode(seg, name, code) for name, seg in zip(_REST_ID_PARTS, segments[2:7], strict=True)
    }
    service = _build(XRoadObjectType.SERVICE, parts, strict=strict)
    assert isinstance(service, ServiceId)
    remaining = ("/" + segments[7] if len(segments) == 8 else "") + (qmark + query)
    return service, remaining


@dataclass(frozen=True, slots=True)
class RepresentedParty:
    """The party a client acts for (PR-THIRD): ``X-Road-Represented-Party: [CLASS/]CODE``."""

    party_code: str
    party_class: str | None = None

    def __post_init__(self) -> None:
        validate_part("partyCode", self.party_code, code=FaultCode.INVALID_IDENTIFIER, strict=False)
        if self.party_class is not None:
            validate_part("partyClass", self.party_class, code=FaultCode.INVALID_IDENTIFIER, strict=False)


def format_represented_party_header(party: RepresentedParty) -> str:
    """The ``X-Road-Represented-Party`` header value ``[CLASS/]CODE``."""
    values = [party.party_code] if party.party_class is None else [party.party_class, party.party_code]
    return _join_encoded(values)


def parse_represented_party_header(value: str, *, strict: bool = True) -> RepresentedParty:
    """Read an ``X-Road-Represented-Party`` header value: 1 or 2 percent-encoded segments."""
    code = FaultCode.INVALID_IDENTIFIER
    parts = _header_segments(
        value, {1: ("partyCode",), 2: ("partyClass", "partyCode")}, code, "X-Road-Represented-Party"
    )
    for name, part in parts.items():
        validate_part(name, part, code=code, strict=strict)
    return RepresentedParty(parts["partyCode"], parts.get("partyClass"))


# --------------------------------------------------------------------------------------------------------
# Admin API colon form


def format_colon_id(x: ClientId | SecurityServerId) -> str:
    """The colon-joined form of the admin REST API: ``MN:GOV:5012345[:SUBSYSTEM]``, ``MN:GOV:5012345:SS``."""
    if not isinstance(x, MemberId | SubsystemId | SecurityServerId):
        raise XRoadError(FaultCode.INVALID_IDENTIFIER, "only clients and security servers have a colon form")
    return ":".join(x.parts().values())


def parse_colon_client_id(text: str, *, strict: bool = True) -> ClientId:
    """Read a client id in the colon form: 3 parts (member) or 4 (subsystem)."""
    code = FaultCode.INVALID_CLIENT_IDENTIFIER
    parts = _colon_parts(text, _CLIENT_HEADER, code)
    object_type = XRoadObjectType.SUBSYSTEM if "subsystemCode" in parts else XRoadObjectType.MEMBER
    result = _build(object_type, parts, strict=strict)
    assert isinstance(result, MemberId | SubsystemId)
    return result


def parse_colon_server_id(text: str, *, strict: bool = True) -> SecurityServerId:
    """Read a security server id in the colon form ``INSTANCE:CLASS:MEMBER:SERVERCODE``."""
    parts = _colon_parts(text, _SERVER_HEADER, FaultCode.INVALID_SECURITY_SERVER)
    result = _build(XRoadObjectType.SERVER, parts, strict=strict)
    assert isinstance(result, SecurityServerId)
    return result


def _colon_parts(text: object, counts: Mapping[int, tuple[str, ...]], code: str) -> dict[str, str]:
    if not isinstance(text, str):
        raise XRoadError(code, "encoded identifier must be a string")
    segments = text.split(":")
    names = counts.get(len(segments))
    if names is None:
        expected = " or ".join(str(k) for k in counts)
        raise XRoadError(
            code,
            f"encoded identifier {_shown(text)!r} has {len(segments)} parts, expected {expected}",
            details={"value": _shown(text), "parts": len(segments)},
        )
    return dict(zip(names, segments, strict=True))


# --------------------------------------------------------------------------------------------------------
# XML


_OBJECT_TYPE_ATTR: Final = f"{{{ID_NS}}}objectType"


def to_xml(x: XRoadId, tag: str, *, parent: etree._Element | None = None) -> etree._Element:
    """Write ``x`` as an ``XRoad*IdentifierType`` element named ``tag`` (Clark notation for a namespace).

    Children come in the XSD order and the ``id:objectType`` attribute is namespace-qualified. With
    ``parent``, the element is appended to it.
    """
    nsmap = {ID_PREFIX: ID_NS}
    if parent is None:
        element = etree.Element(tag, nsmap=nsmap)
    else:
        element = etree.SubElement(parent, tag, nsmap=nsmap)
    element.set(_OBJECT_TYPE_ATTR, str(x.object_type))
    for name, value in x.parts().items():
        etree.SubElement(element, f"{{{ID_NS}}}{name}").text = value
    return element


def _xml_object_type(element: etree._Element, code: str) -> XRoadObjectType:
    qualified = element.get(_OBJECT_TYPE_ATTR)
    plain = element.get("objectType")
    if qualified is not None and plain is not None and qualified != plain:
        raise XRoadError(
            code,
            f"identifier element has two different objectType attributes ({_shown(qualified)!r}, "
            f"{_shown(plain)!r})",
            details={"part": "objectType"},
        )
    type_text = qualified if qualified is not None else plain
    if type_text is None:
        raise XRoadError(
            code, "identifier element has no objectType attribute", details={"part": "objectType"}
        )
    return _object_type(type_text, code)


def _xml_parts(element: etree._Element, code: str) -> dict[str, str]:
    if element.text is not None and element.text.strip():
        raise XRoadError(code, "identifier element has text outside its parts", details={})
    parts: dict[str, str] = {}
    for child in element:
        if child.tail is not None and child.tail.strip():
            raise XRoadError(code, "identifier element has text outside its parts", details={})
        tag: object = child.tag
        if not isinstance(tag, str):  # comments, processing instructions, entity references
            if isinstance(child, etree._Entity):
                raise XRoadError(code, "identifier element contains an entity reference", details={})
            continue
        qname = etree.QName(tag)
        if qname.namespace != ID_NS or qname.localname not in _PART_FIELDS:
            raise XRoadError(
                code,
                f"identifier element has an unknown child {_shown(tag)!r}",
                details={"part": _shown(tag)},
            )
        name = qname.localname
        if name in parts:
            raise XRoadError(code, f"identifier element has {name} twice", details={"part": name})
        if len(child):
            raise XRoadError(code, f"{name} must contain only text", details={"part": name})
        parts[name] = child.text or ""
    return parts


def _from_xml(element: etree._Element, *, strict: bool, code: str | None) -> XRoadId:
    try:
        object_type = _xml_object_type(element, code or FaultCode.INVALID_IDENTIFIER)
        fault = code or _CLASSES[object_type].fault_code
        return _build(object_type, _xml_parts(element, fault), strict=strict, code=fault)
    except ValueError as e:  # lxml refuses some malformed names and values
        raise XRoadError(code or FaultCode.INVALID_IDENTIFIER, f"malformed identifier element: {e}") from e


def from_xml(element: etree._Element, *, strict: bool = True) -> XRoadId:
    """Read any ``XRoad*IdentifierType`` element.

    The ``objectType`` attribute may be namespace-qualified (as X-Road writes it) or plain. Parts may come in
    any order (as JAXB reads them) but each at most once; unknown children, missing parts and parts that do
    not belong to the type are errors, as is a MEMBER with a ``subsystemCode`` or a SUBSYSTEM without one.
    """
    return _from_xml(element, strict=strict, code=None)


def _wrong_type(result: XRoadId, code: str, what: str) -> XRoadError:
    return XRoadError(
        code,
        f"{what} must not be a {result.object_type} identifier",
        details={"part": "objectType", "value": str(result.object_type)},
    )


def client_id_from_xml(element: etree._Element, *, strict: bool = True) -> ClientId:
    """Read an ``XRoadClientIdentifierType`` (``xrd:client``): a MEMBER or SUBSYSTEM."""
    code = FaultCode.INVALID_CLIENT_IDENTIFIER
    result = _from_xml(element, strict=strict, code=code)
    if not isinstance(result, MemberId | SubsystemId):
        raise _wrong_type(result, code, "a client identifier")
    return result


def service_id_from_xml(element: etree._Element, *, strict: bool = True) -> ServiceId:
    """Read an ``XRoadServiceIdentifierType`` (``xrd:service``)."""
    code = FaultCode.INVALID_SERVICE_IDENTIFIER
    result = _from_xml(element, strict=strict, code=code)
    if not isinstance(result, ServiceId):
        raise _wrong_type(result, code, "a service identifier")
    return result


def server_id_from_xml(element: etree._Element, *, strict: bool = True) -> SecurityServerId:
    """Read an ``XRoadSecurityServerIdentifierType`` (``xrd:securityServer``)."""
    code = FaultCode.INVALID_SECURITY_SERVER
    result = _from_xml(element, strict=strict, code=code)
    if not isinstance(result, SecurityServerId):
        raise _wrong_type(result, code, "a security server identifier")
    return result


def parse_id_xml(data: bytes, *, strict: bool = True) -> XRoadId:
    """Parse an XML document whose root is an identifier element (no DTDs, no entities, no network)."""
    code = FaultCode.INVALID_XML
    if not isinstance(data, bytes | bytearray | memoryview):
        raise XRoadError(code, "identifier XML must be bytes")
    root = xmlsafe.parse(bytes(data), code=code, what="identifier XML", max_bytes=MAX_ID_XML_BYTES)
    return from_xml(root, strict=strict)


# --------------------------------------------------------------------------------------------------------
# Identifiers as people write them: CLI and admin APIs

MEMBER_FORMS: Final = "MN:GOV:9010001 or MEMBER:MN/GOV/9010001"
"""How a person may write a member (the accepted forms, as error messages name them)."""
SUBSYSTEM_FORMS: Final = "MN:GOV:9010001:SUB or SUBSYSTEM:MN/GOV/9010001/SUB"
CLIENT_FORMS: Final = f"a member ({MEMBER_FORMS}) or a subsystem ({SUBSYSTEM_FORMS})"
SERVER_FORMS: Final = "MN:GOV:9010001:SS1 or SERVER:MN/GOV/9010001/SS1"
SUBJECT_FORMS: Final = f"{CLIENT_FORMS}, GLOBALGROUP:MN/CODE or LOCALGROUP:CODE"
SERVICE_FORMS: Final = "SERVICE:MN/GOV/9010001/SUB/CODE or SERVICE:MN/GOV/9010001/SUB/CODE/VERSION"
_GROUP_PREFIXES: Final = (f"{XRoadObjectType.LOCALGROUP}:", f"{XRoadObjectType.GLOBALGROUP}:")


_P = TypeVar("_P", bound=XRoadId)


@dataclass(frozen=True)
class PeopleIdReader(Generic[_P]):
    """Reads identifiers of ``kinds`` as people write them to a CLI or an admin API: X-Road's string form
    when the text holds ``/`` (no part may) or names a group (``LOCALGROUP:auditors``), else the colon form
    of a client or, for a server reader, of a server. Services and groups have only the string form.

    Anything else is ``code`` (a bad input) whose message says the text is not ``what`` and names the
    accepted ``forms`` (also in ``details["accepted_forms"]``). ``strict`` is the parsers' (X-Road's
    ``strict-identifier-checks``; on by default). The readers are
    :data:`parse_member_for_people`, :data:`parse_subsystem_for_people`, :data:`parse_client_for_people`,
    :data:`parse_server_for_people`, :data:`parse_subject_for_people` and :data:`parse_service_for_people`::

        >>> parse_client_for_people("MEMBER:MN/GOV/9010001") == parse_client_for_people("MN:GOV:9010001")
        True
        >>> parse_subject_for_people("LOCALGROUP:auditors")
        LocalGroupId(group_code='auditors')
    """

    kinds: tuple[type[_P], ...]
    what: str
    forms: str
    code: FaultCode

    def __call__(self, text: object, *, strict: bool = True) -> _P:
        if not isinstance(text, str):
            raise self._wrong(str(text))
        try:
            if "/" in text or text.startswith(_GROUP_PREFIXES):
                found: XRoadId = parse_id(text, strict=strict)
            elif SecurityServerId in self.kinds:
                found = parse_colon_server_id(text, strict=strict)
            elif MemberId in self.kinds or SubsystemId in self.kinds:
                found = parse_colon_client_id(text, strict=strict)
            else:
                found = parse_id(text, strict=strict)
        except XRoadError as e:
            raise self._wrong(text, e.message) from e
        if not isinstance(found, self.kinds):
            raise self._wrong(text)
        return found

    def _wrong(self, text: str, reason: str = "") -> XRoadError:
        return XRoadError(
            self.code,
            f"{text[:80]!r} is not {self.what}: write {self.forms}" + (f" ({reason})" if reason else ""),
            details={"value": text[:80], "accepted_forms": self.forms},
            kind=ErrorKind.BAD_INPUT,
        )


parse_member_for_people: Final = PeopleIdReader[MemberId](
    (MemberId,), "a member identifier", MEMBER_FORMS, FaultCode.INVALID_CLIENT_IDENTIFIER
)
parse_subsystem_for_people: Final = PeopleIdReader[SubsystemId](
    (SubsystemId,), "a subsystem identifier", SUBSYSTEM_FORMS, FaultCode.INVALID_CLIENT_IDENTIFIER
)
parse_client_for_people: Final = PeopleIdReader[ClientId](
    (MemberId, SubsystemId),
    "a member or subsystem identifier",
    CLIENT_FORMS,
    FaultCode.INVALID_CLIENT_IDENTIFIER,
)
parse_server_for_people: Final = PeopleIdReader[SecurityServerId](
    (SecurityServerId,), "a security server identifier", SERVER_FORMS, FaultCode.INVALID_SECURITY_SERVER
)
parse_subject_for_people: Final = PeopleIdReader[ClientId | GlobalGroupId | LocalGroupId](
    (MemberId, SubsystemId, GlobalGroupId, LocalGroupId),
    "an access right subject",
    SUBJECT_FORMS,
    FaultCode.INVALID_IDENTIFIER,
)
"""Who an access right is given to: a member or a subsystem in either form, or a global or local group."""
parse_service_for_people: Final = PeopleIdReader[ServiceId](
    (ServiceId,), "a service identifier", SERVICE_FORMS, FaultCode.INVALID_SERVICE_IDENTIFIER
)


def format_for_people(x: ClientId | SecurityServerId | GlobalGroupId | LocalGroupId) -> str:
    """How a CLI or an admin API shows an identifier: clients and servers in the colon form
    (``MN:GOV:9010001:SUB``), groups in the string form (``LOCALGROUP:auditors``)."""
    if isinstance(x, MemberId | SubsystemId | SecurityServerId):
        return format_colon_id(x)
    return format_id(x)
