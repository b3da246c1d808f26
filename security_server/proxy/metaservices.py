"""The provider node's metaservices (PR-META, PR-MREST): what a client may learn about a provider's services.

SOAP ``listMethods`` / ``allowedMethods`` / ``getWsdl`` and REST ``listMethods`` / ``allowedMethods`` /
``getOpenAPI`` are answered by the provider's security server itself, after the same client, certificate
and signature checks as any request, and their answers are signed and logged like an IS's. The answer is
built here as an :class:`~security_server.proxy.provider_is.IsResponse`, as if an IS had given it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

from security_server.db.models import DescriptionType
from security_server.db.records import Endpoint, ServiceDescription
from security_server.endpoints import endpoint_matches, is_base_endpoint
from security_server.opmonitoring.services import answer_monitoring_service
from security_server.proxy.configuration import ConfigurationView
from security_server.proxy.node import ExchangeNode
from security_server.proxy.provider_is import IsResponse, call_information_system
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, LocalGroupId, ServiceId, format_id
from xroad_mn.wire import opmonitoring as om
from xroad_mn.wire import rest as rest_wire
from xroad_mn.wire import soap as soap_wire
from xroad_mn.wire import soapmeta

__all__ = ["REST_METASERVICES", "SOAP_METASERVICES", "answer_rest_metaservice", "answer_soap_metaservice"]

LIST_METHODS: Final = soapmeta.LIST_METHODS
ALLOWED_METHODS: Final = soapmeta.ALLOWED_METHODS
GET_WSDL: Final = soapmeta.GET_WSDL
GET_OPENAPI: Final = "getOpenAPI"
SOAP_METASERVICES: Final = frozenset(soapmeta.METASERVICE_CODES) | om.MONITORING_SERVICE_CODES
REST_METASERVICES: Final = frozenset({LIST_METHODS, ALLOWED_METHODS, GET_OPENAPI})
OPENAPI_SERVICE_CODE_PARAM: Final = "serviceCode"
"""The ``getOpenAPI`` query parameter naming the service (percent-decoded, as a query parameter is)."""
DESCRIPTION_FETCH_SECONDS: Final = 30.0


async def _descriptions(node: ExchangeNode, provider: ClientId) -> tuple[ServiceDescription, ...]:
    try:
        return await node.store.list_service_descriptions(provider)
    except XRoadError as e:
        if e.code.endswith("not_found"):
            raise XRoadError(FaultCode.UNKNOWN_MEMBER, f"{format_id(provider)} is not a client here") from e
        raise


async def _access_endpoints(
    node: ExchangeNode, view: ConfigurationView, provider: ClientId, client: ClientId
) -> dict[str, tuple[tuple[str, str], ...]]:
    """The endpoints (method, path pattern) of ``provider``'s services that ``client`` has an access right
    to, by service code (X-Road's ``getAclEndpoints``): rights given to the client itself, to a global group
    it is in (verified global configuration), or to a local group of the provider it is a member of."""
    global_groups = set(view.global_groups_of(client))
    local_groups = {
        LocalGroupId(group.code)
        for group in await node.store.list_local_groups(provider)
        if client in group.members
    }
    out: dict[str, list[tuple[str, str]]] = {}
    for right in await node.store.list_access_rights(provider):
        subject = right.subject
        if subject == client or subject in global_groups or subject in local_groups:
            endpoint = right.endpoint
            out.setdefault(endpoint.service_code, []).append((endpoint.method, endpoint.path))
    return {code: tuple(endpoints) for code, endpoints in out.items()}


@dataclass(frozen=True)
class _Listed:
    service: ServiceId
    description: ServiceDescription
    access: tuple[tuple[str, str], ...] | None
    """For ``allowedMethods``: the client's access-right endpoints to the service; ``None`` for
    ``listMethods``."""


async def _services(
    node: ExchangeNode,
    view: ConfigurationView,
    provider: ClientId,
    client: ClientId,
    *,
    rest: bool,
    allowed: bool,
) -> list[_Listed]:
    """The provider's REST (or SOAP) services; with ``allowed`` only those ``client`` has an access right to
    (X-Road's ``getAllowedServicesByDescriptionType``: any right to the service code counts)."""
    descriptions = await _descriptions(node, provider)
    access = await _access_endpoints(node, view, provider, client) if allowed else {}
    out: list[_Listed] = []
    for description in descriptions:
        is_rest = description.type is not DescriptionType.WSDL
        if is_rest != rest:
            continue
        for service in description.services:
            service_id = provider.service(service.code, service.version)
            endpoints = access.get(service.code)
            if allowed and not endpoints:
                continue
            out.append(_Listed(service_id, description, endpoints if allowed else None))
    return out


def _listed_endpoints(
    endpoints: Sequence[Endpoint], access: tuple[tuple[str, str], ...] | None
) -> tuple[tuple[str, str], ...]:
    """A service's endpoints but its base endpoint; for ``allowedMethods`` only those an access-right
    endpoint covers (X-Road's ``getAllowedRestServices``)."""
    return tuple(
        (e.method, e.path)
        for e in endpoints
        if not is_base_endpoint(e.method, e.path)
        and (access is None or any(endpoint_matches(m, p, e.method, e.path) for m, p in access))
    )


def _json(body: bytes) -> IsResponse:
    return IsResponse(200, "OK", (("Content-Type", "application/json"),), body)


async def answer_rest_metaservice(
    node: ExchangeNode, view: ConfigurationView, request: rest_wire.RestRequest
) -> IsResponse:
    """``listMethods``, ``allowedMethods`` (JSON) or ``getOpenAPI?serviceCode=..`` (the document)."""
    provider = request.service.client
    code = request.service.service_code
    client = request.client
    if client is None:
        raise XRoadError(
            FaultCode.MISSING_HEADER_FIELD, "the request names no client", kind=ErrorKind.BAD_INPUT
        )
    if code == GET_OPENAPI:
        wanted = dict(parse_qsl(request.query)).get(OPENAPI_SERVICE_CODE_PARAM)
        if not wanted:
            raise XRoadError(
                FaultCode.BAD_REQUEST, "getOpenAPI needs the serviceCode parameter", kind=ErrorKind.BAD_INPUT
            )
        for description in await _descriptions(node, provider):
            if description.type is DescriptionType.OPENAPI3 and any(
                s.code == wanted for s in description.services
            ):
                document = description.document or await _fetch(node, description.url)
                content_type = (
                    "application/yaml" if not document.lstrip().startswith(b"{") else "application/json"
                )
                return IsResponse(200, "OK", (("Content-Type", content_type),), document)
        raise XRoadError(FaultCode.UNKNOWN_SERVICE, f"no OpenAPI description of service {wanted!r}")
    services = await _services(node, view, provider, client, rest=True, allowed=code == ALLOWED_METHODS)
    entries = []
    for listed in services:
        endpoints = await node.store.list_endpoints(provider, listed.service.service_code)
        entries.append(
            rest_wire.RestServiceEntry(
                listed.service,
                "OPENAPI" if listed.description.type is DescriptionType.OPENAPI3 else "REST",
                _listed_endpoints(endpoints, listed.access),
            )
        )
    return _json(rest_wire.list_methods_json(entries))


async def _fetch(node: ExchangeNode, url: str | None) -> bytes:
    if url is None:
        raise XRoadError(FaultCode.SERVICE_FAILED, "the service description has no address")
    answer = await call_information_system(
        node.session, "GET", url, [], None, timeout_seconds=DESCRIPTION_FETCH_SECONDS, verify_tls=True
    )
    if answer.status != 200:
        raise XRoadError(FaultCode.SERVICE_FAILED, f"fetching {url[:200]} gave HTTP {answer.status}")
    return answer.body


async def answer_soap_metaservice(
    node: ExchangeNode, view: ConfigurationView, request: soap_wire.SoapMessage, attachments: Sequence[bytes]
) -> IsResponse:
    """``listMethods`` / ``allowedMethods`` (MethodListType) or ``getWsdl`` (the WSDL as an attachment)."""
    header = request.x_road_header
    assert header.service is not None
    provider = header.service.client
    code = header.service.service_code
    if code in om.MONITORING_SERVICE_CODES:  # the node's own operational data (PR-OPMON)
        content_type, answer = await answer_monitoring_service(
            node.opmon, request, owner=node.server_id.owner, monitoring_client=view.monitoring_client
        )
        return IsResponse(200, "OK", (("Content-Type", content_type),), answer)
    if code == GET_WSDL:
        asked = soapmeta.parse_get_wsdl_request(request)
        wanted, version = asked.service_code, asked.service_version
        for description in await _descriptions(node, provider):
            if description.type is DescriptionType.WSDL and any(
                s.code == wanted and (version is None or s.version == version) for s in description.services
            ):
                wsdl = description.document or await _fetch(node, description.url)
                content_type, body = soapmeta.build_get_wsdl_response(request, wsdl)
                return IsResponse(200, "OK", (("Content-Type", content_type),), body)
        raise XRoadError(FaultCode.UNKNOWN_SERVICE, f"no WSDL describes service {wanted!r}")
    services = await _services(
        node, view, provider, header.client, rest=False, allowed=code == ALLOWED_METHODS
    )
    body = soapmeta.build_method_list_response(request, [listed.service for listed in services])
    return IsResponse(200, "OK", (("Content-Type", "text/xml; charset=UTF-8"),), body)
