"""The exchange against a bare chain: requests/s, p50 and p99 latency of both, and their ratio.

Run on demand (never in the test suite)::

    $ .venv/bin/python bench/exchange.py                      # 2 threads, 32 connections, 10 s each
    $ .venv/bin/python bench/exchange.py -c 64 -d 30          # more connections, longer runs
    $ .venv/bin/python bench/exchange.py --profile            # (b) with the federation under cProfile

(a) **Bare chain**: an aiohttp forwarder (plain HTTP in, 127.0.0.2) → a mutual-TLS keep-alive connection
pool → an aiohttp forwarder (TLS, client certificate required, 127.0.0.3) → the backend (127.0.0.1), which
answers every request with a 1 KB JSON body. No X-Road work: this is what four HTTP hops and one TLS hop cost
in Python here. The certificates (a CA and two RSA 2048 leaves) are made with ``cryptography`` for the run.

(b) **The exchange** through two xroad-mn nodes to the same backend: the federation of
``tests/security_server/exchange_world.py`` (trust services, the registry, consumer node ``ss1`` on 127.0.0.2,
provider node ``ss2`` on 127.0.0.3) runs in a process of its own, the provider's REST service ``bench`` points
at the backend and the consumer subsystem ``bank-kyc`` is granted access to it; the load is
``GET <client proxy>/r1/MN/GOV/9010002/civil-registry/bench/...`` with
``X-Road-Client: MN/GOV/9010001/bank-kyc``.
When the exchange is not available (its modules do not import, or a probe request fails), (b) says why and
(a) still runs.

(c) **Offline evidence verification**: containers of the consumer's message log (requests and responses of
exchanges made after the load), fetched by X-Road's ``GET /asic`` on the client proxy, then verified one after
another with :func:`xroad_mn.asic.verify_container` against the consumer's global configuration — messages/s
on one core.

``--profile`` runs the federation process under cProfile from its READY line until it stops and prints the
top functions by cumulative time; the federation's figures are then slower than without the profiler.

Every server runs in its own process, so the figures are honest on a 2-core machine; the load generator is
``wrk`` (Debian package ``wrk``) with the same threads, connections and duration for (a) and (b), and a small
Lua script that prints exact percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib
import io
import ipaddress
import json
import math
import multiprocessing
import os
import pkgutil
import pstats
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from security_server.home import globalconf_dir
from trust_services.app import TrustSettings, run_trust_service
from trust_services.store import init_trust_dir
from xroad_mn.asic import verify_container
from xroad_mn.confclient.installed import load_trust_material
from xroad_mn.errors import XRoadError
from xroad_mn.globalconf.trust import TrustMaterial
from xroad_mn.identifiers import format_id
from xroad_mn.validation import CertificateValidator

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
EXCHANGE_WORLD: Final = "tests.security_server.exchange_world"
EXCHANGE_MODULE: Final = "security_server.proxy"

BACKEND_HOST: Final = "127.0.0.1"
CONSUMER_HOST: Final = "127.0.0.2"
PROVIDER_HOST: Final = "127.0.0.3"
BODY_BYTES: Final = 1024
"""Size of the backend's JSON answer."""
SERVICE_CODE: Final = "bench"
NODE_OVERRIDES: Final[dict[str, object]] = {"server_conf_cache_seconds": 60.0}
"""The nodes as deployed: X-Road's 60 s cache of their own configuration (tests read it every time)."""
"""The provider's REST service that points at the backend."""
REQUEST_PATH: Final = "/citizens/123456"
CLIENT_HEADER: Final = "X-Road-Client"
BARE_CLIENT: Final = "MN/GOV/9010001/bank-kyc"
"""Sent in (a) too, so that both chains carry the same request."""
HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade", "te", "trailer"}
)
POOL_SIZE: Final = 100
"""Keep-alive connections a forwarder keeps to its next hop."""
LISTEN_BACKLOG: Final = 1024
RSA_BITS: Final = 2048
CERT_DAYS: Final = 2

SERVER_START_SECONDS: Final = 30.0
"""Longest wait for a bare-chain server process to listen."""
FEDERATION_START_SECONDS: Final = 300.0
"""Longest wait for the federation to be built, enrolled and serving (default; ``--ready-timeout``)."""
FEDERATION_STOP_SECONDS: Final = 60.0
PROBE_TIMEOUT_SECONDS: Final = 30.0
ASIC_WAIT_SECONDS: Final = 60.0
"""Longest wait for the consumer's records to be time-stamped (``/asic`` answers 404 until then)."""
POLL_SECONDS: Final = 0.25
WRK_TIMEOUT: Final = "10s"
PROFILE_TOP: Final = 25

