"""A federation that exchanges messages: trust services, the registry, two enrolled nodes and a provider IS.

Built the way an agency builds it, through ``xroad-mn`` (see :mod:`tests.security_server.test_node_e2e`):
the registry approves the dev CA and TSA; node ``ss1`` (127.0.0.2, owner MN/GOV/9010001) hosts the consumer
subsystem ``bank-kyc``; node ``ss2`` (127.0.0.3, owner MN/GOV/9010002) hosts the provider subsystem
``civil-registry`` whose services are a REST API (``citizens``) and a SOAP operation (``getCitizen``, from a
WSDL) served by :func:`provider_is_app` on 127.0.0.1. Both nodes are certified, registered and serving their
client proxy (8080), server proxy (5500, mutual TLS), OCSP responder and admin API. A test module may write
settings into either node's ``node.toml`` (what the CLI reads too) and add overrides when it serves them, and
give ``node init`` options of each node's own (its database: ``--database-url``, ``--database-schema``).
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import aiohttp
from aiohttp import web
from lxml import etree

from security_server.app import RunningNode, run_node
from security_server.home import open_home, settings_file
from tests.security_server.test_node_e2e import (
    OWNERS,
    Node,
    World,
    init_and_certify,
    listed,
    register,
    running_world,
    xroad_mn,
)
from trust_services.app import RunningTrustService, TrustSettings, run_trust_service
from trust_services.store import TrustFiles, init_trust_dir
from xroad_mn.identifiers import SubsystemId, format_client_header, format_colon_id
from xroad_mn.settings import render_settings
from xroad_mn.transport.server import listen

__all__ = [
    "CONSUMER",
    "FAULT_REGNUM",
    "IS_FAULT",
    "PROVIDER",
    "SOAP_NS",
    "Federation",
    "ProviderIs",
    "federation_in",
    "related_parts",
    "running_federation",
    "write_node_settings",
]

CONSUMER: Final = OWNERS[0].subsystem("bank-kyc")
PROVIDER: Final = OWNERS[1].subsystem("civil-registry")
SOAP_NS: Final = "http://civil-registry.mn/xroad"
XRD: Final = "http://x-road.eu/xsd/xroad.xsd"
SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"

WSDL_TEMPLATE: Final = """<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd"
    xmlns:tns="{ns}" targetNamespace="{ns}" name="civilRegistry">
  <wsdl:types>
    <xsd:schema targetNamespace="{ns}" elementFormDefault="qualified">
      <xsd:import namespace="http://x-road.eu/xsd/xroad.xsd" schemaLocation="http://x-road.eu/xsd/xroad.xsd"/>
      <xsd:element name="getCitizen"><xsd:complexType><xsd:sequence>
        <xsd:element name="regnum" type="xsd:string"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="getCitizenResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="regnum" type="xsd:string"/>
        <xsd:element name="name" type="xsd:string"/></xsd:sequence></xsd:complexType></xsd:element>
    </xsd:schema>
  </wsdl:types>
  <wsdl:message name="getCitizen"><wsdl:part name="body" element="tns:getCitizen"/></wsdl:message>
  <wsdl:message name="getCitizenResponse">
    <wsdl:part name="body" element="tns:getCitizenResponse"/>
  </wsdl:message>
  <wsdl:message name="requestheader">
    <wsdl:part name="client" element="xrd:client"/>
    <wsdl:part name="service" element="xrd:service"/>
    <wsdl:part name="id" element="xrd:id"/>
    <wsdl:part name="userId" element="xrd:userId"/>
    <wsdl:part name="issue" element="xrd:issue"/>
    <wsdl:part name="protocolVersion" element="xrd:protocolVersion"/>
  </wsdl:message>
  <wsdl:portType name="civilRegistryPortType">
    <wsdl:operation name="getCitizen">
      <wsdl:input message="tns:getCitizen"/><wsdl:output message="tns:getCitizenResponse"/>
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="civilRegistryBinding" type="tns:civilRegistryPortType">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="getCitizen">
      <soap:operation soapAction="" style="document"/>
      <xrd:version>v1</xrd:version>
      <wsdl:input><soap:body parts="body" use="literal"/>
        <soap:header message="tns:requestheader" part="client" use="literal"/>
        <soap:header message="tns:requestheader" part="service" use="literal"/>
        <soap:header message="tns:requestheader" part="id" use="literal"/>
        <soap:header message="tns:requestheader" part="userId" use="literal"/>
        <soap:header message="tns:requestheader" part="issue" use="literal"/>
        <soap:header message="tns:requestheader" part="protocolVersion" use="literal"/>
      </wsdl:input>
      <wsdl:output><soap:body parts="body" use="literal"/>
        <soap:header message="tns:requestheader" part="client" use="literal"/>
        <soap:header message="tns:requestheader" part="service" use="literal"/>
        <soap:header message="tns:requestheader" part="id" use="literal"/>
        <soap:header message="tns:requestheader" part="userId" use="literal"/>
        <soap:header message="tns:requestheader" part="issue" use="literal"/>
        <soap:header message="tns:requestheader" part="protocolVersion" use="literal"/>
      </wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="civilRegistryService">
    <wsdl:port name="civilRegistryPort" binding="tns:civilRegistryBinding">
      <soap:address location="{location}"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""


