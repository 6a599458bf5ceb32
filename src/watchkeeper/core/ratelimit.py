"""Token buckets per key (a check, a client address), in memory, on an injected clock."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

MAX_KEYS = 10_000
"""Buckets kept at most; past it the least recently used go (a full bucket loses nothing)."""


class Rate(Protocol):
    """A refill rate (tokens per second) and a bucket size."""

    @property
    def rate(self) -> float: ...

    @property
    def burst(self) -> int: ...


class TokenBuckets:
    """`take(key)` spends one token of `key`'s bucket: `burst` at most, `rate` refilled per
    second. Memory is bounded: at most `max_keys` buckets, least recently used dropped first
    (dropping one only forgets how empty it was)."""

    def __init__(
        self, limit: Rate, monotonic: Callable[[], float], *, max_keys: int = MAX_KEYS
    ) -> None:
        self._rate = limit.rate
        self._burst = float(limit.burst)
        self._monotonic = monotonic
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def take(self, key: str) -> float | None:
        """Spend a token: None if there was one, else the seconds until there will be."""
        now = self._monotonic()
        tokens, at = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + max(0.0, now - at) * self._rate)
        if tokens >= 1.0:
            tokens -= 1.0
            wait = None
        else:
            wait = (1.0 - tokens) / self._rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait


def retry_after(wait: float) -> str:
    """A `Retry-After` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))
