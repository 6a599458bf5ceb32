"""Alert lifecycle for checks: a hard DOWN opens one alert, leaving DOWN resolves it.

Each change is one transaction: the check state, the alert row, its event and the outbox
entries commit together or not at all, so a crash can neither lose a notification nor queue
one for an alert that does not exist.

Dependencies (`depends_on`) suppress: a check failing while something it depends on is DOWN
still gets its alert (visible, marked "suppressed: <dependency> down") but nobody is paged.
When the dependency recovers and the dependent is still DOWN, its alert is paged then.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.alerting.dependencies import DependencyGraph
from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.checkstate import CheckState, Transition
from watchkeeper.domain import Alert, AlertEventKind, AlertStatus, CheckResult, Status
from watchkeeper.notify.payload import alert_payload
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import tables
from watchkeeper.store.database import Database, upsert

log = logging.getLogger(__name__)


def check_labels(config: CheckConfigBase) -> dict[str, str]:
    labels = {"check": config.name, "severity": config.severity.value}
    if config.component:
        labels["component"] = config.component
    return {**config.labels, **labels}


class CheckAlerts:
    """Turns hard transitions of checks into alerts and queued notifications."""

    def __init__(
        self,
        db: Database,
        checks: dict[str, CheckConfigBase],
        channels: Sequence[str],
        on_enqueued: Callable[[], None] = lambda: None,
        states: Mapping[str, CheckState] | None = None,
    ) -> None:
        self._db = db
        self._checks = checks
        self._channels = list(channels)
        self._on_enqueued = on_enqueued
        self._states: Mapping[str, CheckState] = states if states is not None else {}
        self._graph = DependencyGraph({n: list(c.depends_on) for n, c in checks.items()})

    def _routes(self, config: CheckConfigBase) -> list[str]:
        return self._channels if config.notify is None else list(config.notify)

    def _down(self, name: str) -> bool:
        state = self._states.get(name)
        return state is not None and state.status is Status.DOWN

    async def on_transition(self, transition: Transition, state: CheckState) -> Alert | None:
        """Persist the new state and open or resolve the check's alert; return that alert."""
        config = self._checks[transition.check]
        now = transition.at
        async with self._db.begin() as conn:
            await upsert(conn, tables.check_states, [state.as_row()], ["check_name"])
            alert, queued = await self._sync_alert(conn, config, transition)
            if not self._down(config.name):
                queued += await self._release_dependents(conn, config.name, now)
        if queued:
            self._on_enqueued()
        return alert

    async def _sync_alert(
        self, conn: AsyncConnection, config: CheckConfigBase, transition: Transition
    ) -> tuple[Alert | None, int]:
        fingerprint = f"check:{config.name}"
        now = transition.at
        existing = await alert_store.open_alert(conn, fingerprint)
        if transition.current is Status.DOWN:
            if existing is not None:
                return existing, 0  # already open (e.g. before a restart): never a second one
            blocker = self._graph.first_blocker(config.name, self._down)
            alert = Alert(
                id=str(uuid.uuid4()),
                fingerprint=fingerprint,
                name=config.name,
                check=config.name,
                rule=None,
                severity=config.severity,
                status=AlertStatus.FIRING,
                started_at=now,
                resolved_at=None,
                summary=transition.result.reason,
                labels=check_labels(config),
                suppressed_reason=f"suppressed: {blocker} down" if blocker else None,
                notified_at=None if blocker else now,
            )
            await alert_store.insert_alert(conn, alert)
            await alert_store.add_event(
                conn, alert.id, AlertEventKind.FIRING.value, now, comment=alert.summary
            )
            log.info("alert %s firing: %s", alert.name, alert.summary)
            if blocker:
                log.info("alert %s not paged: %s", alert.name, alert.suppressed_reason)
                return alert, 0
            return alert, await self._enqueue(conn, config, alert, AlertEventKind.FIRING, now)
        if existing is None:
            return None, 0
        alert = existing
        await alert_store.mark_resolved(conn, alert, now)
        await alert_store.add_event(
            conn, alert.id, AlertEventKind.RESOLVED.value, now, comment=transition.result.reason
        )
        log.info("alert %s resolved", alert.name)
        if alert.notified_at is None:
            return alert, 0  # nobody was paged for it, so nobody needs the all-clear
        return alert, await self._enqueue(conn, config, alert, AlertEventKind.RESOLVED, now)

    async def _release_dependents(self, conn: AsyncConnection, name: str, now: datetime) -> int:
        """Page the dependents of `name` whose alerts it was suppressing, if nothing else is."""
        queued = 0
        dependents = self._graph.dependents_of(name)
        for alert in await alert_store.suppressed_alerts_of(conn, dependents):
            if alert.check is None or self._graph.first_blocker(alert.check, self._down):
                continue
            await alert_store.mark_notified(conn, alert, now)
            await alert_store.add_event(
                conn, alert.id, "unsuppressed", now, comment=f"{name} recovered"
            )
            log.info("alert %s paged: its dependency %s recovered", alert.name, name)
            config = self._checks.get(alert.check)
            if config is not None:
                queued += await self._enqueue(conn, config, alert, AlertEventKind.FIRING, now)
        return queued

    async def _enqueue(
        self,
        conn: AsyncConnection,
        config: CheckConfigBase,
        alert: Alert,
        kind: AlertEventKind,
        now: datetime,
    ) -> int:
        event = f"alert.{kind.value}"
        payload = alert_payload(alert, event)
        entries = [
            outbox_store.OutboxEntry(channel, f"{alert.id}:{event}", event, payload, alert.id)
            for channel in self._routes(config)
        ]
        await outbox_store.enqueue(conn, entries, now)
        return len(entries)

    async def reconcile(self, states: dict[str, CheckState], now: datetime) -> int:
        """Make open alerts match hard states; return how many were repaired.

        A crash between persisting a state and committing its alert (the result writer may
        flush the state first) would otherwise leave a DOWN check with no alert forever.
        """
        async with self._db.connect() as conn:
            open_checks = await alert_store.open_check_alerts(conn)
        repaired = 0
        for name, state in states.items():
            if name not in self._checks:
                continue
            if (state.status is Status.DOWN) == (name in open_checks):
                continue
            result = CheckResult(state.last_status or state.status, state.last_reason or "")
            transition = Transition(name, Status.UNKNOWN, state.status, now, result)
            try:
                await self.on_transition(transition, state)
            except IntegrityError:
                continue  # another node repaired it first
            repaired += 1
        return repaired
