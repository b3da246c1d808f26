"""Structured logging: structlog configured once at each entry point, context bound per request.

JSON lines for machines, a coloured console for people::

    >>> from xroad_mn.logs import configure_logging, bound_context
    >>> configure_logging("json", level="info")
    >>> import structlog
    >>> log = structlog.get_logger("xroad_mn.example")
    >>> with bound_context(x_road_id="MN-1", client="SUBSYSTEM:MN/GOV/5012345/civil-registry"):
    ...     log.info("message_logged")  # doctest: +SKIP

Request handlers bind ``x_road_id``, ``client`` and ``service`` with :func:`bound_context`; every log line
written while handling that request carries them.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, TextIO, cast

import structlog

__all__ = ["LogFormat", "bound_context", "configure_logging"]

LogFormat = Literal["json", "console"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class _StandardError(io.TextIOBase):
    """Writes to whatever ``sys.stderr`` is at the moment of writing (test runners swap it)."""

    def write(self, s: str) -> int:
        return sys.stderr.write(s)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(
    fmt: LogFormat = "console", *, level: str = "info", stream: TextIO | None = None
) -> None:
    """Configure structlog and the stdlib root logger for one process. Call once per entry point."""
    numeric = _LEVELS.get(level.lower())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}")
    out = stream if stream is not None else cast(TextIO, _StandardError())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        # Tracebacks without local variables: a handler's locals may hold keys or tokens.
        renderer = structlog.dev.ConsoleRenderer(
            colors=out.isatty(),
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False),
        )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=numeric, stream=out, format="%(levelname)s %(name)s: %(message)s", force=True)


@contextmanager
def bound_context(**values: str | int | None) -> Iterator[None]:
    """Bind ``values`` (e.g. ``x_road_id``, ``client``, ``service``) to every log line in this context."""
    present = {k: v for k, v in values.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**present):
        yield
