"""``xroad-mn node``: install, key, certify, register and run a node (security server) from the command line.

    $ export XROAD_MN_TOKEN_PIN=...         # else every command that uses the token asks for the PIN
    $ xroad-mn node init --dir ss1 --anchor anchor.xml --owner MEMBER:MN/GOV/9010001 --server-code ss1 \\
          --address 127.0.0.2 --globalconf-ca registry-tls.pem
    $ xroad-mn node certs request --dir ss1 --usage auth --ca-url http://127.0.0.1:8899
    $ xroad-mn node certs request --dir ss1 --usage sign --ca-url http://127.0.0.1:8899
    $ xroad-mn node register --dir ss1                          # authCertReg: prints the request id
    $ xroad-mn node client add --dir ss1 SUBSYSTEM:MN/GOV/9010001/civil-registry     # clientReg too
    $ xroad-mn node service add --dir ss1 --client SUBSYSTEM:MN/GOV/9010001/civil-registry \\
          --code people --rest https://civil-registry.internal/api
    $ xroad-mn node access grant --dir ss1 --service SERVICE:MN/GOV/9010001/civil-registry/people \\
          --to SUBSYSTEM:MN/COM/9011223/bank --method GET --path /people/*
    $ xroad-mn node status --dir ss1 --json
    $ xroad-mn node serve --dir ss1                             # admin API and OCSP port until Ctrl-C
    $ xroad-mn node apikey create --dir ss1 --role xroad-mn-messagelog-auditor   # printed once
    $ xroad-mn node log export --dir ss1 --x-road-id MN-5c1f... --out evidence/   # ASiC-E containers
    $ xroad-mn node log export --dir ss1 --from 2027-01-01 --to 2027-02-01 --out jan.zip  # + manifest.json
    $ xroad-mn node log search --dir ss1 --subject УБ99112233 --from 2027-01-01     # who asked about whom
    $ xroad-mn node log verify --dir ss1 [--archives DIR]                           # exit 1 when broken
    $ xroad-mn node log archive --dir ss1 --json               # time-stamped records into mlog-*.zip

Every command takes ``--dir`` (the node's home, :mod:`security_server.home`) and ``--json``, and works on
the node's database directly, so no server needs to run. The commands hold no logic: they call
:mod:`security_server.operations` (what the admin API calls) and :func:`security_server.app.run_node`, and
write the admin API's audit records with the operating-system user as ``user``. ``--json`` prints the admin
API's JSON shapes; an error is the root command's one JSON error object and exit status 1.

The token's PIN is ``XROAD_MN_TOKEN_PIN``, else asked on the terminal (twice by ``init``), and only by the
commands that use a key: ``init``, ``certs``, ``register``, ``client add`` and ``serve``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import aiohttp
import typer
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import BaseModel
from rich.console import Console

from security_server.api.events import NodeEvent
from security_server.api.models import (
    ClientOut,
    CsrOut,
    ImportedOut,
    StatusOut,
    cert_out,
    client_out,
    csr_out,
    description_out,
    right_out,
    status_out,
)
from security_server.app import run_node
from security_server.certs import ImportedCertificate
from security_server.db import AccessSubject, DescriptionType, KeyUsage
from security_server.home import api_keys_file, audit_log_file, globalconf_dir, open_home
from security_server.ids import (
    MEMBER_FORMS,
    SERVICE_FORMS,
    SUBJECT_FORMS,
    format_for_people,
    format_subject,
    parse_client_id,
    parse_member_id,
    parse_service_id,
    parse_subject,
)
from security_server.messagelog import MessageLogStore, export_exchange
from security_server.messagelog.archiver import ArchiveFile, archive_once
from security_server.messagelog.bundle import MANIFEST_NAME, BundleSummary
from security_server.messagelog.report import (
    broken_error,
    bundle_json,
    parse_log_time,
    print_search_page,
    print_verification,
    search_json,
    verification_json,
)
from security_server.messagelog.search import DEFAULT_SEARCH_LIMIT, LogFilters, SearchPage
from security_server.messagelog.verify import IN_FLIGHT, LogVerification, verify_log
from security_server.operations import (
    FIRST_KEY_ROLES,
    NodeContext,
    access,
    certs,
    init_node,
    login_token,
    messagelog,
    node_status,
    open_node_store,
    open_node_token,
    registration,
    services,
)
from security_server.servicedesc import openapi_source, read_document
from security_server.settings import NodeSettings
from security_server.workers import proxy_workers
from xroad_mn.admin import SECURITY_SERVER_ROLES, AuditLog, Role
from xroad_mn.admin.apikeys import parse_api_keys
from xroad_mn.cli.apikeys import create_key, revoke_key, role_option
from xroad_mn.cli.main import (
    DatabaseSchemaOption,
    DatabaseUrlOption,
    JsonFlag,
    cli_user,
    dump_json,
    fail,
    until_interrupted,
)
from xroad_mn.confclient.installed import load_trust_material
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import atomic_file, write_atomic
from xroad_mn.identifiers import MemberId, ServiceId, format_id
from xroad_mn.tokens import TokenType, read_new_pin, read_pin
from xroad_mn.transport.server import http_url

__all__ = ["app"]

_T = TypeVar("_T")

app = typer.Typer(
    name="node",
    help="A node (security server): keys, certificates, registration, clients, services and access rights.",
    no_args_is_help=True,
    add_completion=False,
)
certs_app = typer.Typer(help="Keys, certificate requests and certificates.", no_args_is_help=True)
client_app = typer.Typer(help="Hosted clients.", no_args_is_help=True)
service_app = typer.Typer(help="Service descriptions and services.", no_args_is_help=True)
access_app = typer.Typer(help="Access rights.", no_args_is_help=True)
log_app = typer.Typer(help="The message log: evidence of the exchanges.", no_args_is_help=True)
apikey_app = typer.Typer(help="Admin API keys.", no_args_is_help=True)
for _sub, _name in (
    (certs_app, "certs"),
    (client_app, "client"),
    (service_app, "service"),
    (access_app, "access"),
    (log_app, "log"),
    (apikey_app, "apikey"),
):
    app.add_typer(_sub, name=_name)

DirOption = Annotated[Path, typer.Option("--dir", help="The node's home directory.")]
JsonOption = JsonFlag
"""``--json``: the admin API's JSON shapes; errors as the root command's one JSON error object."""


def _print_json(value: BaseModel | list[Any] | dict[str, Any]) -> None:
    if isinstance(value, BaseModel):
        typer.echo(value.model_dump_json(indent=2))
    elif isinstance(value, list):
        typer.echo(dump_json([json.loads(v.model_dump_json()) for v in value], indent=2))
    else:
        typer.echo(dump_json(value, indent=2))


def _run(
    node: Path | NodeSettings,
    event: NodeEvent | None,
    action: Callable[[NodeContext], Awaitable[tuple[_T, dict[str, Any]]]],
    *,
    login: bool,
) -> _T:
    """Run ``action`` on a context of the node in ``node`` (its home, or its settings when the command
    opened them to read identifiers in their ``strict_identifier_checks`` mode); audit it as ``event`` (a
    refusal as ``<event> failed``). With ``login`` the token is logged in first (the PIN read here) and out
    after."""
    settings = node if isinstance(node, NodeSettings) else open_home(node)
    pin = read_pin() if login else None
    audit = AuditLog(audit_log_file(settings.home))

    async def main() -> _T:
        token = open_node_token(settings)
        try:
            if pin is not None:
                await login_token(token, pin)
            async with open_node_store(settings) as store, aiohttp.ClientSession() as session:
                result, data = await action(NodeContext(settings, store, token, session))
        except XRoadError as e:
            if event is not None:
                await audit.record_failure(event, cli_user(), {}, e)
            raise
        finally:
            if pin is not None:
                await asyncio.to_thread(token.logout)
        if event is not None:
            await audit.record(event, cli_user(), data)
        return result

    return asyncio.run(main())


def _usage(text: str) -> KeyUsage:
    try:
        return KeyUsage(text)
    except ValueError as e:
        raise typer.BadParameter(f"{text!r}: use auth or sign", param_hint="--usage") from e


UsageOption = Annotated[
    KeyUsage, typer.Option("--usage", parser=_usage, metavar="auth|sign", help="auth or sign.")
]
MemberOption = Annotated[
    str | None,
    typer.Option("--member", help=f"Signing keys: the member ({MEMBER_FORMS}); default the owner."),
]
CaNameOption = Annotated[
    str | None, typer.Option("--ca-name", help="The approved CA; default the only one that fits.")
]


def _member(settings: NodeSettings, text: str | None) -> MemberId | None:
    return None if text is None else parse_member_id(text, strict=settings.strict_identifier_checks)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot read {what} {path}: {e.strerror}") from e


# -- init, serve, status ----------------------------------------------------------------------------------


@app.command()
def init(
    home: DirOption,
    anchor: Annotated[Path, typer.Option("--anchor", help="The configuration anchor (XML) of the registry.")],
    owner: Annotated[str, typer.Option("--owner", help=f"The owner member: {MEMBER_FORMS}.")],
    server_code: Annotated[str, typer.Option("--server-code", help="The security server code.")],
    address: Annotated[str, typer.Option("--address", help="The node's address; every listener binds it.")],
    globalconf_ca: Annotated[
        Path | None,
        typer.Option(
            "--globalconf-ca",
            help="PEM certificate(s) verifying https configuration sources (a registry with a self-signed "
            "TLS certificate); default the system's CAs.",
        ),
    ] = None,
    database_url: DatabaseUrlOption = None,
    database_schema: DatabaseSchemaOption = None,
    token_module: Annotated[
        Path | None,
        typer.Option("--token-module", help="PKCS #11 module: keys in an HSM (with --token-label)."),
    ] = None,
    token_label: Annotated[
        str | None, typer.Option("--token-label", help="PKCS #11 token label (with --token-module).")
    ] = None,
    admin_port: Annotated[int | None, typer.Option("--admin-port", help="Admin API port [4000].")] = None,
    ocsp_port: Annotated[int | None, typer.Option("--ocsp-port", help="OCSP responder port [5577].")] = None,
    strict_identifier_checks: Annotated[
        bool,
        typer.Option(
            "--strict-identifier-checks/--no-strict-identifier-checks",
            help="X-Road's strict identifier checks; off, identifiers may hold characters such as '_' in the "
            "owner and server code (the setting strict_identifier_checks).",
        ),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Create a node: its home, token and database, with global configuration downloaded and verified from
    the anchor; prints the first admin API key (once). The token's PIN is ``XROAD_MN_TOKEN_PIN``, else asked
    (twice for a new software token; a PKCS #11 token is initialised with its own tools)."""
    member = parse_member_id(owner, strict=strict_identifier_checks)
    anchor_xml = _read(anchor, "anchor")
    token: dict[str, object] | None = None
    if token_module is not None or token_label is not None:
        token = {"type": TokenType.PKCS11.value, "module": token_module, "label": token_label}
    values: dict[str, object] = {
        "globalconf_ca_file": globalconf_ca.resolve() if globalconf_ca is not None else None,
        "database_url": database_url,
        "database_schema": database_schema,
        "admin_port": admin_port,
        "ocsp_responder_port": ocsp_port,
        "token": token,
        "strict_identifier_checks": None if strict_identifier_checks else False,
    }
    pin = read_pin() if token is not None else read_new_pin()  # before anything is created
    result = asyncio.run(
        init_node(
            home,
            anchor=anchor_xml,
            owner=member,
            server_code=server_code,
            address=address,
            pin=pin,
            settings={k: v for k, v in values.items() if v is not None},
        )
    )
    roles = sorted(r.value for r in FIRST_KEY_ROLES)
    server_id = format_for_people(result.server)
    if as_json:
        _print_json(
            {
                "directory": str(home),
                "server_id": server_id,
                "instance": result.instance,
                "globalconf_expires": result.globalconf_expires.isoformat(),
                "api_key": result.api_key,
                "api_key_id": result.api_key_id,
                "roles": roles,
            }
        )
        return
    typer.echo(f"Created node {server_id} in {home}")
    typer.echo(f"Global configuration of {result.instance} installed; it expires {result.globalconf_expires}")
    typer.echo(f"Admin API key ({', '.join(roles)}); shown only once:")
    typer.echo(f"  {result.api_key}")


