"""The admin API key commands every application with an admin API has (``xroad-mn node apikey ...``,
``xroad-mn registry apikey ...``): the role option, creating a key (printed once, only its hash kept) and
revoking one, each written to the application's audit log.

An application declares its commands with its own home option, roles and audit events and calls these::

    ROLE_OPTION = role_option(SECURITY_SERVER_ROLES)

    @apikey_app.command("create")
    def apikey_create(
        home: DirOption, role: Annotated[list[Role], ROLE_OPTION], as_json: JsonFlag = False
    ) -> None:
        settings = open_home(home)
        audit = AuditLog(audit_log_file(settings.home))
        create_key(api_keys_file(settings.home), role, audit, NodeEvent.CREATE_API_KEY, as_json=as_json)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Set
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from xroad_mn.admin import AuditLog, Role, create_api_key, revoke_api_key
from xroad_mn.cli.main import cli_user, dump_json
from xroad_mn.errors import XRoadError

__all__ = ["create_key", "revoke_key", "role_option"]


def role_option(allowed: Set[str]) -> Any:
    """The repeatable ``--role`` option of ``apikey create``, taking only the ``allowed`` roles (for a
    parameter ``Annotated[list[Role], role_option(...)]``)."""
    names = ", ".join(sorted(allowed))

    def parse(text: str) -> Role:
        if text not in allowed:
            raise typer.BadParameter(f"{text!r} is none of {names}")
        return Role(text)

    return typer.Option(
        "--role", parser=parse, metavar="ROLE", help=f"Role of the key (repeatable): {names}."
    )


def _role_names(roles: Iterable[Role]) -> list[str]:
    return sorted(r.value for r in roles)


def create_key(keys_file: Path, roles: list[Role], audit: AuditLog, event: StrEnum, *, as_json: bool) -> None:
    """Create a key with ``roles`` in ``keys_file``, audit it as ``event`` and print it (the only time)."""
    created = create_api_key(keys_file, roles, datetime.now(UTC))
    names = _role_names(created.key.roles)
    audit.append_sync(event, cli_user(), {"key_id": created.key.key_id, "roles": names})
    if as_json:
        typer.echo(dump_json({"api_key": created.token, "api_key_id": created.key.key_id, "roles": names}))
        return
    typer.echo(f"API key {created.key.key_id} ({', '.join(names)}); shown only once:")
    typer.echo(f"  {created.token}")


def revoke_key(keys_file: Path, key_id: str, audit: AuditLog, event: StrEnum) -> None:
    """Revoke key ``key_id`` in ``keys_file``; audit it (or the failure) as ``event``."""
    try:
        revoked = revoke_api_key(keys_file, key_id)
    except XRoadError as e:
        asyncio.run(audit.record_failure(event, cli_user(), {"key_id": key_id}, e))
        raise
    names = _role_names(revoked.roles)
    audit.append_sync(event, cli_user(), {"key_id": key_id, "roles": names})
    typer.echo(f"Revoked API key {key_id} ({', '.join(names)})")
