"""Restart without loss: a new runtime on the same database picks up every deadline in flight
and fires it at its original time, once.

Each test stops a real `Runtime` (hand-moved clock, real SQLite file, a loopback webhook
receiver that counts every Idempotency-Key it accepts and never dedups) and starts a NEW one
on the same file, as a process restart would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.clock import FakeClock, run_until, until_parked
from tests.support.servers import WebhookReceiver
from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.engine.heartbeat.monitor import PingKind
from watchkeeper.store.database import Database
from watchkeeper.store.results import ResultWriter, recent_statuses

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
LOOPS = 6
"""Timed loops of a runtime without scheduled checks: outbox, dispatcher, rules, heartbeats,
self-watch and housekeeping (the write-ahead log's checkpoints are paced by the wall clock)."""
SOON = timedelta(seconds=1)
"""The clock's last step past a deadline: the delivery may go out anywhere within it."""


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = await WebhookReceiver().start()
    try:
        yield hook
    finally:
        await hook.close()


def make_config(db: Path, hook: WebhookReceiver, checks: list[dict[str, Any]]) -> Config:
    return Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{db}"},
            "checks": checks,
            "notifications": [
                {"name": "oncall", "type": "webhook", "url": hook.hook_url},
                {"name": "manager", "type": "webhook", "url": hook.hook_url},
            ],
            "escalation": [
                {
                    "name": "default",
                    "steps": [{"notify": ["oncall"]}, {"after": "10m", "notify": ["manager"]}],
                }
            ],
            "alerting": {"default_escalation": "default"},
            # Its own passes would only add steps to every clock move here.
            "selfwatch": {"interval": "1h"},
        }
    )


HEARTBEATS = [
    # Reports a failure at T0: its alert pages oncall, and manager 10 minutes later.
    {"name": "nightly", "type": "heartbeat", "period": "1d", "grace": "1h"},
    # Pinged at T0: expected by T0 + 1h, down after 5 minutes' grace.
    {"name": "backup", "type": "heartbeat", "period": "1h", "grace": "5m"},
]


class Runtimes:
    """Starts runtimes on one clock; whatever is still running at the end is stopped."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.running: list[Runtime] = []

    async def start(self, config: Config) -> Runtime:
        runtime = Runtime(config, clock=self.clock)
        await runtime.start()
        self.running.append(runtime)
        return runtime

    async def stop(self, runtime: Runtime) -> None:
        self.running.remove(runtime)
        await runtime.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def runtimes(clock: FakeClock) -> AsyncIterator[Runtimes]:
    started = Runtimes(clock)
    yield started
    for runtime in list(started.running):
        await started.stop(runtime)


def sent_at(delivery: Any) -> datetime:
    return datetime.fromisoformat(delivery.payload["sent_at"].replace("Z", "+00:00"))


def about(hook: WebhookReceiver, check: str, event: str) -> list[Any]:
    """Every accepted delivery of `event` about `check`'s alert, in arrival order."""
    return [
        d
        for d in hook.attempts
        if d.answered < 300
        and d.event == event
        and d.payload.get("alert", {}).get("check") == check
    ]


async def ping(runtime: Runtime, name: str, kind: PingKind) -> None:
    check = runtime.heartbeats.by_name(name)
    assert check is not None
    await runtime.heartbeats.ping(check, kind)


