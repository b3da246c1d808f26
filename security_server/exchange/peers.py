"""Other security servers: which ones serve a provider, whether a TLS certificate is theirs, and posting to
the fastest of them over mutual TLS (PR-MESSTRANSP §5.1, §5.2).

* :func:`provider_addresses` — every security server whose clients include the provider (its owner counts
  as a client), narrowed by ``X-Road-Security-Server``; servers in maintenance mode are left out.
* :class:`PeerTrust` — X-Road's ``CertHelper.verifyAuthCert`` for both directions: 1. an authentication
  certificate (key usage digitalSignature), 2. a chain to an approved CA of the member's instance
  (:meth:`~xroad_mn.validation.CertificateValidator.validate_authentication`), 3. good, fresh, authorised
  OCSP for the certificate and its intermediate CAs, 4. its hash is an ``authCertHash`` of a security server
  whose clients include the member. Verdicts are kept per (certificate, member) until the earliest OCSP
  freshness limit, nextUpdate or certificate expiry; a new global configuration (:meth:`PeerTrust.update`)
  forgets them. Failures are ``ssl_authentication_failed`` (chain and OCSP failures as
  ``ssl_authentication_failed.<cause>``, as X-Road prefixes them).
* :class:`PeerConnector` — an aiohttp session on the node's client TLS context with X-Road's pool limits.
  With several addresses it connects to all in parallel (shuffled) and keeps the fastest for
  ``fastest_connecting_uri_cache_seconds``; the server's certificate is checked (its OCSP downloaded from
  the server's port 5577 when no verdict is held) before any request body is sent to an address, and again
  on the connection that answered before its response is used.

Example::

    >>> trust = PeerTrust(trust_material, shared_params)  # doctest: +SKIP
    >>> async with PeerConnector(tls.client, trust) as peers:  # doctest: +SKIP
    ...     addresses = provider_addresses(shared_params, provider, None)
    ...     response = await peers.post(addresses, headers, body, provider=provider,
    ...                                 connect_timeout=30, response_timeout=None)
    ...     response.status, response.address
    (200, '127.0.0.3')
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import random
import ssl
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
from aiohttp.client_proto import ResponseHandler
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from multidict import CIMultiDictProxy

from security_server.exchange.tls import intermediate_chain
from xroad_mn.certs import issued_by, verify_auth_key_usage
from xroad_mn.errors import FaultCode, FaultPrefix, XRoadError
from xroad_mn.globalconf.params import SecurityServer, SharedParameters
from xroad_mn.globalconf.trust import ApprovedCA, TrustMaterial
from xroad_mn.identifiers import ClientId, SecurityServerId
from xroad_mn.mime import boundary_of, split_header_params, split_multipart
from xroad_mn.ocsp import MAX_OCSP_RESPONSE_BYTES, OCSP_RESPONSE_CONTENT_TYPE, verify_ocsp_response
from xroad_mn.transport.client import read_limited, request_payload
from xroad_mn.transport.server import http_url
from xroad_mn.validation import CertificateValidator

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_SECONDS",
    "FASTEST_CONNECTING_URI_CACHE_SECONDS",
    "MAX_CACHED_VERDICTS",
    "MAX_PEER_RESPONSE_BYTES",
    "OCSP_RESPONDER_PORT",
    "POOL_MAX_CONNECTIONS",
    "POOL_MAX_CONNECTIONS_PER_ROUTE",
    "PROXY_PORT",
    "PeerConnector",
    "PeerResponse",
    "PeerTrust",
    "PeerVerdict",
    "provider_addresses",
]

PROXY_PORT: Final = 5500
"""Where security servers take each other's messages."""
OCSP_RESPONDER_PORT: Final = 5577
FASTEST_CONNECTING_URI_CACHE_SECONDS: Final = 3600
"""X-Road's ``client-fastest-connecting-ssl-uri-cache-period``."""
DEFAULT_CONNECT_TIMEOUT_SECONDS: Final = 30.0
"""X-Road's ``client-timeout``: connecting to the provider's security server."""
OCSP_CONNECT_TIMEOUT_SECONDS: Final = 20.0
OCSP_READ_TIMEOUT_SECONDS: Final = 30.0
"""X-Road's ``ocsp-responder-client-connect/read-timeout``."""
POOL_MAX_CONNECTIONS: Final = 10_000
POOL_MAX_CONNECTIONS_PER_ROUTE: Final = 2500
"""X-Road's ``pool-total-max-connections`` and ``pool-total-default-max-connections-per-route``."""
MAX_CACHED_VERDICTS: Final = 4096
MAX_PEER_RESPONSE_BYTES: Final = 256 * 1024 * 1024
"""Largest transport response read from a peer."""
MAX_OCSP_DOWNLOAD_BYTES: Final = 16 * MAX_OCSP_RESPONSE_BYTES
MAX_CHAIN_OCSP: Final = 8


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _ssl_auth_failed(message: str, **details: str) -> XRoadError:
    return XRoadError(FaultCode.SSL_AUTH_FAILED, message, details=details)


