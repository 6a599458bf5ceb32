"""The first page: one notification per group, sent when the group falls due."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from watchkeeper.alerting.dispatch.storm import StormStage
from watchkeeper.alerting.dispatch.targets import Targets
from watchkeeper.core.domain import Alert
from watchkeeper.notify.payload import alert_payload
from watchkeeper.store import alert_groups as group_store
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Connection, Database

# Logged as the dispatcher, as before the stages were split out (log filters name it).
log = logging.getLogger("watchkeeper.alerting.dispatcher")


class FirstPage:
    """Pages a group's first channels about its members, in one transaction with the
    outbox entries; each member's first escalation (or repeat) is scheduled from now."""

    def __init__(
        self,
        db: Database,
        targets: Targets,
        storm: StormStage,
        hand_off: Callable[[list[Any]], None] | None = None,
    ) -> None:
        """`hand_off`: given the outbox rows to send now once their transaction committed
        (the outbox worker's `hand_off`); None: the caller wakes the worker instead."""
        self._db = db
        self._targets = targets
        self._storm = storm
        self._hand_off = hand_off

    def _next_at(self, alert: Alert, now: datetime) -> datetime | None:
        """When the alert is next paged if nobody acknowledges it."""
        policy = self._targets.policy(alert)
        if policy is not None and len(policy.steps) > 1:
            return now + (policy.steps[1].after - policy.steps[0].after)
        if policy is not None and policy.repeat is not None:
            return now + policy.repeat
        if policy is None and self._targets.config.repeat_interval:
            return now + self._targets.config.repeat_interval
        return None

    async def send(self, key: str, members: list[Alert], now: datetime) -> int:
        """Page group `key` about the members no other pass paged first; return how many
        outbox entries were queued and not handed off (0: none left to page, or all of them
        handed to the outbox worker)."""
        channels = self._targets.first_channels(members[0])
        group_by = self._targets.config.group_by or []

        async def page(conn: Connection) -> tuple[list[Alert], int, list[Any]]:
            # Run again from the start if the loop's connection found the database locked.
            claimed = []
            for alert in members:
                if await alert_store.claim_first_page(
                    conn,
                    alert.id,
                    at=now,
                    channels=channels,
                    group_key=key,
                    next_escalation_at=self._next_at(alert, now),
                ):
                    # Set before the payload is made, which shows it (set again, the same,
                    # should this run again).
                    alert.notified_at, alert.paged_channels = now, channels
                    claimed.append(alert)
            if not claimed:
                return [], 0, []
            await group_store.touch(conn, key, now, first_seen=min(a.started_at for a in claimed))
            event = "alert.firing"
            if len(claimed) == 1:
                payload = alert_payload(claimed[0], event)
                idem = f"{claimed[0].id}:{event}"
            else:
                payload = group_payload(claimed, event, key, group_by)
                idem = f"group:{uuid.uuid4()}:{event}"
            entries = [
                outbox_store.OutboxEntry(c, idem, event, payload, claimed[0].id) for c in channels
            ]
            ready: list[Any] | None = [] if self._hand_off is not None else None
            queued = await self._storm.enqueue(conn, entries, now, ready=ready)
            return claimed, queued, ready or []

        # A new alert's first page is the one notification somebody waits for: its few
        # statements run on the loop's own connection (SQLite), and what it queued goes
        # straight to the outbox worker, with no claim read in between.
        claimed, queued, ready = await self._db.on_loop(page)
        if ready and self._hand_off is not None:
            self._hand_off(ready)
            queued -= len(ready)
        if claimed:
            log.info(
                "paged %s about %d alert(s) in %s",
                ",".join(channels) or "nobody",
                len(claimed),
                key,
            )
        return queued


def group_payload(
    alerts: Sequence[Alert], event: str, key: str, group_by: Sequence[str]
) -> dict[str, Any]:
    """One notification about several alerts: `alerts` lists them, `alert` is the first."""
    first = alert_payload(alerts[0], event)
    return {
        **first,
        "alerts": [alert_payload(a, event)["alert"] for a in alerts],
        "group": {
            "key": key,
            "labels": {n: alerts[0].match_labels.get(n, "") for n in group_by},
            "count": len(alerts),
        },
    }
