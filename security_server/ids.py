"""Identifiers as people write them to the node (CLI, admin API): both forms X-Road shows, read by the core's
:class:`xroad_mn.identifiers.PeopleIdReader` as the registry reads them, under the names the node uses.

A client is ``MN:GOV:9010001`` / ``MN:GOV:9010001:civil-registry`` (the admin API's colon form) or
``MEMBER:MN/GOV/9010001`` / ``SUBSYSTEM:MN/GOV/9010001/civil-registry`` (X-Road's string form; in a URL path
``/`` is written ``%2F``). An access right's subject may also be ``GLOBALGROUP:MN/code`` or
``LOCALGROUP:code``; a service is ``SERVICE:MN/GOV/9010001/civil-registry/people[/v1]``. Errors are bad
input (400) that name the accepted forms::

    >>> parse_client_id("MEMBER:MN/GOV/9010001") == parse_client_id("MN:GOV:9010001")
    True
    >>> format_for_people(parse_subsystem_id("SUBSYSTEM:MN/GOV/9010001/civil"))
    'MN:GOV:9010001:civil'
    >>> parse_subject("LOCALGROUP:auditors")
    LocalGroupId(group_code='auditors')

Each reader takes ``strict``, the node's :data:`STRICT_SETTING` (on by default). A refusal that only strict
mode makes names that setting, so the operator knows the switch (:func:`strict_checked`, which the node's
other identifier checks use too)::

    >>> xyp = "SERVICE:MN/GOV/9010001/xyp/WS100101_getCitizenIDCardInfo"
    >>> parse_service_id(xyp, strict=False).service_code
    'WS100101_getCitizenIDCardInfo'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from xroad_mn.errors import XRoadError
from xroad_mn.identifiers import (
    CLIENT_FORMS,
    MEMBER_FORMS,
    SERVICE_FORMS,
    SUBJECT_FORMS,
    SUBSYSTEM_FORMS,
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    MemberId,
    PeopleIdReader,
    ServiceId,
    SubsystemId,
    XRoadId,
    format_for_people,
    parse_client_for_people,
    parse_member_for_people,
    parse_service_for_people,
    parse_subject_for_people,
    parse_subsystem_for_people,
)

__all__ = [
    "CLIENT_FORMS",
    "MEMBER_FORMS",
    "SERVICE_FORMS",
    "STRICT_SETTING",
    "SUBJECT_FORMS",
    "SUBSYSTEM_FORMS",
    "NodeIdReader",
    "format_for_people",
    "format_subject",
    "parse_client_id",
    "parse_member_id",
    "parse_service_id",
    "parse_subject",
    "parse_subsystem_id",
    "strict_checked",
    "strict_only",
]

STRICT_SETTING: Final = "strict_identifier_checks"
"""The node setting that is X-Road's ``strict-identifier-checks``."""

_T = TypeVar("_T")
_P = TypeVar("_P", bound=XRoadId)


def strict_checked(check: Callable[[bool], _T], *, strict: bool) -> _T:
    """``check(strict)``: an identifier check (or a parser) run in the node's mode. When strict mode alone
    refuses — ``check(False)`` passes — the refusal keeps its code and kind and its message ends naming
    :data:`STRICT_SETTING` (``details["setting"]`` too); any other refusal is raised as it is."""
    try:
        return check(strict)
    except XRoadError as e:
        if not strict:
            raise
        refused = e
    try:
        check(False)
    except XRoadError:
        raise refused from None
    raise XRoadError(
        refused.code,
        f"{refused.message} (node setting {STRICT_SETTING} = true)",
        details={**refused.details, "setting": STRICT_SETTING},
        detail=refused.detail,
        kind=refused.kind,
        http_status=refused.http_status,
    ) from refused


def strict_only(e: XRoadError) -> bool:
    """Whether ``e`` is a refusal only strict mode made (as :func:`strict_checked` marks it)."""
    return e.details.get("setting") == STRICT_SETTING


@dataclass(frozen=True)
class NodeIdReader(Generic[_P]):
    """A :class:`~xroad_mn.identifiers.PeopleIdReader` in the node's mode (``strict``, on by default), its
    strict-only refusals naming :data:`STRICT_SETTING`."""

    read: PeopleIdReader[_P]

    def __call__(self, text: object, *, strict: bool = True) -> _P:
        return strict_checked(lambda s: self.read(text, strict=s), strict=strict)


parse_member_id: Final = NodeIdReader[MemberId](parse_member_for_people)
parse_subsystem_id: Final = NodeIdReader[SubsystemId](parse_subsystem_for_people)
parse_client_id: Final = NodeIdReader[ClientId](parse_client_for_people)
parse_subject: Final = NodeIdReader[ClientId | GlobalGroupId | LocalGroupId](parse_subject_for_people)
"""Who an access right is given to: a member, a subsystem, a global group or a local group."""
parse_service_id: Final = NodeIdReader[ServiceId](parse_service_for_people)
format_subject: Final = format_for_people
"""A subject as shown: clients in the colon form, groups in the string form."""
