"""More cores for the message exchange: worker processes that serve the client and server proxies too.

Python runs one core per process, so ``node serve`` starts ``workers - 1`` extra processes (``workers``
defaults to the number of CPU cores) beside the main one. Each worker listens on the same client proxy and
server proxy ports (``SO_REUSEPORT``: the kernel spreads connections over the processes) with its own event
loop, database connections, token login, batch signer, connection pools and group-commit message log
writer. What must run once per node stays in the main process: the admin API, the OCSP responder and
refresher, global configuration downloads and the timestamper. A worker picks up what the main process
changes (new global configuration, OCSP responses, certificates) every :data:`WORKER_REFRESH_SECONDS`.

The PIN goes to a worker through a pipe, never through its environment or command line. Example::

    >>> async with run_node(settings, pin=pin) as node:  # doctest: +SKIP
    ...     with proxy_workers(node.settings, pin):
    ...         await until_interrupted()
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Final

import aiohttp
import structlog

from security_server.exchange.tls import NodeTlsContexts
from security_server.ocsp import OwnOcspCache, ocsp_dir
from security_server.operations import login_token, open_node_store, open_node_token
from security_server.proxy.client_proxy import create_client_proxy_app
from security_server.proxy.runtime import ExchangeRuntime, open_exchange
from security_server.proxy.server_proxy import create_server_proxy_app
from security_server.settings import NodeSettings
from xroad_mn.transport.server import Served, listening, serve

__all__ = ["WORKER_REFRESH_SECONDS", "proxy_workers", "run_proxy_worker"]

log = structlog.get_logger(__name__)

WORKER_REFRESH_SECONDS: Final = 5.0
"""How often a worker reloads OCSP responses and global configuration written by the main process."""
WORKER_STOP_SECONDS: Final = 15.0
"""How long a stopping worker may take to finish its exchanges and commit its message log."""


async def _keep_current(runtime: ExchangeRuntime, cache: OwnOcspCache) -> None:
    store = runtime.node.store
    while True:
        await asyncio.sleep(WORKER_REFRESH_SECONDS)
        certs = [c.certificate for c in await store.list_certificates()]
        await asyncio.to_thread(cache.load, certs)
        await runtime.refresh()


async def run_proxy_worker(settings: NodeSettings, pin: str, stop: asyncio.Event) -> None:
    """Serve the node's client and server proxies in this process until ``stop`` is set."""
    token = await login_token(open_node_token(settings), pin)
    try:
        async with open_node_store(settings) as store, aiohttp.ClientSession() as session:
            cache = OwnOcspCache(ocsp_dir(settings.home))
            certs = [c.certificate for c in await store.list_certificates()]
            await asyncio.to_thread(cache.load, certs)
            tls = NodeTlsContexts.empty()
            async with open_exchange(
                settings, store, token, session, cache, tls, timestamping=False
            ) as runtime:
                with listening(
                    (settings.address, settings.client_http_port),
                    (settings.address, settings.server_proxy_port),
                    reuse_port=True,
                ) as (client_sock, server_sock):
                    served = [
                        Served(lambda: create_client_proxy_app(runtime.node), client_sock),
                        Served(lambda: create_server_proxy_app(runtime.node), server_sock, tls.server),
                    ]
                    async with serve(served, settings.server_timeouts()):
                        refresher = asyncio.create_task(_keep_current(runtime, cache), name="worker-refresh")
                        try:
                            await stop.wait()
                        finally:
                            refresher.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await refresher
    finally:
        await asyncio.to_thread(token.logout)


def _worker_main(settings_json: str, pin_pipe: Connection, index: int) -> None:
    """A worker process: read the PIN from the pipe, serve until SIGTERM or SIGINT."""
    pin = str(pin_pipe.recv())
    pin_pipe.close()
    settings = NodeSettings.model_validate_json(settings_json)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("worker_started", worker=index)
        await run_proxy_worker(settings, pin, stop)
        log.info("worker_stopped", worker=index)

    asyncio.run(main())


@contextlib.contextmanager
def proxy_workers(settings: NodeSettings, pin: str, count: int | None = None) -> Iterator[list[BaseProcess]]:
    """Start ``count - 1`` worker processes (default: :meth:`NodeSettings.worker_count`) serving the
    proxies of the running node in ``settings`` (its ports as bound); stop them after the block."""
    total = settings.worker_count() if count is None else count
    context = multiprocessing.get_context("spawn")
    processes: list[BaseProcess] = []
    try:
        for index in range(1, total):
            parent, child = context.Pipe()
            process = context.Process(
                target=_worker_main,
                args=(settings.model_dump_json(), child, index),
                name=f"xroad-mn-worker-{index}",
                daemon=True,
            )
            process.start()
            child.close()
            parent.send(pin)
            parent.close()
            processes.append(process)
        yield processes
    finally:
        for running in processes:
            if running.is_alive():
                running.terminate()
        for stopping in processes:
            stopping.join(WORKER_STOP_SECONDS)
            if stopping.is_alive():
                log.warning("worker_killed", worker=stopping.name)
                stopping.kill()
                stopping.join()
