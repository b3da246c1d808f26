"""WSDL 1.1 descriptions read as X-Road's ``WsdlParser`` reads them: one service per operation.

For every ``wsdl:service/wsdl:port`` whose binding is SOAP (1.1 or 1.2) over HTTP, each operation of the
binding becomes a service: its code is the operation's name, its version the text of the binding
operation's ``version`` element (``xrd:version``; X-Road matches the local name only), its title the
``title`` in the port type operation's ``wsdl:documentation``, its URL the port's ``soap:address``.
Imports are not followed (X-Road turns ``javax.wsdl.importDocuments`` off).

Example::

    >>> from pathlib import Path
    >>> from security_server.servicedesc.wsdl import parse_wsdl
    >>> wsdl = Path("tests/data/xroad/soap/wsdl/ss-admin/valid.wsdl").read_bytes()
    >>> parsed = parse_wsdl(wsdl, source_url="http://127.0.0.1:8080/valid.wsdl")
    >>> sorted((s.code, s.version) for s in parsed.services)[0]
    ('xroadBigAttachment', 'v1')

Refused: anything :func:`xroad_mn.xmlsafe.parse` refuses (DOCTYPE, entities, over
:data:`MAX_DESCRIPTION_BYTES`) and a document that is not WSDL 1.1, whose bindings or port types do not
resolve, that has an operation twice in one binding or no SOAP-over-HTTP operation at all
(``invalid_wsdl``); service codes or versions that are not X-Road identifiers (in strict mode unless
``strict`` is false: the node's ``strict_identifier_checks``) or are reserved
(``invalid_wsdl_service_identifier``); service URLs that are not ``http(s)`` (``invalid_service_url``). When
several ports carry the same operation and version (a SOAP 1.1 and a SOAP 1.2 port, say), the first in
document order is kept.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from security_server.db.checks import MAX_TEXT_CHARS, check_code
from security_server.db.models import DescriptionType
from security_server.db.records import NewService
from security_server.ids import STRICT_SETTING, strict_only
from security_server.servicedesc.model import (
    MAX_DESCRIPTION_BYTES,
    RESERVED_SERVICE_CODES,
    ParsedDescription,
    check_service_url,
    description_error,
)
from xroad_mn import xmlsafe
from xroad_mn.errors import FaultCode, XRoadError

__all__ = ["HTTP_TRANSPORT", "MAX_OPERATIONS", "WSDL_NS", "parse_wsdl"]

WSDL_NS: Final = "http://schemas.xmlsoap.org/wsdl/"
SOAP11_NS: Final = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP12_NS: Final = "http://schemas.xmlsoap.org/wsdl/soap12/"
HTTP_TRANSPORT: Final = "http://schemas.xmlsoap.org/soap/http"
MAX_OPERATIONS: Final = 5000
"""Most services (operation and version pairs) in one WSDL."""

_W = "{" + WSDL_NS + "}"
_BINDINGS: Final = frozenset({f"{{{SOAP11_NS}}}binding", f"{{{SOAP12_NS}}}binding"})
_ADDRESSES: Final = frozenset({f"{{{SOAP11_NS}}}address", f"{{{SOAP12_NS}}}address"})


def _invalid(message: str, **details: str | int | None) -> XRoadError:
    return description_error(FaultCode.INVALID_WSDL, message, **details)


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _named(root: etree._Element, tag: str) -> dict[str, etree._Element]:
    out: dict[str, etree._Element] = {}
    for element in root.iterchildren(_W + tag):
        name = element.get("name")
        if not name:
            raise _invalid(f"a wsdl:{tag} has no name")
        if name in out:
            raise _invalid(f"WSDL violates specification: wsdl:{tag} {name[:80]!r} is defined twice")
        out[name] = element
    return out


def _resolve(
    element: etree._Element, attribute: str, target_ns: str, named: dict[str, etree._Element]
) -> etree._Element:
    """The element ``named`` that ``element``'s QName-valued ``attribute`` refers to (in this document)."""
    value = (element.get(attribute) or "").strip()
    prefix, _, local = value.rpartition(":")
    namespace = element.nsmap.get(prefix or None)
    if not local or (prefix and namespace is None) or (namespace or "") != target_ns or local not in named:
        raise _invalid(
            f"wsdl:{_local(element)} {element.get('name', '')[:80]!r} refers to {attribute} {value[:80]!r}, "
            "which this document does not define",
        )
    return named[local]


def _soap_over_http(binding: etree._Element) -> bool:
    """X-Road's ``hasSoapOverHttpBinding``: the first SOAP binding element decides."""
    for child in binding.iterchildren(*_BINDINGS):
        return (child.get("transport") or "") == HTTP_TRANSPORT
    return False


def _address(port: etree._Element) -> str | None:
    for child in port.iterchildren(*_ADDRESSES):
        return child.get("location")
    return None


