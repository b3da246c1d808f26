"""The admin API's audit events, named as X-Road's security server names them in its audit log."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["NodeEvent"]


class NodeEvent(StrEnum):
    API_KEY_AUTHENTICATION = "API key authentication"
    # keys and certificates (security officer)
    GENERATE_KEY = "Generate key"
    DELETE_KEY = "Delete key"
    GENERATE_CSR = "Generate CSR"
    GENERATE_KEY_AND_CSR = "Generate key and CSR"
    DELETE_CSR = "Delete CSR"
    REQUEST_CERTIFICATE = "Request certificate"
    IMPORT_CERTIFICATE = "Import certificate from file"
    ACTIVATE_CERTIFICATE = "Activate certificate"
    DISABLE_CERTIFICATE = "Disable certificate"
    DELETE_CERTIFICATE = "Delete certificate"
    # registration
    REGISTER_AUTH_CERT = "Register authentication certificate"
    REGISTER_CLIENT = "Register client"
    SYNC_REGISTRATION = "Update registration state from global configuration"
    # clients
    ADD_CLIENT = "Add client"
    DELETE_CLIENT = "Delete client"
    SET_CONNECTION_TYPE = "Set connection type for client"
    ADD_CLIENT_TLS_CERT = "Add client internal TLS certificate"
    DELETE_CLIENT_TLS_CERT = "Delete client internal TLS certificate"
    # services
    ADD_SERVICE_DESCRIPTION = "Add service description"
    REFRESH_SERVICE_DESCRIPTION = "Refresh service description"
    ENABLE_SERVICE_DESCRIPTION = "Enable service description"
    DISABLE_SERVICE_DESCRIPTION = "Disable service description"
    DELETE_SERVICE_DESCRIPTION = "Delete service description"
    EDIT_SERVICE_PARAMS = "Edit service parameters"
    ADD_REST_ENDPOINT = "Add rest endpoint"
    EDIT_REST_ENDPOINT = "Edit rest endpoint"
    DELETE_REST_ENDPOINT = "Delete rest endpoint"
    # access rights and local groups
    ADD_SERVICE_ACCESS_RIGHTS = "Add access rights to service"
    REMOVE_SERVICE_ACCESS_RIGHTS = "Remove access rights from service"
    ADD_LOCAL_GROUP = "Add group"
    EDIT_LOCAL_GROUP_DESC = "Edit group description"
    DELETE_LOCAL_GROUP = "Delete group"
    ADD_LOCAL_GROUP_MEMBERS = "Add members to group"
    REMOVE_LOCAL_GROUP_MEMBERS = "Remove members from group"
    # API keys (the node's CLI)
    CREATE_API_KEY = "Create API key"
    REVOKE_API_KEY = "Revoke API key"
    # the message log (auditors; xroad-mn's own events: X-Road does not audit log reads)
    SEARCH_MESSAGE_LOG = "Search message log"
    READ_MESSAGE_LOG_RECORD = "Read message log record"
    READ_MESSAGE_BODY = "Read logged message body"
    EXPORT_MESSAGE_LOG = "Export message log"
