"""Identifiers as people write them to the node (CLI, admin API): both forms X-Road shows.

A client is ``MN:GOV:9010001`` / ``MN:GOV:9010001:civil-registry`` (the admin API's colon form) or
``MEMBER:MN/GOV/9010001`` / ``SUBSYSTEM:MN/GOV/9010001/civil-registry`` (X-Road's string form; in a URL path
``/`` is written ``%2F``). An access right's subject may also be ``GLOBALGROUP:MN/code`` or
``LOCALGROUP:code``; a service is ``SERVICE:MN/GOV/9010001/civil-registry/people[/v1]``. Mirrors
:mod:`registry.validation` (applications do not import each other). Errors are 400s that name the accepted
forms::

    >>> parse_client_id("MEMBER:MN/GOV/9010001") == parse_client_id("MN:GOV:9010001")
    True
    >>> format_for_people(MemberId("MN", "GOV", "9010001").subsystem("civil"))
    'MN:GOV:9010001:civil'
    >>> parse_subject("LOCALGROUP:auditors")
    LocalGroupId(group_code='auditors')
"""

from __future__ import annotations

from typing import Final

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import (
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    MemberId,
    SecurityServerId,
    ServiceId,
    SubsystemId,
    XRoadId,
    format_colon_id,
    format_id,
    parse_colon_client_id,
    parse_id,
)

__all__ = [
    "CLIENT_FORMS",
    "MEMBER_FORMS",
    "SERVICE_FORMS",
    "SUBJECT_FORMS",
    "SUBSYSTEM_FORMS",
    "format_for_people",
    "format_subject",
    "parse_client_id",
    "parse_member_id",
    "parse_service_id",
    "parse_subject",
    "parse_subsystem_id",
]

MEMBER_FORMS: Final = "MN:GOV:9010001 or MEMBER:MN/GOV/9010001"
SUBSYSTEM_FORMS: Final = "MN:GOV:9010001:SUB or SUBSYSTEM:MN/GOV/9010001/SUB"
CLIENT_FORMS: Final = f"a member ({MEMBER_FORMS}) or a subsystem ({SUBSYSTEM_FORMS})"
SUBJECT_FORMS: Final = f"{CLIENT_FORMS}, GLOBALGROUP:MN/CODE or LOCALGROUP:CODE"
SERVICE_FORMS: Final = "SERVICE:MN/GOV/9010001/SUB/CODE or SERVICE:MN/GOV/9010001/SUB/CODE/VERSION"


def _wrong(text: str, forms: str, what: str, code: str, reason: str = "") -> XRoadError:
    return XRoadError(
        code,
        f"{text[:80]!r} is not {what}: write {forms}" + (f" ({reason})" if reason else ""),
        details={"value": text[:80], "accepted_forms": forms},
        http_status=400,
    )


def _parse(text: str, forms: str, what: str, code: str) -> XRoadId:
    """The string form when ``text`` has a ``TYPE:`` prefix with ``/`` or is a group, else the colon form."""
    if not isinstance(text, str):
        raise _wrong(str(text), forms, what, code)
    try:
        if "/" in text or text.startswith(("LOCALGROUP:", "GLOBALGROUP:")):
            return parse_id(text)
        return parse_colon_client_id(text)
    except XRoadError as e:
        raise _wrong(text, forms, what, code, e.message) from e


def parse_member_id(text: str) -> MemberId:
    code = FaultCode.INVALID_CLIENT_IDENTIFIER
    found = _parse(text, MEMBER_FORMS, "a member identifier", code)
    if not isinstance(found, MemberId):
        raise _wrong(text, MEMBER_FORMS, "a member identifier", code)
    return found


def parse_subsystem_id(text: str) -> SubsystemId:
    code = FaultCode.INVALID_CLIENT_IDENTIFIER
    found = _parse(text, SUBSYSTEM_FORMS, "a subsystem identifier", code)
    if not isinstance(found, SubsystemId):
        raise _wrong(text, SUBSYSTEM_FORMS, "a subsystem identifier", code)
    return found


def parse_client_id(text: str) -> ClientId:
    code = FaultCode.INVALID_CLIENT_IDENTIFIER
    found = _parse(text, CLIENT_FORMS, "a member or subsystem identifier", code)
    if not isinstance(found, MemberId | SubsystemId):
        raise _wrong(text, CLIENT_FORMS, "a member or subsystem identifier", code)
    return found


def parse_subject(text: str) -> ClientId | GlobalGroupId | LocalGroupId:
    """Who an access right is given to: a member, a subsystem, a global group or a local group."""
    code = FaultCode.INVALID_IDENTIFIER
    found = _parse(text, SUBJECT_FORMS, "an access right subject", code)
    if not isinstance(found, MemberId | SubsystemId | GlobalGroupId | LocalGroupId):
        raise _wrong(text, SUBJECT_FORMS, "an access right subject", code)
    return found


def parse_service_id(text: str) -> ServiceId:
    code = FaultCode.INVALID_SERVICE_IDENTIFIER
    try:
        found = parse_id(text) if isinstance(text, str) else None
    except XRoadError as e:
        raise _wrong(text, SERVICE_FORMS, "a service identifier", code, e.message) from e
    if not isinstance(found, ServiceId):
        raise _wrong(str(text), SERVICE_FORMS, "a service identifier", code)
    return found


def format_for_people(x: ClientId | SecurityServerId) -> str:
    """How the node shows a client or server: the colon form (``MN:GOV:9010001:SUB``)."""
    return format_colon_id(x)


def format_subject(x: ClientId | GlobalGroupId | LocalGroupId) -> str:
    """A subject as shown: clients in the colon form, groups in the string form."""
    if isinstance(x, MemberId | SubsystemId):
        return format_colon_id(x)
    return format_id(x)