async def _serve(settings: NodeSettings, pin: str) -> None:
    async with run_node(settings, pin=pin) as node:
        resolved = node.settings
        with proxy_workers(resolved, pin) as workers:
            typer.echo(f"Admin API  {node.admin_url}/api/v1  (OpenAPI: {node.admin_url}/api/v1/openapi.json)")
            typer.echo(f"OCSP       {node.ocsp_url}")
            typer.echo(
                f"Clients    {http_url(resolved.address, resolved.client_http_port)}  (REST /r1/..., SOAP)"
            )
            typer.echo(f"Servers    https://{resolved.address}:{resolved.server_proxy_port}  (mutual TLS)")
            typer.echo(f"Workers    {len(workers) + 1} processes")
            await until_interrupted("Press Ctrl-C to stop.")


@app.command()
def serve(home: DirOption) -> None:
    """Serve the client proxy (8080), the server proxy (5500, mutual TLS), the admin API and the OCSP
    responder (5577) until interrupted, keeping global configuration and OCSP responses fresh and the
    message log time-stamped; the proxies in ``workers`` processes (default: one per core). A wrong PIN stops
    the start (``signer.pin_incorrect``)."""
    settings = open_home(home)
    asyncio.run(_serve(settings, read_pin()))


def _show_status(out: StatusOut) -> None:
    typer.echo(f"Server   {out.server_id}  (owner {out.owner_id}, address {out.address})")
    typer.echo(
        f"Token    {out.token.type.value} {out.token.label!r}: {out.token.state.value}, "
        f"{out.token.key_count} keys"
    )
    g = out.global_configuration
    if g.error_code is not None:
        typer.echo(f"Global configuration: {g.error_code}: {g.error}")
    else:
        age = f"{g.age_seconds:.0f} s old" if g.age_seconds is not None else "age unknown"
        typer.echo(f"Global configuration of {g.instance}: {age}, expires {g.expires_at}")
    for c in out.certificates:
        ocsp = c.ocsp_status.value if c.ocsp_status is not None else f"none ({c.ocsp_error or 'not fetched'})"
        who = f" {c.member_id}" if c.member_id else ""
        typer.echo(
            f"Cert     {c.usage.value}{who} serial {int(c.certificate.serial_number, 16)}: {c.status.value}, "
            f"{'active' if c.active else 'inactive'}, OCSP {ocsp}"
        )
    for client in out.clients:
        typer.echo(f"Client   {client.client_id}: {client.state.value} ({client.connection_type.value})")


