"""The first page: one notification per group, sent when the group falls due."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watchkeeper.alerting.dispatch.grouping import is_own_group
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

BATCH = 500
"""Groups paged in one transaction at most: on SQLite it runs on the loop's thread, which
waits for it (~20 µs a group), and a burst of new alerts is paged in a few of them."""


@dataclass
class _Group:
    key: str
    members: list[Alert]
    channels: list[str]
    claimed: list[Alert]


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
        return await self.send_many([(key, members)], now)

    async def send_many(self, due: Sequence[tuple[str, list[Alert]]], now: datetime) -> int:
        """`send` for several groups, `BATCH` of them per transaction: a burst of new alerts,
        each its own group, costs a few transactions and not one each."""
        queued = 0
        for start in range(0, len(due), BATCH):
            groups = [
                _Group(key, members, self._targets.first_channels(members[0]), [])
                for key, members in due[start : start + BATCH]
            ]
            try:
                queued += await self._page(groups, now, exact=False)
            except alert_store.FirstPagesContested:
                # Another pass or node paged some of them (or they stopped firing): rolled
                # back; now one claim at a time, so the others are still paged.
                queued += await self._page(groups, now, exact=True)
        return queued

    async def _page(self, groups: list[_Group], now: datetime, *, exact: bool) -> int:
        group_by = self._targets.config.group_by or []
        claims = [
            alert_store.FirstPageClaim(a.id, g.channels, g.key, self._next_at(a, now))
            for g in groups
            for a in g.members
        ]

        async def page(conn: Connection) -> tuple[int, list[Any]]:
            # Run again from the start if the loop's connection found the database locked.
            taken = await alert_store.claim_first_pages(conn, claims, at=now, exact=exact)
            touched: list[tuple[str, datetime]] = []
            entries: list[outbox_store.OutboxEntry] = []
            for group in groups:
                group.claimed = [a for a in group.members if a.id in taken]
                if not group.claimed:
                    continue
                for alert in group.claimed:
                    # Set before the payload is made, which shows it (set again, the same,
                    # should this run again).
                    alert.notified_at, alert.paged_channels = now, group.channels
                if not is_own_group(group.key):
                    touched.append((group.key, min(a.started_at for a in group.claimed)))
                if not group.channels:
                    continue
                event = "alert.firing"
                if len(group.claimed) == 1:
                    payload = alert_payload(group.claimed[0], event)
                    idem = f"{group.claimed[0].id}:{event}"
                else:
                    payload = group_payload(group.claimed, event, group.key, group_by)
                    idem = f"group:{uuid.uuid4()}:{event}"
                entries.extend(
                    outbox_store.OutboxEntry(c, idem, event, payload, group.claimed[0].id)
                    for c in group.channels
                )
            await group_store.touch_many(conn, touched, now)
            ready: list[Any] | None = [] if self._hand_off is not None else None
            queued = await self._storm.enqueue(conn, entries, now, ready=ready)
            return queued, ready or []

        # A new alert's first page is the one notification somebody waits for: its few
        # statements run on the loop's own connection (SQLite), and what it queued goes
        # straight to the outbox worker, with no claim read in between.
        queued, ready = await self._db.on_loop(page)
        if ready and self._hand_off is not None:
            self._hand_off(ready)
            queued -= len(ready)
        _log_pages([g for g in groups if g.claimed])
        return queued


def _log_pages(groups: list[_Group]) -> None:
    """A line per group paged; the groups no channel takes (nothing is sent for them) share
    one line when there are several: a burst of thousands of unrouted alerts is one line."""
    nobody = [g for g in groups if not g.channels]
    for group in groups if len(nobody) <= 1 else [g for g in groups if g.channels]:
        log.info(
            "paged %s about %d alert(s) in %s",
            ",".join(group.channels) or "nobody",
            len(group.claimed),
            group.key,
        )
    if len(nobody) > 1:
        log.info(
            "paged nobody about %d alert(s) in %d groups (%s%s)",
            sum(len(g.claimed) for g in nobody),
            len(nobody),
            ", ".join(g.key for g in nobody[:3]),
            ", …" if len(nobody) > 3 else "",
        )


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
