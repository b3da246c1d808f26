"""``xroad-mn node serve`` with worker processes: the provider node serves the exchange on two cores.

The provider node of a federation (127.0.0.10 / 127.0.0.11) is stopped in the test's process and started
again as ``python -m xroad_mn node serve`` with ``workers = 2``: the main process and one worker listen on
the same proxy ports (``SO_REUSEPORT``). Concurrent traffic from the consumer completes, both processes
listen on port 5500, every exchange is logged once, and Ctrl-C (SIGINT) stops everything with status 0.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.security_server.exchange_world import Federation, federation_in
from tests.security_server.test_node_e2e import PIN
from xroad_mn.tokens import PIN_ENV

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADDRESSES = ("127.0.0.10", "127.0.0.11")
READY_SECONDS = 60.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    async with federation_in(tmp_path_factory.mktemp("exchange-workers"), addresses=ADDRESSES) as fed:
        await fed.grant("citizens")
        yield fed


def listeners(port: int, address: str) -> set[int]:
    """PIDs of the processes listening on ``address:port`` (from ``ss``)."""
    out = subprocess.run(
        ["ss", "-Hltnp", f"src {address}:{port}"], capture_output=True, text=True, check=True
    ).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


async def test_node_serve_with_two_workers(federation: Federation) -> None:
    fed = federation
    provider = fed.provider
    await fed.stop_node(provider)
    env = {
        **os.environ,
        PIN_ENV: PIN,
        "XROAD_MN_NODE__WORKERS": "2",
        "XROAD_MN_NODE__GLOBALCONF_UPDATE_INTERVAL_SECONDS": "1",
        "XROAD_MN_NODE__SERVER_CONF_CACHE_SECONDS": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xroad_mn", "node", "serve", "--dir", str(provider.home),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(READY_SECONDS):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "".join(output)
                output.append(line)
                if "Press Ctrl-C" in line:
                    break
        assert any("Workers    2 processes" in line for line in output), output
        drain = asyncio.create_task(proc.stdout.read())

        async def one(i: int) -> int:
            url = fed.rest_url("citizens", f"/people/{i}")
            async with fed.session.get(url, headers=fed.client_header()) as resp:
                await resp.read()
                return resp.status

        statuses = [s for _ in range(5) for s in await asyncio.gather(*(one(i) for i in range(16)))]
        assert statuses == [200] * len(statuses)
        assert len(listeners(5500, provider.address)) == 2
        assert len(listeners(8080, provider.address)) == 2

        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(READY_SECONDS):
            assert await proc.wait() == 0
        await drain
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await fed.start_node(provider)
    assert listeners(5500, provider.address) == {os.getpid()}