def _child_text(parent: etree._Element | None, localname: str, *, skip_ns: str | None = None) -> str | None:
    """The trimmed text of ``parent``'s first child element named ``localname`` (any namespace but
    ``skip_ns``), ``None`` when there is none or it is empty (X-Road's ``getChildValue``)."""
    if parent is None:
        return None
    for child in parent.iterchildren("*"):
        if _local(child) == localname and etree.QName(child).namespace != skip_ns:
            text = (child.text or "").strip()
            return text or None
    return None


def _operations(port_type: etree._Element) -> dict[str, etree._Element]:
    out: dict[str, etree._Element] = {}
    for operation in port_type.iterchildren(_W + "operation"):
        name = operation.get("name") or ""
        if name in out:
            raise _invalid(f"WSDL violates specification: duplicate operation with name={name[:80]}")
        out[name] = operation
    return out


def _shown(values: list[str]) -> str:
    return ", ".join(repr(v[:80]) for v in values[:10])


def _check_identifiers(services: list[NewService], strict: bool) -> None:
    bad: list[str] = []
    strict_bad: list[str] = []
    for service in services:
        for part, value in (("serviceCode", service.code), ("serviceVersion", service.version)):
            if value is None:
                continue
            try:
                check_code(part, value, strict=strict)
            except XRoadError as e:
                (strict_bad if strict_only(e) else bad).append(value)
        if service.code in RESERVED_SERVICE_CODES:
            bad.append(service.code)
    if bad or strict_bad:
        refused = bad + strict_bad
        message = f"the WSDL has service codes or versions X-Road does not allow: {_shown(refused)}"
        if strict_bad:
            message += f" ({_shown(strict_bad)} in strict mode only: node setting {STRICT_SETTING} = true)"
        raise description_error(
            FaultCode.INVALID_WSDL_SERVICE_IDENTIFIER,
            message,
            identifiers=" ".join(b[:80] for b in refused[:10]),
            **({"setting": STRICT_SETTING} if strict_bad else {}),
        )


def _check_title(title: str | None, code: str) -> str | None:
    if title is not None and (
        len(title) > MAX_TEXT_CHARS
        or any((ord(c) < 0x20 and c not in "\t\n\r") or c == "\x7f" for c in title)
    ):
        raise _invalid(f"the title of operation {code[:80]!r} is too long or has control characters")
    return title


def parse_wsdl(document: bytes, *, source_url: str, strict: bool = True) -> ParsedDescription:
    """Read a WSDL 1.1 ``document`` fetched from ``source_url``: its operations as services, their codes
    and versions under X-Road's strict identifier checks unless ``strict`` is false.

    Raises ``XRoadError`` (see the module's documentation).
    """
    try:
        root = xmlsafe.parse(
            document, code=FaultCode.INVALID_WSDL, what="the WSDL", max_bytes=MAX_DESCRIPTION_BYTES
        )
    except XRoadError as e:
        raise _invalid(e.message) from e
    if root.tag != _W + "definitions":
        raise _invalid(f"the document is not a WSDL 1.1 definitions element but {str(root.tag)[:120]!r}")
    target_ns = root.get("targetNamespace") or ""
    port_types = _named(root, "portType")
    bindings = _named(root, "binding")
    found: dict[tuple[str, str | None], NewService] = {}
    for service in root.iterchildren(_W + "service"):
        for port in service.iterchildren(_W + "port"):
            binding = _resolve(port, "binding", target_ns, bindings)
            if not _soap_over_http(binding):
                continue
            url = _address(port)
            abstract = _operations(_resolve(binding, "type", target_ns, port_types))
            seen: set[str] = set()
            for operation in binding.iterchildren(_W + "operation"):
                name = operation.get("name") or ""
                if name in seen:
                    raise _invalid(f"WSDL violates specification: duplicate operation with name={name[:80]}")
                seen.add(name)
                version = _child_text(operation, "version", skip_ns=WSDL_NS)
                # An operation the port type lacks has no title (WSDL4J adds it to the port type undefined).
                documentation = None
                if name in abstract:
                    documentation = next(abstract[name].iterchildren(_W + "documentation"), None)
                title = _check_title(_child_text(documentation, "title"), name)
                found.setdefault((name, version), NewService(name, version=version, url=url, title=title))
                if len(found) > MAX_OPERATIONS:
                    raise _invalid(f"the WSDL has more than {MAX_OPERATIONS} operations")
    services = list(found.values())
    if not services:
        raise _invalid("the WSDL has no operation bound to SOAP over HTTP")
    _check_identifiers(services, strict)
    bad_urls = [
        s.url for s in services if s.url is not None and not s.url.startswith(("http://", "https://"))
    ]
    if bad_urls:
        raise description_error(
            FaultCode.INVALID_SERVICE_URL,
            f"service URL {bad_urls[0][:120]!r} is not http(s)",
            url=bad_urls[0][:200],
        )
    for s in services:
        if s.url is not None:
            check_service_url(s.url)
    return ParsedDescription(DescriptionType.WSDL, source_url, None, tuple(services))
