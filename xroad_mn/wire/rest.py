"""X-Road's REST message protocol (PR-REST r1): the REST header part, the request hash and their checks.

Both nodes of an exchange carry an HTTP request or response between them as a *header part*: the method
(or status) line, the raw target (or reason) and every forwarded header, ``Name:Value`` with CRLF line ends,
no space after the colon and no blank line at the end (``RestRequest``/``RestResponse.toByteArray``). The
header part is what the signature covers as ``/message.xml``; the body travels beside it.

Example (the consumer node, then the provider node, then the consumer node again)::

    >>> from xroad_mn.wire.rest import (
    ...     build_rest_request, build_rest_response, check_rest_response, parse_header_part, request_hash,
    ... )
    >>> req = build_rest_request(
    ...     "GET", "/r1/MN/GOV/5012345/REG/citizen/people/42?full=1",
    ...     [("Host", "ss1"), ("X-Road-Client", "MN/COM/9011223/APP"), ("Accept", "application/json")],
    ...     query_id="MN-0f4c", request_id="8e1b",
    ... )
    >>> req.to_bytes()
    b'GET\\r\\n/r1/MN/GOV/5012345/REG/citizen/people/42?full=1\\r\\nX-Road-Client:MN/COM/9011223/APP\\r\\nAccept:application/json\\r\\nx-road-request-id:8e1b\\r\\nx-road-id:MN-0f4c\\r\\n'
    >>> str(req.service), req.service_path, req.query
    ('SERVICE:MN/GOV/5012345/REG/citizen', '/people/42', 'full=1')
    >>> parse_header_part(req.to_bytes()) == req
    True
    >>> digest = request_hash(req.to_bytes(), None)
    >>> resp = build_rest_response(200, "OK", [("Content-Type", "application/json")], request=req,
    ...                            request_hash=digest)
    >>> [name for name, _ in resp.headers][1:]
    ['x-road-id', 'x-road-client', 'x-road-service', 'x-road-request-id', 'x-road-request-hash']
    >>> check_rest_response(req, resp, digest)  # raises inconsistent_response on any mismatch

Header handling follows X-Road (reference §3): the hop-by-hop and connection headers of
:data:`SKIPPED_HEADERS` are never forwarded; the consumer IS's ``x-road-request-id`` and
``x-road-request-hash`` are dropped and the node's ``x-road-request-id`` is appended, then ``x-road-id`` when
the IS sent no ``X-Road-Id`` (an ``X-Road-Id`` the IS sent stays where it was); the provider IS's
``x-road-id``, ``x-road-request-hash``, ``x-road-client`` and ``x-road-request-id`` are replaced by the
provider node's own, appended in X-Road's order. Every other header keeps its name, case, order and value.

Where a header is repeated, X-Road's fields (client, message id, security server, ...) take the *last*
value, as X-Road's decoder does; :meth:`RestRequest.header` returns the first, as its
``findHeaderValueByName`` does.

Errors. What the consumer IS sent (:func:`build_rest_request`, :func:`parse_rest_target`) fails with a
``client.``-side code (``bad_request``, ``invalid_http_method``, ``missing_header``, the identifier codes;
``kind=BAD_INPUT``): X-Road itself answers most of these with ``server.clientproxy.internal_error``, an
``IllegalArgumentException`` it never translated, and we say what is wrong instead. A peer's header part
(:func:`parse_header_part`) fails with ``invalid_message``; a response that does not answer its request fails
:func:`check_rest_response` with ``inconsistent_response``.

This module does no I/O. The metaservice bodies (``listMethods``/``allowedMethods`` JSON, ``listClients``
JSON and XML) are built here too, since both nodes and the adapter SDK write them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final

from lxml import etree

from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import (
    ClientId,
    RepresentedParty,
    SecurityServerId,
    ServiceId,
    SubsystemId,
    format_client_header,
    format_service_header,
    parse_client_header,
    parse_represented_party_header,
    parse_rest_service_path,
    parse_security_server_header,
    parse_service_header,
    to_xml,
)

__all__ = [
    "HEADER_CLIENT",
    "HEADER_ERROR",
    "HEADER_ISSUE",
    "HEADER_QUERY_ID",
    "HEADER_REPRESENTED_PARTY",
    "HEADER_REQUEST_HASH",
    "HEADER_REQUEST_ID",
    "HEADER_SECURITY_SERVER",
    "HEADER_SERVICE",
    "HEADER_USER_ID",
    "MAX_HEADERS",
    "MAX_HEADER_PART_BYTES",
    "REST_METHODS",
    "SKIPPED_HEADERS",
    "XROAD_NS",
    "Headers",
    "RequestHasher",
    "RestRequest",
    "RestResponse",
    "RestServiceEntry",
    "build_rest_request",
    "build_rest_response",
    "check_rest_response",
    "generate_query_id",
    "is_headers_for_client",
    "list_clients_json",
    "list_clients_xml",
    "list_methods_json",
    "parse_header_part",
    "parse_rest_target",
    "provider_is_headers",
    "request_hash",
]

Headers = tuple[tuple[str, str], ...]
"""HTTP headers in their received order, names in their received case."""

# X-Road's header names (MimeUtils.HEADER_*), in the case X-Road writes the ones it adds.
HEADER_CLIENT: Final = "x-road-client"
HEADER_QUERY_ID: Final = "x-road-id"
HEADER_SERVICE: Final = "x-road-service"
HEADER_REQUEST_ID: Final = "x-road-request-id"
HEADER_REQUEST_HASH: Final = "x-road-request-hash"
HEADER_USER_ID: Final = "x-road-userid"
HEADER_ISSUE: Final = "x-road-issue"
HEADER_SECURITY_SERVER: Final = "x-road-security-server"
HEADER_REPRESENTED_PARTY: Final = "x-road-represented-party"
HEADER_ERROR: Final = "x-road-error"

SKIPPED_HEADERS: Final = frozenset(
    {
        "transfer-encoding",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
        "connection",
        "user-agent",
        "host",
        "content-length",
        "server",
        "expect",
    }
)
"""Headers never forwarded in either direction and refused inside a header part
(``RestMessage.SKIPPED_HEADERS``)."""

REST_METHODS: Final = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})
"""The HTTP methods X-Road's REST protocol carries (``RestRequest.Verb``)."""

