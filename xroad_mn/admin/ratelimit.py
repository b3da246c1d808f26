"""Rate limiting of the admin API: two token buckets per caller, as X-Road's ``RateLimitFilter``.

X-Road allows 20 requests a second and 600 a minute per caller by default. Each caller (an API key id, or
the remote address of a request without a valid key) has a per-second bucket (capacity 20, refilled at
20/s) and a per-minute bucket (capacity 600, refilled at 10/s); a request takes one token from each, and
is refused when either is empty. Pure logic with an injected monotonic clock; one :class:`RateLimiter`
per application (an ``AppKey``), never a global.

Example::

    >>> limiter = RateLimiter(per_second=2, per_minute=600, clock=lambda: 0.0)
    >>> [limiter.allow("key-1") for _ in range(3)]
    [True, True, False]
    >>> limiter.allow("key-2")
    True
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_TRACKED_CALLERS", "RateLimiter", "TokenBucket"]

MAX_TRACKED_CALLERS: Final = 10_000
"""Callers remembered at once; the least recently seen is forgotten first (its buckets start full again)."""


@dataclass
class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``rate`` tokens a second."""

    capacity: float
    rate: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, capacity: float, rate: float, now: float) -> TokenBucket:
        return cls(capacity, rate, capacity, now)

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now

    def retry_after(self) -> float:
        """Seconds until one token is available."""
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class RateLimiter:
    """Per-caller request limits: at most ``per_second`` a second and ``per_minute`` a minute."""

    def __init__(
        self, per_second: int, per_minute: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_second = float(per_second)
        self._per_minute = float(per_minute)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[TokenBucket, TokenBucket]] = OrderedDict()

    def _buckets_of(self, caller: str, now: float) -> tuple[TokenBucket, TokenBucket]:
        buckets = self._buckets.get(caller)
        if buckets is None:
            buckets = (
                TokenBucket.full(self._per_second, self._per_second, now),
                TokenBucket.full(self._per_minute, self._per_minute / 60.0, now),
            )
            self._buckets[caller] = buckets
            while len(self._buckets) > MAX_TRACKED_CALLERS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(caller)
        return buckets

    def check(self, caller: str) -> float | None:
        """Take a token for ``caller``: None when allowed, else the seconds to wait before retrying."""
        now = self._clock()
        buckets = self._buckets_of(caller, now)
        for b in buckets:
            b.refill(now)
        if all(b.tokens >= 1 for b in buckets):
            for b in buckets:
                b.tokens -= 1
            return None
        return max(b.retry_after() for b in buckets)

    def allow(self, caller: str) -> bool:
        return self.check(caller) is None
