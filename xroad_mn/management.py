"""X-Road management requests (PR-MSERV): build, parse and verify them, and the registry's answer.

A security server asks the central registry to register an authentication certificate, a client, a new
owner and so on with a *management request*: an X-Road SOAP message whose ``service`` header names the
management service provider and the request type (``authCertReg``, ``clientReg``, ...), whose ``client``
header is the security server's owner member, and whose body is ``<xroad:TYPE>`` from ``request.xsd``.
Most types travel as ``multipart/related`` with the SOAP part first, then signature parts carrying a
``signature-algorithm-id`` MIME header with a Java algorithm name (``SHA512withRSA``), the signer's
certificate and its OCSP response, as ``GenericClientRequest`` and ``AuthCertRegRequest`` lay them out.
``clientDeletion`` and ``authCertDeletion`` are plain ``text/xml`` SOAP.

Everything here is sans-I/O: bytes in, bytes or typed objects out.

Example::

    >>> from datetime import UTC, datetime
    >>> from xroad_mn.identifiers import MemberId
    >>> from xroad_mn.management import (
    ...     ClientRegRequest, MemberSigner, build_management_request, verify_management_request,
    ...     build_management_response, parse_management_response,
    ... )
    >>> owner = MemberId("MN", "GOV", "5012345")
    >>> provider = MemberId("MN", "GOV", "1000001").subsystem("management")
    >>> req = ClientRegRequest(owner.server("ss1"), owner.subsystem("civil-registry"))
    >>> signer = MemberSigner(sign_key, sign_cert, ocsp_der)                    # doctest: +SKIP
    >>> built = build_management_request(
    ...     req, sender=owner, service_provider=provider, signer=signer)      # doctest: +SKIP
    >>> verified = verify_management_request(
    ...     built.body, built.content_type, trust=trust, service_provider=provider,
    ...     at=datetime.now(UTC))                                                # doctest: +SKIP
    >>> verified.request == req                                                  # doctest: +SKIP
    True
    >>> answer = build_management_response(verified.soap, request_id=413)      # doctest: +SKIP
    >>> parse_management_response(answer).request_id                            # doctest: +SKIP
    413

Who signs (``ManagementRequestVerifier`` and its decoder callbacks):

* ``authCertReg``: the new authentication key (proof of possession, RSA only) **and** the server owner's
  signing key; parts: SOAP, auth signature, owner signature, auth certificate, owner certificate, OCSP.
* ``clientReg``, ``ownerChange``, ``clientDisable``, ``clientEnable``, ``clientRename``: the member that owns
  the client (the new owner for ``ownerChange``); parts: SOAP, signature, certificate, OCSP.
* ``addressChange``, ``maintenanceModeEnable``, ``maintenanceModeDisable``: the server owner, same parts.
* ``clientDeletion``, ``authCertDeletion``: unsigned SOAP (the X-Road message signature covers them).

Verification (:func:`verify_management_request`) fails closed and never returns a partial result. Steps:
0. structure (size bounds, MIME, safe XML, headers, body schema); 1. management service address and
instance; 2. sender is the server owner; 3. for ``authCertReg``: the authentication certificate (approved
CA, validity, key usage, equal to the one in the body) and the proof-of-possession signature; 4. signature
value over the exact SOAP part bytes; 5. signing certificate: key usage and chain to an approved CA at the
verification time; 6. OCSP response authorised, fresh and good; 7. member binding: the certificate names
the member that must sign; 8. address syntax. Codes follow X-Road: ``invalid_soap`` (envelope),
``invalid_request`` (body, parts, sender, binding), ``invalid_client_identifier`` (server id),
``invalid_signature_value``, ``cert_validation``, ``invalid_cert_path``, ``incorrect_validation_info``,
``request_too_large``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import secrets
import string
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, Final, Literal, TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from xroad_mn import algorithms, xmlsafe
from xroad_mn.algorithms import Signer
from xroad_mn.certs import MAX_CERTIFICATE_BYTES, load_der_certificate
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import ApprovedCA, TrustMaterial
from xroad_mn.identifiers import (
    ID_NS,
    ClientId,
    MemberId,
    SecurityServerId,
    ServiceId,
    SubsystemId,
    client_id_from_xml,
    server_id_from_xml,
    service_id_from_xml,
    to_xml,
)
from xroad_mn.keys import key_type
from xroad_mn.mime import MimePart, boundary_of, split_header_params, split_multipart
from xroad_mn.ocsp import MAX_OCSP_RESPONSE_BYTES
from xroad_mn.validation import CertificateValidator
from xroad_mn.wire.faults import SOAP_ENV_NS, parse_soap_fault

__all__ = [
    "MAX_MANAGEMENT_REQUEST_BYTES",
    "MAX_MIME_PARTS",
    "MAX_PART_HEADER_LINES",
    "MAX_SOAP_BYTES",
    "MAX_TEXT_CHARS",
    "MAX_XML_DEPTH",
    "PROTOCOL_VERSION",
    "SIGNATURE_ALGORITHM_HEADER",
    "XROAD_NS",
    "AddressChangeRequest",
    "AuthCertDeletionRequest",
    "AuthCertRegRequest",
    "BuiltManagementRequest",
    "ClientDeletionRequest",
    "ClientDisableRequest",
    "ClientEnableRequest",
    "ClientRegRequest",
    "ClientRenameRequest",
    "MaintenanceModeDisableRequest",
    "MaintenanceModeEnableRequest",
    "ManagementHeader",
    "ManagementRequest",
    "ManagementRequestType",
    "ManagementResponse",
    "MemberSigner",
    "OwnerChangeRequest",
    "ParsedManagementRequest",
    "SignaturePart",
    "VerifiedManagementRequest",
    "build_management_request",
    "build_management_response",
    "build_management_soap",
    "management_header",
    "parse_management_request",
    "parse_management_response",
    "required_signer",
    "verify_management_request",
    "verify_parsed_management_request",
    "xml_depth_exceeds",
]

XROAD_NS: Final = "http://x-road.eu/xsd/xroad.xsd"
PROTOCOL_VERSION: Final = "4.0"
SIGNATURE_ALGORITHM_HEADER: Final = "signature-algorithm-id"
"""MIME header of a signature part (``MimeUtils.HEADER_SIG_ALGO_ID``); its value is a Java algorithm name."""

MAX_MANAGEMENT_REQUEST_BYTES: Final = 512 * 1024
"""Largest management request read; a real ``authCertReg`` with two certificates and OCSP is about 10 kB."""
MAX_SOAP_BYTES: Final = 128 * 1024
"""Largest SOAP part; a management SOAP message is 1-4 kB."""
MAX_MIME_PARTS: Final = 8
"""Most MIME parts read; ``authCertReg`` has six."""
MAX_PART_HEADER_LINES: Final = 16
"""Most header lines in one MIME part."""
MAX_TEXT_CHARS: Final = 1024
"""Longest free-text field (address, subsystem name, maintenance message)."""
MAX_XML_DEPTH: Final = 16
"""Deepest element nesting accepted in the SOAP part; a management message is five levels deep."""

_MAX_DOMAIN_CHARS: Final = 253
_MAX_LABEL_CHARS: Final = 63
_SOAP_CONTENT_TYPE: Final = "text/xml; charset=UTF-8"
_BINARY: Final = "application/octet-stream"
_BOUNDARY_ALPHABET: Final = string.ascii_letters + string.digits
_LABEL_OK: Final = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?$")
_PROTOCOL_VERSION_OK: Final = re.compile(r"^4\.")

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | Signer
"""A ``cryptography`` private key, or a :class:`~xroad_mn.algorithms.Signer` (a token's key, never seen)."""
DigestName = Literal["SHA256", "SHA384", "SHA512"]


def _soap(name: str) -> str:
    return f"{{{SOAP_ENV_NS}}}{name}"


def _xrd(name: str) -> str:
    return f"{{{XROAD_NS}}}{name}"


def _invalid(message: str, code: str = FaultCode.INVALID_REQUEST) -> XRoadError:
    return XRoadError(code, message)


# --------------------------------------------------------------------------------------------------------
# Request types


class ManagementRequestType(StrEnum):
    """Service codes of the management services (``ManagementRequestType.getServiceCode``)."""

    AUTH_CERT_REG = "authCertReg"
    AUTH_CERT_DELETION = "authCertDeletion"
    CLIENT_REG = "clientReg"
    CLIENT_DELETION = "clientDeletion"
    CLIENT_DISABLE = "clientDisable"
    CLIENT_ENABLE = "clientEnable"
    CLIENT_RENAME = "clientRename"
    OWNER_CHANGE = "ownerChange"
    ADDRESS_CHANGE = "addressChange"
    MAINTENANCE_MODE_ENABLE = "maintenanceModeEnable"
    MAINTENANCE_MODE_DISABLE = "maintenanceModeDisable"


@dataclass(frozen=True)
class AuthCertRegRequest:
    """Register ``auth_cert`` (DER) for ``server`` at ``address`` (``AuthCertRegRequestType``)."""

    TYPE: ClassVar[ManagementRequestType] = ManagementRequestType.AUTH_CERT_REG
    server: SecurityServerId
    address: str
    auth_cert: bytes
    dry_run: bool = False


@dataclass(frozen=True)
class AuthCertDeletionRequest:
    """Delete ``auth_cert`` (DER) from ``server`` (``AuthCertDeletionRequestType``)."""

    TYPE: ClassVar[ManagementRequestType] = ManagementRequestType.AUTH_CERT_DELETION
    server: SecurityServerId
    auth_cert: bytes


@dataclass(frozen=True)
class ClientRegRequest:
    """Register ``client`` on ``server`` (``ClientRegRequestType``)."""

    TYPE: ClassVar[ManagementRequestType] = ManagementRequestType.CLIENT_REG
    server: SecurityServerId
    client: ClientId
    subsystem_name: str | None = None


@dataclass(frozen=True)
class ClientDeletionRequest:
    """Remove ``client`` from ``server`` (``ClientRequestType``)."""

    TYPE: ClassVar[ManagementRequestType] = ManagementRequestType.CLIENT_DELETION
    server: SecurityServerId
    client: ClientId


@dataclass(frozen=True)
class ClientDisableRequest:
    """Disable ``client`` on ``server`` (``ClientRequestType``)."""

    TYPE: ClassVar[ManagementRequestType] = ManagementRequestType.CLIENT_DISABLE
    server: SecurityServerId
    client: ClientId


@dataclass(frozen=True)
class ClientEnableRequest:
    """Enable ``client`` on ``server`` again (``ClientRequestType``)."""

    TYPE: ClassVar[ManagementRequestType] = ManagementRequestType.CLIENT_ENABLE
    server: SecurityServerId
    client: ClientId


@dataclass(frozen=True)
class ClientRenameRequest:
    """Give subsystem ``client`` on ``server`` the name ``subsystem_name`` (``ClientRenameRequestType``)."""

    TYPE: ClassVar[ManagementRequestType] = ManagementRequestType.CLIENT_RENAME
    server: SecurityServerId
    client: ClientId
    subsystem_name: str


@dataclass(frozen=True)
class OwnerChangeRequest:
    """Make member ``client`` the new owner of ``server`` (``ClientRequestType``)."""

    TYPE: ClassVar[ManagementRequestType] = ManagementRequestType.OWNER_CHANGE
    server: SecurityServerId
    client: MemberId


@dataclass(frozen=True)
class AddressChangeRequest:
    """Change the address of ``server`` (``AddressChangeRequestType``)."""

    TYPE: ClassVar[ManagementRequestType] = ManagementRequestType.ADDRESS_CHANGE
    server: SecurityServerId
    address: str


@dataclass(frozen=True)
class MaintenanceModeEnableRequest:
    """Put ``server`` into maintenance mode (``MaintenanceModeEnableRequestType``)."""

    TYPE: ClassVar[ManagementRequestType] = ManagementRequestType.MAINTENANCE_MODE_ENABLE
    server: SecurityServerId
    message: str | None = None


@dataclass(frozen=True)
class MaintenanceModeDisableRequest:
    """Take ``server`` out of maintenance mode (``MaintenanceModeDisableRequestType``)."""

    TYPE: ClassVar[ManagementRequestType] = ManagementRequestType.MAINTENANCE_MODE_DISABLE
    server: SecurityServerId


ManagementRequest: TypeAlias = (
    AuthCertRegRequest
    | AuthCertDeletionRequest
    | ClientRegRequest
    | ClientDeletionRequest
    | ClientDisableRequest
    | ClientEnableRequest
    | ClientRenameRequest
    | OwnerChangeRequest
    | AddressChangeRequest
    | MaintenanceModeEnableRequest
    | MaintenanceModeDisableRequest
)

_CLIENT_SIGNED: Final = frozenset(
    {
        ManagementRequestType.CLIENT_REG,
        ManagementRequestType.CLIENT_DISABLE,
        ManagementRequestType.CLIENT_ENABLE,
        ManagementRequestType.CLIENT_RENAME,
        ManagementRequestType.OWNER_CHANGE,
    }
)
_UNSIGNED: Final = frozenset(
    {ManagementRequestType.CLIENT_DELETION, ManagementRequestType.AUTH_CERT_DELETION}
)


def required_signer(request: ManagementRequest) -> MemberId | None:
    """The member whose signing key must sign ``request``; ``None`` for the unsigned deletion requests.

    ``authCertReg``, ``addressChange`` and the maintenance-mode requests: the server owner. Client requests:
    the member owning the client (for ``ownerChange`` the new owner).
    """
    if request.TYPE in _UNSIGNED:
        return None
    if isinstance(
        request, ClientRegRequest | ClientDisableRequest | ClientEnableRequest | ClientRenameRequest
    ):
        return request.client if isinstance(request.client, MemberId) else request.client.member
    if isinstance(request, OwnerChangeRequest):
        return request.client
    return request.server.owner


# --------------------------------------------------------------------------------------------------------
# Public data


@dataclass(frozen=True)
class ManagementHeader:
    """The X-Road SOAP header of a management request (PR-MESS)."""

    client: ClientId
    service: ServiceId
    query_id: str
    protocol_version: str = PROTOCOL_VERSION
    user_id: str | None = None
    issue: str | None = None


@dataclass(frozen=True)
class MemberSigner:
    """A member's signing key, its certificate and a current OCSP response (DER) for that certificate."""

    private_key: PrivateKey
    certificate: x509.Certificate
    ocsp_response: bytes


@dataclass(frozen=True)
class SignaturePart:
    """A detached signature part: the Java algorithm name from its MIME header and the raw value."""

    algorithm: str
    value: bytes


@dataclass(frozen=True)
class BuiltManagementRequest:
    """A request ready to POST: ``Content-Type`` header value and body; ``soap`` is the signed SOAP part."""

    content_type: str
    body: bytes
    soap: bytes
    header: ManagementHeader
    request: ManagementRequest


@dataclass(frozen=True)
class ParsedManagementRequest:
    """A structurally valid management request whose signatures are not yet checked."""

    header: ManagementHeader
    request: ManagementRequest
    soap: bytes
    signature: SignaturePart | None = None
    signing_certificate: bytes | None = None
    ocsp_response: bytes | None = None
    auth_signature: SignaturePart | None = None
    auth_certificate: bytes | None = None


@dataclass(frozen=True)
class VerifiedManagementRequest:
    """A management request whose every signature, certificate and OCSP response has been verified."""

    header: ManagementHeader
    request: ManagementRequest
    soap: bytes
    signer: MemberId | None
    """The member whose signing certificate signed the request (``None`` for unsigned deletion requests)."""
    signing_certificate: x509.Certificate | None
    approved_ca: ApprovedCA | None
    auth_certificate: x509.Certificate | None = None


@dataclass(frozen=True)
class ManagementResponse:
    """The registry's answer: echoed header, request type and the registry's request id."""

    header: ManagementHeader
    request_type: ManagementRequestType
    request_id: int | None


# --------------------------------------------------------------------------------------------------------
# Signature algorithms (Java names, ``SignAlgorithm``)

_JAVA_ALGORITHMS: Final = frozenset(
    f"{digest}with{kind}"
    for digest in ("SHA256", "SHA384", "SHA512")
    for kind in ("RSA", "RSAandMGF1", "ECDSA")
)


def _scheme(name: str) -> algorithms.SignatureScheme:
    if name not in _JAVA_ALGORITHMS:
        raise _invalid(f"unsupported signature algorithm {name[:40]!r}")
    return algorithms.scheme(name, code=FaultCode.INVALID_REQUEST)


def _algorithm_for(key: PrivateKey, digest: DigestName, *, pss: bool) -> str:
    if key_type(key) == "rsa":
        return f"{digest}with{'RSAandMGF1' if pss else 'RSA'}"
    return f"{digest}withECDSA"


def _sign(key: PrivateKey, algorithm: str, data: bytes) -> bytes:
    """ECDSA values come out ASN.1 DER, as ``Signatures.useAsn1DerFormat``."""
    return algorithms.sign(key, _scheme(algorithm), data)


def _verify_value(cert: x509.Certificate, part: SignaturePart, data: bytes, what: str) -> None:
    algorithms.verify(
        cert,
        _scheme(part.algorithm),
        part.value,
        data,
        code=FaultCode.INVALID_SIGNATURE_VALUE,
        key_mismatch_code=FaultCode.INVALID_REQUEST,
        what=what,
    )


# --------------------------------------------------------------------------------------------------------
# Building


def _text_el(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, _xrd(name)).text = text


def _body_fields(body: etree._Element, request: ManagementRequest) -> None:
    to_xml(request.server, _xrd("server"), parent=body)
    if isinstance(request, AuthCertRegRequest):
        _text_el(body, "address", request.address)
        _text_el(body, "authCert", base64.b64encode(request.auth_cert).decode("ascii"))
        if request.dry_run:
            _text_el(body, "dryRun", "true")
    elif isinstance(request, AuthCertDeletionRequest):
        _text_el(body, "authCert", base64.b64encode(request.auth_cert).decode("ascii"))
    elif isinstance(request, AddressChangeRequest):
        _text_el(body, "address", request.address)
    elif isinstance(request, MaintenanceModeEnableRequest):
        if request.message is not None:
            _text_el(body, "message", request.message)
    elif isinstance(request, MaintenanceModeDisableRequest):
        pass
    else:
        to_xml(request.client, _xrd("client"), parent=body)
        name = request.subsystem_name if isinstance(request, ClientRegRequest | ClientRenameRequest) else None
        if name is not None:
            _text_el(body, "subsystemName", name)


def management_header(
    request: ManagementRequest,
    *,
    sender: MemberId,
    service_provider: ClientId,
    query_id: str | None = None,
    user_id: str | None = None,
) -> ManagementHeader:
    """The header of ``request`` from the server owner ``sender`` to the management service provider."""
    if sender != request.server.owner:
        raise _invalid(f"sender {sender} is not the owner of {request.server}")
    return ManagementHeader(
        client=sender,
        service=ServiceId(
            service_provider.instance,
            service_provider.member_class,
            service_provider.member_code,
            service_provider.subsystem_code if isinstance(service_provider, SubsystemId) else None,
            str(request.TYPE),
        ),
        query_id=query_id if query_id is not None else str(uuid.uuid4()),
        user_id=user_id,
    )


def build_management_soap(header: ManagementHeader, request: ManagementRequest) -> bytes:
    """The SOAP part of a management request: the bytes every signature covers."""
    if header.service.service_code != str(request.TYPE):
        raise _invalid(f"service code {header.service.service_code!r} does not match {request.TYPE}")
    nsmap = {"SOAP-ENV": SOAP_ENV_NS, "id": ID_NS, "xroad": XROAD_NS}
    env = etree.Element(_soap("Envelope"), nsmap=nsmap)
    head = etree.SubElement(env, _soap("Header"))
    to_xml(header.client, _xrd("client"), parent=head)
    to_xml(header.service, _xrd("service"), parent=head)
    if header.user_id is not None:
        _text_el(head, "userId", header.user_id)
    _text_el(head, "id", header.query_id)
    if header.issue is not None:
        _text_el(head, "issue", header.issue)
    _text_el(head, "protocolVersion", header.protocol_version)
    body = etree.SubElement(etree.SubElement(env, _soap("Body")), _xrd(str(request.TYPE)))
    _body_fields(body, request)
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def _new_boundary() -> str:
    return "xroad" + "".join(secrets.choice(_BOUNDARY_ALPHABET) for _ in range(24))


def _multipart(soap: bytes, parts: Sequence[tuple[bytes, str | None]], boundary: str) -> bytes:
    """Lay the parts out as Jetty's ``MultiPartOutputStream`` does (CRLF line ends, binary content)."""
    dash = b"--" + boundary.encode("ascii")
    out = [dash, b"\r\nContent-Type: ", _SOAP_CONTENT_TYPE.encode("ascii"), b"\r\n\r\n", soap]
    for content, algorithm in parts:
        out += [b"\r\n", dash, b"\r\nContent-Type: ", _BINARY.encode("ascii"), b"\r\n"]
        if algorithm is not None:
            out += [SIGNATURE_ALGORITHM_HEADER.encode("ascii"), b": ", algorithm.encode("ascii"), b"\r\n"]
        out += [b"\r\n", content]
    out += [b"\r\n", dash, b"--\r\n"]
    return b"".join(out)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def build_management_request(
    request: ManagementRequest,
    *,
    sender: MemberId,
    service_provider: ClientId,
    signer: MemberSigner | None = None,
    auth_key: rsa.RSAPrivateKey | Signer | None = None,
    query_id: str | None = None,
    user_id: str | None = None,
    digest: DigestName = "SHA512",
    rsa_pss: bool = False,
    boundary: str | None = None,
) -> BuiltManagementRequest:
    """Build the management request ``request`` sent by the server owner ``sender``.

    ``service_provider`` is the management service provider from global configuration
    (``managementRequestServiceProviderId``); the ``service`` header is it plus the request type.
    ``signer`` is the signing key, certificate and OCSP response of :func:`required_signer`'s member;
    ``auth_key`` is the private key of the authentication certificate (``authCertReg`` only). The unsigned
    deletion requests come out as ``text/xml``, the others as ``multipart/related``.
    """
    header = management_header(
        request, sender=sender, service_provider=service_provider, query_id=query_id, user_id=user_id
    )
    soap = build_management_soap(header, request)
    if request.TYPE in _UNSIGNED:
        return BuiltManagementRequest(_SOAP_CONTENT_TYPE, soap, soap, header, request)
    if signer is None:
        raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, f"{request.TYPE} must be signed: no signer given")
    parts: list[tuple[bytes, str | None]] = []
    if isinstance(request, AuthCertRegRequest):
        if auth_key is None:
            raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, "authCertReg needs the authentication key")
        auth_public = x509.load_der_x509_certificate(request.auth_cert).public_key()
        if auth_public != auth_key.public_key():
            raise XRoadError(
                FaultCode.CANNOT_CREATE_SIGNATURE,
                "the authentication key does not match the auth certificate",
            )
        auth_alg = _algorithm_for(auth_key, digest, pss=rsa_pss)
        parts.append((_sign(auth_key, auth_alg, soap), auth_alg))
    sign_alg = _algorithm_for(signer.private_key, digest, pss=rsa_pss)
    parts.append((_sign(signer.private_key, sign_alg, soap), sign_alg))
    if isinstance(request, AuthCertRegRequest):
        parts.append((request.auth_cert, None))
    parts += [(_der(signer.certificate), None), (signer.ocsp_response, None)]
    mark = boundary if boundary is not None else _new_boundary()
    boundary_of({"boundary": mark}, code=FaultCode.INVALID_REQUEST, what="the MIME boundary")
    content_type = f'multipart/related; type="{_BINARY}"; charset=UTF-8; boundary={mark}'
    return BuiltManagementRequest(content_type, _multipart(soap, parts, mark), soap, header, request)


