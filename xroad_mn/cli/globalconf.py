"""``xroad-mn globalconf``: check signed global configuration and anchors from the command line.

    $ xroad-mn globalconf verify internalconf --anchor configuration-anchor.xml --files-root public/ \\
          --at 2025-01-01T00:00:00Z
    valid: version 6, expires 2035-11-11T03:07:40+00:00, 2 parts
    $ xroad-mn globalconf anchor-hash configuration-anchor.xml
    54:70:AF:FE:...
    $ xroad-mn globalconf check-dir /etc/xroad/globalconf
    valid: instance EE, instances EE, bar, foo; 10 approved CAs, 3 approved TSAs, expires 2124-05-20T17:42:55Z

``verify`` and ``check-dir`` exit 0 when the directory is valid and 1 (with the fault code and reason) when
it is not. Without ``--files-root``, ``verify`` checks the signed directory only and says that the content
files it lists were not checked. With ``--shared-params`` the source verification certificates of an
installed shared-params are trusted too, which is how a security server follows a signing-key rotation:
the internal sources' for an ``internalconf``, the external sources' with ``--external`` (an
``externalconf``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import aiohttp
import typer
from cryptography import x509

from xroad_mn.cli.main import JsonFlag, dump_json, fail
from xroad_mn.confclient.client import ConfigurationClient, RefreshResult
from xroad_mn.confclient.store import check_stored_directory
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.anchor import anchor_hash, anchor_hash_hex, parse_anchor
from xroad_mn.globalconf.directory import (
    SignedDirectory,
    parse_signed_directory,
    verify_part_content,
    verify_signed_directory,
)
from xroad_mn.globalconf.params import parse_shared_params
from xroad_mn.transport.globalconf import AiohttpConfigurationTransport

__all__ = ["app"]

app = typer.Typer(
    name="globalconf",
    help="Verify signed global configuration directories and configuration anchors.",
    no_args_is_help=True,
    add_completion=False,
)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot read {what} {path}: {e.strerror}") from e


def _parse_at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as e:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint="--at") from e
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _content_path(root: Path, location: str) -> Path:
    """``root/<content-location>``, refusing locations that climb out of ``root``."""
    base = root.resolve()
    target = (base / location.lstrip("/")).resolve()
    if base != target and base not in target.parents:
        raise XRoadError(
            FaultCode.GLOBAL_CONF_INVALID, f"content location {location!r} leaves the files root"
        )
    return target


def _check(
    directory_file: Path,
    anchor_file: Path,
    files_root: Path | None,
    at: datetime,
    shared_params: Path | None,
    *,
    external: bool,
) -> SignedDirectory:
    anchor = parse_anchor(_read(anchor_file, "anchor"))
    directory = parse_signed_directory(_read(directory_file, "signed directory"))
    trusted: list[x509.Certificate] = list(anchor.verification_certs)
    if shared_params is not None:
        # Only the sources of the kind being verified: internal keys never vouch for an externalconf.
        shared = parse_shared_params(_read(shared_params, "shared-params"))
        trusted += [c for c in shared.verification_certs(external=external) if c not in trusted]
    verify_signed_directory(directory, trusted, at=at)
    if files_root is not None:
        for part in directory.parts:
            verify_part_content(part, _read(_content_path(files_root, part.content_location), "content file"))
    return directory


@app.command()
def verify(
    directory_file: Annotated[Path, typer.Argument(help="The signed directory (e.g. internalconf).")],
    anchor: Annotated[Path, typer.Option("--anchor", help="The configuration anchor to trust.")],
    files_root: Annotated[
        Path | None, typer.Option("--files-root", help="Check content files at DIR/<content-location>.")
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help="Verification time (ISO 8601); default now.")] = None,
    shared_params: Annotated[
        Path | None,
        typer.Option(
            "--shared-params", help="Also trust this shared-params' source certificates (key rotation)."
        ),
    ] = None,
    external: Annotated[
        bool,
        typer.Option(
            "--external",
            help="The directory is an externalconf: trust the external sources of --shared-params.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Verify a signed configuration directory against an anchor: exit 0 if valid, 1 if not."""
    when = _parse_at(at)
    try:
        directory = _check(directory_file, anchor, files_root, when, shared_params, external=external)
    except XRoadError as e:
        fail(e, as_json=as_json, verdict={"valid": False})
    summary = {
        "valid": True,
        "content_files_checked": files_root is not None,
        "version": directory.version,
        "expire_date": directory.expire_date.isoformat(),
        "parts": [
            {
                "content_identifier": p.content_identifier,
                "instance": p.instance,
                "content_location": p.content_location,
                "checked": files_root is not None,
            }
            for p in directory.parts
        ],
    }
    if as_json:
        typer.echo(dump_json(summary))
    else:
        typer.echo(
            f"valid: version {directory.version}, expires {directory.expire_date.isoformat()}, "
            f"{len(directory.parts)} parts" + (" (content files checked)" if files_root is not None else "")
        )
        if files_root is None:
            typer.echo(
                "  content files NOT checked: only the signed directory was verified; give --files-root "
                "to check each part's file against its hash"
            )


