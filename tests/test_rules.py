"""Metric rules: `> 80 for 5m`, several levels on one alert, keep_firing_for, staleness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.support.auth import admin_headers
from tests.support.clock import FakeClock
from tests.support.service import Service, running
from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.alerting.rules import RuleEngine, parse_series
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config, ConfigError, parse_config
from watchkeeper.core.domain import Severity
from watchkeeper.http.factory import create_app
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Database
from watchkeeper.store.rule_pending import load_pending

T0 = datetime(2026, 8, 3, 12, 0, tzinfo=UTC)
HOST = {"check": "host"}


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


def rule(**fields: Any) -> RuleConfig:
    base = {
        "name": "high-cpu",
        "metric": "system.cpu.percent",
        "op": ">",
        "threshold": 80,
        "for": "5m",
    }
    return RuleConfig.model_validate({**base, **fields})


class Engine:
    def __init__(self, db: Database, *rules: RuleConfig, minutes: float = 0) -> None:
        self.db = db
        self.clock = FakeClock(T0 + timedelta(minutes=minutes))
        self.engine = RuleEngine(db, list(rules), self.clock)

    async def sample(self, minutes: float, value: float, labels: dict[str, str] = HOST) -> None:
        self.clock.set(T0 + timedelta(minutes=minutes))
        self.engine.observe("system.cpu.percent", labels, value, self.clock.now())
        await self.engine.evaluate()

    async def at(self, minutes: float) -> None:
        self.clock.set(T0 + timedelta(minutes=minutes))
        await self.engine.evaluate()

    def state(self) -> str:
        return str(self.series()["state"])

    def series(self) -> dict[str, Any]:
        (rule_view,) = self.engine.snapshot()
        (series,) = rule_view["series"]
        return dict(series)

    async def open_alerts(self) -> list[Any]:
        return (await alert_store.list_alerts(self.db, status="open"))[0]


async def test_a_value_above_threshold_is_pending_then_fires_after_for_then_resolves(
    db: Database,
) -> None:
    e = Engine(db, rule())
    await e.sample(0, 90)
    assert e.state() == "pending" and await e.open_alerts() == []
    await e.sample(4, 91)
    assert e.state() == "pending"
    await e.sample(5, 92)
    assert e.state() == "firing"
    (alert,) = await e.open_alerts()
    assert alert.rule == "high-cpu" and alert.source == "rule"
    assert alert.labels == {"check": "host", "rule": "high-cpu", "severity": "medium"}
    assert alert.summary == 'system.cpu.percent{check="host"} is 92 (> 80 for 5m)'
    await e.sample(6, 70)
    assert e.state() == "inactive" and await e.open_alerts() == []
    alerts, total = await alert_store.list_alerts(db)
    assert total == 1 and alerts[0].resolved_at == T0 + timedelta(minutes=6)


async def test_for_elapses_on_the_clock_without_a_new_sample(db: Database) -> None:
    e = Engine(db, rule())
    await e.sample(0, 90)
    assert await e.engine.evaluate() == T0 + timedelta(minutes=5)
    await e.at(5)
    assert e.state() == "firing"


async def test_a_four_minute_spike_never_fires(db: Database) -> None:
    e = Engine(db, rule())
    for minute in range(5):
        await e.sample(minute, 95)
    await e.sample(4.9, 60)
    await e.at(30)
    assert await alert_store.list_alerts(db) == ([], 0)


async def test_several_levels_escalate_and_de_escalate_one_alert(db: Database) -> None:
    e = Engine(
        db, rule(threshold=None, thresholds={"warning": 80, "critical": 95}, **{"for": "0s"})
    )
    await e.sample(0, 85)
    (alert,) = await e.open_alerts()
    assert alert.severity is Severity.MEDIUM
    await e.sample(1, 97)
    (escalated,) = await e.open_alerts()
    assert escalated.id == alert.id and escalated.severity is Severity.CRITICAL
    await e.sample(2, 85)
    (back,) = await e.open_alerts()
    assert back.id == alert.id and back.severity is Severity.MEDIUM
    _, total = await alert_store.list_alerts(db)
    assert total == 1


async def test_keep_firing_for_holds_the_alert_through_a_brief_dip(db: Database) -> None:
    e = Engine(db, rule(**{"for": "0s", "keep_firing_for": "2m"}))
    await e.sample(0, 90)
    await e.sample(1, 70)
    assert len(await e.open_alerts()) == 1
    await e.sample(2, 90)  # back above: the dip is forgotten
    await e.sample(3, 70)
    await e.at(4.9)
    assert len(await e.open_alerts()) == 1
    await e.at(5)
    assert await e.open_alerts() == []


async def test_a_series_that_stops_reporting_resolves_after_stale_after(db: Database) -> None:
    e = Engine(db, rule(**{"for": "0s", "stale_after": "5m"}))
    await e.sample(0, 90)
    assert len(await e.open_alerts()) == 1
    await e.at(5)  # a sample exactly stale_after old still counts
    assert len(await e.open_alerts()) == 1
    await e.at(5.01)
    assert await e.open_alerts() == []


async def test_each_series_is_its_own_alert_and_matchers_filter_series(db: Database) -> None:
    e = Engine(db, rule(**{"for": "0s"}, matchers=["check=~web.*"]))
    await e.sample(0, 90, {"check": "web1"})
    await e.sample(0, 90, {"check": "web2"})
    await e.sample(0, 90, {"check": "db1"})
    assert sorted(a.labels["check"] for a in await e.open_alerts()) == ["web1", "web2"]


async def test_open_rule_alerts_are_restored_and_resolve_when_the_series_clears(
    db: Database,
) -> None:
    first = Engine(db, rule(**{"for": "0s"}))
    await first.sample(0, 90)
    second = Engine(db, rule(**{"for": "0s"}))
    await second.engine.restore()
    await second.sample(1, 50)
    assert await second.open_alerts() == []


def test_series_keys_parse_prometheus_style_labels() -> None:
    assert parse_series('system.disk.percent{path="/"}') == ("system.disk.percent", {"path": "/"})
    assert parse_series("system.cpu.percent") == ("system.cpu.percent", {})


def test_rule_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="exactly one of threshold or thresholds"):
        parse_config("rules: [{name: r, metric: m}]\n", environ={})
    with pytest.raises(ConfigError, match="unknown severity 'loud'"):
        parse_config("rules: [{name: r, metric: m, thresholds: {loud: 3}}]\n", environ={})
    with pytest.raises(ConfigError, match="no notification channel named 'pager'"):
        parse_config("rules: [{name: r, metric: m, threshold: 1, notify: [pager]}]\n", environ={})


async def test_check_metrics_and_pushed_samples_feed_rules_through_the_api(tmp_path: Path) -> None:
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
            "rules": [
                {"name": "queue", "metric": "queue.depth", "threshold": 100, "for": "0s"},
                {"name": "slow", "metric": "t", "op": ">=", "threshold": 2, "for": "0s"},
            ],
            "checks": [
                {
                    "name": "plugin",
                    "type": "command",
                    "command": ["sh", "-c", "echo 'OK | t=3s;;;'"],
                    "interval": "1h",
                }
            ],
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    app = create_app(config, runtime=runtime)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://wk",
            headers=await admin_headers(runtime),
        ) as c:
            pushed = await c.post(
                "/api/v1/metrics",
                json={
                    "samples": [
                        {"metric": "queue.depth", "value": 250, "labels": {"queue": "mail"}}
                    ]
                },
            )
            assert pushed.json() == {"accepted": 1, "watched": 1}
            from tests.support.servers import wait_until

            async def names() -> set[str]:
                items = (await c.get("/api/v1/alerts", params={"status": "open"})).json()["items"]
                return {a["name"] for a in items}

            await wait_until(lambda: _has(names(), {"queue", "slow"}), 15, "both rules firing")
            rules = (await c.get("/api/v1/rules")).json()["items"]
            assert {r["name"]: r["series"][0]["state"] for r in rules} == {
                "queue": "firing",
                "slow": "firing",
            }
    finally:
        await runtime.stop()


async def _has(coro: Any, wanted: set[str]) -> bool:
    return wanted <= await coro


# --- `for` across a restart ------------------------------------------------------------------


@pytest.fixture
async def shared_db(db_url: str) -> AsyncIterator[Database]:
    """One database on either engine, for an engine before and after a restart."""
    database = Database(db_url)
    await database.migrate()
    yield database
    await database.close()


async def restarted(db: Database, minutes: float, *rules: RuleConfig) -> Engine:
    """A new engine on the same database, started `minutes` after T0."""
    engine = Engine(db, *rules, minutes=minutes)
    await engine.engine.restore()
    return engine


async def test_a_pending_series_keeps_its_for_wait_across_a_restart(shared_db: Database) -> None:
    first = Engine(shared_db, rule())
    await first.sample(0, 90)
    await first.sample(2, 91)
    # The process dies at 3m (no shutdown hook) and is back at once.
    second = await restarted(shared_db, 3, rule())
    await second.at(3)  # evaluated before its first sample: nothing known, nothing lost
    assert second.state() == "pending"
    await second.sample(3, 92)
    assert second.series()["active_since"] == T0
    await second.sample(4.9, 93)
    assert second.state() == "pending" and await second.open_alerts() == []
    await second.sample(5, 94)
    assert second.state() == "firing"  # at 5m, not at 8m
    (alert,) = await second.open_alerts()
    assert alert.started_at == T0 + timedelta(minutes=5)


async def test_a_series_that_recovered_before_the_restart_starts_its_wait_afresh(
    shared_db: Database,
) -> None:
    first = Engine(shared_db, rule())
    await first.sample(0, 90)
    await first.sample(1, 50)
    assert await load_pending(shared_db) == []
    second = await restarted(shared_db, 3, rule())
    await second.sample(3, 90)
    assert second.series()["active_since"] == T0 + timedelta(minutes=3)
    await second.sample(7.9, 90)
    assert await second.open_alerts() == []
    await second.sample(8, 90)
    assert second.state() == "firing"


async def test_a_restored_series_that_no_longer_breaches_clears(shared_db: Database) -> None:
    first = Engine(shared_db, rule())
    await first.sample(0, 90)
    second = await restarted(shared_db, 3, rule())
    await second.sample(3, 50)
    assert second.state() == "inactive"
    assert await load_pending(shared_db) == []
    await second.sample(4, 90)
    assert second.series()["active_since"] == T0 + timedelta(minutes=4)


async def test_a_series_stale_before_the_restart_is_not_restored(shared_db: Database) -> None:
    first = Engine(shared_db, rule(**{"for": "30m"}))
    await first.sample(0, 90)
    await first.engine.persist()  # a clean shutdown stores the latest sample time
    later = await restarted(shared_db, 20, rule(**{"for": "30m"}))  # stale_after is 5m
    assert later.engine.snapshot()[0]["series"] == []
    assert await load_pending(shared_db) == []


async def test_a_restored_series_without_samples_goes_stale_as_usual(
    shared_db: Database,
) -> None:
    first = Engine(shared_db, rule(**{"for": "30m"}))
    await first.sample(0, 90)
    await first.sample(10, 90)
    await first.engine.persist()
    second = await restarted(shared_db, 12, rule(**{"for": "30m"}))
    assert await second.engine.evaluate() == T0 + timedelta(minutes=15)  # 10m + stale_after
    assert second.state() == "pending"
    await second.at(15.01)
    assert second.engine.snapshot()[0]["series"] == []
    assert await load_pending(shared_db) == []


async def test_the_pending_time_is_written_when_it_changes_not_per_sample(
    shared_db: Database,
) -> None:
    e = Engine(shared_db, rule())
    writes: list[str] = []

    def count(_conn: Any) -> None:
        writes.append("begin")

    await e.sample(0, 90)
    assert [p.active_since for p in await load_pending(shared_db)] == [T0]
    event.listen(shared_db.engine.sync_engine, "begin", count)
    try:
        for second in range(1, 240):  # four minutes of samples, one a second
            await e.sample(second / 60, 91)
    finally:
        event.remove(shared_db.engine.sync_engine, "begin", count)
    assert writes == []


async def test_a_restored_firing_alert_waits_for_a_sample_before_resolving(
    db: Database,
) -> None:
    first = Engine(db, rule(**{"for": "0s"}))
    await first.sample(0, 90)
    second = await restarted(db, 1, rule(**{"for": "0s"}))
    await second.at(1)  # evaluated at start, before any sample
    assert len(await second.open_alerts()) == 1
    await second.sample(2, 95)
    assert len(await second.open_alerts()) == 1
    await second.sample(3, 50)
    assert await second.open_alerts() == []


async def test_a_runtime_restart_continues_the_for_wait_of_pushed_samples(db_url: str) -> None:
    clock = FakeClock(T0)
    config = {
        "storage": {"url": db_url},
        "rules": [{"name": "queue", "metric": "queue.depth", "threshold": 100, "for": "5m"}],
    }
    sample = {"samples": [{"metric": "queue.depth", "value": 250, "labels": {"queue": "mail"}}]}

    async def push_and_evaluate(service: Service) -> list[dict[str, Any]]:
        assert (await service.client.post("/api/v1/metrics", json=sample)).status_code == 200
        assert service.runtime.rules is not None
        await service.runtime.rules.evaluate()
        rules = (await service.client.get("/api/v1/rules")).json()["items"]
        return list(rules[0]["series"])

    async with running(config, clock=clock) as service:
        (series,) = await push_and_evaluate(service)
        assert series["state"] == "pending"
        clock.advance(timedelta(minutes=2))
        await push_and_evaluate(service)

    clock.set(T0 + timedelta(minutes=3))
    async with running(config, clock=clock) as service:
        (series,) = await push_and_evaluate(service)
        assert series["state"] == "pending"
        assert series["active_since"].replace("Z", "+00:00") == T0.isoformat()
        clock.set(T0 + timedelta(minutes=4, seconds=59))
        assert (await push_and_evaluate(service))[0]["state"] == "pending"
        clock.set(T0 + timedelta(minutes=5))
        assert (await push_and_evaluate(service))[0]["state"] == "firing"
        alerts = (await service.client.get("/api/v1/alerts", params={"status": "open"})).json()
        assert [a["name"] for a in alerts["items"]] == ["queue"]
