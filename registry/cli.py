"""``xroad-mn registry``: create, run and administer a central registry from the command line.

    $ xroad-mn registry init --dir ./registry --instance MN
    $ xroad-mn registry member add --dir ./registry --class GOV --code 5012345 --name "Ministry"
    $ xroad-mn registry ca add --dir ./registry root.pem --ocsp-url http://ca.example.mn/ocsp \\
          --profile ee.ria.xroad.common.certificateprofile.impl.EjbcaCertificateProfileInfoProvider
    $ xroad-mn registry anchor export --dir ./registry --out configuration-anchor.xml
    $ xroad-mn registry globalconf generate --dir ./registry --out public/
    $ xroad-mn registry serve --dir ./registry
    $ xroad-mn registry serve --dir ./registry --public-port 9080    # prints its anchor sources, then:
    $ xroad-mn registry anchor export --dir ./registry --address 127.0.0.1:9080 --out anchor.xml

Every command takes ``--dir`` (the registry's home: ``registry.toml``, the token, the database, the audit log
and the API keys) and works on the database directly through :class:`~registry.db.RegistryStore`, so no server
needs to run. The commands hold no logic: they call what the admin API calls
(:mod:`registry.operations`, the store, :mod:`registry.requests`) and write the same audit records, with
the operating-system user as ``user``. ``--json`` prints the admin API's JSON shapes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from cryptography import x509
from pydantic import BaseModel, TypeAdapter
from rich.console import Console
from rich.table import Table

from registry import requests as workflow
from registry.api import (
    ca_out,
    key_out,
    member_out,
    request_out,
    server_view,
    tsa_out,
)
from registry.app import run_registry
from registry.audit import AuditEvent
from registry.db import KeyKind, ManagementRequestRecord, RegistryStore, RequestState
from registry.home import ADMIN_ROLES, REGISTRY_ROLES, create_home, load_registry_settings
from registry.operations import (
    add_member,
    build_configuration,
    common_name,
    configuration_anchor,
    init_registry,
    open_store,
    parse_certificate,
)
from registry.settings import RegistrySettings
from registry.signing import TokenLogin, create_token, read_new_pin, registry_token
from registry.validation import KNOWN_CERTIFICATE_PROFILES
from xroad_mn.admin import AuditLog, Role, create_api_key
from xroad_mn.cli.apikeys import create_key, revoke_key, role_option
from xroad_mn.cli.main import (
    DatabaseSchemaOption,
    DatabaseUrlOption,
    JsonFlag,
    cli_user,
    dump_json,
    until_interrupted,
)
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.params import ApprovedCAEntry, ApprovedTSAEntry, CaInfo, OcspInfo
from xroad_mn.identifiers import (
    MEMBER_FORMS,
    GlobalGroupId,
    MemberId,
    SubsystemId,
    format_colon_id,
    parse_client_for_people,
    parse_member_for_people,
)
from xroad_mn.tokens import read_pin

__all__ = ["app", "serve_banner"]

_T = TypeVar("_T")

app = typer.Typer(
    name="registry",
    help="The central registry: members, security servers, trust services and global configuration.",
    no_args_is_help=True,
    add_completion=False,
)
member_app = typer.Typer(help="Members.", no_args_is_help=True)
subsystem_app = typer.Typer(help="Subsystems.", no_args_is_help=True)
server_app = typer.Typer(help="Security servers.", no_args_is_help=True)
group_app = typer.Typer(help="Global groups.", no_args_is_help=True)
ca_app = typer.Typer(help="Approved certification authorities.", no_args_is_help=True)
tsa_app = typer.Typer(help="Approved time-stamping authorities.", no_args_is_help=True)
requests_app = typer.Typer(help="Management requests.", no_args_is_help=True)
apikey_app = typer.Typer(help="Admin API keys.", no_args_is_help=True)
anchor_app = typer.Typer(help="Configuration anchors.", no_args_is_help=True)
globalconf_app = typer.Typer(help="Global configuration.", no_args_is_help=True)
for _sub, _name in (
    (member_app, "member"),
    (subsystem_app, "subsystem"),
    (server_app, "server"),
    (group_app, "group"),
    (ca_app, "ca"),
    (tsa_app, "tsa"),
    (requests_app, "requests"),
    (apikey_app, "apikey"),
    (anchor_app, "anchor"),
    (globalconf_app, "globalconf"),
):
    app.add_typer(_sub, name=_name)

DirOption = Annotated[Path, typer.Option("--dir", help="The registry's home directory.")]
JsonOption = JsonFlag
"""``--json``: the admin API's JSON shapes; errors as the root command's one JSON error object."""


def _now() -> datetime:
    return datetime.now(UTC)


def _settings(home: Path) -> RegistrySettings:
    return load_registry_settings(home)


def _run(
    home: Path,
    event: AuditEvent | None,
    action: Callable[[RegistryStore, RegistrySettings], Awaitable[tuple[_T, dict[str, Any]]]],
    *,
    login: TokenLogin | None = None,
) -> _T:
    """Run ``action`` on the home's store; audit it as ``event`` (or ``<event> failed``) when it changes.

    The token (``login``, else the home's token) is logged in only when used: by the action, or by the
    migration that moves signing keys kept in clear into it. It is logged out afterwards."""
    settings = _settings(home)
    audit = AuditLog(settings.audit_log_path())
    token = login if login is not None else TokenLogin(registry_token(settings))

    async def main() -> _T:
        async with open_store(settings, token=token.for_migration) as store:
            try:
                result, data = await action(store, settings)
            except XRoadError as e:
                if event is not None:
                    await audit.record_failure(event, cli_user(), {}, e)
                raise
            if event is not None:
                await audit.record(event, cli_user(), data)
            return result

    try:
        return asyncio.run(main())
    finally:
        token.logout()


def _print_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        typer.echo(value.model_dump_json(indent=2))
    else:
        typer.echo(TypeAdapter(type(value)).dump_json(value, indent=2).decode())


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console().print(table)


def _read_cert(path: Path, what: str) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot read {what} {path}: {e.strerror}") from e
    return parse_certificate(data, f"{what} {path}")


# -- init and serve ---------------------------------------------------------------------------------------


@app.command()
def init(
    home: DirOption,
    instance: Annotated[str, typer.Option("--instance", help="X-Road instance identifier.")],
    owner_class: Annotated[str, typer.Option("--owner-class", help="Member class of the operator.")] = "GOV",
    owner_code: Annotated[
        str, typer.Option("--owner-code", help="Member code of the operator.")
    ] = "REGISTRY",
    owner_name: Annotated[
        str, typer.Option("--owner-name", help="Name of the operator.")
    ] = "Central registry",
    public_address: Annotated[
        list[str] | None,
        typer.Option("--public-address", help="Address in anchors (repeatable) [public host:port]."),
    ] = None,
    admin_port: Annotated[int | None, typer.Option("--admin-port", help="Admin API port [4000].")] = None,
    public_port: Annotated[int | None, typer.Option("--public-port", help="Public port [8080].")] = None,
    database_url: DatabaseUrlOption = None,
    database_schema: DatabaseSchemaOption = None,
    public_tls_cert: Annotated[
        Path | None,
        typer.Option("--public-tls-cert", help="PEM certificate: the public port speaks TLS (with the key)."),
    ] = None,
    public_tls_key: Annotated[
        Path | None, typer.Option("--public-tls-key", help="PEM private key of --public-tls-cert.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a registry: its home, token, database, member classes, operator and first signing keys (made
    in the token); prints the first admin API key (once). The token's PIN is ``XROAD_MN_TOKEN_PIN``, else
    asked twice on the terminal."""
    file_settings: dict[str, object] = {
        "public_addresses": public_address or None,
        "admin_port": admin_port,
        "public_port": public_port,
        "database_url": database_url,
        "database_schema": database_schema,
        "public_tls_cert": public_tls_cert.resolve() if public_tls_cert is not None else None,
        "public_tls_key": public_tls_key.resolve() if public_tls_key is not None else None,
    }
    pin = read_new_pin()  # before anything is created: a mistyped repetition leaves nothing behind
    create_home(home, {k: v for k, v in file_settings.items() if v is not None})
    owner = MemberId(instance, owner_class, owner_code)
    token = registry_token(_settings(home))
    create_token(token, pin)

    async def action(store: RegistryStore, settings: RegistrySettings) -> tuple[Any, dict[str, Any]]:
        result = await init_registry(
            store, settings, token, instance=instance, owner=owner, owner_name=owner_name, now=_now()
        )
        data = {"instance": instance, "owner": format_colon_id(owner)}
        return result, data

    result = _run(home, AuditEvent.INITIALIZE_REGISTRY, action, login=TokenLogin(token, pin=pin))
    settings = _settings(home)
    created = create_api_key(settings.api_keys_path(), ADMIN_ROLES, _now())
    if as_json:
        typer.echo(
            dump_json(
                {
                    "directory": str(home),
                    "instance": instance,
                    "owner": format_colon_id(owner),
                    "signing_keys": [json.loads(key_out(k).model_dump_json()) for k in result.signing_keys],
                    "api_key": created.token,
                    "api_key_id": created.key.key_id,
                    "roles": sorted(r.value for r in created.key.roles),
                },
                indent=2,
            )
        )
        return
    typer.echo(f"Created registry {instance} in {home}")
    for key in result.signing_keys:
        typer.echo(f"  {key.kind.value} signing key {key.key_id}")
    typer.echo(f"Admin API key ({', '.join(sorted(r.value for r in created.key.roles))}); shown only once:")
    typer.echo(f"  {created.token}")


def serve_banner(running: RegistrySettings, configured: RegistrySettings, home: Path) -> list[str]:
    """What ``serve`` prints about its addresses: the anchor sources it announces and, when they differ
    from what ``anchor export`` writes by default (a port override on the command line), the command
    that exports a matching anchor."""
    sources = running.source_addresses()
    lines = [f"Anchor sources {' '.join(running.anchor_addresses())}"]
    if sources != configured.source_addresses():
        options = " ".join(f"--address {a}" for a in running.anchor_addresses())
        lines.append(
            f"  (not the configured {' '.join(configured.anchor_addresses())}: export a matching anchor with "
            f"`xroad-mn registry anchor export --dir {home} {options} --out ANCHOR.xml`)"
        )
    return lines


async def _serve(settings: RegistrySettings, configured: RegistrySettings, pin: str) -> None:
    async with run_registry(settings, pin=pin) as registry:
        typer.echo(
            f"Admin API   {registry.admin_url}/api/v1  (OpenAPI: {registry.admin_url}/api/v1/openapi.json)"
        )
        typer.echo(f"Global conf {registry.public_url}/internalconf  {registry.public_url}/externalconf")
        typer.echo(f"Management  {registry.settings.management_service_address()}  (authCertReg, public)")
        typer.echo(f"            {registry.admin_url}/managementservice/manage/  (all types, internal)")
        for line in serve_banner(registry.settings, configured, settings.home):
            typer.echo(line)
        await until_interrupted("Press Ctrl-C to stop.")


@app.command()
def serve(
    home: DirOption,
    admin_port: Annotated[int | None, typer.Option("--admin-port", help="Override the admin port.")] = None,
    public_port: Annotated[
        int | None, typer.Option("--public-port", help="Override the public port.")
    ] = None,
) -> None:
    """Serve the admin API, global configuration and the management service until interrupted.

    The anchor sources it prints are what configuration clients must find in their anchor: with a
    ``--public-port`` override (and no ``public_addresses`` in the settings) they differ from what
    ``anchor export`` writes by default, so export with ``--address`` as printed. The token's PIN is
    ``XROAD_MN_TOKEN_PIN``, else asked on the terminal; a wrong one stops the start
    (``signer.pin_incorrect``)."""
    configured = load_registry_settings(home)
    settings = load_registry_settings(home, overrides={"admin_port": admin_port, "public_port": public_port})
    asyncio.run(_serve(settings, configured, read_pin()))


# -- members, subsystems, servers, groups -----------------------------------------------------------------


@member_app.command("add")
def member_add(
    home: DirOption,
    member_class: Annotated[str, typer.Option("--class", help="Member class (GOV, COM, ...).")],
    code: Annotated[str, typer.Option("--code", help="Member code.")],
    name: Annotated[str, typer.Option("--name", help="Member name.")],
    as_json: JsonOption = False,
) -> None:
    """Add a member."""

    async def action(store: RegistryStore, _: RegistrySettings) -> tuple[Any, dict[str, Any]]:
        instance = (await store.get_settings()).instance
        mid = MemberId(instance, member_class, code)
        member = await add_member(store, mid, name)
        return member_out(instance, member), {"member_id": format_colon_id(mid), "name": name}

    out = _run(home, AuditEvent.ADD_MEMBER, action)
    if as_json:
        _print_json(out)
    else:
        typer.echo(f"Added member {out.member_id} ({out.name})")


@member_app.command("list")
def member_list(home: DirOption, as_json: JsonOption = False) -> None:
    """List members and their subsystems."""

    async def action(store: RegistryStore, _: RegistrySettings) -> tuple[Any, dict[str, Any]]:
        instance = (await store.get_settings()).instance
        return [member_out(instance, m) for m in await store.list_members()], {}

    members = _run(home, None, action)
    if as_json:
        typer.echo(dump_json([json.loads(m.model_dump_json()) for m in members], indent=2))
        return
    _table(
        "Members",
        ["Member", "Name", "Subsystems"],
        [(m.member_id, m.name, ", ".join(s.subsystem_code for s in m.subsystems)) for m in members],
    )


@subsystem_app.command("add")
def subsystem_add(
    home: DirOption,
    member: Annotated[str, typer.Option("--member", help=f"Member: {MEMBER_FORMS}.")],
    code: Annotated[str, typer.Option("--code", help="Subsystem code.")],
    name: Annotated[str | None, typer.Option("--name", help="Subsystem name.")] = None,
) -> None:
    """Add a subsystem to a member."""
    sid: SubsystemId = parse_member_for_people(member).subsystem(code)

    async def action(store: RegistryStore, _: RegistrySettings) -> tuple[None, dict[str, Any]]:
        await store.add_subsystem(sid, name)
        return None, {"subsystem_id": format_colon_id(sid), "name": name}

    _run(home, AuditEvent.ADD_SUBSYSTEM, action)
    typer.echo(f"Added subsystem {format_colon_id(sid)}")


@server_app.command("list")
def server_list(home: DirOption, as_json: JsonOption = False) -> None:
    """List security servers with their addresses, authentication certificates and clients."""

    async def action(store: RegistryStore, _: RegistrySettings) -> tuple[Any, dict[str, Any]]:
        return [await server_view(store, s) for s in await store.list_security_servers()], {}

    servers = _run(home, None, action)
    if as_json:
        typer.echo(dump_json([json.loads(s.model_dump_json()) for s in servers], indent=2))
        return
    _table(
        "Security servers",
        ["Server", "Address", "Auth certs", "Clients"],
        [(s.security_server_id, s.address, len(s.auth_cert_hashes), ", ".join(s.clients)) for s in servers],
    )


@group_app.command("add")
def group_add(
    home: DirOption,
    code: Annotated[str, typer.Option("--code", help="Group code.")],
    description: Annotated[str, typer.Option("--description", help="Group description.")],
) -> None:
    """Add a global group."""

    async def action(store: RegistryStore, _: RegistrySettings) -> tuple[None, dict[str, Any]]:
        instance = (await store.get_settings()).instance
        await store.add_global_group(GlobalGroupId(instance, code), description)
        return None, {"code": code, "description": description}

    _run(home, AuditEvent.ADD_GLOBAL_GROUP, action)
    typer.echo(f"Added global group {code}")


@group_app.command("add-member")
def group_add_member(
    home: DirOption,
    code: Annotated[str, typer.Option("--code", help="Group code.")],
    client: Annotated[str, typer.Option("--client", help=f"Member ({MEMBER_FORMS}) or subsystem.")],
) -> None:
    """Add a member or subsystem to a global group."""
    cid = parse_client_for_people(client)

    async def action(store: RegistryStore, _: RegistrySettings) -> tuple[None, dict[str, Any]]:
        instance = (await store.get_settings()).instance
        await store.add_group_member(GlobalGroupId(instance, code), cid)
        return None, {"group": code, "client_id": format_colon_id(cid)}

    _run(home, AuditEvent.ADD_MEMBERS_TO_GLOBAL_GROUP, action)
    typer.echo(f"Added {format_colon_id(cid)} to {code}")


# -- trust services ---------------------------------------------------------------------------------------


@ca_app.command("add")
def ca_add(
    home: DirOption,
    certificate: Annotated[Path, typer.Argument(help="The top CA certificate (PEM or DER file).")],
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help="Certificate profile info class name, one of: " + ", ".join(KNOWN_CERTIFICATE_PROFILES),
        ),
    ],
    ocsp_url: Annotated[list[str] | None, typer.Option("--ocsp-url", help="OCSP responder URL.")] = None,
    ocsp_cert: Annotated[
        list[Path] | None, typer.Option("--ocsp-cert", help="OCSP responder certificate, per --ocsp-url.")
    ] = None,
    auth_only: Annotated[bool, typer.Option("--auth-only", help="Issues authentication certs only.")] = False,
    intermediate: Annotated[
        list[Path] | None, typer.Option("--intermediate", help="Intermediate CA certificate (repeatable).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Default: the certificate's CN.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Add an approved certification authority."""
    urls, certs = ocsp_url or [], ocsp_cert or []
    if len(certs) > len(urls):
        raise typer.BadParameter("each --ocsp-cert needs an --ocsp-url", param_hint="--ocsp-cert")
    top = _read_cert(certificate, "CA certificate")
    ocsp = tuple(
        OcspInfo(u, _read_cert(certs[i], "OCSP certificate") if i < len(certs) else None)
        for i, u in enumerate(urls)
    )
    entry = ApprovedCAEntry(
        name=name or common_name(top),
        top_ca=CaInfo(top, ocsp),
        certificate_profile_info=profile,
        intermediate_cas=tuple(
            CaInfo(_read_cert(p, "intermediate CA certificate")) for p in intermediate or []
        ),
        authentication_only=auth_only,
    )

    async def action(store: RegistryStore, _: RegistrySettings) -> tuple[Any, dict[str, Any]]:
        out = ca_out(await store.add_ca(entry))
        return out, {"name": out.name, "certificate_sha256": out.top_ca.certificate.sha256}

    out = _run(home, AuditEvent.ADD_CERTIFICATION_SERVICE, action)
    if as_json:
        _print_json(out)
    else:
        typer.echo(f"Added approved CA {out.name}")


@tsa_app.command("add")
def tsa_add(
    home: DirOption,
    certificate: Annotated[Path, typer.Argument(help="The TSA certificate (PEM or DER file).")],
    url: Annotated[str, typer.Option("--url", help="The TSA's URL.")],
    name: Annotated[str | None, typer.Option("--name", help="Default: the certificate's CN.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Add an approved time-stamping authority."""
    cert = _read_cert(certificate, "TSA certificate")
    entry = ApprovedTSAEntry(name or common_name(cert), url, cert)

    async def action(store: RegistryStore, _: RegistrySettings) -> tuple[Any, dict[str, Any]]:
        out = tsa_out(await store.add_tsa(entry))
        return out, {"name": out.name, "url": out.url, "certificate_sha256": out.certificate.sha256}

    out = _run(home, AuditEvent.ADD_TIMESTAMPING_SERVICE, action)
    if as_json:
        _print_json(out)
    else:
        typer.echo(f"Added approved TSA {out.name}")


# -- management requests ----------------------------------------------------------------------------------


@requests_app.command("list")
def requests_list(
    home: DirOption,
    state: Annotated[
        str | None, typer.Option("--state", help="submitted, approved, rejected, revoked")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List management requests."""
    try:
        wanted = RequestState(state) if state is not None else None
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--state") from e

    async def action(store: RegistryStore, _: RegistrySettings) -> tuple[Any, dict[str, Any]]:
        return [request_out(r) for r in await store.list_requests(state=wanted)], {}

    found = _run(home, None, action)
    if as_json:
        typer.echo(dump_json([json.loads(r.model_dump_json()) for r in found], indent=2))
        return
    _table(
        "Management requests",
        ["Id", "Type", "State", "Server", "Client", "Updated"],
        [(r.id, r.type.value, r.state.value, r.security_server_id, r.client_id, r.updated_at) for r in found],
    )


_DECISIONS: dict[str, tuple[Callable[..., Awaitable[ManagementRequestRecord]], AuditEvent]] = {
    "approve": (workflow.approve_request, AuditEvent.APPROVE_MANAGEMENT_REQUEST),
    "reject": (workflow.reject_request, AuditEvent.REJECT_MANAGEMENT_REQUEST),
    "revoke": (workflow.revoke_request, AuditEvent.REVOKE_MANAGEMENT_REQUEST),
}


def _decide(home: Path, request_id: int, comment: str | None, *, decision: str, as_json: bool) -> None:
    decide, event = _DECISIONS[decision]

    async def action(store: RegistryStore, _: RegistrySettings) -> tuple[Any, dict[str, Any]]:
        done = await decide(store, request_id, user=cli_user(), comment=comment)
        return request_out(done), {"request_id": request_id, "type": done.type.value, "comment": comment}

    out = _run(home, event, action)
    if as_json:
        _print_json(out)
    else:
        typer.echo(f"Request {out.id} ({out.type.value}) is {out.state.value}")


@requests_app.command("approve")
def requests_approve(
    home: DirOption,
    request_id: Annotated[int, typer.Argument(help="The request id.")],
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a submitted management request (its change is applied)."""
    _decide(home, request_id, comment, decision="approve", as_json=as_json)


@requests_app.command("reject")
def requests_reject(
    home: DirOption,
    request_id: Annotated[int, typer.Argument(help="The request id.")],
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    as_json: JsonOption = False,
) -> None:
    """Reject a submitted management request."""
    _decide(home, request_id, comment, decision="reject", as_json=as_json)


@requests_app.command("revoke")
def requests_revoke(
    home: DirOption,
    request_id: Annotated[int, typer.Argument(help="The request id.")],
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a submitted management request (withdrawn by its sender; nothing is applied)."""
    _decide(home, request_id, comment, decision="revoke", as_json=as_json)


# -- API keys, anchors, global configuration --------------------------------------------------------------


ROLE_OPTION = role_option(REGISTRY_ROLES)


@apikey_app.command("create")
def apikey_create(
    home: DirOption, role: Annotated[list[Role], ROLE_OPTION], as_json: JsonOption = False
) -> None:
    """Create an admin API key; the key is printed once and only its hash is kept."""
    settings = _settings(home)
    audit = AuditLog(settings.audit_log_path())
    create_key(settings.api_keys_path(), role, audit, AuditEvent.CREATE_API_KEY, as_json=as_json)


@apikey_app.command("revoke")
def apikey_revoke(
    home: DirOption,
    key_id: Annotated[
        str, typer.Argument(help="The API key's id (as `apikey create` and the audit log show).")
    ],
) -> None:
    """Revoke an admin API key; a running registry refuses it from its next request on."""
    settings = _settings(home)
    revoke_key(
        settings.api_keys_path(), key_id, AuditLog(settings.audit_log_path()), AuditEvent.REVOKE_API_KEY
    )


@anchor_app.command("export")
def anchor_export(
    home: DirOption,
    out: Annotated[Path, typer.Option("--out", help="Where to write the anchor XML.")],
    external: Annotated[bool, typer.Option("--external", help="The external anchor (federation).")] = False,
    address: Annotated[
        list[str] | None,
        typer.Option(
            "--address",
            help="Source address to name instead of the configured ones (repeatable): HOST:PORT, or "
            "https://HOST:PORT; use what `serve` prints as its anchor address when its ports are overridden.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write the configuration anchor and print its SHA-224 hash as X-Road shows it."""
    kind = KeyKind.EXTERNAL if external else KeyKind.INTERNAL

    async def action(store: RegistryStore, settings: RegistrySettings) -> tuple[Any, dict[str, Any]]:
        if address:
            settings = settings.model_copy(update={"public_addresses": tuple(address)})
        return await configuration_anchor(store, settings, kind, now=_now()), {}

    anchor = _run(home, None, action)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(anchor.xml)
    except OSError as e:
        raise XRoadError(FaultCode.IO_ERROR, f"cannot write {out}: {e.strerror}") from e
    if as_json:
        typer.echo(
            dump_json(
                {"file": str(out), "kind": kind.value, "hash": anchor.hash, "hash_hex": anchor.hash_hex}
            )
        )
    else:
        typer.echo(f"Wrote the {kind.value} configuration anchor to {out}")
        typer.echo(f"Hash (SHA-224): {anchor.hash}")


@globalconf_app.command("generate")
def globalconf_generate(
    home: DirOption,
    out: Annotated[Path, typer.Option("--out", help="Directory to write (as the registry serves it).")],
    as_json: JsonOption = False,
) -> None:
    """Generate and sign global configuration into OUT (OUT/internalconf, OUT/externalconf, OUT/V6/...),
    through the token (its PIN: ``XROAD_MN_TOKEN_PIN`` or a prompt)."""

    login = TokenLogin(registry_token(_settings(home)))

    async def action(store: RegistryStore, settings: RegistrySettings) -> tuple[Any, dict[str, Any]]:
        conf = await build_configuration(store, settings, await asyncio.to_thread(login), now=_now())
        await asyncio.to_thread(conf.write_to, out)
        return conf, {}

    conf = _run(home, None, action, login=login)
    summary = {
        "out": str(out),
        "instance": conf.instance,
        "generated_at": conf.generated_at.isoformat(),
        "expire_date": conf.expire_date.isoformat(),
        "versions": sorted(conf.versions),
    }
    if as_json:
        typer.echo(dump_json(summary))
    else:
        typer.echo(f"Wrote global configuration of {conf.instance} (versions {summary['versions']}) to {out}")
        typer.echo(f"Expires {summary['expire_date']}")
