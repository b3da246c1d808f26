"""Reading service descriptions: WSDL and OpenAPI documents fetched by URL, OpenAPI from a local file.

Fetches are ``http``/``https`` only, bounded in time (:data:`FETCH_TIMEOUT_SECONDS`) and size
(:data:`~security_server.servicedesc.model.MAX_DESCRIPTION_BYTES`, counted as the body streams in, whatever
``Content-Length`` says). A local file is read only when the caller passes a :class:`~pathlib.Path`, never
from a ``file:`` URL. Parsing runs in a worker thread, so a large document does not stall the event loop.

Example::

    >>> async def publish(session: aiohttp.ClientSession, store: NodeStore, client: ClientId) -> None:
    ...     parsed = await DescriptionLoader(session).wsdl("https://khur.internal/civil-registration.wsdl")
    ...     await store.add_service_description(
    ...         client, parsed.type, url=parsed.url, services=parsed.services, endpoints=parsed.endpoints
    ...     )

:meth:`DescriptionLoader.refresh` reads a stored description again, X-Road's way: a WSDL from its URL, an
OpenAPI document from its URL (or its stored upload) under the service code it has, a REST description as
it is. :meth:`NodeStore.refresh_service_description` then keeps the services whose codes remain, with their
settings and access rights.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

import aiohttp

from security_server.db.models import DescriptionType
from security_server.db.records import ServiceDescription
from security_server.servicedesc.model import (
    MAX_DESCRIPTION_BYTES,
    ParsedDescription,
    description_error,
    parse_rest,
)
from security_server.servicedesc.openapi import parse_openapi
from security_server.servicedesc.wsdl import parse_wsdl
from xroad_mn.errors import FaultCode, XRoadError

__all__ = ["FETCH_TIMEOUT_SECONDS", "MAX_REDIRECTS", "DescriptionLoader", "openapi_source", "read_document"]

FETCH_TIMEOUT_SECONDS: Final = 30.0
"""Longest time to fetch one description, connection included."""
MAX_REDIRECTS: Final = 5
"""Most HTTP redirects followed to a description."""
_CHUNK: Final = 64 * 1024


def openapi_source(text: str) -> str | Path:
    """How the CLI's ``--openapi URL_OR_FILE`` is read: an ``http(s)`` URL, else a local file path."""
    return text if text.lower().startswith(("http://", "https://")) else Path(text)


def _check_fetch_url(url: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as e:
        raise description_error(
            FaultCode.MALFORMED_URL, f"malformed URL {url[:120]!r}: {e}", url=url[:200]
        ) from e
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in url):
        raise description_error(
            FaultCode.MALFORMED_URL, f"{url[:120]!r} is not an http(s) URL", url=url[:200]
        )


def read_document(path: Path, *, max_bytes: int = MAX_DESCRIPTION_BYTES) -> bytes:
    """The bytes of an uploaded OpenAPI document at ``path`` (``openapi_file_not_found`` when it cannot be
    read, ``openapi_parsing_error`` when it is larger than ``max_bytes``)."""
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise description_error(
            FaultCode.OPENAPI_FILE_NOT_FOUND,
            f"cannot read {str(path)[:200]}: {e.strerror}",
            file=str(path)[:200],
        ) from e
    if len(data) > max_bytes:
        raise description_error(
            FaultCode.OPENAPI_PARSING, f"{str(path)[:200]} is larger than {max_bytes} bytes"
        )
    return data


class DescriptionLoader:
    """Fetches and parses service descriptions with the caller's ``session`` (which it does not close);
    service codes and versions are checked strictly unless ``strict`` is false (the node's
    ``strict_identifier_checks``)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout_seconds: float = FETCH_TIMEOUT_SECONDS,
        max_bytes: int = MAX_DESCRIPTION_BYTES,
        strict: bool = True,
    ) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._max_bytes = max_bytes
        self._strict = strict

    async def fetch(self, url: str, *, failed: str, too_large: str) -> bytes:
        """The body of ``GET url`` (HTTP 200 only). ``failed`` is the fault code of a fetch that fails,
        ``too_large`` that of a body over the size bound."""
        _check_fetch_url(url)
        try:
            async with self._session.get(
                url, timeout=self._timeout, allow_redirects=True, max_redirects=MAX_REDIRECTS
            ) as response:
                if response.status != 200:
                    raise description_error(
                        failed,
                        f"{url[:200]} answered HTTP {response.status}",
                        url=url[:200],
                        status=response.status,
                    )
                length = response.content_length
                if length is not None and length > self._max_bytes:
                    raise description_error(too_large, f"{url[:200]} is larger than {self._max_bytes} bytes")
                body = bytearray()
                async for chunk in response.content.iter_chunked(_CHUNK):
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise description_error(
                            too_large, f"{url[:200]} is larger than {self._max_bytes} bytes"
                        )
                return bytes(body)
        except XRoadError:
            raise
        except TimeoutError as e:
            raise description_error(
                failed, f"reading {url[:200]} took longer than {self._timeout.total} s"
            ) from e
        except aiohttp.ClientError as e:
            raise description_error(failed, f"cannot read {url[:200]}: {str(e)[:300]}", url=url[:200]) from e

    async def wsdl(self, url: str) -> ParsedDescription:
        """The WSDL at ``url``, its operations as services."""
        document = await self.fetch(
            url, failed=FaultCode.WSDL_DOWNLOAD_FAILED, too_large=FaultCode.INVALID_WSDL
        )
        return await asyncio.to_thread(parse_wsdl, document, source_url=url, strict=self._strict)

    async def openapi(
        self, source: str | Path, *, service_code: str, service_url: str | None = None
    ) -> ParsedDescription:
        """The OpenAPI 3 document at ``source``: a URL, or a local file when it is a :class:`Path` (then kept
        as the description's ``document``)."""
        if isinstance(source, Path):
            document = await asyncio.to_thread(read_document, source, max_bytes=self._max_bytes)
            url = None
        else:
            document = await self.fetch(
                source, failed=FaultCode.OPENAPI_PARSING, too_large=FaultCode.OPENAPI_PARSING
            )
            url = source
        return await asyncio.to_thread(
            parse_openapi,
            document,
            service_code=service_code,
            source_url=url,
            service_url=service_url,
            strict=self._strict,
        )

    async def refresh(
        self, description: ServiceDescription, *, document: bytes | None = None
    ) -> ParsedDescription:
        """``description`` read again from where it came from (``document`` replaces the upload of an OpenAPI
        description added from a file). The OpenAPI and REST service keeps its code and URL."""
        if description.type is DescriptionType.WSDL:
            if description.url is None:
                raise description_error(
                    FaultCode.INVALID_WSDL, f"WSDL description {description.id} has no URL"
                )
            return await self.wsdl(description.url)
        if not description.services:
            raise description_error(
                FaultCode.INVALID_REQUEST, f"service description {description.id} has no service to refresh"
            )
        service = description.services[0]
        if description.type is DescriptionType.REST:
            return parse_rest(
                service.url or description.url or "", service_code=service.code, strict=self._strict
            )
        if description.url is not None:
            return await self.openapi(description.url, service_code=service.code, service_url=service.url)
        stored = document if document is not None else description.document
        if stored is None:
            raise description_error(
                FaultCode.OPENAPI_FILE_NOT_FOUND,
                f"OpenAPI description {description.id} has no stored document",
            )
        return await asyncio.to_thread(
            parse_openapi, stored, service_code=service.code, service_url=service.url, strict=self._strict
        )
