"""X-Road errors: one exception root carrying a fault code, and the protocol's error formats.

Every failure that crosses a boundary of xroad-mn is an :class:`XRoadError`. It carries an X-Road fault
code in X-Road 7.8's lowercase form (``server.serverproxy.access_denied``), a human message, a fault-detail
UUID (the ``detail`` X-Road writes to its log and returns to the caller) and typed details.

Example::

    >>> from xroad_mn.errors import FaultCode, XRoadError, render_rest_error, normalize_fault_code
    >>> err = XRoadError(FaultCode.ACCESS_DENIED, "Request is not allowed").with_prefix("server.serverproxy")
    >>> err.code
    'server.serverproxy.access_denied'
    >>> normalize_fault_code("Server.ServerProxy.AccessDenied")
    'server.serverproxy.access_denied'
    >>> render_rest_error(err, accept="application/json").status
    500

Codes are parsed case-insensitively in both forms (``Server.ClientProxy.ServiceFailed.MissingBody`` and
``server.clientproxy.service_failed.missing_body``) and always emitted in the lowercase form.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = [
    "ErrorKind",
    "FaultCode",
    "FaultPrefix",
    "XRoadError",
    "normalize_fault_code",
]

DetailValue = str | int | float | bool | None


class FaultPrefix(StrEnum):
    """Where an error was translated into the protocol: the first parts of a fault code."""

    CLIENT = "client"
    SERVER = "server"
    SERVER_CLIENTPROXY = "server.clientproxy"
    SERVER_SERVERPROXY = "server.serverproxy"
    SIGNER = "signer"


class FaultCode(StrEnum):
    """X-Road fault codes (``ErrorCodes.java`` ``X_*`` constants) in their 7.8 lowercase form."""

    # Generic and transport
    INTERNAL_ERROR = "internal_error"
    IO_ERROR = "io_error"
    NETWORK_ERROR = "network_error"
    BAD_REQUEST = "bad_request"
    SERVICE_FAILED = "service_failed"
    HTTP_ERROR = "http_error"
    INVALID_REQUEST = "invalid_request"
    INVALID_CONTENT_TYPE = "invalid_content_type"
    INVALID_HTTP_METHOD = "invalid_http_method"
    UNKNOWN_HOST = "unknown_host"
    ACCESS_DENIED = "access_denied"
    SSL_AUTH_FAILED = "ssl_authentication_failed"
    TIMEOUT = "timeout"
    # Identifiers and messages
    INVALID_CLIENT_IDENTIFIER = "invalid_client_identifier"
    INVALID_SERVICE_IDENTIFIER = "invalid_service_identifier"
    INVALID_SECURITY_SERVER = "invalid_security_server"
    INVALID_IDENTIFIER = "invalid_identifier"
    INVALID_MESSAGE = "invalid_message"
    INVALID_SOAP = "invalid_soap"
    INVALID_BODY = "invalid_body"
    INVALID_XML = "invalid_xml"
    INVALID_PROTOCOL_VERSION = "invalid_protocol_version"
    MISSING_HEADER = "missing_header"
    MISSING_HEADER_FIELD = "missing_header_field"
    DUPLICATE_HEADER_FIELD = "duplicate_header_field"
    INCONSISTENT_HEADERS = "inconsistent_headers"
    INCONSISTENT_RESPONSE = "inconsistent_response"
    MISSING_BODY = "missing_body"
    MISSING_SOAP = "missing_soap"
    MIME_PARSING_FAILED = "mime_parsing_failed"
    UNKNOWN_MEMBER = "unknown_member"
    UNKNOWN_SERVICE = "unknown_service"
    SERVICE_DISABLED = "service_disabled"
    SERVICE_TYPE = "service_type"
    CLIENT_PROXY_VERSION_NOT_SUPPORTED = "client_proxy_version_not_supported"
    MAINTENANCE_MODE = "maintenance_mode"
    # Signatures, certificates, time-stamps
    MALFORMED_SIGNATURE = "malformed_signature"
    MISSING_SIGNATURE = "missing_signature"
    INVALID_SIGNATURE_VALUE = "invalid_signature_value"
    INVALID_REFERENCE = "invalid_reference"
    INVALID_CERT_PATH = "invalid_cert_path"
    INCORRECT_CERTIFICATE = "incorrect_certificate"
    CERT_VALIDATION = "cert_validation"
    SIGNATURE_VERIFICATION_FAILED = "signature_verification"
    MALFORMED_HASH_CHAIN = "malformed_hash_chain"
    INVALID_HASH_CHAIN_REF = "invalid_hash_chain_ref"
    INVALID_HASH_CHAIN_RESULT = "invalid_hash_chain"
    HASHCHAIN_UNUSED_INPUTS = "hashchain_unused_inputs"
    TIMESTAMP_VALIDATION = "timestamp_validation"
    TIMESTAMPER_FAILED = "timestamper_failed"
    LOGGING_FAILED = "logging_failed"
    OCSP_FAILED = "ocsp_failed"
    CANNOT_CREATE_SIGNATURE = "cannot_create_signature"
    # Containers and archives
    ASIC_MIME_TYPE_NOT_FOUND = "asic_mime_type_not_found"
    ASIC_MESSAGE_NOT_FOUND = "asic_message_not_found"
    ASIC_SIGNATURE_NOT_FOUND = "asic_signature_not_found"
    ASIC_INVALID_MIME_TYPE = "asic_invalid_mime_type"
    ASIC_MANIFEST_NOT_FOUND = "asic_manifest_not_found"
    ASIC_TIMESTAMP_NOT_FOUND = "asic_timestamp_not_found"
    ASIC_HASH_CHAIN_NOT_FOUND = "asic_hash_chain_not_found"
    ASIC_HASH_CHAIN_RESULT_NOT_FOUND = "asic_hash_chain_result_not_found"
    ARCHIVE_LINKING = "archive_linking_failed"
    # Global configuration
    GLOBAL_CONF_OUTDATED = "global_conf_outdated"
    GLOBAL_CONF_INVALID = "global_conf_invalid"
    MALFORMED_GLOBALCONF = "malformed_global_conf"
    MALFORMED_ANCHOR = "malformed_anchor"
    # Management requests and certificates issued by a CA
    INVALID_CSR = "invalid_csr"
    INVALID_OCSP_REQUEST = "invalid_ocsp_request"
    INVALID_TIMESTAMP_REQUEST = "invalid_timestamp_request"
    REQUEST_TOO_LARGE = "request_too_large"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID_SETTINGS = "invalid_settings"
    UNAUTHORIZED = "unauthorized"
    # OCSP response unusable as validation information (OcspVerifier: X_INCORRECT_VALIDATION_INFO)
    INCORRECT_VALIDATION_INFO = "incorrect_validation_info"
    # Admin REST API: role check (HTTP 403) and rate limit (HTTP 429)
    FORBIDDEN = "forbidden"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    # Signer: keys in a token (raised with the ``signer`` prefix, as X-Road's SIGNER_X)
    KEY_NOT_FOUND = "key_not_found"
    WRONG_CERT_USAGE = "wrong_cert_usage"
    TOKEN_NOT_ACTIVE = "token_not_active"  # noqa: S105 (a fault code, not a password)
    TOKEN_NOT_INITIALIZED = "token_not_initialized"  # noqa: S105 (a fault code, not a password)
    TOKEN_NOT_AVAILABLE = "token_not_available"  # noqa: S105 (a fault code, not a password)
    CANNOT_SIGN = "cannot_sign"
    CSR_FAILED = "failed_to_generate_certificate_request"
    FAILED_TO_GENERATE_PRIVATE_KEY = "failed_to_generate_private_key"
    FAILED_TO_DELETE_KEY = "failed_to_delete_key"
    LOGIN_FAILED = "login_failed"
    PIN_INCORRECT = "pin_incorrect"
    TOKEN_PIN_POLICY_FAILURE = "token_pin_policy_failure"  # noqa: S105 (a fault code, not a password)
    # Service descriptions (the admin API's DeviationCodes of OpenApiParser, WsdlParser and its callers)
    OPENAPI_PARSING = "openapi_parsing_error"
    UNSUPPORTED_OPENAPI_VERSION = "unsupported_openapi_version"
    OPENAPI_FILE_NOT_FOUND = "openapi_file_not_found"
    INVALID_WSDL = "invalid_wsdl"
    WSDL_DOWNLOAD_FAILED = "wsdl_download_failed"
    INVALID_WSDL_SERVICE_IDENTIFIER = "invalid_wsdl_service_identifier"
    INVALID_SERVICE_URL = "invalid_service_url"
    MALFORMED_URL = "malformed_url"


# Code words whose 7.8 form is not the mechanical snake_case of the old CamelCase form.
_RENAMED_CODE_WORDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "outdated_global_conf": "global_conf_outdated",
        "serverproxy": "serverproxy",
        "clientproxy": "clientproxy",
    }
)
# Leading parts that X-Road writes as one lowercase word (``ServerProxy`` -> ``serverproxy``).
_PREFIX_WORDS: Final = frozenset({"server", "client", "serverproxy", "clientproxy", "signer"})
_CAMEL_BOUNDARY: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_CODE_PART: Final = re.compile(r"^[A-Za-z0-9_]+$")


def _snake(part: str) -> str:
    if part.lower() in _PREFIX_WORDS:
        return part.lower()
    return _CAMEL_BOUNDARY.sub("_", part).lower()


def normalize_fault_code(code: str) -> str:
    """Return a fault code in X-Road 7.8's lowercase form, whichever form it was written in.

    ``Server.ClientProxy.OutdatedGlobalConf`` -> ``server.clientproxy.global_conf_outdated``.
    Parts that are not code words (e.g. free text after a code) are lower-cased as they are.
    """
    parts = code.strip().split(".")
    out: list[str] = []
    for part in parts:
        word = _snake(part) if _CODE_PART.match(part) else part.lower()
        out.append(_RENAMED_CODE_WORDS.get(word, word))
    return ".".join(out)


class ErrorKind(StrEnum):
    """What kind of failure an error is, said where it happens (storage, protocol code) without naming any
    transport: the wire layer turns it into an HTTP status (:func:`xroad_mn.wire.faults.http_status_of`)
    and a ``client.``/``server.`` side, as X-Road's admin API maps its exception types."""

    INTERNAL = "internal"
    """Ours: the server failed (the default)."""
    BAD_INPUT = "bad_input"
    """The caller's input is wrong (HTTP 400)."""
    DENIED = "denied"
    """The caller may not do this (HTTP 403)."""
    NOT_FOUND = "not_found"
    """What the caller names does not exist (HTTP 404)."""
    CONFLICT = "conflict"
    """The request conflicts with the current state (HTTP 409)."""


