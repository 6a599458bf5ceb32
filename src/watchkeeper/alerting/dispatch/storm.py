"""The last stage: every notification goes through the storm guard into the outbox.

`notify.storm.StormGuard` holds the per-channel limits and the digests; this stage is how
the other stages reach it, and how a pass sends the digests that are due.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from watchkeeper.alerting.dispatch.context import Pass
from watchkeeper.notify.storm import ChannelLimit, StormGuard
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Connection, Database


class StormStage:
    """Queues the stages' outbox entries through the storm guard."""

    def __init__(self, limits: Mapping[str, ChannelLimit] | None = None) -> None:
        self._guard = StormGuard(dict(limits or {}))

    async def enqueue(
        self,
        conn: Connection,
        entries: list[outbox_store.OutboxEntry],
        now: datetime,
        *,
        ready: list[Any] | None = None,
    ) -> int:
        """Queue `entries` in the caller's transaction; return how many were queued, held
        ones included (any of them is worth waking the outbox worker for). With `ready`,
        the rows of those to be sent now are added to it (see `StormGuard.enqueue`)."""
        await self._guard.enqueue(conn, entries, now, ready=ready)
        return len(entries)

    async def flush_digests(self, db: Database, at: Pass) -> int:
        """Queue the digests due at `at.now` (one transaction per channel); the pass wakes
        when the others fall due. Returns how many were queued."""
        queued, wakeups = await self._guard.flush_digests(db, at.now)
        at.wakeups.extend(wakeups)
        return queued
