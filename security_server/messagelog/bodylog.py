"""Body logging switched off (X-Road's ``message-body-logging`` and its per-subsystem lists).

With body logging off for an exchange the message log keeps only what identifies it: a SOAP message keeps
the X-Road header fields and an empty body wrapper; a REST message keeps its verb (or status line), the
service part of the path and the ``X-Road-*`` headers, and loses its query, other headers and body; SOAP
attachments and the REST body are not logged. Such a record no longer verifies against its signature, as
in X-Road (documented behaviour).

Whether a body is logged depends on the provider subsystem of the service and on which side the node is:
the *local producer* lists name providers hosted on this node (the server proxy side), the *remote
producer* lists providers elsewhere (the client proxy side). ``enabled_*`` lists apply when
``message_body_logging`` is off, ``disabled_*`` lists when it is on.

Example (the proxies call this before :meth:`~security_server.messagelog.writer.MessageLog.log`)::

    >>> policy = BodyLoggingPolicy.from_settings(settings)  # doctest: +SKIP
    >>> record = loggable_record(record, policy, local_producer=True)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from lxml import etree

from security_server.messagelog.records import LogRecord
from security_server.settings import NodeSettings
from xroad_mn import xmlsafe
from xroad_mn.errors import FaultCode
from xroad_mn.identifiers import ClientId, ServiceId, format_rest_service_path, parse_client_header

__all__ = [
    "LOGGED_SOAP_HEADERS",
    "BodyLoggingPolicy",
    "loggable_record",
    "loggable_rest_message",
    "loggable_soap_message",
]

SOAP_ENV_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
XROAD_NS: Final = "http://x-road.eu/xsd/xroad.xsd"
REPRESENTATION_NS: Final = "http://x-road.eu/xsd/representation.xsd"
LOGGED_SOAP_HEADERS: Final = frozenset(
    {
        f"{{{XROAD_NS}}}{name}"
        for name in ("client", "service", "id", "userId", "issue", "protocolVersion", "requestHash")
    }
    | {f"{{{REPRESENTATION_NS}}}representedParty"}
)
"""The SOAP header fields kept without the body: PR-MESS's X-Road headers and ``representedParty``
(``securityServer`` and ``securityToken`` are not logged, as in X-Road)."""
MAX_LOGGED_SOAP_BYTES: Final = 64 * 1024 * 1024
"""Largest SOAP message whose body is removed (the proxies bound messages far below this)."""
REST_HEADER_PREFIX: Final = "x-road-"
_CRLF: Final = "\r\n"


@dataclass(frozen=True)
class BodyLoggingPolicy:
    """Whose message bodies are logged: the default and the per-subsystem overrides."""

    message_body_logging: bool = True
    enabled_local: frozenset[ClientId] = frozenset()
    enabled_remote: frozenset[ClientId] = frozenset()
    disabled_local: frozenset[ClientId] = frozenset()
    disabled_remote: frozenset[ClientId] = frozenset()

    @classmethod
    def from_settings(cls, settings: NodeSettings) -> BodyLoggingPolicy:
        def ids(values: list[str]) -> frozenset[ClientId]:  # checked by the settings, in their mode
            return frozenset(parse_client_header(v, strict=False) for v in values)

        return cls(
            message_body_logging=settings.message_body_logging,
            enabled_local=ids(settings.enabled_body_logging_local_producer_subsystems),
            enabled_remote=ids(settings.enabled_body_logging_remote_producer_subsystems),
            disabled_local=ids(settings.disabled_body_logging_local_producer_subsystems),
            disabled_remote=ids(settings.disabled_body_logging_remote_producer_subsystems),
        )

    def logs_body(self, service: ServiceId, *, local_producer: bool) -> bool:
        """Whether the bodies of exchanges with ``service`` are logged on this side."""
        provider = service.client
        if self.message_body_logging:
            return provider not in (self.disabled_local if local_producer else self.disabled_remote)
        return provider in (self.enabled_local if local_producer else self.enabled_remote)


def loggable_soap_message(message: bytes) -> bytes:
    """The SOAP envelope with only the logged header fields and an empty body wrapper element."""
    root = xmlsafe.parse(
        message, code=FaultCode.INVALID_SOAP, what="the logged SOAP message", max_bytes=MAX_LOGGED_SOAP_BYTES
    )
    header = root.find(f"{{{SOAP_ENV_NS}}}Header")
    if header is not None:
        for child in list(header):
            if child.tag not in LOGGED_SOAP_HEADERS:
                header.remove(child)
    body = root.find(f"{{{SOAP_ENV_NS}}}Body")
    if body is not None:
        wrapper = next((c for c in body if isinstance(c.tag, str)), None)
        for child in list(body):
            if child is not wrapper:
                body.remove(child)
        body.text = None
        if wrapper is not None:
            for child in list(wrapper):
                wrapper.remove(child)
            wrapper.text = None
            wrapper.tail = None
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def loggable_rest_message(message: bytes, service: ServiceId) -> bytes:
    """The REST header part with the verb (or status code and reason), the service's own path without the
    caller's path and query, and only the ``X-Road-*`` headers."""
    lines = message.decode("utf-8", errors="replace").split(_CRLF)
    is_response = lines[0][:1] in "123456789" and lines[0] != ""
    head = lines[:2]
    if not is_response and len(head) == 2:
        head = [head[0], format_rest_service_path(service)]
    kept = [
        line for line in lines[2:] if line.partition(":")[0].strip().lower().startswith(REST_HEADER_PREFIX)
    ]
    return "".join(line + _CRLF for line in head + kept).encode()


def loggable_record(record: LogRecord, policy: BodyLoggingPolicy, *, local_producer: bool) -> LogRecord:
    """``record`` as the message log keeps it: itself when its body is logged, else without the body
    (and without attachments)."""
    if policy.logs_body(record.service, local_producer=local_producer):
        return record
    message = (
        loggable_rest_message(record.message, record.service)
        if record.rest
        else loggable_soap_message(record.message)
    )
    return dataclasses.replace(record, message=message, attachments=())
