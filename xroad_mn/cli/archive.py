"""``xroad-mn archive``: verify message-log archives (``mlog-*.zip``) and their linking chain.

    $ xroad-mn archive verify mlog-20240501120000-20240501180000-95b1f27097524105.zip --first
    $ xroad-mn archive verify NEXT.zip --previous-digest 9011ab55...58eaa --json
    $ xroad-mn archive verify-chain A.zip B.zip C.zip --first

Exit status 0 when the archive verifies (the last linking digest is printed so the next archive can be
checked against it), 1 with the X-Road fault code and a plain-language reason when it does not. Without
``--first`` or ``--previous-digest`` the link to the previous archive is not checked: the output says
``linked: no`` (JSON ``"linked": false``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from xroad_mn.archive import ArchiveVerification, verify_archive, verify_archive_chain
from xroad_mn.cli.main import JsonFlag, dump_json, fail
from xroad_mn.errors import XRoadError
from xroad_mn.fileio import read_archive, read_archives

__all__ = ["app"]

app = typer.Typer(help="Message-log archives: verify linking chains.", no_args_is_help=True)


@app.callback()
def _archive() -> None:
    """Message-log archives (mlog-*.zip): verify the linking chain and the integrity of every container."""


ArchivePath = Annotated[Path, typer.Argument(help="The archive (mlog-*.zip).", exists=True, dir_okay=False)]
PreviousDigest = Annotated[
    str | None,
    typer.Option("--previous-digest", help="Last linking digest of the previous archive (hex)."),
]
First = Annotated[bool, typer.Option("--first", help="The archive is the first of its chain.")]
AsJson = JsonFlag


def _payload(ok: ArchiveVerification | None, err: XRoadError | None, archive: str) -> dict[str, object]:
    return {
        "archive": archive,
        "valid": err is None,
        "code": err.code if err else None,
        "reason": err.message if err else None,
        "last_digest": ok.last_digest if ok else None,
        "entries": list(ok.entries) if ok else [],
        # False when neither --first nor --previous-digest was given: the archive is intact, but whether it
        # follows the previous archive of its chain was not checked.
        "linked": ok.linked if ok else False,
    }


def _print_ok(console: Console, name: str, result: ArchiveVerification) -> None:
    table = Table(title=f"[green]✓[/] {name}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("entries", str(len(result.entries)))
    table.add_row("hash algorithm", result.hash_algorithm)
    table.add_row("previous digest", result.previous_digest or "- (first archive of its chain)")
    if result.linked:
        table.add_row("linked", "yes")
    else:
        table.add_row("linked", "[yellow]no: link not checked; give --previous-digest or --first[/]")
    console.print(table)
    # On one line, never wrapped, so it can be copied into the next archive's --previous-digest.
    console.print(f"last digest: {result.last_digest}", soft_wrap=True)


def _print_error(console: Console, name: str, err: XRoadError) -> None:
    console.print(f"[bold red]✗ {name} is invalid[/]")
    console.print(f"  [bold]{err.code}[/]: {err.message}")


def _fail(err: XRoadError, name: str, *, as_json: bool) -> NoReturn:
    def show() -> None:
        _print_error(Console(stderr=True, highlight=False), name or "chain", err)

    fail(err, as_json=as_json, verdict=_payload(None, err, name), show=show)


def _check_options(previous_digest: str | None, first: bool) -> None:
    if previous_digest is not None and first:
        raise typer.BadParameter("give --previous-digest or --first, not both")


@app.command()
def verify(
    archive: ArchivePath,
    previous_digest: PreviousDigest = None,
    first: First = False,
    as_json: AsJson = False,
) -> None:
    """Verify one archive: its linkinginfo chain, every container's bytes, the link to the previous one."""
    _check_options(previous_digest, first)
    console = Console(highlight=False)
    try:
        result = verify_archive(read_archive(archive), previous_digest=previous_digest, first=first)
    except XRoadError as e:
        _fail(e, archive.name, as_json=as_json)
    if as_json:
        typer.echo(dump_json(_payload(result, None, archive.name)))
    else:
        _print_ok(console, archive.name, result)


@app.command("verify-chain")
def verify_chain(
    archives: Annotated[
        list[Path], typer.Argument(help="Archives in chain order.", exists=True, dir_okay=False)
    ],
    previous_digest: PreviousDigest = None,
    first: First = False,
    as_json: AsJson = False,
) -> None:
    """Verify archives in chain order, each linked to the last digest of the one before it."""
    _check_options(previous_digest, first)
    try:
        results = verify_archive_chain(read_archives(archives), previous_digest=previous_digest, first=first)
    except XRoadError as e:
        _fail(e, str(e.details.get("archive", "")), as_json=as_json)
    if as_json:
        typer.echo(dump_json([_payload(r, None, p.name) for p, r in zip(archives, results, strict=True)]))
        return
    console = Console(highlight=False)
    for path, result in zip(archives, results, strict=True):
        _print_ok(console, path.name, result)
