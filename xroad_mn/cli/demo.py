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

Components plug in like sub-commands, through entry points, so the core imports no application and a new
application joins the demo without touching it:

* ``xroad_mn.demo.trust`` names the one trust-services component
  (``trust = "trust_services.demo:component"``): a callable taking a :class:`DemoSetup` and returning an
  async context manager that yields the running :class:`DemoTrustServices` (URLs and certificates);
* ``xroad_mn.demo`` names the other components (``2-registry = "registry.demo:component"``): callables taking
  a :class:`DemoContext` and returning an async context manager that yields the lines to print while it runs.
  They start in name order, so a name begins with its stage: ``1-registries`` (the agencies' databases),
  ``2-registry``, ``3-adapters`` (the agencies' services), ``4-nodes`` (the security servers), ``5-scenario``.
  A later component learns what earlier ones serve from the context's :class:`DemoBoard` (URLs, the anchor,
  an API key, the services to publish), as separate hosts would learn it from each other's administrators.

``--check`` stops after start-up instead of serving until Ctrl-C (used by the tests). The command holds
no logic of its own: it calls the components and the time-stamp client.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Final, Literal, cast

import aiohttp
import typer
from cryptography import x509

from xroad_mn.cli.main import until_interrupted
from xroad_mn.timestamp import request_timestamp, verify_timestamp_token
from xroad_mn.transport.timestamp import AiohttpTimestampTransport

__all__ = [
    "DEMO_ENTRY_POINT_GROUP",
    "DEMO_TRUST_ENTRY_POINT_GROUP",
    "DemoBoard",
    "DemoComponent",
    "DemoContext",
    "DemoService",
    "DemoSetup",
    "DemoTrustServices",
    "TrustComponent",
    "app",
]

DEMO_SAMPLE = "Хурал: xroad-mn demo time-stamp sample".encode()
DEMO_ENTRY_POINT_GROUP: Final = "xroad_mn.demo"
DEMO_TRUST_ENTRY_POINT_GROUP: Final = "xroad_mn.demo.trust"


@dataclass(frozen=True)
class DemoSetup:
    """What the trust-services component gets: where to keep its files and where to listen."""

    directory: Path
    instance: str
    host: str
    port: int


@dataclass(frozen=True)
class DemoTrustServices:
    """The running development trust services: where they answer and the certificates they use."""

    directory: Path
    ca_url: str
    ocsp_url: str
    tsa_url: str
    ca_certificate: x509.Certificate
    ocsp_certificate: x509.Certificate
    tsa_certificate: x509.Certificate
    created: bool
    """True when this run created the trust directory."""


@dataclass(frozen=True)
class DemoService:
    """A service an agency's adapter serves, for its security server to publish and grant."""

    provider: str
    """The providing subsystem (``SUBSYSTEM:MN/GOV/9010001/civil-registry``)."""
    kind: Literal["openapi", "wsdl", "rest"]
    """``openapi`` (an OpenAPI 3 document, with ``code``), ``wsdl`` (its operations are the services) or
    ``rest`` (a REST service's base URL, with ``code``, no description)."""
    url: str
    """Where the node reads the description."""
    code: str | None = None
    granted_to: tuple[str, ...] = ()
    """Subsystems given access to the description's services."""
    endpoints: tuple[tuple[str, str], ...] = ()
    """REST: grant only these endpoints (method, path), the others withheld; empty: the whole service."""


@dataclass
class DemoBoard:
    """What running components tell the ones started after them (filled in as the demo starts)."""

    registry_admin_url: str | None = None
    registry_api_key: str | None = None
    anchor_file: Path | None = None
    registry_tls_cert: Path | None = None
    """The certificate of the registry's public TLS socket (nodes verify configuration downloads with it)."""
    services: list[DemoService] = field(default_factory=list)
    client_proxies: dict[str, str] = field(default_factory=dict)
    """A node's client proxy URL by the subsystems it hosts (``SUBSYSTEM:MN/COM/2012345/kyc``)."""
    node_homes: dict[str, Path] = field(default_factory=dict)
    """A node's home by the subsystems it hosts."""


DEFAULT_NODE_ADDRESS: Final = "127.0.0.2"
"""The first node's loopback address; the others follow it (127.0.0.3, 127.0.0.4, ...)."""
LAYOUT_FILE: Final = "demo-layout"
LAYOUT_VERSION: Final = 2
"""What a demo home holds: 2 since the demo has five agencies' nodes (1: three). A home made by another
layout is refused with a clear message instead of failing half-way through a later component."""


@dataclass(frozen=True)
class DemoContext:
    """What a demo component gets: the demo home, the instance and the running trust services."""

    directory: Path
    instance: str
    host: str
    ephemeral_ports: bool
    """True when the demo runs on free ports (``--port 0``): components must bind port 0 too (the security
    servers excepted: X-Road's peers reach them on the default ports, so they have addresses of their own)."""
    trust: DemoTrustServices
    node_address: str = DEFAULT_NODE_ADDRESS
    """The first security server's address; the ``i``-th agency host (the security server component's order
    of nodes, which the adapters' component follows) has ``node_address + i``."""
    board: DemoBoard = field(default_factory=DemoBoard)

    def agency_address(self, index: int) -> str:
        """The loopback address of the ``index``-th agency's host (its security server and adapters)."""
        return str(ipaddress.IPv4Address(self.node_address) + index)


TrustComponent = Callable[[DemoSetup], AbstractAsyncContextManager[DemoTrustServices]]
"""The trust-services component: started with the setup, it yields the running services."""
DemoComponent = Callable[[DemoContext], AbstractAsyncContextManager[Sequence[str]]]
"""A demo component: started with the context, it yields the lines to print while it runs."""


def _entry_points(group: str) -> list[tuple[str, object]]:
    """The loaded entry points of ``group``, by name; each must be callable."""
    found: list[tuple[str, object]] = []
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        component = ep.load()
        if not callable(component):
            raise TypeError(f"demo entry point {ep.name} ({ep.value}) is not callable")
        found.append((ep.name, component))
    return found


def _trust_component() -> TrustComponent:
    found = _entry_points(DEMO_TRUST_ENTRY_POINT_GROUP)
    if len(found) != 1:
        names = ", ".join(name for name, _ in found) or "none"
        raise typer.BadParameter(
            f"the demo needs exactly one {DEMO_TRUST_ENTRY_POINT_GROUP} entry point, found {names}"
        )
    return cast(TrustComponent, found[0][1])


def _components() -> list[DemoComponent]:
    return [cast(DemoComponent, component) for _, component in _entry_points(DEMO_ENTRY_POINT_GROUP)]


app = typer.Typer(name="demo", help="Run the demo federation on this machine.", add_completion=False)


async def _self_check(trust: DemoTrustServices) -> str:
    """Time-stamp a sample at the running TSA and verify the token against the TSA certificate."""
    async with aiohttp.ClientSession() as session:
        transport = AiohttpTimestampTransport(trust.tsa_url, session)
        token = await request_timestamp(DEMO_SAMPLE, [transport], [trust.tsa_certificate])
    info = verify_timestamp_token(token, data=DEMO_SAMPLE, tsa_certs=[trust.tsa_certificate])
    return info.gen_time.isoformat()


def _check_layout(directory: Path) -> None:
    """Refuse a demo home made by another layout, or a directory that is no demo home; mark a new one."""
    marker = directory / LAYOUT_FILE
    if directory.exists() and not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a directory", param_hint="--dir")
    if marker.exists():
        found = marker.read_text(encoding="utf-8").strip()
        if found == str(LAYOUT_VERSION):
            return
    elif not directory.exists() or not any(directory.iterdir()):
        directory.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{LAYOUT_VERSION}\n", encoding="utf-8")
        return
    elif (directory / "trust").is_dir() or (directory / "registry").is_dir():
        found = "1"  # made before the mark existed: the three-node demo
    else:
        raise typer.BadParameter(
            f"{directory} is not empty and holds no demo: give a new or empty directory", param_hint="--dir"
        )
    raise typer.BadParameter(
        f"{directory} holds a demo of layout {found[:20]}, this xroad-mn runs layout {LAYOUT_VERSION}; "
        "remove the directory or give another --dir",
        param_hint="--dir",
    )


async def _run(setup: DemoSetup, *, check_only: bool, node_address: str = DEFAULT_NODE_ADDRESS) -> None:
    _check_layout(setup.directory)
    async with AsyncExitStack() as stack:
        trust = await stack.enter_async_context(_trust_component()(setup))
        if trust.created:
            typer.echo(f"Creating trust directory {trust.directory} for instance {setup.instance}")
        else:
            typer.echo(f"Using trust directory {trust.directory}")
        gen_time = await _self_check(trust)
        typer.echo("Trust services (development CA, OCSP responder, time-stamping authority):")
        typer.echo(f"  CA    {trust.ca_url}")
        typer.echo(f"  OCSP  {trust.ocsp_url}")
        typer.echo(f"  TSA   {trust.tsa_url}")
        typer.echo(f"  CA certificate: {trust.directory / 'ca.pem'}")
        typer.echo(f"Self-check: the TSA time-stamped a sample at {gen_time}; the token verifies.")
        context = DemoContext(
            directory=setup.directory,
            instance=setup.instance,
            host=setup.host,
            ephemeral_ports=setup.port == 0,
            trust=trust,
            node_address=node_address,
        )
        for component in _components():
            for line in await stack.enter_async_context(component(context)):
                typer.echo(line)
        if check_only:
            return
        await until_interrupted("Serving. Press Ctrl-C to stop.")


@app.callback(invoke_without_command=True)
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Demo home directory.")] = Path(".demo"),
    instance: Annotated[str, typer.Option("--instance", help="X-Road instance identifier.")] = "MN",
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port of the trust services, 0 for any.")] = 8899,
    node_address: Annotated[
        str,
        typer.Option(
            "--node-address",
            help="The first security server's loopback address; the next ones follow it.",
        ),
    ] = DEFAULT_NODE_ADDRESS,
    check: Annotated[bool, typer.Option("--check", help="Run the self-check and exit.")] = False,
) -> None:
    """Initialise (once) and serve the demo federation: trust services, then every demo component."""
    try:
        ipaddress.IPv4Address(node_address)
    except ValueError as e:
        raise typer.BadParameter(
            f"{node_address!r} is not an IPv4 address", param_hint="--node-address"
        ) from e
    setup = DemoSetup(directory=directory, instance=instance, host=host, port=port)
    asyncio.run(_run(setup, check_only=check, node_address=node_address))
