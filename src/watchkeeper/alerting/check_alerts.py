"""Alert lifecycle for checks: a hard DOWN opens one alert, leaving DOWN resolves it.

Each change is one transaction: the check state, the alert row, its event and the outbox
entries commit together or not at all, so a crash can neither lose a notification nor queue
one for an alert that does not exist.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError

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
    ) -> None:
        self._db = db
        self._checks = checks
        self._channels = list(channels)
        self._on_enqueued = on_enqueued

    def _routes(self, config: CheckConfigBase) -> list[str]:
        return self._channels if config.notify is None else list(config.notify)

    async def on_transition(self, transition: Transition, state: CheckState) -> Alert | None:
        """Persist the new state and open or resolve the check's alert; return that alert."""
        config = self._checks[transition.check]
        fingerprint = f"check:{config.name}"
        now = transition.at
        queued = False
        async with self._db.begin() as conn:
            await upsert(conn, tables.check_states, [state.as_row()], ["check_name"])
            existing = await alert_store.open_alert(conn, fingerprint)
            if transition.current is Status.DOWN:
                if existing is not None:
                    return existing  # already open (e.g. before a restart): never a second one
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
                )
                await alert_store.insert_alert(conn, alert)
                kind = AlertEventKind.FIRING
            elif existing is not None:
                alert = existing
                await alert_store.mark_resolved(conn, alert, now)
                kind = AlertEventKind.RESOLVED
            else:
                return None
            await alert_store.add_event(conn, alert.id, kind.value, now, comment=alert.summary)
            event = f"alert.{kind.value}"
            payload = alert_payload(alert, event)
            entries = [
                outbox_store.OutboxEntry(channel, f"{alert.id}:{event}", event, payload, alert.id)
                for channel in self._routes(config)
            ]
            await outbox_store.enqueue(conn, entries, now)
            queued = bool(entries)
        if queued:
            self._on_enqueued()
        log.info("alert %s %s: %s", alert.name, kind.value, alert.summary)
        return alert

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