TARGET_RATIO: Final = 0.5
TARGET_EXCHANGES_PER_SECOND: Final = 1000.0
TARGET_VERIFICATIONS_PER_CORE: Final = 500.0

WRK_LUA: Final = """
done = function(summary, latency, requests)
  local e = summary.errors
  local line = "BENCH requests=%d duration_us=%d p50_us=%.1f p99_us=%.1f socket_errors=%d non2xx=%d\\n"
  io.write(string.format(line, summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""
WRK_LINE: Final = re.compile(
    r"BENCH requests=(\d+) duration_us=(\d+) p50_us=([\d.]+) p99_us=([\d.]+) socket_errors=(\d+) non2xx=(\d+)"
)
READY_LINE: Final = re.compile(r"^READY (\S+) (\{.*\})$", re.MULTILINE)


class BenchError(Exception):
    """A part of the benchmark could not run; the message says why."""


# -- load ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    threads: int
    connections: int
    duration_seconds: int
    warmup_seconds: int


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return self.socket_errors + self.non_2xx


def run_wrk(wrk: str, url: str, headers: dict[str, str], load: Load, lua: Path, seconds: int) -> WrkResult:
    """``wrk`` against ``url`` for ``seconds``; its Lua ``done`` hook prints the figures parsed here."""
    command = [
        wrk,
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{seconds}s",
        "--timeout",
        WRK_TIMEOUT,
        "--latency",
        "-s",
        str(lua),
        *(arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = WRK_LINE.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise BenchError(f"wrk failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[:500]}")
    requests, duration_us, p50, p99, socket_errors, non_2xx = found.groups()
    return WrkResult(
        requests=int(requests),
        seconds=int(duration_us) / 1e6,
        p50_ms=float(p50) / 1000,
        p99_ms=float(p99) / 1000,
        socket_errors=int(socket_errors),
        non_2xx=int(non_2xx),
    )


def measure(wrk: str, url: str, headers: dict[str, str], load: Load, lua: Path) -> WrkResult:
    """A warm-up run (connection pools filled, caches warm), then the measured run."""
    if load.warmup_seconds > 0:
        run_wrk(wrk, url, headers, load, lua, load.warmup_seconds)
    return run_wrk(wrk, url, headers, load, lua, load.duration_seconds)


def find_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    return path


# -- plain HTTP probes (no proxies from the environment) -----------------------------------------------------

_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def http_get(url: str, headers: dict[str, str], timeout: float = PROBE_TIMEOUT_SECONDS) -> Answer:
    request = urllib.request.Request(url, headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            return Answer(resp.status, dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as e:
        return Answer(e.code, dict(e.headers.items()), e.read())


def probe(url: str, headers: dict[str, str]) -> str | None:
    """Why one request through the chain does not come back as the backend's answer, or None."""
    try:
        answer = http_get(url, headers)
    except OSError as e:
        return f"probe request failed: {e}"
    if answer.status != 200 or len(answer.body) != BODY_BYTES:
        text = answer.body[:300].decode("utf-8", "replace")
        return f"probe answered HTTP {answer.status} with {len(answer.body)} bytes: {text}"
    return None


# -- the bare chain's servers, each in a process of its own --------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@dataclass(frozen=True)
class ServerSpec:
    """What one server process runs: the backend, or a forwarder to ``target``."""

    name: str
    host: str
    target: str | None = None
    tls_in: TlsFiles | None = None
    """Serve TLS and require a client certificate."""
    tls_out: TlsFiles | None = None
    """Connect to ``target`` with mutual TLS."""


def backend_body(size: int = BODY_BYTES) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    record = {"regnum": "УБ12345678", "name": "Batbayar Dorj", "status": "active", "padding": ""}
    base = len(json.dumps(record, ensure_ascii=False).encode())
    record["padding"] = "x" * (size - base)
    data = json.dumps(record, ensure_ascii=False).encode()
    assert len(data) == size
    return data


def backend_app() -> web.Application:
    body = backend_body()

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


def server_tls(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(files.ca))
    context.load_cert_chain(str(files.server_cert), str(files.server_key))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_tls(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files.ca))
    context.load_cert_chain(str(files.client_cert), str(files.client_key))
    return context