def _prefixed(e: XRoadError) -> XRoadError:
    """X-Road's ``e.withPrefix(X_SSL_AUTH_FAILED)`` for chain and OCSP failures."""
    if e.code.startswith(FaultCode.SSL_AUTH_FAILED):
        return e
    error = XRoadError(f"{FaultCode.SSL_AUTH_FAILED}.{e.code}", e.message, details=e.details, detail=e.detail)
    error.__cause__ = e
    return error


def _client_side(e: XRoadError) -> XRoadError:
    return e.with_prefix(FaultPrefix.SERVER_CLIENTPROXY)


def _sha256(cert: x509.Certificate) -> bytes:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()


# -- provider addresses -----------------------------------------------------------------------------------


def _server_id(server: SecurityServer) -> SecurityServerId:
    owner = server.owner
    return SecurityServerId(owner.instance, owner.member_class, owner.member_code, server.server_code)


def _serves(server: SecurityServer, client: ClientId) -> bool:
    return client == server.owner or client in server.clients


def provider_addresses(
    shared: SharedParameters, provider: ClientId, target: SecurityServerId | None
) -> list[tuple[SecurityServerId, str]]:
    """Every security server (with its address) whose clients include ``provider``, only ``target`` when
    given. ``unknown_member`` when none serves it; ``maintenance_mode`` when all that do are in
    maintenance."""
    serving = [s for s in shared.security_servers if _serves(s, provider) and s.address]
    if target is not None:
        serving = [s for s in serving if _server_id(s) == target]
    available = [(_server_id(s), s.address) for s in serving if not s.in_maintenance_mode and s.address]
    if available:
        return available
    if serving:
        raise XRoadError(
            FaultCode.MAINTENANCE_MODE,
            f'every security server of service provider "{provider}" is in maintenance mode',
        )
    at = f" at security server {target}" if target is not None else ""
    raise XRoadError(
        FaultCode.UNKNOWN_MEMBER, f'Could not find addresses for service provider "{provider}"{at}'
    )


# -- peer trust --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerVerdict:
    """An authentication certificate found to be a registered security server's, serving ``member``."""

    server: SecurityServerId
    member: ClientId
    approved_ca: ApprovedCA
    valid_until: datetime
    """The verdict holds until then (and until the next global configuration)."""


