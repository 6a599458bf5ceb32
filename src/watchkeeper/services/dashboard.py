"""What the dashboard's overview shows: rows of checks and the summary above them.

Kept apart from the pages so the overview can be built (and measured, bench/dashboard.py)
without HTTP, and so an event stream renders a row exactly as the page does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.core.changes import ChangeFeed
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import Alert
from watchkeeper.services.alerts import AlertCounts, AlertService
from watchkeeper.services.checks import CheckService
from watchkeeper.services.series import SeriesService
from watchkeeper.services.status import overall_status
from watchkeeper.store.rollups import SeriesPoint

STATES = ("down", "degraded", "unknown", "paused", "up")
"""Display order: what needs attention first."""
SPARK_SPAN = timedelta(hours=24)
SPARK_STEP = timedelta(hours=1)

OVERALL_TEXT = {
    "operational": "All systems operational",
    "degraded": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
}


@dataclass(slots=True)
class CheckLine:
    """One check's row: its state from memory, its last 24 h per hour from the rollups."""

    name: str
    type: str
    status: str
    reason: str
    checked_at: datetime | None
    since: datetime | None
    component: str | None
    points: list[SeriesPoint]
    uptime: float | None


@dataclass(slots=True)
class Summary:
    """The state counts, the open alerts and the headline above the overview."""

    counts: dict[str, int]
    total: int
    open_alerts: list[Alert]
    now: datetime
    overall: str
    """As `GET /api/v1/status` says: operational, degraded, partial_outage, major_outage."""
    alerts: AlertCounts

    @property
    def overall_text(self) -> str:
        return OVERALL_TEXT[self.overall]

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.open_alerts if a.status.value == "firing"]


@dataclass(slots=True)
class DashboardService:
    """The overview's data, and what live updates of open pages need (the change feed and
    how many streams may be open)."""

    clock: Clock
    checks: CheckService
    alerts: AlertService
    series: SeriesService
    changes: ChangeFeed
    max_streams: int
    max_streams_per_owner: int

    def now(self) -> datetime:
        """The time pages are rendered at."""
        return self.clock.now()

    def select(self, state: str | None = None, query: str | None = None) -> list[CheckConfigBase]:
        """The checks in `state` (as shown: `paused` too) whose name, component or type
        holds `query`."""
        configs = list(self.checks.configs.values())
        if state:
            configs = [c for c in configs if self.checks.status(c.name) == state]
        if query:
            needle = query.lower()
            configs = [
                c
                for c in configs
                if needle in c.name or needle in (c.component or "").lower() or needle in c.type
            ]
        return configs

    async def lines(self, configs: list[CheckConfigBase], now: datetime) -> list[CheckLine]:
        """Rows for these checks: state from memory, 24 h per hour and uptime from rollups
        (as stored: flush first for the newest)."""
        step = int(SPARK_STEP.total_seconds())
        until = datetime.fromtimestamp((int(now.timestamp()) // step + 1) * step, UTC)
        since = until - SPARK_SPAN
        series = await self.series.buckets([c.name for c in configs], since, until, SPARK_STEP)
        rows = []
        for config in configs:
            state = self.checks.state(config.name)
            points = series.get(config.name, [])
            count = sum(p.count for p in points)
            rows.append(
                CheckLine(
                    name=config.name,
                    type=config.type,
                    status=self.checks.status(config.name),
                    reason=(state.last_reason or "") if state else "",
                    checked_at=state.last_checked_at if state else None,
                    since=state.since if state else None,
                    component=config.component,
                    points=points,
                    uptime=sum(p.available for p in points) / count if count else None,
                )
            )
        return rows

    async def summary(self, now: datetime) -> Summary:
        """Checks per state, the newest 50 open alerts, and the headline."""
        counts = Counter(self.checks.statuses().values())
        open_alerts, _ = await self.alerts.list_alerts(status="open", limit=50)
        alerts = await self.alerts.counts()
        return Summary(
            counts={s: counts.get(s, 0) for s in STATES},
            total=len(self.checks.configs),
            open_alerts=open_alerts,
            now=now,
            overall=overall_status(counts, Counter(alerts.firing)),
            alerts=alerts,
        )
