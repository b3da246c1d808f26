"""Hostile clients of every served application, over real sockets on 127.0.0.1: deeply nested JSON, slow
request heads and bodies (slowloris), clients that vanish mid-body, and control characters in logged paths.
The trust services stand for every app served through :mod:`xroad_mn.transport.server`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import structlog
import structlog.testing
from hypothesis import given
from hypothesis import strategies as st

from trust_services.app import RunningTrustService, TrustSettings, run_trust_service
from trust_services.store import init_trust_dir
from xroad_mn.errors import XRoadError
from xroad_mn.logs import configure_logging, escape_text
from xroad_mn.transport.server import MAX_JSON_DEPTH, parse_json
from xroad_mn.wire.faults import http_status_of

TIMEOUT = 0.5
"""Read timeouts of the served apps in these tests (seconds)."""
GRACE = 3.0
"""How long past a timeout a test waits for the server to act before failing."""


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[RunningTrustService]:
    """The trust services with half-second header and body read timeouts."""
    directory = tmp_path / "trust"
    await asyncio.to_thread(init_trust_dir, directory, instance="MN", now=datetime.now(UTC))
    settings = TrustSettings(
        dir=directory, port=0, header_read_timeout_seconds=TIMEOUT, body_read_timeout_seconds=TIMEOUT
    )
    async with run_trust_service(settings) as service:
        yield service


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Everything logged, at every level (a CLI test may have left a warning-level filter configured)."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        with structlog.testing.capture_logs() as captured:
            yield captured
    finally:
        structlog.configure(**saved)


async def _exchange(service: RunningTrustService, raw: bytes) -> bytes:
    """Send ``raw`` on a fresh connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection(service.host, service.port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), GRACE)
    finally:
        writer.close()


def _status_and_body(response: bytes) -> tuple[int, dict[str, Any], str]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    error = next(v for k, _, v in (line.partition(": ") for line in lines[1:]) if k.lower() == "x-road-error")
    return int(lines[0].split()[1]), json.loads(body), error


# --- 1. JSON bodies ----------------------------------------------------------------------------------------


