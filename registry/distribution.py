"""Global configuration distribution over HTTP, and its regeneration schedule.

Routes (what the central server's nginx serves from ``/var/lib/xroad/public``):

* ``GET /internalconf`` and ``GET /externalconf`` — the signed directory of ``?version=N`` (default 2, as
  nginx maps it); ``GET /V{N}/internalconf`` and ``/V{N}/externalconf`` — the same by path;
* ``GET /V{N}/{yyyyMMddHHmmss+nanos}/{file}`` — a content file (``application/octet-stream``).

A directory is served byte for byte as stored, its own ``Content-Type: multipart/related; ...`` line and blank
line included (X-Road's configuration client reads the MIME headers from the body); the HTTP
``Content-Type`` repeats that line's value, so a client that takes the HTTP header instead sees the stored
header as a MIME preamble, which multipart parsers skip. Anything not served is a 404 in X-Road's REST error
format. Responses carry ``Cache-Control: no-cache`` (nginx's ``expires -1``).

:class:`ConfigurationPublisher` holds the latest :class:`~registry.globalconf_gen.GeneratedConfiguration`;
:func:`regenerate_periodically` rebuilds it every 60 s and at once when the admin API sets the change event.

Example::

    >>> publisher = ConfigurationPublisher(build, out_dir=Path("public"))  # doctest: +SKIP
    >>> changed = asyncio.Event()
    >>> app = web.Application(middlewares=[xroad_error_middleware])
    >>> setup_publishing(app, publisher, changed)  # doctest: +SKIP
    >>> changed.set()  # after a change: the next configuration is generated now  # doctest: +SKIP

or, for the files alone, ``create_distribution_app(publisher.current)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Final

import structlog
from aiohttp import web

from registry.globalconf_gen import DEFAULT_VERSION, DIRECTORY_NAMES, GeneratedConfiguration, KeyKind
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.tasks import wait_for_wake
from xroad_mn.transport.server import xroad_error_middleware

__all__ = [
    "CHANGED_KEY",
    "DIRECTORY_TYPE_FALLBACK",
    "FILE_CONTENT_TYPE",
    "PUBLISHER_KEY",
    "REGENERATE_INTERVAL_SECONDS",
    "SOURCE_KEY",
    "ConfigurationPublisher",
    "add_distribution_routes",
    "create_distribution_app",
    "regenerate_periodically",
    "regeneration_ctx",
    "setup_publishing",
]

log = structlog.get_logger(__name__)

REGENERATE_INTERVAL_SECONDS: Final = 60.0
"""X-Road's ``global-configuration-generation-rate-in-seconds``."""
FILE_CONTENT_TYPE: Final = "application/octet-stream"
DIRECTORY_TYPE_FALLBACK: Final = "multipart/related"
"""HTTP Content-Type of a directory whose stored first line names none (never the case for ours)."""
_MAX_HEADER_LINE: Final = 256
_KINDS: Final[dict[str, KeyKind]] = {name: kind for kind, name in DIRECTORY_NAMES.items()}

ConfigurationProvider = Callable[[], GeneratedConfiguration]
"""Returns the configuration to serve now, or raises :class:`XRoadError` (e.g. none generated yet)."""

SOURCE_KEY: Final = web.AppKey[ConfigurationProvider]("globalconf_source")


class ConfigurationPublisher:
    """The latest generated configuration, optionally mirrored into a ``public`` directory on disk."""

    def __init__(
        self, build: Callable[[], Awaitable[GeneratedConfiguration]], *, out_dir: Path | None = None
    ) -> None:
        self._build = build
        self._out_dir = out_dir
        self._current: GeneratedConfiguration | None = None
        self._lock = asyncio.Lock()
        self._published = asyncio.Condition()

    def current(self) -> GeneratedConfiguration:
        """The configuration being served; ``not_found`` (HTTP 404) before the first generation."""
        if self._current is None:
            raise XRoadError(
                FaultCode.NOT_FOUND,
                "global configuration has not been generated yet",
                kind=ErrorKind.NOT_FOUND,
            )
        return self._current

    async def regenerate(self) -> GeneratedConfiguration:
        """Build the next configuration, write it out (in a thread) when ``out_dir`` is set, then serve it."""
        async with self._lock:
            conf = await self._build()
            if self._out_dir is not None:
                await asyncio.to_thread(conf.write_to, self._out_dir)
            self._current = conf.succeeding(self._current)
            async with self._published:
                self._published.notify_all()
            log.info(
                "globalconf_generated",
                instance=conf.instance,
                versions=sorted(conf.versions),
                expire_date=conf.expire_date.isoformat(),
            )
            return self._current

    async def next_generation(self, after: GeneratedConfiguration | None) -> GeneratedConfiguration:
        """Wait until a generation other than ``after`` is served (e.g. after setting the change event)."""

        def fresh() -> GeneratedConfiguration | None:
            current = self._current
            return current if current is not None and current is not after else None

        async with self._published:
            found = await self._published.wait_for(fresh)
        if found is None:  # wait_for returns fresh()'s first true value: unreachable
            raise XRoadError(FaultCode.INTERNAL_ERROR, "no new global configuration was published")
        return found