# --------------------------------------------------------------------------------------------------------
# MIME


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    """A Content-Type's media type (lower-cased, as media types compare) and its parameters."""
    mime, params = split_header_params(value)
    return mime.lower(), params


def _mime_parts(body: bytes, content_type: str) -> list[MimePart]:
    mime, params = _content_type(content_type)
    if mime in ("text/xml", "application/xml"):
        return [MimePart(MappingProxyType({"content-type": content_type}), 0, len(body), body)]
    if mime != "multipart/related":
        raise XRoadError(FaultCode.INVALID_CONTENT_TYPE, f"unexpected content type {mime[:60]!r}")
    boundary = boundary_of(params, code=FaultCode.INVALID_CONTENT_TYPE, what="multipart content type")
    return split_multipart(
        body,
        boundary,
        code=FaultCode.INVALID_REQUEST,
        what="request",
        max_parts=MAX_MIME_PARTS,
        max_header_lines=MAX_PART_HEADER_LINES,
    )


def _check_binary_part(part: MimePart, index: int) -> None:
    ctype, _ = _content_type(part.headers.get("content-type", _BINARY))
    if ctype != _BINARY:
        raise _invalid(f"MIME part {index} is {ctype[:60]!r}, expected {_BINARY}")
    encoding = part.headers.get("content-transfer-encoding", "binary").lower()
    if encoding not in ("binary", "8bit"):
        raise _invalid(f"MIME part {index} has unsupported transfer encoding {encoding[:20]!r}")