class PeerTrust:
    """Decides whether a TLS certificate is a registered security server serving a member, by the current
    global configuration. Thread-safe; :meth:`update` swaps the configuration and forgets the verdicts."""

    def __init__(
        self, trust: TrustMaterial, shared: SharedParameters, *, max_cached: int = MAX_CACHED_VERDICTS
    ) -> None:
        self._lock = threading.Lock()
        self._max_cached = max_cached
        self._verdicts: OrderedDict[tuple[bytes, ClientId, bytes], PeerVerdict] = OrderedDict()
        self._trust, self._shared = trust, shared
        self._validator = CertificateValidator(trust)

    @property
    def trust(self) -> TrustMaterial:
        return self._trust

    @property
    def shared(self) -> SharedParameters:
        return self._shared

    def update(self, trust: TrustMaterial, shared: SharedParameters) -> None:
        """A new global configuration: decide by it from now on."""
        with self._lock:
            self._trust, self._shared = trust, shared
            self._validator = CertificateValidator(trust)
            self._verdicts.clear()

    def cached(
        self,
        cert: x509.Certificate,
        member: ClientId,
        *,
        at: datetime,
        ocsp_responses: Sequence[bytes] | None = None,
    ) -> PeerVerdict | None:
        """The verdict held for ``cert`` serving ``member``, if it still holds at ``at``: the client proxy's
        (``ocsp_responses`` None: it fetched them itself), or the server proxy's on exactly the
        ``ocsp_responses`` a request carries."""
        key = (_sha256(cert), member, _evidence(ocsp_responses))
        with self._lock:
            verdict = self._verdicts.get(key)
            if verdict is None:
                return None
            if at > verdict.valid_until:
                del self._verdicts[key]
                return None
            self._verdicts.move_to_end(key)
            return verdict

    def ocsp_certificates(self, cert: x509.Certificate) -> tuple[x509.Certificate, ...]:
        """The certificates whose OCSP responses a check of ``cert`` needs: it and its intermediate CAs."""
        return (cert, *intermediate_chain(cert, self._trust))[:MAX_CHAIN_OCSP]

    def check_server_certificate(
        self, cert: x509.Certificate, provider: ClientId, *, at: datetime, ocsp_responses: Sequence[bytes]
    ) -> PeerVerdict:
        """The client proxy's check of the provider's security server (its OCSP from port 5577)."""
        return self._check(cert, provider, at=at, ocsp_responses=ocsp_responses, carried=False)

    def check_client_certificate(
        self, cert: x509.Certificate, client: ClientId, *, at: datetime, ocsp_responses: Sequence[bytes]
    ) -> PeerVerdict:
        """The server proxy's check of the client's security server (the OCSP parts of the request). A
        verdict is reused only for the same OCSP parts: X-Road checks the ones each request carries, so a
        request carrying a newer (say, revoked) response is decided on it."""
        return self._check(cert, client, at=at, ocsp_responses=ocsp_responses, carried=True)

    def _check(
        self,
        cert: x509.Certificate,
        member: ClientId,
        *,
        at: datetime,
        ocsp_responses: Sequence[bytes],
        carried: bool,
    ) -> PeerVerdict:
        evidence = ocsp_responses if carried else None
        cached = self.cached(cert, member, at=at, ocsp_responses=evidence)
        if cached is not None:
            return cached
        with self._lock:
            trust, shared, validator = self._trust, self._shared, self._validator
        # 1. An authentication certificate (CertUtils.isAuthCert).
        try:
            verify_auth_key_usage(cert)
        except XRoadError as e:
            raise _ssl_auth_failed("Peer certificate is not an authentication certificate") from e
        try:
            # 2. A chain to a CA the member's instance approves, valid at `at`.
            ca = validator.validate_authentication(cert, at=at, instance=member.instance)
            # 3. Good, fresh, authorised OCSP for the certificate and each intermediate CA.
            limits = self._check_ocsp(cert, trust, ocsp_responses, at)
        except XRoadError as e:
            raise _prefixed(e) from e
        # 4. Its hash is an authCertHash of a security server whose clients include the member.
        server = _server_of(cert, member, shared)
        verdict = PeerVerdict(server, member, ca, min(limits))
        with self._lock:
            if trust is self._trust:
                self._verdicts[(_sha256(cert), member, _evidence(evidence))] = verdict
                while len(self._verdicts) > self._max_cached:
                    self._verdicts.popitem(last=False)
        return verdict

    def _check_ocsp(
        self, cert: x509.Certificate, trust: TrustMaterial, responses: Sequence[bytes], at: datetime
    ) -> list[datetime]:
        path = (cert, *intermediate_chain(cert, trust))
        limits = [c.not_valid_after_utc for c in path]
        for index, current in enumerate(path):
            issuer = path[index + 1] if index + 1 < len(path) else _top_issuer(current, trust)
            status = verify_ocsp_response(
                _response_for(current, responses),
                cert=current,
                issuer=issuer,
                trust=trust,
                at=at,
                freshness_seconds=trust.ocsp_freshness_seconds,
            )
            limits.append(status.this_update + timedelta(seconds=trust.ocsp_freshness_seconds))
            if status.next_update is not None:
                limits.append(status.next_update)
        return limits


