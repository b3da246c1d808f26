"""The consumer side: call X-Road services through a security server's client proxy, REST and SOAP.

:class:`XRoadClient` speaks to the consumer node's client proxy (``http://ss:8080`` or its TLS port) as
the client subsystem it is built for. Every call gets an X-Road message id (``<INSTANCE>-<uuid4>``, as the
node itself would make one; or the caller's), the X-Road headers built by the core (``X-Road-Client`` by
:func:`~xroad_mn.identifiers.format_client_header`, the SOAP header by
:func:`~xroad_mn.wire.soap.build_soap_request`), the user id, issue and data subject when given, and a
timeout. A fault raised inside X-Road (a REST answer with ``X-Road-Error``, a SOAP fault) is raised as an
:class:`~xroad_mn.errors.XRoadError` carrying its fault code and detail; any other answer, whatever its
status, is the provider's and is returned.

Retries are only where they are safe: an idempotent REST method (``GET``, ``HEAD``, ``OPTIONS``, ``PUT``,
``DELETE``) whose connection could not be opened is retried (``retries`` times, same message id); a request
that may have been delivered (the connection dropped after sending began, a timeout) is never resent, and
neither is a SOAP call.

Example::

    >>> async with XRoadClient("http://127.0.0.1:8080", CONSUMER) as xroad:  # doctest: +SKIP
    ...     answer = await xroad.get(CITIZENS, "/citizens/УБ99112233", data_subject="УБ99112233")
    ...     answer.json()["given_name"], answer.query_id
    ...     reply = await xroad.soap_call(GET_CITIZEN, GetCitizen(regnum="УБ99112233"), GetCitizenResponse,
    ...                                   namespace="http://civil-registry.mn/xroad")
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import structlog
from lxml import etree
from pydantic import BaseModel, ValidationError
from yarl import URL

from adapters.sdk.xmlmodel import model_to_xml, xml_to_dict
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, ServiceId, format_client_header, format_rest_service_path
from xroad_mn.transport.client import read_limited, request_payload
from xroad_mn.wire.faults import parse_rest_error
from xroad_mn.wire.rest import (
    HEADER_CLIENT,
    HEADER_ERROR,
    HEADER_ISSUE,
    HEADER_QUERY_ID,
    HEADER_REQUEST_ID,
    HEADER_USER_ID,
    generate_query_id,
)
from xroad_mn.wire.soap import (
    RESPONSE_SUFFIX,
    SoapMessage,
    build_soap_request,
    parse_soap_message,
    soap_body,
    split_soap_message,
)
from xroad_mn.wire.subject import DATA_SUBJECT_ELEMENT, EXTENSIONS_NS, normalise_data_subject

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "IDEMPOTENT_METHODS",
    "MAX_RESPONSE_BYTES",
    "RestAnswer",
    "SoapAnswer",
    "XRoadClient",
]

log = structlog.get_logger(__name__)

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
DEFAULT_TIMEOUT_SECONDS: Final = 60.0
MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
"""Largest answer read (the node's own limit on an IS's answer)."""
DATA_SUBJECT_HEADER: Final = "X-MN-Data-Subject"
_SOAP_ENV: Final = "{http://schemas.xmlsoap.org/soap/envelope/}"
_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class RestAnswer:
    """The provider's answer to a REST call, as the consumer node returned it."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    query_id: str
    """The X-Road message id: the key of this exchange's evidence in both nodes' message logs."""
    request_id: str | None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def json(self) -> Any:
        """The body as JSON (``invalid_body`` when it is not)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise XRoadError(FaultCode.INVALID_BODY, f"the answer is not JSON: {e}") from e

    def model(self, model: type[_M]) -> _M:
        """The body validated as ``model`` (``invalid_body`` when it does not fit)."""
        try:
            return model.model_validate_json(self.body)
        except ValidationError as e:
            raise XRoadError(FaultCode.INVALID_BODY, f"the answer is not a {model.__name__}: {e}") from e


@dataclass(frozen=True)
class SoapAnswer:
    """The provider's SOAP response (its header echoes the request's)."""

    message: SoapMessage
    query_id: str

    def body(self) -> etree._Element:
        """The response element (``{ns}operationResponse``)."""
        return soap_body(self.message)


class XRoadClient:
    """Calls X-Road services through a client proxy as ``client``; an async context manager owning its HTTP
    session (``ssl_context`` for the client proxy's TLS port)."""

    def __init__(
        self,
        proxy_url: str,
        client: ClientId,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retries: int = 2,
        retry_delay_seconds: float = 0.2,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.proxy_url = proxy_url.rstrip("/")
        self.client = client
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.max_response_bytes = max_response_bytes
        self.ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> XRoadClient:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context is not None else True)
            session = aiohttp.ClientSession(connector=connector)
            # aiohttp resends an idempotent request once when the connection drops after it was sent; the
            # request may have been delivered and logged by both nodes then, so we never let it.
            session._retry_connection = False
            self._session = session
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise XRoadError(FaultCode.INTERNAL_ERROR, "use XRoadClient in 'async with'")
        return self._session

    def new_query_id(self) -> str:
        """A fresh X-Road message id for this client's instance."""
        return generate_query_id(self.client.instance)

    # -- REST -------------------------------------------------------------------------------------------

    async def rest(
        self,
        method: str,
        service: ServiceId,
        path: str = "",
        *,
        query: Mapping[str, str | int | Sequence[str | int]] | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        user_id: str | None = None,
        issue: str | None = None,
        data_subject: str | None = None,
        query_id: str | None = None,
    ) -> RestAnswer:
        """Call REST service ``service`` at ``path`` (plain text: percent-encoded here) with ``query``.

        Raises the X-Road fault as :class:`XRoadError` when the answer carries ``X-Road-Error``; a network
        failure is ``network_error``, no answer in time ``timeout``.
        """
        method = method.upper()
        query_id = query_id or self.new_query_id()
        target = self.proxy_url + format_rest_service_path(service) + quote(path, safe="/:@!$&'()*+,;=-._~")
        if query:
            target += "?" + urlencode(
                [(k, str(v)) for k, values in query.items() for v in _as_list(values)], doseq=False
            )
        sent: list[tuple[str, str]] = [
            (HEADER_CLIENT, format_client_header(self.client)),
            (HEADER_QUERY_ID, query_id),
            ("Accept", "application/json"),
        ]
        sent += _optional_headers(user_id=user_id, issue=issue, data_subject=data_subject)
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            content_type = content_type or "application/json"
        if content_type is not None:
            sent.append(("Content-Type", content_type))
        sent += list((headers or {}).items())
        status, answer_headers, data = await self._send(
            method, target, sent, body, retry=method in IDEMPOTENT_METHODS
        )
        error = _value(answer_headers, HEADER_ERROR)
        if error is not None:
            raise _rest_fault(error, _value(answer_headers, "Content-Type") or "", data)
        return RestAnswer(
            status, answer_headers, data, _value(answer_headers, HEADER_QUERY_ID) or query_id,
            _value(answer_headers, HEADER_REQUEST_ID),
        )  # fmt: skip

    async def get(self, service: ServiceId, path: str = "", **options: Any) -> RestAnswer:
        return await self.rest("GET", service, path, **options)

    async def post(self, service: ServiceId, path: str = "", **options: Any) -> RestAnswer:
        return await self.rest("POST", service, path, **options)

    # -- SOAP -------------------------------------------------------------------------------------------

    async def soap(
        self,
        service: ServiceId,
        body: etree._Element | bytes,
        *,
        user_id: str | None = None,
        issue: str | None = None,
        data_subject: str | None = None,
        query_id: str | None = None,
    ) -> SoapAnswer:
        """Send a SOAP request whose body element is ``body`` (``service``'s code as its local name) and
        return the response; a SOAP fault is raised as :class:`XRoadError`. Never retried."""
        query_id = query_id or self.new_query_id()
        envelope = build_soap_request(self.client, service, query_id, body, user_id=user_id, issue=issue)
        if data_subject is not None:
            envelope = _with_data_subject(envelope, normalise_data_subject(data_subject))
        _status, headers, data = await self._send(
            "POST",
            self.proxy_url + "/",
            [("Content-Type", "text/xml; charset=utf-8"), ("SOAPAction", '""')],
            envelope,
            retry=False,
        )
        parts = split_soap_message(_value(headers, "Content-Type") or "", data)
        message = parse_soap_message(parts.soap, content_type=parts.content_type)
        if message.is_fault:
            raise message.fault()
        return SoapAnswer(message, query_id)

    async def soap_call(
        self,
        service: ServiceId,
        request: BaseModel,
        response: type[_M],
        *,
        namespace: str,
        **options: Any,
    ) -> _M:
        """A SOAP call with typed models (the SDK's XML mapping): ``request`` as ``{namespace}code``, the
        answer's ``{namespace}codeResponse`` validated as ``response`` (``invalid_body`` if it does not
        fit)."""
        element = model_to_xml(request, f"{{{namespace}}}{service.service_code}")
        answer = await self.soap(service, element, **options)
        body = answer.body()
        if etree.QName(body).namespace != namespace or not etree.QName(body).localname.endswith(
            RESPONSE_SUFFIX
        ):
            raise XRoadError(FaultCode.INVALID_BODY, f"the answer's element is {body.tag}, not a response")
        try:
            return response.model_validate(xml_to_dict(response, body))
        except (ValidationError, XRoadError) as e:
            raise XRoadError(FaultCode.INVALID_BODY, f"the answer is not a {response.__name__}: {e}") from e

    # -- transport --------------------------------------------------------------------------------------

    async def _send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None, *, retry: bool
    ) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
        attempts = 1 + (self.retries if retry else 0)
        timeout = aiohttp.ClientTimeout(total=self.timeout_seconds)
        for attempt in range(1, attempts + 1):
            try:
                async with self.session.request(
                    method,
                    URL(url, encoded=True),
                    headers=headers,
                    data=request_payload(body) if body is not None else None,
                    timeout=timeout,
                    allow_redirects=False,
                ) as resp:
                    data = await read_limited(resp.content, self.max_response_bytes)
                    if data is None:
                        raise XRoadError(
                            FaultCode.IO_ERROR, f"the answer is larger than {self.max_response_bytes} bytes"
                        )
                    raw = tuple(
                        (k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in resp.raw_headers
                    )
                    return resp.status, raw, data
            except aiohttp.ClientConnectorError as e:  # no connection: nothing was sent
                if attempt < attempts:
                    log.info("xroad_retry", method=method, attempt=attempt, reason=str(e))
                    await asyncio.sleep(self.retry_delay_seconds * attempt)
                    continue
                raise XRoadError(
                    FaultCode.NETWORK_ERROR,
                    f"cannot connect to the security server {self.proxy_url}: {e}",
                    details={"attempts": attempt},
                ) from e
            except TimeoutError as e:
                raise XRoadError(
                    FaultCode.TIMEOUT, f"no answer from the security server in {self.timeout_seconds:g} s"
                ) from e
            except aiohttp.ClientError as e:  # the request may have been delivered: never resent
                raise XRoadError(
                    FaultCode.NETWORK_ERROR, f"the exchange with {self.proxy_url} failed: {e}"
                ) from e
        raise AssertionError("unreachable")


def _as_list(values: str | int | Sequence[str | int]) -> Sequence[str | int]:
    return [values] if isinstance(values, str | int) else values


def _value(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers if k.lower() == wanted), None)


def _optional_headers(
    *, user_id: str | None, issue: str | None, data_subject: str | None
) -> list[tuple[str, str]]:
    out = []
    if user_id is not None:
        out.append((HEADER_USER_ID, user_id))
    if issue is not None:
        out.append((HEADER_ISSUE, issue))
    if data_subject is not None:
        out.append((DATA_SUBJECT_HEADER, normalise_data_subject(data_subject)))
    return out


def _rest_fault(code: str, content_type: str, data: bytes) -> XRoadError:
    try:
        return parse_rest_error(data, content_type)
    except XRoadError:
        return XRoadError(code, f"X-Road error without a readable body (HTTP answer of {len(data)} bytes)")


def _with_data_subject(envelope: bytes, subject: str) -> bytes:
    root = etree.fromstring(envelope)
    header = root.find(f"{_SOAP_ENV}Header")
    assert header is not None  # build_soap_request always writes one
    etree.SubElement(
        header, f"{{{EXTENSIONS_NS}}}{DATA_SUBJECT_ELEMENT}", nsmap={"mn": EXTENSIONS_NS}
    ).text = subject
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
