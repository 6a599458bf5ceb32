"""What changed, for live views: the dashboard's server-sent events.

Publishers name what changed (`check:<name>`, `alerts`); each subscriber keeps the set of
names changed since it last looked. A slow browser therefore never builds a backlog: ten
changes of one check while it was away arrive as one, rendered from the state at that time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

ALERTS = "alerts"
"""Some alert was created, changed or resolved (or its suppression changed)."""
CHECKS = "checks"
"""A check was added, replaced or removed (over the API): lists of checks are stale."""


def check_key(name: str) -> str:
    return f"check:{name}"


class Subscription:
    """One listener's pending changes."""

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._changed = asyncio.Event()
        self.closed = False

    def add(self, key: str) -> None:
        self._keys.add(key)
        self._changed.set()

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    async def changes(self, timeout: float) -> set[str] | None:
        """The keys changed since the last call (empty after `timeout` seconds of quiet),
        or None once the feed is closed."""
        if not self._keys and not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        if self.closed:
            return None
        self._changed.clear()
        keys, self._keys = self._keys, set()
        return keys


class ChangeFeed:
    """Fan-out of change notices to every live subscriber; publishing never blocks."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.closed = False

    def publish(self, key: str) -> None:
        for subscription in self._subscriptions:
            subscription.add(key)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        subscription = Subscription()
        if self.closed:
            subscription.close()
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def close(self) -> None:
        """End every subscription (shutdown: open event streams must not hold it up)."""
        self.closed = True
        for subscription in self._subscriptions:
            subscription.close()