def _evidence(ocsp_responses: Sequence[bytes] | None) -> bytes:
    """What a verdict was decided on besides the certificate: nothing (b""), or the carried responses."""
    if ocsp_responses is None:
        return b""
    digest = hashlib.sha256()
    for der in ocsp_responses:
        digest.update(len(der).to_bytes(8, "big"))
        digest.update(der)
    return digest.digest()


def _top_issuer(cert: x509.Certificate, trust: TrustMaterial) -> x509.Certificate:
    for top in trust.top_ca_certificates:
        if issued_by(cert, top):
            return top
    raise XRoadError(FaultCode.INVALID_CERT_PATH, f"no approved CA issued {cert.issuer.rfc4514_string()}")


def _response_for(cert: x509.Certificate, responses: Sequence[bytes]) -> bytes:
    """The response (of ``responses``) about ``cert``, by serial number; ``cert_validation`` when none."""
    for der in responses:
        try:
            response = ocsp.load_der_ocsp_response(der)
            if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
                continue
            if any(single.serial_number == cert.serial_number for single in response.responses):
                return der
        except ValueError:
            continue
    raise XRoadError(
        FaultCode.CERT_VALIDATION,
        f"no OCSP response for certificate {cert.subject.rfc4514_string()} (serial {cert.serial_number})",
    )


def _server_of(cert: x509.Certificate, member: ClientId, shared: SharedParameters) -> SecurityServerId:
    der = cert.public_bytes(Encoding.DER)
    hashes = {hashlib.sha256(der).digest(), hashlib.sha1(der).digest()}  # noqa: S324 -- V2's authCertHash
    holders = [s for s in shared.security_servers if hashes.intersection(s.auth_cert_hashes)]
    for server in holders:
        if _serves(server, member):
            return _server_id(server)
    if holders:
        raise _ssl_auth_failed(
            f"Client '{member}' is not registered at security server {_server_id(holders[0])}",
            server=str(_server_id(holders[0])),
        )
    raise _ssl_auth_failed(
        f"Authentication certificate {cert.subject.rfc4514_string()} is not associated with any "
        "security server"
    )


# -- connecting ----------------------------------------------------------------------------------------------


_NEW_CONNECTION_CHECK: contextvars.ContextVar[Callable[[asyncio.Transport], Awaitable[None]] | None] = (
    contextvars.ContextVar("xroad_mn_new_connection_check", default=None)
)
"""What the request being made in this task checks on each TLS connection it opens (before sending)."""


class _CheckingConnector(aiohttp.TCPConnector):
    """A connector that checks each new connection's TLS certificate before aiohttp sends anything on it."""

    async def _wrap_create_connection(
        self, *args: Any, **kwargs: Any
    ) -> tuple[asyncio.Transport, ResponseHandler]:
        transport, protocol = await super()._wrap_create_connection(*args, **kwargs)
        check = _NEW_CONNECTION_CHECK.get()
        if check is not None and transport.get_extra_info("ssl_object") is not None:
            try:
                await check(transport)
            except BaseException:
                transport.close()
                raise
        return transport, protocol


