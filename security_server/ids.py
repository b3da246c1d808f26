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
"""

from __future__ import annotations

from typing import Final

from xroad_mn.identifiers import (
    CLIENT_FORMS,
    MEMBER_FORMS,
    SERVICE_FORMS,
    SUBJECT_FORMS,
    SUBSYSTEM_FORMS,
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

parse_member_id: Final = parse_member_for_people
parse_subsystem_id: Final = parse_subsystem_for_people
parse_client_id: Final = parse_client_for_people
parse_subject: Final = parse_subject_for_people
"""Who an access right is given to: a member, a subsystem, a global group or a local group."""
parse_service_id: Final = parse_service_for_people
format_subject: Final = format_for_people
"""A subject as shown: clients in the colon form, groups in the string form."""
