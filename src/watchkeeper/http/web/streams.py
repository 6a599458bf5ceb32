"""Open live-update streams: each change rendered once and fanned out to all of them, and a
cap on how many may be open (per user or token, and in all).

One task, running while any stream is open, takes the change feed's notices, renders them
once and hands the rendered events to every stream. A stream keeps only the newest data of
each event (a row, the summary), so a slow browser never builds a backlog: what it gets when
it reads again is the state at its last render.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from watchkeeper.core.changes import ChangeFeed, Subscription

log = logging.getLogger(__name__)

Event = tuple[str, str]
"""A server-sent event: its name, and what streams send for it (rendered once for all)."""
Render = Callable[[set[str]], Awaitable[list[Event]]]

IDLE_S = 15.0
"""How long the fan-out task waits for a change before it looks whether streams are left."""


class TooManyStreams(Exception):
    """Past a cap: `status` 429 (this user's) or 503 (everyone's)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Stream:
    """One open event stream's pending events, newest data per event name."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._pending: dict[str, str] = {}
        self._changed = asyncio.Event()
        self.closed = False

    def push(self, events: Sequence[Event]) -> None:
        for name, data in events:
            self._pending.pop(name, None)  # the newer data goes last
            self._pending[name] = data
        if events:
            self._changed.set()

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    async def next(self, timeout: float) -> list[Event] | None:
        """The events pending (empty after `timeout` seconds of quiet), or None once closed."""
        if not self._pending and not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        if self.closed:
            return None
        self._changed.clear()
        events, self._pending = list(self._pending.items()), {}
        return events


class LiveUpdates:
    """The open streams of one app, and the task that feeds them."""

    def __init__(
        self, feed: ChangeFeed, render: Render, *, max_streams: int, max_per_owner: int
    ) -> None:
        self.feed = feed
        self.render = render
        self.max_streams = max_streams
        self.max_per_owner = max_per_owner
        self._streams: set[Stream] = set()
        self._per_owner: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def open(self, owner: str) -> Stream:
        """A new stream for `owner` (a user or token); `close` it when it ends."""
        if len(self._streams) >= self.max_streams:
            raise TooManyStreams(
                503,
                f"{self.max_streams} live-update streams are open, the most allowed "
                "(server.max_event_streams); the page retries",
            )
        if self._per_owner[owner] >= self.max_per_owner:
            raise TooManyStreams(
                429,
                f"you have {self.max_per_owner} live-update streams open, the most allowed "
                "(server.max_event_streams_per_user); close a dashboard tab",
            )
        stream = Stream(owner)
        if self.feed.closed:
            stream.close()
        self._streams.add(stream)
        self._per_owner[owner] += 1
        if self._task is None or self._task.done():
            # Subscribed here, not in the task: a change right after this returns is seen.
            subscription = contextlib.ExitStack()
            changes = subscription.enter_context(self.feed.subscribe())
            self._task = asyncio.create_task(
                self._fan_out(changes, subscription), name="live-updates"
            )
        return stream

    def close(self, stream: Stream) -> None:
        """End `stream` and free its slot (again: no effect)."""
        stream.close()
        if stream in self._streams:
            self._streams.discard(stream)
            self._per_owner[stream.owner] -= 1
            if not self._per_owner[stream.owner]:
                del self._per_owner[stream.owner]

    async def _fan_out(self, changes: Subscription, subscription: contextlib.ExitStack) -> None:
        with subscription:
            while self._streams:
                keys = await changes.changes(IDLE_S)
                if keys is None:  # shutting down: every stream ends now
                    for stream in list(self._streams):
                        stream.close()
                    return
                if not keys or not self._streams:
                    continue
                try:
                    events = await self.render(keys)
                except Exception:
                    # The next change renders afresh; the streams stay open meanwhile.
                    log.exception("rendering live updates for %s failed", sorted(keys))
                    continue
                for stream in self._streams:
                    stream.push(events)
