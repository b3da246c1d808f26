"""``xroad-mn adapter``: serve a ready adapter from its TOML configuration, or print its OpenAPI document.

$ xroad-mn adapter serve configs/adapters/civil-registry.toml
$ xroad-mn adapter openapi configs/adapters/civil-registry.toml --server-url http://10.0.0.5:8091
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from adapters.ready.config import ReadyAdapter, load_ready_adapter
from xroad_mn.cli.main import JsonFlag, dump_json, until_interrupted
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.transport.server import Served, ServerTimeouts, http_url, listening, serve

__all__ = ["app"]

app = typer.Typer(
    name="adapter",
    add_completion=False,
    help="Adapters: put an agency's database behind X-Road without code (ready adapters, TOML).",
    no_args_is_help=True,
)

ConfigArgument = Annotated[
    Path, typer.Argument(help="The adapter's TOML configuration.", exists=True, dir_okay=False, readable=True)
]


async def _serve(ready: ReadyAdapter) -> None:
    with listening((ready.host, ready.port)) as (sock,):
        host, port = sock.getsockname()[:2]
        async with serve([Served(ready.create_app, sock)], ServerTimeouts()):
            base = http_url(str(host), int(port))
            typer.echo(f"Serving {ready.kind} adapter {ready.title!r} at {base}")
            typer.echo(ready.registration_hint(base))
            await until_interrupted("Press Ctrl-C to stop.")


@app.command("serve")
def serve_command(
    config: ConfigArgument,
    host: Annotated[str | None, typer.Option("--host", help="Override the address to listen on.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Override the port (0: a free one).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Serve the adapter a configuration file describes until interrupted."""
    ready = load_ready_adapter(config, overrides={"host": host, "port": port})
    asyncio.run(_serve(ready))


@app.command("openapi")
def openapi_command(
    config: ConfigArgument,
    server_url: Annotated[
        str | None, typer.Option("--server-url", help="The adapter's URL as the security server reaches it.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the OpenAPI 3.0 document of the adapter's endpoints."""
    ready = load_ready_adapter(config)
    if ready.adapter is None:
        raise XRoadError(
            FaultCode.INVALID_SETTINGS, f"a {ready.kind} adapter has no OpenAPI document of its own"
        )
    typer.echo(dump_json(ready.adapter().openapi(server_url), indent=2))
