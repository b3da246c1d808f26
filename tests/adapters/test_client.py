"""The consumer client's transport rules, against real sockets on loopback: retries only where safe,
timeouts, and X-Road faults raised with their codes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Final

import pytest
from aiohttp import web

from adapters.client import XRoadClient
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import MemberId
from xroad_mn.transport.server import xroad_error_middleware
from xroad_mn.wire.faults import render_soap_fault

CLIENT: Final = MemberId("MN", "COM", "9011223").subsystem("kyc")
SERVICE: Final = MemberId("MN", "GOV", "5012345").subsystem("civil-registry").service("citizens")

Connection = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]


@asynccontextmanager
async def raw_server(on_connection: Connection) -> AsyncIterator[tuple[str, list[int]]]:
    """A TCP server on loopback running ``on_connection`` for each connection; yields its URL and a list
    that grows by one per connection."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await on_connection(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", connections


async def _read_head(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once closed


async def test_idempotent_request_is_retried_when_no_connection_opens() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    for method, attempts in (("GET", 3), ("DELETE", 3), ("POST", 1), ("PATCH", 1)):
        async with XRoadClient(url, CLIENT, retries=2, retry_delay_seconds=0.01) as xroad:
            with pytest.raises(XRoadError) as caught:
                await xroad.rest(method, SERVICE, "/people")
        assert caught.value.code == FaultCode.NETWORK_ERROR
        assert caught.value.details["attempts"] == attempts, method


async def test_a_request_that_may_have_been_delivered_is_never_resent() -> None:
    async def drop_after_reading(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)  # the request arrived; the connection drops before any answer

    async with (
        raw_server(drop_after_reading) as (url, connections),
        XRoadClient(url, CLIENT, retries=3, retry_delay_seconds=0.01) as xroad,
    ):
        with pytest.raises(XRoadError) as caught:
            await xroad.get(SERVICE, "/people/1")
    assert caught.value.code == FaultCode.NETWORK_ERROR
    assert len(connections) == 1


async def test_no_answer_in_time_is_a_timeout_and_not_resent() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        await asyncio.sleep(5)

    async with (
        raw_server(never_answer) as (url, connections),
        XRoadClient(url, CLIENT, timeout_seconds=0.3, retries=3) as xroad,
    ):
        with pytest.raises(XRoadError) as caught:
            await xroad.get(SERVICE, "/people/1")
    assert caught.value.code == FaultCode.TIMEOUT
    assert len(connections) == 1


async def test_xroad_faults_are_raised_with_their_code_and_other_answers_returned() -> None:
    seen: list[web.Request] = []

    async def proxy(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        if request.path.endswith("/denied"):
            raise XRoadError(
                FaultCode.ACCESS_DENIED, "Request is not allowed", kind=ErrorKind.DENIED
            ).with_prefix("server.serverproxy")
        if request.path == "/":
            fault = XRoadError(FaultCode.BAD_REQUEST, "regnum is missing", kind=ErrorKind.BAD_INPUT)
            return web.Response(status=500, body=render_soap_fault(fault), content_type="text/xml")
        return web.json_response({"error": "no such citizen"}, status=404, headers={"X-Road-Id": "MN-given"})

    app = web.Application(middlewares=[xroad_error_middleware])
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with XRoadClient(f"http://127.0.0.1:{port}", CLIENT) as xroad:
            with pytest.raises(XRoadError) as caught:
                await xroad.get(SERVICE, "/denied", user_id="MN-officer-7", data_subject=" УБ99112233 ")
            assert caught.value.code == "server.serverproxy.access_denied"
            request = seen[-1]
            assert request.headers["X-Road-Client"] == "MN/COM/9011223/kyc"
            assert request.headers["X-Road-Id"].startswith("MN-")
            assert request.headers["X-Road-UserId"] == "MN-officer-7"
            assert request.headers["X-MN-Data-Subject"] == "УБ99112233"
            assert request.raw_path == "/r1/MN/GOV/5012345/civil-registry/citizens/denied"

            answer = await xroad.get(
                SERVICE, "/people/УБ 1", query={"aimag": ["Дархан", "Орхон"], "limit": 5}
            )
            assert (answer.status, answer.json(), answer.query_id) == (
                404,
                {"error": "no such citizen"},
                "MN-given",
            )
            assert seen[-1].raw_path == (
                "/r1/MN/GOV/5012345/civil-registry/citizens/people/%D0%A3%D0%91%201"
                "?aimag=%D0%94%D0%B0%D1%80%D1%85%D0%B0%D0%BD&aimag=%D0%9E%D1%80%D1%85%D0%BE%D0%BD&limit=5"
            )

            with pytest.raises(XRoadError) as caught:
                await xroad.soap(
                    SERVICE.client.service("getCitizen", "v1"), b"<c:getCitizen xmlns:c='urn:c'/>"
                )
            assert caught.value.code == "client.bad_request"
            assert caught.value.message == "regnum is missing"
    finally:
        await runner.cleanup()
