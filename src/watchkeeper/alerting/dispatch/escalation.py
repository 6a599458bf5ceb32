"""Escalation and repeat: paging further while a paged alert stays unacknowledged.

With an escalation policy, each step pages its channels at its delay after the first page,
then the last step's channels again every `repeat`. Without one, `repeat_interval` pages
the same channels again.
"""

from __future__ import annotations

import logging
from datetime import datetime

from watchkeeper.alerting.dispatch.storm import StormStage
from watchkeeper.alerting.dispatch.targets import Targets
from watchkeeper.core.domain import Alert
from watchkeeper.notify.payload import alert_payload
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database

# Logged as the dispatcher, as before the stages were split out (log filters name it).
log = logging.getLogger("watchkeeper.alerting.dispatcher")


class Escalation:
    """Takes a paged alert whose `next_escalation_at` is due one step further, in one
    transaction with its outbox entries."""

    def __init__(self, db: Database, targets: Targets, storm: StormStage) -> None:
        self._db = db
        self._targets = targets
        self._storm = storm

    async def escalate(self, alert: Alert, now: datetime) -> int:
        """Page the next step (or repeat); return how many outbox entries were queued
        (0: never paged, or acknowledged, resolved or moved on meanwhile)."""
        policy = self._targets.policy(alert)
        if alert.notified_at is None:
            return 0
        if policy is None:
            return await self.repeat(alert, now)
        step = alert.escalation_step + 1
        index = min(step, len(policy.steps) - 1)
        channels = list(policy.steps[index].notify)
        if step + 1 < len(policy.steps):
            next_at: datetime | None = alert.notified_at + (
                policy.steps[step + 1].after - policy.steps[0].after
            )
        else:
            next_at = now + policy.repeat if policy.repeat else None
        paged = sorted({*(alert.paged_channels or []), *channels})
        async with self._db.begin() as conn:
            if not await alert_store.advance_escalation(
                conn,
                alert.id,
                from_step=alert.escalation_step,
                step=step,
                next_escalation_at=next_at,
                paged_channels=paged,
            ):
                return 0  # acknowledged or resolved meanwhile
            await alert_store.add_event(
                conn, alert.id, "escalated", now, comment=f"step {step}: {', '.join(channels)}"
            )
            event = "alert.escalated"
            payload = alert_payload(alert, event)
            payload["escalation"] = {"policy": policy.name, "step": step}
            entries = [
                outbox_store.OutboxEntry(c, f"{alert.id}:{event}:{step}", event, payload, alert.id)
                for c in channels
            ]
            queued = await self._storm.enqueue(conn, entries, now)
        log.info("escalated %s to step %d: %s", alert.name, step, ", ".join(channels))
        return queued

    async def repeat(self, alert: Alert, now: datetime) -> int:
        """`repeat_interval`: page the same channels again while nobody acknowledges."""
        interval = self._targets.config.repeat_interval
        channels = alert.paged_channels or self._targets.first_channels(alert)
        count = alert.escalation_step + 1
        async with self._db.begin() as conn:
            if not await alert_store.advance_escalation(
                conn,
                alert.id,
                from_step=alert.escalation_step,
                step=count,
                next_escalation_at=now + interval if interval else None,
            ):
                return 0
            event = "alert.firing"
            payload = alert_payload(alert, event)
            payload["repeat"] = count
            entries = [
                outbox_store.OutboxEntry(
                    c, f"{alert.id}:{event}:repeat:{count}", event, payload, alert.id
                )
                for c in channels
            ]
            return await self._storm.enqueue(conn, entries, now)