# --------------------------------------------------------------------------------------------------------
# SOAP parsing


def _parse_xml(data: bytes, what: str) -> etree._Element:
    if len(data) > MAX_SOAP_BYTES:
        raise XRoadError(FaultCode.REQUEST_TOO_LARGE, f"{what} is larger than {MAX_SOAP_BYTES} bytes")
    root = xmlsafe.parse(
        data, code=FaultCode.INVALID_SOAP, what=what, max_bytes=None, remove_comments=True, remove_pis=True
    )
    if xml_depth_exceeds(root, MAX_XML_DEPTH):
        raise XRoadError(FaultCode.INVALID_SOAP, f"{what} nests deeper than {MAX_XML_DEPTH} levels")
    return root


def xml_depth_exceeds(root: etree._Element, limit: int) -> bool:
    """Whether an element below ``root`` has more than ``limit`` ancestors.

    One walk over the tree (start and end events with a depth counter): O(n) in the elements, and it
    stops at the first element past the limit, whatever the number of siblings.
    """
    depth = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            depth += 1
            if depth - 1 > limit:  # the root has no ancestors
                return True
        else:
            depth -= 1
    return False


def _elements(parent: etree._Element, what: str, code: str) -> list[etree._Element]:
    if parent.text is not None and parent.text.strip():
        raise XRoadError(code, f"{what} contains stray text")
    out: list[etree._Element] = []
    for ch in parent:
        if ch.tail is not None and ch.tail.strip():
            raise XRoadError(code, f"{what} contains stray text")
        if isinstance(ch.tag, str):
            out.append(ch)
    return out


