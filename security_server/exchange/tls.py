"""Mutual TLS between security servers (port 5500) on the node's authentication certificate.

Both sides present their authentication certificate; trust comes from global configuration only: the
verify roots are the approved CAs (top and intermediate) of the trust material, there is no hostname check,
and which security server and member a certificate stands for is decided above TLS
(:class:`security_server.exchange.peers.PeerTrust`). As X-Road: TLS 1.2 (``client-tls-protocols``) with
X-Road's cipher suites (``xroad-tls-ciphers``) in OpenSSL's names.

X-Road keeps authentication keys on the software token only. Python's ``ssl`` reads a private key only from a
file, so the key is handed over through an anonymous in-memory file (``memfd_create``, read as
``/proc/self/fd/N`` and closed right after): the clear key never reaches a disk. A PKCS#11 token cannot
serve TLS (``invalid_settings``).

Example::

    >>> key = await active_authentication_key(store)  # doctest: +SKIP
    >>> tls = NodeTlsContexts.create(token, key, trust)  # doctest: +SKIP
    >>> site = web.TCPSite(runner, "127.0.0.2", 5500, ssl_context=tls.server)  # doctest: +SKIP
    >>> connector = aiohttp.TCPConnector(ssl=tls.client)  # doctest: +SKIP
    >>> tls.update_trust(new_trust)  # a new global configuration: its CAs join the live contexts
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.db import CertificateStatus, KeyUsage
from security_server.db.keys import KeyStore
from xroad_mn.certs import issued_by, same_certificate
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import TrustMaterial
from xroad_mn.identifiers import SecurityServerId
from xroad_mn.tokens import SoftwareToken, Token
from xroad_mn.tokens.base import signer_error

__all__ = [
    "TLS_VERSION",
    "XROAD_TLS_CIPHERS",
    "AuthenticationKey",
    "NodeTlsContexts",
    "active_authentication_key",
    "client_ssl_context",
    "intermediate_chain",
    "load_authentication_key",
    "load_trust_roots",
    "server_ssl_context",
]

TLS_VERSION: Final = ssl.TLSVersion.TLSv1_2
"""X-Road's ``client-tls-protocols`` and the server proxy's protocol: TLSv1.2 only."""
XROAD_TLS_CIPHERS: Final = (
    "ECDHE-RSA-AES256-SHA384",  # TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384
    "DHE-RSA-AES256-SHA256",  # TLS_DHE_RSA_WITH_AES_256_CBC_SHA256
    "ECDHE-ECDSA-AES256-SHA384",  # TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384
)
"""X-Road's default ``xroad-tls-ciphers`` in OpenSSL's names."""
MAX_CHAIN_CERTIFICATES: Final = 8
"""Most CA certificates sent after the authentication certificate."""
_MEMFD_NAME: Final = "xroad-mn-tls-auth"


@dataclass(frozen=True)
class AuthenticationKey:
    """The node's authentication key in its token and the certificate TLS presents with it."""

    key_id: str
    certificate: x509.Certificate


async def active_authentication_key(
    store: KeyStore, server: SecurityServerId | None = None
) -> AuthenticationKey:
    """The authentication key whose certificate is active and registered (X-Road's ``getAuthKey``);
    ``signer.key_not_found`` when the node has none."""
    for key in await store.list_keys(KeyUsage.AUTHENTICATION):
        for cert in await store.list_certificates(key.key_id):
            if cert.active and cert.status is CertificateStatus.REGISTERED:
                return AuthenticationKey(key.key_id, cert.certificate)
    name = f" for security server '{server}'" if server is not None else ""
    raise signer_error(FaultCode.KEY_NOT_FOUND, f"Could not find active authentication key{name}")


def _ca_certificates(trust: TrustMaterial) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for ca in trust.approved_cas:
        for cert in ca.ca_certificates:
            if not any(same_certificate(cert, c) for c in out):
                out.append(cert)
    return out


def intermediate_chain(cert: x509.Certificate, trust: TrustMaterial) -> tuple[x509.Certificate, ...]:
    """The intermediate CAs of global configuration between ``cert`` and its approved top CA, nearest
    first (what a node sends along with its certificate: in TLS, in a signature)."""
    pool = [i for ca in trust.approved_cas for i in ca.intermediates]
    tops = trust.top_ca_certificates
    chain: list[x509.Certificate] = []
    current = cert
    while len(chain) < MAX_CHAIN_CERTIFICATES and not any(issued_by(current, top) for top in tops):
        issuer = next(
            (i for i in pool if issued_by(current, i) and not any(same_certificate(i, c) for c in chain)),
            None,
        )
        if issuer is None:
            break
        chain.append(issuer)
        current = issuer
    return tuple(chain)


