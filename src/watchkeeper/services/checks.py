"""Checks: what each one is and how it stands; pause, resume and run one now."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watchkeeper.alerting.broken import BrokenObjects
from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.core.changes import ChangeFeed, check_key
from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.clock import Clock
from watchkeeper.core.errors import Conflict, NotFound
from watchkeeper.engine.heartbeat.monitor import HeartbeatMonitor
from watchkeeper.engine.pipeline import ResultPipeline
from watchkeeper.engine.scheduler import Scheduler
from watchkeeper.store import results as result_store
from watchkeeper.store.database import Database


@dataclass(frozen=True, slots=True)
class LastResultView:
    """The newest result of a check, whatever its hard state."""

    status: str
    reason: str | None
    checked_at: datetime | None


@dataclass(frozen=True, slots=True)
class CheckView:
    """One check as the API shows it: its configuration and where it stands now."""

    name: str
    type: str
    description: str | None
    status: str
    since: datetime | None
    last_result: LastResultView | None
    interval_seconds: float
    timeout_seconds: float
    failure_threshold: int
    success_threshold: int
    severity: str
    component: str | None
    labels: dict[str, str]
    depends_on: list[str]
    enabled: bool
    source: str
    ping_url: str | None
    last_ping_at: datetime | None
    broken: str | None


@dataclass(frozen=True, slots=True)
class CheckChange:
    """What pausing, resuming or running a check did: its status after, and whether a run
    was queued."""

    check: str
    status: str
    queued: bool = False


@dataclass(slots=True)
class CheckService:
    """The checks of the running configuration (from the file and the API)."""

    db: Database
    clock: Clock
    configs: Mapping[str, CheckConfigBase]
    """Every check by name (the runtime's own dict: API-made checks appear as they are made)."""
    states: Mapping[str, CheckState]
    pipeline: ResultPipeline
    heartbeats: HeartbeatMonitor
    scheduler: Scheduler
    changes: ChangeFeed
    broken: BrokenObjects
    flush: Callable[[], Awaitable[None]]
    """Writes the buffered results, so the newest ones are read back."""
    base_url: str
    is_managed: Callable[[str], bool] = field(default=lambda _name: False)
    """Whether a check was made over the API (else it comes from the config file)."""

    # -- reading --------------------------------------------------------------------------

    def config(self, name: str) -> CheckConfigBase:
        """The check named `name`; NotFound if there is none."""
        config = self.configs.get(name)
        if config is None:
            raise NotFound(f"no check named {name!r}")
        return config

    def state(self, name: str) -> CheckState | None:
        """The check's state in memory (None before its first result)."""
        return self.states.get(name)

    def status(self, name: str) -> str:
        """`paused`, `unknown` (no state yet), or the check's hard state."""
        state = self.states.get(name)
        if state is None:
            return "unknown"
        return "paused" if state.paused else state.status.value

    def statuses(self) -> dict[str, str]:
        """`status` of every check, by name."""
        return {name: self.status(name) for name in self.configs}

    def view(self, config: CheckConfigBase) -> CheckView:
        """`config` with its state, heartbeat record and breakage, as the API shows it."""
        state = self.states.get(config.name)
        last = None
        if state is not None and state.last_status is not None:
            last = LastResultView(
                status=state.last_status.value,
                reason=state.last_reason,
                checked_at=state.last_checked_at,
            )
        record = self.heartbeats.record(config.name)
        return CheckView(
            name=config.name,
            type=config.type,
            description=config.description,
            status=self.status(config.name),
            since=state.since if state else None,
            last_result=last,
            interval_seconds=config.interval.total_seconds(),
            timeout_seconds=config.timeout.total_seconds(),
            failure_threshold=config.failure_threshold,
            success_threshold=config.success_threshold,
            severity=config.severity.value,
            component=config.component,
            labels=config.labels,
            depends_on=config.depends_on,
            enabled=config.enabled,
            source="api" if self.is_managed(config.name) else "config",
            ping_url=f"{self.base_url}/ping/{record.uuid}" if record else None,
            last_ping_at=record.last_ping_at if record else None,
            broken=self.broken.error("heartbeat", config.name)
            or self.broken.error("check", config.name),
        )

    def list_checks(
        self,
        *,
        state: str | None = None,
        component: str | None = None,
        labels: Iterable[tuple[str, str]] = (),
    ) -> list[CheckView]:
        """Every check in configuration order, those with all of `labels` (key, value), in
        `state` and of `component` when given."""
        wanted = list(labels)
        items = [
            self.view(c)
            for c in self.configs.values()
            if all(c.labels.get(key) == value for key, value in wanted)
        ]
        if state:
            items = [c for c in items if c.status == state]
        if component:
            items = [c for c in items if c.component == component]
        return items

    def get(self, name: str) -> CheckView:
        """One check as the API shows it; NotFound if there is none."""
        return self.view(self.config(name))

    async def history(self, name: str, limit: int = 100) -> list[Any]:
        """The check's newest `limit` stored results, newest first (buffered ones too)."""
        self.config(name)
        await self.flush()
        return await result_store.recent_results(self.db, name, limit)

    # -- acting ---------------------------------------------------------------------------

    async def pause(self, name: str) -> CheckChange:
        """Stop running the check until resumed (the scheduler asks before each run)."""
        return await self._set_paused(name, True)

    async def resume(self, name: str) -> CheckChange:
        """Run the check again; a heartbeat's deadline restarts from now."""
        return await self._set_paused(name, False)

    async def _set_paused(self, name: str, paused: bool) -> CheckChange:
        config = self.config(name)
        now = self.clock.now()
        state = self.pipeline.state_for(config, now)
        if state.paused and not paused and config.push:
            # Before the flag clears, so the deadline never sees the time spent paused.
            await self.heartbeats.resume(name, now)
        state.paused = paused
        async with self.db.begin() as conn:
            await result_store.save_state(conn, state.as_row())
        self.changes.publish(check_key(name))
        return CheckChange(check=name, status="paused" if paused else state.status.value)

    def run_now(self, name: str) -> CheckChange:
        """Queue a run of the check now (its schedule is kept). Conflict for a push check
        (it runs when pinged) and one not scheduled (disabled, or not started)."""
        config = self.config(name)
        if config.push:
            raise Conflict("a push check runs when its job pings it")
        if not self.scheduler.run_now(name):
            raise Conflict("the check is not scheduled (disabled or not started)")
        state = self.states.get(name)
        return CheckChange(
            check=name, status=state.status.value if state else "unknown", queued=True
        )
