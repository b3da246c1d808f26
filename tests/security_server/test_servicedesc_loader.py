"""DescriptionLoader against a real aiohttp server on loopback, and refreshes through the real node store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from security_server.db import DescriptionType, NodeStore, ServiceDescription
from security_server.servicedesc import DescriptionLoader, ParsedDescription, openapi_source
from tests.security_server.conftest import OWNER
from xroad_mn.errors import FaultCode, XRoadError

MN = Path(__file__).parent.parent / "data" / "servicedesc"
PROVIDER = OWNER.subsystem("civilregistry")
BANK = OWNER.subsystem("bank")
CIVIL_WSDL = (MN / "civil-registration.wsdl").read_bytes()
CIVIL_OPENAPI = (MN / "civil-registration.yaml").read_bytes()


@dataclass
class Served:
    """A description server on 127.0.0.1: ``docs`` by path, ``hits`` counts requests."""

    base: str
    docs: dict[str, bytes]
    hits: list[str] = field(default_factory=list)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    docs = {"/civil.wsdl": CIVIL_WSDL, "/docs/openapi.yaml": CIVIL_OPENAPI}
    state = Served("", docs)

    async def document(request: web.Request) -> web.StreamResponse:
        state.hits.append(request.path)
        if request.path == "/slow":
            await asyncio.sleep(5)
        if request.path == "/redirect":
            raise web.HTTPFound("/civil.wsdl")
        if request.path == "/endless":  # chunked, no Content-Length, never ends on its own
            response = web.StreamResponse()
            await response.prepare(request)
            for _ in range(1000):
                await response.write(b"<!--" + b"x" * 65536 + b"-->")
            return response
        if request.path == "/declared-huge":
            return web.Response(body=b"x" * 2048)
        if request.path not in state.docs:
            raise web.HTTPNotFound()
        return web.Response(body=state.docs[request.path])

    app = web.Application()
    app.router.add_get("/{tail:.*}", document)
    runner = web.AppRunner(app, handler_cancellation=True)  # /slow ends when the client gives up
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.base = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _fails(code: str, call: object) -> XRoadError:
    assert asyncio.iscoroutine(call)
    with pytest.raises(XRoadError) as e:
        await call
    assert e.value.code == code, e.value
    assert e.value.http_status == 400
    return e.value


async def test_wsdl_by_url(served: Served, session: aiohttp.ClientSession) -> None:
    parsed = await DescriptionLoader(session).wsdl(served.base + "/civil.wsdl")
    assert parsed.url == served.base + "/civil.wsdl"
    assert {s.code for s in parsed.services} == {"getCitizen", "getCitizenAddress", "checkCitizenRegnum"}
    via_redirect = await DescriptionLoader(session).wsdl(served.base + "/redirect")
    assert via_redirect.services == parsed.services


async def test_openapi_by_url_resolves_its_relative_server(
    served: Served, session: aiohttp.ClientSession
) -> None:
    parsed = await DescriptionLoader(session).openapi(
        served.base + "/docs/openapi.yaml", service_code="citizens"
    )
    assert (parsed.url, parsed.document) == (served.base + "/docs/openapi.yaml", None)
    assert parsed.services[0].url == served.base + "/api/v1"
    assert ("GET", "/citizens/*") in {(e.method, e.path) for e in parsed.endpoints}


async def test_openapi_from_a_file(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    loader = DescriptionLoader(session)
    parsed = await loader.openapi(MN / "vehicle-registry.json", service_code="vehicles")
    assert parsed.url is None
    assert parsed.document == (MN / "vehicle-registry.json").read_bytes()
    await _fails(
        FaultCode.OPENAPI_FILE_NOT_FOUND, loader.openapi(tmp_path / "missing.yaml", service_code="vehicles")
    )
    await _fails(FaultCode.OPENAPI_FILE_NOT_FOUND, loader.openapi(tmp_path, service_code="vehicles"))
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2000)
    small = DescriptionLoader(session, max_bytes=1000)
    await _fails(FaultCode.OPENAPI_PARSING, small.openapi(big, service_code="vehicles"))


def test_openapi_source_takes_files_only_as_paths() -> None:
    assert openapi_source("https://x.gov.mn/openapi.yaml") == "https://x.gov.mn/openapi.yaml"
    assert openapi_source("HTTP://x.gov.mn/o") == "HTTP://x.gov.mn/o"
    assert openapi_source("./openapi.yaml") == Path("openapi.yaml")
    assert openapi_source("file:///etc/passwd") == Path("file:///etc/passwd")  # a (missing) file, not a URL


async def test_failed_fetches_carry_x_roads_codes(served: Served, session: aiohttp.ClientSession) -> None:
    loader = DescriptionLoader(session)
    await _fails(FaultCode.WSDL_DOWNLOAD_FAILED, loader.wsdl(served.base + "/missing.wsdl"))
    await _fails(FaultCode.OPENAPI_PARSING, loader.openapi(served.base + "/missing.yaml", service_code="c"))
    # nothing listens on port 9 of loopback
    await _fails(FaultCode.WSDL_DOWNLOAD_FAILED, loader.wsdl("http://127.0.0.1:9/x.wsdl"))
    # a document that is not a WSDL
    served.docs["/not.wsdl"] = CIVIL_OPENAPI
    await _fails(FaultCode.INVALID_WSDL, loader.wsdl(served.base + "/not.wsdl"))


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/x.wsdl", "http:///x", "not a url", ""]
)
async def test_only_http_urls_are_fetched(url: str, served: Served, session: aiohttp.ClientSession) -> None:
    loader = DescriptionLoader(session)
    await _fails(FaultCode.MALFORMED_URL, loader.wsdl(url))
    await _fails(FaultCode.MALFORMED_URL, loader.openapi(url, service_code="c"))
    assert served.hits == []


async def test_slow_server_times_out(served: Served, session: aiohttp.ClientSession) -> None:
    started = time.monotonic()
    error = await _fails(
        FaultCode.WSDL_DOWNLOAD_FAILED,
        DescriptionLoader(session, timeout_seconds=0.3).wsdl(served.base + "/slow"),
    )
    assert "longer than 0.3 s" in error.message
    assert time.monotonic() - started < 3


async def test_size_bound_holds_while_streaming(served: Served, session: aiohttp.ClientSession) -> None:
    loader = DescriptionLoader(session, max_bytes=1024 * 1024)
    started = time.monotonic()
    error = await _fails(FaultCode.INVALID_WSDL, loader.wsdl(served.base + "/endless"))
    assert "larger than 1048576 bytes" in error.message
    assert time.monotonic() - started < 10
    await _fails(FaultCode.OPENAPI_PARSING, loader.openapi(served.base + "/endless", service_code="c"))
    declared = DescriptionLoader(session, max_bytes=1024)
    await _fails(FaultCode.INVALID_WSDL, declared.wsdl(served.base + "/declared-huge"))


# -- refresh, through the store -----------------------------------------------------------------------------


async def _add(store: NodeStore, parsed: ParsedDescription) -> int:
    description = await store.add_service_description(
        PROVIDER,
        parsed.type,
        url=parsed.url,
        document=parsed.document,
        services=parsed.services,
        endpoints=parsed.endpoints,
    )
    return description.id


async def test_wsdl_refresh_keeps_the_codes_that_remain(
    store: NodeStore, served: Served, session: aiohttp.ClientSession
) -> None:
    await store.add_client(PROVIDER)
    loader = DescriptionLoader(session)
    description_id = await _add(store, await loader.wsdl(served.base + "/civil.wsdl"))
    await store.update_service(PROVIDER, "getCitizen", "v1", timeout_seconds=7, url="http://10.0.0.9/soap")
    await store.grant_access(PROVIDER, "getCitizen", [BANK])
    await store.grant_access(PROVIDER, "getCitizenAddress", [BANK])
    # The provider drops getCitizenAddress and adds getCitizenPhoto.
    served.docs["/civil.wsdl"] = CIVIL_WSDL.replace(b"getCitizenAddress", b"getCitizenPhoto")

    refreshed = await _refresh(
        store,
        description_id,
        await loader.refresh(await store.get_service_description(description_id)),
    )

    services = {(s.code, s.version): s for s in refreshed.services}
    assert set(services) == {("getCitizen", "v1"), ("getCitizenPhoto", "v1"), ("checkCitizenRegnum", None)}
    assert (services["getCitizen", "v1"].timeout_seconds, services["getCitizen", "v1"].url) == (
        7,
        "http://10.0.0.9/soap",
    )
    assert [str(r.subject) for r in await store.list_access_rights(PROVIDER, "getCitizen")] == [str(BANK)]
    assert await store.list_access_rights(PROVIDER, "getCitizenAddress") == ()
    assert await store.list_endpoints(PROVIDER, "getCitizenAddress") == ()


async def test_openapi_refresh_replaces_operations_and_keeps_rights_on_those_that_remain(
    store: NodeStore, served: Served, session: aiohttp.ClientSession
) -> None:
    await store.add_client(PROVIDER)
    loader = DescriptionLoader(session)
    description_id = await _add(
        store, await loader.openapi(served.base + "/docs/openapi.yaml", service_code="citizens")
    )
    kept = next(e for e in await store.list_endpoints(PROVIDER, "citizens") if e.path == "/citizens/*")
    await store.grant_access(PROVIDER, "citizens", [BANK], endpoint_id=kept.id)
    await store.update_service(PROVIDER, "citizens", timeout_seconds=9)
    served.docs["/docs/openapi.yaml"] = CIVIL_OPENAPI.replace(b"/consents/{consentId}:", b"/photos/{regnum}:")

    description = await store.get_service_description(description_id)
    parsed = await loader.refresh(description)
    assert parsed.services[0].code == "citizens"
    refreshed = await _refresh(store, description_id, parsed)

    assert refreshed.services[0].timeout_seconds == 9
    paths = {(e.method, e.path) for e in await store.list_endpoints(PROVIDER, "citizens")}
    assert paths == {
        ("*", "**"),
        ("GET", "/citizens/*"),
        ("GET", "/citizens/*/address"),
        ("POST", "/consents"),
        ("DELETE", "/photos/*"),
    }
    rights = [(str(r.subject), r.endpoint.path) for r in await store.list_access_rights(PROVIDER, "citizens")]
    assert rights == [(str(BANK), "/citizens/*")]


async def test_refresh_of_uploads_and_rest(store: NodeStore, session: aiohttp.ClientSession) -> None:
    await store.add_client(PROVIDER)
    loader = DescriptionLoader(session)
    upload_id = await _add(store, await loader.openapi(MN / "vehicle-registry.json", service_code="vehicles"))
    upload = await store.get_service_description(upload_id)
    again = await loader.refresh(upload)
    assert (again.type, again.url, again.document) == (DescriptionType.OPENAPI3, None, upload.document)
    newer = upload.document.replace(b'"head"', b'"patch"') if upload.document else b""
    replaced = await loader.refresh(upload, document=newer)
    assert replaced.document == newer
    assert ("PATCH", "/drivers/*/license") in {(e.method, e.path) for e in replaced.endpoints}
    await _refresh(store, upload_id, replaced)
    assert (await store.get_service_description(upload_id)).document == newer

    from security_server.servicedesc import parse_rest

    rest_id = await _add(store, parse_rest("https://tax.gov.mn/api", service_code="taxpayer"))
    rest = await loader.refresh(await store.get_service_description(rest_id))
    assert [(s.code, s.url) for s in rest.services] == [("taxpayer", "https://tax.gov.mn/api")]
    assert {(e.method, e.path) for e in await store.list_endpoints(PROVIDER, "taxpayer")} == {("*", "**")}


async def _refresh(store: NodeStore, description_id: int, parsed: ParsedDescription) -> ServiceDescription:
    return await store.refresh_service_description(
        description_id, services=parsed.services, endpoints=parsed.endpoints, document=parsed.document
    )
