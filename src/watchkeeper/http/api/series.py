"""Time series for charts: a check's availability and response times, and result metrics.

Ranges are named (`1h`, `24h`, `7d`, `30d`, see `store.rollups.RANGES`); each ends with the
bucket that holds now, and every bucket is listed, empty ones too, so charts line up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Role, require
from watchkeeper.services import Services
from watchkeeper.services.series import SeriesWindow

router = APIRouter(prefix="/api/v1", tags=["series"], dependencies=[Depends(require(Role.VIEWER))])

RangeName = Literal["1h", "24h", "7d", "30d"]
RangeQuery = Annotated[
    RangeName,
    Query(alias="range", description="1h (1-minute steps), 24h (5 min), 7d (1 h), 30d (6 h)"),
]


class Window(BaseModel):
    range: RangeName
    since: datetime
    """Start of the first bucket."""
    until: datetime
    """End of the last bucket (the one holding now)."""
    step_seconds: int


class PointOut(BaseModel):
    t: datetime
    """Bucket start."""
    count: int
    """Results in the bucket."""
    uptime: float | None = Field(description="% of results up or degraded; null when empty")
    avg_response_time: float | None
    """Seconds, over the results that measured one."""
    max_response_time: float | None


class CheckSeriesOut(Window):
    check: str
    uptime: float | None = Field(description="% of the range's results up or degraded")
    points: list[PointOut]


class ValuePoint(BaseModel):
    t: datetime
    value: float | None
    """The average of the bucket's readings; null when there were none."""


class MetricSeries(BaseModel):
    metric: str
    points: list[ValuePoint]


class CheckMetricsOut(Window):
    check: str
    series: list[MetricSeries]
    """One series per metric the check's results carry, by name."""


class CheckSeries(BaseModel):
    check: str
    points: list[ValuePoint]


class MetricAcrossChecksOut(Window):
    metric: str
    series: list[CheckSeries]
    """One series per check whose results carry the metric, by check name."""


def _percent(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 4)


def _window(window: SeriesWindow) -> dict[str, object]:
    return {
        "range": window.range,
        "since": window.since,
        "until": window.until,
        "step_seconds": window.step_seconds,
    }


def _points(times: list[datetime], values: Sequence[float | None]) -> list[ValuePoint]:
    return [ValuePoint(t=t, value=v) for t, v in zip(times, values, strict=True)]


@router.get(
    "/checks/{name}/series",
    response_model=CheckSeriesOut,
    summary="A check's availability and response times over a range, per bucket",
)
async def check_series(
    name: str, range_name: RangeQuery = "24h", services: Services = Depends(get_services)
) -> CheckSeriesOut:
    found = await services.series.availability(name, range_name)
    return CheckSeriesOut.model_validate(
        {
            **_window(found.window),
            "check": name,
            "uptime": _percent(found.uptime),
            "points": [
                PointOut(
                    t=p.t,
                    count=p.count,
                    uptime=_percent(p.uptime),
                    avg_response_time=p.avg_response_time,
                    max_response_time=p.max_response_time,
                )
                for p in found.points
            ],
        }
    )


@router.get(
    "/checks/{name}/metrics",
    response_model=CheckMetricsOut,
    summary="The metrics a check's results carry, averaged per bucket over a range",
)
async def check_metrics(
    name: str, range_name: RangeQuery = "24h", services: Services = Depends(get_services)
) -> CheckMetricsOut:
    found = await services.series.check_metrics(name, range_name)
    times = found.window.times
    return CheckMetricsOut.model_validate(
        {
            **_window(found.window),
            "check": name,
            "series": [
                MetricSeries(metric=metric, points=_points(times, values))
                for metric, values in found.series.items()
            ],
        }
    )


@router.get(
    "/metrics/series",
    response_model=MetricAcrossChecksOut,
    summary="One metric across every check whose results carry it, averaged per bucket",
)
async def metric_series(
    name: Annotated[
        str,
        Query(
            min_length=1,
            max_length=255,
            pattern=r"^[^\x00]*$",
            description="metric name, e.g. system.cpu.percent",
        ),
    ],
    range_name: RangeQuery = "24h",
    services: Services = Depends(get_services),
) -> MetricAcrossChecksOut:
    found = await services.series.metric_by_check(name, range_name)
    times = found.window.times
    return MetricAcrossChecksOut.model_validate(
        {
            **_window(found.window),
            "metric": name,
            "series": [
                CheckSeries(check=check, points=_points(times, values))
                for check, values in found.series.items()
            ],
        }
    )
