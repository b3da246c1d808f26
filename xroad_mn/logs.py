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

Log values often come from the network (request paths, header values, peer messages). Every string value
passes :func:`escape_control_characters` first, so CR, LF, ESC and the other C0/C1 controls and the
bidirectional overrides appear escaped (``\\r``, ``\\x1b``, ``\\u202e``): a client cannot forge log lines or
recolour a terminal. Tracebacks keep their line breaks.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Final, Literal, TextIO, cast

import structlog

__all__ = ["LogFormat", "bound_context", "configure_logging", "escape_control_characters", "escape_text"]

LogFormat = Literal["json", "console"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 controls (CR, LF, ESC, ...), DEL and the bidirectional marks, embeddings and overrides."""
_NAMED_ESCAPES: Final = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_text(text: str) -> str:
    """``text`` with every control and bidirectional-override character written as a Python escape."""
    return _UNSAFE.sub(_escape_char, text)


def escape_control_characters(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: escape control characters in every string value (see :func:`escape_text`).

    Other values are rendered with ``repr``, which escapes them already; ``exc_info`` is formatted later.
    """
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = escape_text(value)
    return event_dict


class _EscapingFormatter(logging.Formatter):
    """The standard-library side (aiohttp's own loggers): the message escaped, the traceback kept."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_text(super().formatMessage(record))


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
        escape_control_characters,  # before exceptions are formatted: tracebacks keep their newlines
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
    handler = logging.StreamHandler(out)
    handler.setFormatter(_EscapingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=numeric, handlers=[handler], force=True)


@contextmanager
def bound_context(**values: str | int | None) -> Iterator[None]:
    """Bind ``values`` (e.g. ``x_road_id``, ``client``, ``service``) to every log line in this context."""
    present = {k: v for k, v in values.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**present):
        yield
