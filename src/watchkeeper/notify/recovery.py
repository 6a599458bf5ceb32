"""What recovery's `notify` action and runbook `notify` steps send through: the outbox.

Recovery sits below notify in the layers, so it defines the narrow `Notifier` protocol and
the runtime (app.py) hands it this implementation. Each message is one `recovery.notify`
delivery per channel, queued like any notification (retried, deduplicated by its key).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

from watchkeeper.core.clock import Clock
from watchkeeper.notify.payload import recovery_payload
from watchkeeper.store.database import Database
from watchkeeper.store.errors import translated
from watchkeeper.store.outbox import OutboxEntry, enqueue

NOTIFY_EVENT = "recovery.notify"


class OutboxNotifier:
    """Queues a recovery action's message for channels (satisfies recovery's `Notifier`)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        channels_for: Callable[[str | None], list[str]],
        known: Callable[[], Collection[str]],
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._channels_for = channels_for
        self._known = known
        self._on_enqueued = on_enqueued

    async def send(
        self,
        message: str,
        channels: Sequence[str] | None,
        *,
        action: str,
        check: str | None,
        run_id: str | None,
    ) -> list[str]:
        names = list(channels) if channels is not None else self._channels_for(check)
        known = self._known()
        if unknown := [name for name in names if name not in known]:
            raise ValueError(f"no notification channel named {unknown[0]!r}")
        now = self._clock.now()
        run: dict[str, Any] = {
            "id": run_id,
            "action": action,
            "check": check,
            "status": "running",
            "started_at": now,
            "output": message,
        }
        payload = {**recovery_payload(run, NOTIFY_EVENT), "message": message}
        key = f"{run_id or 'manual'}:notify:{uuid.uuid4()}"
        entries = [
            OutboxEntry(channel=name, idempotency_key=key, event=NOTIFY_EVENT, payload=payload)
            for name in names
        ]
        async with translated(), self._db.begin() as conn:
            await enqueue(conn, entries, now)
        self._on_enqueued()
        return names
