"""The provider node's metaservices (PR-META, PR-MREST): what a client may learn about a provider's services.

SOAP ``listMethods`` / ``allowedMethods`` / ``getWsdl`` and REST ``listMethods`` / ``allowedMethods`` /
``getOpenAPI`` are answered by the provider's security server itself, after the same client, certificate
and signature checks as any request, and their answers are signed and logged like an IS's. The answer is
built here as an :class:`~security_server.proxy.provider_is.IsResponse`, as if an IS had given it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from security_server.db.models import DescriptionType
from security_server.db.records import ServiceDescription
from security_server.proxy.configuration import ConfigurationView
from security_server.proxy.node import ExchangeNode
from security_server.proxy.provider_is import IsResponse, call_information_system
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, ServiceId, format_id
from xroad_mn.wire import rest as rest_wire
from xroad_mn.wire import soap as soap_wire
from xroad_mn.wire import soapmeta

__all__ = ["REST_METASERVICES", "SOAP_METASERVICES", "answer_rest_metaservice", "answer_soap_metaservice"]

LIST_METHODS: Final = soapmeta.LIST_METHODS
ALLOWED_METHODS: Final = soapmeta.ALLOWED_METHODS
GET_WSDL: Final = soapmeta.GET_WSDL
GET_OPENAPI: Final = "getOpenAPI"
SOAP_METASERVICES: Final = frozenset(soapmeta.METASERVICE_CODES)
REST_METASERVICES: Final = frozenset({LIST_METHODS, ALLOWED_METHODS, GET_OPENAPI})
DESCRIPTION_FETCH_SECONDS: Final = 30.0


async def _descriptions(node: ExchangeNode, provider: ClientId) -> tuple[ServiceDescription, ...]:
    try:
        return await node.store.list_service_descriptions(provider)
    except XRoadError as e:
        if e.code.endswith("not_found"):
            raise XRoadError(FaultCode.UNKNOWN_MEMBER, f"{format_id(provider)} is not a client here") from e
        raise


async def _services(
    node: ExchangeNode,
    view: ConfigurationView,
    provider: ClientId,
    client: ClientId,
    *,
    rest: bool,
    allowed: bool,
) -> list[tuple[ServiceId, ServiceDescription]]:
    out: list[tuple[ServiceId, ServiceDescription]] = []
    groups = view.global_groups_of(client)
    for description in await _descriptions(node, provider):
        is_rest = description.type is not DescriptionType.WSDL
        if is_rest != rest:
            continue
        for service in description.services:
            service_id = provider.service(service.code, service.version)
            if allowed and not await node.store.is_allowed(
                provider, service.code, client,
                method=None if not rest else "*", path=None if not rest else "**",
                global_groups=groups,
            ):  # fmt: skip
                continue
            out.append((service_id, description))
    return out


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
        wanted = dict(part.split("=", 1) for part in request.query.split("&") if "=" in part).get(
            "serviceCode"
        )
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
    for service_id, description in services:
        endpoints = await node.store.list_endpoints(provider, service_id.service_code)
        entries.append(
            rest_wire.RestServiceEntry(
                service_id,
                "OPENAPI" if description.type is DescriptionType.OPENAPI3 else "REST",
                tuple((e.method, e.path) for e in endpoints if not (e.method == "*" and e.path == "**")),
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
    body = soapmeta.build_method_list_response(request, [s for s, _ in services])
    return IsResponse(200, "OK", (("Content-Type", "text/xml; charset=UTF-8"),), body)
