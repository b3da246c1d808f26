"""The ``xroad-mn`` command: a thin root that finds each application's sub-commands through entry points.

Applications plug in without touching the core: a package declares, in its ``pyproject.toml``::

    [project.entry-points."xroad_mn.cli"]
    registry = "registry.cli:app"       # a typer.Typer

and ``xroad-mn registry ...`` appears. The root holds no logic. One funnel catches :class:`XRoadError`,
prints its code and message and exits with status 1; anything else unexpected exits with status 2 and a
short message (the traceback is logged at debug level, shown with ``--log-level debug``).

Every sub-command's ``--json`` is :data:`JsonFlag`: with it, an error is printed on standard output as one
JSON object of the same shape everywhere (:func:`error_payload`: ``ok``, ``code``, ``message``, ``detail``,
``details``; verifiers add their verdict keys), non-ASCII text unescaped. The human error line ends with the
message; the fault-detail id is in the JSON and in the log (``--log-level info``).

    $ xroad-mn --help
    $ xroad-mn trust init --dir ./trust --instance MN
"""

from __future__ import annotations

import asyncio
import getpass
import json
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Annotated, Any, ClassVar, Final, NoReturn

import structlog
import typer
import typer.main
from rich.console import Console
from typer.core import TyperGroup

from xroad_mn import __version__
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.logs import LogFormat, configure_logging

__all__ = [
    "ENTRY_POINT_GROUP",
    "DatabaseSchemaOption",
    "DatabaseUrlOption",
    "JsonFlag",
    "build_app",
    "cli_user",
    "dump_json",
    "error_payload",
    "fail",
    "main",
    "print_error",
    "until_interrupted",
]

ENTRY_POINT_GROUP = "xroad_mn.cli"
_JSON_META_KEY: Final = "xroad_mn.json"
"""Set in the (shared) click context metadata when the invoked command got ``--json``."""

log = structlog.get_logger("xroad_mn.cli")


def _remember_json(ctx: typer.Context, value: bool) -> bool:
    if value:
        ctx.meta[_JSON_META_KEY] = True
    return value


JsonFlag = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print JSON for scripts; an error too, as one object (ok, code, message, detail, details).",
        callback=_remember_json,
        is_eager=True,
    ),
]
"""The ``--json`` option of every sub-command: the funnel then prints errors as JSON too."""


DatabaseUrlOption = Annotated[
    str | None, typer.Option("--database-url", help="SQLAlchemy URL. Default: SQLite in --dir.")
]
"""``--database-url`` of every application's ``init``."""
DatabaseSchemaOption = Annotated[str | None, typer.Option("--database-schema", help="PostgreSQL schema.")]
"""``--database-schema`` of every application's ``init``."""


def cli_user() -> str:
    """Who runs a command, as audit records name a CLI user: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def until_interrupted(announce: str | None = None) -> None:
    """Wait for Ctrl-C or SIGTERM: what every ``serve`` command does once its sockets listen. ``announce``
    is printed once the signals are handled, so a supervisor (or a test) that signals as soon as it reads
    the line stops the command cleanly rather than interrupting it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if announce is not None:
            typer.echo(announce)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def dump_json(value: object, *, indent: int | None = None) -> str:
    """JSON text for ``--json`` output: non-ASCII characters (Cyrillic names) kept readable."""
    return json.dumps(value, ensure_ascii=False, indent=indent)


def error_payload(err: XRoadError) -> dict[str, object]:
    """The one JSON shape of a failed command."""
    return {
        "ok": False,
        "code": err.code,
        "message": err.message,
        "detail": err.detail,
        "details": dict(err.details),
    }


def print_error(err: XRoadError, console: Console | None = None) -> None:
    """Print an X-Road error for a person: fault code, message and details (the fault-detail id is logged
    and in ``--json`` output, not on this line)."""
    out = console or Console(stderr=True, highlight=False)
    out.print(f"[bold red]error[/] [bold]{err.code}[/]: {err.message}", markup=True)
    for key, value in err.details.items():
        out.print(f"  {key}: {value}", markup=False)


