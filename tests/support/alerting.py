"""Check alerts followed by a dispatcher pass, as the runtime runs them milliseconds apart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from tests.support.clock import FakeClock
from watchkeeper.alerting.check_alerts import CheckAlerts
from watchkeeper.alerting.dispatcher import Dispatcher, build_dispatcher
from watchkeeper.config.loader import Config
from watchkeeper.core.checkstate import CheckState, Transition
from watchkeeper.core.domain import Alert
from watchkeeper.store.database import Database


class DispatchingAlerts:
    def __init__(
        self,
        db: Database,
        config: Config,
        *,
        clock: FakeClock | None = None,
        states: dict[str, CheckState] | None = None,
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        self.clock = clock or FakeClock(datetime(2000, 1, 1).astimezone())
        self.dispatcher: Dispatcher = build_dispatcher(
            db, self.clock, config, states=states, on_enqueued=on_enqueued
        )
        self.alerts = CheckAlerts(db, {c.name: c for c in config.checks})

    def _catch_up(self, at: datetime) -> None:
        if at > self.clock.now():
            self.clock.set(at)

    async def on_transition(self, transition: Transition, state: CheckState) -> Alert | None:
        self._catch_up(transition.at)
        alert = await self.alerts.on_transition(transition, state)
        await self.dispatcher.dispatch_once()
        return alert

    async def reconcile(self, states: dict[str, CheckState], now: datetime) -> int:
        self._catch_up(now)
        repaired = await self.alerts.reconcile(states, now)
        await self.dispatcher.dispatch_once()
        return repaired
