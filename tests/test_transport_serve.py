"""Serving applications on several sockets (xroad_mn.transport.server: listening, serve), as the registry
and a node do, over real sockets on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from xroad_mn.errors import XRoadError
from xroad_mn.transport.server import Served, ServerTimeouts, http_url, listening, serve

OPENED = web.AppKey("opened", list)


def test_urls_put_ipv6_addresses_in_brackets() -> None:
    assert http_url("127.0.0.2", 4000) == "http://127.0.0.2:4000"
    assert http_url("::1", 8443, "https") == "https://[::1]:8443"


def test_a_socket_that_cannot_be_bound_closes_those_bound_before_it() -> None:
    with listening(("127.0.0.1", 0)) as (probe,):
        first_port = int(probe.getsockname()[1])
    with listening(("127.0.0.1", 0)) as (taken,):
        port = int(taken.getsockname()[1])
        ran = False
        with (
            pytest.raises(XRoadError, match=f"cannot listen on 127.0.0.1:{port}") as e,
            listening(("127.0.0.1", first_port), ("127.0.0.1", port)),
        ):
            ran = True
        assert (e.value.code, ran) == ("io_error", False)
        with listening(("127.0.0.1", first_port)):  # closed again: free to bind
            pass
    assert taken.fileno() == -1


async def test_later_apps_are_built_after_earlier_ones_are_set_up_and_all_are_cleaned_up() -> None:
    events: list[str] = []
    first = web.Application()
    first[OPENED] = []

    async def resource(app: web.Application) -> AsyncIterator[None]:
        app[OPENED].append("store")
        events.append("first set up")
        yield
        events.append("first cleaned up")

    first.cleanup_ctx.append(resource)

    def second() -> web.Application:
        events.append(f"second built, first holds {first[OPENED]}")
        app = web.Application()

        async def hello(request: web.Request) -> web.Response:
            return web.Response(text="second")

        app.router.add_get("/", hello)
        app.on_cleanup.append(lambda _: _cleaned(events))
        return app

    with listening(("127.0.0.1", 0), ("127.0.0.1", 0)) as (sock1, sock2):
        async with serve([Served(lambda: first, sock1), Served(second, sock2)], ServerTimeouts()):
            url = http_url("127.0.0.1", int(sock2.getsockname()[1]))
            async with aiohttp.ClientSession() as session, session.get(url) as resp:
                assert (resp.status, await resp.text()) == (200, "second")
    assert events == [
        "first set up",
        "second built, first holds ['store']",
        "second cleaned up",
        "first cleaned up",
    ]


async def _cleaned(events: list[str]) -> None:
    events.append("second cleaned up")
