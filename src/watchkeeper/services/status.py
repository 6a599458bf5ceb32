"""The system as a whole: its status document, the health probes, the Prometheus metrics.

Overall status, from check states and open alerts (silenced ones excepted):

* `major_outage`: a firing critical alert, or half or more of the active checks down;
* `partial_outage`: any check down, or a firing high alert;
* `degraded`: any check degraded, or a firing medium or low alert;
* `operational`: otherwise (unknown and paused checks and info alerts do not count).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from prometheus_client import generate_latest

from watchkeeper.alerting.broken import BrokenObjects
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import Status
from watchkeeper.core.redact import Redactor
from watchkeeper.core.version import __version__
from watchkeeper.engine.scheduler import Scheduler
from watchkeeper.engine.selfwatch import Reading, SelfWatch
from watchkeeper.notify.outbox import OutboxWorker
from watchkeeper.prometheus.service import ServiceMetrics
from watchkeeper.services.alerts import AlertCounts, AlertService
from watchkeeper.services.checks import CheckService
from watchkeeper.store import results as result_store
from watchkeeper.store.database import Database

Overall = Literal["operational", "degraded", "partial_outage", "major_outage"]
STATES = [s.value for s in Status]
_WORST = {"down": 4, "degraded": 3, "unknown": 2, "up": 1, "paused": 0}
OTHER = "other"
"""The component of checks that name none."""
RATE_WINDOW = timedelta(minutes=1)
_RANK = {"pass": 0, "warn": 1, "fail": 2}


def overall_status(states: Mapping[str, int], firing: Mapping[str, int]) -> Overall:
    """The headline, from checks per state and firing (unsilenced) alerts per severity."""
    active = sum(n for state, n in states.items() if state != "paused")
    down = states.get("down", 0)
    if firing.get("critical", 0) or (down and down * 2 >= active):
        return "major_outage"
    if down or firing.get("high", 0):
        return "partial_outage"
    if states.get("degraded", 0) or firing.get("medium", 0) or firing.get("low", 0):
        return "degraded"
    return "operational"


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """The checks of one component: the worst state of them, and how many are in each."""

    name: str
    status: str
    checks: int
    states: dict[str, int]


@dataclass(frozen=True, slots=True)
class Performance:
    """How the service keeps up; None where it cannot be measured now."""

    scheduler_lag_seconds: float | None
    checks_per_second: float | None
    storage_ping_ms: float | None
    storage_error: str | None
    outbox_depth: int | None


@dataclass(frozen=True, slots=True)
class SystemStatus:
    """The whole system in one document (`GET /api/v1/status`)."""

    status: Overall
    at: datetime
    version: str
    started_at: datetime | None
    checks: dict[str, int]
    components: list[ComponentStatus]
    alerts: AlertCounts
    performance: Performance


def _entry(component_type: str, status: str, now: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"componentType": component_type, "status": status, "time": now, **extra}]


def reading_entry(reading: Reading, now: str) -> list[dict[str, Any]]:
    """A self-watch reading as a health document entry."""
    extra: dict[str, Any] = {"observedUnit": reading.unit}
    if reading.value is not None:
        extra["observedValue"] = reading.value
    if reading.output:
        extra["output"] = reading.output
    return _entry(reading.component_type, reading.status, now, **extra)


@dataclass(slots=True)
class StatusService:
    """Reads what the running parts say about themselves; changes nothing."""

    db: Database
    clock: Clock
    checks: CheckService
    alerts: AlertService
    scheduler: Scheduler
    outbox: OutboxWorker
    broken: BrokenObjects
    metrics: ServiceMetrics
    redactor: Redactor
    selfwatch: SelfWatch
    flush: Callable[[], Awaitable[None]]
    """Writes the buffered results, so the newest ones count."""
    is_started: Callable[[], bool]
    started_at: Callable[[], datetime | None]

    async def system_status(self) -> SystemStatus:
        """Checks per state and component, open alerts, performance, and the headline."""
        states = self.checks.statuses()
        per_state = Counter(states.values())
        performance = await self._performance()
        alerts = await self.alerts.counts() if performance.storage_error is None else None
        alerts = alerts or AlertCounts.none()
        return SystemStatus(
            status=overall_status(per_state, alerts.firing),
            at=self.clock.now(),
            version=__version__,
            started_at=self.started_at(),
            checks={s: per_state[s] for s in STATES},
            components=self._components(states),
            alerts=alerts,
            performance=performance,
        )

    def _components(self, states: dict[str, str]) -> list[ComponentStatus]:
        groups: dict[str, Counter[str]] = {}
        for name, state in states.items():
            config = self.checks.config(name)
            groups.setdefault(config.component or OTHER, Counter())[state] += 1
        order = sorted(groups, key=lambda c: (c == OTHER, c))
        return [
            ComponentStatus(
                name=component,
                status=max(groups[component], key=_WORST.__getitem__),
                checks=sum(groups[component].values()),
                states={s: groups[component][s] for s in STATES},
            )
            for component in order
        ]

    async def _performance(self) -> Performance:
        scheduler = self.scheduler
        lag = scheduler.last_lag if scheduler is not None and scheduler.running else None
        ping_ms: float | None = None
        error: str | None = None
        rate: float | None = None
        started = time.perf_counter()
        try:
            await self.db.ping()
            ping_ms = round((time.perf_counter() - started) * 1000, 3)
            await self.flush()
            since = self.clock.now() - RATE_WINDOW
            recent = await result_store.count_since(self.db, since)
            rate = round(recent / RATE_WINDOW.total_seconds(), 3)
        except Exception as exc:
            error = self.redactor(f"{type(exc).__name__}: {exc}")
        return Performance(
            scheduler_lag_seconds=round(lag, 6) if lag is not None else None,
            checks_per_second=rate,
            storage_ping_ms=ping_ms,
            storage_error=error,
            outbox_depth=self.outbox.depth,
        )

    def ready(self) -> bool:
        """Readiness: started, storage migrated and the scheduler running."""
        return self.is_started() and self.db.migrated and self.scheduler.running

    async def health(self) -> dict[str, Any]:
        """The health document (draft-inadarei-api-health-check): `status` is `pass`,
        `warn` or `fail`, the worst of its components' (`checks`)."""
        now = self.clock.now().isoformat().replace("+00:00", "Z")
        checks: dict[str, list[dict[str, Any]]] = {}

        started = time.perf_counter()
        try:
            await self.db.ping()
            checks["storage:responseTime"] = _entry(
                "datastore",
                "pass",
                now,
                observedValue=round((time.perf_counter() - started) * 1000, 3),
                observedUnit="ms",
                componentId=self.db.dialect,
            )
        except Exception as exc:
            checks["storage:responseTime"] = _entry(
                "datastore", "fail", now, output=self.redactor(f"{type(exc).__name__}: {exc}")
            )

        scheduler = self.scheduler
        if scheduler is None or not scheduler.running:
            checks["scheduler:lag"] = _entry(
                "component", "fail", now, output="scheduler not running"
            )
        else:
            lag = scheduler.last_lag
            checks["scheduler:lag"] = _entry(
                "component",
                self.selfwatch.config.scheduler_lag.level(lag),
                now,
                observedValue=round(lag, 4),
                observedUnit="s",
            )

        outbox = self.outbox
        if outbox is None:
            checks["outbox:depth"] = _entry("component", "fail", now, output="outbox not running")
        else:
            depth = outbox.depth
            # The worker counts at the end of a pass; a stuck one keeps its old count, so the
            # self-watch's own count (from the table) wins when it is larger.
            counted = self.selfwatch.readings.get("outbox:depth")
            if counted is not None and counted.value is not None:
                depth = max(depth, int(counted.value))
            status = self.selfwatch.config.outbox_depth.level(depth)
            extra: dict[str, Any] = {
                "observedValue": depth,
                "observedUnit": "notifications",
            }
            if outbox.failed:
                extra["output"] = f"{outbox.failed} notifications failed for good since start"
                status = max(status, "warn", key=_RANK.__getitem__)
            checks["outbox:depth"] = _entry("component", status, now, **extra)

        # The self-watch's latest pass: what the live figures above do not cover.
        for key, reading in self.selfwatch.readings.items():
            checks.setdefault(key, reading_entry(reading, now))

        if broken := self.broken.all():
            # Each is ignored (fail-open) and has its own alert; say which they are.
            shown = "; ".join(f"{b.kind} {b.name}: {b.error}" for b in broken[:20])
            more = f"; and {len(broken) - 20} more" if len(broken) > 20 else ""
            checks["objects:broken"] = _entry(
                "component",
                "warn",
                now,
                observedValue=len(broken),
                observedUnit="objects",
                output=shown + more,
            )

        overall = max((e[0]["status"] for e in checks.values()), key=_RANK.__getitem__)
        return {
            "status": overall,
            "version": __version__.split(".")[0],
            "releaseId": __version__,
            "serviceId": "watchkeeper",
            "description": "Watchkeeper operations monitor",
            "checks": checks,
        }

    async def exposition(self) -> bytes:
        """The service's metrics in the Prometheus text format."""
        self.metrics.outbox_depth.set(self.outbox.depth)
        # Formatting thousands of checks takes a good part of a second: in a worker thread the
        # event loop keeps running checks meanwhile (the collectors copy their figures under a
        # lock, so reading them from another thread is safe).
        return await asyncio.to_thread(generate_latest, self.metrics.registry)
