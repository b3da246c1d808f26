"""The subject a CSR asks for, in the layout of the CA's certificate profile (``certificateProfileInfo``).

Each builder is the inverse of the profile's parser in :mod:`xroad_mn.certs`: a signing certificate issued
with :func:`sign_subject`'s name maps back, through :func:`xroad_mn.certs.profile_for`, to the same member.
Layouts follow X-Road's ``*CertificateProfileInfo`` classes (signing certificate; authentication certificate):

- EJBCA and ``xroad_mn``: ``C=instance, O=member class, CN=member code``; ``C=instance, O=owner class,
  CN=server code, serialNumber=owner code``;
- Test: as EJBCA, for members of class ``BUSINESS`` of the CA's instance only (its parser reads no class);
- Basic: ``CN=O=member name, businessCategory=member class, serialNumber=member code``; ``CN=server DNS
  name, O=owner name, serialNumber=owner code``;
- FiVRK: ``C=FI, O=member name, serialNumber=instance/server code/member class, CN=member code``;
  ``C=FI, O=owner name, serialNumber=instance/server code/owner class, CN=server DNS name``.

X-Road's EJBCA auth profile names only C and CN; ``O`` and ``serialNumber`` are added so that the subject
names the security server completely (our CA's auth profile requires ``O``). Example::

    >>> from xroad_mn.certs import EJBCA_PROFILE
    >>> from xroad_mn.identifiers import MemberId
    >>> member = MemberId("MN", "GOV", "5012345")
    >>> sign_subject(EJBCA_PROFILE, "MN", member, server_code="ss1").rfc4514_string()
    'CN=5012345,O=GOV,C=MN'
    >>> auth_subject(EJBCA_PROFILE, "MN", member.server("ss1")).rfc4514_string()
    '2.5.4.5=5012345,CN=ss1,O=GOV,C=MN'
"""

from __future__ import annotations

import warnings
from typing import Final

from cryptography import x509
from cryptography.x509.oid import NameOID

from xroad_mn.certs import (
    BASIC_PROFILE,
    EJBCA_PROFILE,
    FIVRK_PROFILE,
    TEST_PROFILE,
    XROAD_MN_PROFILE,
    profile_for,
)
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import MemberId, SecurityServerId

__all__ = ["FI_COUNTRY", "TEST_MEMBER_CLASS", "auth_subject", "sign_subject"]

FI_COUNTRY: Final = "FI"
"""The country the FiVRK profile puts in C."""
TEST_MEMBER_CLASS: Final = "BUSINESS"
"""The only member class X-Road's test profile reads from a signing certificate."""
_EJBCA_LAYOUT: Final = frozenset({EJBCA_PROFILE, XROAD_MN_PROFILE, TEST_PROFILE})


def _unfit(message: str, class_name: str) -> XRoadError:
    return XRoadError(
        FaultCode.INVALID_CSR,
        message,
        details={"certificate_profile_info": class_name},
        kind=ErrorKind.BAD_INPUT,
    )


def _attr(oid: x509.ObjectIdentifier, value: str) -> x509.NameAttribute[str]:
    try:
        return x509.NameAttribute(oid, value)
    except ValueError as e:  # e.g. a common name longer than X.520's 64 characters
        raise XRoadError(
            FaultCode.INVALID_CSR, f"{value[:80]!r} does not fit the subject: {e}", kind=ErrorKind.BAD_INPUT
        ) from e


DISPLAY_NAME_BYTES: Final = 64
"""X.520's upper bound for a common or organisation name, as ``cryptography`` checks it: in UTF-8 bytes."""


def _display_name(name: str) -> str:
    """A member's name cut to what a CN or O holds (64 UTF-8 bytes: 32 Cyrillic letters) on a character
    boundary. The name is shown only; the member is identified by the other attributes."""
    encoded = name.encode("utf-8")
    if len(encoded) <= DISPLAY_NAME_BYTES:
        return name
    return encoded[:DISPLAY_NAME_BYTES].decode("utf-8", errors="ignore").rstrip()


