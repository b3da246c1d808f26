"""Faults in the middle of traffic: every exchange completes with evidence or fails with its X-Road code.

The federation of :mod:`tests.security_server.exchange_world` runs once for the module on 127.0.0.6
(consumer) and 127.0.0.7 (provider), with the trust services (CA, OCSP responder, TSA) and the registry
stoppable and restartable on the same ports, and a second provider IS of the module's own (service
``fragile``) that can be stopped, restarted and slowed down. While :data:`CONCURRENCY` REST GETs at a time
go through the consumer's client proxy, one part after another is stopped and started again: the provider
IS, the provider node, the trust services (TSA and OCSP responder), the registry. Every answer is either a
200 or an X-Road error whose code is one that fault allows (never a stack trace); after each fault the
message logs of both nodes hold only signed records, a request and a response for every completed exchange
and nothing for an exchange refused before logging; once the part is back, traffic flows again without a
restart. Garbage from an IS and from a peer, a disabled or unknown service, and (last, as it is
destructive) a consumer whose authentication certificate the CA revoked, each get their X-Road code.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from lxml import etree

from security_server.api.call import OCSP_REFRESHER_KEY
from security_server.app import EXCHANGE_KEY, RunningNode
from security_server.home import api_keys_file
from security_server.messagelog.timestamper import Timestamper
from security_server.operations.init import FIRST_KEY_ROLES
from tests.security_server.exchange_world import (
    CONSUMER,
    PROVIDER,
    SOAP_NS,
    Federation,
    running_federation,
)
from tests.security_server.test_node_e2e import certificate
from trust_services.app import RunningTrustService, TrustSettings, run_trust_service
from trust_services.store import init_trust_dir
from xroad_mn.admin import create_api_key
from xroad_mn.transport.server import listen
from xroad_mn.wire.soap import build_soap_request

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADDRESSES: Final = ("127.0.0.6", "127.0.0.7")
CONCURRENCY: Final = 20
"""REST GETs in flight at once while a part is down."""
FRAGILE: Final = "fragile"
"""The service code of the module's own provider IS (stopped, restarted, slowed down)."""
PROVIDER_ID: Final = f"MN:GOV:{PROVIDER.member_code}:{PROVIDER.subsystem_code}"
SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"


# -- the parts that fail ----------------------------------------------------------------------------------


@dataclass
class FragileIs:
    """A provider IS on a fixed port that the test stops, starts and slows down."""

    port: int = 0
    delay: float = 0.0
    """Seconds every answer waits (a slow IS)."""
    calls: int = 0
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def app(self) -> web.Application:
        async def answer(request: web.Request) -> web.StreamResponse:
            self.calls += 1
            if self.delay:
                await asyncio.sleep(self.delay)
            return web.json_response({"path": request.path, "fragile": True})

        app = web.Application()
        app.router.add_route("*", "/api/{tail:.*}", answer)
        return app

    async def start(self) -> None:
        sock = listen("127.0.0.1", self.port)
        self.port = int(sock.getsockname()[1])
        self.runner = web.AppRunner(self.app(), shutdown_timeout=0.1)
        await self.runner.setup()
        await web.SockSite(self.runner, sock).start()

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()
        self.runner = None


@dataclass
class TrustServices:
    """The dev CA, OCSP responder and TSA, stoppable and served again on the same port."""

    directory: Path
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    running: RunningTrustService | None = None

    async def start(self) -> RunningTrustService:
        port = self.running.port if self.running is not None else 0
        settings = TrustSettings(dir=self.directory, host="127.0.0.1", port=port)
        self.running = await self.stack.enter_async_context(run_trust_service(settings))
        return self.running

    async def stop(self) -> None:
        await self.stack.aclose()


