"""SeriesService: buckets of named ranges, availability and metrics per check."""

from __future__ import annotations

from datetime import timedelta

import pytest

from watchkeeper.app import Runtime
from watchkeeper.core.domain import CheckResult
from watchkeeper.core.errors import Invalid, NotFound
from watchkeeper.services.series import RANGES


async def test_each_range_lists_every_bucket_up_to_the_one_holding_now(runtime: Runtime) -> None:
    assert RANGES == ("1h", "24h", "7d", "30d")
    window = await runtime.services.series.window("1h")
    assert window.step_seconds == 60 and len(window.times) == 60
    assert window.since <= runtime.clock.now() - timedelta(minutes=59) < window.until
    assert window.until - runtime.clock.now() <= timedelta(minutes=1)
    with pytest.raises(Invalid) as caught:
        await runtime.services.series.window("2h")
    assert caught.value.field == "range"


async def test_availability_counts_results_still_buffered(runtime: Runtime) -> None:
    now = runtime.clock.now()
    runtime.writer.record("web", now, CheckResult.up(metrics={"t": 2.0}, response_time=0.5))
    runtime.writer.record("web", now, CheckResult.down("refused"))
    found = await runtime.services.series.availability("web", "1h")
    assert found.uptime == 0.5
    assert sum(p.count for p in found.points) == 2
    assert len(found.points) == len(found.window.times)

    metrics = await runtime.services.series.check_metrics("web", "1h")
    assert list(metrics.series) == ["t"]
    assert [v for v in metrics.series["t"] if v is not None] == [2.0]
    across = await runtime.services.series.metric_by_check("t", "1h")
    assert list(across.series) == ["web"]


async def test_an_unknown_check_is_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound, match="no check named 'nope'"):
        await runtime.services.series.availability("nope", "24h")
    with pytest.raises(NotFound):
        await runtime.services.series.check_metrics("nope", "24h")
