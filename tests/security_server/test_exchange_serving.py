"""How a node is reached and served: the client proxy over HTTPS, and ``node serve`` with worker processes.

One federation (nodes on 127.0.0.8 and 127.0.0.9).

- HTTPS (8443): the consumer subsystem's connection type decides how its information system may call —
  ``NOSSL`` over HTTP, ``SSLNOAUTH`` over HTTPS, ``SSLAUTH`` over HTTPS with a registered certificate, else
  ``server.clientproxy.ssl_authentication_failed``.
- Workers: the provider node is stopped in the test's process and started again as ``python -m xroad_mn node
  serve`` with ``workers = 2``: the main process and one worker listen on the same proxy ports
  (``SO_REUSEPORT``); concurrent traffic completes, both processes listen, and Ctrl-C (SIGINT) stops
  everything with status 0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import signal
import ssl
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from security_server.api.call import STORE_KEY
from security_server.app import EXCHANGE_KEY
from security_server.db.models import ConnectionType
from security_server.proxy.internal_tls import INTERNAL_TLS_DIR
from tests.security_server.exchange_world import CONSUMER, Federation, federation_in
from tests.security_server.test_node_e2e import PIN
from xroad_mn.tokens import PIN_ENV

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADDRESSES = ("127.0.0.8", "127.0.0.9")
READY_SECONDS = 60.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with federation_in(tmp_path_factory.mktemp("exchange-serving"), addresses=ADDRESSES) as fed:
        await fed.grant("citizens")
        yield fed


def is_identity(directory: Path, name: str) -> tuple[Path, Path, x509.Certificate]:
    """A self-signed certificate of an information system, as agencies make them."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file, cert


def https_context(fed: Federation, identity: tuple[Path, Path, x509.Certificate] | None) -> ssl.SSLContext:
    """Verify the consumer node by its internal TLS certificate (as an IS is configured to), and present
    ``identity`` when given."""
    context = ssl.create_default_context(cafile=str(fed.consumer.home / INTERNAL_TLS_DIR / "internal.crt"))
    if identity is not None:
        context.load_cert_chain(str(identity[0]), str(identity[1]))
    return context


async def call(
    fed: Federation, *, https: bool, context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str]]:
    base = f"https://{fed.consumer.address}:8443" if https else fed.client_proxy
    p = CONSUMER_PROVIDER_PATH
    async with fed.session.get(base + p, headers=fed.client_header(), ssl=context or False) as resp:
        await resp.read()
        return resp.status, dict(resp.headers)


CONSUMER_PROVIDER_PATH = "/r1/MN/GOV/9010002/civil-registry/citizens/people/1"


async def set_connection_type(fed: Federation, connection_type: ConnectionType) -> None:
    store = fed.running[fed.consumer.server_code].app[STORE_KEY]
    await store.set_connection_type(CONSUMER, connection_type)


async def test_internal_tls_certificate_is_made_once_and_kept_private(federation: Federation) -> None:
    directory = federation.consumer.home / INTERNAL_TLS_DIR
    key_file = directory / "internal.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((directory / "internal.crt").read_bytes())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in alt.get_values_for_type(x509.IPAddress)] == [federation.consumer.address]


async def test_connection_types_decide_how_an_is_may_call(federation: Federation, tmp_path: Path) -> None:
    fed = federation
    # NOSSL (the default): HTTP and HTTPS both work; the IS verifies the node's internal certificate.
    assert (await call(fed, https=False))[0] == 200
    assert (await call(fed, https=True, context=https_context(fed, None)))[0] == 200

    # SSLNOAUTH: HTTPS only.
    await set_connection_type(fed, ConnectionType.SSLNOAUTH)
    status, headers = await call(fed, https=False)
    assert (status, headers["X-Road-Error"]) == (500, "server.clientproxy.ssl_authentication_failed")
    assert (await call(fed, https=True, context=https_context(fed, None)))[0] == 200

    # SSLAUTH: HTTPS with a registered IS certificate.
    await set_connection_type(fed, ConnectionType.SSLAUTH)
    status, headers = await call(fed, https=True, context=https_context(fed, None))
    assert (status, headers["X-Road-Error"]) == (500, "server.clientproxy.ssl_authentication_failed")
    stranger = is_identity(tmp_path, "stranger")
    with pytest.raises(aiohttp.ClientError):  # a certificate nobody registered fails the handshake
        await call(fed, https=True, context=https_context(fed, stranger))

    bank_is = is_identity(tmp_path, "bank-kyc-is")
    running = fed.running[fed.consumer.server_code]
    await running.app[STORE_KEY].add_is_cert(CONSUMER, bank_is[2])
    await running.app[EXCHANGE_KEY].trust_is_certificates()
    assert (await call(fed, https=True, context=https_context(fed, bank_is)))[0] == 200
    await set_connection_type(fed, ConnectionType.NOSSL)


def listeners(port: int, address: str) -> set[int]:
    """PIDs of the processes listening on ``address:port`` (from ``ss``)."""
    out = subprocess.run(
        ["ss", "-Hltnp", f"src {address}:{port}"], capture_output=True, text=True, check=True
    ).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


async def test_node_serve_with_two_workers(federation: Federation) -> None:
    fed = federation
    provider = fed.provider
    await fed.stop_node(provider)
    env = {
        **os.environ,
        PIN_ENV: PIN,
        "XROAD_MN_NODE__WORKERS": "2",
        "XROAD_MN_NODE__GLOBALCONF_UPDATE_INTERVAL_SECONDS": "1",
        "XROAD_MN_NODE__SERVER_CONF_CACHE_SECONDS": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xroad_mn", "node", "serve", "--dir", str(provider.home),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(READY_SECONDS):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "".join(output)
                output.append(line)
                if "Press Ctrl-C" in line:
                    break
        assert any("Workers    2 processes" in line for line in output), output
        drain = asyncio.create_task(proc.stdout.read())

        async def one(i: int) -> int:
            url = fed.rest_url("citizens", f"/people/{i}")
            async with fed.session.get(url, headers=fed.client_header()) as resp:
                await resp.read()
                return resp.status

        statuses = [s for _ in range(5) for s in await asyncio.gather(*(one(i) for i in range(16)))]
        assert statuses == [200] * len(statuses)
        assert len(listeners(5500, provider.address)) == 2
        assert len(listeners(8080, provider.address)) == 2

        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(READY_SECONDS):
            assert await proc.wait() == 0
        await drain
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await fed.start_node(provider)
    assert listeners(5500, provider.address) == {os.getpid()}
