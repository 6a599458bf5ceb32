"""Storm protection: a per-channel hourly limit; what is over it waits for a digest."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Connection as AsyncConnection

DIGEST_EVENT = "notifications.digest"
_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class ChannelLimit:
    max_per_hour: int
    digest_interval: timedelta


class StormGuard:
    """Queues entries normally up to each channel's `max_per_hour`, holds the rest, and
    sends one digest per `digest_interval` that counts everything held."""

    def __init__(self, limits: dict[str, ChannelLimit]) -> None:
        self._limits = limits

    async def enqueue(
        self,
        conn: AsyncConnection,
        entries: list[outbox_store.OutboxEntry],
        now: datetime,
        *,
        ready: list[Any] | None = None,
    ) -> int:
        """Queue `entries` (in the caller's transaction); return how many will be sent.
        With `ready`, the rows of those to be sent now (as `outbox.due` returns them) are
        added to it, for the outbox worker to be handed once the transaction commits."""
        sent: list[outbox_store.OutboxEntry] = []
        held: list[outbox_store.OutboxEntry] = []
        counts: dict[str, int] = {}
        for entry in entries:
            limit = self._limits.get(entry.channel)
            if limit is None:
                sent.append(entry)
                continue
            if entry.channel not in counts:
                counts[entry.channel] = await _sent_in_window(conn, entry.channel, now)
            if counts[entry.channel] < limit.max_per_hour:
                counts[entry.channel] += 1
                sent.append(entry)
            else:
                held.append(entry)
        if ready is None:
            await outbox_store.enqueue(conn, sent, now)
        else:
            ready.extend(await outbox_store.enqueue_returning(conn, sent, now))
        await outbox_store.enqueue(conn, held, now, status=outbox_store.HELD)
        return len(sent)

    async def flush_digests(self, db: Any, now: datetime) -> tuple[int, list[datetime]]:
        """Send the digests that are due; return (queued, when the others fall due)."""
        queued, wakeups = 0, []
        for channel, limit in self._limits.items():
            async with db.begin() as conn:
                held = await outbox_store.held(conn, channel)
                if not held:
                    continue
                last = await outbox_store.last_created(conn, channel, DIGEST_EVENT)
                due = held[0].created_at
                if last is not None:
                    due = max(due, last + limit.digest_interval)
                if due > now:
                    wakeups.append(due)
                    continue
                ids = [row.id for row in held]
                await outbox_store.mark_digested(conn, ids)
                payload = digest_payload(held)
                entry = outbox_store.OutboxEntry(
                    channel, f"digest:{channel}:{ids[0]}", DIGEST_EVENT, payload
                )
                await outbox_store.enqueue(conn, [entry], now)
                queued += 1
        return queued, wakeups


async def _sent_in_window(conn: AsyncConnection, channel: str, now: datetime) -> int:
    return await outbox_store.sent_since(conn, channel, now - _WINDOW, but=DIGEST_EVENT)


def digest_payload(held: list[Any]) -> dict[str, Any]:
    events = Counter(row.event for row in held)
    alerts = [
        {
            "event": row.event,
            "name": (row.payload.get("alert") or {}).get("name"),
            "severity": (row.payload.get("alert") or {}).get("severity"),
        }
        for row in held[:50]
    ]
    return {
        "version": 1,
        "event": DIGEST_EVENT,
        "digest": {
            "suppressed": len(held),
            "since": held[0].created_at.isoformat().replace("+00:00", "Z"),
            "events": dict(events),
            "alerts": alerts,
        },
    }