@dataclass
class Faults:
    fed: Federation
    trust: TrustServices
    fragile: FragileIs
    admin_key: str
    fragile_description: int

    def node(self, code: str) -> RunningNode:
        return self.fed.running[code]

    async def admin(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """The provider node's admin API (``/api/v1``) with a key of the first key's roles."""
        url = f"{self.node('ss2').admin_url}/api/v1{path}"
        headers = {"Authorization": f"X-Road-ApiKey token={self.admin_key}"}
        async with self.fed.session.request(method, url, json=body, headers=headers) as resp:
            text = await resp.text()
            assert resp.status == 200, text
            return json.loads(text)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def faults(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Faults]:
    root: Path = tmp_path_factory.mktemp("faults")
    directory = root / "trust"
    await asyncio.to_thread(init_trust_dir, directory, instance="MN", now=datetime.now(UTC))
    trust = TrustServices(directory)
    fragile = FragileIs()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(trust.stop)
        running_trust = await trust.start()
        await fragile.start()
        stack.push_async_callback(lambda: fragile.stop() if fragile.runner is not None else asyncio.sleep(0))
        fed = await stack.enter_async_context(running_federation(root, running_trust, addresses=ADDRESSES))
        provider = f"SUBSYSTEM:MN/GOV/{PROVIDER.member_code}/{PROVIDER.subsystem_code}"
        added = await fed.provider.cli(
            "service", "add", "--client", provider, "--rest", fragile.url, "--code", FRAGILE
        )  # fmt: skip
        await fed.grant("citizens")
        await fed.grant(FRAGILE)
        created = await asyncio.to_thread(
            create_api_key, api_keys_file(fed.provider.home), FIRST_KEY_ROLES, datetime.now(UTC)
        )
        yield Faults(fed, trust, fragile, created.token, int(added["id"]))


# -- traffic ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One REST exchange as the consumer IS saw it."""

    query_id: str
    status: int
    code: str | None
    body: bytes

    @property
    def completed(self) -> bool:
        return self.status == 200


async def get(fed: Federation, service: str = "citizens", path: str = "/people/1") -> Outcome:
    query_id = f"fault-{uuid.uuid4()}"
    headers = {**fed.client_header(), "X-Road-Id": query_id}
    async with fed.session.get(fed.rest_url(service, path), headers=headers) as resp:
        body = await resp.read()
        outcome = Outcome(query_id, resp.status, resp.headers.get("X-Road-Error"), body)
    if outcome.completed:
        assert resp.headers["X-Road-Id"] == query_id
        assert resp.headers["X-Road-Request-Hash"]
    else:
        assert b"Traceback" not in body
        assert outcome.code is not None, (outcome.status, body)
        assert json.loads(body)["type"] == outcome.code
    return outcome


async def burst(fed: Federation, service: str = "citizens") -> list[Outcome]:
    return list(await asyncio.gather(*(get(fed, service) for _ in range(CONCURRENCY))))


class Traffic:
    """Bursts of :data:`CONCURRENCY` GETs, one after another, until the block ends."""

    def __init__(self, fed: Federation, service: str) -> None:
        self.fed, self.service = fed, service
        self.outcomes: list[Outcome] = []
        self._stop = asyncio.Event()
        self._burst_done = asyncio.Condition()
        self.bursts = 0
        self.ended = False

    async def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.outcomes.extend(await burst(self.fed, self.service))
                async with self._burst_done:
                    self.bursts += 1
                    self._burst_done.notify_all()
        finally:
            self.ended = True
            async with self._burst_done:
                self._burst_done.notify_all()

    async def wait_bursts(self, count: int) -> None:
        """Until ``count`` more bursts completed (or the traffic ended: its failure is raised at the end of
        :meth:`running`)."""
        target = self.bursts + count
        async with self._burst_done:
            await self._burst_done.wait_for(lambda: self.bursts >= target or self.ended)

    @classmethod
    @asynccontextmanager
    async def running(cls, fed: Federation, service: str = "citizens") -> AsyncIterator[Traffic]:
        traffic = cls(fed, service)
        task = asyncio.create_task(traffic._run())
        try:
            yield traffic
            await traffic.wait_bursts(1)
        finally:
            traffic._stop.set()
            await task

    def check(self, allowed: Collection[str]) -> None:
        """Every exchange completed or failed with an ``allowed`` code."""
        assert self.outcomes
        codes = {o.code for o in self.outcomes if not o.completed}
        assert codes <= set(allowed), codes


async def all_complete(fed: Federation, service: str = "citizens") -> list[Outcome]:
    """A burst in which every exchange completes (the part is back, nothing was restarted)."""
    outcomes = await burst(fed, service)
    assert [o for o in outcomes if not o.completed] == [], outcomes
    return outcomes


# -- the message logs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Logged:
    query_id: str
    x_request_id: str
    response: bool
    signature: bytes
    timestamped: bool


async def records(running: RunningNode) -> list[Logged]:
    """Every record of the node's message log as the store reads it (a shared batch signature included)."""
    store = running.app[EXCHANGE_KEY].node.message_log.store
    stored = await store.records_after(0, limit=1_000_000)
    return [
        Logged(r.query_id, r.x_request_id, r.response, r.signature.signature_xml, r.timestamped)
        for r in stored
    ]


def _signed(signature: bytes) -> bool:
    root = etree.fromstring(signature)
    value = root.find(".//{http://www.w3.org/2000/09/xmldsig#}SignatureValue")
    return value is not None and bool((value.text or "").strip())


async def check_logs(
    fx: Faults, outcomes: Collection[Outcome], *, refused_before_logging: bool = False
) -> None:
    """Both logs: every record signed; per exchange at most one request and one response, a response only
    after its request; both halves on both nodes for every completed exchange; with
    ``refused_before_logging``, nothing at all on the provider for the failed ones."""
    by_node = {code: await records(fx.node(code)) for code in ("ss1", "ss2")}
    for logged in by_node.values():
        assert all(_signed(r.signature) for r in logged)
        pairs: dict[str, list[bool]] = {}
        for r in logged:
            pairs.setdefault(r.x_request_id, []).append(r.response)
        assert all(kinds in ([False], [False, True]) for kinds in pairs.values()), pairs
    for node_code, logged in by_node.items():
        by_query: dict[str, list[bool]] = {}
        for r in logged:
            by_query.setdefault(r.query_id, []).append(r.response)
        for o in outcomes:
            if o.completed:
                assert by_query.get(o.query_id) == [False, True], (node_code, o)
            elif refused_before_logging and node_code == "ss2":
                assert o.query_id not in by_query, (node_code, o)


# -- tests --------------------------------------------------------------------------------------------------


async def test_provider_is_stopped_and_restarted_in_the_middle_of_traffic(faults: Faults) -> None:
    fed = faults.fed
    async with Traffic.running(fed, FRAGILE) as traffic:
        await traffic.wait_bursts(1)
        await faults.fragile.stop()
        await traffic.wait_bursts(2)
        down = len(traffic.outcomes)
        await faults.fragile.start()
    # X-Road: the provider's HTTP client cannot connect (ConnectException) -> network_error.
    traffic.check({"server.serverproxy.network_error"})
    assert any(o.code == "server.serverproxy.network_error" for o in traffic.outcomes[:down])
    await check_logs(faults, traffic.outcomes)
    await check_logs(faults, await all_complete(fed, FRAGILE))


async def test_a_slow_provider_is_is_cut_at_the_service_timeout(faults: Faults) -> None:
    fed = faults.fed
    service = f"/clients/{PROVIDER_ID}/services/{FRAGILE}"
    changed = await faults.admin("PATCH", service, {"timeout_seconds": 1})
    assert changed["timeout_seconds"] == 1
    faults.fragile.delay = 1.5
    try:
        outcomes = await burst(fed, FRAGILE)
    finally:
        faults.fragile.delay = 0.0
        await faults.admin("PATCH", service, {"timeout_seconds": 60})
    # X-Road: the socket timeout of the service (SocketTimeoutException, an IOException) -> io_error.
    assert {o.code for o in outcomes} == {"server.serverproxy.io_error"}
    await check_logs(faults, outcomes)
    await check_logs(faults, await all_complete(fed, FRAGILE))


async def test_a_disabled_and_an_unknown_service(faults: Faults) -> None:
    fed = faults.fed
    description = f"/service-descriptions/{faults.fragile_description}"
    await faults.admin("PATCH", description, {"disabled": True, "disabled_notice": "maintenance until noon"})
    try:
        disabled = await burst(fed, FRAGILE)
    finally:
        await faults.admin("PATCH", description, {"disabled": False})
    assert {o.code for o in disabled} == {"server.serverproxy.service_disabled"}
    assert b"maintenance until noon" in disabled[0].body
    unknown = await get(fed, "nothing-here")
    assert unknown.code == "server.serverproxy.unknown_service"
    await check_logs(faults, [*disabled, unknown], refused_before_logging=True)
    await check_logs(faults, await all_complete(fed, FRAGILE))


async def _soap_call(fed: Federation) -> tuple[str, bytes]:
    """A getCitizen request through the consumer node: the SOAP fault code (or "" for a response)."""
    body = etree.Element(f"{{{SOAP_NS}}}getCitizen", nsmap={"c": SOAP_NS})
    etree.SubElement(body, f"{{{SOAP_NS}}}regnum").text = "12345"
    request = build_soap_request(
        CONSUMER, PROVIDER.service("getCitizen", "v1"), f"fault-{uuid.uuid4()}", body
    )
    headers = {"Content-Type": "text/xml; charset=UTF-8"}
    async with fed.session.post(fed.client_proxy + "/", data=request, headers=headers) as resp:
        answer = await resp.read()
    assert b"Traceback" not in answer
    fault = etree.fromstring(answer).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    if fault is None:
        assert resp.status == 200, answer
        return "", answer
    assert resp.status == 500, answer
    return fault.findtext("faultcode") or "", answer


async def test_a_soap_information_system_that_is_dead_or_answers_garbage(faults: Faults) -> None:
    fed = faults.fed
    await fed.grant("getCitizen")
    service = f"/clients/{PROVIDER_ID}/services/getCitizen?version=v1"
    original = (await faults.admin("PATCH", service, {}))["url"]
    dead = listen("127.0.0.1", 0)
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/soap"
    dead.close()
    before = {code: len(await records(fed.running[code])) for code in ("ss1", "ss2")}
    try:
        # X-Road's DefaultServiceHandlerImpl: translateException(ex).withPrefix(X_SERVICE_FAILED_X).
        await faults.admin("PATCH", service, {"url": dead_url})
        code, _ = await _soap_call(fed)
        assert code == "server.serverproxy.service_failed.network_error"
        await faults.admin("PATCH", service, {"url": f"{faults.fragile.url}/not-soap"})  # answers JSON
        code, _ = await _soap_call(fed)
        assert code == "server.serverproxy.service_failed.invalid_content_type"
    finally:
        await faults.admin("PATCH", service, {"url": original})
    code, answer = await _soap_call(fed)
    assert code == "", answer
    after = {code: len(await records(fed.running[code])) for code in ("ss1", "ss2")}
    # Each failed exchange left its request on both nodes (signed and logged before the IS was called)
    # and no response; the exchange that completed left both halves on both.
    assert after == {code: count + 2 + 2 for code, count in before.items()}
    await check_logs(faults, [])


async def test_the_provider_node_stopped_and_started_in_the_middle_of_traffic(faults: Faults) -> None:
    fed = faults.fed
    async with Traffic.running(fed) as traffic:
        await traffic.wait_bursts(1)
        await fed.stop_node(fed.provider)
        await traffic.wait_bursts(2)
        await fed.start_node(fed.provider)
    traffic.check({"server.clientproxy.network_error"})
    assert any(o.code == "server.clientproxy.network_error" for o in traffic.outcomes)
    await check_logs(faults, traffic.outcomes)
    await check_logs(faults, await all_complete(fed))


async def test_the_registry_down_exchanges_go_on_with_the_cached_configuration(faults: Faults) -> None:
    fed = faults.fed
    world = fed.world
    async with Traffic.running(fed) as traffic:
        await traffic.wait_bursts(1)
        await world.stop_registry()
        await asyncio.sleep(2.5)  # more than two download rounds of both nodes fail meanwhile
        await world.start_registry()
    traffic.check(set())
    await check_logs(faults, traffic.outcomes)
    await check_logs(faults, await all_complete(fed))


def _timestamper(running: RunningNode) -> Timestamper:
    timestamper = running.app[EXCHANGE_KEY].node.message_log.timestamper
    assert isinstance(timestamper, Timestamper)
    return timestamper


async def _stamp_round(running: RunningNode) -> None:
    timestamper = _timestamper(running)
    rounds = timestamper.rounds
    timestamper.wake()
    await timestamper.wait_for_round(rounds)


async def test_trust_services_down_tsa_and_ocsp(faults: Faults) -> None:
    fed = faults.fed
    nodes = [fed.running["ss1"], fed.running["ss2"]]
    for running in nodes:
        await _stamp_round(running)
    async with Traffic.running(fed) as traffic:
        await traffic.wait_bursts(1)
        await faults.trust.stop()
        # The OCSP responses are fetched again (and fail): the nodes go on with the fresh ones they hold.
        for running in nodes:
            refresher = running.app[OCSP_REFRESHER_KEY]
            refreshes = refresher.refreshes
            refresher.wake()
            await refresher.wait_for_round(refreshes)
            await _stamp_round(running)
            assert _timestamper(running).failing_since is not None
        await traffic.wait_bursts(2)
    # Within the acceptable failure period every exchange completes; its records wait for a time-stamp.
    traffic.check(set())
    await check_logs(faults, traffic.outcomes)
    unstamped = {r.query_id for r in await records(nodes[0]) if not r.timestamped}
    assert {o.query_id for o in traffic.outcomes} <= unstamped

    # Past the acceptable failure period the node refuses new exchanges rather than keep unstamped evidence.
    consumer = _timestamper(nodes[0])
    period = consumer.acceptable_failure_period
    consumer.acceptable_failure_period = timedelta(milliseconds=100)
    try:
        await asyncio.sleep(0.2)
        refused = await burst(fed)
        assert {o.code for o in refused} == {"server.clientproxy.timestamper_failed"}
        await check_logs(faults, refused, refused_before_logging=True)
        assert not {o.query_id for o in refused} & {r.query_id for r in await records(nodes[0])}

        # The TSA answers again: what waited is stamped, and exchanges resume.
        await faults.trust.start()
        for running in nodes:
            await _stamp_round(running)
            assert _timestamper(running).failing_since is None
            assert [r for r in await records(running) if not r.timestamped] == []
        await check_logs(faults, await all_complete(fed))
    finally:
        consumer.acceptable_failure_period = period


async def test_garbage_from_an_information_system(faults: Faults) -> None:
    fed = faults.fed
    before = {code: len(await records(fed.running[code])) for code in ("ss1", "ss2")}
    rest = fed.rest_url("citizens", "/people/1")
    bad_requests: list[tuple[str, dict[str, str], bytes]] = [
        (rest, {}, b""),  # no X-Road-Client
        (rest, {"X-Road-Client": "MN/GOV"}, b""),
        (rest, {"X-Road-Client": "MN/GOV/9010001/bank-kyc/extra/parts"}, b""),
        (f"{fed.client_proxy}/r1/MN/GOV", fed.client_header(), b""),
        (f"{fed.client_proxy}/r1/MN/GOV/{PROVIDER.member_code}/%00/citizens", fed.client_header(), b""),
    ]
    for url, headers, _ in bad_requests:
        async with fed.session.get(url, headers=headers) as resp:
            body = await resp.read()
            assert resp.status == 400, (url, headers, body)
            code = resp.headers["X-Road-Error"]
            assert code.startswith("client."), code
            assert json.loads(body)["type"] == code
            assert b"Traceback" not in body
    for soap in (b"<not-xml", b"<a/>", f'<Envelope xmlns="{SOAP_ENV}"><Body/></Envelope>'.encode(), b""):
        async with fed.session.post(
            fed.client_proxy + "/", data=soap, headers={"Content-Type": "text/xml; charset=UTF-8"}
        ) as resp:
            body = await resp.read()
            assert resp.status == 500, body
            fault = etree.fromstring(body).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
            assert fault is not None, body
            assert (fault.findtext("faultcode") or "").startswith("client."), body
            assert b"Traceback" not in body
    after = {code: len(await records(fed.running[code])) for code in ("ss1", "ss2")}
    assert after == before


async def test_garbage_from_a_peer(faults: Faults) -> None:
    fed = faults.fed
    provider = fed.running["ss2"]
    before = len(await records(provider))
    tls = fed.running["ss1"].app[EXCHANGE_KEY].tls.client
    url = f"https://{fed.provider.address}:5500/"
    garbage: list[tuple[str, bytes]] = [
        ("text/plain", b"hello"),
        ("multipart/mixed; boundary=b", b"--b\r\nContent-Type: text/xml\r\n\r\n<a/>\r\n--b--\r\n"),
        ("multipart/mixed; boundary=b", b"--b\r\n\r\n\x00\xff garbage"),
        ("multipart/mixed", bytes(range(256))),
    ]
    connector = aiohttp.TCPConnector(ssl=tls)
    async with aiohttp.ClientSession(connector=connector) as session:
        for content_type, body in garbage:
            async with session.post(url, data=body, headers={"Content-Type": content_type}) as resp:
                answer = await resp.read()
                assert resp.status == 500, answer
                assert resp.headers["Content-Type"].startswith("text/xml")
                fault = etree.fromstring(answer).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
                assert fault is not None, answer
                assert (fault.findtext("faultcode") or "").startswith("server.serverproxy."), answer
                assert b"Traceback" not in answer
    assert len(await records(provider)) == before
    await check_logs(faults, await all_complete(fed))


async def test_a_consumer_whose_authentication_certificate_was_revoked(faults: Faults) -> None:
    """Last: the consumer cannot exchange messages any more."""
    fed = faults.fed
    consumer = fed.running["ss1"]
    await fed.world.revoke(fed.consumer.serials["auth"])
    consumer.app[OCSP_REFRESHER_KEY].wake()
    await fed.consumer.wait_for(
        "revoked OCSP status", lambda s: certificate(s, "auth")["ocsp_status"] == "revoked"
    )
    outcomes = await burst(fed)
    # The consumer sends its own OCSP response (revoked) with the request; the provider refuses the
    # TLS client certificate (X-Road: CertHelper.verifyAuthCert -> X_SSL_AUTH_FAILED).
    for o in outcomes:
        assert o.status == 500, o
        assert (o.code or "").startswith("server.serverproxy.ssl_authentication_failed"), o
        assert "revoked" in json.loads(o.body)["message"]
    await check_logs(faults, outcomes, refused_before_logging=True)
