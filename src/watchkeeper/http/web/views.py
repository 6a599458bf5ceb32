"""What the dashboard pages show, as the templates take it (from `services.dashboard`).

Kept apart from the routes so the overview can be built (and measured, bench/dashboard.py)
without HTTP, and so an event stream renders a row exactly as the page does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.http.web.sparkline import sparkline
from watchkeeper.services import Services
from watchkeeper.services.dashboard import OVERALL_TEXT, STATES, Summary

__all__ = ["OVERALL_TEXT", "STATES", "CheckRow", "Summary", "check_rows", "summary"]

_ORDER = {s: i for i, s in enumerate(STATES)}


@dataclass(slots=True)
class CheckRow:
    """One row of the overview, as `_check_row.html` renders it."""

    name: str
    type: str
    status: str
    reason: str
    checked_at: datetime | None
    since: datetime | None
    component: str | None
    spark: str
    uptime: float | None


def check_status(services: Services, name: str) -> str:
    """`paused`, `unknown` or the check's hard state."""
    return services.checks.status(name)


async def check_rows(
    services: Services, configs: list[CheckConfigBase], now: datetime
) -> list[CheckRow]:
    """Rows for these checks: state from memory, 24 h sparkline and uptime from rollups."""
    return [
        CheckRow(
            name=line.name,
            type=line.type,
            status=line.status,
            reason=line.reason,
            checked_at=line.checked_at,
            since=line.since,
            component=line.component,
            spark=sparkline(line.points),
            uptime=line.uptime,
        )
        for line in await services.dashboard.lines(configs, now)
    ]


def sort_rows(rows: list[CheckRow]) -> list[CheckRow]:
    """What needs attention first (`STATES` order), then by name."""
    return sorted(rows, key=lambda r: (_ORDER.get(r.status, 9), r.name))


async def summary(services: Services, now: datetime) -> Summary:
    """The state counts, open alerts and headline above the overview."""
    return await services.dashboard.summary(now)


def select_checks(
    services: Services, state: str | None = None, query: str | None = None
) -> list[CheckConfigBase]:
    """The checks in `state` whose name, component or type holds `query`."""
    return services.dashboard.select(state, query)
