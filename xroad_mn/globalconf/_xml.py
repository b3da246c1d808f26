"""Private XML and certificate plumbing shared by the global configuration parsers.

Example::

    >>> from xroad_mn.globalconf._xml import parse_safe_xml, local_name
    >>> from xroad_mn.errors import FaultCode
    >>> local_name(parse_safe_xml(b"<a:x xmlns:a='urn:a'/>", FaultCode.MALFORMED_GLOBALCONF, "conf"))
    'x'

The parser is :func:`xroad_mn.xmlsafe.parse`: it refuses DTDs outright (no internal subset, no entities, no
network), so an XXE payload never gets as far as entity expansion.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Final

from cryptography import x509
from lxml import etree

from xroad_mn import xmlsafe
from xroad_mn.errors import XRoadError

__all__ = [
    "MAX_XML_BYTES",
    "XROAD_NS",
    "b64_text",
    "child",
    "child_text",
    "children",
    "decode_b64",
    "decode_certificate",
    "local_name",
    "parse_safe_xml",
]

XROAD_NS: Final = "http://x-road.eu/xsd/xroad.xsd"
"""Namespace of the global configuration root elements (children are unqualified)."""
MAX_XML_BYTES: Final = 32 * 1024 * 1024
"""Largest parameter file or anchor we parse; real shared-params of big instances are a few MiB."""


def parse_safe_xml(data: bytes, code: str, what: str) -> etree._Element:
    """Parse ``data`` with :func:`xroad_mn.xmlsafe.parse` (at most :data:`MAX_XML_BYTES`; comments and
    processing instructions dropped, so element text is read whole); any failure is ``code``."""
    return xmlsafe.parse(
        data, code=code, what=what, max_bytes=MAX_XML_BYTES, remove_comments=True, remove_pis=True
    )


def local_name(el: etree._Element) -> str:
    """The element's name without its namespace ('' for comments and other non-elements)."""
    tag: object = el.tag
    if not isinstance(tag, str):
        return ""
    return etree.QName(tag).localname


def children(el: etree._Element, name: str) -> Iterator[etree._Element]:
    """Child elements named ``name`` (children of global configuration are unqualified; any ns is read)."""
    for c in el:
        if local_name(c) == name:
            yield c


def child(el: etree._Element, name: str) -> etree._Element | None:
    """The first child element named ``name``, or None."""
    return next(children(el, name), None)


def child_text(el: etree._Element, name: str, code: str, *, required: bool = True) -> str | None:
    """The stripped text of child ``name``; a missing or empty required child is ``code``."""
    c = child(el, name)
    text = (c.text or "").strip() if c is not None else ""
    if not text:
        if required:
            raise XRoadError(code, f"<{local_name(el)}> has no <{name}>", details={"element": name})
        return None
    return text


def decode_b64(text: str, code: str, what: str) -> bytes:
    """Strict base64 (whitespace between lines allowed) or ``code``."""
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as e:
        raise XRoadError(code, f"{what} is not valid base64") from e


def b64_text(data: bytes) -> str:
    """Base64 text of ``data`` (one line)."""
    return base64.b64encode(data).decode("ascii")


def decode_certificate(text: str, code: str, what: str) -> x509.Certificate:
    """A certificate from base64 of DER, or base64 of PEM text (both occur in real shared-params)."""
    try:
        raw = decode_b64(text, code, what)
    except XRoadError as e:
        raise XRoadError(code, f"{what}: certificate cannot be decoded: not valid base64") from e
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(raw.strip())
        return x509.load_der_x509_certificate(raw)
    except ValueError as e:
        raise XRoadError(code, f"{what}: certificate cannot be decoded: not an X.509 certificate: {e}") from e
