"""The X-Road context of a call: who asks, for which service, on whose behalf, under which message id.

A provider node forwards a REST request to its information system with the consumer's ``X-Road-*`` headers
(``X-Road-Client``, ``X-Road-Id``, ``x-road-request-id``, and ``X-Road-UserId``, ``X-Road-Issue``,
``X-Road-Represented-Party`` and our ``X-MN-Data-Subject`` when the consumer sent them), and a SOAP request
with the X-Road SOAP header unchanged (``xrd:client``, ``xrd:service``, ``xrd:id``, ``xrd:userId``,
``xrd:issue``, ``mn:dataSubject``). :func:`rest_context` and :func:`soap_context` read what the node really
sends, with the core's parsers (:mod:`xroad_mn.wire.rest`, :mod:`xroad_mn.wire.soap`,
:mod:`xroad_mn.wire.subject`).

Example::

    >>> ctx = rest_context([("X-Road-Client", "MN/COM/9011223/kyc"), ("X-Road-Id", "MN-1"),
    ...                     ("x-road-request-id", "r-1"), ("X-MN-Data-Subject", "УБ99112233")])
    >>> str(ctx.client), ctx.query_id, ctx.request_id, ctx.data_subject
    ('SUBSYSTEM:MN/COM/9011223/kyc', 'MN-1', 'r-1', 'УБ99112233')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import (
    ClientId,
    RepresentedParty,
    ServiceId,
    parse_client_header,
    parse_represented_party_header,
    parse_service_header,
)
from xroad_mn.wire.rest import (
    HEADER_CLIENT,
    HEADER_ISSUE,
    HEADER_QUERY_ID,
    HEADER_REPRESENTED_PARTY,
    HEADER_REQUEST_ID,
    HEADER_SERVICE,
    HEADER_USER_ID,
)
from xroad_mn.wire.soap import SoapMessage
from xroad_mn.wire.subject import data_subject_of_rest, data_subject_of_soap

__all__ = ["XRoadContext", "rest_context", "soap_context"]


@dataclass(frozen=True, slots=True)
class XRoadContext:
    """What the provider node tells its information system about one call."""

    protocol: Literal["REST", "SOAP"]
    client: ClientId
    """The consumer (``X-Road-Client`` / ``xrd:client``)."""
    query_id: str | None
    """The message id (``X-Road-Id`` / ``xrd:id``): the key of the exchange's evidence in both nodes' logs."""
    service: ServiceId | None = None
    """The service called: always for SOAP (``xrd:service``); for REST only when the request names it
    (the node forwards no ``X-Road-Service`` header with a request)."""
    request_id: str | None = None
    """The consumer node's id of the exchange (``x-road-request-id``; REST only)."""
    user_id: str | None = None
    """The end user (``X-Road-UserId`` / ``xrd:userId``), e.g. ``MN-officer-7``."""
    issue: str | None = None
    """The case or document reference (``X-Road-Issue`` / ``xrd:issue``)."""
    data_subject: str | None = None
    """The citizen the request is about (``X-MN-Data-Subject`` / ``mn:dataSubject``)."""
    represented_party: RepresentedParty | None = None
    """The third party the consumer acts for (PR-THIRD)."""


def _bad_input(err: XRoadError) -> XRoadError:
    return XRoadError(err.code, err.message, detail=err.detail, kind=ErrorKind.BAD_INPUT)


def _last(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    """The last value of header ``name``: X-Road's fields take the last one, as X-Road's decoder does."""
    values = [v for k, v in headers if k.lower() == name]
    return values[-1] if values else None


def rest_context(headers: Sequence[tuple[str, str]]) -> XRoadContext:
    """The context of a REST request from its headers (names in any case, in their received order).

    No ``X-Road-Client`` is ``missing_header``; a malformed identifier keeps the core's identifier code; all
    are the caller's fault (HTTP 400).
    """
    client_value = _last(headers, HEADER_CLIENT)
    if client_value is None:
        raise XRoadError(
            FaultCode.MISSING_HEADER,
            "X-Road-Client header is missing: call this service through an X-Road security server",
            kind=ErrorKind.BAD_INPUT,
        )
    try:
        client = parse_client_header(client_value, strict=False)
        service_value = _last(headers, HEADER_SERVICE)
        party_value = _last(headers, HEADER_REPRESENTED_PARTY)
        service = None if service_value is None else parse_service_header(service_value, strict=False)
        party = None if party_value is None else parse_represented_party_header(party_value, strict=False)
        subject = data_subject_of_rest(headers)
    except XRoadError as e:
        raise _bad_input(e) from e
    return XRoadContext(
        protocol="REST",
        client=client,
        query_id=_last(headers, HEADER_QUERY_ID),
        service=service,
        request_id=_last(headers, HEADER_REQUEST_ID),
        user_id=_last(headers, HEADER_USER_ID),
        issue=_last(headers, HEADER_ISSUE),
        data_subject=subject,
        represented_party=party,
    )


def soap_context(message: SoapMessage) -> XRoadContext:
    """The context of a parsed SOAP request (:func:`xroad_mn.wire.soap.parse_soap_message`)."""
    header = message.x_road_header
    try:
        subject = data_subject_of_soap(message.raw)
    except XRoadError as e:
        raise _bad_input(e) from e
    return XRoadContext(
        protocol="SOAP",
        client=header.client,
        query_id=header.id,
        service=header.service,
        user_id=header.user_id,
        issue=header.issue,
        data_subject=subject,
        represented_party=header.represented_party,
    )