async def test_an_escalation_and_a_heartbeat_deadline_in_flight_fire_at_their_times_once(
    tmp_path: Path, receiver: WebhookReceiver, clock: FakeClock, runtimes: Runtimes
) -> None:
    config = make_config(tmp_path / "wk.db", receiver, HEARTBEATS)
    first = await runtimes.start(config)
    await ping(first, "nightly", PingKind.FAIL)
    await ping(first, "backup", PingKind.SUCCESS)
    (page,) = await receiver.wait_for(
        lambda r: about(r, "nightly", "alert.firing"), 15, "the first page"
    )
    assert sent_at(page) == T0

    # Five minutes on, the process stops: manager's page is due at T0 + 10m, backup's
    # deadline at T0 + 1h + 5m. A new runtime starts on the same database.
    await run_until(clock, T0 + 5 * MINUTE, loops=LOOPS)
    await runtimes.stop(first)
    second = await runtimes.start(config)

    await run_until(clock, T0 + 10 * MINUTE - SOON, loops=LOOPS)
    assert about(receiver, "nightly", "alert.escalated") == []
    await run_until(clock, T0 + 10 * MINUTE + SOON, loops=LOOPS)
    (escalated,) = await receiver.wait_for(
        lambda r: about(r, "nightly", "alert.escalated"), 15, "manager's page"
    )
    # At its original time, not ten minutes after the restart.
    assert T0 + 10 * MINUTE <= sent_at(escalated) <= T0 + 10 * MINUTE + SOON
    assert escalated.payload["escalation"] == {"policy": "default", "step": 1}

    backup_down = T0 + 65 * MINUTE
    await run_until(clock, backup_down - SOON, loops=LOOPS)
    assert about(receiver, "backup", "alert.firing") == []
    await run_until(clock, backup_down + SOON, loops=LOOPS)
    (down,) = await receiver.wait_for(
        lambda r: about(r, "backup", "alert.firing"), 15, "backup's page"
    )
    assert backup_down <= sent_at(down) <= backup_down + SOON

    # Long after: nothing was sent twice, and nothing else was sent about these alerts.
    await run_until(clock, T0 + 3 * timedelta(hours=1), loops=LOOPS)
    await runtimes.stop(second)
    assert receiver.redeliveries == {}
    assert sorted((d.event, d.payload["alert"]["check"]) for d in receiver.accepted()) == [
        ("alert.escalated", "backup"),
        ("alert.escalated", "nightly"),
        ("alert.firing", "backup"),
        ("alert.firing", "nightly"),
    ]


