"""What the proxies hand to the message log: one :class:`LogRecord` per request and per response.

Each record carries the :class:`ExchangeFacts` of its exchange, read from the request
(:func:`rest_facts`, :func:`soap_facts`) and given to both its records, so a search by user id, issue or
data subject finds the request and the response alike.

Example::

    >>> facts = rest_facts(request)  # doctest: +SKIP
    >>> record = LogRecord(  # doctest: +SKIP
    ...     query_id="MN-4f1c...", x_request_id="9d3e...", client=client, service=service,
    ...     response=False, rest=True, message=header_part, attachments=(body,), signature=signature,
    ...     facts=facts)
    >>> record_id = await message_log.log(record)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xroad_mn.identifiers import ClientId, ServiceId
from xroad_mn.signature import SignatureData
from xroad_mn.wire.rest import RestRequest
from xroad_mn.wire.soap import SoapMessage
from xroad_mn.wire.subject import data_subject_of_rest, data_subject_of_soap

__all__ = ["ExchangeFacts", "ExchangeFailure", "LogRecord", "rest_facts", "soap_facts"]


@dataclass(frozen=True)
class ExchangeFacts:
    """What an exchange's request says about it beyond the X-Road identifiers, for search."""

    data_subject: str | None = None
    """The citizen the exchange is about (``X-MN-Data-Subject`` / ``mn:dataSubject``), in clear: the log
    stores only its keyed hash (:class:`~security_server.messagelog.subjects.SubjectKey`)."""
    user_id: str | None = None
    issue: str | None = None


def rest_facts(request: RestRequest) -> ExchangeFacts:
    """The facts of a REST request (``invalid_message`` for a malformed data subject)."""
    return ExchangeFacts(data_subject_of_rest(request.headers), request.user_id, request.issue)


def soap_facts(message: SoapMessage) -> ExchangeFacts:
    """The facts of a SOAP request (``invalid_message`` for a malformed data subject)."""
    header = message.x_road_header
    return ExchangeFacts(data_subject_of_soap(message.raw), header.user_id, header.issue)


@dataclass(frozen=True)
class LogRecord:
    """A signed message of an exchange, as the message log keeps it."""

    query_id: str
    """SOAP ``id`` or REST ``X-Road-Id``."""
    x_request_id: str
    """The exchange's ``x-road-request-id`` (pairs the request and the response)."""
    client: ClientId
    """The exchange's client (member or subsystem), for both the request and the response."""
    service: ServiceId
    response: bool
    rest: bool
    message: bytes
    """The exact SOAP bytes, or the REST header part (``/message.xml`` of the signature)."""
    attachments: tuple[bytes, ...]
    """SOAP attachments in order, or ``(body,)`` for a REST message with a body."""
    signature: SignatureData
    """The XAdES document and, for batch signatures, the hash-chain result and this message's chain."""
    facts: ExchangeFacts = field(default_factory=ExchangeFacts)
    """The exchange's user id, issue and data subject (the same for its request and its response)."""


@dataclass(frozen=True)
class ExchangeFailure:
    """An exchange that failed after its request was logged as record ``request_record_id``: the X-Road fault
    code and fault string it failed with (the time is the writer's when it commits)."""

    request_record_id: int
    query_id: str
    x_request_id: str
    code: str
    fault_string: str
