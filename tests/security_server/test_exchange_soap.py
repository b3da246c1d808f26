"""SOAP between agencies, end to end: an IS calls the civil registry's SOAP service through two nodes.

The federation of :mod:`tests.security_server.exchange_world` is built once for the module, its nodes on
127.0.0.4 (consumer, client proxy on 8080) and 127.0.0.5 (provider, server proxy on 5500). Every request is
a SOAP 4.0 message POSTed to the consumer's client proxy; the provider node calls the provider IS's ``/soap``
and both nodes sign, verify and log. Covered: plain SOAP with the header echoed and ``requestHash``
inserted, SwA and MTOM attachments both ways, the IS's own fault, X-Road's faults on each side, the
metaservices ``listMethods``, ``allowedMethods``, ``getWsdl`` and the client proxy's ``/wsdl``, a zeep
client built from that WSDL, and the evidence both nodes logged (``node log export``, ``asic verify``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import pytest
import pytest_asyncio
from lxml import etree

from security_server.home import globalconf_dir
from tests.security_server.exchange_world import (
    CONSUMER,
    FAULT_REGNUM,
    PROVIDER,
    SOAP_NS,
    Federation,
    federation_in,
    related_parts,
)
from tests.security_server.test_node_e2e import xroad_mn
from tests.xroad_xsd import xroad_soap_headers, zeep_client
from xroad_mn.identifiers import ID_NS, ClientId, ServiceId
from xroad_mn.wire.soap import build_soap_request

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADDRESSES: Final = ("127.0.0.4", "127.0.0.5")
XRD: Final = "http://x-road.eu/xsd/xroad.xsd"
ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SHA512_ID: Final = "http://www.w3.org/2001/04/xmlenc#sha512"
GET_CITIZEN: Final = PROVIDER.service("getCitizen", "v1")
NS: Final = {"s": ENV, "x": XRD, "id": ID_NS, "c": SOAP_NS}
UNVERSIONED: Final = "getAddress"
"""A second SOAP operation of the provider, without a version (so a REST client can name it)."""
HEADER_FIELDS: Final = ("client", "service", "userId", "id", "issue", "protocolVersion")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with federation_in(tmp_path_factory.mktemp("exchange-soap"), addresses=ADDRESSES) as fed:
        provider_client = f"SUBSYSTEM:MN/GOV/{PROVIDER.member_code}/{PROVIDER.subsystem_code}"
        wsdl = f"{fed.provider_is.url}/civil.wsdl?operation={UNVERSIONED}"
        await fed.provider.cli("service", "add", "--client", provider_client, "--wsdl", wsdl)
        await fed.grant("getCitizen")
        await fed.grant(UNVERSIONED)
        yield fed


# -- helpers ----------------------------------------------------------------------------------------------


def citizen_request(
    regnum: str = "УБ99112233",
    *,
    client: ClientId = CONSUMER,
    service: ServiceId = GET_CITIZEN,
    query_id: str | None = None,
    inner: bytes = b"",
    wrapper: str = "getCitizen",
) -> bytes:
    body = f'<c:{wrapper} xmlns:c="{SOAP_NS}"><c:regnum>{regnum}</c:regnum>'.encode() + inner
    return build_soap_request(
        client, service, query_id or str(uuid.uuid4()), body + f"</c:{wrapper}>".encode(),
        user_id="MN-officer-7", issue="ticket-42",
    )  # fmt: skip


async def post(
    fed: Federation, body: bytes, content_type: str = "text/xml; charset=UTF-8", **headers: str
) -> tuple[int, str, bytes]:
    async with fed.session.post(
        f"{fed.client_proxy}/", data=body, headers={"Content-Type": content_type, **headers}
    ) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


def fault_of(body: bytes) -> tuple[str, str]:
    root = etree.fromstring(body)
    fault = root.find("s:Body/s:Fault", NS)
    assert fault is not None, body
    return fault.findtext("faultcode") or "", fault.findtext("faultstring") or ""


def header_fields(envelope: etree._Element) -> list[tuple[str, bytes]]:
    """The X-Road header fields in order, each as canonical XML with the prefixes taken out of the tags."""
    header = envelope.find("s:Header", NS)
    assert header is not None
    fields = []
    for child in header:
        qname = etree.QName(child)
        if qname.namespace == XRD and qname.localname in HEADER_FIELDS:
            fields.append((qname.localname, etree.tostring(child, method="c14n", exclusive=True)))
    return fields


def related(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """(headers, content) of each part of a flat ``multipart/related`` body (read without our MIME code)."""
    out = []
    for head, content in related_parts(content_type, body):
        lines = [line.split(b":", 1) for line in head.split(b"\r\n") if line]
        out.append(({k.decode().strip().lower(): v.decode().strip() for k, v in lines}, content))
    return out


def check_answer(request: bytes, soap_part: bytes, regnum: str = "УБ99112233") -> etree._Element:
    """The response echoes the request's X-Road header, carries the provider node's ``requestHash`` of the
    request's SOAP bytes right after ``xrd:id``, and the IS's answer."""
    sent, got = etree.fromstring(request), etree.fromstring(soap_part)
    assert header_fields(got) == header_fields(sent)
    request_hash = got.find("s:Header/x:requestHash", NS)
    assert request_hash is not None, soap_part
    assert request_hash.get("algorithmId") == SHA512_ID
    assert request_hash.text == base64.b64encode(hashlib.sha512(request).digest()).decode()
    previous = request_hash.getprevious()
    assert previous is not None
    assert previous.tag == f"{{{XRD}}}id"
    assert got.findtext("s:Body/c:getCitizenResponse/c:regnum", namespaces=NS) == regnum
    assert got.findtext("s:Body/c:getCitizenResponse/c:name", namespaces=NS) == "Батбаяр Дорж"
    return got


def last_is_request(fed: Federation) -> dict[str, Any]:
    soap = [r for r in fed.provider_is.received if r["path"] == "/soap"]
    assert soap, "the provider IS received no SOAP request"
    return soap[-1]


# -- SOAP through two nodes -------------------------------------------------------------------------------


async def test_soap_request_reaches_the_provider_is_and_the_answer_echoes_the_header(
    federation: Federation,
) -> None:
    fed = federation
    request = citizen_request()
    status, content_type, body = await post(fed, request, SOAPAction='"getCitizen"')
    assert status == 200, body
    assert content_type.startswith("text/xml")
    check_answer(request, body)
    seen = last_is_request(fed)
    assert seen["body"] == request  # the exact bytes, never re-serialised
    assert seen["headers"]["SOAPAction"] == '"getCitizen"'
    assert seen["headers"]["Content-Type"].startswith("text/xml")


async def test_swa_attachments_reach_the_is_intact_and_come_back(federation: Federation) -> None:
    fed = federation
    request = citizen_request()
    binary = bytes(range(256)) * 8 + b"\r\n--not-a-boundary\r\n"
    attachments = [
        ((("Content-Type", "text/plain; charset=UTF-8"), ("Client-Header", "FooBar")), "blaah ✓".encode()),
        (
            (("Content-Type", "application/octet-stream"), ("Content-ID", "<scan-1@civil-registry.mn>"),
             ("Content-Transfer-Encoding", "binary")),
            binary,
        ),
    ]  # fmt: skip
    boundary = "swa-boundary-1"
    out = bytearray(f"--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\n\r\n".encode() + request)
    for headers, data in attachments:
        out += f"\r\n--{boundary}\r\n".encode()
        out += "".join(f"{k}: {v}\r\n" for k, v in headers).encode() + b"\r\n" + data
    out += f"\r\n--{boundary}--\r\n".encode()
    content_type = f'multipart/related; type="text/xml"; charset=UTF-8; boundary={boundary}'
    status, answer_type, body = await post(fed, bytes(out), content_type)
    assert status == 200, body
    assert answer_type.startswith("multipart/related")
    (soap_headers, soap_part), *returned = related(answer_type, body)
    assert soap_headers["content-type"].startswith("text/xml")
    check_answer(request, soap_part)
    # what the IS received, read as raw bytes: the SOAP part and each attachment with its MIME headers
    seen = last_is_request(fed)
    received_parts = related(seen["headers"]["Content-Type"], seen["body"])
    assert received_parts[0][1] == request
    assert [(h, d) for h, d in received_parts[1:]] == [
        ({k.lower(): v for k, v in headers}, data) for headers, data in attachments
    ]
    # and what came back: the IS echoed them, the nodes carried them unchanged
    assert [(h, d) for h, d in returned] == [
        ({k.lower(): v for k, v in headers}, data) for headers, data in attachments
    ]


async def test_mtom_request_with_an_attachment(federation: Federation) -> None:
    fed = federation
    include = b'<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:photo-1@civil.mn"/>'
    request = citizen_request(inner=include)
    photo = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
    boundary = "mtom-boundary-7"
    root_type = 'application/xop+xml; charset=UTF-8; type="text/xml"'
    body = (
        f"--{boundary}\r\nContent-Type: {root_type}\r\nContent-ID: <root.message@civil.mn>\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + request
    body += (
        f"\r\n--{boundary}\r\nContent-Type: image/png\r\nContent-ID: <photo-1@civil.mn>\r\n"
        "Content-Transfer-Encoding: binary\r\n\r\n"
    ).encode() + photo
    body += f"\r\n--{boundary}--\r\n".encode()
    content_type = (
        f'multipart/related; type="application/xop+xml"; start="<root.message@civil.mn>"; '
        f'start-info="text/xml"; boundary="{boundary}"'
    )
    status, answer_type, answer = await post(fed, body, content_type)
    assert status == 200, answer
    parts = related(answer_type, answer)
    assert parts[0][0]["content-type"].startswith("application/xop+xml")
    check_answer(request, parts[0][1])
    assert parts[1] == (
        {
            "content-type": "image/png",
            "content-id": "<photo-1@civil.mn>",
            "content-transfer-encoding": "binary",
        },
        photo,
    )
    seen = last_is_request(fed)
    received_parts = related(seen["headers"]["Content-Type"], seen["body"])
    assert received_parts[0][0]["content-type"].startswith("application/xop+xml")
    assert received_parts[0][0]["content-id"] == "<root.message@civil.mn>"
    assert received_parts[0][1] == request
    assert received_parts[1][1] == photo


# -- faults -----------------------------------------------------------------------------------------------


async def test_a_fault_of_the_information_system_passes_through(federation: Federation) -> None:
    status, content_type, body = await post(federation, citizen_request(FAULT_REGNUM))
    assert status == 500, body
    assert content_type.startswith("text/xml")
    code, message = fault_of(body)
    assert (code, message) == ("c:NoSuchCitizen", "no citizen is registered so")
    detail = etree.fromstring(body).findtext("s:Body/s:Fault/detail/c:regnum", namespaces=NS)
    assert detail == FAULT_REGNUM


@pytest.mark.parametrize(
    ("request_body", "code"),
    [
        pytest.param(
            lambda: citizen_request(client=CONSUMER.member), "server.serverproxy.access_denied",
            id="no-access-right",
        ),
        pytest.param(
            lambda: citizen_request(service=PROVIDER.service("getNobody", "v1"), wrapper="getNobody"),
            "server.serverproxy.unknown_service",
            id="unknown-service",
        ),
        pytest.param(
            lambda: citizen_request().replace(b">4.0<", b">5.0<"), "client.invalid_protocol_version",
            id="protocol-version",
        ),
        pytest.param(
            lambda: citizen_request(service=PROVIDER.service("getCitizenPhoto", "v1")),
            "client.inconsistent_headers",
            id="body-wrapper-not-service-code",
        ),
        pytest.param(
            lambda: etree.tostring(_without(citizen_request(), "id")), "client.missing_header_field",
            id="missing-id",
        ),
        pytest.param(
            lambda: etree.tostring(_without(citizen_request(), "client")), "client.missing_header_field",
            id="missing-client",
        ),
        pytest.param(
            lambda: citizen_request(service=PROVIDER.service("citizens"), wrapper="citizens"),
            "server.serverproxy.service_type",
            id="soap-call-to-rest-service",
        ),
    ],
)  # fmt: skip
async def test_x_road_errors_come_back_as_soap_faults(
    federation: Federation, request_body: Any, code: str
) -> None:
    received = len(federation.provider_is.received)
    status, content_type, body = await post(federation, request_body())
    assert status == 500, body
    assert content_type.startswith("text/xml")
    got, message = fault_of(body)
    assert got == code, message
    assert message
    assert len(federation.provider_is.received) == received  # nothing reached the IS


def _without(raw: bytes, field: str) -> etree._Element:
    root = etree.fromstring(raw)
    element = root.find(f"s:Header/x:{field}", NS)
    assert element is not None
    element.getparent().remove(element)  # type: ignore[union-attr]
    return root


async def test_a_rest_client_calling_the_soap_service_is_refused(federation: Federation) -> None:
    fed = federation
    async with fed.session.get(fed.rest_url(UNVERSIONED), headers=fed.client_header()) as resp:
        body = await resp.read()
        assert resp.status == 500, body
        assert resp.headers["X-Road-Error"] == "server.serverproxy.service_type"
        assert json.loads(body)["type"] == "server.serverproxy.service_type"


# -- metaservices and /wsdl -------------------------------------------------------------------------------


def metaservice_request(code: str, body: bytes) -> bytes:
    return build_soap_request(CONSUMER, PROVIDER.service(code), str(uuid.uuid4()), body)


async def test_list_methods_and_allowed_methods(federation: Federation) -> None:
    for code in ("listMethods", "allowedMethods"):
        request = metaservice_request(code, f'<xrd:{code} xmlns:xrd="{XRD}"/>'.encode())
        status, _type, body = await post(federation, request)
        assert status == 200, body
        answer = etree.fromstring(body)
        assert header_fields(answer) == header_fields(etree.fromstring(request))
        assert answer.find("s:Header/x:requestHash", NS) is not None
        listed = answer.find(f"s:Body/x:{code}Response", NS)
        assert listed is not None, body
        services = [
            (s.get(f"{{{ID_NS}}}objectType"), s.findtext("id:serviceCode", namespaces=NS),
             s.findtext("id:serviceVersion", namespaces=NS), s.findtext("id:subsystemCode", namespaces=NS))
            for s in listed.findall("x:service", NS)
        ]  # fmt: skip
        # the SOAP service only (the REST API is listed by the REST metaservices), no metaservice itself
        assert sorted(services, key=str) == [
            ("SERVICE", UNVERSIONED, None, PROVIDER.subsystem_code),
            ("SERVICE", "getCitizen", "v1", PROVIDER.subsystem_code),
        ], code


async def test_get_wsdl_answers_with_the_wsdl_as_an_attachment(federation: Federation) -> None:
    body = f'<xrd:getWsdl xmlns:xrd="{XRD}"><xrd:serviceCode>getCitizen</xrd:serviceCode>'
    body += "<xrd:serviceVersion>v1</xrd:serviceVersion></xrd:getWsdl>"
    request = metaservice_request("getWsdl", body.encode())
    status, content_type, answer = await post(federation, request)
    assert status == 200, answer
    (_soap_headers, soap_part), (wsdl_headers, wsdl) = related(content_type, answer)
    envelope = etree.fromstring(soap_part)
    assert header_fields(envelope) == header_fields(etree.fromstring(request))
    assert envelope.findtext("s:Body/x:getWsdlResponse/x:serviceCode", namespaces=NS) == "getCitizen"
    assert envelope.findtext("s:Body/x:getWsdlResponse/x:serviceVersion", namespaces=NS) == "v1"
    assert wsdl_headers["content-type"].startswith("text/xml")
    assert wsdl_headers["content-id"].startswith("<wsdl=")
    _check_wsdl(wsdl)


def _check_wsdl(wsdl: bytes) -> None:
    """The civil registry's WSDL, its endpoint hidden behind X-Road's constant address."""
    root = etree.fromstring(wsdl)
    assert root.get("targetNamespace") == SOAP_NS
    locations = root.xpath(
        "//soap:address/@location", namespaces={"soap": "http://schemas.xmlsoap.org/wsdl/soap/"}
    )
    assert locations == ["http://example.org/xroad-endpoint"]
    assert b"127.0.0.1" not in wsdl


def wsdl_url(fed: Federation) -> str:
    p = PROVIDER
    return (
        f"{fed.client_proxy}/wsdl?xRoadInstance={p.instance}&memberClass={p.member_class}"
        f"&memberCode={p.member_code}&subsystemCode={p.subsystem_code}&serviceCode=getCitizen&version=v1"
    )


async def test_wsdl_of_the_client_proxy(federation: Federation) -> None:
    async with federation.session.get(wsdl_url(federation)) as resp:
        wsdl = await resp.read()
        assert resp.status == 200, wsdl
        assert resp.headers["Content-Type"].startswith("text/xml")
    _check_wsdl(wsdl)


async def test_wsdl_of_an_unknown_service_is_the_provider_nodes_error(federation: Federation) -> None:
    url = wsdl_url(federation).replace("serviceCode=getCitizen", "serviceCode=getNobody")
    async with federation.session.get(url) as resp:
        body = await resp.read()
        assert resp.status == 500, body
        assert resp.headers["X-Road-Error"] == "server.serverproxy.unknown_service"


async def test_zeep_calls_get_citizen_through_both_nodes(federation: Federation) -> None:
    fed = federation
    query_id = str(uuid.uuid4())
    header = xroad_soap_headers(CONSUMER, GET_CITIZEN, query_id, "MN-officer-7")

    def call() -> Any:
        client = zeep_client(wsdl_url(fed))
        service = client.create_service(  # type: ignore[no-untyped-call]
            "{http://civil-registry.mn/xroad}civilRegistryBinding", f"{fed.client_proxy}/"
        )
        return service.getCitizen(regnum="ДА12345678", _soapheaders=header)

    answer = await asyncio.to_thread(call)
    assert answer.body["regnum"] == "ДА12345678"
    assert answer.body["name"] == "Батбаяр Дорж"
    assert answer.header["id"] == query_id  # the header, echoed, read by zeep against X-Road's schema
    assert answer.header["client"]["subsystemCode"] == CONSUMER.subsystem_code
    seen = last_is_request(fed)
    assert query_id.encode() in seen["body"]


# -- evidence ---------------------------------------------------------------------------------------------


async def test_both_nodes_logged_both_halves_and_the_evidence_verifies(
    federation: Federation, tmp_path: Path
) -> None:
    fed = federation
    query_id = f"evidence-{uuid.uuid4()}"
    request = citizen_request(query_id=query_id)
    status, _type, body = await post(fed, request)
    assert status == 200, body
    c = CONSUMER
    params = (
        f"xRoadInstance={c.instance}&memberClass={c.member_class}&memberCode={c.member_code}"
        f"&subsystemCode={c.subsystem_code}&queryId={query_id}&force"
    )
    for node in (fed.consumer, fed.provider):
        # X-Road's /asic on each node's client proxy (a loopback IS) stamps the records now and returns them
        async with fed.session.get(f"http://{node.address}:8080/asic?{params}") as resp:
            archive = await resp.read()
            assert resp.status == 200, archive
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            assert len(zf.namelist()) == 2, zf.namelist()
        out = tmp_path / node.server_code
        ran = await xroad_mn(
            "node", "log", "export", *node.dir, "--x-road-id", query_id, "--out", str(out), "--json"
        )
        files = ran.json()["files"]
        assert len(files) == 2
        messages = []
        for item in files:
            verified = await xroad_mn(
                "asic", "verify", item["file"], "--conf", str(globalconf_dir(node.home)), "--json"
            )
            assert verified.json()["valid"] is True, verified.output
            with zipfile.ZipFile(item["file"]) as zf:
                messages.append(zf.read("message.xml"))
        # the request as the consumer IS sent it, the response as the provider node signed it
        assert request in messages
        (response,) = [m for m in messages if m != request]
        check_answer(request, response)
