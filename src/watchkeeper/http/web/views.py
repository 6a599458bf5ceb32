"""What the dashboard pages show, gathered from the runtime and the database.

Kept apart from the routes so the overview can be built (and measured, bench/dashboard.py)
without HTTP, and so an event stream renders a row exactly as the page does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from watchkeeper.core.domain import Alert
from watchkeeper.http.api.status import AlertCountsOut, alert_counts, overall_status
from watchkeeper.http.web.sparkline import sparkline
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import rollups

if TYPE_CHECKING:
    from watchkeeper.app import Runtime
    from watchkeeper.checks.base import CheckConfigBase

STATES = ("down", "degraded", "unknown", "paused", "up")
"""Display order: what needs attention first."""
_ORDER = {s: i for i, s in enumerate(STATES)}
SPARK_SPAN = timedelta(hours=24)
SPARK_STEP = timedelta(hours=1)


@dataclass(slots=True)
class CheckRow:
    name: str
    type: str
    status: str
    reason: str
    checked_at: datetime | None
    since: datetime | None
    component: str | None
    spark: str
    uptime: float | None


OVERALL_TEXT = {
    "operational": "All systems operational",
    "degraded": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
}


@dataclass(slots=True)
class Summary:
    counts: dict[str, int]
    total: int
    open_alerts: list[Alert]
    now: datetime
    overall: str
    """As `GET /api/v1/status` says: operational, degraded, partial_outage, major_outage."""
    alerts: AlertCountsOut

    @property
    def overall_text(self) -> str:
        return OVERALL_TEXT[self.overall]

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.open_alerts if a.status.value == "firing"]


def check_status(rt: Runtime, name: str) -> str:
    state = rt.states.get(name)
    if state is None:
        return "unknown"
    return "paused" if state.paused else state.status.value


async def check_rows(rt: Runtime, configs: list[CheckConfigBase], now: datetime) -> list[CheckRow]:
    """Rows for these checks: state from memory, 24 h sparkline and uptime from rollups."""
    step = int(SPARK_STEP.total_seconds())
    until = datetime.fromtimestamp((int(now.timestamp()) // step + 1) * step, UTC)
    since = until - SPARK_SPAN
    series = await rollups.load_series(rt.db, [c.name for c in configs], since, until, SPARK_STEP)
    states = rt.states
    rows = []
    for config in configs:
        state = states.get(config.name)
        points = series.get(config.name, [])
        count = sum(p.count for p in points)
        rows.append(
            CheckRow(
                name=config.name,
                type=config.type,
                status=check_status(rt, config.name),
                reason=(state.last_reason or "") if state else "",
                checked_at=state.last_checked_at if state else None,
                since=state.since if state else None,
                component=config.component,
                spark=sparkline(points),
                uptime=sum(p.available for p in points) / count if count else None,
            )
        )
    return rows


def sort_rows(rows: list[CheckRow]) -> list[CheckRow]:
    return sorted(rows, key=lambda r: (_ORDER.get(r.status, 9), r.name))


async def summary(rt: Runtime, now: datetime) -> Summary:
    counts = Counter(check_status(rt, name) for name in rt.check_configs)
    open_alerts, _ = await alert_store.list_alerts(rt.db, status="open", limit=50)
    alerts = await alert_counts(rt)
    return Summary(
        counts={s: counts.get(s, 0) for s in STATES},
        total=len(rt.check_configs),
        open_alerts=open_alerts,
        now=now,
        overall=overall_status(counts, Counter(alerts.firing)),
        alerts=alerts,
    )


def select_checks(
    rt: Runtime, state: str | None = None, query: str | None = None
) -> list[CheckConfigBase]:
    configs = list(rt.check_configs.values())
    if state:
        configs = [c for c in configs if check_status(rt, c.name) == state]
    if query:
        needle = query.lower()
        configs = [
            c
            for c in configs
            if needle in c.name or needle in (c.component or "").lower() or needle in c.type
        ]
    return configs
