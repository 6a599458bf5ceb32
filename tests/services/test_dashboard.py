"""DashboardService: the overview's rows and summary."""

from __future__ import annotations

from watchkeeper.app import Runtime
from watchkeeper.core.domain import CheckResult


async def test_select_filters_by_shown_state_and_by_text(runtime: Runtime) -> None:
    dashboard = runtime.services.dashboard
    await runtime.services.checks.pause("job")
    assert [c.name for c in dashboard.select()] == ["web", "job"]
    assert [c.name for c in dashboard.select("paused")] == ["job"]
    assert [c.name for c in dashboard.select("unknown")] == ["web"]
    assert [c.name for c in dashboard.select(query="FRONT")] == ["web"]
    assert [c.name for c in dashboard.select(query="heart")] == ["job"]


async def test_lines_carry_state_and_the_last_day_per_hour(runtime: Runtime) -> None:
    now = runtime.clock.now()
    runtime.writer.record("web", now, CheckResult.up())
    runtime.writer.record("web", now, CheckResult.down("refused"))
    await runtime.writer.flush()
    web, job = await runtime.services.dashboard.lines(list(runtime.check_configs.values()), now)
    assert (web.name, web.status, web.component, web.uptime) == ("web", "unknown", "frontend", 0.5)
    assert len(web.points) == 24 and sum(p.count for p in web.points) == 2
    assert (job.name, job.uptime) == ("job", None)


async def test_the_summary_counts_checks_and_lists_open_alerts(runtime: Runtime) -> None:
    await runtime.services.checks.pause("web")
    [alert] = await runtime.services.alerts.ingest({"name": "disk", "severity": "high"})
    summary = await runtime.services.dashboard.summary(runtime.clock.now())
    assert summary.counts == {"down": 0, "degraded": 0, "unknown": 1, "paused": 1, "up": 0}
    assert summary.total == 2
    assert [a.id for a in summary.firing] == [alert.id]
    assert (summary.overall, summary.overall_text) == ("partial_outage", "Partial outage")
    assert summary.alerts.firing["high"] == 1
