"""Checks of what people give the registry: names and other text, security server addresses, certificate
profiles.

The store applies these checks to every change, whether it comes from the admin API, the CLI or an approved
management request, so all three refuse the same input with the same 400 ``invalid_request``. Identifiers
people write (both forms X-Road shows) are read by :mod:`xroad_mn.identifiers`
(``parse_member_for_people`` and its kin), as the node reads them.

Example::

    >>> check_text("member name", "Улсын бүртгэлийн ерөнхий газар")
    'Улсын бүртгэлийн ерөнхий газар'
    >>> check_text("member name", "Ministry\\u202eevil")  # doctest: +SKIP
    Traceback (most recent call last):
    XRoadError: member name contains the bidirectional formatting character U+202E
    >>> check_server_address("ss1.example.mn:5500")
    'ss1.example.mn:5500'
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Final

from xroad_mn.certs import (
    BASIC_PROFILE,
    EJBCA_PROFILE,
    FIVRK_PROFILE,
    TEST_PROFILE,
    XROAD_MN_PROFILE,
    profile_for,
)
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError

__all__ = [
    "BIDI_CONTROLS",
    "KNOWN_CERTIFICATE_PROFILES",
    "check_certificate_profile",
    "check_server_address",
    "check_text",
]

BIDI_CONTROLS: Final = frozenset(
    "\u061c"  # ARABIC LETTER MARK
    "\u200e\u200f"  # LEFT-TO-RIGHT MARK, RIGHT-TO-LEFT MARK
    "\u202a\u202b\u202c\u202d\u202e"  # LRE, RLE, PDF, LRO, RLO
    "\u2066\u2067\u2068\u2069"  # LRI, RLI, FSI, PDI
)
"""Invisible characters that reorder the text around them ("Trojan Source"): a name holding one can show an
administrator something other than what global configuration and the audit log carry."""
_LINE_BREAKS: Final = frozenset("\n\r")
_LINE_SEPARATORS: Final = frozenset("\u2028\u2029\x85")

MAX_DOMAIN_CHARS: Final = 253
MAX_LABEL_CHARS: Final = 63
_LABEL: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")


def _invalid(message: str, what: str) -> XRoadError:
    return XRoadError(FaultCode.INVALID_REQUEST, message, details={"field": what}, kind=ErrorKind.BAD_INPUT)


def check_text(what: str, value: str, *, multiline: bool = False) -> str:
    """``value`` unless it holds a character that does not belong in a name or a one-line text: control
    characters (line breaks too, unless ``multiline``), line and paragraph separators, bidirectional
    formatting characters, surrogates and non-characters. Letters of any script are fine."""
    for c in value:
        if c in BIDI_CONTROLS:
            raise _invalid(f"{what} contains the bidirectional formatting character U+{ord(c):04X}", what)
        if multiline and c in _LINE_BREAKS | {"\t"}:
            continue
        category = unicodedata.category(c)
        if category in ("Cc", "Cs") or c in _LINE_SEPARATORS or (ord(c) & 0xFFFE) == 0xFFFE:
            kind = "a line break" if c in _LINE_BREAKS else f"the control or non-character U+{ord(c):04X}"
            raise _invalid(f"{what} contains {kind}", what)
    return value


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_name = host.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return False
    name = ascii_name.removesuffix(".")
    if not name or len(name) > MAX_DOMAIN_CHARS:
        return False
    labels = name.split(".")
    if any(len(label) > MAX_LABEL_CHARS or not _LABEL.match(label) for label in labels):
        return False
    return not labels[-1][0].isdigit()  # a top-level label never starts with a digit: 10.0.0.999 is no name


def _host_and_port(address: str) -> tuple[str, str | None] | None:
    if address.startswith("["):  # [IPv6] or [IPv6]:port
        inside, sep, rest = address[1:].partition("]")
        if not sep or not _is_ipv6(inside) or (rest and not rest.startswith(":")):
            return None
        return inside, rest[1:] if rest else None
    if address.count(":") == 1:
        host, port = address.split(":")
        return host, port
    return address, None  # a name, an IPv4 address or a bare IPv6 address


def _is_ipv6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
    except ValueError:
        return False


def check_server_address(address: str) -> str:
    """``address`` when it is ``host[:port]``: a host name (IDN allowed), an IPv4 address or an IPv6
    address (in brackets when a port follows), and a port from 1 to 65535. No scheme, path or user."""
    split = _host_and_port(address)
    ok = split is not None and _valid_host(split[0])
    if ok and split is not None and split[1] is not None:
        port = split[1]
        ok = port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535
    if not ok:
        raise _invalid(
            f"security server address {address[:80]!r} is not host[:port] (a host name or IP address and "
            "a port from 1 to 65535; no scheme, user or path)",
            "address",
        )
    return address


KNOWN_CERTIFICATE_PROFILES: Final = (
    EJBCA_PROFILE,
    BASIC_PROFILE,
    FIVRK_PROFILE,
    TEST_PROFILE,
    XROAD_MN_PROFILE,
)
"""The ``certificateProfileInfo`` class names :func:`xroad_mn.certs.profile_for` maps (EJBCA's first: the
layout of the development CA's subjects). Only X-Road's own classes load in a Java security server."""


def check_certificate_profile(class_name: str) -> str:
    """``class_name`` when it is one the core maps to a certificate profile, exactly as written."""
    try:
        known = profile_for(class_name, "XX").class_name == class_name  # the instance is not used here
    except XRoadError:
        known = False
    if not known:
        raise _invalid(
            f"certificate profile {class_name[:200]!r} is unknown; the known profiles are: "
            + ", ".join(KNOWN_CERTIFICATE_PROFILES),
            "certificate_profile_info",
        )
    return class_name
