"""The HTTP adapter in front of a real upstream API on loopback: path and header mapping, what crosses and
what does not, hostile path values, and upstream failures in X-Road's error format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from adapters.ready.config import load_ready_adapter
from adapters.ready.http import HttpAdapterSettings
from tests.adapters.sdk_sample import served_app
from xroad_mn.errors import XRoadError
from xroad_mn.settings import load_settings

HEADERS: Final = {
    "X-Road-Client": "MN/COM/9011223/kyc",
    "X-Road-Id": "MN-77",
    "X-Road-UserId": "MN-officer-7",
    "Accept": "application/json",
    "Cookie": "session=consumer-secret",
}
CONFIG: Final = """
kind = "http"
title = "Vehicle register"
upstream = "{upstream}/api/v2"
timeout_seconds = 0.5
max_body_bytes = 1024

[headers]
set = {{ Authorization = "Bearer upstream-token" }}
context = {{ client = "X-Consumer", user_id = "X-Operator", query_id = "X-Request-Ref" }}

[[routes]]
path = "/vehicles/{{plate}}"
upstream_path = "/cars/{{plate}}"
methods = ["GET"]

[[routes]]
path = "/vehicles"
upstream_path = "/cars"
methods = ["GET", "POST"]

[[routes]]
path = "/slow"
"""


@dataclass
class Upstream:
    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)


def upstream_app(state: Upstream) -> web.Application:
    async def any_request(request: web.Request) -> web.StreamResponse:
        state.seen.append({
            "method": request.method, "raw_path": request.raw_path, "headers": dict(request.headers),
            "body": await request.read(),
        })  # fmt: skip
        if request.path.endswith("/slow"):
            await asyncio.sleep(2)
        if request.path.endswith("/cars/missing"):
            return web.json_response({"error": "unknown plate"}, status=404)
        return web.json_response(
            {"plate": request.match_info["tail"]},
            status=201 if request.method == "POST" else 200,
            headers={"ETag": '"v1"', "Set-Cookie": "upstream=secret", "X-Internal-Host": "db7"},
        )

    app = web.Application()
    app.router.add_route("*", r"/api/v2/{tail:[\s\S]*}", any_request)
    return app


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream()
    async with served_app(upstream_app(state)) as url:
        state.url = url
        yield state


@pytest_asyncio.fixture
async def base(upstream: Upstream, tmp_path: Path) -> AsyncIterator[str]:
    path = tmp_path / "vehicles.toml"
    path.write_text(CONFIG.format(upstream=upstream.url), encoding="utf-8")
    ready = load_ready_adapter(path, env={})
    async with served_app(ready.create_app()) as url:
        yield url


async def call(method: str, url: str, **kwargs: Any) -> tuple[int, Mapping[str, str], Any]:
    headers = {**HEADERS, **kwargs.pop("headers", {})}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers, **kwargs) as resp,
    ):
        data = await resp.read()
        return resp.status, resp.headers, json.loads(data) if data else None


async def test_paths_and_headers_are_mapped_and_nothing_else_crosses(base: str, upstream: Upstream) -> None:
    status, headers, body = await call("GET", f"{base}/vehicles/УБА1234?fields=owner&x=1")
    assert status == 200, body
    assert body == {"plate": "cars/УБА1234"}
    seen = upstream.seen[-1]
    assert seen["raw_path"] == "/api/v2/cars/%D0%A3%D0%91%D0%901234?fields=owner&x=1"
    sent = seen["headers"]
    assert sent["Authorization"] == "Bearer upstream-token"
    assert (sent["X-Consumer"], sent["X-Operator"], sent["X-Request-Ref"]) == (
        "SUBSYSTEM:MN/COM/9011223/kyc",
        "MN-officer-7",
        "MN-77",
    )
    assert sent["Accept"] == "application/json"
    assert "Cookie" not in sent
    assert not [k for k in sent if k.lower().startswith("x-road-")]
    assert headers["ETag"] == '"v1"'
    assert "Set-Cookie" not in headers
    assert "X-Internal-Host" not in headers


async def test_body_and_status_pass_through_and_the_body_is_bounded(base: str, upstream: Upstream) -> None:
    status, _, body = await call("POST", f"{base}/vehicles", json={"plate": "УБА1234"})
    assert (status, body) == (201, {"plate": "cars"})
    assert json.loads(upstream.seen[-1]["body"]) == {"plate": "УБА1234"}
    assert upstream.seen[-1]["headers"]["Content-Type"] == "application/json"
    status, _, body = await call("GET", f"{base}/vehicles/missing")
    assert (status, body) == (404, {"error": "unknown plate"})
    calls = len(upstream.seen)
    status, _, body = await call("POST", f"{base}/vehicles", data=b"x" * 1025)
    assert (status, body["type"]) == (400, "client.request_too_large")
    assert len(upstream.seen) == calls


@pytest.mark.parametrize(
    ("target", "upstream_path"),
    [
        ("/vehicles/..%2F..%2Fadmin", "/api/v2/cars/..%2F..%2Fadmin"),
        ("/vehicles/a%3Fadmin=1%23x", "/api/v2/cars/a%3Fadmin%3D1%23x"),
        ("/vehicles/a%0D%0AX-Evil:%201", "/api/v2/cars/a%0D%0AX-Evil%3A%201"),
    ],
)
async def test_hostile_path_values_stay_inside_their_segment(
    base: str, upstream: Upstream, target: str, upstream_path: str
) -> None:
    status, _, _ = await call("GET", base + target)
    assert status == 200
    seen = upstream.seen[-1]
    assert seen["raw_path"] == upstream_path
    assert "X-Evil" not in seen["headers"]


async def test_refusals_and_upstream_failures_are_xroad_errors(
    base: str, upstream: Upstream, tmp_path: Path
) -> None:
    status, headers, body = await call("GET", f"{base}/vehicles/x", headers={"X-Road-Client": "MN"})
    assert (status, body["type"]) == (400, "client.invalid_client_identifier")
    assert headers["X-Road-Error"] == "client.invalid_client_identifier"
    status, _, body = await call("DELETE", f"{base}/vehicles/x")
    assert (status, body["type"]) == (405, "client.invalid_http_method")
    status, _, body = await call("GET", f"{base}/vehicles/{'A' * 1025}")
    assert (status, body["type"]) == (400, "client.bad_request")
    status, _, body = await call("GET", f"{base}/slow")
    assert (status, body["type"]) == (504, "server.timeout")
    path = tmp_path / "gone.toml"
    path.write_text(CONFIG.format(upstream="http://127.0.0.1:9"), encoding="utf-8")
    async with served_app(load_ready_adapter(path, env={}).create_app()) as gone:
        status, _, body = await call("GET", f"{gone}/vehicles/x")
    assert (status, body["type"]) == (500, "server.network_error")
    assert "127.0.0.1:9" not in body["message"]


async def test_a_dot_dot_value_never_reaches_the_upstream(base: str, upstream: Upstream) -> None:
    status, _, body = await call("GET", f"{base}/vehicles/%2E%2E")  # the path normalises to /vehicles/.. -> /
    assert (status, body["type"]) == (404, "client.not_found")
    assert upstream.seen == []


def test_a_route_using_a_value_its_path_lacks_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        'kind = "http"\ntitle = "t"\nupstream = "http://x"\n'
        '[[routes]]\npath = "/a"\nupstream_path = "/b/{id}"\n',
        encoding="utf-8",
    )
    with pytest.raises(XRoadError) as caught:
        load_ready_adapter(path, env={})
    assert caught.value.code == "invalid_settings"
    assert "/b/{id}" in caught.value.message


def test_a_set_header_from_the_environment_replaces_the_files_whatever_its_case(tmp_path: Path) -> None:
    path = tmp_path / "adapter.toml"
    path.write_text(
        'title = "t"\nupstream = "http://127.0.0.1:9"\n[[routes]]\npath = "/x"\n'
        '[headers]\nset = { "X-Api-Key" = "change-me", Accept = "application/json" }\n',
        encoding="utf-8",
    )
    env = {"XROAD_MN_ADAPTER__HEADERS__SET__X-API-KEY": "from-the-environment"}
    settings = load_settings(HttpAdapterSettings, app="adapter", path=path, env=env)
    assert settings.headers.set == {"X-Api-Key": "from-the-environment", "Accept": "application/json"}
