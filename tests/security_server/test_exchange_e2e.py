"""Messages between agencies, end to end: an IS calls a service of another agency through two nodes.

The federation of :mod:`tests.security_server.exchange_world` (trust services, the registry, two nodes
enrolled through ``xroad-mn``, a provider IS) is built once for the module. Every exchange goes through the
consumer node's client proxy (127.0.0.2:8080), mutual TLS to the provider node's server proxy
(127.0.0.3:5500), the provider IS and back; both nodes sign, verify and log it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.security_server.exchange_world import Federation, running_federation
from trust_services.app import RunningTrustService, TrustSettings, run_trust_service
from trust_services.store import init_trust_dir

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Federation]:
    import asyncio
    from datetime import UTC, datetime

    root: Path = tmp_path_factory.mktemp("exchange")
    directory = root / "trust"
    await asyncio.to_thread(init_trust_dir, directory, instance="MN", now=datetime.now(UTC))
    async with (
        run_trust_service(TrustSettings(dir=directory, host="127.0.0.1", port=0)) as trust,
        running_federation(root, trust) as fed,
    ):
        await fed.grant("citizens")
        yield fed


async def test_rest_get_through_two_nodes(federation: Federation) -> None:
    fed = federation
    url = fed.rest_url("citizens", "/people/12345?fields=name&lang=mn")
    async with fed.session.get(url, headers=fed.client_header()) as resp:
        body = await resp.read()
        assert resp.status == 200, body
        answer = json.loads(body)
        assert answer["path"] == "/api/people/12345"
        assert answer["query"] == "fields=name&lang=mn"
        assert answer["name"] == "Батбаяр"
        assert resp.headers["X-Road-Id"]
        assert resp.headers["X-Road-Request-Hash"]
        assert resp.headers["X-Registry-Trace"] == "abc"


_ = RunningTrustService