def _country(value: str) -> x509.NameAttribute[str]:
    # X-Road's EJBCA layout puts the instance identifier in C; X.520 wants two characters, but instance
    # identifiers may be longer ("MN-DEV"). PrintableString holds every strict identifier character, so
    # longer values encode faithfully; cryptography warns about them, which is noise here.
    if len(value) == 2:
        return _attr(NameOID.COUNTRY_NAME, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return x509.NameAttribute(NameOID.COUNTRY_NAME, value, _validate=False)


def _known(class_name: str, ca_instance: str) -> str:
    name = class_name.strip()
    profile_for(name, ca_instance)  # incorrect_certificate for a profile we cannot read back
    return name


def sign_subject(
    class_name: str,
    ca_instance: str,
    member: MemberId,
    *,
    server_code: str,
    member_name: str | None = None,
) -> x509.Name:
    """The subject of a signing certificate for ``member`` under the profile ``class_name`` of a CA of
    ``ca_instance``; ``server_code`` is this node's (FiVRK writes it), ``member_name`` the member's name in
    global configuration (Basic and FiVRK write it; the member code stands in when it is unknown).

    ``invalid_csr`` when the profile cannot name ``member`` (so the certificate would map to another one).
    """
    name = _known(class_name, ca_instance)
    shown = _display_name(member_name or member.member_code)
    if name in _EJBCA_LAYOUT:
        if name == TEST_PROFILE and (
            member.member_class != TEST_MEMBER_CLASS or member.instance != ca_instance
        ):
            raise _unfit(
                f"the test profile names members of class {TEST_MEMBER_CLASS} of instance {ca_instance} only",
                name,
            )
        return x509.Name(
            [
                _country(member.instance),
                _attr(NameOID.ORGANIZATION_NAME, member.member_class),
                _attr(NameOID.COMMON_NAME, member.member_code),
            ]
        )
    if name == BASIC_PROFILE:
        if member.instance != ca_instance:
            raise _unfit(f"the basic profile names members of the CA's instance {ca_instance} only", name)
        return x509.Name(
            [
                _attr(NameOID.COMMON_NAME, shown),
                _attr(NameOID.ORGANIZATION_NAME, shown),
                _attr(NameOID.BUSINESS_CATEGORY, member.member_class),
                _attr(NameOID.SERIAL_NUMBER, member.member_code),
            ]
        )
    assert name == FIVRK_PROFILE  # every other name was refused by _known
    if "/" in member.instance or "/" in server_code or "/" in member.member_class:
        raise _unfit("the FiVRK profile's serialNumber cannot hold a '/' inside its parts", name)
    return x509.Name(
        [
            _country(FI_COUNTRY),
            _attr(NameOID.ORGANIZATION_NAME, shown),
            _attr(NameOID.SERIAL_NUMBER, f"{member.instance}/{server_code}/{member.member_class}"),
            _attr(NameOID.COMMON_NAME, member.member_code),
        ]
    )


def auth_subject(
    class_name: str,
    ca_instance: str,
    server: SecurityServerId,
    *,
    owner_name: str | None = None,
    dns_name: str | None = None,
) -> x509.Name:
    """The subject of the authentication certificate of ``server`` (this node) under the profile
    ``class_name``; ``dns_name`` is the node's address (Basic and FiVRK put it in CN; the server code stands
    in), ``owner_name`` the owner's name in global configuration (the member code stands in)."""
    name = _known(class_name, ca_instance)
    shown = _display_name(owner_name or server.member_code)
    host = dns_name or server.server_code
    if name in _EJBCA_LAYOUT:
        return x509.Name(
            [
                _country(server.instance),
                _attr(NameOID.ORGANIZATION_NAME, server.member_class),
                _attr(NameOID.COMMON_NAME, server.server_code),
                _attr(NameOID.SERIAL_NUMBER, server.member_code),
            ]
        )
    if name == BASIC_PROFILE:
        return x509.Name(
            [
                _attr(NameOID.COMMON_NAME, host),
                _attr(NameOID.SERIAL_NUMBER, server.member_code),
                _attr(NameOID.ORGANIZATION_NAME, shown),
            ]
        )
    assert name == FIVRK_PROFILE
    return x509.Name(
        [
            _country(FI_COUNTRY),
            _attr(NameOID.ORGANIZATION_NAME, shown),
            _attr(NameOID.SERIAL_NUMBER, f"{server.instance}/{server.server_code}/{server.member_class}"),
            _attr(NameOID.COMMON_NAME, host),
        ]
    )