def fail(
    err: XRoadError,
    *,
    as_json: bool,
    verdict: Mapping[str, object] | None = None,
    show: Callable[[], None] | None = None,
) -> NoReturn:
    """Report ``err`` and exit with status 1: the funnel of every command. With ``as_json`` one object,
    :func:`error_payload` plus a verifier's ``verdict`` keys, on standard output; else ``show()`` (a
    verifier's own verdict) or :func:`print_error`, and the fault-detail id is logged at info level."""
    if as_json:  # the fault-detail id is in the object; nothing else may reach standard output
        typer.echo(dump_json({**error_payload(err), **(verdict or {})}))
        raise typer.Exit(code=1)
    log.info("command_failed", code=err.code, message=err.message, detail=err.detail)
    if show is not None:
        show()
    else:
        print_error(err)
    raise typer.Exit(code=1)


class FunnelGroup(TyperGroup):
    """A command group that turns any :class:`XRoadError` raised below it into a clean exit 1."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors click; its Context is private
        try:
            return super().invoke(ctx)
        except XRoadError as e:
            fail(e, as_json=bool(ctx.meta.get(_JSON_META_KEY)))
        except Exception as e:
            if _is_cli_control_flow(e):
                raise
            log.debug("command_crashed", exc_info=e)
            if ctx.meta.get(_JSON_META_KEY):
                crash = XRoadError(FaultCode.INTERNAL_ERROR, f"{type(e).__name__}: {e}")
                typer.echo(dump_json(error_payload(crash)))
            else:
                Console(stderr=True, highlight=False).print(
                    f"[bold red]internal error[/]: {type(e).__name__}: {e} "
                    "(run with --log-level debug for the traceback)"
                )
            raise typer.Exit(code=2) from e


def _is_cli_control_flow(e: BaseException) -> bool:
    """Exit, Abort and usage errors of the (vendored) click that typer uses, which typer handles itself."""
    return type(e).__module__.split(".", 1)[0] in {"typer", "click"}


def _root_callback(
    log_format: Annotated[
        str, typer.Option("--log-format", help="console (for people) or json (one object a line)")
    ] = "console",
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error")] = "warning",
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """xroad-mn: an X-Road compatible data-exchange layer for Mongolia's e-government."""
    if version:
        typer.echo(f"xroad-mn {__version__}")
        raise typer.Exit()
    if log_format not in ("console", "json"):
        raise typer.BadParameter("use 'console' or 'json'", param_hint="--log-format")
    fmt: LogFormat = "json" if log_format == "json" else "console"
    try:
        configure_logging(fmt, level=log_level)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--log-level") from e


class _LazyRoot(FunnelGroup):
    """The root group: each application's sub-command is imported only when it is called (or when the
    root's help lists them), so ``xroad-mn asic verify`` does not import the security server."""

    entry_points: ClassVar[Mapping[str, EntryPoint]] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.entry_points))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in self.entry_points:
            return found
        ep = self.entry_points[cmd_name]
        try:
            sub = ep.load()
        except ImportError as e:
            # A broken plug-in must not take the other commands down with it; say so and go on.
            typer.echo(f"xroad-mn: sub-command '{ep.name}' is unavailable ({ep.value}): {e}", err=True)
            return None
        if not isinstance(sub, typer.Typer):
            typer.echo(f"xroad-mn: entry point '{ep.name}' ({ep.value}) is not a typer.Typer", err=True)
            return None
        command = typer.main.get_command(sub)
        command.name = cmd_name
        self.add_command(command, cmd_name)
        return command


def build_app() -> typer.Typer:
    """Compose the root command from every installed ``xroad_mn.cli`` entry point (each loaded when used)."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    root = type("XRoadMnRoot", (_LazyRoot,), {"entry_points": found})
    app = typer.Typer(
        cls=root,
        name="xroad-mn",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        invoke_without_command=True,
    )
    app.callback()(_root_callback)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    app = build_app()
    try:
        app(args=list(argv) if argv is not None else None, prog_name="xroad-mn")
    except XRoadError as e:  # raised outside a group's invoke (e.g. while building the app)
        print_error(e)
        sys.exit(1)