async def test_a_restart_spreads_the_first_runs_of_the_checks_over_five_seconds(
    tmp_path: Path, receiver: WebhookReceiver, clock: FakeClock, runtimes: Runtimes
) -> None:
    checks = [
        {"name": f"c{i}", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1h"}
        for i in range(20)
    ]
    config = make_config(tmp_path / "wk.db", receiver, checks)
    first = await runtimes.start(config)
    await until_parked(clock, LOOPS + len(checks))
    await runtimes.stop(first)
    await runtimes.start(config)
    await until_parked(clock, LOOPS + len(checks))
    # Each check's loop waits for its first run: at most 5 s away, each at its own offset.
    parked = clock.parked
    first_runs = sorted(parked[f"check:{c['name']}"] for c in checks)
    assert all(0 <= at <= 5.0 for at in first_runs)
    assert len(set(first_runs)) == len(checks)
    assert first_runs[-1] - first_runs[0] > 2.0


async def test_a_deadline_that_passed_while_stopped_fires_once_at_the_restart(
    tmp_path: Path, receiver: WebhookReceiver, clock: FakeClock, runtimes: Runtimes
) -> None:
    config = make_config(tmp_path / "wk.db", receiver, HEARTBEATS[1:])
    first = await runtimes.start(config)
    await ping(first, "backup", PingKind.SUCCESS)
    await runtimes.stop(first)

    clock.advance(2 * timedelta(hours=1))  # down at T0 + 1h 5m, while nothing ran
    await runtimes.start(config)
    (down,) = await receiver.wait_for(
        lambda r: about(r, "backup", "alert.firing"), 15, "backup's page"
    )
    assert sent_at(down) == T0 + 2 * timedelta(hours=1)
    await run_until(clock, T0 + 3 * timedelta(hours=1), loops=LOOPS)
    assert receiver.redeliveries == {}
    assert len(about(receiver, "backup", "alert.firing")) == 1


async def test_a_check_flapping_at_the_restart_still_flaps_and_its_alert_resolves_when_it_settles(
    tmp_path: Path, receiver: WebhookReceiver, clock: FakeClock, runtimes: Runtimes
) -> None:
    config = make_config(tmp_path / "wk.db", receiver, HEARTBEATS[1:])
    config = config.model_copy(
        update={
            "alerting": config.alerting.model_copy(
                update={
                    "flapping": config.alerting.flapping.model_copy(
                        update={"window": 4, "high": 50.0, "low": 25.0}
                    )
                }
            )
        }
    )
    first = await runtimes.start(config)
    for kind in (PingKind.SUCCESS, PingKind.FAIL, PingKind.SUCCESS, PingKind.FAIL):
        clock.advance(1)  # a failure and a success at one instant would be one failure
        await ping(first, "backup", kind)
    assert first.flaps.is_flapping("backup")
    await receiver.wait_for(
        lambda r: [
            d
            for d in r.accepted("alert.firing")
            if d.payload["alert"]["fingerprint"] == "flapping:backup"
        ],
        15,
        "the flapping alert's page",
    )
    await runtimes.stop(first)

    second = await runtimes.start(config)
    # Its recent results and verdict come back from the database.
    assert second.flaps.is_flapping("backup")
    for _ in range(4):  # it settles: four passes in a row
        clock.advance(1)
        await ping(second, "backup", PingKind.SUCCESS)
    assert not second.flaps.is_flapping("backup")
    await receiver.wait_for(
        lambda r: [
            d
            for d in r.accepted("alert.resolved")
            if d.payload["alert"]["fingerprint"] == "flapping:backup"
        ],
        15,
        "the flapping alert's all-clear",
    )
    assert receiver.redeliveries == {}
    # (The check's own first alert may have paged and cleared before it was seen to flap.)
    resolved = [d.payload["alert"]["fingerprint"] for d in receiver.accepted("alert.resolved")]
    assert resolved.count("flapping:backup") == 1


async def test_the_latest_statuses_of_every_check_come_back_oldest_first(db: Database) -> None:
    writer = ResultWriter(db, lambda _name: None)
    for i, status in enumerate(["up", "down", "up", "down", "degraded"]):
        at = T0 + timedelta(seconds=i)
        writer.record("api", at, CheckResult(Status(status), status))
        if i < 2:
            writer.record("web", at, CheckResult(Status(status), status))
    await writer.flush()
    assert await recent_statuses(db, 3) == {
        "api": ["up", "down", "degraded"],
        "web": ["up", "down"],
    }


async def test_a_rule_pending_at_the_restart_fires_when_its_for_wait_ends_not_later(
    tmp_path: Path, receiver: WebhookReceiver, clock: FakeClock, runtimes: Runtimes
) -> None:
    config = make_config(tmp_path / "wk.db", receiver, []).model_copy(
        update={
            "rules": [
                RuleConfig.model_validate(
                    {"name": "queue", "metric": "queue.depth", "threshold": 100, "for": "5m"}
                )
            ]
        }
    )
    labels = {"queue": "mail"}
    first = await runtimes.start(config)
    for minute in (0, 1, 2):
        await run_until(clock, T0 + minute * MINUTE, loops=LOOPS)
        await observe(first, clock, labels)
    await run_until(clock, T0 + 2 * MINUTE + SOON, loops=LOOPS)
    await runtimes.stop(first)

    second = await runtimes.start(config)
    for minute in (3, 4):
        await run_until(clock, T0 + minute * MINUTE, loops=LOOPS)
        await observe(second, clock, labels)
    await run_until(clock, T0 + 5 * MINUTE - SOON, loops=LOOPS)
    assert about_rule(receiver, "queue", "alert.firing") == []
    await run_until(clock, T0 + 5 * MINUTE, loops=LOOPS)
    await observe(second, clock, labels)
    await run_until(clock, T0 + 5 * MINUTE + SOON, loops=LOOPS)
    (page,) = await receiver.wait_for(
        lambda r: about_rule(r, "queue", "alert.firing"), 15, "the rule's page"
    )
    # Five minutes after the condition started to hold, not five after the restart.
    assert T0 + 5 * MINUTE <= sent_at(page) <= T0 + 5 * MINUTE + SOON
    await run_until(clock, T0 + 20 * MINUTE, loops=LOOPS)
    assert len(about_rule(receiver, "queue", "alert.firing")) == 1
    assert receiver.redeliveries == {}


async def observe(runtime: Runtime, clock: FakeClock, labels: dict[str, str]) -> None:
    """A sample above the threshold now, evaluated before the clock moves on."""
    parks = clock.parks
    runtime.rules.observe("queue.depth", labels, 250, clock.now())
    await until_parked(clock, LOOPS, after=parks)


def about_rule(hook: WebhookReceiver, rule: str, event: str) -> list[Any]:
    return [
        d
        for d in hook.attempts
        if d.answered < 300 and d.event == event and d.payload["alert"].get("rule") == rule
    ]
