"""A node made with ``init_node`` against the real registry and dev trust services, and its admin API.

Used by the admin API and app tests: :func:`init_test_node` initialises a home from the registry's anchor
(global configuration downloaded over the registry's TLS socket, pinned), :class:`Admin` calls the served
API with one API key per security server role and records which documented operations were called.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from sqlalchemy import text

from registry.context import STORE_KEY
from registry.db import KeyKind
from registry.operations import configuration_anchor
from security_server.home import api_keys_file
from security_server.operations import InitResult, init_node
from tests.registry.test_e2e import pinned_context
from tests.security_server.test_registration import NODE_OWNER, World
from xroad_mn.admin import Role, create_api_key
from xroad_mn.database import create_engine
from xroad_mn.identifiers import MemberId

PIN = "node-api-pin"
ROLE_KEYS = {
    "security": Role.XROAD_SECURITY_OFFICER,
    "registration": Role.XROAD_REGISTRATION_OFFICER,
    "services": Role.XROAD_SERVICE_ADMINISTRATOR,
    "system": Role.XROAD_SYSTEM_ADMINISTRATOR,
    "observer": Role.XROAD_SECURITYSERVER_OBSERVER,
    "auditor": Role.MESSAGELOG_AUDITOR,
    "body_reader": Role.MESSAGELOG_BODY_READER,
}


async def anchor_xml(world: World) -> bytes:
    exported = await configuration_anchor(
        world.registry.app[STORE_KEY], world.registry.settings, KeyKind.INTERNAL, now=datetime.now(UTC)
    )
    return exported.xml


@asynccontextmanager
async def database_settings(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[dict[str, object]]:
    """Node settings for the backend: SQLite in the home, or a PostgreSQL schema of its own, dropped after."""
    if backend == "sqlite":
        yield {}
        return
    url: str = request.getfixturevalue("postgres_url")
    schema = f"node_api_{uuid.uuid4().hex[:12]}"
    try:
        yield {"database_url": url, "database_schema": schema}
    finally:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()


async def init_test_node(
    world: World,
    home: Path,
    address: str,
    *,
    settings: dict[str, object] | None = None,
    anchor: bytes | None = None,
    owner: MemberId = NODE_OWNER,
    server_code: str = "ss1",
    **kwargs: Any,
) -> InitResult:
    return await init_node(
        home,
        anchor=anchor if anchor is not None else await anchor_xml(world),
        owner=owner,
        server_code=server_code,
        address=address,
        pin=PIN,
        settings=settings,
        session=world.session,
        ssl_context=pinned_context(world.tls_cert),
        **kwargs,
    )


@dataclass
class Admin:
    """The served admin API, one key per role; every call is recorded as ``(METHOD, path template)``."""

    session: aiohttp.ClientSession
    base: str
    tokens: dict[str, str]
    called: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def with_role_keys(cls, session: aiohttp.ClientSession, base: str, home: Path, first_key: str) -> Admin:
        tokens = {"admin": first_key}
        for name, role in ROLE_KEYS.items():
            tokens[name] = create_api_key(api_keys_file(home), {role}, datetime.now(UTC)).token
        return cls(session, base, tokens)

    async def call(
        self,
        method: str,
        template: str,
        *,
        key: str = "admin",
        params: dict[str, str] | None = None,
        body: Any = None,
        query: dict[str, str] | None = None,
        expect: int,
    ) -> Any:
        path = template.format(**{k: quote(v, safe="") for k, v in (params or {}).items()})
        headers = {"Authorization": f"X-Road-ApiKey token={self.tokens[key]}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        async with self.session.request(
            method, self.base + "/api/v1" + path, data=data, headers=headers, params=query
        ) as resp:
            raw = await resp.read()
            assert resp.status == expect, (method, path, resp.status, raw[:500])
            is_json = "json" in resp.headers.get("Content-Type", "")
        if expect < 400:
            self.called.add((method, "/api/v1" + template))
        if not raw:
            return None
        return json.loads(raw) if is_json else raw
