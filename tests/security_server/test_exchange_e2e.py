"""Messages between agencies, end to end: an IS calls REST services of another agency through two nodes.

The federation of :mod:`tests.security_server.exchange_world` (trust services, the registry, two nodes
enrolled through ``xroad-mn``, the civil registry's IS) is built once for the module, with a second provider
IS beside it (:func:`documents_is_app`: an echo service, an OpenAPI-described service and its
``openapi.yaml``). Every exchange goes through the consumer node's client proxy (127.0.0.2:8080), mutual TLS
to the provider node's server proxy (127.0.0.3:5500), the provider IS and back; both nodes sign, verify and
log it. The provider node does not log the bodies of its civil-registry subsystem.

What is proved, PR-REST and reference §3 by §3: methods, raw paths and queries, binary, empty and 5 MB
bodies, the IS's 404, 500 and 302 passed back as they are, header pass-through and filtering, message ids,
X-Road's errors (JSON and XML), access rights granted, revoked and per endpoint, the REST metaservices,
``listClients``, and the evidence (``node log export``, ``asic verify``, ``xmlsec1``, ``openssl ts``,
``GET /asic``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import subprocess
import uuid
import zipfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest
import pytest_asyncio
from aiohttp import web
from lxml import etree
from yarl import URL

from security_server.app import EXCHANGE_KEY
from security_server.home import globalconf_dir
from security_server.messagelog import Timestamper
from security_server.proxy.node import ExchangeNode
from tests.security_server.exchange_world import CONSUMER, PROVIDER, Federation, running_federation
from tests.security_server.test_node_e2e import xroad_mn
from trust_services.app import TrustSettings, run_trust_service
from trust_services.store import TrustFiles, init_trust_dir
from xroad_mn.identifiers import format_client_header
from xroad_mn.transport.server import listen
from xroad_mn.wire.soap import build_soap_request

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADDRESSES: Final = ("127.0.0.2", "127.0.0.3")
PROVIDER_CLIENT: Final = f"SUBSYSTEM:MN/GOV/{PROVIDER.member_code}/{PROVIDER.subsystem_code}"
CONSUMER_CLIENT: Final = f"SUBSYSTEM:MN/GOV/{CONSUMER.member_code}/{CONSUMER.subsystem_code}"
UUID_RE: Final = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
LARGE_BODY_BYTES: Final = 5 * 1024 * 1024
XMLSEC_ID_ATTR: Final = ("--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties")
DS: Final = "http://www.w3.org/2000/09/xmldsig#"
XADES: Final = "http://uri.etsi.org/01903/v1.3.2#"
OPENAPI_TEMPLATE: Final = """openapi: 3.0.3
info:
  title: People of the civil registry
  version: "1.0"
servers:
  - url: {url}
paths:
  /people/{{id}}:
    get:
      parameters:
        - {{name: id, in: path, required: true, schema: {{type: string}}}}
      responses:
        "200": {{description: one person}}
  /people:
    post:
      responses:
        "201": {{description: added}}
  /other:
    get:
      responses:
        "200": {{description: something else}}
