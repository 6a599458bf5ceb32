"""Time series for charts: a check's availability and response times, and result metrics.

Ranges are named (`1h`, `24h`, `7d`, `30d`, see `store.rollups.RANGES`); each ends with the
bucket that holds now, and every bucket is listed, empty ones too, so charts line up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from watchkeeper.core.clock import Clock
from watchkeeper.core.errors import Invalid
from watchkeeper.services.checks import CheckService
from watchkeeper.store import result_metrics, rollups
from watchkeeper.store.database import Database
from watchkeeper.store.rollups import SeriesPoint

RANGES: tuple[str, ...] = tuple(rollups.RANGES)
"""The named ranges, shortest first."""
DEFAULT_RANGE = "24h"


@dataclass(frozen=True, slots=True)
class SeriesWindow:
    """The buckets of a named range: from `since` to `until` (the end of the bucket that
    holds now) by `step`."""

    range: str
    since: datetime
    until: datetime
    step: timedelta

    @property
    def step_seconds(self) -> int:
        """The bucket length in whole seconds."""
        return int(self.step.total_seconds())

    @property
    def times(self) -> list[datetime]:
        """Each bucket's start."""
        n = int((self.until - self.since) / self.step)
        return [self.since + i * self.step for i in range(n)]


@dataclass(frozen=True, slots=True)
class Availability:
    """A check's results per bucket, and the share of them up or degraded (0..1; None
    without results) over the whole range."""

    window: SeriesWindow
    uptime: float | None
    points: list[SeriesPoint]


@dataclass(frozen=True, slots=True)
class ValueSeries:
    """Averages per bucket (None where nothing was read), by metric or by check name."""

    window: SeriesWindow
    series: dict[str, list[float | None]]


@dataclass(slots=True)
class SeriesService:
    """Reads the rollups and the stored result metrics, after writing what is buffered."""

    db: Database
    clock: Clock
    checks: CheckService
    flush: Callable[[], Awaitable[None]]

    async def window(self, range_name: str) -> SeriesWindow:
        """The buckets of `range_name` now (the newest results written first, so they
        count). Invalid for a range not in RANGES."""
        if range_name not in rollups.RANGES:
            raise Invalid(f"range: one of {', '.join(RANGES)}", field="range")
        await self.flush()
        since, until, step = rollups.window(range_name, self.clock.now())
        return SeriesWindow(range_name, since, until, step)

    async def availability(self, check: str, range_name: str) -> Availability:
        """The check's results per bucket over the range; NotFound for an unknown check."""
        self.checks.config(check)
        window = await self.window(range_name)
        series = await rollups.load_series(
            self.db, [check], window.since, window.until, window.step
        )
        share = await rollups.uptime(self.db, [check], window.since, window.until)
        return Availability(window, share[check], series[check])

    async def buckets(
        self, checks: Sequence[str], since: datetime, until: datetime, step: timedelta
    ) -> dict[str, list[SeriesPoint]]:
        """Results per bucket of each of `checks` between `since` and `until`, as stored
        (call `flush` first for the newest)."""
        return await rollups.load_series(self.db, list(checks), since, until, step)

    async def check_metrics(self, check: str, range_name: str) -> ValueSeries:
        """Every metric the check's results carry, averaged per bucket; NotFound for an
        unknown check."""
        self.checks.config(check)
        window = await self.window(range_name)
        found = await result_metrics.check_metrics(
            self.db, check, window.since, window.until, window.step
        )
        return ValueSeries(window, found)

    async def metric_by_check(self, metric: str, range_name: str) -> ValueSeries:
        """One metric across every check whose results carry it, averaged per bucket."""
        window = await self.window(range_name)
        found = await result_metrics.metric_by_check(
            self.db, metric, window.since, window.until, window.step
        )
        return ValueSeries(window, found)
