"""The registry application's shared resources, as typed aiohttp application keys.

Every resource is created and closed in the app's ``cleanup_ctx`` (see :mod:`registry.app`); handlers
read them from ``request.app[KEY]``. No module-level state.

Example::

    >>> from registry.context import STORE_KEY
    >>> async def handler(request):  # doctest: +SKIP
    ...     store = request.app[STORE_KEY]
    ...     return web.json_response([str(m.id) for m in await store.list_members()])
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from registry.db import RegistryStore
from registry.distribution import CHANGED_KEY, PUBLISHER_KEY
from xroad_mn.tokens import Token

__all__ = ["CHANGED_KEY", "CLOCK_KEY", "PUBLISHER_KEY", "STORE_KEY", "TOKEN_KEY"]

# CHANGED_KEY (set after every change global configuration shows; the publisher regenerates at once)
# and PUBLISHER_KEY come from registry.distribution.

STORE_KEY: web.AppKey[RegistryStore] = web.AppKey("registry_store", RegistryStore)
"""The registry database (one :class:`RegistryStore` over the app's engine)."""

CLOCK_KEY: web.AppKey[Callable[[], datetime]] = web.AppKey("registry_clock")
"""The time source (tests freeze it): verification times and generation times come from here."""

TOKEN_KEY: web.AppKey[Token] = web.AppKey("registry_token")
"""The registry's token, logged in at start and out at cleanup: it holds the configuration signing keys.
Its calls block: handlers run them with ``asyncio.to_thread``."""
