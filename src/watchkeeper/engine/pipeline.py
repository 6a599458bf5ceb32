"""The path of every check result: state machine → history → metrics → alert lifecycle."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from watchkeeper.alerting.check_alerts import CheckAlerts
from watchkeeper.alerting.flap_alerts import FlapTracker
from watchkeeper.alerting.rules import RuleEngine
from watchkeeper.checks.base import Check, CheckConfigBase
from watchkeeper.core.checkstate import CheckState, Transition, apply_result
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.prometheus.service import ServiceMetrics
from watchkeeper.store.results import ResultWriter

log = logging.getLogger(__name__)

HardStateHook = Callable[[CheckConfigBase, Status, Transition | None], None]
"""Told the hard state of a check with a `recovery:` action after each of its results
(and the transition, if the result made one): automatic recovery acts on it."""


class ResultPipeline:
    """Holds the live state of every check and feeds each result through the stages."""

    def __init__(
        self,
        states: dict[str, CheckState],
        writer: ResultWriter,
        alerts: CheckAlerts,
        metrics: ServiceMetrics,
        rules: RuleEngine | None = None,
        flaps: FlapTracker | None = None,
        on_change: Callable[[str], None] = lambda _name: None,
        on_hard_state: HardStateHook | None = None,
    ) -> None:
        self._flaps = flaps
        self._on_hard_state = on_hard_state
        self._on_change = on_change
        self.states = states
        self._rules = rules
        self._writer = writer
        self._alerts = alerts
        self._metrics = metrics
        # Transitions whose alert transaction failed (database down): retried on later results
        # so a DOWN seen during a database blip still pages once the database is back.
        self._unsynced: dict[str, Transition] = {}

    def state_for(self, config: CheckConfigBase, now: datetime) -> CheckState:
        state = self.states.get(config.name)
        if state is None:
            state = self.states[config.name] = CheckState(config.name, Status.UNKNOWN, now)
        return state

    def snapshot(self, name: str) -> CheckState | None:
        return self.states.get(name)

    def forget(self, name: str) -> None:
        """Drop everything held about a deleted check (its stored state goes separately)."""
        self.states.pop(name, None)
        self._unsynced.pop(name, None)
        if self._flaps is not None:
            self._flaps.forget(name)
        self._metrics.forget(name)

    async def record_paused(
        self, check: Check[Any], started_at: datetime, result: CheckResult
    ) -> None:
        """A result of a paused check (a heartbeat's ping): kept in the history and shown as
        the last result, but its hard state, alerts, flapping and rules are left alone."""
        result = check.redacted(result)
        state = self.state_for(check.config, started_at)
        state.last_status = result.status
        state.last_reason = result.reason
        state.last_checked_at = started_at
        self._writer.record(check.config.name, started_at, result)
        self._metrics.count_run(check.config.name, result.status, result.response_time)
        self._on_change(check.config.name)

    async def handle(self, check: Check[Any], started_at: datetime, result: CheckResult) -> None:
        result = check.redacted(result)  # before anything stores, shows or sends it
        config = check.config
        state = self.state_for(config, started_at)
        last_status = state.last_status
        transition = apply_result(
            state, result, started_at, config.failure_threshold, config.success_threshold
        )
        self._writer.record(config.name, started_at, result)
        if self._rules is not None and self._rules.metrics and result.metrics:
            self._rules.observe_result_metrics(config.name, result.metrics, started_at)
        self._metrics.count_run(config.name, result.status, result.response_time)
        if transition is not None or result.status is not last_status:
            self._on_change(config.name)
        if transition is not None:
            self._metrics.observe_state(config.name, state.status)
            log.info(
                "check %s is %s (was %s): %s",
                config.name,
                transition.current.value,
                transition.previous.value,
                result.reason,
            )
            # Only entering or leaving DOWN touches alerts; other changes reach the database
            # with the next result batch (a first-start storm of UNKNOWN→UP must not queue
            # thousands of transactions in front of the probes).
            if Status.DOWN in (transition.previous, transition.current):
                self._unsynced[config.name] = transition
        if self._flaps is not None:
            try:
                await self._flaps.observe(config, result.status, started_at)
            except Exception:
                log.exception("flap detection for %s failed", config.name)
        pending = self._unsynced.get(config.name)
        if pending is not None:
            try:
                await self._alerts.on_transition(pending, state)
            except Exception:
                log.exception("recording the state change of %s failed; will retry", config.name)
            else:
                self._unsynced.pop(config.name, None)
        if config.recovery is not None and self._on_hard_state is not None:
            # After the alert is written: an exhausted recovery escalates that alert.
            try:
                self._on_hard_state(config, state.status, transition)
            except Exception:
                log.exception("automatic recovery of %s failed", config.name)