def _pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def load_trust_roots(context: ssl.SSLContext, trust: TrustMaterial) -> None:
    """Add the approved CAs (top and intermediate) of ``trust`` to the verify roots of ``context``.

    OpenSSL cannot take a root out of a live context: a CA that global configuration withdraws stays a
    root of the handshake until the context is rebuilt, but :class:`~security_server.exchange.peers.PeerTrust`
    refuses its certificates from the next configuration on.
    """
    cas = _ca_certificates(trust)
    if not cas:
        raise XRoadError(
            FaultCode.GLOBAL_CONF_INVALID, "global configuration approves no CA: no TLS peer is trusted"
        )
    context.load_verify_locations(cadata=_pem(cas).decode("ascii"))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def load_authentication_key(
    context: ssl.SSLContext, token: Token, key: AuthenticationKey, trust: TrustMaterial
) -> None:
    """Present ``key`` (its certificate and the intermediate CAs above it) in ``context``.

    The key comes out of the software token only for this call and passes through an anonymous in-memory
    file, closed before returning.
    """
    if not isinstance(token, SoftwareToken):
        raise XRoadError(
            FaultCode.INVALID_SETTINGS,
            "TLS authentication keys must be on the software token (X-Road keeps authentication keys only "
            f"there); the node's token is {type(token).__name__}",
        )
    pem = _pem(
        [key.certificate, *intermediate_chain(key.certificate, trust)]
    ) + token.tls_authentication_key_pem(key.key_id)
    fd = os.memfd_create(_MEMFD_NAME, os.MFD_CLOEXEC)
    try:
        _write_all(fd, pem)
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    except (OSError, ssl.SSLError) as e:
        raise XRoadError(
            FaultCode.INTERNAL_ERROR, f"cannot load authentication key {key.key_id} into TLS: {e}"
        ) from e
    finally:
        os.close(fd)


def _context(protocol: int) -> ssl.SSLContext:
    context = ssl.SSLContext(protocol)
    context.minimum_version = TLS_VERSION
    context.maximum_version = TLS_VERSION
    context.set_ciphers(":".join(XROAD_TLS_CIPHERS))
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def server_ssl_context(token: Token, key: AuthenticationKey, trust: TrustMaterial) -> ssl.SSLContext:
    """The port 5500 context: presents ``key``, requires a client certificate that chains to an approved
    CA of ``trust``."""
    context = _context(ssl.PROTOCOL_TLS_SERVER)
    load_trust_roots(context, trust)
    load_authentication_key(context, token, key, trust)
    return context


def client_ssl_context(token: Token, key: AuthenticationKey, trust: TrustMaterial) -> ssl.SSLContext:
    """The context for connecting to other security servers: presents ``key``, requires a server
    certificate that chains to an approved CA of ``trust`` (no hostname check)."""
    context = _context(ssl.PROTOCOL_TLS_CLIENT)
    load_trust_roots(context, trust)
    load_authentication_key(context, token, key, trust)
    return context


class NodeTlsContexts:
    """The node's two TLS contexts, kept live: new CAs (:meth:`update_trust`) and a new authentication
    key (:meth:`update_key`) reach every connection made after the call."""

    def __init__(self, server: ssl.SSLContext, client: ssl.SSLContext, key: AuthenticationKey | None) -> None:
        self.server = server
        self.client = client
        self.key = key

    @classmethod
    def create(cls, token: Token, key: AuthenticationKey, trust: TrustMaterial) -> NodeTlsContexts:
        return cls(server_ssl_context(token, key, trust), client_ssl_context(token, key, trust), key)

    @classmethod
    def empty(cls) -> NodeTlsContexts:
        """Contexts with no key and no trusted CA yet: every handshake fails until :meth:`update_trust` and
        :meth:`update_key` (a node that is not registered yet serves port 5500 this way)."""
        return cls(_context(ssl.PROTOCOL_TLS_SERVER), _context(ssl.PROTOCOL_TLS_CLIENT), None)

    def update_trust(self, trust: TrustMaterial) -> None:
        """A new global configuration: load its approved CAs into both contexts."""
        for context in (self.server, self.client):
            load_trust_roots(context, trust)

    def update_key(self, token: Token, key: AuthenticationKey, trust: TrustMaterial) -> None:
        """Another authentication certificate became the active registered one: present it from now on."""
        for context in (self.server, self.client):
            load_authentication_key(context, token, key, trust)
        self.key = key
