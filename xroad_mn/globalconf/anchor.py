"""Configuration anchors: where to download global configuration and which keys sign it.

An anchor (``configuration-anchor.xml``) names an X-Road instance and one or more configuration sources
(central server nodes), each with a download URL and the certificates whose keys sign the configuration
directory. Its integrity is checked out of band by its hash: SHA-224 of the file bytes, which the central
server UI shows as colon-separated upper-case hex and the security server UI without colons.

Example::

    >>> from pathlib import Path
    >>> from xroad_mn.globalconf.anchor import parse_anchor, anchor_hash
    >>> data = Path("configuration-anchor.xml").read_bytes()  # doctest: +SKIP
    >>> anchor = parse_anchor(data)  # doctest: +SKIP
    >>> anchor.instance, [s.download_url for s in anchor.sources]  # doctest: +SKIP
    ('DEV', ['http://cs/internalconf', 'https://cs/internalconf'])
    >>> anchor_hash(data)  # doctest: +SKIP
    '54:70:AF:FE:...:7C:C7'

Building one (what a registry distributes)::

    >>> from datetime import datetime, UTC
    >>> xml = build_anchor("MN", [("http://cs/internalconf", [cert])], datetime.now(UTC))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf._xml import (
    XROAD_NS,
    b64_text,
    child_text,
    children,
    decode_certificate,
    local_name,
    parse_safe_xml,
)

__all__ = [
    "MAX_ANCHOR_SOURCES",
    "AnchorSource",
    "ConfigurationAnchor",
    "anchor_element",
    "anchor_from_element",
    "anchor_hash",
    "anchor_hash_hex",
    "build_anchor",
    "parse_anchor",
]

MAX_ANCHOR_SOURCES: Final = 64
"""Most configuration sources one anchor may list (a CS cluster has a handful of nodes)."""
MAX_VERIFICATION_CERTS: Final = 64
"""Most verification certificates one source may list."""

_CODE: Final = FaultCode.MALFORMED_ANCHOR
_ID_NS: Final = "http://x-road.eu/xsd/identifiers"


@dataclass(frozen=True)
class AnchorSource:
    """One configuration source: the directory URL and the certificates whose keys sign it."""

    download_url: str
    verification_certs: tuple[x509.Certificate, ...]


@dataclass(frozen=True)
class ConfigurationAnchor:
    """A parsed configuration anchor.

    Two anchors are equal when they name the same instance and the same sources (URLs and certificates in
    order); ``generated_at`` and the file hash do not take part, as in X-Road's ``ConfigurationAnchor``.
    """

    instance: str
    sources: tuple[AnchorSource, ...]
    generated_at: datetime | None = field(default=None, compare=False)
    file_hash: str | None = field(default=None, compare=False)
    """SHA-224 of the file bytes (colon-separated upper-case hex) when parsed from a file."""

    @property
    def verification_certs(self) -> tuple[x509.Certificate, ...]:
        """Every verification certificate of every source, without duplicates, in order."""
        seen: list[x509.Certificate] = []
        for source in self.sources:
            for cert in source.verification_certs:
                if cert not in seen:
                    seen.append(cert)
        return tuple(seen)

    def find_certificate(self, cert_hash: bytes, algorithm: str = "sha512") -> x509.Certificate | None:
        """The verification certificate whose DER hashes (``hashlib`` name) to ``cert_hash``, if any."""
        for cert in self.verification_certs:
            if hashlib.new(algorithm, cert.public_bytes(Encoding.DER)).digest() == cert_hash:
                return cert
        return None


def anchor_hash(data: bytes) -> str:
    """The anchor hash as the central server shows it: SHA-224 of the bytes, ``AB:CD:...`` upper hex."""
    return ":".join(f"{b:02X}" for b in hashlib.sha224(data).digest())


def anchor_hash_hex(data: bytes) -> str:
    """The anchor hash as the security server admin UI shows it: SHA-224, upper hex, no colons."""
    return hashlib.sha224(data).hexdigest().upper()


def _parse_generated_at(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as e:
        raise XRoadError(_CODE, f"generatedAt {text[:40]!r} is not an ISO 8601 time") from e
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def anchor_from_element(
    root: etree._Element, *, code: str = _CODE, strict: bool = True
) -> ConfigurationAnchor:
    """Read a ``ConfigurationAnchorType`` element (an anchor file's root or private-params' entries).

    With ``strict=False`` (federation anchors inside private-params, which X-Road stores without
    decoding), verification certificates that are not certificates are left out instead of failing.
    """
    instance = child_text(root, "instanceIdentifier", code)
    assert instance is not None
    generated_text = child_text(root, "generatedAt", code, required=False)
    generated_at = _parse_generated_at(generated_text) if generated_text else None
    sources: list[AnchorSource] = []
    for src in children(root, "source"):
        if len(sources) >= MAX_ANCHOR_SOURCES:
            raise XRoadError(code, f"anchor lists more than {MAX_ANCHOR_SOURCES} sources")
        url = child_text(src, "downloadURL", code)
        assert url is not None
        certs: list[x509.Certificate] = []
        for cert_el in children(src, "verificationCert"):
            if len(certs) >= MAX_VERIFICATION_CERTS:
                raise XRoadError(code, f"a source lists more than {MAX_VERIFICATION_CERTS} certificates")
            try:
                certs.append(decode_certificate(cert_el.text or "", code, "verificationCert"))
            except XRoadError:
                if strict:
                    raise
        if not certs and strict:
            raise XRoadError(code, f"source {url[:80]!r} has no verificationCert")
        sources.append(AnchorSource(url, tuple(certs)))
    if not sources:
        raise XRoadError(code, "anchor has no source")
    return ConfigurationAnchor(instance, tuple(sources), generated_at)


def parse_anchor(data: bytes) -> ConfigurationAnchor:
    """Parse a configuration anchor file; anything unusable is ``malformed_anchor``.

    Accepts the current format and the legacy one without ``generatedAt``. The root must be
    ``configurationAnchor`` (in the X-Road namespace or none); children are read by local name.
    """
    root = parse_safe_xml(data, _CODE, "configuration anchor")
    if local_name(root) != "configurationAnchor" or etree.QName(root).namespace not in (XROAD_NS, None):
        raise XRoadError(_CODE, f"root element is {local_name(root)!r}, not configurationAnchor")
    anchor = anchor_from_element(root)
    return ConfigurationAnchor(anchor.instance, anchor.sources, anchor.generated_at, anchor_hash(data))


def _format_time(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def anchor_element(
    tag: str,
    instance: str,
    sources: Iterable[tuple[str, Sequence[x509.Certificate]]],
    generated_at: datetime | None,
    *,
    parent: etree._Element | None = None,
) -> etree._Element:
    """A ``ConfigurationAnchorType`` element named ``tag`` (Clark notation), appended to ``parent``."""
    if parent is None:
        el = etree.Element(tag, nsmap={"ns2": _ID_NS, "ns3": XROAD_NS})
    else:
        el = etree.SubElement(parent, tag)
    if generated_at is not None:
        etree.SubElement(el, "generatedAt").text = _format_time(generated_at)
    etree.SubElement(el, "instanceIdentifier").text = instance
    for url, certs in sources:
        src = etree.SubElement(el, "source")
        etree.SubElement(src, "downloadURL").text = url
        for cert in certs:
            etree.SubElement(src, "verificationCert").text = b64_text(cert.public_bytes(Encoding.DER))
    return el


def build_anchor(
    instance: str,
    sources: Sequence[tuple[str, Sequence[x509.Certificate]]],
    generated_at: datetime,
) -> bytes:
    """Write a configuration anchor file in the layout the X-Road central server produces.

    Every source needs at least one certificate; the result parses back with :func:`parse_anchor`.
    """
    if not sources:
        raise XRoadError(_CODE, "an anchor needs at least one source")
    for url, certs in sources:
        if not url or not certs:
            raise XRoadError(_CODE, "every anchor source needs a download URL and a verification certificate")
    root = anchor_element(f"{{{XROAD_NS}}}configurationAnchor", instance, sources, generated_at)
    etree.indent(root, space="    ")
    body: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + body + b"\n"
