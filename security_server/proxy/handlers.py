"""The two halves of one exchange: the consumer node's (client proxy) and the provider node's (server proxy).

:class:`ConsumerExchange` takes an IS request (REST or SOAP), checks it, signs it as the client's member,
logs it, sends it to a node serving the provider, verifies the signed response (signature by the provider's
member, request hash, echoed ids), logs it and returns it. :class:`ProviderExchange` is the server proxy's
processing in X-Road's order (see :mod:`security_server.proxy.server_proxy`). The pure message work is the
core's (:mod:`xroad_mn.wire.rest`, :mod:`xroad_mn.wire.soap`, :mod:`xroad_mn.wire.transport`,
:mod:`xroad_mn.signature`); these classes are the I/O and the order around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final

import structlog
from aiohttp import web
from cryptography import x509

from security_server.db.records import Service
from security_server.exchange.peers import provider_addresses
from security_server.ids import strict_checked
from security_server.messagelog import ExchangeFacts, LogRecord, rest_facts, soap_facts
from security_server.opmonitoring import CLIENT, PRODUCER, OpTrace, now_ms
from security_server.proxy.configuration import ConfigurationView
from security_server.proxy.internal_tls import check_is_connection
from security_server.proxy.metaservices import (
    REST_METASERVICES,
    SOAP_METASERVICES,
    answer_rest_metaservice,
    answer_soap_metaservice,
)
from security_server.proxy.node import ExchangeNode
from security_server.proxy.provider_is import IsResponse, call_information_system, concat_path
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.hashchain import MessagePart
from xroad_mn.identifiers import (
    ClientId,
    SecurityServerId,
    ServiceId,
    XRoadId,
    check_characters,
    format_id,
    format_represented_party_header,
    parse_represented_party_header,
)
from xroad_mn.signature import SignatureData, verify_signature
from xroad_mn.wire import rest as rest_wire
from xroad_mn.wire import soap as soap_wire
from xroad_mn.wire import transport as tm
from xroad_mn.wire.faults import parse_soap_fault
from xroad_mn.wire.subject import path_without_subjects

__all__ = ["ConsumerExchange", "ExchangeResult", "IsConnection", "ProviderExchange"]

log = structlog.get_logger(__name__)

MESSAGE_PART: Final = "/message.xml"
PROXY_VERSION: Final = "7.8.1"
"""The ``x-proxy-version`` we announce: the X-Road version whose protocols we follow."""


def message_parts(message: bytes, attachments: Sequence[bytes]) -> list[MessagePart]:
    """``/message.xml`` then ``/attachment1`` … as X-Road names the signed parts."""
    parts = [MessagePart(MESSAGE_PART, message)]
    parts.extend(MessagePart(f"/attachment{i}", data) for i, data in enumerate(attachments, start=1))
    return parts


def _invalid(message: str) -> XRoadError:
    return XRoadError(FaultCode.INVALID_MESSAGE, message, kind=ErrorKind.BAD_INPUT)


def _bad_input(e: XRoadError) -> XRoadError:
    """``e`` as the caller's mistake (the client proxy codes it ``client.*``)."""
    if e.kind is ErrorKind.BAD_INPUT:
        return e
    return XRoadError(e.code, e.message, details=e.details, detail=e.detail, kind=ErrorKind.BAD_INPUT)


@dataclass(frozen=True)
class IsConnection:
    """How the IS reached the client proxy: over HTTPS or not, with which TLS certificate."""

    https: bool = False
    certificate: x509.Certificate | None = None


