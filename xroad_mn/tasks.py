"""Background loops: wait for a wake-up or a timeout without losing a cancel.

Every xroad-mn app runs loops owned by its ``cleanup_ctx`` (configuration regeneration and download, OCSP
refresh) that sleep until an interval passes or something wakes them. They wait with
:func:`wait_for_wake`, never ``asyncio.wait_for``: on Python 3.11, ``wait_for`` returns the event's result
instead of raising when a cancel arrives after the event was set but before ``wait_for`` resumes (CPython
gh-86296). A loop that took that cancel for a wake-up would run once more and sleep a whole interval while
its app waits to stop.

Example::

    >>> import asyncio
    >>> async def loop(wake: asyncio.Event) -> None:
    ...     while True:
    ...         woken = await wait_for_wake(wake, 60.0)
    ...         ...  # refresh
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["wait_for_wake"]


async def wait_for_wake(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set (True) or ``seconds`` pass (False); a cancel is always raised. The event is
    left as it is: the caller clears it before the work the wake-up asks for."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
            return True
    return False