PUBLISHER_KEY: Final = web.AppKey("globalconf_publisher", ConfigurationPublisher)
CHANGED_KEY: Final = web.AppKey("globalconf_changed", asyncio.Event)
"""Set this event after any change of registry data: the configuration is regenerated at once."""


# --------------------------------------------------------------------------------------------------------
# Serving


def _not_found(what: str) -> XRoadError:
    return XRoadError(FaultCode.NOT_FOUND, what, kind=ErrorKind.NOT_FOUND)


def _directory_content_type(data: bytes) -> str:
    """The value of the stored directory's first line (``Content-Type: multipart/related; ...``)."""
    first = data[:_MAX_HEADER_LINE].split(b"\n", 1)[0].rstrip(b"\r")
    name, sep, value = first.partition(b":")
    if sep and name.strip().lower() == b"content-type" and value.strip().isascii():
        return value.strip().decode("ascii")
    return DIRECTORY_TYPE_FALLBACK


def _directory_response(source: ConfigurationProvider, name: str, version: int) -> web.Response:
    kind = _KINDS[name]
    data = source().directory(kind, version)
    if data is None:
        raise _not_found(f"{name} version {version} is not available")
    return web.Response(
        body=data, headers={"Content-Type": _directory_content_type(data), "Cache-Control": "no-cache"}
    )


async def _directory_by_query(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    raw = request.query.get("version")
    if raw is None:
        version = DEFAULT_VERSION
    elif raw.isascii() and raw.isdigit() and len(raw) <= 3:
        version = int(raw)
    else:
        raise _not_found(f"{name} version {raw[:20]!r} is not available")
    return _directory_response(request.app[SOURCE_KEY], name, version)


async def _directory_by_path(request: web.Request) -> web.Response:
    return _directory_response(
        request.app[SOURCE_KEY], request.match_info["name"], int(request.match_info["version"])
    )


async def _content_file(request: web.Request) -> web.Response:
    m = request.match_info
    location = f"/V{m['version']}/{m['stamp']}/{m['file']}"
    data = request.app[SOURCE_KEY]().file(location)
    if data is None:
        raise _not_found(f"{location} is not available")
    return web.Response(body=data, headers={"Content-Type": FILE_CONTENT_TYPE, "Cache-Control": "no-cache"})


def add_distribution_routes(app: web.Application, source: ConfigurationProvider) -> None:
    """Serve ``source``'s configuration from ``app`` (which should use ``xroad_error_middleware``)."""
    app[SOURCE_KEY] = source
    app.router.add_get("/{name:(internal|external)conf}", _directory_by_query)
    app.router.add_get(r"/V{version:\d{1,3}}/{name:(internal|external)conf}", _directory_by_path)
    app.router.add_get(r"/V{version:\d{1,3}}/{stamp:\d{14,23}}/{file:[A-Za-z0-9._-]+}", _content_file)


def create_distribution_app(source: ConfigurationProvider) -> web.Application:
    """An application serving only the global configuration (what nginx does for the central server)."""
    app = web.Application(middlewares=[xroad_error_middleware])
    add_distribution_routes(app, source)
    return app


# --------------------------------------------------------------------------------------------------------
# Scheduling


async def _attempt(generate_fn: Callable[[], Awaitable[object]]) -> None:
    try:
        await generate_fn()
    except XRoadError as e:
        log.warning("globalconf_generation_failed", code=e.code, message=e.message)
    except Exception:
        # A background loop must outlive one bad generation; the next change or tick retries.
        log.exception("globalconf_generation_crashed")


async def regenerate_periodically(
    generate_fn: Callable[[], Awaitable[object]],
    interval: float = REGENERATE_INTERVAL_SECONDS,
    on_change_event: asyncio.Event | None = None,
    *,
    immediately: bool = True,
) -> None:
    """Run ``generate_fn`` every ``interval`` seconds, and at once whenever ``on_change_event`` is set.

    The event is cleared before each run, so a change made during a generation causes one more. A
    failing run is logged and retried at the next tick. Runs until cancelled.
    """
    event = on_change_event if on_change_event is not None else asyncio.Event()
    if immediately:
        event.clear()
        await _attempt(generate_fn)
    while True:
        await wait_for_wake(event, interval)
        event.clear()
        await _attempt(generate_fn)


def regeneration_ctx(
    generate_fn: Callable[[], Awaitable[object]],
    on_change_event: asyncio.Event,
    interval: float = REGENERATE_INTERVAL_SECONDS,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` entry: generate once before the app serves, then regenerate in an owned task."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        on_change_event.clear()
        await _attempt(generate_fn)
        task = asyncio.create_task(
            regenerate_periodically(generate_fn, interval, on_change_event, immediately=False),
            name="globalconf-regeneration",
        )
        try:
            yield
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                # The task's own end; but when this cleanup is being cancelled too, that goes on.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    return ctx


def setup_publishing(
    app: web.Application,
    publisher: ConfigurationPublisher,
    on_change_event: asyncio.Event,
    *,
    interval: float = REGENERATE_INTERVAL_SECONDS,
) -> None:
    """Serve ``publisher``'s configuration from ``app`` and regenerate it on schedule and on change."""
    app[PUBLISHER_KEY] = publisher
    app[CHANGED_KEY] = on_change_event
    add_distribution_routes(app, publisher.current)
    app.cleanup_ctx.append(regeneration_ctx(publisher.regenerate, on_change_event, interval))
