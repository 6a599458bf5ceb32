"""Alerts from checks: a hard DOWN opens one alert, leaving DOWN resolves it.

Each change is one transaction: the check state and the alert row with its event commit
together. Who is notified, and when, is the dispatcher's decision: it reads the rows, so a
crash between the two loses nothing (the dispatcher finds the alert un-notified on start).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from watchkeeper.alerting import lifecycle
from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.core.checkstate import CheckState, Transition
from watchkeeper.core.domain import Alert, CheckResult, Status
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import results as result_store
from watchkeeper.store.database import Database
from watchkeeper.store.errors import is_conflict

log = logging.getLogger(__name__)


def check_labels(config: CheckConfigBase) -> dict[str, str]:
    labels = {"check": config.name, "severity": config.severity.value}
    if config.component:
        labels["component"] = config.component
    return {**config.labels, **labels}


def check_fingerprint(name: str) -> str:
    return f"check:{name}"


class CheckAlerts:
    """Turns hard transitions of checks into alert lifecycle changes."""

    def __init__(
        self,
        db: Database,
        checks: dict[str, CheckConfigBase],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._checks = checks
        self._on_change = on_change

    async def on_transition(self, transition: Transition, state: CheckState) -> Alert | None:
        """Persist the new state and open or resolve the check's alert; return that alert."""
        config = self._checks[transition.check]
        now = transition.at
        alert: Alert | None
        async with self._db.begin() as conn:
            await result_store.save_state(conn, state.as_row())
            if transition.current is Status.DOWN:
                spec = lifecycle.AlertSpec(
                    fingerprint=check_fingerprint(config.name),
                    name=config.name,
                    severity=config.severity,
                    summary=transition.result.reason,
                    labels=check_labels(config),
                    source="check",
                    check=config.name,
                    escalation_policy=config.escalation,
                )
                alert, created = await lifecycle.fire(conn, spec, now)
                if created:
                    log.info("alert %s firing: %s", alert.name, alert.summary)
            else:
                alert = await lifecycle.resolve(
                    conn, check_fingerprint(config.name), now, comment=transition.result.reason
                )
                if alert is not None:
                    log.info("alert %s resolved", alert.name)
        # Wake the dispatcher on every change: a recovery may also release dependents.
        self._on_change()
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
            except Exception as exc:
                if not is_conflict(exc):
                    raise
                continue  # another node repaired it first
            repaired += 1
        return repaired
