"""What one pass of the metric rules decides and says: the next instant worth a look (the
earliest of `for`, `keep_firing_for` and staleness), the alert it opens (summary, labels,
escalation, a fingerprint stable across versions), the log lines, a rule that cannot be
evaluated, and when the listeners are told."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.clock import FakeClock
from watchkeeper.alerting.broken import BrokenObjects
from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.alerting.rules import RuleEngine
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Database

T0 = datetime(2026, 8, 3, 12, 0, tzinfo=UTC)
DISK = "system.disk.percent"
ROOT = {"check": "host", "path": "/"}
LOGGER = "watchkeeper.alerting.rules"


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


def rule(**fields: Any) -> RuleConfig:
    base = {"name": "disk-full", "metric": DISK, "op": ">", "threshold": 90, "for": "0s"}
    return RuleConfig.model_validate({**base, **fields})


class Disk:
    def __init__(self, db: Database, *rules: RuleConfig, minutes: float = 0) -> None:
        self.db = db
        self.clock = FakeClock(T0 + timedelta(minutes=minutes))
        self.changes = 0
        self.broken = BrokenObjects()
        self.engine = RuleEngine(
            db, list(rules), self.clock, on_change=self._changed, broken=self.broken
        )

    def _changed(self) -> None:
        self.changes += 1

    async def sample(self, minutes: float, value: float) -> datetime | None:
        self.clock.set(T0 + timedelta(minutes=minutes))
        self.engine.observe(DISK, ROOT, value, self.clock.now())
        return await self.engine.evaluate()

    async def at(self, minutes: float) -> datetime | None:
        self.clock.set(T0 + timedelta(minutes=minutes))
        return await self.engine.evaluate()

    def states(self) -> list[str]:
        return [s["state"] for r in self.engine.snapshot() for s in r["series"]]


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


async def test_the_next_look_is_the_earliest_of_for_keep_firing_for_and_staleness(
    db: Database,
) -> None:
    d = Disk(db, rule(**{"for": "3m", "keep_firing_for": "2m", "stale_after": "5m"}))
    assert await d.sample(0, 95) == minutes(3)  # `for` elapses before the sample goes stale
    assert await d.at(3) == minutes(5)  # firing: only staleness can change it now
    assert d.states() == ["firing"]
    assert await d.sample(4, 95) == minutes(9)
    assert await d.sample(5, 50) == minutes(7)  # cleared: keep_firing_for elapses first
    assert await d.at(6.99) == minutes(7)
    assert d.states() == ["firing"]
    assert await d.at(7) is None  # resolved, and a value below the threshold waits for nothing
    assert d.states() == ["inactive"]
    assert await d.at(10) is None  # a sample exactly stale_after old is still known
    assert d.states() == ["inactive"]
    await d.at(10.01)
    assert d.states() == []  # then the series is forgotten
    assert d.engine.snapshot()[0]["broken"] is None


async def test_a_restored_series_without_a_sample_waits_for_staleness_not_for_its_for(
    db: Database,
) -> None:
    slow = rule(**{"for": "3m", "stale_after": "5m"})
    first = Disk(db, slow)
    await first.sample(0, 95)
    await first.sample(2, 95)
    await first.engine.persist()
    second = Disk(db, slow, minutes=2.5)
    await second.engine.restore()
    # Nothing is known until a sample comes: the `for` deadline (3m) is not a reason to look.
    assert await second.engine.evaluate() == minutes(7)
    assert second.states() == ["pending"]


async def test_a_firing_alert_says_what_breached_with_the_rule_s_labels_and_escalation(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    d = Disk(db, rule(threshold=90.5, labels={"team": "ops"}, escalation="storage-oncall"))
    await d.sample(0, 92.5)
    (alert,) = (await alert_store.list_alerts(db, status="open"))[0]
    summary = 'system.disk.percent{check="host",path="/"} is 92.5 (> 90.5)'
    assert alert.summary == summary
    assert (alert.name, alert.rule, alert.source) == ("disk-full", "disk-full", "rule")
    assert alert.labels == {**ROOT, "team": "ops", "rule": "disk-full", "severity": "medium"}
    assert alert.escalation_policy == "storage-oncall"
    # Stable across versions: an alert opened before an upgrade is the same alert after it.
    assert alert.fingerprint == "rule:disk-full:a5caa896a02db5f4"

    await d.sample(1, 50)
    found = await alert_store.get_alert(db, alert.id)
    assert found is not None
    resolved, events = found
    assert resolved.resolved_at == minutes(1)
    assert (events[-1].kind, events[-1].comment) == ("resolved", "condition cleared")
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        f"rule disk-full firing (medium): {summary}",
        "rule disk-full resolved for check=host,path=/",
    ]


async def test_a_rule_s_own_summary_is_used_as_is(db: Database) -> None:
    d = Disk(db, rule(summary="The root disk is almost full", **{"for": "90s"}))
    await d.sample(0, 95)
    await d.sample(1.5, 96)
    (alert,) = (await alert_store.list_alerts(db, status="open"))[0]
    assert alert.summary == "The root disk is almost full"


async def test_a_rule_that_cannot_be_evaluated_is_marked_broken_and_the_others_go_on(
    db: Database,
) -> None:
    ok = rule(name="b-ok")
    # A rule from before `for` was bounded (built without validation): its deadline overflows.
    old = ok.model_copy(update={"name": "a-old", "for_": timedelta.max})
    d = Disk(db, old, ok)
    await d.sample(0, 95)
    views = {v["name"]: v for v in d.engine.snapshot()}
    assert views["b-ok"]["broken"] is None
    assert [s["state"] for s in views["b-ok"]["series"]] == ["firing"]
    assert views["a-old"]["broken"].startswith("OverflowError: ")
    found = d.broken.get("rule", "a-old")
    assert found is not None and found.since == T0


async def test_the_listener_is_told_once_per_pass_that_changed_an_alert(db: Database) -> None:
    d = Disk(db, rule(name="a"), rule(name="b"), rule(name="c", threshold=99))
    await d.sample(0, 95)  # a and b fire in one pass
    assert d.changes == 1
    await d.sample(1, 96)  # nothing changes
    await d.at(2)
    assert d.changes == 1
    await d.sample(3, 50)  # both resolve
    assert d.changes == 2
    await d.sample(4, 99.5)  # only the last rule fires
    assert d.changes == 3