def _text_of(el: etree._Element, name: str, code: str = FaultCode.INVALID_REQUEST) -> str:
    if len(el):
        raise XRoadError(code, f"{name} must contain only text")
    text = el.text or ""
    if len(text) > MAX_TEXT_CHARS:
        raise XRoadError(code, f"{name} is longer than {MAX_TEXT_CHARS} characters")
    return text


_HEADER_FIELDS: Final = ("client", "service", "id", "userId", "issue", "protocolVersion")


def _parse_header(envelope: etree._Element) -> ManagementHeader:
    head = envelope.find(_soap("Header"))
    if head is None:
        raise XRoadError(FaultCode.MISSING_HEADER, "SOAP message has no header")
    found: dict[str, etree._Element] = {}
    for el in _elements(head, "SOAP header", FaultCode.INVALID_SOAP):
        q = etree.QName(el)
        if q.namespace != XROAD_NS or q.localname not in _HEADER_FIELDS:
            continue  # other X-Road headers (requestHash, securityServer, ...) carry nothing we use
        if q.localname in found:
            raise XRoadError(FaultCode.DUPLICATE_HEADER_FIELD, f"header field {q.localname} appears twice")
        found[q.localname] = el
    for name in ("client", "service", "id", "protocolVersion"):
        if name not in found:
            raise XRoadError(FaultCode.MISSING_HEADER_FIELD, f"required header field {name} is missing")
    client = client_id_from_xml(found["client"], strict=False)
    service = service_id_from_xml(found["service"], strict=False)
    query_id = _text_of(found["id"], "id", FaultCode.INVALID_SOAP).strip()
    if not query_id:
        raise XRoadError(FaultCode.MISSING_HEADER_FIELD, "header field id is empty")
    version = _text_of(found["protocolVersion"], "protocolVersion", FaultCode.INVALID_SOAP).strip()
    if not _PROTOCOL_VERSION_OK.match(version):
        raise XRoadError(FaultCode.INVALID_PROTOCOL_VERSION, f"unsupported protocol version {version[:20]!r}")
    user_id = _text_of(found["userId"], "userId", FaultCode.INVALID_SOAP) if "userId" in found else None
    issue = _text_of(found["issue"], "issue", FaultCode.INVALID_SOAP) if "issue" in found else None
    return ManagementHeader(client, service, query_id, version, user_id, issue)