SESSION_KEY: Final = web.AppKey("session", aiohttp.ClientSession)


def forwarder_app(target: str, tls_out: TlsFiles | None) -> web.Application:
    """Forward every request to ``target`` over a keep-alive pool and answer with what came back."""

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=POOL_SIZE, ssl=client_tls(tls_out) if tls_out else True)
        async with aiohttp.ClientSession(connector=connector) as session:
            app[SESSION_KEY] = session
            yield

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        session = request.app[SESSION_KEY]
        async with session.request(request.method, target + request.path_qs, headers=headers, data=body) as r:
            payload = await r.read()
            kind = r.headers.get("Content-Type", "application/octet-stream")
            return web.Response(status=r.status, body=payload, headers={"Content-Type": kind})

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def serve(spec: ServerSpec, ready: Connection) -> None:
    app = backend_app() if spec.target is None else forwarder_app(spec.target, spec.tls_out)
    sock = socket.create_server((spec.host, 0), backlog=LISTEN_BACKLOG)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tls = server_tls(spec.tls_in) if spec.tls_in else None
    await web.SockSite(runner, sock, ssl_context=tls, backlog=LISTEN_BACKLOG).start()
    ready.send(sock.getsockname()[1])
    await asyncio.Event().wait()  # until the process is terminated


def server_process_main(spec: ServerSpec, ready: Connection) -> None:
    asyncio.run(serve(spec, ready))


@dataclass
class ServerProcess:
    spec: ServerSpec
    process: multiprocessing.process.BaseProcess
    port: int

    @property
    def url(self) -> str:
        scheme = "https" if self.spec.tls_in else "http"
        return f"{scheme}://{self.spec.host}:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(SERVER_START_SECONDS)


def start_server(spec: ServerSpec) -> ServerProcess:
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=server_process_main, args=(spec, sending), name=spec.name, daemon=True)
    process.start()
    sending.close()
    port: int | None = None
    with contextlib.suppress(EOFError):  # the process died before listening
        if receiving.poll(SERVER_START_SECONDS):
            port = receiving.recv()
    if port is None:
        process.terminate()
        raise BenchError(f"{spec.name} did not start listening in {SERVER_START_SECONDS:.0f} s")
    return ServerProcess(spec, process, port)


# -- certificates for the bare chain's mutual TLS ------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CERT_DAYS))
    )


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def _write(path: Path, cert: x509.Certificate, key: rsa.RSAPrivateKey | None = None) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.with_suffix(".key").write_bytes(key_pem)


