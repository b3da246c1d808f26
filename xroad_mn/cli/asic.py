"""``xroad-mn asic``: verify signed-document containers (``.asice``) offline, like X-Road's ``asicverifier``.

    $ xroad-mn asic verify req.asice --conf /etc/xroad/globalconf
    $ xroad-mn asic verify req.asice --conf ./verificationconf --at 2024-12-05T13:20:00Z --json

Exit status 0 and a summary (signer, signing time, time-stamp time, what was verified) when the container
is valid; 1 with the X-Road fault code and a plain-language reason when it is not. ``--json`` prints one
object with the keys ``valid``, ``code``, ``reason``, ``signer``, ``signing_time`` and ``timestamp_time``.
A missing or unusable ``--conf`` is a usage error (exit 2 naming the option), never a verdict on the
container.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from xroad_mn.asic import ContainerVerification, verify_container
from xroad_mn.cli.main import JsonFlag, dump_json, fail
from xroad_mn.confclient.installed import load_trust_material
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import TrustMaterial

__all__ = ["app"]

app = typer.Typer(help="ASiC-E signed-document containers: verify offline.", no_args_is_help=True)

_REASONS: dict[str, str] = {
    FaultCode.ASIC_MIME_TYPE_NOT_FOUND: "the file is not an ASiC-E container (no mimetype entry)",
    FaultCode.ASIC_INVALID_MIME_TYPE: "the container's mimetype or layout is not ASiC-E",
    FaultCode.ASIC_MESSAGE_NOT_FOUND: "the container holds no message.xml",
    FaultCode.ASIC_SIGNATURE_NOT_FOUND: "the container holds no signature",
    FaultCode.ASIC_TIMESTAMP_NOT_FOUND: "the container holds no time-stamp",
    FaultCode.ASIC_MANIFEST_NOT_FOUND: "the batch time-stamp's ASiCManifest.xml is missing",
    FaultCode.ASIC_HASH_CHAIN_NOT_FOUND: "a hash chain the signature or time-stamp needs is missing",
    FaultCode.ASIC_HASH_CHAIN_RESULT_NOT_FOUND: "a hash-chain result the evidence needs is missing",
    FaultCode.INVALID_SIGNATURE_VALUE: "the signature does not match the signed data: something was changed",
    FaultCode.MALFORMED_SIGNATURE: "the signature or time-stamp evidence is malformed",
    FaultCode.INVALID_XML: "the signature is not well-formed XML",
    FaultCode.INCORRECT_CERTIFICATE: "the signing certificate does not belong to the expected signer",
    FaultCode.INVALID_CERT_PATH: "the signing certificate does not chain to an approved CA",
    FaultCode.CERT_VALIDATION: "the signing certificate was not valid (expired, revoked or unknown)",
    FaultCode.TIMESTAMP_VALIDATION: "the time-stamp does not cover the signature or its TSA is not approved",
    FaultCode.INVALID_HASH_CHAIN_REF: "a hash chain does not match the data it covers: something was changed",
    FaultCode.INVALID_HASH_CHAIN_RESULT: "a hash chain does not lead to the signed or time-stamped result",
    FaultCode.MALFORMED_HASH_CHAIN: "a hash chain is malformed",
    FaultCode.HASHCHAIN_UNUSED_INPUTS: "the container holds data the hash chain does not cover",
}


@app.callback()
def _asic() -> None:
    """Signed-document containers (.asice) of the message log: verify offline."""


def _reason(err: XRoadError) -> str:
    for code, text in _REASONS.items():
        if err.has_code(code):
            return f"{text} ({err.message})"
    return err.message


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise typer.BadParameter(f"not an ISO-8601 time: {value!r}", param_hint="--at") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _payload(ok: ContainerVerification | None, err: XRoadError | None) -> dict[str, object]:
    return {
        "valid": err is None,
        "code": err.code if err else None,
        "reason": _reason(err) if err else None,
        "signer": str(ok.signer) if ok else None,
        "signing_time": _iso(ok.signing_time) if ok else None,
        "timestamp_time": _iso(ok.timestamp_time) if ok else None,
        "timestamp_kind": ok.timestamp_kind if ok else None,
        "batch_signature": ok.batch_signature if ok else None,
        "verified_parts": list(ok.verified_parts) if ok else [],
        "unverified_parts": list(ok.unverified_parts) if ok else [],
    }


def _print_ok(console: Console, name: str, result: ContainerVerification) -> None:
    table = Table(title=f"[green]✓ valid[/] {name}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("signer", str(result.signer))
    table.add_row("signing time", _iso(result.signing_time) or "-")
    stamp = _iso(result.timestamp_time)
    table.add_row(
        "time-stamp", f"{stamp} ({result.timestamp_kind})" if stamp else "- (none; checked at --at)"
    )
    table.add_row("signature", "batch (hash chain)" if result.batch_signature else "single")
    table.add_row("verified", ", ".join(result.verified_parts))
    if result.unverified_parts:
        table.add_row("not in container", ", ".join(result.unverified_parts))
    table.add_row(
        "checked",
        "time-stamp, signature and digests, signer binding, certificate chain and OCSP at "
        + (_iso(result.verification_time) or "-"),
    )
    console.print(table)


@app.command("verify")
def verify(
    container: Annotated[Path, typer.Argument(help="The container (.asice).", exists=True, dir_okay=False)],
    conf: Annotated[
        Path,
        typer.Option(
            "--conf",
            help="Global configuration directory (trusted CAs, TSAs, OCSP responders).",
            exists=True,
            file_okay=False,
        ),
    ],
    at: Annotated[
        str | None,
        typer.Option("--at", help="Verification time (ISO-8601); default: the time-stamp's genTime."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify a container: time-stamp, signature, hash chains, signer, certificate chain and OCSP."""
    when = _parse_at(at)
    trust = _trust(conf)
    console = Console(highlight=False, soft_wrap=True)
    try:
        ok = verify_container(container.read_bytes(), trust=trust, at=when)
    except XRoadError as e:
        _fail(e, container.name, console, as_json=as_json)
    except OSError as e:
        err = XRoadError(FaultCode.IO_ERROR, f"cannot read {container}: {e}")
        _fail(err, container.name, console, as_json=as_json)
    if as_json:
        typer.echo(dump_json(_payload(ok, None)))
    else:
        _print_ok(console, container.name, ok)


def _fail(err: XRoadError, name: str, console: Console, *, as_json: bool) -> NoReturn:
    def show() -> None:
        console.print(f"[bold red]✗ invalid[/] {name}")
        console.print(f"[bold]{err.code}[/]: {_reason(err)}")

    fail(err, as_json=as_json, verdict=_payload(None, err), show=show)


def _trust(conf: Path) -> TrustMaterial:
    """The trust material of ``--conf``: a usage error (exit 2) when it is no usable global configuration,
    so a bad option is never reported as a verdict on the container."""
    try:
        return load_trust_material(conf)
    except XRoadError as e:
        raise typer.BadParameter(
            f"{conf} is not a usable global configuration directory: {e.message}", param_hint="'--conf'"
        ) from e
