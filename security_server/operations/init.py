"""``node init``: a new node's home, token, database, verified global configuration and first API key.

Steps, each refusing with an X-Road error; a refusal leaves nothing behind (the home is removed again,
or emptied when it was an empty directory before):

1. the home holds no node yet and the settings are valid (``conflict`` / ``invalid_settings``);
2. the anchor parses (``malformed_anchor``) and is of the owner's instance (``invalid_request``);
3. global configuration is downloaded through the anchor and verified with the configuration client, into
   a temporary directory: an unknown anchor (the configuration is not signed with its keys), an expired
   configuration or an unreachable source is the configuration client's error;
4. the owner is a member of the instance in that configuration (``not_found``);
5. the home is created: ``node.toml``, the anchor, the configuration; the software token is initialised
   with the PIN (a PKCS #11 token, initialised with its own tools, is logged in to check the PIN); the
   database is migrated and records the owner, server code and address;
6. the first admin API key is created with every security server role but observer; its token is in the
   result, shown once.

Example::

    >>> result = await init_node(Path("ss1"), anchor=anchor_xml, owner=parse_member_id("MN:GOV:9010001"),
    ...                          server_code="ss1", address="127.0.0.2", pin=read_pin())  # doctest: +SKIP
    >>> print(result.api_key)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import aiohttp

from security_server.home import (
    FILE_MODE,
    anchor_file,
    api_keys_file,
    create_home,
    globalconf_dir,
    load_node_settings,
    open_home,
    settings_file,
)
from security_server.operations.context import (
    globalconf_ssl_context,
    open_node_store,
    open_node_token,
    utc_now,
)
from security_server.settings import NodeSettings
from xroad_mn.admin import Role, create_api_key
from xroad_mn.confclient.client import ConfigurationClient
from xroad_mn.confclient.store import ConfigurationStore
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import write_atomic
from xroad_mn.globalconf.anchor import ConfigurationAnchor, parse_anchor
from xroad_mn.globalconf.params import parse_shared_params
from xroad_mn.globalconf.trust import SHARED_PARAMS_FILE
from xroad_mn.identifiers import MemberId, SecurityServerId, format_id
from xroad_mn.tokens import SoftwareToken
from xroad_mn.transport.globalconf import AiohttpConfigurationTransport

__all__ = ["FIRST_KEY_ROLES", "InitResult", "init_node", "install_anchor"]

FIRST_KEY_ROLES: Final = frozenset(
    {
        Role.XROAD_SECURITY_OFFICER,
        Role.XROAD_REGISTRATION_OFFICER,
        Role.XROAD_SERVICE_ADMINISTRATOR,
        Role.XROAD_SYSTEM_ADMINISTRATOR,
    }
)
"""The roles of the API key ``node init`` creates: X-Road's first administrator holds them all."""


@dataclass(frozen=True)
class InitResult:
    settings: NodeSettings
    server: SecurityServerId
    instance: str
    globalconf_expires: datetime
    api_key: str
    """The first admin API key: shown once, kept only as a hash."""
    api_key_id: str


def _check_anchor(data: bytes, owner: MemberId) -> ConfigurationAnchor:
    anchor = parse_anchor(data)
    if anchor.instance != owner.instance:
        raise XRoadError(
            FaultCode.INVALID_REQUEST,
            f"the anchor is of instance {anchor.instance}, the owner {format_id(owner)} of {owner.instance}",
            http_status=400,
        )
    return anchor


async def _download(
    anchor: ConfigurationAnchor,
    directory: Path,
    *,
    session: aiohttp.ClientSession,
    ssl_context: ssl.SSLContext | bool,
    allowed_federations: str,
    clock: Callable[[], datetime],
) -> datetime:
    transport = AiohttpConfigurationTransport(session, ssl_context=ssl_context)
    client = ConfigurationClient(
        anchor, directory, transport, allowed_federations=allowed_federations, clock=clock
    )
    result = await client.refresh()
    return result.own.expire_date


def _check_owner(directory: Path, instance: str, owner: MemberId) -> None:
    data = ConfigurationStore(directory).read_file(instance, SHARED_PARAMS_FILE)
    members = parse_shared_params(data).members if data is not None else ()
    if not any(m.id(instance) == owner for m in members):
        raise XRoadError(
            FaultCode.NOT_FOUND,
            f"{format_id(owner)} is not a member of {instance} in its global configuration: the registry "
            "must add it first",
            details={"owner": format_id(owner)},
            http_status=404,
        )


