"""`GET /api/v1/status`: the whole system in one document, for dashboards and scripts.

Overall status, from check states and open alerts (silenced ones excepted):

* `major_outage`: a firing critical alert, or half or more of the active checks down;
* `partial_outage`: any check down, or a firing high alert;
* `degraded`: any check degraded, or a firing medium or low alert;
* `operational`: otherwise (unknown and paused checks and info alerts do not count).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from watchkeeper.app import Runtime
from watchkeeper.core.domain import Severity, Status
from watchkeeper.core.version import __version__
from watchkeeper.http.deps import get_runtime
from watchkeeper.http.roles import Role, require
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import results as result_store

router = APIRouter(prefix="/api/v1", tags=["status"], dependencies=[Depends(require(Role.VIEWER))])

Overall = Literal["operational", "degraded", "partial_outage", "major_outage"]
STATES = [s.value for s in Status]
SEVERITIES = [s.value for s in Severity]
_WORST = {"down": 4, "degraded": 3, "unknown": 2, "up": 1, "paused": 0}
OTHER = "other"
"""The component of checks that name none."""
RATE_WINDOW = timedelta(minutes=1)


class ComponentOut(BaseModel):
    name: str
    status: str = Field(
        description="the worst state of its checks: down > degraded > unknown > up > paused"
    )
    checks: int
    states: dict[str, int]
    """Checks in each state (every state listed)."""


class PerformanceOut(BaseModel):
    scheduler_lag_seconds: float | None
    """How late the latest check run started; null when the scheduler is not running."""
    checks_per_second: float | None
    """Results recorded over the last minute, per second."""
    storage_ping_ms: float | None
    """A trivial query's round trip; null when storage does not answer."""
    storage_error: str | None = None
    outbox_depth: int | None
    """Notifications queued and not yet delivered."""


class AlertCountsOut(BaseModel):
    """Open alerts by severity (every severity listed)."""

    firing: dict[str, int]
    """Firing, neither acknowledged nor silenced."""
    acknowledged: dict[str, int]
    silenced: dict[str, int]
    """Open and muted: matched by a silence, or suppressed (maintenance, a failing dependency)."""


class StatusOut(BaseModel):
    status: Overall
    at: datetime
    version: str
    started_at: datetime | None
    """When this process started its checks (None while starting)."""
    checks: dict[str, int]
    """Checks in each state (every state listed)."""
    components: list[ComponentOut]
    """By name; checks without a component are under "other", listed last."""
    alerts: AlertCountsOut
    performance: PerformanceOut


def overall_status(states: Counter[str], firing: Counter[str]) -> Overall:
    """The headline, from checks per state and firing (unsilenced) alerts per severity."""
    active = sum(n for state, n in states.items() if state != "paused")
    down = states["down"]
    if firing["critical"] or (down and down * 2 >= active):
        return "major_outage"
    if down or firing["high"]:
        return "partial_outage"
    if states["degraded"] or firing["medium"] or firing["low"]:
        return "degraded"
    return "operational"


def _check_states(rt: Runtime) -> dict[str, str]:
    states = rt.states
    found = {}
    for name in rt.check_configs:
        state = states.get(name)
        found[name] = (
            "paused" if state and state.paused else state.status.value if state else "unknown"
        )
    return found


def _components(rt: Runtime, states: dict[str, str]) -> list[ComponentOut]:
    groups: dict[str, Counter[str]] = {}
    for name, state in states.items():
        config = rt.check_configs[name]
        groups.setdefault(config.component or OTHER, Counter())[state] += 1
    order = sorted(groups, key=lambda c: (c == OTHER, c))
    return [
        ComponentOut(
            name=component,
            status=max(groups[component], key=_WORST.__getitem__),
            checks=sum(groups[component].values()),
            states={s: groups[component][s] for s in STATES},
        )
        for component in order
    ]


async def alert_counts(rt: Runtime) -> AlertCountsOut:
    """Open alerts by state (silenced: muted by a silence or suppressed) and severity."""
    async with rt.db.connect() as conn:
        rows = await alert_store.open_counts(conn)
    counts: dict[str, Counter[str]] = {k: Counter() for k in ("firing", "acknowledged", "silenced")}
    for status, severity, is_muted, n in rows:
        kind = "silenced" if is_muted else status
        if kind in counts:
            counts[kind][severity] += int(n)
    return AlertCountsOut(**{kind: {s: c[s] for s in SEVERITIES} for kind, c in counts.items()})


async def _performance(rt: Runtime) -> PerformanceOut:
    scheduler = rt.scheduler
    lag = scheduler.last_lag if scheduler is not None and scheduler.running else None
    ping_ms: float | None = None
    error: str | None = None
    rate: float | None = None
    started = time.perf_counter()
    try:
        await rt.db.ping()
        ping_ms = round((time.perf_counter() - started) * 1000, 3)
        await rt.writer.flush()
        since = rt.clock.now() - RATE_WINDOW
        recent = await result_store.count_since(rt.db, since)
        rate = round(recent / RATE_WINDOW.total_seconds(), 3)
    except Exception as exc:
        error = rt.redactor(f"{type(exc).__name__}: {exc}")
    return PerformanceOut(
        scheduler_lag_seconds=round(lag, 6) if lag is not None else None,
        checks_per_second=rate,
        storage_ping_ms=ping_ms,
        storage_error=error,
        outbox_depth=rt.outbox.depth,
    )


@router.get(
    "/status",
    response_model=StatusOut,
    summary="System status: checks, components, alerts, performance",
)
async def system_status(rt: Runtime = Depends(get_runtime)) -> StatusOut:
    states = _check_states(rt)
    per_state = Counter(states.values())
    performance = await _performance(rt)
    if performance.storage_error is None:
        alerts = await alert_counts(rt)
    else:
        empty = {s: 0 for s in SEVERITIES}
        alerts = AlertCountsOut(firing=empty, acknowledged=empty, silenced=empty)
    firing = Counter(alerts.firing)
    return StatusOut(
        status=overall_status(per_state, firing),
        at=rt.clock.now(),
        version=__version__,
        started_at=rt.started_at,
        checks={s: per_state[s] for s in STATES},
        components=_components(rt, states),
        alerts=alerts,
        performance=performance,
    )
