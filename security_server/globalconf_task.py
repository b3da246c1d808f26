"""Keeping the node's global configuration fresh, and its registration states with it.

:class:`GlobalconfRefresher` runs the configuration client every ``globalconf_update_interval_seconds``
(X-Road's 60 s) as a task owned by the admin application's ``cleanup_ctx``; after each successful download
it updates the certificate and client registration states from the new configuration (X-Road's
``GlobalConfChecker``) and, when a state changed, wakes the OCSP refresher. A failed round is logged and
the stored copy keeps being used until it expires. Example::

    >>> refresher = GlobalconfRefresher(client, on_refresh=registrar.sync, interval_seconds=60)
    ... # doctest: +SKIP
    >>> task = asyncio.create_task(refresher.run())  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import structlog

from xroad_mn.confclient.client import ConfigurationClient
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.tasks import wait_for_wake

__all__ = ["GlobalconfRefresher"]

log = structlog.get_logger(__name__)


class GlobalconfRefresher:
    """Download, verify and install global configuration, then call ``on_refresh`` (the registration
    sync), once at start and every ``interval_seconds``; :meth:`wake` refreshes now."""

    def __init__(
        self,
        client: ConfigurationClient,
        *,
        on_refresh: Callable[[], Awaitable[Sequence[object]]],
        on_change: Callable[[], None] = lambda: None,
        interval_seconds: float,
    ) -> None:
        self.client = client
        self._on_refresh = on_refresh
        self._on_change = on_change
        self.interval_seconds = interval_seconds
        self._wake = asyncio.Event()
        self.rounds = 0
        """Completed rounds, successful or not (tests wait on it)."""
        self.last_error: XRoadError | None = None
        self._done = asyncio.Condition()

    def wake(self) -> None:
        self._wake.set()

    async def refresh_once(self) -> bool:
        """One round; True when the configuration was downloaded and the states synchronised."""
        try:
            await self.client.refresh()
            changes = await self._on_refresh()
        except XRoadError as e:
            log.warning("globalconf_round_failed", code=e.code, error=e.message)
            self.last_error = e
            return False
        except Exception as e:
            # A background loop must outlive one bad round (as the registry's regeneration does); the next
            # interval or wake-up retries.
            log.exception("globalconf_round_crashed")
            self.last_error = XRoadError(FaultCode.INTERNAL_ERROR, f"configuration round crashed: {e}")
            return False
        self.last_error = None
        if changes:
            log.info("registration_states_changed", changes=len(changes))
            self._on_change()
        return True

    async def wait_for_round(self, after: int) -> int:
        """Wait until more than ``after`` rounds completed; the count."""
        async with self._done:
            await self._done.wait_for(lambda: self.rounds > after)
            return self.rounds

    async def run(self) -> None:
        while True:
            self._wake.clear()
            await self.refresh_once()
            async with self._done:
                self.rounds += 1
                self._done.notify_all()
            await wait_for_wake(self._wake, self.interval_seconds)
