"""``xroad-mn trust``: create a development trust directory and serve its CA, OCSP responder and TSA.

    $ xroad-mn trust init --dir ./trust --instance MN
    $ xroad-mn trust serve --dir ./trust --port 8899     # loopback only; --allow-remote for more
    CA    http://127.0.0.1:8899/ca/certificates
    OCSP  http://127.0.0.1:8899/ocsp
    TSA   http://127.0.0.1:8899/tsa

The commands hold no logic: they call :func:`~trust_services.store.init_trust_dir` and
:func:`~trust_services.app.run_trust_service`. Errors are :class:`~xroad_mn.errors.XRoadError`, which the
root command prints.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from trust_services.app import TrustSettings, run_trust_service
from trust_services.store import init_trust_dir
from xroad_mn.cli.main import JsonFlag, dump_json, until_interrupted
from xroad_mn.settings import load_settings

__all__ = ["app"]

app = typer.Typer(
    name="trust",
    help="Development trust services: a certification authority, an OCSP responder and a TSA.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def init(
    directory: Annotated[Path, typer.Option("--dir", help="Trust directory to create.")],
    instance: Annotated[str, typer.Option("--instance", help="X-Road instance identifier.")] = "MN",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing trust directory.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a root CA, an OCSP responder certificate and a TSA certificate with their keys."""
    files = init_trust_dir(directory, instance=instance, now=datetime.now(UTC), force=force)
    created = {
        "ca": str(files.ca_cert),
        "ocsp": str(files.ocsp_cert),
        "tsa": str(files.tsa_cert),
        "ca_key": str(files.ca_key),
        "ocsp_key": str(files.ocsp_key),
        "tsa_key": str(files.tsa_key),
    }
    if as_json:
        typer.echo(dump_json({"directory": str(directory), "instance": instance, "files": created}))
        return
    typer.echo(f"Created trust directory {directory} for instance {instance}:")
    for name, path in created.items():
        typer.echo(f"  {name:<9} {path}")


async def _serve(settings: TrustSettings) -> None:
    async with run_trust_service(settings) as service:
        typer.echo(f"CA    {service.urls.ca}")
        typer.echo(f"OCSP  {service.urls.ocsp}")
        typer.echo(f"TSA   {service.urls.tsa}")
        await until_interrupted("Press Ctrl-C to stop.")


@app.command()
def serve(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Trust directory made by `trust init`.")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to listen on, 0 for any [8899].")] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a non-loopback --host. The services authenticate nobody: whoever reaches them "
            "can issue and revoke certificates.",
        ),
    ] = False,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file.")] = None,
) -> None:
    """Serve the CA, OCSP responder and TSA of a trust directory over HTTP until interrupted."""
    settings = load_settings(
        TrustSettings,
        app="trust",
        path=config,
        overrides={
            "dir": directory,
            "host": host,
            "port": port,
            "allow_remote": True if allow_remote else None,
        },
    )
    asyncio.run(_serve(settings))
