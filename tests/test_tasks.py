"""Background loops never lose a cancel, and the node's configuration loop outlives a crashing round."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

from security_server.globalconf_task import GlobalconfRefresher
from tests.conftest import REPO_ROOT
from xroad_mn.confclient.client import ConfigurationClient
from xroad_mn.globalconf.anchor import parse_anchor
from xroad_mn.tasks import wait_for_wake

REAL_ANCHOR = REPO_ROOT / "tests/data/xroad/anchors/globalconf-core-configuration-anchor1.xml"


async def test_wait_for_wake_says_whether_it_was_woken() -> None:
    event = asyncio.Event()
    assert await wait_for_wake(event, 0.01) is False
    event.set()
    assert await wait_for_wake(event, 60.0) is True


async def test_a_cancel_that_arrives_as_the_event_is_set_is_never_lost() -> None:
    """CPython gh-86296: ``asyncio.wait_for`` swallows this cancel on 3.11; a loop would then run again and
    sleep a whole interval while its app waits to stop."""
    event = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            await wait_for_wake(event, 3600.0)
            event.clear()
            rounds += 1

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)  # the loop now waits on the event
    event.set()
    task.cancel()  # in the same tick
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5.0)
    assert rounds == 0


def test_no_product_loop_waits_with_asyncio_wait_for() -> None:
    offending = []
    for package in ("xroad_mn", "registry", "security_server", "trust_services"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr == "wait_for"
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "asyncio"
                ):
                    offending.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert offending == []


class _CrashingTransport:
    """A configuration source whose client library fails with something that is not an X-Road error."""

    def __init__(self) -> None:
        self.calls = 0

    async def get(self, url: str) -> tuple[bytes, str]:
        self.calls += 1
        raise RuntimeError("a library bug")


async def test_the_node_configuration_loop_outlives_a_crashing_round(tmp_path: Path) -> None:
    transport = _CrashingTransport()
    client = ConfigurationClient(parse_anchor(REAL_ANCHOR.read_bytes()), tmp_path / "gc", transport)

    async def no_changes() -> list[object]:
        return []

    refresher = GlobalconfRefresher(client, on_refresh=no_changes, interval_seconds=3600.0)
    task = asyncio.create_task(refresher.run())
    try:
        assert await asyncio.wait_for(refresher.wait_for_round(0), 10.0) >= 1
        assert refresher.last_error is not None
        assert refresher.last_error.has_code("internal_error")
        refresher.wake()
        assert await asyncio.wait_for(refresher.wait_for_round(1), 10.0) >= 2
        assert not task.done()
        assert transport.calls >= 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
