"""Metric rules that change while the engine runs (the API's put and delete), and what a
restart restores: only the changed rule's alerts resolve, with the comment that says why; a
rule replaced on the same series keeps their `for` wait; the running loop wakes for a change
without the clock moving."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.clock import FakeClock, until_parked
from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.alerting.rules import RuleEngine
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Database
from watchkeeper.store.rule_pending import load_pending

T0 = datetime(2026, 8, 3, 12, 0, tzinfo=UTC)
CPU = "system.cpu.percent"
HOST = {"check": "host"}


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


def rule(name: str = "cpu", **fields: Any) -> RuleConfig:
    base = {"name": name, "metric": CPU, "op": ">", "threshold": 80, "for": "5m"}
    return RuleConfig.model_validate({**base, **fields})


QUEUE = rule("queue", metric="queue.depth", threshold=100, **{"for": "0s"})


class Rules:
    """A rule engine on the fake clock, counting the changes it reports."""

    def __init__(self, db: Database, *rules: RuleConfig, minutes: float = 0) -> None:
        self.db = db
        self.clock = FakeClock(T0 + timedelta(minutes=minutes))
        self.changes = 0
        self.failures: list[str] = []
        """The listener raises these, one per call, before it counts again."""
        self.engine = RuleEngine(db, list(rules), self.clock, on_change=self._changed)

    def _changed(self) -> None:
        if self.failures:
            raise RuntimeError(self.failures.pop())
        self.changes += 1

    def at(self, minutes: float) -> None:
        self.clock.set(T0 + timedelta(minutes=minutes))

    async def sample(
        self, minutes: float, value: float, labels: dict[str, str] = HOST, metric: str = CPU
    ) -> None:
        self.at(minutes)
        self.engine.observe(metric, labels, value, self.clock.now())
        await self.engine.evaluate()

    async def open_by_rule(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for alert in (await alert_store.list_alerts(self.db, status="open"))[0]:
            found.setdefault(alert.rule or "", []).append(alert.labels.get("check", ""))
        return {name: sorted(checks) for name, checks in found.items()}

    async def stored(self) -> set[tuple[str, str]]:
        return {(p.rule, p.labels.get("check", "")) for p in await load_pending(self.db)}

    def view(self, name: str) -> dict[str, Any]:
        (found,) = [r for r in self.engine.snapshot() if r["name"] == name]
        return dict(found)

    def series(self, name: str) -> dict[str, dict[str, Any]]:
        return {s["labels"].get("check", ""): s for s in self.view(name)["series"]}


async def last_event(db: Database, alert_id: str) -> tuple[str, datetime, str | None]:
    found = await alert_store.get_alert(db, alert_id)
    assert found is not None
    _, events = found
    return events[-1].kind, events[-1].at, events[-1].comment


async def alert_of(db: Database, rule_name: str) -> Any:
    (alert,) = [a for a in (await alert_store.list_alerts(db))[0] if a.rule == rule_name]
    return alert


async def test_removing_a_rule_resolves_only_its_alerts_and_forgets_its_series(
    db: Database,
) -> None:
    r = Rules(db, rule("cpu-now", **{"for": "0s"}), rule("cpu-slow"), QUEUE)
    await r.sample(0, 90)
    await r.sample(0, 150, {"q": "mail"}, "queue.depth")
    assert await r.open_by_rule() == {"cpu-now": ["host"], "queue": [""]}
    assert await r.stored() == {("cpu-now", "host"), ("cpu-slow", "host"), ("queue", "")}
    changes = r.changes

    assert await r.engine.remove("nope") is False
    assert r.changes == changes and r.engine.names == ["cpu-now", "cpu-slow", "queue"]

    r.at(1)
    assert await r.engine.remove("cpu-now") is True
    assert r.engine.names == ["cpu-slow", "queue"]
    assert await r.open_by_rule() == {"queue": [""]}
    alert = await alert_of(db, "cpu-now")
    assert alert.resolved_at == T0 + timedelta(minutes=1)
    assert await last_event(db, alert.id) == ("resolved", T0 + timedelta(minutes=1), "rule deleted")
    assert r.changes == changes + 1
    assert await r.stored() == {("cpu-slow", "host"), ("queue", "")}

    assert await r.engine.remove("cpu-slow", comment="cleaning up") is True
    assert await r.stored() == {("queue", "")}
    await r.sample(3, 99)  # nobody watches the metric any more
    assert await r.open_by_rule() == {"queue": [""]}
    assert [v["name"] for v in r.engine.snapshot()] == ["queue"]


async def test_a_rule_replaced_on_the_same_series_keeps_their_for_wait(db: Database) -> None:
    r = Rules(db, rule(), QUEUE)
    await r.sample(0, 90)
    r.at(1)
    await r.engine.put(rule(threshold=85))
    assert r.engine.names == ["cpu", "queue"]  # in its place, once
    assert r.view("cpu")["levels"] == {"medium": 85}
    assert r.series("cpu")["host"]["active_since"] == T0
    await r.sample(4.9, 90)
    assert await r.open_by_rule() == {}
    await r.sample(5, 90)
    assert await r.open_by_rule() == {"cpu": ["host"]}

    # Raised above the value: the same series no longer holds the condition and resolves.
    r.at(6)
    await r.engine.put(rule(threshold=95))
    await r.engine.evaluate()
    alert = await alert_of(db, "cpu")
    assert await last_event(db, alert.id) == (
        "resolved",
        T0 + timedelta(minutes=6),
        "condition cleared",
    )
    assert await r.stored() == set()


async def test_a_rule_replaced_on_other_series_resolves_its_alerts_and_starts_afresh(
    db: Database,
) -> None:
    r = Rules(db, rule(), QUEUE)
    await r.sample(0, 90)
    await r.sample(5, 90)  # host fires
    await r.sample(5, 90, {"check": "web1"})  # web1 pending
    await r.sample(5, 150, {"q": "mail"}, "queue.depth")
    assert await r.open_by_rule() == {"cpu": ["host"], "queue": [""]}
    assert await r.stored() == {("cpu", "host"), ("cpu", "web1"), ("queue", "")}
    changes = r.changes

    r.at(6)
    await r.engine.put(rule(matchers=["check=~web.*"]))
    assert r.engine.names == ["cpu", "queue"]
    assert await r.open_by_rule() == {"queue": [""]}
    alert = await alert_of(db, "cpu")
    assert await last_event(db, alert.id) == ("resolved", T0 + timedelta(minutes=6), "rule changed")
    assert r.changes == changes + 1
    assert await r.stored() == {("queue", "")}
    assert r.series("cpu") == {}

    # The new rule's matchers apply, and its series wait afresh; each of them is kept.
    await r.sample(6.5, 90, {"check": "web1"})
    await r.sample(7, 90, {"check": "web2"})
    await r.sample(7, 90)
    assert set(r.series("cpu")) == {"web1", "web2"}
    assert r.series("cpu")["web1"]["active_since"] == T0 + timedelta(minutes=6.5)
    assert await r.stored() == {("cpu", "web1"), ("cpu", "web2"), ("queue", "")}
    await r.sample(11.5, 90, {"check": "web1"})
    assert (await r.open_by_rule())["cpu"] == ["web1"]


async def test_a_new_rule_is_added_after_the_others_and_evaluated(db: Database) -> None:
    r = Rules(db, QUEUE)
    await r.engine.put(rule(**{"for": "0s"}, matchers=["check=host"]))
    assert r.engine.names == ["queue", "cpu"]
    await r.sample(0, 90, {"check": "web"})
    await r.sample(0, 90)
    assert await r.open_by_rule() == {"cpu": ["host"]}


# --- the running loop ------------------------------------------------------------------------


@pytest.fixture
async def running(db: Database) -> AsyncIterator[Rules]:
    r = Rules(db, rule(**{"for": "0s"}))
    task = asyncio.create_task(r.engine.run())
    try:
        await until_parked(r.clock)
        yield r
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_running_engine_wakes_for_samples_and_rule_changes_not_the_clock(
    running: Rules,
) -> None:
    r = running
    assert r.clock.next_deadline == pytest.approx(15.0)  # idle: the tick
    parks = r.clock.parks
    r.engine.observe(CPU, HOST, 90, r.clock.now())
    await until_parked(r.clock, after=parks)
    assert await r.open_by_rule() == {"cpu": ["host"]}

    parks = r.clock.parks
    await r.engine.put(rule(threshold=95, **{"for": "0s"}))
    await until_parked(r.clock, after=parks)
    assert await r.open_by_rule() == {}
    assert r.clock.now() == T0


async def test_a_failing_pass_of_the_running_engine_is_logged_and_retried(
    running: Rules, caplog: pytest.LogCaptureFixture
) -> None:
    r = running
    r.failures.append("boom")  # a listener that fails once (e.g. a closed queue)
    parks = r.clock.parks
    with caplog.at_level(logging.ERROR, "watchkeeper.core.loops"):
        r.engine.observe(CPU, HOST, 90, r.clock.now())
        await until_parked(r.clock, after=parks)
    assert [rec.getMessage() for rec in caplog.records] == ["evaluating rules failed; will retry"]
    assert await r.open_by_rule() == {"cpu": ["host"]}
    parks = r.clock.parks
    r.engine.observe(CPU, HOST, 50, r.clock.now())  # the loop goes on
    await until_parked(r.clock, after=parks)
    assert await r.open_by_rule() == {} and r.changes == 1


# --- samples ---------------------------------------------------------------------------------


async def test_a_sample_reaches_every_rule_whose_matchers_it_matches(db: Database) -> None:
    r = Rules(db, rule("web", matchers=["check=web"], **{"for": "0s"}), rule(**{"for": "0s"}))
    await r.sample(0, 90)
    assert await r.open_by_rule() == {"cpu": ["host"]}
    assert r.series("web") == {}


async def test_a_later_sample_at_the_same_instant_replaces_the_value(db: Database) -> None:
    r = Rules(db, rule(**{"for": "0s"}))
    r.engine.observe(CPU, HOST, 90, T0)
    r.engine.observe(CPU, HOST, 50, T0)
    r.engine.observe(CPU, HOST, 95, T0 - timedelta(seconds=1))  # older: ignored
    await r.engine.evaluate()
    assert r.series("cpu")["host"]["value"] == 50
    assert await r.open_by_rule() == {}


# --- restore ---------------------------------------------------------------------------------


async def test_a_restart_drops_the_stored_series_of_rules_gone_or_changed(db: Database) -> None:
    first = Rules(db, rule("a-gone"), rule("b-web", matchers=["check=~web.*"]), rule("c-kept"))
    await first.sample(0, 90, {"check": "web1"})
    await first.sample(0, 90)
    assert await first.stored() == {
        ("a-gone", "web1"),
        ("a-gone", "host"),
        ("b-web", "web1"),
        ("c-kept", "web1"),
        ("c-kept", "host"),
    }
    second = Rules(db, rule("b-web", matchers=["check=web2"]), rule("c-kept"), minutes=2)
    await second.engine.restore()
    assert await second.stored() == {("c-kept", "web1"), ("c-kept", "host")}
    assert second.series("b-web") == {}
    kept = second.series("c-kept")
    assert {k: (s["state"], s["active_since"]) for k, s in kept.items()} == {
        "web1": ("pending", T0),
        "host": ("pending", T0),
    }


async def test_a_restart_restores_the_firing_series_of_the_rules_still_there(
    db: Database,
) -> None:
    first = Rules(db, rule("a-gone", **{"for": "0s"}), rule("c-kept"))
    await first.sample(0, 90)
    await first.sample(5, 90)  # c-kept fires after its 5m
    assert await first.open_by_rule() == {"a-gone": ["host"], "c-kept": ["host"]}
    second = Rules(db, rule("c-kept"), minutes=7)
    await second.engine.restore()
    restored = second.series("c-kept")["host"]
    assert (restored["state"], restored["severity"]) == ("firing", "medium")
    assert restored["active_since"] == T0  # the stored start, not the restart
    await second.sample(8, 50)
    assert await second.open_by_rule() == {"a-gone": ["host"]}


async def test_a_stored_series_exactly_stale_after_old_is_restored(db: Database) -> None:
    first = Rules(db, rule(**{"for": "30m"}))
    await first.sample(0, 90)
    second = Rules(db, rule(**{"for": "30m"}), minutes=5)
    await second.engine.restore()
    assert second.series("cpu")["host"]["state"] == "pending"
    assert await second.stored() == {("cpu", "host")}
