"""``xroad-mn demo``: run the demo federation on one laptop, on the embedded defaults.

The demo initialises the development trust services (a root CA, an OCSP responder and an RFC 3161 TSA)
under ``DIR/trust`` — once; later runs reuse them — serves them and proves they answer by time-stamping a
sample and checking the token. Then every installed demo component starts beside them and prints what
it serves::

    $ xroad-mn demo --dir .demo
    Trust services (development CA, OCSP responder, time-stamping authority):
      CA    http://127.0.0.1:8899/ca/certificates
      ...
    Central registry (instance MN):
      admin API  http://127.0.0.1:4000/api/v1  (X-Road-ApiKey token=...)
      ...

Components plug in like sub-commands, through the ``xroad_mn.demo`` entry-point group: a component is a
callable taking a :class:`DemoContext` and returning an async context manager that yields the lines to
print while it runs (the registry declares ``registry = "registry.demo:component"``). So the core imports
no application, and a new application joins the demo without touching it.

``--check`` stops after start-up instead of serving until Ctrl-C (used by the tests). The command holds
no logic of its own: it calls the trust store, the trust service, the time-stamp client and the
components.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Final

import aiohttp
import typer

from xroad_mn.certs import load_certificate
from xroad_mn.settings import load_settings
from xroad_mn.timestamp import AiohttpTimestampTransport, request_timestamp, verify_timestamp_token
from xroad_mn.trust.app import RunningTrustService, TrustSettings, run_trust_service
from xroad_mn.trust.store import TrustFiles, init_trust_dir

__all__ = ["DEMO_ENTRY_POINT_GROUP", "DemoComponent", "DemoContext", "app"]

DEMO_SAMPLE = "Хурал: xroad-mn demo time-stamp sample".encode()
DEMO_ENTRY_POINT_GROUP: Final = "xroad_mn.demo"


@dataclass(frozen=True)
class DemoContext:
    """What a demo component gets: the demo home, the instance and the running trust services."""

    directory: Path
    instance: str
    host: str
    ephemeral_ports: bool
    """True when the demo runs on free ports (``--port 0``): components must bind port 0 too."""
    trust: RunningTrustService
    trust_files: TrustFiles


DemoComponent = Callable[[DemoContext], AbstractAsyncContextManager[Sequence[str]]]
"""A demo component: started with the context, it yields the lines to print while it runs."""


def _components() -> list[tuple[str, DemoComponent]]:
    found: list[tuple[str, DemoComponent]] = []
    for ep in sorted(entry_points(group=DEMO_ENTRY_POINT_GROUP), key=lambda e: e.name):
        component = ep.load()
        if not callable(component):
            raise TypeError(f"demo entry point {ep.name} ({ep.value}) is not callable")
        found.append((ep.name, component))
    return found


app = typer.Typer(name="demo", help="Run the demo federation on this machine.", add_completion=False)


def _ensure_trust_dir(directory: Path, instance: str) -> TrustFiles:
    files = TrustFiles(directory)
    if files.ca_cert.exists():
        typer.echo(f"Using trust directory {directory}")
        return files
    typer.echo(f"Creating trust directory {directory} for instance {instance}")
    return init_trust_dir(directory, instance=instance, now=datetime.now(UTC))


async def _self_check(service: RunningTrustService, files: TrustFiles) -> str:
    """Time-stamp a sample at the running TSA and verify the token against the TSA certificate."""
    tsa_cert = load_certificate(files.tsa_cert.read_bytes())
    async with aiohttp.ClientSession() as session:
        transport = AiohttpTimestampTransport(service.urls.tsa, session)
        token = await request_timestamp(DEMO_SAMPLE, [transport], [tsa_cert])
    info = verify_timestamp_token(token, data=DEMO_SAMPLE, tsa_certs=[tsa_cert])
    return info.gen_time.isoformat()


async def _run(settings: TrustSettings, files: TrustFiles, *, instance: str, check_only: bool) -> None:
    stop = asyncio.Event()
    if not check_only:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    async with run_trust_service(settings) as service, AsyncExitStack() as stack:
        gen_time = await _self_check(service, files)
        typer.echo("Trust services (development CA, OCSP responder, time-stamping authority):")
        typer.echo(f"  CA    {service.urls.ca}")
        typer.echo(f"  OCSP  {service.urls.ocsp}")
        typer.echo(f"  TSA   {service.urls.tsa}")
        typer.echo(f"  CA certificate: {files.ca_cert}")
        typer.echo(f"Self-check: the TSA time-stamped a sample at {gen_time}; the token verifies.")
        context = DemoContext(
            directory=files.directory.parent,
            instance=instance,
            host=settings.host,
            ephemeral_ports=settings.port == 0,
            trust=service,
            trust_files=files,
        )
        for _name, component in _components():
            for line in await stack.enter_async_context(component(context)):
                typer.echo(line)
        if check_only:
            return
        typer.echo("Serving. Press Ctrl-C to stop.")
        await stop.wait()


@app.callback(invoke_without_command=True)
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Demo home directory.")] = Path(".demo"),
    instance: Annotated[str, typer.Option("--instance", help="X-Road instance identifier.")] = "MN",
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port of the trust services, 0 for any.")] = 8899,
    check: Annotated[bool, typer.Option("--check", help="Run the self-check and exit.")] = False,
) -> None:
    """Initialise (once) and serve the demo federation: trust services, then every demo component."""
    files = _ensure_trust_dir(directory / "trust", instance)
    settings = load_settings(
        TrustSettings, app="trust", overrides={"dir": files.directory, "host": host, "port": port}
    )
    asyncio.run(_run(settings, files, instance=instance, check_only=check))