@dataclass
class ProviderIs:
    """The provider's information system: what it received, and where it listens."""

    url: str
    received: list[dict[str, Any]]
    broken: bool = False
    """When set, every request is answered after the client gave up (a dead IS)."""


def _soap_response(request_xml: bytes) -> bytes:
    """The getCitizen response: the request's header copied, the body answered."""
    root = etree.fromstring(request_xml)
    header = root.find(f"{{{SOAP_ENV}}}Header")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    assert header is not None
    assert body is not None
    regnum = body.findtext(f"{{{SOAP_NS}}}getCitizen/{{{SOAP_NS}}}regnum") or ""
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"SOAP-ENV": SOAP_ENV, "xrd": XRD})
    env.append(header)
    out_body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    resp = etree.SubElement(out_body, f"{{{SOAP_NS}}}getCitizenResponse", nsmap={"c": SOAP_NS})
    etree.SubElement(resp, f"{{{SOAP_NS}}}regnum").text = regnum
    etree.SubElement(resp, f"{{{SOAP_NS}}}name").text = "Батбаяр Дорж"
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


FAULT_REGNUM: Final = "fault"
"""A getCitizen request for this registration number is answered with :data:`IS_FAULT`."""
IS_FAULT: Final = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
    b'xmlns:c="http://civil-registry.mn/xroad"><SOAP-ENV:Body><SOAP-ENV:Fault>'
    b"<faultcode>c:NoSuchCitizen</faultcode><faultstring>no citizen is registered so</faultstring>"
    b"<detail><c:regnum>fault</c:regnum></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
)


def _regnum(envelope: bytes) -> str:
    root = etree.fromstring(envelope)
    return root.findtext(f"{{{SOAP_ENV}}}Body/{{{SOAP_NS}}}getCitizen/{{{SOAP_NS}}}regnum") or ""


def related_parts(content_type: str, body: bytes) -> list[tuple[bytes, bytes]]:
    """The (header block, content) of each part of a flat ``multipart/related`` body, read independently of
    the code under test."""
    boundary = next(
        p.split("=", 1)[1].strip().strip('"')
        for p in content_type.split(";")
        if p.strip().startswith("boundary=")
    )
    delimiter = b"\r\n--" + boundary.encode()
    chunks = (b"\r\n" + body).split(delimiter)[1:]
    parts = []
    for chunk in chunks:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        parts.append((head, content))
    return parts


def _soap_with_attachments(content_type: str, body: bytes) -> web.Response:
    """The getCitizen response to a SwA or MTOM request: the SOAP part answered, every attachment sent back
    with its MIME headers, framed as the request was (SOAP part type, ``type`` and ``start-info``)."""
    (root_head, envelope), *attachments = related_parts(content_type, body)
    boundary = "civil-registry-answer"
    out = bytearray()
    for head, content in [(root_head, _soap_response(envelope)), *attachments]:
        out += b"--" + boundary.encode() + b"\r\n" + head + b"\r\n\r\n" + content + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    params = [p.strip() for p in content_type.split(";")[1:] if not p.strip().startswith("boundary=")]
    answer_type = "; ".join(["multipart/related", *params, f"boundary={boundary}"])
    return web.Response(body=bytes(out), headers={"Content-Type": answer_type})