@app.command()
def status(home: DirOption, as_json: JsonOption = False) -> None:
    """Owner, server id, address, token state, each certificate with its registration state and the OCSP
    status the node holds for it, global configuration age and expiry, hosted clients and their states.
    Needs no PIN and changes nothing."""

    async def action(ctx: NodeContext) -> tuple[StatusOut, dict[str, Any]]:
        return status_out(await node_status(ctx)), {}

    out = _run(home, None, action, login=False)
    if as_json:
        _print_json(out)
    else:
        _show_status(out)


# -- certificates -----------------------------------------------------------------------------------------


def _imported(i: ImportedCertificate) -> ImportedOut:
    return ImportedOut(
        key_id=i.record.key_id,
        status=i.record.status,
        ca_name=i.ca.name,
        member_id=format_for_people(i.member) if i.member is not None else None,
        certificate=cert_out(i.record.certificate),
    )


def _show_imported(out: ImportedOut, usage: KeyUsage) -> None:
    serial = int(out.certificate.serial_number, 16)
    typer.echo(f"Imported the {usage.value} certificate from {out.ca_name}: {out.status.value}")
    typer.echo(f"  subject {out.certificate.subject}")
    typer.echo(f"  serial  {serial} (0x{out.certificate.serial_number})")


@certs_app.command("request")
def certs_request(
    home: DirOption,
    usage: UsageOption,
    ca_url: Annotated[str, typer.Option("--ca-url", help="Base URL of a CA speaking POST /ca/certificates.")],
    member: MemberOption = None,
    ca_name: CaNameOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate a key in the token, make its CSR for the CA's profile, submit it to the CA, check and import
    the certificate; prints its serial. A refusal anywhere leaves no key behind."""
    settings = open_home(home)
    member_id = _member(settings, member)

    async def action(ctx: NodeContext) -> tuple[ImportedOut, dict[str, Any]]:
        imported = await certs.request_certificate(
            ctx, usage, ca_url=ca_url, member=member_id, ca_name=ca_name
        )
        out = _imported(imported)
        return out, {"sha256": out.certificate.sha256, "usage": usage.value}

    out = _run(settings, NodeEvent.REQUEST_CERTIFICATE, action, login=True)
    if as_json:
        _print_json(out)
    else:
        _show_imported(out, usage)


@certs_app.command("csr")
def certs_csr(
    home: DirOption,
    usage: UsageOption,
    out: Annotated[Path, typer.Option("--out", help="Where to write the CSR (PEM).")],
    member: MemberOption = None,
    ca_name: CaNameOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate a key in the token and write its CSR, for a CA that answers out of band; import the answer
    with ``node certs import``."""
    settings = open_home(home)
    member_id = _member(settings, member)

    async def action(ctx: NodeContext) -> tuple[CsrOut, dict[str, Any]]:
        new = await certs.generate_key_and_csr(ctx, usage, member=member_id, ca_name=ca_name)
        try:
            await asyncio.to_thread(write_atomic, out, new.csr.public_bytes(Encoding.PEM))
        except BaseException:
            await certs.delete_key(ctx, new.record.key_id)
            raise
        return csr_out(new.record, new.ca.name), {"key_id": new.record.key_id, "ca": new.ca.name}

    csr = _run(settings, NodeEvent.GENERATE_KEY_AND_CSR, action, login=True)
    if as_json:
        _print_json({**json.loads(csr.model_dump_json()), "file": str(out)})
    else:
        typer.echo(f"Wrote the {usage.value} CSR for key {csr.key_id} ({csr.ca_name}) to {out}")


@certs_app.command("import")
def certs_import(
    home: DirOption,
    certificate: Annotated[Path, typer.Argument(help="The certificate the CA issued (PEM or DER).")],
    as_json: JsonOption = False,
) -> None:
    """Check a certificate (approved CA, key usage, the member of a signing certificate, the key in the
    token) and import it."""
    data = _read(certificate, "certificate")

    async def action(ctx: NodeContext) -> tuple[ImportedOut, dict[str, Any]]:
        out = _imported(await certs.import_certificate(ctx, data))
        return out, {"sha256": out.certificate.sha256}

    out = _run(home, NodeEvent.IMPORT_CERTIFICATE, action, login=True)
    if as_json:
        _print_json(out)
    else:
        _show_imported(out, KeyUsage.SIGNING if out.member_id else KeyUsage.AUTHENTICATION)


# -- registration and clients -----------------------------------------------------------------------------


@app.command()
def register(
    home: DirOption,
    sha256: Annotated[
        str | None,
        typer.Option("--sha256", help="The auth certificate (SHA-256 hex); default the newest saved one."),
    ] = None,
    address: Annotated[str | None, typer.Option("--address", help="Default: the node's address.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Register the authentication certificate at the registry (authCertReg); prints the request id."""
    digest: bytes | None = None
    if sha256 is not None:
        try:
            digest = bytes.fromhex(sha256)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise typer.BadParameter("64 hex digits", param_hint="--sha256")

    async def action(ctx: NodeContext) -> tuple[int, dict[str, Any]]:
        request_id = await registration.register_server(ctx, digest, address=address)
        return request_id, {"request_id": request_id}

    request_id = _run(home, NodeEvent.REGISTER_AUTH_CERT, action, login=True)
    if as_json:
        _print_json({"request_id": request_id})
    else:
        typer.echo(f"Sent authCertReg: request {request_id}")


@client_app.command("add")
def client_add(
    home: DirOption,
    client: Annotated[
        str, typer.Argument(help="The subsystem: SUBSYSTEM:MN/GOV/9010001/SUB or MN:GOV:9010001:SUB.")
    ],
    name: Annotated[str | None, typer.Option("--name", help="The subsystem's name for the registry.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Host a client and register it at the registry (clientReg); prints the request id. When the request
    cannot be sent or the registry refuses it, the client is not added."""
    settings = open_home(home)
    client_id = parse_client_id(client, strict=settings.strict_identifier_checks)

    async def action(ctx: NodeContext) -> tuple[tuple[ClientOut, int], dict[str, Any]]:
        added, request_id = await registration.add_and_register_client(ctx, client_id, subsystem_name=name)
        return (client_out(added), request_id), {
            "client_id": format_for_people(client_id),
            "request_id": request_id,
        }

    out, request_id = _run(settings, NodeEvent.REGISTER_CLIENT, action, login=True)
    if as_json:
        _print_json({**json.loads(out.model_dump_json()), "request_id": request_id})
    else:
        typer.echo(f"Added {out.client_id}; sent clientReg: request {request_id}")


# -- services and access rights ---------------------------------------------------------------------------


@service_app.command("add")
def service_add(
    home: DirOption,
    client: Annotated[str, typer.Option("--client", help="The hosted subsystem that provides the service.")],
    code: Annotated[
        str | None,
        typer.Option("--code", help="The service code (REST and OpenAPI 3; a WSDL names its own)."),
    ] = None,
    rest: Annotated[str | None, typer.Option("--rest", help="A REST service at this base URL.")] = None,
    openapi: Annotated[
        str | None, typer.Option("--openapi", help="An OpenAPI 3 description: http(s) URL or file.")
    ] = None,
    wsdl: Annotated[str | None, typer.Option("--wsdl", help="A WSDL description by URL.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a service description to a hosted client: a REST base URL, an OpenAPI 3 document (its endpoints
    too) or a WSDL (its operations are the services)."""
    chosen = [n for n, v in (("--rest", rest), ("--openapi", openapi), ("--wsdl", wsdl)) if v is not None]
    if len(chosen) != 1:
        raise typer.BadParameter("give one of --rest, --openapi and --wsdl", param_hint="--rest")
    if wsdl is None and code is None:
        raise typer.BadParameter(f"{chosen[0]} needs --code", param_hint="--code")
    if wsdl is not None and code is not None:
        raise typer.BadParameter(
            "a WSDL's services are its operations: leave --code out", param_hint="--code"
        )
    settings = open_home(home)
    client_id = parse_client_id(client, strict=settings.strict_identifier_checks)
    url: str | None
    document: bytes | None = None
    if rest is not None:
        kind, url = DescriptionType.REST, rest
    elif wsdl is not None:
        kind, url = DescriptionType.WSDL, wsdl
    else:
        assert openapi is not None
        kind = DescriptionType.OPENAPI3
        source = openapi_source(openapi)
        if isinstance(source, Path):
            url, document = None, read_document(source)
        else:
            url = source

    async def action(ctx: NodeContext) -> tuple[Any, dict[str, Any]]:
        added = await services.add_service_description(
            ctx,
            client_id,
            kind,
            url=url,
            document=document,
            service_code=code,
            reader=services.read_description,
        )
        audit = {"client_id": format_for_people(client_id), "id": added.id, "type": kind.value, "url": url}
        return description_out(added), audit

    out = _run(settings, NodeEvent.ADD_SERVICE_DESCRIPTION, action, login=False)
    if as_json:
        _print_json(out)
        return
    typer.echo(f"Added {kind.value} description {out.id} to {format_for_people(client_id)}:")
    for s in out.services:
        typer.echo(f"  service {s.service_code}" + (f" at {s.url}" if s.url else ""))


def _service_and_subjects(
    settings: NodeSettings, service: str, subjects: list[str]
) -> tuple[ServiceId, list[AccessSubject]]:
    strict = settings.strict_identifier_checks
    return parse_service_id(service, strict=strict), [parse_subject(s, strict=strict) for s in subjects]


@access_app.command("grant")
def access_grant(
    home: DirOption,
    service: Annotated[str, typer.Option("--service", help=f"The service: {SERVICE_FORMS}.")],
    to: Annotated[list[str], typer.Option("--to", help=f"Who may call it (repeatable): {SUBJECT_FORMS}.")],
    method: Annotated[
        str | None, typer.Option("--method", help="REST: the endpoint's method (with --path).")
    ] = None,
    path: Annotated[
        str | None, typer.Option("--path", help="REST: the endpoint's path pattern (with --method).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Give subsystems, members, global groups or local groups access to a service (or one of its REST
    endpoints); all or nothing."""
    settings = open_home(home)
    service_id, subjects = _service_and_subjects(settings, service, to)

    async def action(ctx: NodeContext) -> tuple[Any, dict[str, Any]]:
        granted = await access.grant_access(
            ctx, service_id.client, service_id.service_code, subjects, method=method, path=path
        )
        out = [right_out(r) for r in granted]
        audit = {
            "client_id": format_for_people(service_id.client),
            "service_code": service_id.service_code,
            "subjects": [r.subject for r in out],
            "method": method,
            "path": path,
        }
        return out, audit

    out = _run(settings, NodeEvent.ADD_SERVICE_ACCESS_RIGHTS, action, login=False)
    if as_json:
        _print_json(out)
        return
    where = f" {method} {path}" if method is not None else ""
    for r in out:
        typer.echo(f"Granted {format_id(service_id)}{where} to {r.subject}")


@access_app.command("revoke")
def access_revoke(
    home: DirOption,
    service: Annotated[str, typer.Option("--service", help=f"The service: {SERVICE_FORMS}.")],
    to: Annotated[
        list[str], typer.Option("--to", help=f"Whose access is taken away (repeatable): {SUBJECT_FORMS}.")
    ],
    method: Annotated[
        str | None, typer.Option("--method", help="REST: the endpoint's method (with --path).")
    ] = None,
    path: Annotated[
        str | None, typer.Option("--path", help="REST: the endpoint's path pattern (with --method).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Take access to a service (or one of its REST endpoints) away from subsystems, members, global groups
    or local groups; all or nothing. The next request is decided without it."""
    settings = open_home(home)
    service_id, subjects = _service_and_subjects(settings, service, to)

    async def action(ctx: NodeContext) -> tuple[Any, dict[str, Any]]:
        await access.revoke_access(
            ctx, service_id.client, service_id.service_code, subjects, method=method, path=path
        )
        revoked = [format_subject(s) for s in subjects]
        audit = {
            "client_id": format_for_people(service_id.client),
            "service_code": service_id.service_code,
            "subjects": revoked,
            "method": method,
            "path": path,
        }
        return revoked, audit

    out = _run(settings, NodeEvent.REMOVE_SERVICE_ACCESS_RIGHTS, action, login=False)
    if as_json:
        _print_json({"service": format_id(service_id), "method": method, "path": path, "revoked": out})
        return
    where = f" {method} {path}" if method is not None else ""
    for subject in out:
        typer.echo(f"Revoked {format_id(service_id)}{where} from {subject}")


# -- message log ------------------------------------------------------------------------------------------


FromOption = Annotated[
    str | None, typer.Option("--from", help="Logged at or after (ISO 8601; UTC if naive).")
]
ToOption = Annotated[str | None, typer.Option("--to", help="Logged before (ISO 8601; UTC if naive).")]
ClientFilter = Annotated[str | None, typer.Option("--client", help="The exchange's client, exactly.")]
ServiceFilter = Annotated[str | None, typer.Option("--service", help="The service (SERVICE:MN/GOV/...).")]
XRoadIdFilter = Annotated[str | None, typer.Option("--x-road-id", help="The X-Road id (SOAP id).")]
UserIdFilter = Annotated[str | None, typer.Option("--user-id", help="X-Road-UserId / userId.")]
IssueFilter = Annotated[str | None, typer.Option("--issue", help="X-Road-Issue / issue.")]
StatusFilter = Annotated[int | None, typer.Option("--status", help="A REST response's HTTP status.")]
SubjectFilter = Annotated[
    str | None,
    typer.Option("--subject", help="The data subject's registration number (looked up hashed)."),
]
SubjectHashFilter = Annotated[
    str | None,
    typer.Option(
        "--subject-hash",
        help="The data subject's keyed hash (as audit records and export manifests hold it).",
    ),
]
AfterIdOption = Annotated[int | None, typer.Option("--after-id", help="Records after this record id.")]


def _log_filters(
    settings: NodeSettings,
    start: str | None,
    end: str | None,
    client: str | None,
    service: str | None,
    x_road_id: str | None,
    user_id: str | None,
    issue: str | None,
    status: int | None,
    subject: str | None,
    subject_hash: str | None,
) -> LogFilters:
    strict = settings.strict_identifier_checks
    return LogFilters(
        start=parse_log_time(start) if start is not None else None,
        end=parse_log_time(end) if end is not None else None,
        client=parse_client_id(client, strict=strict) if client is not None else None,
        service=parse_service_id(service, strict=strict) if service is not None else None,
        query_id=x_road_id, user_id=user_id, issue=issue, status=status, data_subject=subject,
        subject_hash=subject_hash,
    )  # fmt: skip


def _export_directory(home: Path, x_road_id: str, out: Path, as_json: bool) -> None:
    async def action(ctx: NodeContext) -> tuple[list[tuple[str, bytes]], dict[str, Any]]:
        files = await export_exchange(MessageLogStore(ctx.store.engine), x_road_id)
        return files, {"x_road_id": x_road_id, "files": len(files)}

    files = _run(home, NodeEvent.EXPORT_MESSAGE_LOG, action, login=False)
    written: list[dict[str, Any]] = []
    for name, data in files:
        path = out / name
        write_atomic(path, data, make_parents=True)
        written.append({"file": str(path), "bytes": len(data)})
    if as_json:
        _print_json({"query_id": x_road_id, "files": written})
        return
    for item in written:
        typer.echo(f"Wrote {item['file']} ({item['bytes']} bytes)")


@log_app.command("export")
def log_export(
    home: DirOption,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="FILE.zip: the containers of every record found and manifest.json; a directory: the "
            "containers of one exchange (--x-road-id alone).",
        ),
    ],
    start: FromOption = None,
    end: ToOption = None,
    client: ClientFilter = None,
    service: ServiceFilter = None,
    x_road_id: XRoadIdFilter = None,
    user_id: UserIdFilter = None,
    issue: IssueFilter = None,
    status: StatusFilter = None,
    subject: SubjectFilter = None,
    subject_hash: SubjectHashFilter = None,
    after_id: AfterIdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write logged messages as ASiC-E containers (X-Road's names) that verify offline with ``xroad-mn asic
    verify --conf HOME/globalconf``. ``--out FILE.zip`` takes the search's filters (time range, client,
    service, ids, user, issue, status, data subject) and writes every time-stamped record found, and a
    ``manifest.json`` (the search, the node, each container's name, X-Road id, kind, SHA-256 and state;
    counts); records not time-stamped yet are skipped and listed in the manifest. The zip is written as
    the records are read and appears only when complete."""
    if out.suffix.lower() != ".zip":
        others = (start, end, client, service, user_id, issue, status, subject, subject_hash, after_id)
        if x_road_id is None or any(v is not None for v in others):
            raise typer.BadParameter(
                "a directory takes one exchange's containers (--x-road-id alone); give --out FILE.zip to "
                "export a search",
                param_hint="--out",
            )
        _export_directory(home, x_road_id, out, as_json)
        return
    settings = open_home(home)
    filters = _log_filters(
        settings, start, end, client, service, x_road_id, user_id, issue, status, subject, subject_hash
    )

    async def action(ctx: NodeContext) -> tuple[BundleSummary, dict[str, Any]]:
        asked = await messagelog.filters_audit(ctx.settings, ctx.store, filters)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(out) as f:
            summary = await messagelog.export(
                ctx.settings, ctx.store, filters, f, now=datetime.now(UTC), after_id=after_id
            )
        return summary, {"filters": asked, "containers": summary.containers, "skipped": summary.skipped}

    summary = _run(settings, NodeEvent.EXPORT_MESSAGE_LOG, action, login=False)
    if as_json:
        _print_json({"file": str(out), **bundle_json(summary)})
        return
    typer.echo(
        f"Wrote {out}: {summary.containers} containers ({summary.bytes_written} bytes) and {MANIFEST_NAME}"
    )
    if summary.skipped:
        typer.echo(f"Skipped {summary.skipped} records not time-stamped yet (listed in {MANIFEST_NAME})")


@log_app.command("search")
def log_search(
    home: DirOption,
    start: FromOption = None,
    end: ToOption = None,
    client: ClientFilter = None,
    service: ServiceFilter = None,
    x_road_id: XRoadIdFilter = None,
    user_id: UserIdFilter = None,
    issue: IssueFilter = None,
    status: StatusFilter = None,
    subject: SubjectFilter = None,
    subject_hash: SubjectHashFilter = None,
    limit: Annotated[
        int, typer.Option("--limit", help="Records per page (at most 1000).")
    ] = DEFAULT_SEARCH_LIMIT,
    after_id: AfterIdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search the message log's metadata (never bodies) by time, parties, ids, user, issue, status and data
    subject; a page of records in id order."""
    settings = open_home(home)
    filters = _log_filters(
        settings, start, end, client, service, x_road_id, user_id, issue, status, subject, subject_hash
    )

    async def action(ctx: NodeContext) -> tuple[SearchPage, dict[str, Any]]:
        page = await messagelog.search(ctx.settings, ctx.store, filters, limit=limit, after_id=after_id)
        asked = await messagelog.filters_audit(ctx.settings, ctx.store, filters)
        return page, {"filters": asked, "records": len(page.records)}

    page = _run(settings, NodeEvent.SEARCH_MESSAGE_LOG, action, login=False)
    if as_json:
        _print_json(search_json(page))
    else:
        print_search_page(page, Console())


@log_app.command("verify")
def log_verify(
    home: DirOption,
    archives: Annotated[
        Path | None, typer.Option("--archives", help="Also verify the mlog-*.zip archives in this directory.")
    ] = None,
    in_flight_seconds: Annotated[
        int,
        typer.Option(
            "--in-flight-seconds",
            min=0,
            help="A request younger than this without a response counts as still running, not broken.",
        ),
    ] = int(IN_FLIGHT.total_seconds()),
    as_json: JsonOption = False,
) -> None:
    """Verify every record in the database (signature, hash chains, time-stamp) against the node's global
    configuration, the archives and that every exchange has its request and response; exit 1 naming the
    first broken record or archive."""

    async def action(ctx: NodeContext) -> tuple[LogVerification, dict[str, Any]]:
        trust = await asyncio.to_thread(load_trust_material, globalconf_dir(ctx.settings.home))
        store = MessageLogStore(ctx.store.engine)
        in_flight = timedelta(seconds=in_flight_seconds)
        return await verify_log(
            store, trust, now=datetime.now(UTC), archives=archives, in_flight=in_flight
        ), {}

    result = _run(home, None, action, login=False)
    err = broken_error(result)
    if err is not None:
        fail(
            err,
            as_json=as_json,
            verdict=verification_json(result),
            show=lambda: print_verification(result, Console()),
        )
    if as_json:
        _print_json(verification_json(result))
    else:
        print_verification(result, Console())


@log_app.command("archive")
def log_archive(home: DirOption, as_json: JsonOption = False) -> None:
    """Archive the time-stamped records now (as the node does every ``archive_interval_seconds``): write
    them into ``mlog-*.zip`` archives in ``archive_path`` and print the archives written. They verify with
    ``xroad-mn archive verify-chain``."""

    async def action(ctx: NodeContext) -> tuple[list[ArchiveFile], dict[str, Any]]:
        store = MessageLogStore(ctx.store.engine)
        try:
            files = await archive_once(store, ctx.settings, now=datetime.now(UTC))
        finally:
            store.close()
        return files, {}

    files = _run(home, None, action, login=False)
    if as_json:
        _print_json({"archives": [f.as_json() for f in files]})
        return
    if not files:
        typer.echo("Nothing to archive")
    for f in files:
        typer.echo(f"Wrote {f.path} ({f.records} records, {f.size} bytes)")


# -- API keys ---------------------------------------------------------------------------------------------


ROLE_OPTION = role_option(SECURITY_SERVER_ROLES)


@apikey_app.command("create")
def apikey_create(
    home: DirOption, role: Annotated[list[Role], ROLE_OPTION], as_json: JsonOption = False
) -> None:
    """Create an admin API key; the key is printed once and only its hash is kept. The message log roles
    (``xroad-mn-messagelog-auditor``, ``xroad-mn-messagelog-body-reader``) read the log and nothing else;
    X-Road's roles do not read the log."""
    settings = open_home(home)
    audit = AuditLog(audit_log_file(settings.home))
    create_key(api_keys_file(settings.home), role, audit, NodeEvent.CREATE_API_KEY, as_json=as_json)


@apikey_app.command("list")
def apikey_list(home: DirOption, as_json: JsonOption = False) -> None:
    """The node's API keys: id, roles and when made (never the keys, which are not kept)."""
    settings = open_home(home)
    path = api_keys_file(settings.home)
    keys = parse_api_keys(_read(path, "API keys")) if path.exists() else ()
    out = [
        {"id": k.key_id, "roles": sorted(r.value for r in k.roles), "created_at": k.created_at.isoformat()}
        for k in keys
    ]
    if as_json:
        _print_json({"keys": out})
        return
    for k in out:
        typer.echo(f"{k['id']}  {', '.join(k['roles'])}  (created {k['created_at']})")


@apikey_app.command("revoke")
def apikey_revoke(
    home: DirOption,
    key_id: Annotated[str, typer.Argument(help="The API key's id (as `apikey create` and `list` show).")],
) -> None:
    """Revoke an admin API key; a running node refuses it from its next request on."""
    settings = open_home(home)
    audit = AuditLog(audit_log_file(settings.home))
    revoke_key(api_keys_file(settings.home), key_id, audit, NodeEvent.REVOKE_API_KEY)