def install_anchor(home: Path, data: bytes) -> None:
    """Keep the anchor in the home (mode 0600): the configuration client of the running node reads it."""
    write_atomic(anchor_file(home), data, mode=FILE_MODE)


def _check_home(home: Path) -> bool:
    """Whether ``home`` exists (then as an empty directory); ``conflict`` when it holds anything."""
    if settings_file(home).exists():
        raise XRoadError(FaultCode.CONFLICT, f"{home} already holds a node", http_status=409)
    if not home.exists():
        return False
    if not home.is_dir() or any(home.iterdir()):
        raise XRoadError(FaultCode.CONFLICT, f"{home} exists and is not an empty directory", http_status=409)
    return True


def _remove(home: Path, existed: bool) -> None:
    if not existed:
        shutil.rmtree(home, ignore_errors=True)
        return
    for child in home.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


async def init_node(
    home: Path,
    *,
    anchor: bytes,
    owner: MemberId,
    server_code: str,
    address: str,
    pin: str,
    settings: Mapping[str, object] | None = None,
    session: aiohttp.ClientSession | None = None,
    ssl_context: ssl.SSLContext | bool | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> InitResult:
    """Initialise a node in ``home`` (steps 1-6 of the module docstring). ``settings`` are further keys of
    ``node.toml`` (ports, database, token, ``globalconf_ca_file``); ``ssl_context`` verifies ``https``
    configuration sources (default: :func:`globalconf_ssl_context` of the settings)."""
    # 1. No node there yet; valid settings.
    values = {**(settings or {}), "address": address}
    checked = load_node_settings(home, env={}, overrides=values, read_file=False)
    if ssl_context is None:
        ssl_context = globalconf_ssl_context(checked)
    existed = await asyncio.to_thread(_check_home, home)
    # 2. The anchor.
    parsed = _check_anchor(anchor, owner)
    with tempfile.TemporaryDirectory(prefix="xroad-mn-init-") as tmp:
        downloaded = Path(tmp) / "globalconf"
        # 3. Global configuration through the anchor, verified.
        if session is None:
            async with aiohttp.ClientSession() as own_session:
                expires = await _download(
                    parsed,
                    downloaded,
                    session=own_session,
                    ssl_context=ssl_context,
                    allowed_federations=checked.allowed_federations,
                    clock=clock,
                )
        else:
            expires = await _download(
                parsed,
                downloaded,
                session=session,
                ssl_context=ssl_context,
                allowed_federations=checked.allowed_federations,
                clock=clock,
            )
        # 4. The owner is a member.
        await asyncio.to_thread(_check_owner, downloaded, parsed.instance, owner)
        # 5-6. The home, token, database and first API key.
        try:
            return await _create(
                home, values, downloaded, anchor, owner, server_code, address, pin, parsed, expires, clock
            )
        except BaseException:
            await asyncio.to_thread(_remove, home, existed)
            raise


def _write_home(home: Path, values: Mapping[str, object], downloaded: Path, anchor: bytes) -> NodeSettings:
    create_home(home, values)
    node = open_home(home, env={})
    conf = globalconf_dir(home)
    shutil.copytree(downloaded, conf, dirs_exist_ok=True)
    os.chmod(conf, 0o700)
    install_anchor(home, anchor)
    return node


async def _create(
    home: Path,
    values: Mapping[str, object],
    downloaded: Path,
    anchor: bytes,
    owner: MemberId,
    server_code: str,
    address: str,
    pin: str,
    parsed: ConfigurationAnchor,
    expires: datetime,
    clock: Callable[[], datetime],
) -> InitResult:
    node = await asyncio.to_thread(_write_home, home, values, downloaded, anchor)
    token = open_node_token(node)
    if isinstance(token, SoftwareToken):
        await asyncio.to_thread(token.initialize, pin)
    await asyncio.to_thread(token.login, pin)  # a wrong HSM PIN stops here
    await asyncio.to_thread(token.logout)
    async with open_node_store(node) as store:
        identity = await store.init_server(owner, server_code, address=address)
    created = await asyncio.to_thread(create_api_key, api_keys_file(home), FIRST_KEY_ROLES, clock())
    return InitResult(node, identity.server, parsed.instance, expires, created.token, created.key.key_id)