class XRoadError(Exception):
    """The root of every xroad-mn error: an X-Road fault code, a message and typed details.

    ``code`` is always in 7.8's lowercase form. ``detail`` is the fault-detail UUID X-Road returns in
    the ``detail`` field of REST errors and ``faultDetail`` of SOAP faults, and writes to its log.
    ``kind`` says whose failure it is (storage and protocol code set this, never an HTTP status);
    ``http_status`` is for HTTP-layer code only, to override the status the wire layer derives.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        details: Mapping[str, DetailValue] | None = None,
        detail: str | None = None,
        kind: ErrorKind = ErrorKind.INTERNAL,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code: str = normalize_fault_code(str(code))
        self.message: str = message
        self.details: Mapping[str, DetailValue] = MappingProxyType(dict(details or {}))
        self.detail: str = detail if detail is not None else str(uuid.uuid4())
        self.kind: ErrorKind = kind
        self.http_status: int | None = http_status

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"XRoadError(code={self.code!r}, message={self.message!r})"

    def with_prefix(self, prefix: str) -> XRoadError:
        """Translate the error at a boundary: prefix its code unless it already carries one.

        ``XRoadError("access_denied", ...).with_prefix("server.serverproxy")`` gives
        ``server.serverproxy.access_denied``; an error coded ``client.bad_request`` keeps its code.
        """
        first = self.code.split(".", 1)[0]
        if first in {"client", "server", "signer"}:
            return self
        err = XRoadError(
            f"{normalize_fault_code(prefix)}.{self.code}",
            self.message,
            details=self.details,
            detail=self.detail,
            kind=self.kind,
            http_status=self.http_status,
        )
        err.__cause__ = self.__cause__
        return err

    def has_code(self, code: str) -> bool:
        """True when this error's code ends with ``code`` (compared in the lowercase form)."""
        wanted = normalize_fault_code(code)
        return self.code == wanted or self.code.endswith("." + wanted)