"""


# -- the second provider IS -------------------------------------------------------------------------------


@dataclass
class DocumentsIs:
    """The provider's second information system: it echoes what it receives and serves an OpenAPI 3
    document."""

    url: str
    received: list[dict[str, Any]]

    @property
    def openapi(self) -> bytes:
        return OPENAPI_TEMPLATE.format(url=f"{self.url}/v2").encode()


def documents_is_app(state: DocumentsIs) -> web.Application:
    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        state.received.append(
            {
                "method": request.method,
                "raw_path": request.raw_path,
                "headers": [(k.decode(), v.decode()) for k, v in request.raw_headers],
                "body": body,
            }
        )
        headers = {
            "Content-Type": request.headers.get("Content-Type", "application/octet-stream"),
            "X-Custom-Response": "kept",
            # What the IS may not set: the provider node replaces them with its own.
            "X-Road-Request-Hash": "forged",
            "X-Road-Id": "forged",
            "X-Road-Client": "MN/GOV/forged",
        }
        return web.Response(status=200, body=body, headers=headers)

    async def openapi(request: web.Request) -> web.StreamResponse:
        return web.Response(body=state.openapi, content_type="application/yaml")

    app = web.Application(client_max_size=2 * LARGE_BODY_BYTES)
    app.router.add_get("/openapi.yaml", openapi)
    app.router.add_route("*", "/{base}/{tail:.*}", echo)
    return app


@dataclass
class Exchange:
    fed: Federation
    documents: DocumentsIs
    trust: TrustFiles

    def node(self, server_code: str) -> ExchangeNode:
        return self.fed.running[server_code].app[EXCHANGE_KEY].node

    async def grant(self, service_code: str, method: str | None = None, path: str | None = None) -> None:
        await self.fed.grant(service_code, method=method, path=path)

    async def revoke(self, service_code: str) -> None:
        await xroad_mn(
            "node", "access", "revoke", *self.fed.provider.dir, "--service", f"{service(service_code)}",
            "--to", CONSUMER_CLIENT, "--json",
        )  # fmt: skip

    async def call(
        self,
        method: str,
        service_code: str,
        path: str = "",
        *,
        body: bytes | io.BytesIO | None = None,
        **headers: str,
    ) -> tuple[int, dict[str, Any], bytes]:
        """One REST request through both nodes: status, headers (multi-valued: lists) and body."""
        url = URL(self.fed.rest_url(service_code, path), encoded=True)
        sent = {**self.fed.client_header(), **{k.replace("_", "-"): v for k, v in headers.items()}}
        async with self.fed.session.request(
            method, url, headers=sent, data=body, allow_redirects=False
        ) as resp:
            data = await resp.read()
            out: dict[str, Any] = {}
            for k, v in resp.headers.items():
                out.setdefault(k.lower(), []).append(v)
            return resp.status, out, data


def service(code: str) -> str:
    return f"SERVICE:MN/GOV/{PROVIDER.member_code}/{PROVIDER.subsystem_code}/{code}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def exchange(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Exchange]:
    root: Path = tmp_path_factory.mktemp("exchange")
    directory = root / "trust"
    await asyncio.to_thread(init_trust_dir, directory, instance="MN", now=datetime.now(UTC))
    overrides = {"disabled_body_logging_local_producer_subsystems": [format_client_header(PROVIDER)]}
    async with AsyncExitStack() as stack:
        sock = listen("127.0.0.1", 0)
        documents = DocumentsIs(f"http://127.0.0.1:{sock.getsockname()[1]}", [])
        runner = web.AppRunner(documents_is_app(documents))
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.SockSite(runner, sock).start()
        trust = await stack.enter_async_context(
            run_trust_service(TrustSettings(dir=directory, host="127.0.0.1", port=0))
        )
        fed = await stack.enter_async_context(
            running_federation(root, trust, addresses=ADDRESSES, overrides=overrides)
        )
        for code in ("echo", "documents", "hidden"):
            await fed.provider.cli(
                "service",
                "add",
                "--client",
                PROVIDER_CLIENT,
                "--rest",
                f"{documents.url}/{code}",
                "--code",
                code,
            )
        await fed.provider.cli(
            "service", "add", "--client", PROVIDER_CLIENT, "--openapi", f"{documents.url}/openapi.yaml",
            "--code", "people",
        )  # fmt: skip
        world = Exchange(fed, documents, TrustFiles(directory))
        await world.grant("citizens")
        await world.grant("echo")
        await world.grant("people", "GET", "/people/*")
        yield world


def _header_values(seen: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in seen if k.lower() == name.lower()]


# -- requests and responses -------------------------------------------------------------------------------


async def test_rest_get_through_two_nodes(exchange: Exchange) -> None:
    status, headers, body = await exchange.call("GET", "citizens", "/people/12345?fields=name&lang=mn")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["path"] == "/api/people/12345"
    assert answer["query"] == "fields=name&lang=mn"
    assert answer["name"] == "Батбаяр"
    assert answer["client"] == format_client_header(CONSUMER)
    assert headers["x-registry-trace"] == ["abc"]
    assert headers["content-type"] == ["application/json; charset=utf-8"]
    assert re.fullmatch(f"MN-{UUID_RE}", headers["x-road-id"][0]), headers["x-road-id"]
    assert re.fullmatch(UUID_RE, headers["x-road-request-id"][0])
    assert headers["x-road-request-hash"][0]
    assert headers["x-road-client"] == [format_client_header(CONSUMER)]
    assert headers["x-road-service"] == [f"{format_client_header(PROVIDER)}/citizens"]
    assert "x-road-error" not in headers


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_methods_carry_binary_bodies_raw_paths_and_queries(exchange: Exchange, method: str) -> None:
    payload = bytes(range(256)) * 3 + b"\r\n\x00end"
    path = "/people/%D0%91%20x%2Fy%41;v=1/~a?q=a%20b&x=%26&empty=&u=%D0%91&q=2"
    status, headers, body = await exchange.call(
        method, "echo", path, body=payload, Content_Type="application/octet-stream"
    )
    assert status == 200, body
    assert body == payload
    assert headers["content-type"] == ["application/octet-stream"]
    seen = exchange.documents.received[-1]
    assert seen["method"] == method
    assert seen["raw_path"] == "/echo" + path, "path and query reach the IS unmodified"
    assert seen["body"] == payload


async def test_head_and_empty_bodies(exchange: Exchange) -> None:
    status, _, body = await exchange.call("HEAD", "echo", "/people/1")
    assert (status, body) == (200, b"")
    assert exchange.documents.received[-1]["method"] == "HEAD"
    status, _, body = await exchange.call("POST", "echo", "/people", body=b"")
    assert (status, body) == (200, b"")
    assert exchange.documents.received[-1]["body"] == b""
    status, _, body = await exchange.call("GET", "citizens", "/empty")
    assert (status, body) == (204, b"")


async def test_large_bodies_both_ways(exchange: Exchange) -> None:
    payload = (uuid.uuid4().bytes * (LARGE_BODY_BYTES // 16 + 1))[:LARGE_BODY_BYTES]
    status, _, body = await exchange.call(
        "POST", "echo", "/upload", body=io.BytesIO(payload), Content_Type="application/octet-stream"
    )
    assert status == 200, body[:1000]
    assert len(body) == LARGE_BODY_BYTES
    assert body == payload


async def test_binary_response(exchange: Exchange) -> None:
    status, headers, body = await exchange.call("GET", "citizens", "/binary")
    assert status == 200
    assert body == bytes(range(256)) * 4
    assert headers["content-type"] == ["application/octet-stream"]


async def test_is_errors_and_redirects_come_back_as_they_are(exchange: Exchange) -> None:
    status, headers, body = await exchange.call("GET", "citizens", "/missing")
    assert status == 404
    assert json.loads(body) == {"error": "no such citizen"}
    assert "x-road-error" not in headers
    status, headers, body = await exchange.call("POST", "citizens", "/crash", body=b"{}")
    assert status == 500
    assert body == b"internal failure of the registry"
    assert "x-road-error" not in headers, "a 500 without X-Road-Error is the provider IS's own"
    assert headers["x-road-request-hash"]
    status, headers, body = await exchange.call("GET", "citizens", "/moved")
    assert status == 302, body
    assert headers["location"] == ["/api/citizens/new-place"]
    assert exchange.fed.provider_is.received[-1]["path"] == "/api/moved"


async def test_headers_pass_through_and_filtering(exchange: Exchange) -> None:
    query_id = f"given-{uuid.uuid4()}"
    status, headers, _ = await exchange.call(
        "GET", "echo", "/people/7",
        X_Custom_Header="custom value", Authorization="Bearer abc.def", Accept="application/json",
        Cache_Control="no-cache", X_Road_Id=query_id, X_Road_UserId="MN12345678", X_Road_Issue="case-42",
        X_Road_Request_Id="forged-request-id", X_Road_Request_Hash="forged-hash",
        Proxy_Authorization="Basic c2VjcmV0", TE="trailers", Keep_Alive="timeout=5", Trailer="X-After",
    )  # fmt: skip
    assert status == 200
    seen = exchange.documents.received[-1]["headers"]
    for name, value in [
        ("X-Custom-Header", "custom value"),
        ("Authorization", "Bearer abc.def"),
        ("Accept", "application/json"),
        ("Cache-Control", "no-cache"),
        ("X-Road-Id", query_id),
        ("X-Road-UserId", "MN12345678"),
        ("X-Road-Issue", "case-42"),
        ("X-Road-Client", format_client_header(CONSUMER)),
    ]:
        assert _header_values(seen, name) == [value], (name, seen)
    for name in ("Proxy-Authorization", "TE", "Keep-Alive", "Trailer", "User-Agent", "X-Road-Request-Hash"):
        assert not _header_values(seen, name), (name, seen)
    (request_id,) = _header_values(seen, "x-road-request-id")
    assert re.fullmatch(UUID_RE, request_id), "the node's own request id replaces the IS's"
    # The response: the IS's own headers kept, its X-Road ones replaced by the nodes'.
    assert headers["x-custom-response"] == ["kept"]
    assert headers["x-road-id"] == [query_id]
    assert headers["x-road-request-id"] == [request_id]
    assert headers["x-road-client"] == [format_client_header(CONSUMER)]
    assert headers["x-road-service"] == [f"{format_client_header(PROVIDER)}/echo"]
    (request_hash,) = headers["x-road-request-hash"]
    assert request_hash != "forged"
    assert len(base64.b64decode(request_hash)) == 64


async def test_message_id_is_generated_when_the_is_sends_none(exchange: Exchange) -> None:
    status, headers, _ = await exchange.call("GET", "echo", "/people/8")
    assert status == 200
    (query_id,) = headers["x-road-id"]
    assert re.fullmatch(f"MN-{UUID_RE}", query_id)
    assert _header_values(exchange.documents.received[-1]["headers"], "X-Road-Id") == [query_id]


# -- X-Road's errors -------------------------------------------------------------------------------------


async def _error(exchange: Exchange, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    async with exchange.fed.session.get(URL(url, encoded=True), headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def _json_error(status: int, headers: dict[str, str], body: bytes, code: str) -> dict[str, Any]:
    assert headers.get("X-Road-Error") == code, (status, headers, body)
    assert status == (400 if code.startswith("client.") else 500), (status, code)
    assert headers["Content-Type"].startswith("application/json")
    error: dict[str, Any] = json.loads(body)
    assert error["type"] == code
    assert error["message"]
    assert re.fullmatch(UUID_RE, error["detail"])
    return error


async def test_errors_in_x_road_format(exchange: Exchange) -> None:
    fed = exchange.fed
    client = fed.client_header()
    # The IS's own mistakes: client.*, 400.
    status, headers, body = await _error(exchange, fed.rest_url("citizens", "/people/1"), {})
    assert _json_error(status, headers, body, headers.get("X-Road-Error", ""))["type"].startswith("client.")
    status, headers, body = await _error(
        exchange, f"{fed.client_proxy}/r1/MN/GOV/{PROVIDER.member_code}", client
    )
    assert _json_error(status, headers, body, headers.get("X-Road-Error", ""))["type"].startswith("client.")
    # The same, in XML when the IS asks for it.
    status, headers, body = await _error(
        exchange, fed.rest_url("citizens", "/people/1"), {"Accept": "application/xml"}
    )
    assert status == 400
    assert headers["Content-Type"].startswith(("application/xml", "text/xml"))
    root = etree.fromstring(body)
    assert root.tag == "error"
    assert root.findtext("type") == headers["X-Road-Error"]
    assert root.findtext("message")
    assert re.fullmatch(UUID_RE, root.findtext("detail") or "")
    # A provider nobody serves.
    unknown = f"{fed.client_proxy}/r1/MN/GOV/{PROVIDER.member_code}/nobody/citizens/people/1"
    status, headers, body = await _error(exchange, unknown, client)
    assert _json_error(status, headers, body, headers.get("X-Road-Error", ""))["type"].endswith(
        "unknown_member"
    )
    # A client this node does not host.
    status, headers, body = await _error(
        exchange, fed.rest_url("citizens", "/people/1"), fed.client_header(PROVIDER)
    )
    assert _json_error(status, headers, body, headers.get("X-Road-Error", ""))["type"].endswith(
        "unknown_member"
    )
    # X-Road-Security-Server narrows the provider's nodes to one: its own node serves, another does not.
    status, headers, body = await _error(
        exchange,
        fed.rest_url("citizens", "/people/1"),
        {**client, "X-Road-Security-Server": "MN/GOV/9010002/ss2"},
    )
    assert status == 200, body
    status, headers, body = await _error(
        exchange,
        fed.rest_url("citizens", "/people/1"),
        {**client, "X-Road-Security-Server": "MN/GOV/9010001/ss1"},
    )
    _json_error(status, headers, body, "server.clientproxy.unknown_member")
    # Decided by the provider node: server.serverproxy.*, 500.
    status, headers, body = await _error(exchange, fed.rest_url("nosuch", "/x"), client)
    _json_error(status, headers, body, "server.serverproxy.unknown_service")
    # getCitizen is a SOAP service of version v1: a REST request names no version, so no such service
    # (X-Road looks services up by code and version).
    status, headers, body = await _error(exchange, fed.rest_url("getCitizen", "/x"), client)
    _json_error(status, headers, body, "server.serverproxy.unknown_service")
    status, headers, body = await _error(exchange, fed.rest_url("hidden", "/x"), client)
    _json_error(status, headers, body, "server.serverproxy.access_denied")


async def test_service_type_mismatch(exchange: Exchange) -> None:
    """A SOAP request for the REST service ``citizens``: the provider node refuses it as of the wrong
    type."""
    wrapper = etree.Element("{http://civil-registry.mn/xroad}citizens")
    envelope = build_soap_request(CONSUMER, PROVIDER.service("citizens"), str(uuid.uuid4()), wrapper)
    headers = {"Content-Type": "text/xml; charset=UTF-8"}
    async with exchange.fed.session.post(exchange.fed.client_proxy, data=envelope, headers=headers) as resp:
        body = await resp.read()
    assert resp.status == 500
    fault = etree.fromstring(body).find(".//{http://schemas.xmlsoap.org/soap/envelope/}Fault")
    assert fault is not None, body
    assert fault.findtext("faultcode") == "server.serverproxy.service_type"


# -- access rights ---------------------------------------------------------------------------------------


async def test_access_denied_granted_and_denied_again_after_revoking(exchange: Exchange) -> None:
    status, headers, body = await exchange.call("GET", "documents", "/people/1")
    assert status == 500
    assert headers["x-road-error"] == ["server.serverproxy.access_denied"]
    assert json.loads(body)["type"] == "server.serverproxy.access_denied"
    await exchange.grant("documents")
    status, headers, body = await exchange.call("GET", "documents", "/people/1")
    assert status == 200, body
    assert "x-road-error" not in headers
    await exchange.revoke("documents")
    status, headers, _ = await exchange.call("GET", "documents", "/people/1")
    assert status == 500, "the revocation is seen by the very next request"
    assert headers["x-road-error"] == ["server.serverproxy.access_denied"]


async def test_endpoint_level_rights(exchange: Exchange) -> None:
    status, _, body = await exchange.call("GET", "people", "/people/1")
    assert status == 200, body
    assert exchange.documents.received[-1]["raw_path"] == "/v2/people/1"
    for method, path in [
        ("POST", "/people"),
        ("GET", "/other"),
        ("GET", "/people/1/documents"),
        ("GET", "/people/%2e%2e/other"),
        ("GET", "/people/../other"),
        ("GET", "/people/%2E%2E"),
        ("GET", "/people/1%2Fdocuments"),
    ]:
        status, headers, body = await exchange.call(method, "people", path)
        assert status == 500, (method, path, body)
        assert headers["x-road-error"] == ["server.serverproxy.access_denied"], (method, path)
    status, _, _ = await exchange.call("GET", "people", "/peopl%65/%41%42")
    assert status == 200
    assert exchange.documents.received[-1]["raw_path"] == "/v2/peopl%65/%41%42"


# -- metaservices and listClients -------------------------------------------------------------------------


def _services(body: bytes) -> dict[str, dict[str, Any]]:
    answer = json.loads(body)
    assert set(answer) == {"service"}
    return {s["service_code"]: s for s in answer["service"]}


async def test_rest_metaservices(exchange: Exchange) -> None:
    status, headers, body = await exchange.call("GET", "listMethods")
    assert status == 200, body
    assert headers["content-type"][0].startswith("application/json")
    listed = _services(body)
    assert {"citizens", "echo", "documents", "hidden", "people"} <= set(listed)
    assert "getCitizen" not in listed, "SOAP services are not REST methods"
    assert listed["citizens"] == {
        "member_class": "GOV", "member_code": PROVIDER.member_code, "subsystem_code": PROVIDER.subsystem_code,
        "object_type": "SERVICE", "xroad_instance": "MN", "service_code": "citizens", "service_type": "REST",
        "endpoint_list": [],
    }  # fmt: skip
    assert listed["people"]["service_type"] == "OPENAPI"
    endpoints = {(e["method"], e["path"]) for e in listed["people"]["endpoint_list"]}
    assert endpoints == {("GET", "/people/*"), ("POST", "/people"), ("GET", "/other")}

    status, _, body = await exchange.call("GET", "allowedMethods")
    assert status == 200, body
    allowed = _services(body)
    assert {"citizens", "echo", "people"} <= set(allowed)
    assert "hidden" not in allowed, "allowedMethods lists only what the client may call"
    assert allowed["people"]["endpoint_list"] == [{"method": "GET", "path": "/people/*"}]

    status, _, body = await exchange.call("GET", "getOpenAPI", "?service%43ode=%70eople")
    assert status == 200, body
    assert body == exchange.documents.openapi
    status, headers, _ = await exchange.call("GET", "getOpenAPI", "?serviceCode=citizens")
    assert status == 500
    assert headers["x-road-error"][0].endswith("unknown_service")


async def test_list_clients(exchange: Exchange) -> None:
    url = f"{exchange.fed.client_proxy}/listClients"
    async with exchange.fed.session.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/xml")
        root = etree.fromstring(await resp.read())
    xrd, ident = "{http://x-road.eu/xsd/xroad.xsd}", "{http://x-road.eu/xsd/identifiers}"
    assert root.tag == f"{xrd}clientList"
    codes = {
        (m.findtext(f"{xrd}id/{ident}memberCode"), m.findtext(f"{xrd}id/{ident}subsystemCode"))
        for m in root.iter(f"{xrd}member")
    }
    assert (CONSUMER.member_code, CONSUMER.subsystem_code) in codes
    assert (PROVIDER.member_code, PROVIDER.subsystem_code) in codes
    assert (PROVIDER.member_code, None) in codes
    async with exchange.fed.session.get(url, headers={"Accept": "application/json"}) as resp:
        assert resp.status == 200
        members = (await resp.json())["member"]
    ids = [m["id"] for m in members]
    assert {
        "member_class": "GOV", "member_code": CONSUMER.member_code, "subsystem_code": CONSUMER.subsystem_code,
        "object_type": "SUBSYSTEM", "xroad_instance": "MN",
    } in ids  # fmt: skip
    assert all(m["name"] for m in members)


# -- evidence ----------------------------------------------------------------------------------------------


def _timestamper(node: ExchangeNode) -> Timestamper:
    timestamper = node.message_log.timestamper
    assert isinstance(timestamper, Timestamper)
    return timestamper


async def _stamped(node: ExchangeNode, query_id: str, records: int) -> None:
    """Until the ``records`` records of ``query_id`` are time-stamped (a round woken now)."""
    for _ in range(20):
        found = await node.message_log.store.find(query_id)
        if len(found) == records and all(r.timestamped for r in found):
            return
        await _timestamper(node).timestamp_now()
    raise AssertionError(f"the records of {query_id} were never time-stamped")


def _xmlsec_verify(xmlsec1: str, tmp: Path, trust: TrustFiles, entries: dict[str, bytes]) -> None:
    """``xmlsec1 --verify`` of the container's signature, its referenced entries mapped, the CA trusted."""
    signature = entries["META-INF/signatures.xml"]
    (tmp / "signatures.xml").write_bytes(signature)
    references = etree.fromstring(signature).xpath("//ds:Reference/@URI", namespaces={"ds": DS})
    assert isinstance(references, list)
    args = [xmlsec1, "--verify", *XMLSEC_ID_ATTR]
    for uri in references:
        assert isinstance(uri, str)
        if uri.startswith("#"):
            continue
        part = tmp / uri.strip("/")
        part.write_bytes(entries[uri.strip("/")])
        args += [f"--url-map:{uri}", str(part)]
    args += ["--trusted-pem", str(trust.ca_cert), str(tmp / "signatures.xml")]
    check = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def _openssl_ts_verify(openssl: str, tmp: Path, trust: TrustFiles, entries: dict[str, bytes]) -> None:
    """``openssl ts -verify`` of the container's time-stamp token over what X-Road stamps."""
    if "META-INF/timestamp.tst" in entries:  # a batch time-stamp over ts-hashchainresult.xml
        token, data = entries["META-INF/timestamp.tst"], entries["ts-hashchainresult.xml"]
    else:  # a single time-stamp inside the signature, over the decoded SignatureValue
        root = etree.fromstring(entries["META-INF/signatures.xml"])
        ns = {"ds": DS, "xades": XADES}
        token = base64.b64decode(str(root.xpath("string(//xades:EncapsulatedTimeStamp)", namespaces=ns)))
        data = base64.b64decode(str(root.xpath("string(//ds:SignatureValue)", namespaces=ns)))
    (tmp / "token.der").write_bytes(token)
    (tmp / "data.bin").write_bytes(data)
    (tmp / "tsa.pem").write_bytes(trust.tsa_cert.read_bytes() + trust.ca_cert.read_bytes())
    check = subprocess.run(
        [openssl, "ts", "-verify", "-token_in", "-in", str(tmp / "token.der"), "-data", str(tmp / "data.bin"),
         "-CAfile", str(tmp / "tsa.pem"), "-untrusted", str(tmp / "tsa.pem"), "-partial_chain"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


async def test_evidence_of_an_exchange_verifies_with_outside_tools(
    exchange: Exchange, tmp_path: Path, xmlsec1: str, openssl: str
) -> None:
    query_id = f"evidence-{uuid.uuid4()}"
    payload = b'{"regnum": "\xd0\x91\xd0\x90 12345678", "purpose": "kyc"}'
    status, _, body = await exchange.call(
        "POST", "echo", "/people/search?secret=1", body=payload, X_Road_Id=query_id,
        Content_Type="application/json", X_Private="personal",
    )  # fmt: skip
    assert status == 200
    assert body == payload
    consumer, provider = exchange.node("ss1"), exchange.node("ss2")
    await _stamped(consumer, query_id, 2)
    await _stamped(provider, query_id, 2)

    home = exchange.fed.consumer.home
    out = tmp_path / "evidence"
    export = ("node", "log", "export", "--dir", str(home), "--x-road-id", query_id, "--out", str(out))
    exported = (await xroad_mn(*export, "--json")).json()
    files = [Path(f["file"]) for f in exported["files"]]
    assert [("request" in f.name, "response" in f.name) for f in files] == [(True, False), (False, True)]
    for path in files:
        verdict = (
            await xroad_mn("asic", "verify", str(path), "--conf", str(globalconf_dir(home)), "--json")
        ).json()
        assert verdict["valid"] is True, verdict
        assert verdict["timestamp_time"]
        with zipfile.ZipFile(path) as zf:
            entries = {n: zf.read(n) for n in zf.namelist()}
        assert entries["attachment1"] == payload, "the consumer node logged the body"
        work = tmp_path / path.stem
        work.mkdir()
        _xmlsec_verify(xmlsec1, work, exchange.trust, entries)
        _openssl_ts_verify(openssl, work, exchange.trust, entries)

    # X-Road's own retrieval on the client proxy returns the same containers.
    params = {
        "xRoadInstance": "MN", "memberClass": "GOV", "memberCode": CONSUMER.member_code,
        "subsystemCode": CONSUMER.subsystem_code, "queryId": query_id,
    }  # fmt: skip
    async with exchange.fed.session.get(f"{exchange.fed.client_proxy}/asic", params=params) as resp:
        assert resp.status == 200, await resp.text()
        with zipfile.ZipFile(io.BytesIO(await resp.read())) as zf:
            served = {n: zf.read(n) for n in zf.namelist()}
    assert served == {f.name: f.read_bytes() for f in files}

    # A search export (here by the X-Road id) holds the same containers, their digests in the manifest.
    bundle = tmp_path / "evidence.zip"
    zipped = (
        await xroad_mn("node", "log", "export", "--dir", str(home), "--x-road-id", query_id, "--out",
                       str(bundle), "--json")
    ).json()  # fmt: skip
    assert (zipped["containers"], zipped["skipped"], zipped["complete"]) == (2, 0, True)
    with zipfile.ZipFile(bundle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert {c["file"]: zf.read(c["file"]) for c in manifest["containers"]} == served
    assert all(hashlib.sha256(served[c["file"]]).hexdigest() == c["sha256"] for c in manifest["containers"])
    assert manifest["asked"] == {"x_road_id": query_id}

    # The provider node logged both halves too, without their bodies (body logging off for its subsystem).
    records = await provider.message_log.store.find(query_id)
    assert [r.response for r in records] == [False, True]
    for record in records:
        assert record.attachments == ()
        assert b"regnum" not in record.message
        assert b"X-Private" not in record.message
        assert b"secret=1" not in record.message
        assert query_id.encode() in record.message
    assert records[0].message.startswith(b"POST\r\n/r1/MN/GOV/")
