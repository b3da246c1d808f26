"""The registry's admin and public sockets against hostile clients: deeply nested JSON bodies and slow
request heads and bodies (slowloris), over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from urllib.parse import urlsplit

from tests.registry.test_api import Harness, registry, start_registry

__all__ = ["registry", "start_registry"]  # fixtures used here

TIMEOUT = 0.5
GRACE = 3.0


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


async def test_deeply_nested_json_is_400_in_x_road_format(registry: Harness) -> None:
    for body in (b"[" * 5000 + b"]" * 5000, b'{"member_class": ' + b"[" * 3000 + b"]" * 3000 + b"}"):
        status, data, headers = await registry.raw("POST", "/members", body=body)
        assert status == 400, data
        assert headers["X-Road-Error"] == "client.invalid_body"
        assert json.loads(data)["type"] == "client.invalid_body"


async def test_both_sockets_drop_slow_clients(
    start_registry: Callable[..., AbstractAsyncContextManager[Harness]],
) -> None:
    async with start_registry(header_read_timeout_seconds=TIMEOUT, body_read_timeout_seconds=TIMEOUT) as h:
        for url in (h.running.admin_url, h.running.public_url):
            reader, writer = await asyncio.open_connection(*_address(url))
            try:
                writer.write(b"GET /internalc")
                await writer.drain()
                assert await asyncio.wait_for(reader.read(), TIMEOUT + GRACE) == b""
            finally:
                writer.close()
        reader, writer = await asyncio.open_connection(*_address(h.running.admin_url))
        try:
            writer.write(
                b"POST /api/v1/members HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: X-Road-ApiKey token=" + h.tokens["admin"].encode() + b"\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT + GRACE)
            assert head.startswith(b"HTTP/1.1 408 "), head
        finally:
            writer.close()
        status, _, _ = await h.raw("GET", "/instance")
        assert status == 200
