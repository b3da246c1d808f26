"""The admin API's declaration: :data:`API` with X-Road's security server roles, and who may change what.

* security officer — the token, keys, CSRs and certificates, registering the authentication certificate;
* registration officer — clients and their registration (and the authentication certificate's);
* service administrator — service descriptions, services, endpoints, access rights, local groups, the
  information systems' TLS certificates and connection types;
* system administrator — the node's own settings-like state: connection types, TLS certificates, the
  registration state sync;
* observer — reads; every X-Road role reads the node's configuration;
* message log auditor (xroad-mn's own role) — searches the log and reads its metadata, and nothing else;
* message log body reader (xroad-mn's own) — what the auditor may, and the logged messages (a record's body,
  ASiC-E exports). Neither X-Road role reads the log (separation of duties).
"""

from __future__ import annotations

from typing import Final

from security_server.api.call import NodeCall
from security_server.api.events import NodeEvent
from xroad_mn.admin import SECURITY_SERVER_ADMIN_ROLES, SECURITY_SERVER_ROLES, AdminApi, Role

__all__ = [
    "API",
    "LOG_BODIES",
    "LOG_METADATA",
    "RO",
    "RO_SA",
    "SA",
    "SO",
    "SO_RO",
    "SVC",
    "SVC_SA",
    "operation",
]

SO: Final = frozenset({Role.XROAD_SECURITY_OFFICER})
RO: Final = frozenset({Role.XROAD_REGISTRATION_OFFICER})
SVC: Final = frozenset({Role.XROAD_SERVICE_ADMINISTRATOR})
SA: Final = frozenset({Role.XROAD_SYSTEM_ADMINISTRATOR})
SO_RO: Final = SO | RO
SVC_SA: Final = SVC | SA
RO_SA: Final = RO | SA
LOG_BODIES: Final = frozenset({Role.MESSAGELOG_BODY_READER})
LOG_METADATA: Final = LOG_BODIES | {Role.MESSAGELOG_AUDITOR}

API: Final = AdminApi(
    NodeCall,
    title="xroad-mn node admin API",
    version="1.0.0",
    roles=SECURITY_SERVER_ROLES,
    read_roles=SECURITY_SERVER_ADMIN_ROLES,
    authentication_event=NodeEvent.API_KEY_AUTHENTICATION,
    description="Keys, certificates, registration, clients, services, access rights and local groups of an "
    "X-Road compatible security server, and its message log for auditors.",
)
operation = API.operation
