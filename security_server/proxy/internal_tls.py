"""The client proxy's HTTPS side (port 8443): the node's internal TLS certificate and IS authentication.

X-Road gives every security server an *internal TLS certificate*, self-signed and made at installation, that
information systems see when they call the client proxy over HTTPS. :func:`internal_tls_identity` makes it
once in ``HOME/internal-tls/`` (key ``0600``) and reads it afterwards. :func:`client_proxy_ssl_context`
serves it and asks the IS for a certificate: a client whose connection type is ``SSLAUTH`` is accepted only
with one of the certificates registered for it (X-Road's ``IsAuthentication``); those certificates are the
context's trust anchors (partial chains allowed, so an IS certificate issued by a CA works too), added with
:func:`trust_is_certificates` as they are registered. :func:`check_is_connection` applies each client's
connection type to a request::

    >>> cert_file, key_file = internal_tls_identity(home, "127.0.0.2")  # doctest: +SKIP
    >>> context = client_proxy_ssl_context(cert_file, key_file)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from security_server.db.models import ConnectionType
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import secure_directory, write_atomic, write_private
from xroad_mn.identifiers import ClientId, format_id

__all__ = [
    "INTERNAL_TLS_DIR",
    "check_is_connection",
    "client_proxy_ssl_context",
    "internal_tls_identity",
    "trust_is_certificates",
]

INTERNAL_TLS_DIR: Final = "internal-tls"
INTERNAL_TLS_DAYS: Final = 20 * 365
"""X-Road's internal TLS certificate lasts 20 years (``generate-certificate.sh``)."""
KEY_BITS: Final = 2048


def _make(cert_file: Path, key_file: Path, address: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    now = dt.datetime.now(dt.UTC)
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(address))
    except ValueError:
        alt = x509.DNSName(address)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=INTERNAL_TLS_DAYS))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    write_private(
        key_file,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    write_atomic(cert_file, cert.public_bytes(serialization.Encoding.PEM))


def internal_tls_identity(home: Path, address: str) -> tuple[Path, Path]:
    """The internal TLS certificate and key files of the node in ``home``, made on first use."""
    directory = home / INTERNAL_TLS_DIR
    secure_directory(directory, what="the internal TLS directory")
    cert_file, key_file = directory / "internal.crt", directory / "internal.key"
    if not (cert_file.is_file() and key_file.is_file()):
        _make(cert_file, key_file, address)
    return cert_file, key_file


def client_proxy_ssl_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """TLS 1.2 or later with the internal certificate; asks for (does not demand) an IS certificate,
    verified against the registered IS certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def trust_is_certificates(context: ssl.SSLContext, certificates: Iterable[x509.Certificate]) -> None:
    """Accept these IS certificates in TLS handshakes from now on (which client owns one is checked per
    request by :func:`check_is_connection`)."""
    pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certificates)
    if pem:
        context.load_verify_locations(cadata=pem)


def check_is_connection(
    client: ClientId,
    connection_type: ConnectionType,
    *,
    https: bool,
    is_certificate: x509.Certificate | None,
    registered: Iterable[x509.Certificate],
) -> None:
    """The IS connection must suit the client's connection type (X-Road's ``IsAuthentication``):
    ``SSLNOAUTH`` and ``SSLAUTH`` need HTTPS, ``SSLAUTH`` a registered certificate of this client."""
    if connection_type is ConnectionType.NOSSL:
        return
    if not https:
        raise XRoadError(
            FaultCode.SSL_AUTH_FAILED,
            f"Client {format_id(client)} specifies HTTPS but did not connect over HTTPS",
        )
    if connection_type is ConnectionType.SSLNOAUTH:
        return
    if is_certificate is None:
        raise XRoadError(
            FaultCode.SSL_AUTH_FAILED,
            f"Client {format_id(client)} specifies HTTPS but did not supply a TLS certificate",
        )
    if is_certificate not in set(registered):
        raise XRoadError(
            FaultCode.SSL_AUTH_FAILED,
            f"Client {format_id(client)}: the TLS certificate of the information system is not registered",
        )
