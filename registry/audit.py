"""The registry's audit events (X-Road's central server names), written by :class:`xroad_mn.admin.AuditLog`.

The admin API, the CLI and the management service audit every change as one of these events, and every
refused or failed attempt as ``<event> failed`` (see :mod:`xroad_mn.admin.audit`).

Example::

    >>> AuditEvent.ADD_MEMBER.value
    'Add member'
    >>> from xroad_mn.admin import failed_event
    >>> failed_event(AuditEvent.ADD_MEMBER)
    'Add member failed'
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AuditEvent"]


class AuditEvent(StrEnum):
    """Every event the registry audits (X-Road's central server names), from the admin API, the CLI and the
    management service."""

    API_KEY_AUTHENTICATION = "API key authentication"
    ACTIVATE_CONFIGURATION_SIGNING_KEY = "Activate configuration signing key"
    ADD_CERTIFICATION_SERVICE = "Add certification service"
    ADD_GLOBAL_GROUP = "Add global group"
    ADD_MEMBER = "Add member"
    ADD_MEMBER_CLASS = "Add member class"
    ADD_MEMBERS_TO_GLOBAL_GROUP = "Add members to global group"
    ADD_SECURITY_SERVER = "Add security server"
    ADD_SECURITY_SERVER_AUTHENTICATION_CERTIFICATE = "Add security server authentication certificate"
    ADD_SUBSYSTEM = "Add subsystem"
    ADD_TIMESTAMPING_SERVICE = "Add timestamping service"
    APPROVE_MANAGEMENT_REQUEST = "Approve management request"
    CREATE_API_KEY = "Create API key"
    DELETE_CERTIFICATION_SERVICE = "Delete certification service"
    DELETE_CONFIGURATION_SIGNING_KEY = "Delete configuration signing key"
    DELETE_MEMBER_FROM_GLOBAL_GROUP = "Delete member from global group"
    DELETE_SECURITY_SERVER_AUTHENTICATION_CERTIFICATE = "Delete security server authentication certificate"
    DELETE_TIMESTAMPING_SERVICE = "Delete timestamping service"
    EDIT_GLOBAL_SETTINGS = "Edit global settings"
    EDIT_MEMBER_CLASS = "Edit member class"
    EDIT_MEMBER_NAME = "Edit member name"
    EDIT_SECURITY_SERVER = "Edit security server"
    EDIT_SUBSYSTEM_NAME = "Edit subsystem name"
    GENERATE_CONFIGURATION_SIGNING_KEY = "Generate configuration signing key"
    INITIALIZE_REGISTRY = "Initialize registry"
    REGENERATE_GLOBAL_CONFIGURATION = "Regenerate global configuration"
    REGISTER_CLIENT = "Register client"
    REJECT_MANAGEMENT_REQUEST = "Reject management request"
    REVOKE_API_KEY = "Revoke API key"
    REVOKE_MANAGEMENT_REQUEST = "Revoke management request"
    SUBMIT_MANAGEMENT_REQUEST = "Submit management request"
    UNREGISTER_CLIENT = "Unregister client"