def write_certificates(directory: Path) -> TlsFiles:
    """A self-signed CA, a server certificate for the provider forwarder's address and a client
    certificate, in PEM files under ``directory``."""
    ca_key = _new_key()
    ca_name = _name("bench CA")
    ca = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value

    def leaf(
        common_name: str, usage: x509.ObjectIdentifier, san: x509.GeneralName | None
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        key = _new_key()
        builder = (
            _builder(_name(common_name), ca_name, key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False)
        )
        if san is not None:
            builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    provider_ip = x509.IPAddress(ipaddress.ip_address(PROVIDER_HOST))
    server, server_key = leaf("bench provider", ExtendedKeyUsageOID.SERVER_AUTH, provider_ip)
    client, client_key = leaf("bench consumer", ExtendedKeyUsageOID.CLIENT_AUTH, None)
    files = TlsFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    _write(files.ca, ca)
    _write(files.server_cert, server, server_key)
    _write(files.client_cert, client, client_key)
    return files


# -- (a) the bare chain --------------------------------------------------------------------------------------


def run_bare_chain(wrk: str, load: Load, lua: Path, directory: Path, backend: ServerProcess) -> WrkResult:
    """Consumer forwarder (HTTP) → mutual TLS → provider forwarder → backend, each in its own process."""
    tls = write_certificates(directory)
    with contextlib.ExitStack() as stack:
        provider = start_server(ServerSpec("provider forwarder", PROVIDER_HOST, backend.url, tls_in=tls))
        stack.callback(provider.stop)
        consumer = start_server(ServerSpec("consumer forwarder", CONSUMER_HOST, provider.url, tls_out=tls))
        stack.callback(consumer.stop)
        url = consumer.url + REQUEST_PATH
        headers = {CLIENT_HEADER: BARE_CLIENT}
        reason = probe(url, headers)
        if reason is not None:
            raise BenchError(f"bare chain: {reason}")
        return measure(wrk, url, headers, load, lua)


# -- (b) the federation, in a process of its own -------------------------------------------------------------


@dataclass(frozen=True)
class FederationReady:
    """What the federation process announces once it serves: the URL to load, and where its evidence is."""

    url: str
    headers: dict[str, str]
    client_proxy: str
    consumer_home: Path
    asic_query: dict[str, str]
    """The consumer subsystem's ``xRoadInstance``/``memberClass``/``memberCode``/``subsystemCode``."""


async def federation_main(directory: Path, backend: str, profile_out: Path | None) -> None:
    """Build the federation of ``exchange_world``, point the REST service ``bench`` at ``backend``, grant the
    consumer access, print ``READY <url> <json>`` and serve until SIGTERM (under cProfile with
    ``profile_out``)."""
    world = importlib.import_module(EXCHANGE_WORLD)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    trust_dir = directory / "trust"
    await asyncio.to_thread(init_trust_dir, trust_dir, instance="MN", now=datetime.now(UTC))
    async with (
        run_trust_service(TrustSettings(dir=trust_dir, host=BACKEND_HOST, port=0)) as trust,
        world.running_federation(directory, trust, overrides=NODE_OVERRIDES) as federation,
    ):
        provider = world.PROVIDER
        await federation.provider.cli(
            "service", "add", "--client", format_id(provider), "--rest", backend, "--code", SERVICE_CODE
        )
        await federation.grant(SERVICE_CODE)
        consumer = world.CONSUMER
        ready = {
            "url": federation.rest_url(SERVICE_CODE, REQUEST_PATH),
            "headers": federation.client_header(),
            "client_proxy": federation.client_proxy,
            "consumer_home": str(federation.consumer.home),
            "asic_query": {
                "xRoadInstance": consumer.instance,
                "memberClass": consumer.member_class,
                "memberCode": consumer.member_code,
                "subsystemCode": consumer.subsystem_code,
            },
        }
        profiler = cProfile.Profile() if profile_out else None
        if profiler is not None:
            profiler.enable()
        print(f"READY {ready['url']} {json.dumps(ready)}", flush=True)
        await stop.wait()
        if profiler is not None and profile_out is not None:
            profiler.disable()
            profiler.dump_stats(profile_out)


def exchange_unavailable() -> str | None:
    """Why the exchange cannot run here (the proxies' modules or the federation's do not import), or None."""
    try:
        package = importlib.import_module(EXCHANGE_MODULE)
        modules = [f"{EXCHANGE_MODULE}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    except Exception as e:
        return f"cannot import {EXCHANGE_MODULE}: {type(e).__name__}: {e}"
    for module in [*modules, EXCHANGE_WORLD]:
        try:
            importlib.import_module(module)
        except Exception as e:
            return f"cannot import {module}: {type(e).__name__}: {e}"
    return None


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class FederationProcess:
    process: subprocess.Popen[bytes]
    ready: FederationReady
    profile_out: Path | None

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(FEDERATION_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _parse_ready(text: str) -> FederationReady | None:
    found = READY_LINE.search(text)
    if found is None:
        return None
    data = json.loads(found.group(2))
    return FederationReady(
        url=data["url"],
        headers=dict(data["headers"]),
        client_proxy=data["client_proxy"],
        consumer_home=Path(data["consumer_home"]),
        asic_query=dict(data["asic_query"]),
    )


def start_federation(directory: Path, backend: str, *, profile: bool, timeout: float) -> FederationProcess:
    """The federation process, once it printed its READY line (its output goes to files in ``directory``)."""
    home = directory / "federation"
    home.mkdir()
    out, err = directory / "federation.out", directory / "federation.err"
    profile_out = directory / "federation.prof" if profile else None
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--federation-child",
        str(home),
        "--backend",
        backend,
    ]
    if profile_out is not None:
        command += ["--profile-out", str(profile_out)]
    paths = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    with out.open("wb") as out_file, err.open("wb") as err_file:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out_file, stderr=err_file)
    deadline = time.monotonic() + timeout
    while (ready := _parse_ready(out.read_text(errors="replace"))) is None:
        if process.poll() is not None:
            raise BenchError(f"the federation process exited with status {process.returncode}:\n{_tail(err)}")
        if time.monotonic() > deadline:
            FederationProcess(process, FederationReady("", {}, "", home, {}), None).stop()
            raise BenchError(f"the federation was not ready in {timeout:.0f} s:\n{_tail(err)}")
        time.sleep(POLL_SECONDS)
    return FederationProcess(process, ready, profile_out)


# -- (c) offline verification of the consumer's evidence -----------------------------------------------------


@dataclass(frozen=True)
class EvidenceResult:
    containers: int
    shared_validator_per_second: float
    own_validator_per_second: float


def _header(answer: Answer, name: str) -> str | None:
    return next((v for k, v in answer.headers.items() if k.lower() == name.lower()), None)


def containers_in(data: bytes) -> list[bytes]:
    """The ``.asice`` containers of an ``/asic`` answer: one container, or a zip of containers."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                return [data]
            return [archive.read(n) for n in names if n.endswith(".asice")]
    except zipfile.BadZipFile as e:
        raise BenchError(f"/asic answered something that is not a zip: {e}") from e


def fetch_asic(ready: FederationReady, query_id: str, deadline: float) -> list[bytes]:
    """Both halves of exchange ``query_id`` from X-Road's ``GET /asic``, time-stamped first (``force``)."""
    query = urllib.parse.urlencode({**ready.asic_query, "queryId": query_id, "force": ""})
    while True:
        answer = http_get(f"{ready.client_proxy}/asic?{query}", {})
        if answer.status == 200:
            return containers_in(answer.body)
        if answer.status != 404 or time.monotonic() > deadline:
            text = answer.body[:300].decode("utf-8", "replace")
            raise BenchError(f"/asic for {query_id} answered HTTP {answer.status}: {text}")
        time.sleep(POLL_SECONDS)


def collect_containers(ready: FederationReady, count: int) -> list[bytes]:
    """``count`` containers: the requests and responses of ``count / 2`` fresh exchanges."""
    query_ids: list[str] = []
    for _ in range(math.ceil(count / 2)):
        answer = http_get(ready.url, ready.headers)
        query_id = _header(answer, "X-Road-Id")
        if answer.status != 200 or query_id is None:
            raise BenchError(f"an exchange answered HTTP {answer.status} without an X-Road-Id")
        query_ids.append(query_id)
    deadline = time.monotonic() + ASIC_WAIT_SECONDS
    containers: list[bytes] = []
    for query_id in query_ids:
        containers += fetch_asic(ready, query_id, deadline)
    return containers[:count]


def _verification_rate(containers: Sequence[bytes], trust: TrustMaterial | CertificateValidator) -> float:
    start = time.perf_counter()
    for index, data in enumerate(containers):
        try:
            verify_container(data, trust=trust)
        except XRoadError as e:
            raise BenchError(f"container {index} does not verify: {e.code}: {e.message}") from e
    return len(containers) / (time.perf_counter() - start)


def verify_evidence(ready: FederationReady, count: int) -> EvidenceResult:
    """Verify the containers one after another on this core, against the consumer's global configuration:
    once with one validator for all (signer chain and OCSP checked once), once with a validator each."""
    containers = collect_containers(ready, count)
    if not containers:
        raise BenchError("/asic returned no containers")
    trust = load_trust_material(globalconf_dir(ready.consumer_home))
    shared = _verification_rate(containers, CertificateValidator(trust))
    own = _verification_rate(containers, trust)
    return EvidenceResult(len(containers), shared, own)


# -- (b) and (c) together ------------------------------------------------------------------------------------


@dataclass
class ExchangeOutcome:
    result: WrkResult | None = None
    unavailable: str | None = None
    evidence: EvidenceResult | None = None
    evidence_skipped: str | None = None
    profile: Path | None = None


def run_exchange(
    wrk: str, load: Load, lua: Path, directory: Path, backend: ServerProcess, args: argparse.Namespace
) -> ExchangeOutcome:
    reason = exchange_unavailable()
    if reason is not None:
        return ExchangeOutcome(unavailable=reason, evidence_skipped="the federation did not run")
    try:
        federation = start_federation(
            directory, backend.url, profile=args.profile, timeout=args.ready_timeout
        )
    except BenchError as e:
        return ExchangeOutcome(unavailable=str(e), evidence_skipped="the federation did not run")
    outcome = ExchangeOutcome(profile=federation.profile_out)
    try:
        ready = federation.ready
        print(f"(b) federation ready: {ready.url}", flush=True)
        reason = probe(ready.url, ready.headers)
        if reason is not None:
            outcome.unavailable = reason
            outcome.evidence_skipped = "no exchange went through"
            return outcome
        outcome.result = measure(wrk, ready.url, ready.headers, load, lua)
        if outcome.result.failed > outcome.result.requests // 2:
            outcome.unavailable = f"{outcome.result.failed} of {outcome.result.requests} requests failed"
        try:
            outcome.evidence = verify_evidence(ready, args.containers)
        except BenchError as e:
            outcome.evidence_skipped = str(e)
        return outcome
    finally:
        federation.stop()


# -- the report ----------------------------------------------------------------------------------------------


def _row(label: str, result: WrkResult) -> str:
    return (
        f"{label:<34}{result.per_second:>10.1f}{result.p50_ms:>10.2f}{result.p99_ms:>10.2f}"
        f"{result.requests:>10}{result.failed:>8}"
    )


def report(load: Load, bare: WrkResult | None, bare_error: str | None, exchange: ExchangeOutcome) -> None:
    print()
    print(
        f"wrk: {load.threads} threads, {load.connections} connections, {load.duration_seconds} s "
        f"(after {load.warmup_seconds} s warm-up); {BODY_BYTES} B JSON answers; {os.cpu_count()} cores"
    )
    print(f"{'':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}{'failed':>8}")
    if bare is not None:
        print(_row("(a) bare chain", bare))
    else:
        print(f"(a) bare chain: did not run: {bare_error}")
    label = "(b) exchange, two nodes" + (" (profiled)" if exchange.profile else "")
    if exchange.result is not None:
        print(_row(label, exchange.result))
    if exchange.unavailable is not None:
        print(f"(b) exchange not available: {exchange.unavailable}")
    if bare is not None and exchange.result is not None and exchange.unavailable is None:
        ratio = exchange.result.per_second / bare.per_second
        print(f"ratio (b)/(a): {ratio:.2f} (target ≥ {TARGET_RATIO}; X-Road's own is about 0.11)")
        print(f"exchanges/s: {exchange.result.per_second:.0f} (target ≥ {TARGET_EXCHANGES_PER_SECOND:.0f})")
    if exchange.evidence is not None:
        e = exchange.evidence
        print(
            f"(c) offline evidence verification, {e.containers} containers on one core: "
            f"{e.shared_validator_per_second:.0f} messages/s with one validator for all, "
            f"{e.own_validator_per_second:.0f} with a validator per container "
            f"(target ≥ {TARGET_VERIFICATIONS_PER_CORE:.0f})"
        )
    else:
        print(f"(c) offline evidence verification skipped: {exchange.evidence_skipped}")


def print_profile(path: Path) -> None:
    print()
    print(
        f"Top {PROFILE_TOP} functions by cumulative time in the federation process (both nodes, the registry "
        "and the trust services), from READY until it stopped: the load and the evidence collection. "
        "cProfile sees the event loop's thread only: work in threads or worker processes is not in it."
    )
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(PROFILE_TOP)


# -- the command line ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-t", "--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("-c", "--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("-d", "--duration", type=int, default=10, help="seconds of each measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each measured run")
    parser.add_argument("--containers", type=int, default=200, help="containers verified in (c)")
    parser.add_argument("--profile", action="store_true", help="run (b) under cProfile and print the top")
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=FEDERATION_START_SECONDS,
        help="seconds to build the federation",
    )
    parser.add_argument("--federation-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.federation_child is not None:
        asyncio.run(federation_main(args.federation_child, args.backend, args.profile_out))
        return 0
    sys.path.insert(0, str(REPO_ROOT))  # for the federation of tests/security_server/exchange_world.py
    wrk = find_wrk()
    load = Load(args.threads, args.connections, args.duration, args.warmup)
    bare: WrkResult | None = None
    bare_error: str | None = None
    with tempfile.TemporaryDirectory(prefix="bench-exchange-") as tmp:
        directory = Path(tmp)
        lua = directory / "report.lua"
        lua.write_text(WRK_LUA)
        backend = start_server(ServerSpec("backend", BACKEND_HOST))
        try:
            try:
                bare = run_bare_chain(wrk, load, lua, directory, backend)
                print(f"(a) bare chain: {bare.per_second:.1f} req/s", flush=True)
            except BenchError as e:
                bare_error = str(e)
            exchange = run_exchange(wrk, load, lua, directory, backend, args)
        finally:
            backend.stop()
        report(load, bare, bare_error, exchange)
        if exchange.profile is not None and exchange.profile.exists():
            print_profile(exchange.profile)
    return 0 if bare is not None else 1


if __name__ == "__main__":
    sys.exit(main())
