"""What the service-description parsers return, their bounds, X-Road's reserved codes and the REST case.

Example::

    >>> from security_server.servicedesc.model import parse_rest
    >>> rest = parse_rest("https://civil-registry.internal/api", service_code="citizens")
    >>> rest.services[0].url, rest.endpoints
    ('https://civil-registry.internal/api', ())
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from security_server.db.checks import check_code, check_url
from security_server.db.models import DescriptionType
from security_server.db.records import NewEndpoint, NewService
from security_server.db.services import MAX_DOCUMENT_BYTES
from xroad_mn.errors import DetailValue, FaultCode, XRoadError

__all__ = [
    "MAX_DESCRIPTION_BYTES",
    "RESERVED_SERVICE_CODES",
    "ParsedDescription",
    "check_admin_service_code",
    "check_service_url",
    "description_error",
    "parse_rest",
]

MAX_DESCRIPTION_BYTES: Final = MAX_DOCUMENT_BYTES
"""Largest WSDL or OpenAPI document read (X-Road's ``MAX_DESCRIPTION_SIZE``, 10 MiB)."""

RESERVED_SERVICE_CODES: Final = frozenset(
    {
        "listClients",
        "listMethods",
        "allowedMethods",
        "getWsdl",
        "getOpenAPI",
        "getSecurityServerMetrics",
        "getSecurityServerOperationalData",
        "getSecurityServerHealthData",
    }
)
"""The metaservice and monitoring codes no client service may take (X-Road's default
``proxy-ui-api.reserved-service-codes``; compared case-sensitively, as X-Road does)."""


@dataclass(frozen=True)
class ParsedDescription:
    """A service description as read: what :meth:`NodeStore.add_service_description` and
    :meth:`NodeStore.refresh_service_description` take.

    ``url`` is where the description was read from (``None`` for an uploaded OpenAPI document, which is then
    ``document``). ``endpoints`` are the operations of an OpenAPI document; the store adds every service's
    base endpoint ``* **`` itself, so it is not listed here.
    """

    type: DescriptionType
    url: str | None
    document: bytes | None
    services: tuple[NewService, ...]
    endpoints: tuple[NewEndpoint, ...] = ()


def description_error(code: str, message: str, **details: DetailValue) -> XRoadError:
    """A refused description: the admin API answers it with HTTP 400, as X-Road's ``BadRequestException``."""
    return XRoadError(code, message, details=details, http_status=400)


def check_service_url(url: str) -> str:
    """``url`` when it is an absolute ``http(s)`` URL a service can be called at, else
    ``invalid_service_url``."""
    try:
        return check_url("service URL", url)
    except XRoadError as e:
        raise description_error(FaultCode.INVALID_SERVICE_URL, e.message, url=url[:200]) from e


def check_admin_service_code(code: str, *, strict: bool = True) -> str:
    """The service code an administrator gives (REST, OpenAPI 3): an identifier part under X-Road's
    identifier checks (strict ones unless ``strict`` is false), and none of :data:`RESERVED_SERVICE_CODES`."""
    check_code("serviceCode", code, strict=strict)
    if code in RESERVED_SERVICE_CODES:
        raise description_error(
            FaultCode.INVALID_SERVICE_IDENTIFIER,
            f"service code {code!r} is reserved for X-Road's metaservices",
            serviceCode=code,
        )
    return code


def parse_rest(url: str, *, service_code: str, strict: bool = True) -> ParsedDescription:
    """A REST description: one service ``service_code`` at the base ``url`` (its base endpoint ``* **`` is
    the store's), as X-Road's ``addRestEndpointServiceDescription`` creates it (``strict``: as
    :func:`check_admin_service_code`)."""
    check_admin_service_code(service_code, strict=strict)
    check_service_url(url)
    return ParsedDescription(DescriptionType.REST, url, None, (NewService(service_code, url=url),))