@app.command("check-dir")
def check_dir(
    conf_dir: Annotated[Path, typer.Argument(help="An installed configuration directory.")],
    at: Annotated[str | None, typer.Option("--at", help="Check expiry at (ISO 8601); default now.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check an installed global configuration directory: exit 0 if valid, 1 if not."""
    when = _parse_at(at)
    try:
        result = check_stored_directory(conf_dir, at=when)
    except XRoadError as e:
        fail(e, as_json=as_json, verdict={"valid": False})
    if as_json:
        typer.echo(dump_json({"valid": True, **result.to_dict()}))
        return
    expires = f", expires {result.expires.isoformat()}" if result.expires is not None else ""
    typer.echo(
        f"valid: instance {result.instance}, instances {', '.join(result.instances)}; "
        f"{result.approved_cas} approved CAs, {result.approved_tsas} approved TSAs{expires}"
    )
    for skipped in result.skipped:
        typer.echo(f"  skipped {skipped}")


@app.command("anchor-hash")
def anchor_hash_command(
    anchor: Annotated[Path, typer.Argument(help="The configuration anchor file.")],
    no_colons: Annotated[
        bool, typer.Option("--no-colons", help="Security server admin form (no colons).")
    ] = False,
) -> None:
    """Print an anchor's hash (SHA-224 of the file) after checking that it parses."""
    data = _read(anchor, "anchor")
    parse_anchor(data)
    typer.echo(anchor_hash_hex(data) if no_colons else anchor_hash(data))


async def _download_once(anchor_file: Path, out: Path, allowed_federations: str) -> RefreshResult:
    anchor = parse_anchor(_read(anchor_file, "anchor"))
    async with aiohttp.ClientSession() as session:
        client = ConfigurationClient(
            anchor,
            out,
            AiohttpConfigurationTransport(session),
            allowed_federations=allowed_federations,
        )
        return await client.refresh()


@app.command()
def download(
    anchor: Annotated[Path, typer.Option("--anchor", help="The configuration anchor to trust.")],
    out: Annotated[Path, typer.Option("--out", help="The configuration directory to store into.")],
    allowed_federations: Annotated[
        str,
        typer.Option("--allowed-federations", help="Federation partners to follow: none, all or A,B."),
    ] = "none",
    as_json: JsonFlag = False,
) -> None:
    """Download, verify and store the global configuration once: exit 0 if stored, 1 if not."""
    try:
        result = asyncio.run(_download_once(anchor, out, allowed_federations))
    except XRoadError as e:
        fail(e, as_json=as_json)
    if as_json:
        typer.echo(dump_json({"ok": True, **result.to_dict()}))
        return
    own = result.own
    typer.echo(
        f"stored {own.instance} version {own.version} from {own.directory_url}, "
        f"expires {own.expire_date.isoformat()}"
    )
    for path in own.files:
        typer.echo(f"  {path}")
    for fed in result.federations:
        if fed.result is not None:
            typer.echo(f"federation {fed.instance}: stored, expires {fed.result.expire_date.isoformat()}")
        else:
            typer.echo(f"federation {fed.instance}: not downloaded ({fed.code}: {fed.message})")
    for name in result.removed_instances:
        typer.echo(f"removed {name} (no longer followed)")
