"""Input checks of the node store (pure): each returns its value or raises ``XRoadError`` with HTTP 400.

Example::

    >>> from security_server.db.checks import check_url
    >>> check_url("service URL", "https://civil-registry.internal/api")
    'https://civil-registry.internal/api'
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from security_server.db.models import URL_LENGTH
from security_server.endpoints import normalize_method, validate_path_pattern
from security_server.ids import strict_checked
from xroad_mn.errors import DetailValue, ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, validate_part

__all__ = [
    "MAX_TEXT_CHARS",
    "MAX_TIMEOUT_SECONDS",
    "check_client",
    "check_code",
    "check_method",
    "check_path",
    "check_seconds",
    "check_text",
    "check_url",
    "conflict",
    "invalid",
    "not_found",
]

MAX_TEXT_CHARS: Final = 4096
"""Longest description, notice or title."""
MAX_TIMEOUT_SECONDS: Final = 24 * 3600
"""Longest service timeout (X-Road keeps it in an ``int`` column; a day is more than any service needs)."""
_HTTP_SCHEMES: Final = frozenset({"http", "https"})


def _error(code: str, kind: ErrorKind, message: str, details: dict[str, DetailValue]) -> XRoadError:
    return XRoadError(code, message, details=details, kind=kind)


def conflict(message: str, **details: DetailValue) -> XRoadError:
    return _error(FaultCode.CONFLICT, ErrorKind.CONFLICT, message, details)


def not_found(message: str, **details: DetailValue) -> XRoadError:
    return _error(FaultCode.NOT_FOUND, ErrorKind.NOT_FOUND, message, details)


def invalid(message: str, **details: DetailValue) -> XRoadError:
    return _error(FaultCode.INVALID_REQUEST, ErrorKind.BAD_INPUT, message, details)


def check_text(what: str, value: str, *, limit: int = MAX_TEXT_CHARS) -> str:
    """A non-empty string of at most ``limit`` characters without control characters (tabs and newlines
    allowed)."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{what} must be a non-empty string", field=what)
    if len(value) > limit:
        raise invalid(f"{what} is longer than {limit} characters", field=what)
    if any((ord(c) < 0x20 and c not in "\t\n\r") or c == "\x7f" for c in value):
        raise invalid(f"{what} contains control characters", field=what)
    return value


def check_url(what: str, value: str) -> str:
    """An absolute ``http(s)`` URL of at most :data:`~security_server.db.models.URL_LENGTH` characters."""
    check_text(what, value, limit=URL_LENGTH)
    parts = urlsplit(value)
    if parts.scheme not in _HTTP_SCHEMES or not parts.netloc or any(c.isspace() for c in value):
        raise invalid(f"{what} {value[:80]!r} is not an http(s) URL", field=what)
    return value


def check_seconds(what: str, value: int, *, limit: int = MAX_TIMEOUT_SECONDS) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise invalid(f"{what} must be a positive integer of at most {limit}", field=what)
    return value


def _identifier_part(part: str, value: str, code: str, strict: bool) -> str:
    try:
        return strict_checked(lambda s: validate_part(part, value, code=code, strict=s), strict=strict)
    except XRoadError as e:
        raise XRoadError(e.code, e.message, details=e.details, kind=ErrorKind.BAD_INPUT) from e


def check_code(part: str, value: str, *, strict: bool) -> str:
    """A service code, version or group code: an identifier part under X-Road's identifier checks, strict
    ones unless ``strict`` is false (the node's ``strict_identifier_checks``)."""
    return _identifier_part(part, value, FaultCode.INVALID_IDENTIFIER, strict)


def check_client(client: ClientId, *, strict: bool) -> ClientId:
    """A client identifier whose parts pass X-Road's identifier checks, strict ones unless ``strict`` is
    false (for clients added here)."""
    for part, value in client.parts().items():
        _identifier_part(part, value, FaultCode.INVALID_CLIENT_IDENTIFIER, strict)
    return client


def check_method(method: str) -> str:
    try:
        return normalize_method(method)
    except ValueError as e:
        raise invalid(str(e), field="method") from e


def check_path(pattern: str) -> str:
    try:
        return validate_path_pattern(pattern)
    except ValueError as e:
        raise invalid(str(e), field="path") from e
