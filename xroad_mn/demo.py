"""``xroad-mn demo``: run what xroad-mn can show on one laptop, on the embedded defaults.

Today the demo initialises the development trust services (a root CA, an OCSP responder and an RFC 3161
TSA) under ``DIR/trust`` — once; later runs reuse them — serves them, proves they answer by time-stamping
a sample and checking the token, and prints their URLs::

    $ xroad-mn demo --dir .demo
    CA    http://127.0.0.1:8899/ca/certificates
    OCSP  http://127.0.0.1:8899/ocsp
    TSA   http://127.0.0.1:8899/tsa

``--check`` stops after the self-check instead of serving until Ctrl-C (used by the tests). The command
holds no logic of its own: it calls the trust store, the trust service and the time-stamp client.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import aiohttp
import typer

from xroad_mn.certs import load_certificate
from xroad_mn.settings import load_settings
from xroad_mn.timestamp import AiohttpTimestampTransport, request_timestamp, verify_timestamp_token
from xroad_mn.trust.app import RunningTrustService, TrustSettings, run_trust_service
from xroad_mn.trust.store import TrustFiles, init_trust_dir

__all__ = ["app"]

DEMO_SAMPLE = "Хурал: xroad-mn demo time-stamp sample".encode()

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


async def _run(settings: TrustSettings, files: TrustFiles, *, check_only: bool) -> None:
    stop = asyncio.Event()
    if not check_only:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    async with run_trust_service(settings) as service:
        gen_time = await _self_check(service, files)
        typer.echo("Trust services (development CA, OCSP responder, time-stamping authority):")
        typer.echo(f"  CA    {service.urls.ca}")
        typer.echo(f"  OCSP  {service.urls.ocsp}")
        typer.echo(f"  TSA   {service.urls.tsa}")
        typer.echo(f"  CA certificate: {files.ca_cert}")
        typer.echo(f"Self-check: the TSA time-stamped a sample at {gen_time}; the token verifies.")
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
    """Initialise (once) and serve the demo: today the trust services, with a self-check."""
    files = _ensure_trust_dir(directory / "trust", instance)
    settings = load_settings(
        TrustSettings, app="trust", overrides={"dir": files.directory, "host": host, "port": port}
    )
    asyncio.run(_run(settings, files, check_only=check))