def provider_is_app(state: ProviderIs) -> web.Application:
    """A small REST + SOAP information system (the civil registry) that records what it receives."""

    async def rest(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen = {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": [(k.decode(), v.decode()) for k, v in request.raw_headers],
            "body": body,
        }
        state.received.append(seen)
        tail = request.match_info["tail"]
        if tail == "missing":
            return web.json_response({"error": "no such citizen"}, status=404)
        if tail == "crash":
            return web.Response(status=500, text="internal failure of the registry")
        if tail == "moved":
            return web.Response(status=302, headers={"Location": "/api/citizens/new-place"})
        if tail == "binary":
            return web.Response(body=bytes(range(256)) * 4, content_type="application/octet-stream")
        if tail == "empty":
            return web.Response(status=204)
        answer = {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "body_size": len(body),
            "client": request.headers.get("X-Road-Client"),
            "name": "Батбаяр",
        }
        return web.Response(
            body=json.dumps(answer, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json; charset=utf-8", "X-Registry-Trace": "abc"},
        )

    async def soap(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        state.received.append(
            {"method": "POST", "path": "/soap", "headers": dict(request.headers), "body": body}
        )
        content_type = request.headers.get("Content-Type", "")
        if content_type.lower().startswith("multipart/related"):
            return _soap_with_attachments(content_type, body)
        if _regnum(body) == FAULT_REGNUM:
            return web.Response(
                status=500, body=IS_FAULT, headers={"Content-Type": "text/xml; charset=UTF-8"}
            )
        return web.Response(body=_soap_response(body), headers={"Content-Type": "text/xml; charset=UTF-8"})

    async def wsdl(request: web.Request) -> web.StreamResponse:
        text = WSDL_TEMPLATE.format(ns=SOAP_NS, location=f"{state.url}/soap")
        operation = request.query.get("operation")
        if operation:  # the same service under another operation name, without a version
            text = text.replace("getCitizen", operation).replace("<xrd:version>v1</xrd:version>", "")
        return web.Response(text=text, content_type="text/xml")

    app = web.Application()
    app.router.add_route("*", "/api/{tail:.*}", rest)
    app.router.add_post("/soap", soap)
    app.router.add_get("/civil.wsdl", wsdl)
    return app


@dataclass
class Federation:
    world: World
    consumer: Node
    provider: Node
    running: dict[str, RunningNode]
    provider_is: ProviderIs
    session: aiohttp.ClientSession
    overrides: dict[str, Any] = field(default_factory=dict)
    serving: dict[str, AsyncExitStack] = field(default_factory=dict)
    """Each node's serving context, by server code: :meth:`stop_node` and :meth:`start_node` (fault tests)."""
    api_keys: dict[str, str] = field(default_factory=dict)
    """Each node's first admin API key (every role but observer), by server code."""

    async def stop_node(self, node: Node) -> None:
        """Stop serving ``node`` (every listener closed, its exchange, message log and tasks ended)."""
        del self.running[node.server_code]
        await self.serving[node.server_code].aclose()

    async def start_node(self, node: Node, overrides: Mapping[str, Any] | None = None) -> RunningNode:
        """Serve ``node`` again from its home, with the federation's settings overrides and ``overrides``."""
        running = await self.serving[node.server_code].enter_async_context(
            serving_with(node, {**self.overrides, **(overrides or {})})
        )
        self.running[node.server_code] = running
        return running

    @property
    def client_proxy(self) -> str:
        """The consumer node's client proxy (port 8080)."""
        return f"http://{self.consumer.address}:8080"

    def rest_url(self, service_code: str, path: str = "") -> str:
        p = PROVIDER
        base = f"{self.client_proxy}/r1/{p.instance}/{p.member_class}/{p.member_code}/{p.subsystem_code}"
        return f"{base}/{service_code}{path}"

    @staticmethod
    def client_header(client: SubsystemId = CONSUMER) -> dict[str, str]:
        return {"X-Road-Client": format_client_header(client)}

    async def grant(self, service_code: str, *, method: str | None = None, path: str | None = None) -> None:
        endpoint = ["--method", method, "--path", path] if method and path else []
        await xroad_mn(
            "node", "access", "grant", *self.provider.dir, "--service",
            f"SERVICE:MN/GOV/{PROVIDER.member_code}/{PROVIDER.subsystem_code}/{service_code}",
            "--to", f"SUBSYSTEM:MN/GOV/{CONSUMER.member_code}/{CONSUMER.subsystem_code}", *endpoint, "--json",
        )  # fmt: skip


@asynccontextmanager
async def serving_with(node: Node, overrides: dict[str, Any]) -> AsyncIterator[RunningNode]:
    """What ``node serve`` runs, configuration downloaded every second and the node's own configuration
    read for every message (tests change access rights and see the change at once), with ``overrides``."""
    settings = open_home(
        node.home,
        env={},
        overrides={"globalconf_update_interval_seconds": 1, "server_conf_cache_seconds": 0, **overrides},
    )
    async with run_node(settings, pin=node.pin) as running:
        yield running


def write_node_settings(home: Path, settings: Mapping[str, Any]) -> None:
    """Write ``settings`` into the ``node.toml`` of the node at ``home``: the CLI reads them, and the node
    when it is served next."""
    path = settings_file(home)
    merged = {**tomllib.loads(path.read_text(encoding="utf-8")), **settings}
    path.write_text(render_settings(merged, app="node"), encoding="utf-8")


@asynccontextmanager
async def running_federation(
    tmp_path: Path,
    trust: RunningTrustService,
    *,
    addresses: tuple[str, str] = ("127.0.0.2", "127.0.0.3"),
    overrides: dict[str, Any] | None = None,
    settings: tuple[Mapping[str, Any], Mapping[str, Any]] = ({}, {}),
    init_options: tuple[Sequence[str], Sequence[str]] = ((), ()),
) -> AsyncIterator[Federation]:
    """The federation, its nodes on ``addresses`` (consumer, provider) with X-Road's default ports, each
    initialised with its ``init_options`` (consumer's, provider's: ``node init`` options, such as a PostgreSQL
    database), their ``settings`` written into their ``node.toml`` after ``node init`` and changed by
    ``overrides`` when served. Test modules that may run at the same time use distinct addresses."""
    consumer = Node(tmp_path / "ss1", OWNERS[0], "ss1", addresses[0], CONSUMER)
    provider = Node(tmp_path / "ss2", OWNERS[1], "ss2", addresses[1], PROVIDER)
    state = ProviderIs("", [])
    async with AsyncExitStack() as stack:
        world = await stack.enter_async_context(running_world(tmp_path, trust))
        files = TrustFiles(trust.directory)
        await xroad_mn(
            "registry", "tsa", "add", "--dir", str(world.registry_home), str(files.tsa_cert),
            "--url", trust.urls.tsa, "--json",
        )  # fmt: skip
        sock = listen("127.0.0.1", 0)
        state.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        runner = web.AppRunner(provider_is_app(state))
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.SockSite(runner, sock).start()
        api_keys = {
            node.server_code: await init_and_certify(world, node, list(options))
            for node, options in zip((consumer, provider), init_options, strict=True)
        }
        for node, written in zip((consumer, provider), settings, strict=True):
            write_node_settings(node.home, written)
        serving = {
            n.server_code: await stack.enter_async_context(AsyncExitStack()) for n in (consumer, provider)
        }
        running = {
            n.server_code: await serving[n.server_code].enter_async_context(serving_with(n, overrides or {}))
            for n in (consumer, provider)
        }
        for node in (consumer, provider):
            await register(world, node)
        for node in (consumer, provider):
            await node.wait_for_configuration(
                lambda shared: all(listed(shared, n) for n in (consumer, provider))
            )
            await node.wait_for(
                "OCSP responses", lambda s: all(c["ocsp_status"] == "good" for c in s["certificates"])
            )
        provider_client = f"SUBSYSTEM:MN/GOV/{PROVIDER.member_code}/{PROVIDER.subsystem_code}"
        await provider.cli("service", "add", "--client", provider_client, "--rest", f"{state.url}/api",
                           "--code", "citizens")  # fmt: skip
        await provider.cli("service", "add", "--client", provider_client, "--wsdl", f"{state.url}/civil.wsdl")
        session = await stack.enter_async_context(aiohttp.ClientSession())
        # The consumer's test IS calls over plain HTTP: its administrator sets the connection type (new
        # clients are SSLAUTH, as in X-Road).
        admin = running[consumer.server_code].admin_url
        for client in (CONSUMER, CONSUMER.member):
            async with session.patch(
                f"{admin}/api/v1/clients/{quote(format_colon_id(client), safe='')}",
                json={"connection_type": "NOSSL"},
                headers={"Authorization": f"X-Road-ApiKey token={api_keys[consumer.server_code]}"},
            ) as resp:
                assert resp.status == 200, await resp.text()
        yield Federation(
            world, consumer, provider, running, state, session, overrides or {}, serving, api_keys
        )


@asynccontextmanager
async def federation_in(
    root: Path,
    *,
    addresses: tuple[str, str],
    overrides: dict[str, Any] | None = None,
    settings: tuple[Mapping[str, Any], Mapping[str, Any]] = ({}, {}),
    init_options: tuple[Sequence[str], Sequence[str]] = ((), ()),
) -> AsyncIterator[Federation]:
    """A fresh set of dev trust services in ``root/trust`` and the federation on ``addresses`` (what a test
    module's federation fixture needs; the other arguments are :func:`running_federation`'s)."""
    directory = root / "trust"
    await asyncio.to_thread(init_trust_dir, directory, instance="MN", now=datetime.now(UTC))
    async with (
        run_trust_service(TrustSettings(dir=directory, host="127.0.0.1", port=0)) as trust,
        running_federation(
            root,
            trust,
            addresses=addresses,
            overrides=overrides,
            settings=settings,
            init_options=init_options,
        ) as fed,
    ):
        yield fed