def _body_element(envelope: etree._Element) -> etree._Element:
    children = _elements(envelope, "SOAP envelope", FaultCode.INVALID_SOAP)
    names = [c.tag for c in children]
    if names not in ([_soap("Header"), _soap("Body")], [_soap("Body")]):
        raise XRoadError(FaultCode.INVALID_SOAP, "SOAP envelope must hold an optional Header, then a Body")
    body = children[-1]
    content = _elements(body, "SOAP body", FaultCode.INVALID_SOAP)
    if len(content) != 1:
        raise XRoadError(FaultCode.MISSING_BODY, "SOAP body must contain exactly one element")
    return content[0]


# Body schemas (request.xsd): (field, required) in sequence order; requestId may close every type.
_FIELDS: Final[Mapping[ManagementRequestType, tuple[tuple[str, bool], ...]]] = MappingProxyType(
    {
        ManagementRequestType.AUTH_CERT_REG: (
            ("server", True),
            ("address", False),
            ("authCert", True),
            ("dryRun", False),
        ),
        ManagementRequestType.AUTH_CERT_DELETION: (("server", True), ("authCert", True)),
        ManagementRequestType.CLIENT_REG: (("server", True), ("client", True), ("subsystemName", False)),
        ManagementRequestType.CLIENT_DELETION: (("server", True), ("client", True)),
        ManagementRequestType.CLIENT_DISABLE: (("server", True), ("client", True)),
        ManagementRequestType.CLIENT_ENABLE: (("server", True), ("client", True)),
        ManagementRequestType.CLIENT_RENAME: (("server", True), ("client", True), ("subsystemName", True)),
        ManagementRequestType.OWNER_CHANGE: (("server", True), ("client", True)),
        ManagementRequestType.ADDRESS_CHANGE: (("server", True), ("address", True)),
        ManagementRequestType.MAINTENANCE_MODE_ENABLE: (("server", True), ("message", False)),
        ManagementRequestType.MAINTENANCE_MODE_DISABLE: (("server", True),),
    }
)