async def test_deeply_nested_revocation_is_400_in_x_road_format(trust_service: RunningTrustService) -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"serial":' * 2000 + b"1" + b"}" * 2000):
        raw = (
            f"POST /ca/revocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        status, error, header = _status_and_body(await _exchange(trust_service, raw + body))
        if len(body) > 4096:
            assert (status, header) == (400, "client.request_too_large")
            continue
        assert (status, header, error["type"]) == (400, "client.invalid_body", "client.invalid_body")
        assert "nests deeper" in error["message"]
    nested = b'{"serial": 1, "reason": ' + b"[" * 1500 + b"]" * 1500 + b"}"
    raw = (
        "POST /ca/revocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(nested)}\r\nConnection: close\r\n\r\n"
    ).encode()
    status, error, header = _status_and_body(await _exchange(trust_service, raw + nested))
    assert (status, header) == (400, "client.invalid_body"), error


def test_parse_json_bounds_depth_outside_strings() -> None:
    assert parse_json(b'{"a": "[[[[[[", "b": [1, {"c": "\\"["}]}') == {"a": "[[[[[[", "b": [1, {"c": '"['}]}
    assert parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None
    with pytest.raises(XRoadError, match="nests deeper") as e:
        parse_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert http_status_of(e.value) == 400


@given(st.binary(max_size=300) | st.text(alphabet='[]{}",:\\ 1a', max_size=300).map(str.encode))
def test_parse_json_never_fails_but_with_an_x_road_error(data: bytes) -> None:
    try:
        parse_json(data)
    except XRoadError as e:
        code = e.code
    else:
        code = "invalid_body"
    assert code == "invalid_body"


# --- 3. Slow clients ---------------------------------------------------------------------------------------


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """Seconds until the server closes the connection (reading and dropping what it sends)."""
    started = time.monotonic()
    await asyncio.wait_for(reader.read(), seconds)
    return time.monotonic() - started


async def test_slow_request_head_is_dropped_and_normal_requests_still_work(
    logs: list[MutableMapping[str, Any]], quick: RunningTrustService
) -> None:
    connections = [await asyncio.open_connection(quick.host, quick.port) for _ in range(6)]
    started = time.monotonic()
    for byte in b"GET /ca/":  # half a request line, a byte at a time
        for _, writer in connections:
            writer.write(bytes([byte]))
            await writer.drain()
        await asyncio.sleep(TIMEOUT / 20)
    for reader, writer in connections:
        assert await asyncio.wait_for(reader.read(), TIMEOUT + GRACE) == b""  # closed, nothing answered
        writer.close()
    assert time.monotonic() - started < TIMEOUT + GRACE
    assert any(e["event"] == "client_too_slow" and e["phase"] == "request head" for e in logs), logs
    # A client that does not dawdle is served.
    response = await _exchange(quick, b"GET /ca/ca.pem HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200 ")
    assert b"BEGIN CERTIFICATE" in response


async def test_slow_head_after_a_kept_alive_request_is_dropped(quick: RunningTrustService) -> None:
    reader, writer = await asyncio.open_connection(quick.host, quick.port)
    try:
        writer.write(b"GET /ca/ca.pem HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200 ")
        writer.write(b"GET /ca/ca")  # and nothing more
        await writer.drain()
        await _closed_within(reader, TIMEOUT + GRACE)
    finally:
        writer.close()


async def test_slow_body_gets_408_timeout(quick: RunningTrustService) -> None:
    reader, writer = await asyncio.open_connection(quick.host, quick.port)
    try:
        writer.write(
            b"POST /ca/revocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"serial": '
        )
        await writer.drain()
        started = time.monotonic()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT + GRACE)
        assert time.monotonic() - started < TIMEOUT + GRACE
        assert head.startswith(b"HTTP/1.1 408 ")
        assert b"X-Road-Error: client.timeout" in head
    finally:
        writer.close()


async def test_client_gone_mid_body_is_info_not_a_traceback(
    trust_service: RunningTrustService, logs: list[MutableMapping[str, Any]]
) -> None:
    _, writer = await asyncio.open_connection(trust_service.host, trust_service.port)
    writer.write(
        b"POST /ca/revocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"serial": '
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    await writer.wait_closed()
    for _ in range(50):
        if any(e["event"] == "client_disconnected" for e in logs):
            break
        await asyncio.sleep(0.05)
    assert any(e["event"] == "client_disconnected" and e["log_level"] == "info" for e in logs), logs
    assert not [e for e in logs if e["log_level"] in ("error", "critical", "exception")], logs


# --- 4. Control characters in logs -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["console", "json"])
@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/%1b[31mX%0d%0aFAKE", "/\\x1b[31mX\\r\\nFAKE"),
        ("/%1b[31mRED%e2%80%aeTXT", "/\\x1b[31mRED\\u202eTXT"),  # no blank or newline: no repr() either
    ],
)
async def test_control_characters_in_a_path_are_logged_escaped(
    trust_service: RunningTrustService, fmt: str, path: str, shown: str
) -> None:
    stream = StringIO()
    configure_logging("json" if fmt == "json" else "console", level="info", stream=stream)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        response = await _exchange(trust_service, request)
    finally:
        out = stream.getvalue()
        structlog.reset_defaults()
    assert response.startswith(b"HTTP/1.1 404 ")
    line = next(line for line in out.splitlines() if "request_refused" in line)
    assert shown in (json.loads(line)["path"] if fmt == "json" else line)
    for raw in ("\x1b", "\r", "\u202e", "\nFAKE"):
        assert raw not in out


def test_escape_text_covers_c0_c1_and_bidi() -> None:
    assert escape_text("a\tb\x00\x7f\x85\u200e\u2066ok") == "a\\tb\\x00\\x7f\\x85\\u200e\\u2066ok"
    assert escape_text("Сангийн яам") == "Сангийн яам"