@dataclass(frozen=True)
class PeerResponse:
    """A peer's answer, read whole, and who gave it."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    server_certificate: x509.Certificate
    address: str
    server: SecurityServerId


class PeerConnector:
    """Posts transport messages to the provider's security servers over mutual TLS with kept-alive
    connections. One per event loop; use as an async context manager (or :meth:`aclose`)."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        trust: PeerTrust,
        *,
        clock: Callable[[], datetime] = _utc_now,
        proxy_port: int = PROXY_PORT,
        ocsp_port: int = OCSP_RESPONDER_PORT,
        fastest_connecting_uri_cache_seconds: float = FASTEST_CONNECTING_URI_CACHE_SECONDS,
    ) -> None:
        self._ssl = ssl_context
        self.trust = trust
        self._clock = clock
        self._proxy_port = proxy_port
        self._ocsp_port = ocsp_port
        self._fastest_seconds = fastest_connecting_uri_cache_seconds
        self._session: aiohttp.ClientSession | None = None
        self._fastest: dict[tuple[str, ...], tuple[str, float]] = {}
        self._checked: dict[tuple[str, ClientId], tuple[x509.Certificate, PeerVerdict]] = {}
        """Address and provider whose certificate passed (on the newest connection), with the verdict."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = _CheckingConnector(
                ssl=self._ssl, limit=POOL_MAX_CONNECTIONS, limit_per_host=POOL_MAX_CONNECTIONS_PER_ROUTE
            )
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        return self._session

    async def post(
        self,
        addresses: Sequence[tuple[SecurityServerId, str]],
        headers: Mapping[str, str],
        body: bytes,
        *,
        provider: ClientId,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        response_timeout: float | None = None,
    ) -> PeerResponse:
        """POST ``body`` to the fastest of ``addresses`` (``provider``'s servers); ``response_timeout`` bounds
        the wait for the whole response (None or 0: no bound, X-Road's ``client-httpclient-timeout``). Errors
        carry ``server.clientproxy.``: ``network_error`` with the address, ``ssl_authentication_failed``."""
        try:
            address = await self._select(addresses, provider, connect_timeout)
            return await self._post(
                address, addresses, headers, body, provider, connect_timeout, response_timeout
            )
        except XRoadError as e:
            raise _client_side(e) from e

    # -- choosing the address ---------------------------------------------------------------------------

    async def _select(
        self, addresses: Sequence[tuple[SecurityServerId, str]], provider: ClientId, connect_timeout: float
    ) -> str:
        if not addresses:
            raise XRoadError(FaultCode.UNKNOWN_MEMBER, f"no security server address for {provider}")
        names = tuple(sorted(a for _, a in addresses))
        loop_now = asyncio.get_running_loop().time()
        remembered = self._fastest.get(names)
        if len(names) == 1:
            candidate: str | None = names[0]
        else:
            candidate = remembered[0] if remembered is not None and remembered[1] > loop_now else None
        if candidate is not None and self._still_checked(candidate, provider):
            return candidate
        order = list(names)
        random.shuffle(order)
        winner = await self._race(order, provider, connect_timeout)
        if len(names) > 1:
            self._fastest[names] = (winner, loop_now + self._fastest_seconds)
        return winner

    def _held(self, address: str, provider: ClientId) -> tuple[x509.Certificate, PeerVerdict] | None:
        """The certificate last checked at ``address`` and its verdict, while the verdict holds (and the
        global configuration that gave it is current)."""
        checked = self._checked.get((address, provider))
        if checked is None:
            return None
        verdict = self.trust.cached(checked[0], provider, at=self._clock())
        return (checked[0], verdict) if verdict is not None else None

    def _still_checked(self, address: str, provider: ClientId) -> bool:
        return self._held(address, provider) is not None

    async def _race(self, order: list[str], provider: ClientId, connect_timeout: float) -> str:
        """Connect to every address at once; the first whose certificate passes wins."""
        tasks = [asyncio.create_task(self._probe(a, provider, connect_timeout)) for a in order]
        failures: list[XRoadError] = []
        try:
            for next_done in asyncio.as_completed(tasks):
                try:
                    return await next_done
                except XRoadError as e:
                    failures.append(e)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if len(failures) == 1:
            raise failures[0]
        trust_failure = next((e for e in failures if e.code.startswith(FaultCode.SSL_AUTH_FAILED)), None)
        raise XRoadError(
            trust_failure.code if trust_failure is not None else FaultCode.NETWORK_ERROR,
            "; ".join(e.message for e in failures),
            details={"addresses": ", ".join(order)},
        )

    async def _probe(self, address: str, provider: ClientId, connect_timeout: float) -> str:
        """A TLS handshake with ``address`` and the check of its certificate, before any body is sent."""
        try:
            async with asyncio.timeout(connect_timeout):
                _, writer = await asyncio.open_connection(address, self._proxy_port, ssl=self._ssl)
        except ssl.SSLCertVerificationError as e:
            raise _untrusted(address, e.verify_message) from e
        except (OSError, TimeoutError, ssl.SSLError) as e:
            raise _network_error(address, self._proxy_port, e) from e
        try:
            cert = _peer_certificate(writer.get_extra_info("ssl_object"), address)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
        await self._check(cert, address, provider)
        return address

    async def _check(self, cert: x509.Certificate, address: str, provider: ClientId) -> PeerVerdict:
        now = self._clock()
        verdict = self.trust.cached(cert, provider, at=now)
        if verdict is None:
            responses = await self._download_ocsp(address, self.trust.ocsp_certificates(cert))
            verdict = await asyncio.to_thread(
                self.trust.check_server_certificate, cert, provider, at=now, ocsp_responses=responses
            )
        self._checked[(address, provider)] = (cert, verdict)
        return verdict

    async def _download_ocsp(self, address: str, certs: Sequence[x509.Certificate]) -> list[bytes]:
        """The OCSP responses of ``certs`` from the peer's port 5577 (PR-MESSTRANSP §5.2)."""
        query = [
            (name, value)
            for c in certs
            for name, value in (
                ("cert", hashlib.sha1(c.public_bytes(Encoding.DER)).hexdigest()),  # noqa: S324 -- X-Road's key
                ("cert_hash", _sha256(c).hex()),
            )
        ]
        url = http_url(address, self._ocsp_port) + "/"
        token = _NEW_CONNECTION_CHECK.set(None)  # a plain HTTP download, not a peer connection
        try:
            return await self._download_ocsp_from(url, query, len(certs))
        finally:
            _NEW_CONNECTION_CHECK.reset(token)

    async def _download_ocsp_from(self, url: str, query: list[tuple[str, str]], expected: int) -> list[bytes]:
        timeout = aiohttp.ClientTimeout(
            sock_connect=OCSP_CONNECT_TIMEOUT_SECONDS, sock_read=OCSP_READ_TIMEOUT_SECONDS
        )
        try:
            async with self._http().get(url, params=query, timeout=timeout, ssl=False) as resp:
                body = await resp.content.read(MAX_OCSP_DOWNLOAD_BYTES + 1)
                content_type = resp.headers.get("Content-Type", "")
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise _prefixed(
                XRoadError(FaultCode.INTERNAL_ERROR, f"cannot download OCSP responses from {url}: {e}")
            ) from e
        try:
            return _ocsp_parts(body, content_type, status, url, expected=expected)
        except XRoadError as e:
            raise _prefixed(e) from e

    # -- the request -------------------------------------------------------------------------------------

    async def _post(
        self,
        address: str,
        addresses: Sequence[tuple[SecurityServerId, str]],
        headers: Mapping[str, str],
        body: bytes,
        provider: ClientId,
        connect_timeout: float,
        response_timeout: float | None,
    ) -> PeerResponse:
        url = http_url(address, self._proxy_port, "https") + "/"
        client_timeout = aiohttp.ClientTimeout(total=response_timeout or None, sock_connect=connect_timeout)

        async def check_new_connection(transport: asyncio.Transport) -> None:
            await self._check(
                _peer_certificate(transport.get_extra_info("ssl_object"), address), address, provider
            )

        token = _NEW_CONNECTION_CHECK.set(check_new_connection)
        try:
            async with self._http().post(
                url, data=request_payload(body), headers=dict(headers), timeout=client_timeout
            ) as resp:
                if resp.content_length is not None and resp.content_length > MAX_PEER_RESPONSE_BYTES:
                    raise XRoadError(FaultCode.NETWORK_ERROR, f"response from {address} is too large")
                data = await read_limited(resp.content, MAX_PEER_RESPONSE_BYTES)
                if data is None:
                    raise XRoadError(FaultCode.NETWORK_ERROR, f"response from {address} is too large")
                status, response_headers = resp.status, resp.headers
        except aiohttp.ClientConnectorCertificateError as e:
            self._forget(address, addresses)
            raise _untrusted(address, str(e.certificate_error)) from e
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            self._forget(address, addresses)
            raise _network_error(address, self._proxy_port, e) from e
        finally:
            _NEW_CONNECTION_CHECK.reset(token)
        # Every connection to `address` had its certificate checked when it was opened (here or by the
        # race); the response is used only while that verdict holds, else after checking again.
        held = self._held(address, provider)
        if held is None:
            checked = self._checked.get((address, provider))
            if checked is None:
                raise _ssl_auth_failed(f"no checked TLS certificate for {address}", address=address)
            held = checked[0], await self._check(checked[0], address, provider)
        cert, verdict = held
        return PeerResponse(status, response_headers, data, cert, address, verdict.server)

    def _forget(self, address: str, addresses: Sequence[tuple[SecurityServerId, str]]) -> None:
        """A failed address is no longer the fastest: the next request races again."""
        names = tuple(sorted(a for _, a in addresses))
        remembered = self._fastest.get(names)
        if remembered is not None and remembered[0] == address:
            del self._fastest[names]


def _ocsp_parts(body: bytes, content_type: str, status: int, url: str, *, expected: int) -> list[bytes]:
    """The DER responses of a port 5577 answer (``multipart/related``), exactly ``expected`` of them."""
    if status != 200 or len(body) > MAX_OCSP_DOWNLOAD_BYTES:
        raise XRoadError(FaultCode.INTERNAL_ERROR, f"OCSP download from {url} answered HTTP {status}")
    media_type, params = split_header_params(content_type)
    if media_type.lower() != "multipart/related":
        raise XRoadError(FaultCode.INTERNAL_ERROR, f"OCSP download from {url} is {media_type!r}")
    boundary = boundary_of(params, code=FaultCode.INTERNAL_ERROR, what="OCSP download")
    parts = split_multipart(body, boundary, code=FaultCode.INTERNAL_ERROR, what="OCSP download")
    responses: list[bytes] = []
    for part in parts:
        # A responder answers each of `cert=` and `cert_hash=` (both are sent): the same response twice.
        media_type = split_header_params(part.headers.get("content-type", ""))[0].lower()
        if media_type == OCSP_RESPONSE_CONTENT_TYPE and part.body not in responses:
            responses.append(part.body)
    if len(responses) != expected:
        raise XRoadError(
            FaultCode.INTERNAL_ERROR,
            f"Could not get all OCSP responses from server (expected {expected}, but got {len(responses)})",
        )
    return responses


def _peer_certificate(ssl_object: object, address: str) -> x509.Certificate:
    der = ssl_object.getpeercert(True) if isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket) else None
    if not der:
        raise _ssl_auth_failed(
            f"Service provider did not provide TLS certificate ({address})", address=address
        )
    return x509.load_der_x509_certificate(der)


def _untrusted(address: str, why: str) -> XRoadError:
    """The handshake refused the peer's certificate: it does not chain to an approved CA."""
    return _prefixed(
        XRoadError(
            FaultCode.INVALID_CERT_PATH,
            f"TLS certificate of {address} does not chain to a CA global configuration approves: {why}",
            details={"address": address},
        )
    )


def _network_error(address: str, port: int, e: BaseException) -> XRoadError:
    what = "timed out" if isinstance(e, TimeoutError) else str(e) or type(e).__name__
    return XRoadError(
        FaultCode.NETWORK_ERROR,
        f"cannot reach security server {address}:{port}: {what}",
        details={"address": address},
    )