def _request_type(name: str, code: str = FaultCode.INVALID_REQUEST) -> ManagementRequestType:
    try:
        return ManagementRequestType(name)
    except ValueError as e:
        raise XRoadError(code, f"unknown management request type {name[:40]!r}") from e


def _body_values(
    el: etree._Element, rtype: ManagementRequestType, *, response: bool
) -> dict[str, etree._Element]:
    children = _elements(el, str(rtype), FaultCode.INVALID_REQUEST)
    schema = (*_FIELDS[rtype], ("requestId", response))
    values: dict[str, etree._Element] = {}
    i = 0
    for name, required in schema:
        if i < len(children) and children[i].tag == _xrd(name):
            values[name] = children[i]
            i += 1
        elif required:
            raise _invalid(f"{rtype} has no {name}")
    if i < len(children):
        raise _invalid(f"{rtype} has an unexpected element {str(children[i].tag)[:80]!r}")
    return values


def _cert_b64(el: etree._Element, name: str) -> bytes:
    if len(el):
        raise _invalid(f"{name} must contain only text")
    raw = el.text or ""
    if len(raw) > 2 * MAX_CERTIFICATE_BYTES:
        raise _invalid(f"{name} is too large")
    try:
        der = base64.b64decode("".join(raw.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise _invalid(f"{name} is not base64") from e
    if not der:
        raise _invalid(f"{name} is empty")
    return der


def _server(el: etree._Element) -> SecurityServerId:
    try:
        return server_id_from_xml(el, strict=False)
    except XRoadError as e:
        # ManagementRequestVerificationUtils.validateServerId
        raise XRoadError(
            FaultCode.INVALID_CLIENT_IDENTIFIER,
            f"the management request contains an invalid server identifier: {e.message}",
        ) from e


def _bool(el: etree._Element, name: str) -> bool:
    text = _text_of(el, name).strip()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise _invalid(f"{name} is not a boolean")


def _request_from(values: Mapping[str, etree._Element], rtype: ManagementRequestType) -> ManagementRequest:
    server = _server(values["server"])

    def client() -> ClientId:
        return client_id_from_xml(values["client"], strict=False)

    def text(name: str) -> str | None:
        return _text_of(values[name], name) if name in values else None

    T = ManagementRequestType
    if rtype is T.AUTH_CERT_REG:
        dry = _bool(values["dryRun"], "dryRun") if "dryRun" in values else False
        return AuthCertRegRequest(
            server, text("address") or "", _cert_b64(values["authCert"], "authCert"), dry
        )
    if rtype is T.AUTH_CERT_DELETION:
        return AuthCertDeletionRequest(server, _cert_b64(values["authCert"], "authCert"))
    if rtype is T.CLIENT_REG:
        return ClientRegRequest(server, client(), text("subsystemName"))
    if rtype is T.CLIENT_DELETION:
        return ClientDeletionRequest(server, client())
    if rtype is T.CLIENT_DISABLE:
        return ClientDisableRequest(server, client())
    if rtype is T.CLIENT_ENABLE:
        return ClientEnableRequest(server, client())
    if rtype is T.CLIENT_RENAME:
        return ClientRenameRequest(server, client(), text("subsystemName") or "")
    if rtype is T.OWNER_CHANGE:
        owner = client()
        if not isinstance(owner, MemberId):
            raise XRoadError(FaultCode.INVALID_CLIENT_IDENTIFIER, "the new owner must be a member")
        return OwnerChangeRequest(server, owner)
    if rtype is T.ADDRESS_CHANGE:
        return AddressChangeRequest(server, text("address") or "")
    if rtype is T.MAINTENANCE_MODE_ENABLE:
        return MaintenanceModeEnableRequest(server, text("message"))
    return MaintenanceModeDisableRequest(server)


def _parse_soap_request(soap: bytes) -> tuple[ManagementHeader, ManagementRequest]:
    envelope = _parse_xml(soap, "SOAP part")
    if envelope.tag != _soap("Envelope"):
        raise XRoadError(FaultCode.INVALID_SOAP, "SOAP part is not a SOAP 1.1 envelope")
    header = _parse_header(envelope)
    content = _body_element(envelope)
    q = etree.QName(content)
    if q.namespace != XROAD_NS:
        raise _invalid(f"body element {str(content.tag)[:80]!r} is not in namespace {XROAD_NS}")
    rtype = _request_type(q.localname)
    if header.service.service_code != q.localname:
        raise _invalid(
            f"service code {header.service.service_code[:40]!r} does not match body {q.localname!r}"
        )
    return header, _request_from(_body_values(content, rtype, response=False), rtype)


def _signature_part(part: MimePart, index: int, what: str) -> SignaturePart:
    _check_binary_part(part, index)
    algorithm = part.headers.get(SIGNATURE_ALGORITHM_HEADER, "")
    if not algorithm:
        raise _invalid(f"{what} signature algorithm id is missing")
    _scheme(algorithm)
    if not part.body:
        raise _invalid(f"{what} signature is missing")
    return SignaturePart(algorithm, part.body)


def _data_part(part: MimePart, index: int, what: str, limit: int) -> bytes:
    _check_binary_part(part, index)
    if not part.body:
        raise _invalid(f"{what} is missing")
    if len(part.body) > limit:
        raise _invalid(f"{what} is larger than {limit} bytes")
    return part.body


def parse_management_request(body: bytes, content_type: str) -> ParsedManagementRequest:
    """Step 0 of verification: read the MIME layout, SOAP header and body of a management request.

    Checks structure only; :func:`verify_parsed_management_request` checks the signatures. Any problem
    raises :class:`XRoadError`; nothing partial is returned.
    """
    if not isinstance(body, bytes | bytearray) or not isinstance(content_type, str):
        raise _invalid("management request must be bytes with a content type")
    if len(body) > MAX_MANAGEMENT_REQUEST_BYTES:
        raise XRoadError(
            FaultCode.REQUEST_TOO_LARGE,
            f"management request is larger than {MAX_MANAGEMENT_REQUEST_BYTES} bytes",
        )
    parts = _mime_parts(bytes(body), content_type)
    soap_part = parts[0]
    soap_type, params = _content_type(soap_part.headers.get("content-type", ""))
    if soap_type not in ("text/xml", "application/xml"):
        raise XRoadError(
            FaultCode.INVALID_CONTENT_TYPE, f"first MIME part is {soap_type[:60]!r}, not text/xml"
        )
    if params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise XRoadError(FaultCode.INVALID_CONTENT_TYPE, "SOAP part must be UTF-8")
    header, request = _parse_soap_request(soap_part.body)
    extra = parts[1:]
    rtype = request.TYPE
    if rtype in _UNSIGNED:
        if extra:
            raise _invalid(f"{rtype} carries unexpected MIME parts")
        return ParsedManagementRequest(header, request, soap_part.body)
    expected = 5 if rtype is ManagementRequestType.AUTH_CERT_REG else 3
    if len(extra) != expected:
        raise _invalid(f"{rtype} must carry {expected} parts after the SOAP part, found {len(extra)}")
    if rtype is ManagementRequestType.AUTH_CERT_REG:
        return ParsedManagementRequest(
            header,
            request,
            soap_part.body,
            auth_signature=_signature_part(extra[0], 1, "auth"),
            signature=_signature_part(extra[1], 2, "owner"),
            auth_certificate=_data_part(extra[2], 3, "auth certificate", MAX_CERTIFICATE_BYTES),
            signing_certificate=_data_part(extra[3], 4, "owner certificate", MAX_CERTIFICATE_BYTES),
            ocsp_response=_data_part(extra[4], 5, "owner certificate OCSP", MAX_OCSP_RESPONSE_BYTES),
        )
    return ParsedManagementRequest(
        header,
        request,
        soap_part.body,
        signature=_signature_part(extra[0], 1, "client"),
        signing_certificate=_data_part(extra[1], 2, "client certificate", MAX_CERTIFICATE_BYTES),
        ocsp_response=_data_part(extra[2], 3, "client certificate OCSP", MAX_OCSP_RESPONSE_BYTES),
    )


# --------------------------------------------------------------------------------------------------------
# Verification


def _load_cert(der: bytes, what: str) -> x509.Certificate:
    try:
        cert = load_der_certificate(der)
        cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as e:
        raise XRoadError(FaultCode.INCORRECT_CERTIFICATE, f"{what} is not a DER certificate") from e
    return cert


def _valid_address(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        pass
    try:
        ascii_name = address.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return False
    name = ascii_name[:-1] if ascii_name.endswith(".") else ascii_name
    if not name or len(name) > _MAX_DOMAIN_CHARS:
        return False
    labels = name.split(".")
    if any(len(label) > _MAX_LABEL_CHARS or not _LABEL_OK.match(label) for label in labels):
        return False
    return not labels[-1][0].isdigit()  # Guava: the public suffix never starts with a digit


def verify_parsed_management_request(
    parsed: ParsedManagementRequest, *, trust: TrustMaterial, service_provider: ClientId, at: datetime
) -> VerifiedManagementRequest:
    """Steps 1-8 of :func:`verify_management_request` on an already parsed request."""
    header, request = parsed.header, parsed.request
    # 1. Addressed to this registry's management service, from a member of this instance.
    provider = header.service
    if (provider.instance, provider.member_class, provider.member_code, provider.subsystem_code) != (
        service_provider.instance,
        service_provider.member_class,
        service_provider.member_code,
        service_provider.subsystem_code if isinstance(service_provider, SubsystemId) else None,
    ) or provider.service_version is not None:
        raise _invalid("invalid management service address; contact the central server administrator")
    if header.client.instance != trust.instance:
        raise _invalid(f"sender {header.client} is not a member of instance {trust.instance}")
    # 2. The sender is the server owner.
    if header.client != request.server.owner:
        raise _invalid("sender does not match server owner")
    expected = required_signer(request)
    if expected is None:
        return VerifiedManagementRequest(header, request, parsed.soap, None, None, None)
    if parsed.signature is None or parsed.signing_certificate is None or parsed.ocsp_response is None:
        raise _invalid(f"{request.TYPE} is not signed")
    validator = CertificateValidator(trust)
    auth_cert: x509.Certificate | None = None
    # 3. authCertReg: the authentication certificate and the proof of possession of its key.
    if isinstance(request, AuthCertRegRequest):
        if parsed.auth_signature is None or parsed.auth_certificate is None:
            raise _invalid("authCertReg carries no auth signature or auth certificate")
        auth_cert = _load_cert(parsed.auth_certificate, "auth certificate")
        try:
            validator.validate_authentication(auth_cert, at=at)
        except XRoadError as e:
            raise XRoadError(
                FaultCode.CERT_VALIDATION, f"authentication certificate is not valid: {e.message}"
            ) from e
        if parsed.auth_certificate != request.auth_cert:
            raise XRoadError(FaultCode.CERT_VALIDATION, "authentication certificates do not match")
        if not parsed.auth_signature.algorithm.endswith(("withRSA", "withRSAandMGF1")):
            raise _invalid("proof of possession must be an RSA signature")
        _verify_value(auth_cert, parsed.auth_signature, parsed.soap, "auth signature")
    # 4. Signature value over the exact SOAP part bytes.
    cert = _load_cert(parsed.signing_certificate, "signing certificate")
    _verify_value(cert, parsed.signature, parsed.soap, "owner signature")
    # 5-7. Signing certificate: key usage and chain to an approved CA of this instance at `at`; its OCSP
    #      response authorised, fresh and good; member binding (the certificate names the member that must
    #      sign), in the management verifier's order and codes.
    signer = validator.validate_signer(
        cert,
        ocsp_responses=(parsed.ocsp_response,),
        at=at,
        expected_member=expected,
        instance=trust.instance,
        ocsp_scope="leaf",
        order="management",
    )
    # 8. Address syntax (IP address or domain name).
    if isinstance(request, AuthCertRegRequest | AddressChangeRequest) and not _valid_address(request.address):
        raise _invalid("invalid server address")
    return VerifiedManagementRequest(
        header, request, parsed.soap, signer.member, cert, signer.approved_ca, auth_cert
    )


def verify_management_request(
    body: bytes, content_type: str, *, trust: TrustMaterial, service_provider: ClientId, at: datetime
) -> VerifiedManagementRequest:
    """Parse and verify a management request at time ``at``; raise :class:`XRoadError` on any failure.

    ``service_provider`` is the management service provider the registry answers for; ``trust`` the
    approved CAs and OCSP freshness of the registry's own instance. See the module docstring for the steps.
    """
    parsed = parse_management_request(body, content_type)
    return verify_parsed_management_request(parsed, trust=trust, service_provider=service_provider, at=at)


# --------------------------------------------------------------------------------------------------------
# Response


def build_management_response(request_soap: bytes, request_id: int) -> bytes:
    """The registry's answer (``ManagementRequestUtil.toResponse``): the request's header copied as it was,
    the body element renamed ``TYPEResponse`` with its fields echoed and ``requestId`` appended."""
    if request_id < 0:
        raise _invalid("request id must not be negative")
    envelope = _parse_xml(request_soap, "request SOAP")
    _parse_header(envelope)
    content = _body_element(envelope)
    q = etree.QName(content)
    if q.namespace != XROAD_NS:
        raise _invalid("request body is not a management request")
    rtype = _request_type(q.localname)
    content.tag = _xrd(f"{rtype}Response")
    for old in content.findall(_xrd("requestId")):
        content.remove(old)
    etree.SubElement(content, _xrd("requestId")).text = str(request_id)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


def parse_management_response(data: bytes, *, request: ManagementHeader | None = None) -> ManagementResponse:
    """Read the registry's answer; a SOAP fault is raised as the :class:`XRoadError` it carries.

    With ``request``, the echoed header must match it (``SoapUtils.checkConsistency``), else
    ``inconsistent_response``.
    """
    if len(data) > MAX_SOAP_BYTES:
        raise XRoadError(
            FaultCode.REQUEST_TOO_LARGE, f"management response is larger than {MAX_SOAP_BYTES} bytes"
        )
    envelope = _parse_xml(data, "management response")
    if envelope.tag != _soap("Envelope"):
        raise XRoadError(FaultCode.INVALID_SOAP, "management response is not a SOAP 1.1 envelope")
    body = envelope.find(_soap("Body"))
    if body is not None and body.find(_soap("Fault")) is not None:
        raise parse_soap_fault(data)
    header = _parse_header(envelope)
    content = _body_element(envelope)
    q = etree.QName(content)
    if q.namespace != XROAD_NS or not q.localname.endswith("Response"):
        raise XRoadError(FaultCode.INVALID_SOAP, f"unexpected response element {str(content.tag)[:80]!r}")
    rtype = _request_type(q.localname.removesuffix("Response"), FaultCode.INVALID_SOAP)
    if header.service.service_code != str(rtype):
        raise XRoadError(FaultCode.INCONSISTENT_RESPONSE, "response body does not match its service code")
    id_el = content.find(_xrd("requestId"))
    request_id: int | None = None
    if id_el is not None:
        text = _text_of(id_el, "requestId", FaultCode.INVALID_SOAP).strip()
        if not text.isascii() or not text.isdigit() or len(text) > 18:
            raise XRoadError(FaultCode.INVALID_SOAP, "requestId is not a non-negative integer")
        request_id = int(text)
    if request is not None and (
        header.client != request.client
        or header.service != request.service
        or header.query_id != request.query_id
        or header.user_id != request.user_id
        or header.issue != request.issue
        or header.protocol_version != request.protocol_version
    ):
        raise XRoadError(FaultCode.INCONSISTENT_RESPONSE, "response header does not match the request")
    return ManagementResponse(header, rtype, request_id)
