"""The node's own configuration as the proxies read it: cached for ``server_conf_cache_seconds``.

X-Road's proxies read the security server's configuration (hosted clients, services, access rights)
through a cache kept ``server-conf-cache-period`` (60 s): a message should cost signing and logging, not
database reads. :class:`ServerConfCache` does the same for the three questions every exchange asks — which
clients this node hosts, what a service is, and whether a client may call it — each answer remembered until
it is ``ttl_seconds`` old (0: never remembered), and at most :data:`MAX_CACHED_ANSWERS` of each kind.
A change made through the admin API or the CLI reaches the proxies within the period, as in X-Road.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from cryptography import x509

from security_server.db import NodeStore
from security_server.db.models import DescriptionType
from security_server.db.records import Client, Service
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, GlobalGroupId, ServiceId, format_id

__all__ = ["MAX_CACHED_ANSWERS", "ServerConfCache", "ServiceInfo"]

MAX_CACHED_ANSWERS: Final = 10_000
"""Most answers of one kind held (the oldest are dropped first)."""

_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True)
class ServiceInfo:
    """A service of a hosted client with what the server proxy checks: its description's type and state."""

    service: Service
    rest: bool
    disabled: bool
    disabled_notice: str | None


class _Answers(Generic[_K, _V]):
    """Answers by key, each for ``ttl`` seconds; a failure (an :class:`XRoadError`) is remembered too."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._held: OrderedDict[_K, tuple[float, _V | XRoadError]] = OrderedDict()

    async def get(self, key: _K, load: Callable[[], Awaitable[_V]]) -> _V:
        now = self._clock()
        held = self._held.get(key)
        if held is not None and now - held[0] < self._ttl:
            answer = held[1]
        else:
            try:
                answer = await load()
            except XRoadError as e:
                answer = e
            if self._ttl > 0:
                self._held[key] = (now, answer)
                self._held.move_to_end(key)
                while len(self._held) > MAX_CACHED_ANSWERS:
                    self._held.popitem(last=False)
        if isinstance(answer, XRoadError):
            # A fresh error each time: its own fault detail id, and no traceback growing on every raise.
            raise XRoadError(answer.code, answer.message, details=answer.details, kind=answer.kind)
        return answer

    def clear(self) -> None:
        self._held.clear()


class ServerConfCache:
    """Cached reads of the node's configuration for the proxies (see the module docstring)."""

    def __init__(
        self, store: NodeStore, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._clients: _Answers[None, dict[ClientId, Client]] = _Answers(ttl_seconds, clock)
        self._services: _Answers[ServiceId, ServiceInfo] = _Answers(ttl_seconds, clock)
        self._access: _Answers[tuple[object, ...], bool] = _Answers(ttl_seconds, clock)
        self._is_certs: _Answers[ClientId, tuple[x509.Certificate, ...]] = _Answers(ttl_seconds, clock)

    def clear(self) -> None:
        """Forget every answer (the node's configuration changed in this process)."""
        self._clients.clear()
        self._services.clear()
        self._access.clear()
        self._is_certs.clear()

    async def hosted_clients(self) -> dict[ClientId, Client]:
        async def load() -> dict[ClientId, Client]:
            return {c.client: c for c in await self._store.list_clients()}

        return await self._clients.get(None, load)

    async def is_certificates(self, client: ClientId) -> tuple[x509.Certificate, ...]:
        """The IS TLS certificates registered for ``client``."""

        async def load() -> tuple[x509.Certificate, ...]:
            return await self._store.list_is_certs(client)

        return await self._is_certs.get(client, load)

    async def service(self, service: ServiceId) -> ServiceInfo:
        """The service ``service`` of a hosted client; ``unknown_service`` when there is none."""

        async def load() -> ServiceInfo:
            try:
                found = await self._store.get_service(
                    service.client, service.service_code, service.service_version
                )
            except XRoadError as e:
                if e.code.endswith("not_found"):
                    raise XRoadError(
                        FaultCode.UNKNOWN_SERVICE, f"Unknown service: {format_id(service)}"
                    ) from e
                raise
            description = await self._store.get_service_description(found.description_id)
            return ServiceInfo(
                found,
                description.type is not DescriptionType.WSDL,
                description.disabled or not found.enabled,
                description.disabled_notice,
            )

        return await self._services.get(service, load)

    async def is_allowed(
        self,
        provider: ClientId,
        service_code: str,
        subject: ClientId,
        *,
        method: str | None,
        path: str | None,
        global_groups: Collection[GlobalGroupId],
    ) -> bool:
        """:meth:`~security_server.db.access.AccessStore.is_allowed`, remembered per question."""
        key = (provider, service_code, subject, method, path, frozenset(global_groups))

        async def load() -> bool:
            return await self._store.is_allowed(
                provider, service_code, subject, method=method, path=path, global_groups=global_groups
            )

        return await self._access.get(key, load)