MAX_HEADER_PART_BYTES: Final = 256 * 1024
"""Largest REST header part read from a peer (X-Road reads it unbounded; ours is a named bound)."""
MAX_HEADERS: Final = 512
"""Most header lines in one REST header part."""

XROAD_NS: Final = "http://x-road.eu/xsd/xroad.xsd"

_CRLF: Final = b"\r\n"
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 3986 characters of a path and query (no fragment), a '%' only before two hex digits.
_TARGET: Final = re.compile(r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")
_BAD_VALUE: Final = re.compile("[\x00\r\n]")
_STATUS: Final = re.compile(r"[1-9][0-9]{2}")
_REMOVED_FROM_REQUEST: Final = frozenset({HEADER_REQUEST_ID, HEADER_REQUEST_HASH})
_REPLACED_IN_RESPONSE: Final = frozenset(
    {HEADER_QUERY_ID, HEADER_REQUEST_HASH, HEADER_CLIENT, HEADER_REQUEST_ID}
)


def _bad_input(err: XRoadError) -> XRoadError:
    """``err`` as the caller's fault (``client.`` side, HTTP 400)."""
    return XRoadError(err.code, err.message, details=err.details, detail=err.detail, kind=ErrorKind.BAD_INPUT)


def _check_header(name: str, value: str, code: str, kind: ErrorKind) -> None:
    if not _TOKEN.fullmatch(name):
        raise XRoadError(code, f"header name {name[:60]!r} is not an HTTP token", kind=kind)
    if _BAD_VALUE.search(value):
        raise XRoadError(code, f"header {name[:60]!r} has a line break or NUL in its value", kind=kind)


def _values(headers: Headers, name: str) -> list[str]:
    wanted = name.lower()
    return [v for n, v in headers if n.lower() == wanted]


def _last(headers: Headers, name: str) -> str | None:
    values = _values(headers, name)
    return values[-1] if values else None


def _write(first: str, second: str, headers: Headers) -> bytes:
    lines = [first, second, *(f"{n}:{v}" for n, v in headers)]
    return "\r\n".join(lines).encode("utf-8") + _CRLF


class _HeaderLookups:
    """Lookups common to requests and responses (X-Road's fields take the last value of a header)."""

    headers: Headers

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        values = _values(self.headers, name)
        return values[0] if values else None

    @property
    def query_id(self) -> str | None:
        """The message id, ``x-road-id``."""
        return _last(self.headers, HEADER_QUERY_ID)

    @property
    def request_id(self) -> str | None:
        """The exchange's request id, ``x-road-request-id``."""
        return _last(self.headers, HEADER_REQUEST_ID)

    @cached_property
    def client(self) -> ClientId | None:
        """The consumer, from ``X-Road-Client`` (non-strict decoding, as X-Road's decoder)."""
        value = _last(self.headers, HEADER_CLIENT)
        return None if value is None else parse_client_header(value, strict=False)


@dataclass(frozen=True)
class RestRequest(_HeaderLookups):
    """A REST request header part: method, raw target (``/r1/...[?query]``) and forwarded headers."""

    method: str
    target: str
    headers: Headers = field(default=())

    def __post_init__(self) -> None:
        if self.method not in REST_METHODS:
            raise XRoadError(
                FaultCode.INVALID_HTTP_METHOD,
                f"HTTP method {self.method[:20]!r} is not one X-Road carries",
                kind=ErrorKind.BAD_INPUT,
            )
        for name, value in self.headers:
            _check_header(name, value, FaultCode.BAD_REQUEST, ErrorKind.BAD_INPUT)
        # Decoding the target here makes every instance carry a valid service identifier.
        _ = self._target_parts

    def to_bytes(self) -> bytes:
        """The header part exactly as X-Road's ``RestRequest.toByteArray`` writes it."""
        return _write(self.method, self.target, self.headers)

    @cached_property
    def _target_parts(self) -> tuple[ServiceId, str, str]:
        return parse_rest_target(self.target, strict=False)

    @property
    def service(self) -> ServiceId:
        """The service, from the target."""
        return self._target_parts[0]

    @property
    def service_path(self) -> str:
        """The raw path after the service code (``/people/42``), ``""`` if none."""
        return self._target_parts[1]

    @property
    def query(self) -> str:
        """The raw query string without ``?``, ``""`` if none."""
        return self._target_parts[2]

    @property
    def user_id(self) -> str | None:
        """``X-Road-UserId``."""
        return _last(self.headers, HEADER_USER_ID)

    @property
    def issue(self) -> str | None:
        """``X-Road-Issue``."""
        return _last(self.headers, HEADER_ISSUE)

    @property
    def represented_party(self) -> RepresentedParty | None:
        """``X-Road-Represented-Party`` (PR-THIRD)."""
        value = _last(self.headers, HEADER_REPRESENTED_PARTY)
        return None if value is None else parse_represented_party_header(value, strict=False)

    @property
    def security_server(self) -> SecurityServerId | None:
        """``X-Road-Security-Server`` (PR-TARGETSS): the one provider node the consumer asks for."""
        value = _last(self.headers, HEADER_SECURITY_SERVER)
        return None if value is None else parse_security_server_header(value, strict=False)


@dataclass(frozen=True)
class RestResponse(_HeaderLookups):
    """A REST response header part: status, reason phrase and forwarded headers."""

    status: int
    reason: str
    headers: Headers = field(default=())

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 999:
            raise XRoadError(FaultCode.INVALID_MESSAGE, f"HTTP status {self.status} is not three digits")
        if _BAD_VALUE.search(self.reason):
            raise XRoadError(FaultCode.INVALID_MESSAGE, "reason phrase has a line break or NUL")
        for name, value in self.headers:
            _check_header(name, value, FaultCode.INVALID_MESSAGE, ErrorKind.INTERNAL)

    def to_bytes(self) -> bytes:
        """The header part exactly as X-Road's ``RestResponse.toByteArray`` writes it."""
        return _write(str(self.status), self.reason, self.headers)

    @property
    def service(self) -> ServiceId | None:
        """The service that answered, from ``x-road-service``."""
        value = _last(self.headers, HEADER_SERVICE)
        return None if value is None else parse_service_header(value, strict=False)

    @property
    def request_hash(self) -> str | None:
        """The request hash the provider node computed, ``x-road-request-hash`` (base64)."""
        return _last(self.headers, HEADER_REQUEST_HASH)

    @property
    def is_error(self) -> bool:
        """True for a 4xx or 5xx status (X-Road's ``isErrorResponse``)."""
        return 400 <= self.status <= 599


# --------------------------------------------------------------------------------------------------------
# Parsing a peer's header part


def _split_lines(data: bytes) -> list[str]:
    if len(data) > MAX_HEADER_PART_BYTES:
        raise XRoadError(
            FaultCode.INVALID_MESSAGE, f"REST header part is larger than {MAX_HEADER_PART_BYTES} bytes"
        )
    if not data.endswith(_CRLF):
        raise XRoadError(FaultCode.INVALID_MESSAGE, "REST header part does not end with CRLF")
    raw = data[:-2].split(_CRLF)
    if len(raw) < 2:
        raise XRoadError(FaultCode.INVALID_MESSAGE, "REST header part has no start line pair")
    if len(raw) - 2 > MAX_HEADERS:
        raise XRoadError(FaultCode.INVALID_MESSAGE, f"REST header part has more than {MAX_HEADERS} headers")
    try:
        lines = [line.decode("utf-8") for line in raw]
    except UnicodeDecodeError as e:
        raise XRoadError(FaultCode.INVALID_MESSAGE, "REST header part is not UTF-8") from e
    if any("\r" in line or "\n" in line for line in lines):
        raise XRoadError(FaultCode.INVALID_MESSAGE, "REST header part has a bare CR or LF")
    return lines


def _parse_headers(lines: list[str]) -> Headers:
    headers: list[tuple[str, str]] = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise XRoadError(FaultCode.INVALID_MESSAGE, f"REST header line {line[:60]!r} has no ':'")
        if name.lower() in SKIPPED_HEADERS:
            raise XRoadError(
                FaultCode.INVALID_MESSAGE, f"REST header part carries the filtered header {name!r}"
            )
        headers.append((name, value))
    return tuple(headers)


def _parse_response(lines: list[str]) -> RestResponse:
    if not _STATUS.fullmatch(lines[0]):
        raise XRoadError(
            FaultCode.INVALID_MESSAGE, f"REST response status {lines[0][:20]!r} is not three digits"
        )
    response = RestResponse(int(lines[0]), lines[1], _parse_headers(lines[2:]))
    if not response.query_id or not response.request_hash:
        raise XRoadError(
            FaultCode.INVALID_MESSAGE, "REST response has no x-road-id or no x-road-request-hash"
        )
    _ = response.client, response.service
    return response


def _parse_request(lines: list[str]) -> RestRequest:
    request = RestRequest(lines[0], lines[1], _parse_headers(lines[2:]))
    if request.client is None:
        raise XRoadError(FaultCode.INVALID_MESSAGE, "REST request has no X-Road-Client header")
    _ = request.security_server, request.represented_party
    return request


def parse_header_part(data: bytes) -> RestRequest | RestResponse:
    """Read a peer's REST header part: a response when the first byte is ``1``-``9``, else a request.

    Every failure is ``invalid_message``: the bounds (:data:`MAX_HEADER_PART_BYTES`, :data:`MAX_HEADERS`),
    line ends other than CRLF, a filtered header, an unknown method, a malformed target or identifier, a
    request without ``X-Road-Client``, a response without ``x-road-id`` or ``x-road-request-hash``.
    """
    lines = _split_lines(data)
    try:
        return _parse_response(lines) if data[:1] in b"123456789" else _parse_request(lines)
    except XRoadError as e:
        if e.code == FaultCode.INVALID_MESSAGE:
            raise
        raise XRoadError(
            FaultCode.INVALID_MESSAGE, f"REST header part: {e.message}", details=e.details
        ) from e


# --------------------------------------------------------------------------------------------------------
# The consumer node: from the IS request to the header part


def parse_rest_target(target: str, *, strict: bool = True) -> tuple[ServiceId, str, str]:
    """Split a raw REST target into (service, raw service path, raw query).

    ``/r1/{instance}/{class}/{member}/{subsystem}/{serviceCode}[/path][?query]``: each identifier part is
    percent-decoded on its own, the subsystem is mandatory (X-Road's ``RestRequest.decodeIdentifiers``), the
    path and query stay raw. A target that is not a URI path (a fragment, a space, a bad ``%`` escape) is
    ``bad_request``; the identifier errors keep their codes; all are the caller's fault (``BAD_INPUT``).
    """
    if not isinstance(target, str) or not _TARGET.fullmatch(target):
        raise XRoadError(
            FaultCode.BAD_REQUEST,
            f"REST request target {str(target)[:80]!r} is not a URI path and query",
            kind=ErrorKind.BAD_INPUT,
        )
    try:
        service, rest = parse_rest_service_path(target, strict=strict)
    except XRoadError as e:
        raise _bad_input(e) from e
    path, _, query = rest.partition("?")
    return service, path, query


def generate_query_id(instance: str) -> str:
    """A new message id as X-Road's client proxy makes one when the IS sent none: ``<INSTANCE>-<uuid4>``."""
    return f"{instance}-{uuid.uuid4()}"


def build_rest_request(
    method: str,
    target: str,
    is_headers: Iterable[tuple[str, str]],
    *,
    query_id: str,
    request_id: str,
    strict: bool = True,
) -> RestRequest:
    """The consumer node's header part for a request its IS sent.

    Drops :data:`SKIPPED_HEADERS` and the IS's ``x-road-request-id``/``x-road-request-hash``, keeps the rest
    as received, appends ``x-road-request-id: request_id``, then ``x-road-id: query_id`` unless the IS sent
    an ``X-Road-Id`` (which then stays in place). Checks what X-Road's client proxy checks: the method, the
    target, a mandatory ``X-Road-Client``, and the identifiers in ``X-Road-Client``,
    ``X-Road-Security-Server`` and ``X-Road-Represented-Party`` (``strict`` is X-Road's
    ``strict-identifier-checks``).
    """
    kept = [
        (name, value)
        for name, value in is_headers
        if name.lower() not in SKIPPED_HEADERS and name.lower() not in _REMOVED_FROM_REQUEST
    ]
    kept.append((HEADER_REQUEST_ID, request_id))
    sent_ids = _values(tuple(kept), HEADER_QUERY_ID)
    if not sent_ids:
        kept.append((HEADER_QUERY_ID, query_id))
    elif not sent_ids[-1].strip():
        raise XRoadError(FaultCode.BAD_REQUEST, "X-Road-Id header is empty", kind=ErrorKind.BAD_INPUT)
    parse_rest_target(target, strict=strict)
    request = RestRequest(method, target, tuple(kept))
    _check_identifier_headers(request, strict)
    return request


def _check_identifier_headers(request: RestRequest, strict: bool) -> None:
    headers = request.headers
    client = _last(headers, HEADER_CLIENT)
    if client is None:
        raise XRoadError(
            FaultCode.MISSING_HEADER, "X-Road-Client header is missing", kind=ErrorKind.BAD_INPUT
        )
    try:
        parse_client_header(client, strict=strict)
        server = _last(headers, HEADER_SECURITY_SERVER)
        if server is not None:
            parse_security_server_header(server, strict=strict)
        party = _last(headers, HEADER_REPRESENTED_PARTY)
        if party is not None:
            parse_represented_party_header(party, strict=strict)
    except XRoadError as e:
        raise _bad_input(e) from e


def provider_is_headers(request: RestRequest) -> list[tuple[str, str]]:
    """The headers the provider node sends its IS: every header of the request's header part, in order
    (``X-Road-Client``, ``X-Road-Id`` and ``x-road-request-id`` included; filtered ones were never in it)."""
    return list(request.headers)


# --------------------------------------------------------------------------------------------------------
# The provider node: from the IS response to the header part, and the request hash


def build_rest_response(
    status: int,
    reason: str,
    provider_headers: Iterable[tuple[str, str]],
    *,
    request: RestRequest,
    request_hash: str,
) -> RestResponse:
    """The provider node's header part for its IS's response to ``request``.

    Drops :data:`SKIPPED_HEADERS` and the IS's ``x-road-id``, ``x-road-request-hash``, ``x-road-client`` and
    ``x-road-request-id``, then appends X-Road's own in X-Road's order: ``x-road-id``, ``x-road-client``,
    ``x-road-service``, ``x-road-request-id``, ``x-road-request-hash`` (``RestResponse``'s constructor).
    """
    client, query_id, request_id = request.client, request.query_id, request.request_id
    if client is None or query_id is None or request_id is None:
        raise XRoadError(
            FaultCode.INVALID_MESSAGE, "REST request lacks its client, x-road-id or x-road-request-id"
        )
    kept = [
        (name, value)
        for name, value in provider_headers
        if name.lower() not in SKIPPED_HEADERS and name.lower() not in _REPLACED_IN_RESPONSE
    ]
    kept += [
        (HEADER_QUERY_ID, query_id),
        (HEADER_CLIENT, format_client_header(client)),
        (HEADER_SERVICE, format_service_header(request.service)),
        (HEADER_REQUEST_ID, request_id),
        (HEADER_REQUEST_HASH, request_hash),
    ]
    return RestResponse(status, reason, tuple(kept))


class RequestHasher:
    """The request hash computed while the body streams (reference §3):
    ``base64(SHA512(SHA512(header part) || SHA512(body)))``, or ``base64(SHA512(header part))`` when the
    message has no body part.

    The first :meth:`update` call, even with no bytes, says the message has a body part. X-Road's client
    proxy sends no body part for an empty IS body, so a consumer node feeds only non-empty chunks::

        >>> h = RequestHasher(b"GET\\r\\n/r1/A/B/C/D/e\\r\\n")
        >>> h.digest() == request_hash(b"GET\\r\\n/r1/A/B/C/D/e\\r\\n", None)
        True
    """

    def __init__(self, header_part: bytes) -> None:
        self._header_digest = hashlib.sha512(header_part).digest()
        self._body: hashlib._Hash | None = None

    def update(self, chunk: bytes) -> None:
        """Feed the next chunk of the body."""
        if self._body is None:
            self._body = hashlib.sha512()
        self._body.update(chunk)

    @property
    def body_digest(self) -> bytes | None:
        """SHA-512 of the body so far, or ``None`` when there is no body part."""
        return None if self._body is None else self._body.digest()

    def digest(self) -> str:
        """The request hash, base64."""
        body = self.body_digest
        value = self._header_digest if body is None else hashlib.sha512(self._header_digest + body).digest()
        return base64.b64encode(value).decode("ascii")


def request_hash(header_part: bytes, body: bytes | None) -> str:
    """The request hash of a header part and its body (``None``: no body part), base64 (reference §3)."""
    hasher = RequestHasher(header_part)
    if body is not None:
        hasher.update(body)
    return hasher.digest()


# --------------------------------------------------------------------------------------------------------
# The consumer node again: the response it hands back


def _inconsistent(what: str) -> XRoadError:
    return XRoadError(FaultCode.INCONSISTENT_RESPONSE, f"Response {what} does not match request message")


def check_rest_response(request: RestRequest, response: RestResponse, expected_hash: str) -> None:
    """Check that ``response`` answers ``request`` (``ClientRestMessageProcessor.checkConsistency``):
    1. client id, 2. message id, 3. service id, 4. request id, 5. request hash; else
    ``inconsistent_response``.
    """
    try:
        client, service = response.client, response.service
    except XRoadError as e:
        raise XRoadError(
            FaultCode.INCONSISTENT_RESPONSE, f"Response identifiers are malformed: {e.message}"
        ) from e
    if client != request.client:
        raise _inconsistent("client id")
    if response.query_id != request.query_id:
        raise _inconsistent("message id")
    if service != request.service:
        raise _inconsistent("service id")
    if response.request_id != request.request_id:
        raise _inconsistent("message request id")
    if response.request_hash != expected_hash:
        raise _inconsistent("message hash")


def is_headers_for_client(response: RestResponse) -> list[tuple[str, str]]:
    """The headers the consumer node returns to its IS: all of the response's header part, in order (the
    provider node already filtered them and added X-Road's own)."""
    return list(response.headers)


# --------------------------------------------------------------------------------------------------------
# Metaservice bodies (PR-MREST listMethods/allowedMethods, PR-META listClients)


@dataclass(frozen=True, slots=True)
class RestServiceEntry:
    """One REST service in a ``listMethods``/``allowedMethods`` answer."""

    service: ServiceId
    service_type: str
    """``REST`` (a base URL) or ``OPENAPI`` (an OpenAPI 3 description)."""
    endpoints: tuple[tuple[str, str], ...] = ()
    """(method, path) pairs; method ``*`` is any method."""


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def list_methods_json(services: Sequence[RestServiceEntry]) -> bytes:
    """The REST ``listMethods``/``allowedMethods`` body: ``{"service":[{...,"endpoint_list":[...]}]}``."""
    items = []
    for entry in services:
        svc = entry.service
        item: dict[str, object] = {"member_class": svc.member_class, "member_code": svc.member_code}
        if svc.subsystem_code is not None:
            item["subsystem_code"] = svc.subsystem_code
        item |= {
            "object_type": "SERVICE",
            "xroad_instance": svc.instance,
            "service_code": svc.service_code,
            "service_type": entry.service_type,
            "endpoint_list": [{"method": m, "path": p} for m, p in entry.endpoints],
        }
        items.append(item)
    return _dumps({"service": items})


ClientListEntry = tuple[ClientId, str | None, str | None]
"""(client, member name, subsystem name)."""


def list_clients_json(entries: Sequence[ClientListEntry]) -> bytes:
    """The ``listClients`` body for ``Accept: application/json`` (null fields left out, as X-Road does)."""
    members = []
    for client, name, subsystem_name in entries:
        ident: dict[str, str] = {"member_class": client.member_class, "member_code": client.member_code}
        if isinstance(client, SubsystemId):
            ident["subsystem_code"] = client.subsystem_code
        ident |= {"object_type": str(client.object_type), "xroad_instance": client.instance}
        member: dict[str, object] = {"id": ident}
        if name is not None:
            member["name"] = name
        if subsystem_name is not None:
            member["subsystem_name"] = subsystem_name
        members.append(member)
    return _dumps({"member": members})


def list_clients_xml(entries: Sequence[ClientListEntry]) -> bytes:
    """The ``listClients`` body in XML: ``xrd:clientList`` of ``xrd:member`` (``id``, ``name``,
    ``subsystemName``)."""
    root = etree.Element(f"{{{XROAD_NS}}}clientList", nsmap={"xrd": XROAD_NS})
    for client, name, subsystem_name in entries:
        member = etree.SubElement(root, f"{{{XROAD_NS}}}member")
        to_xml(client, f"{{{XROAD_NS}}}id", parent=member)
        if name is not None:
            etree.SubElement(member, f"{{{XROAD_NS}}}name").text = name
        if subsystem_name is not None:
            etree.SubElement(member, f"{{{XROAD_NS}}}subsystemName").text = subsystem_name
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True))
