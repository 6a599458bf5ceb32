"""StatusService: the status document, the probes, the metrics exposition."""

from __future__ import annotations

from collections import Counter

from watchkeeper.app import Runtime
from watchkeeper.services.status import overall_status


async def test_the_status_groups_checks_by_component_and_counts_open_alerts(
    runtime: Runtime,
) -> None:
    await runtime.services.checks.pause("job")
    status = await runtime.services.status.system_status()
    assert status.status == "operational"
    assert status.at == runtime.clock.now() and status.started_at == runtime.started_at
    assert status.checks == {"up": 0, "down": 0, "degraded": 0, "unknown": 1, "paused": 1}
    assert [(c.name, c.status, c.checks) for c in status.components] == [
        ("frontend", "unknown", 1),
        ("other", "paused", 1),
    ]
    assert status.performance.storage_error is None
    assert status.performance.storage_ping_ms is not None
    assert sum(status.alerts.firing.values()) == 0


async def test_a_firing_critical_alert_is_a_major_outage_until_acknowledged(
    runtime: Runtime,
) -> None:
    alerts = runtime.services.alerts
    [alert] = await alerts.ingest({"name": "db", "severity": "critical"})
    status = await runtime.services.status.system_status()
    assert (status.status, status.alerts.firing["critical"]) == ("major_outage", 1)
    await alerts.acknowledge(alert.id, "ann")
    status = await runtime.services.status.system_status()
    assert status.status == "operational"
    assert status.alerts.acknowledged["critical"] == 1


def test_overall_status_from_states_and_firing_severities() -> None:
    def overall(states: dict[str, int], firing: dict[str, int] | None = None) -> str:
        return overall_status(Counter(states), Counter(firing or {}))

    assert overall({"up": 3, "paused": 5}) == "operational"
    assert overall({"up": 3, "down": 1}) == "partial_outage"
    assert overall({"up": 1, "down": 1, "paused": 9}) == "major_outage"
    assert overall({"up": 3, "degraded": 1}) == "degraded"
    assert overall({"up": 3}, {"low": 1}) == "degraded"
    assert overall({"up": 3}, {"high": 1}) == "partial_outage"
    assert overall({"up": 3}, {"critical": 1}) == "major_outage"
    assert overall({"up": 3}, {"info": 4}) == "operational"


async def test_ready_and_health_follow_the_running_parts(runtime: Runtime) -> None:
    status = runtime.services.status
    assert status.ready()
    health = await status.health()
    assert health["status"] == "pass"
    assert set(health["checks"]) == {"storage:responseTime", "scheduler:lag", "outbox:depth"}
    assert health["checks"]["storage:responseTime"][0]["componentId"] == "sqlite"

    # Not the dispatcher's own name: its next pass would replace what it found.
    runtime.broken.update("a test", {("silence", "s1"): "bad regex"}, runtime.clock.now())
    health = await status.health()
    assert health["status"] == "warn"
    assert health["checks"]["objects:broken"][0]["output"] == "silence s1: bad regex"

    await runtime.scheduler.stop()
    assert not status.ready()
    health = await status.health()
    assert health["status"] == "fail"
    assert health["checks"]["scheduler:lag"][0]["output"] == "scheduler not running"


async def test_the_exposition_is_prometheus_text_with_the_outbox_depth_current(
    runtime: Runtime,
) -> None:
    runtime.outbox.depth = 7
    text = (await runtime.services.status.exposition()).decode()
    assert "watchkeeper_outbox_depth 7.0" in text