@dataclass(frozen=True)
class ExchangeResult:
    """What goes back to the consumer IS: status, reason, headers and body."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def response(self) -> web.Response:
        resp = web.Response(status=self.status, reason=self.reason or None, body=self.body)
        for name, value in self.headers:
            resp.headers.add(name, value)
        return resp


def _record(
    *,
    query_id: str,
    x_request_id: str,
    client: ClientId,
    service: ServiceId,
    response: bool,
    rest: bool,
    message: bytes,
    attachments: Sequence[bytes],
    signature: SignatureData,
    facts: ExchangeFacts,
) -> LogRecord:
    return LogRecord(
        query_id=query_id,
        x_request_id=x_request_id,
        client=client,
        service=service,
        response=response,
        rest=rest,
        message=message,
        attachments=tuple(attachments),
        signature=signature,
        facts=facts,
    )


def _soap_transport_message(
    split: soap_wire.SoapParts,
    signature: SignatureData,
    *,
    ocsp_responses: tuple[bytes, ...],
    soap: bytes | None = None,
) -> tm.TransportMessage:
    """The transport message of a signed SOAP message (``soap`` replaces the split's SOAP part: a response
    with its request hash inserted)."""
    return tm.TransportMessage(
        ocsp_responses=ocsp_responses,
        message_content_type=split.content_type,
        message=split.soap if soap is None else soap,
        attachments=tuple(split.attachments),
        hash_chain_result=signature.hash_chain_result,
        hash_chain=signature.hash_chain,
        signature=signature.signature_xml,
        message_headers=split.soap_headers,
    )


def _transport_headers(
    request_id: str, *, rest: bool, original_content_type: str | None = None
) -> dict[str, str]:
    headers = {
        tm.HEADER_REQUEST_ID: request_id,
        tm.HEADER_HASH_ALGORITHM: tm.HASH_ALGORITHM_SHA512,
        tm.HEADER_PROXY_VERSION: PROXY_VERSION,
    }
    if rest:
        headers[tm.HEADER_MESSAGE_TYPE] = tm.MESSAGE_TYPE_REST
    if original_content_type is not None:
        headers[tm.HEADER_ORIGINAL_CONTENT_TYPE] = original_content_type
    return headers


def _read_is_soap_request(
    content_type: str, body: bytes
) -> tuple[soap_wire.SoapParts, soap_wire.SoapMessage, ServiceId]:
    split = soap_wire.split_soap_message(content_type, body)
    message = soap_wire.parse_soap_message(split.soap, content_type=split.content_type, expect="request")
    service = message.x_road_header.service
    if service is None:
        raise XRoadError(FaultCode.MISSING_HEADER_FIELD, "Message header must contain service id")
    return split, message, service


def _parse_is_soap_request(
    content_type: str, body: bytes
) -> tuple[soap_wire.SoapParts, soap_wire.SoapMessage, ServiceId]:
    """The IS's SOAP request split, parsed and checked (header fields, ``protocolVersion``, body wrapper =
    ``serviceCode``); every failure is the IS's own (``client.*``), as X-Road's client proxy reports it."""
    try:
        return _read_is_soap_request(content_type, body)
    except XRoadError as e:  # the IS's own message: X-Road's translateWithPrefix(CLIENT_X, ex)
        raise _bad_input(e) from e


# ------------------------------------------------------------------------------------------------------------
# The consumer node


class ConsumerExchange:
    """One IS request through the client proxy, on the configuration ``view`` current when it arrived."""

    def __init__(
        self,
        node: ExchangeNode,
        view: ConfigurationView,
        connection: IsConnection | None = None,
        trace: OpTrace | None = None,
    ) -> None:
        self.node = node
        self.view = view
        self.connection = connection or IsConnection()
        self.trace = trace or OpTrace(CLIENT, now_ms())
        """Operational data of this exchange, filled in as it runs (the proxy records it at the end)."""
        self._logged: tuple[LogRecord, int] | None = None
        """The request and its record id once logged (a later failure is noted beside it)."""

    async def _check_client(self, client: ClientId) -> None:
        """The client is hosted here and registered (X-Road: the client must be a registered client of this
        security server), and the IS connected as the client's connection type demands."""
        hosted = await self.node.serverconf.hosted_clients()
        entry = hosted.get(client) or hosted.get(client.member)
        if entry is None:
            raise XRoadError(
                FaultCode.UNKNOWN_MEMBER,
                f"Client {format_id(client)} is not a client of security server "
                f"{format_id(self.node.server_id)}",
                kind=ErrorKind.BAD_INPUT,
            )
        check_is_connection(
            entry.client,
            entry.connection_type,
            https=self.connection.https,
            is_certificate=self.connection.certificate,
            registered=await self.node.serverconf.is_certificates(entry.client),
        )
        if not self.view.is_served_by(client, self.node.server_id):
            raise XRoadError(
                FaultCode.UNKNOWN_MEMBER,
                f"Client {format_id(client)} is not registered at security server "
                f"{format_id(self.node.server_id)}",
                kind=ErrorKind.BAD_INPUT,
            )

    def _addresses(
        self, provider: ClientId, target: SecurityServerId | None
    ) -> list[tuple[SecurityServerId, str]]:
        return provider_addresses(self.view.shared, provider, target)

    async def _send(
        self,
        provider: ClientId,
        target: SecurityServerId | None,
        message: tm.TransportMessage,
        headers: dict[str, str],
    ) -> tm.TransportMessage:
        content_type, body = tm.encode_transport_message(message)
        headers = {**headers, "Content-Type": content_type}
        settings = self.node.settings
        self.trace.request_sent()
        answer = await self.node.connector.post(
            self._addresses(provider, target),
            headers,
            body,
            provider=provider,
            connect_timeout=settings.connect_timeout_seconds,
            response_timeout=settings.exchange_timeout_seconds or None,
        )
        self.trace.response_received()
        return tm.decode_transport_message(answer.headers.get("Content-Type", ""), answer.body)

    async def _send_logged(
        self, request: LogRecord, send: Callable[[], Awaitable[tm.TransportMessage]]
    ) -> tm.TransportMessage:
        """Send while the signed request is being committed to the message log; the response is used only
        once the request's record is committed (a log failure fails the exchange, whatever the provider
        answered), and a failed send still waits for the record. A log that refuses records now
        (``timestamper_failed``) refuses the exchange before anything is sent."""
        self.node.message_log.check_accepting()
        logging = asyncio.ensure_future(self.node.log(request, local_producer=False))
        try:
            answer = await send()
        except BaseException:
            with contextlib.suppress(XRoadError):
                self._logged = (request, await asyncio.shield(logging))
            raise
        self._logged = (request, await logging)
        return answer

    def _verify_response(
        self, signature: SignatureData, parts: list[MessagePart], provider: ClientId
    ) -> None:
        verify_signature(
            signature.signature_xml,
            parts,
            trust=self.view.validator,
            expected_member=provider.member,
            at=self.node.clock(),
            hash_chain_result=signature.hash_chain_result,
            hash_chain=signature.hash_chain,
        )

    async def rest(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> ExchangeResult:
        async with self.node.failures_noted(lambda: self._logged):
            return await self._rest(method, target, headers, body)

    async def soap(self, content_type: str, soap_action: str | None, body: bytes) -> ExchangeResult:
        async with self.node.failures_noted(lambda: self._logged):
            return await self._soap(content_type, soap_action, body)

    def _check_soap_identifiers(self, header: soap_wire.SoapHeader) -> None:
        """The SOAP header's client, service, security server and represented party, held to the node's
        ``strict_identifier_checks`` mode as a REST request's are (the header is read leniently, as X-Road's
        parser reads it, and its client proxy then validates them). A refusal is the IS's (``client.*``).
        """
        if not self.node.settings.strict_identifier_checks:
            return  # non-strict mode's rules are what the header was read with
        identifiers: list[XRoadId] = [header.client]
        identifiers += [i for i in (header.service, header.security_server) if i is not None]
        checks: list[Callable[..., object]] = [partial(check_characters, i) for i in identifiers]
        party = header.represented_party
        if party is not None:  # as its REST header is read
            checks.append(partial(parse_represented_party_header, format_represented_party_header(party)))
        for check in checks:

            def in_mode(strict: bool, check: Callable[..., object] = check) -> object:
                return check(strict=strict)

            try:
                strict_checked(in_mode, strict=True)
            except XRoadError as e:
                raise _bad_input(e) from e

    async def _rest(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> ExchangeResult:
        strict = self.node.settings.strict_identifier_checks
        service, _path, _query = strict_checked(
            lambda s: rest_wire.parse_rest_target(target, strict=s), strict=strict
        )
        client_header = next((v for k, v in headers if k.lower() == "x-road-client"), None)
        if client_header is None:
            raise XRoadError(
                FaultCode.MISSING_HEADER_FIELD, "X-Road-Client header is missing", kind=ErrorKind.BAD_INPUT
            )
        incoming_id = next((v for k, v in headers if k.lower() == "x-road-id"), None)
        query_id = incoming_id or rest_wire.generate_query_id(self.view.instance)
        request_id = str(uuid.uuid4())
        request = strict_checked(
            lambda s: rest_wire.build_rest_request(
                method, target, list(headers), query_id=query_id, request_id=request_id, strict=s
            ),
            strict=strict,
        )
        client = request.client
        if client is None:
            raise XRoadError(
                FaultCode.MISSING_HEADER_FIELD, "X-Road-Client header is missing", kind=ErrorKind.BAD_INPUT
            )
        trace = self.trace
        trace.client, trace.service, trace.message_id, trace.x_request_id = (
            client,
            service,
            query_id,
            request_id,
        )
        trace.user_id, trace.issue, trace.service_type = request.user_id, request.issue, "REST"
        trace.rest_method, trace.request_size = method, len(body)
        facts = rest_facts(request)
        trace.rest_path = path_without_subjects(request.service_path, facts.data_subject)
        await self._check_client(client)
        header_part = request.to_bytes()
        attachments = (body,) if body else ()
        parts = message_parts(header_part, attachments)
        signature = await self.node.signer.sign(client.member, parts)
        bound = log.bind(x_road_id=query_id, client=format_id(client), service=format_id(service))
        request_record = _record(
            query_id=query_id, x_request_id=request_id, client=client, service=service, response=False,
            rest=True, message=header_part, attachments=attachments, signature=signature, facts=facts,
        )  # fmt: skip
        outgoing = tm.TransportMessage(
            ocsp_responses=self.node.own_ocsp(),
            message_content_type=tm.REST_REQUEST_CONTENT_TYPE,
            message=header_part,
            rest_body=body or None,
            hash_chain_result=signature.hash_chain_result,
            hash_chain=signature.hash_chain,
            signature=signature.signature_xml,
        )
        answer = await self._send_logged(
            request_record,
            lambda: self._send(
                service.client, request.security_server, outgoing, _transport_headers(request_id, rest=True)
            ),
        )
        if answer.fault is not None and answer.signature is None:
            raise parse_soap_fault(answer.fault)
        response = rest_wire.parse_header_part(answer.message)
        if not isinstance(response, rest_wire.RestResponse):
            raise _invalid("the provider's security server answered with a request header part")
        response_body = answer.rest_body or b""
        response_parts = message_parts(answer.message, (response_body,) if answer.rest_body else ())
        if answer.signature is None:
            raise _invalid("the provider's response carries no signature")
        response_signature = SignatureData(answer.signature, answer.hash_chain_result, answer.hash_chain)
        self._verify_response(response_signature, response_parts, service.client)
        rest_wire.check_rest_response(request, response, rest_wire.request_hash(header_part, body or None))
        await self.node.log(
            _record(
                query_id=query_id, x_request_id=request_id, client=client, service=service, response=True,
                rest=True, message=answer.message, attachments=(response_body,) if answer.rest_body else (),
                signature=response_signature, facts=facts,
            ),
            local_producer=False,
        )  # fmt: skip
        trace.status_code, trace.response_size = response.status, len(response_body)
        bound.info("exchange_done", status=response.status)
        return ExchangeResult(
            response.status,
            response.reason,
            tuple(rest_wire.is_headers_for_client(response)),
            response_body,
        )

    async def _soap(self, content_type: str, soap_action: str | None, body: bytes) -> ExchangeResult:
        split, message, service = _parse_is_soap_request(content_type, body)
        soap_part, attachments = split.soap, split.attachments
        header = message.x_road_header
        self._check_soap_identifiers(header)
        client = header.client
        request_id = str(uuid.uuid4())
        trace = self.trace
        trace.client, trace.service, trace.message_id, trace.x_request_id = (
            client,
            service,
            header.id,
            request_id,
        )
        trace.user_id, trace.issue, trace.protocol_version = (
            header.user_id,
            header.issue,
            header.protocol_version,
        )
        trace.represented_party, trace.service_type = header.represented_party, "WSDL"
        trace.request_size, trace.request_attachment_count = len(soap_part), len(attachments)
        trace.request_mime_size = len(body) if attachments else None
        await self._check_client(client)
        facts = soap_facts(message)
        att_data = [a.data for a in attachments]
        parts = message_parts(soap_part, att_data)
        signature = await self.node.signer.sign(client.member, parts)
        bound = log.bind(x_road_id=header.id, client=format_id(client), service=format_id(service))
        request_record = _record(
            query_id=header.id, x_request_id=request_id, client=client, service=service, response=False,
            rest=False, message=soap_part, attachments=att_data, signature=signature, facts=facts,
        )  # fmt: skip
        outgoing = _soap_transport_message(split, signature, ocsp_responses=self.node.own_ocsp())
        headers = _transport_headers(request_id, rest=False, original_content_type=content_type)
        if soap_action is not None:
            headers[tm.HEADER_ORIGINAL_SOAP_ACTION] = soap_action
        answer = await self._send_logged(
            request_record, lambda: self._send(service.client, header.security_server, outgoing, headers)
        )
        if answer.signature is None:
            raise parse_soap_fault(answer.fault if answer.fault is not None else answer.message)
        response_signature = SignatureData(answer.signature, answer.hash_chain_result, answer.hash_chain)
        response_att = [a.data for a in answer.attachments]
        self._verify_response(response_signature, message_parts(answer.message, response_att), service.client)
        response = soap_wire.parse_soap_message(
            answer.message, content_type=answer.message_content_type, require_service=False
        )
        if not response.is_fault:
            soap_wire.check_soap_response(message, response, soap_wire.soap_request_hash(soap_part))
        await self.node.log(
            _record(
                query_id=header.id, x_request_id=request_id, client=client, service=service, response=True,
                rest=False, message=answer.message, attachments=response_att, signature=response_signature,
                facts=facts,
            ),
            local_producer=False,
        )  # fmt: skip
        bound.info("exchange_done", fault=response.is_fault)
        out_type, out_body = soap_wire.join_soap_message(
            answer.message,
            answer.message_content_type,
            answer.attachments,
            soap_headers=answer.message_headers,
        )
        trace.response_size, trace.response_attachment_count = len(answer.message), len(answer.attachments)
        trace.response_mime_size = len(out_body) if answer.attachments else None
        trace.fault = response.fault() if response.is_fault else None
        if response.is_fault:  # the provider IS's own fault, passed on as SOAP 1.1 over HTTP sends one
            return ExchangeResult(500, "Internal Server Error", (("Content-Type", out_type),), out_body)
        return ExchangeResult(200, "OK", (("Content-Type", out_type),), out_body)


# ------------------------------------------------------------------------------------------------------------
# The provider node


@dataclass(frozen=True)
class _Incoming:
    rest: bool
    client: ClientId
    service: ServiceId
    query_id: str
    target: SecurityServerId | None
    rest_request: rest_wire.RestRequest | None
    soap_request: soap_wire.SoapMessage | None
    facts: ExchangeFacts


class ProviderExchange:
    """One request from a consumer node through the server proxy (X-Road's order, see the module)."""

    def __init__(self, node: ExchangeNode, view: ConfigurationView, trace: OpTrace | None = None) -> None:
        self.node = node
        self.view = view
        self.trace = trace or OpTrace(PRODUCER, now_ms())
        """Operational data of this exchange, filled in as it runs (the proxy records it at the end)."""
        self._logged: tuple[LogRecord, int] | None = None

    def _parse(self, headers: Mapping[str, str], message: tm.TransportMessage) -> _Incoming:
        rest = message.message_content_type.split(";")[0].strip().lower() == tm.REST_REQUEST_CONTENT_TYPE
        if rest:
            request = rest_wire.parse_header_part(message.message)
            if not isinstance(request, rest_wire.RestRequest):
                raise _invalid("the message part is a REST response, expected a request")
            if request.client is None:
                raise _invalid("the REST request names no client (X-Road-Client)")
            return _Incoming(True, request.client, request.service, request.query_id or "",
                             request.security_server, request, None, rest_facts(request))  # fmt: skip
        soap = soap_wire.parse_soap_message(
            message.message, content_type=message.message_content_type, expect="request"
        )
        header = soap.x_road_header
        if header.service is None:
            raise XRoadError(FaultCode.MISSING_HEADER_FIELD, "Required field 'service' is missing")
        return _Incoming(False, header.client, header.service, header.id, header.security_server, None, soap,
                         soap_facts(soap))  # fmt: skip

    async def handle(
        self,
        *,
        content_type: str,
        headers: Mapping[str, str],
        body: bytes,
        tls_certificate: Callable[[], x509.Certificate],
    ) -> web.Response:
        async with self.node.failures_noted(lambda: self._logged):
            return await self._handle(content_type, headers, body, tls_certificate)

    async def _handle(
        self,
        content_type: str,
        headers: Mapping[str, str],
        body: bytes,
        tls_certificate: Callable[[], x509.Certificate],
    ) -> web.Response:
        node, view = self.node, self.view
        message = tm.decode_transport_message(content_type, body)  # (3)
        if message.signature is None:
            raise _invalid("the request carries no signature")
        incoming = self._parse(headers, message)
        client, service = incoming.client, incoming.service
        self._trace_request(incoming, message, headers.get(tm.HEADER_REQUEST_ID), len(body))
        if incoming.target is not None and incoming.target != node.server_id:
            raise XRoadError(
                FaultCode.INVALID_SECURITY_SERVER,
                f"Invalid security server identifier {format_id(incoming.target)}: this is "
                f"{format_id(node.server_id)}",
            )
        bound = log.bind(x_road_id=incoming.query_id, client=format_id(client), service=format_id(service))
        if not view.is_registered(client):  # (4)
            raise XRoadError(FaultCode.UNKNOWN_MEMBER, f"Client {format_id(client)} is not registered")
        node.peer_trust.check_client_certificate(  # (5)
            tls_certificate(), client, at=node.clock(), ocsp_responses=message.ocsp_responses
        )
        request_id = headers.get(tm.HEADER_REQUEST_ID) or str(uuid.uuid4())
        signature = SignatureData(message.signature, message.hash_chain_result, message.hash_chain)
        if incoming.rest:
            request_atts: list[bytes] = [message.rest_body] if message.rest_body else []
        else:
            request_atts = [a.data for a in message.attachments]
        request_parts = message_parts(message.message, request_atts)
        meta = service.service_code in (REST_METASERVICES if incoming.rest else SOAP_METASERVICES)
        found = None if meta else await self._check_service(incoming)  # (6), (7), (8)
        verify_signature(  # (9)
            signature.signature_xml,
            request_parts,
            trust=view.validator,
            expected_member=client.member,
            at=node.clock(),
            hash_chain_result=signature.hash_chain_result,
            hash_chain=signature.hash_chain,
        )
        request_record = _record(
            query_id=incoming.query_id, x_request_id=request_id, client=client, service=service,
            response=False, rest=incoming.rest, message=message.message, attachments=request_atts,
            signature=signature, facts=incoming.facts,
        )  # fmt: skip
        self._logged = (request_record, await node.log(request_record, local_producer=True))  # (10)
        if incoming.rest:
            assert incoming.rest_request is not None
            self.trace.request_sent()
            if meta:
                is_response = await answer_rest_metaservice(node, view, incoming.rest_request)
            else:
                assert found is not None
                is_response = await self._call_rest(found, incoming.rest_request, message.rest_body)  # (11)
            self.trace.response_received()
            self.trace.status_code, self.trace.response_size = is_response.status, len(is_response.body)
            out = await self._respond_rest(incoming, request_id, is_response, message)  # (12)
        else:
            assert incoming.soap_request is not None
            self.trace.request_sent()
            if meta:
                is_response = await answer_soap_metaservice(node, view, incoming.soap_request, request_atts)
            else:
                assert found is not None
                is_response = await self._call_soap(found, headers, message)
            self.trace.response_received()
            out = await self._respond_soap(incoming, request_id, is_response)
        bound.info("served")
        return out

    def _trace_request(
        self, incoming: _Incoming, message: tm.TransportMessage, request_id: str | None, mime_size: int
    ) -> None:
        trace = self.trace
        trace.client, trace.service, trace.message_id = incoming.client, incoming.service, incoming.query_id
        trace.x_request_id, trace.user_id, trace.issue = (
            request_id,
            incoming.facts.user_id,
            incoming.facts.issue,
        )
        if incoming.rest_request is not None:
            request = incoming.rest_request
            trace.service_type, trace.rest_method = "REST", request.method
            trace.rest_path = path_without_subjects(request.service_path, incoming.facts.data_subject)
            trace.request_size = len(message.rest_body or b"")
        elif incoming.soap_request is not None:
            header = incoming.soap_request.x_road_header
            trace.service_type, trace.protocol_version = "WSDL", header.protocol_version
            trace.represented_party = header.represented_party
            trace.request_size, trace.request_attachment_count = (
                len(message.message),
                len(message.attachments),
            )
            trace.request_mime_size = mime_size if message.attachments else None

    async def _check_service(self, incoming: _Incoming) -> Service:
        serverconf, service = self.node.serverconf, incoming.service
        found = await serverconf.service(service)
        if found.rest != incoming.rest:  # (6)
            raise XRoadError(
                FaultCode.SERVICE_TYPE,
                f"Service {format_id(service)} is a {'REST' if found.rest else 'SOAP'} service",
            )
        method = path = None
        if incoming.rest_request is not None:
            method = incoming.rest_request.method
            path = incoming.rest_request.service_path or "/"
        allowed = await serverconf.is_allowed(  # (7)
            service.client,
            service.service_code,
            incoming.client,
            method=method,
            path=path,
            global_groups=self.view.global_groups_of(incoming.client),
        )
        if not allowed:
            raise XRoadError(
                FaultCode.ACCESS_DENIED,
                f"Request is not allowed: {format_id(incoming.client)} may not call {format_id(service)}",
            )
        if found.disabled:  # (8)
            notice = found.disabled_notice or "Service is disabled"
            raise XRoadError(
                FaultCode.SERVICE_DISABLED, f"Service {format_id(service)} is disabled: {notice}"
            )
        return found.service

    async def _call_rest(
        self, service: Service, request: rest_wire.RestRequest, body: bytes | None
    ) -> IsResponse:
        if service.url is None:
            raise XRoadError(FaultCode.SERVICE_FAILED, "the service has no address")
        url = concat_path(service.url, request.service_path, request.query)
        return await call_information_system(
            self.node.session,
            request.method,
            url,
            rest_wire.provider_is_headers(request),
            body,
            timeout_seconds=service.timeout_seconds,
            verify_tls=service.ssl_authentication,
        )

    async def _call_soap(
        self, service: Service, headers: Mapping[str, str], message: tm.TransportMessage
    ) -> IsResponse:
        if service.url is None:
            raise XRoadError(FaultCode.SERVICE_FAILED, "the service has no address")
        content_type, body = soap_wire.join_soap_message(
            message.message,
            message.message_content_type,
            message.attachments,
            soap_headers=message.message_headers,
        )
        is_headers = [("Content-Type", content_type)]
        action = headers.get(tm.HEADER_ORIGINAL_SOAP_ACTION)
        if action is not None:
            is_headers.append(("SOAPAction", action))
        try:
            return await call_information_system(
                self.node.session,
                "POST",
                service.url,
                is_headers,
                body,
                timeout_seconds=service.timeout_seconds,
                verify_tls=service.ssl_authentication,
            )
        except XRoadError as e:  # X-Road's DefaultServiceHandlerImpl: translateException(ex).withPrefix(...)
            if e.has_code(FaultCode.SERVICE_FAILED):
                raise
            raise e.with_prefix(FaultCode.SERVICE_FAILED) from e

    async def _sign_and_log(
        self, incoming: _Incoming, request_id: str, message: bytes, attachments: Sequence[bytes]
    ) -> SignatureData:
        signature = await self.node.signer.sign(
            incoming.service.client.member, message_parts(message, attachments)
        )
        await self.node.log(
            _record(
                query_id=incoming.query_id, x_request_id=request_id, client=incoming.client,
                service=incoming.service, response=True, rest=incoming.rest, message=message,
                attachments=attachments, signature=signature, facts=incoming.facts,
            ),
            local_producer=True,
        )  # fmt: skip
        return signature

    async def _respond_rest(
        self, incoming: _Incoming, request_id: str, answer: IsResponse, message: tm.TransportMessage
    ) -> web.Response:
        assert incoming.rest_request is not None
        request_hash = rest_wire.request_hash(message.message, message.rest_body or None)
        response = rest_wire.build_rest_response(
            answer.status, answer.reason, list(answer.headers), request=incoming.rest_request,
            request_hash=request_hash,
        )  # fmt: skip
        header_part = response.to_bytes()
        attachments = (answer.body,) if answer.body else ()
        signature = await self._sign_and_log(incoming, request_id, header_part, attachments)
        content_type, body = tm.encode_transport_message(
            tm.TransportMessage(
                ocsp_responses=(),
                message_content_type=tm.REST_RESPONSE_CONTENT_TYPE,
                message=header_part,
                rest_body=answer.body or None,
                hash_chain_result=signature.hash_chain_result,
                hash_chain=signature.hash_chain,
                signature=signature.signature_xml,
            )
        )
        return web.Response(
            body=body,
            headers={"Content-Type": content_type, tm.HEADER_HASH_ALGORITHM: tm.HASH_ALGORITHM_SHA512},
        )

    async def _respond_soap(self, incoming: _Incoming, request_id: str, answer: IsResponse) -> web.Response:
        assert incoming.soap_request is not None
        content_type = next((v for k, v in answer.headers if k.lower() == "content-type"), "text/xml")
        try:
            split = soap_wire.split_soap_message(content_type, answer.body)
            soap_part, soap_content_type, attachments = split.soap, split.content_type, split.attachments
            response = soap_wire.parse_soap_message(
                soap_part, content_type=soap_content_type, require_service=False
            )
            if not response.is_fault:
                soap_part = soap_wire.insert_request_hash(
                    soap_part, soap_wire.soap_request_hash(incoming.soap_request.raw)
                )
        except XRoadError as e:  # the IS answered garbage: X-Road's SERVER_SERVERPROXY_X.X_SERVICE_FAILED_X.*
            raise e.with_prefix(FaultCode.SERVICE_FAILED) from e
        att_data = [a.data for a in attachments]
        self.trace.response_size, self.trace.response_attachment_count = len(soap_part), len(att_data)
        self.trace.response_mime_size = len(answer.body) if att_data else None
        self.trace.fault = response.fault() if response.is_fault else None
        signature = await self._sign_and_log(incoming, request_id, soap_part, att_data)
        out_type, body = tm.encode_transport_message(
            _soap_transport_message(split, signature, soap=soap_part, ocsp_responses=())
        )
        return web.Response(
            body=body,
            headers={
                "Content-Type": out_type,
                tm.HEADER_HASH_ALGORITHM: tm.HASH_ALGORITHM_SHA512,
                tm.HEADER_ORIGINAL_CONTENT_TYPE: content_type,
            },
        )
