"""Service descriptions read X-Road's way: WSDL 1.1 by URL, OpenAPI 3 by URL or file, REST base URL.

The parsers are pure (bytes in, :class:`ParsedDescription` out, ``XRoadError`` with X-Road's admin API
codes on anything else); :class:`DescriptionLoader` fetches by URL and reads files. What they return is what
:class:`~security_server.db.NodeStore` takes.

Example::

    >>> from security_server.servicedesc import parse_openapi, parse_rest
    >>> parsed = parse_openapi(
    ...     b'{"openapi": "3.1.0", "paths": {"/vehicles/{plate}": {"get": {}}}}',
    ...     service_code="vehicles",
    ...     source_url="https://transport.internal/openapi.json",
    ... )
    >>> parsed.services[0].url, parsed.endpoints[0].path
    ('https://transport.internal/', '/vehicles/*')
    >>> parse_rest("https://tax.internal/api", service_code="taxpayer").services[0].code
    'taxpayer'
"""

from security_server.servicedesc.loader import (
    FETCH_TIMEOUT_SECONDS,
    DescriptionLoader,
    openapi_source,
    read_document,
)
from security_server.servicedesc.model import (
    MAX_DESCRIPTION_BYTES,
    RESERVED_SERVICE_CODES,
    ParsedDescription,
    parse_rest,
)
from security_server.servicedesc.openapi import parse_openapi, path_glob
from security_server.servicedesc.wsdl import parse_wsdl

__all__ = [
    "FETCH_TIMEOUT_SECONDS",
    "MAX_DESCRIPTION_BYTES",
    "RESERVED_SERVICE_CODES",
    "DescriptionLoader",
    "ParsedDescription",
    "openapi_source",
    "parse_openapi",
    "parse_rest",
    "parse_wsdl",
    "path_glob",
    "read_document",
]
