"""The proxies' cache of the node's own configuration (X-Road's ``server-conf-cache-period``), on SQLite and
PostgreSQL: answers are kept for the period and read again after it; a cached refusal is raised afresh each
time (its own fault detail); a period of 0 reads every time."""

from __future__ import annotations

import pytest

from security_server.db import DescriptionType, NodeStore
from security_server.db.records import NewService
from security_server.proxy.serverconf import ServerConfCache
from tests.security_server.conftest import OWNER
from xroad_mn.errors import XRoadError

PROVIDER = OWNER.subsystem("civil-registry")
CONSUMER = OWNER.subsystem("bank-kyc")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def provider_with_service(store: NodeStore) -> None:
    await store.add_client(PROVIDER)
    await store.add_service_description(
        PROVIDER,
        DescriptionType.REST,
        url="http://127.0.0.1:9/api",
        services=[NewService("citizens", url="http://127.0.0.1:9/api")],
    )


async def test_answers_are_kept_for_the_period_then_read_again(store: NodeStore) -> None:
    await provider_with_service(store)
    clock = Clock()
    cache = ServerConfCache(store, 60, clock=clock)
    service = PROVIDER.service("citizens")

    assert not await cache.is_allowed(
        PROVIDER, "citizens", CONSUMER, method="GET", path="/x", global_groups=()
    )
    assert (await cache.service(service)).rest
    await store.grant_access(PROVIDER, "citizens", [CONSUMER])
    assert not await cache.is_allowed(
        PROVIDER, "citizens", CONSUMER, method="GET", path="/x", global_groups=()
    )  # still the answer of a second ago

    clock.now += 61
    assert await cache.is_allowed(PROVIDER, "citizens", CONSUMER, method="GET", path="/x", global_groups=())
    assert PROVIDER in await cache.hosted_clients()


async def test_a_cached_refusal_is_a_fresh_error_each_time(store: NodeStore) -> None:
    await provider_with_service(store)
    cache = ServerConfCache(store, 60, clock=Clock())
    unknown = PROVIDER.service("nobody")
    details = set()
    for _ in range(3):
        with pytest.raises(XRoadError) as info:
            await cache.service(unknown)
        assert info.value.code == "unknown_service"
        details.add(info.value.detail)
    assert len(details) == 3


async def test_a_period_of_zero_reads_every_time(store: NodeStore) -> None:
    await provider_with_service(store)
    cache = ServerConfCache(store, 0, clock=Clock())
    assert not await cache.is_allowed(
        PROVIDER, "citizens", CONSUMER, method="GET", path="/x", global_groups=()
    )
    await store.grant_access(PROVIDER, "citizens", [CONSUMER])
    assert await cache.is_allowed(PROVIDER, "citizens", CONSUMER, method="GET", path="/x", global_groups=())
