"""The shared X-Road error middleware: every failure leaves as an X-Road REST error, never a traceback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import aiohttp
import pytest
import structlog
import structlog.testing
from aiohttp import web

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.transport.server import read_body, require_content_type, xroad_error_middleware


async def crash(request: web.Request) -> web.Response:
    raise RuntimeError("secret internal state /etc/passwd")


async def refuse(request: web.Request) -> web.Response:
    raise XRoadError(FaultCode.ACCESS_DENIED, "not for you", http_status=403)


async def fail_server_side(request: web.Request) -> web.Response:
    raise XRoadError(FaultCode.OCSP_FAILED, "responder down")


async def prefixed(request: web.Request) -> web.Response:
    raise XRoadError("server.clientproxy.service_failed", "upstream broke", http_status=502)


async def echo(request: web.Request) -> web.Response:
    require_content_type(request, "application/octet-stream")
    return web.Response(body=await read_body(request, 16))


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """What the middleware logs, captured (and kept off whatever stream earlier tests configured)."""
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture
async def base_url(logs: list[MutableMapping[str, Any]]) -> AsyncIterator[str]:
    app = web.Application(middlewares=[xroad_error_middleware])
    app.router.add_get("/crash", crash)
    app.router.add_get("/refuse", refuse)
    app.router.add_get("/server", fail_server_side)
    app.router.add_get("/prefixed", prefixed)
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_unexpected_exception_is_500_internal_error_without_details(
    base_url: str, logs: list[MutableMapping[str, Any]]
) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/crash") as resp:
        body = await resp.text()
        assert resp.status == 500
        assert resp.headers["X-Road-Error"] == "server.internal_error"
    payload = json.loads(body)
    assert payload["type"] == "server.internal_error"
    assert payload["detail"]
    # The traceback goes to the log, tagged with the detail id the client got.
    crashed = [entry for entry in logs if entry["event"] == "request_crashed"]
    assert len(crashed) == 1
    assert crashed[0]["detail"] == payload["detail"]
    assert crashed[0]["exc_info"] is True
    assert crashed[0]["log_level"] == "error"
    assert "secret" not in body
    assert "Traceback" not in body
    assert "RuntimeError" not in body


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/refuse", 403, "client.access_denied"),
        ("/server", 500, "server.ocsp_failed"),
        ("/prefixed", 502, "server.clientproxy.service_failed"),
    ],
)
async def test_xroad_errors_keep_status_and_get_a_prefix(
    base_url: str, path: str, status: int, code: str
) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}{path}") as resp:
        assert resp.status == status
        assert resp.headers["X-Road-Error"] == code
        assert (await resp.json())["type"] == code


async def test_body_limit_and_content_type(base_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base_url}/echo", data=b"x" * 16) as resp:
            assert resp.status == 200
            assert await resp.read() == b"x" * 16
        async with session.post(f"{base_url}/echo", data=b"x" * 17) as resp:
            assert resp.status == 400
            assert resp.headers["X-Road-Error"] == "client.request_too_large"
        async with session.post(
            f"{base_url}/echo", data=b"x", headers={"Content-Type": "text/plain"}
        ) as resp:
            assert resp.status == 400
            assert resp.headers["X-Road-Error"] == "client.invalid_content_type"
