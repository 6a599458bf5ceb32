"""The self-watch: each measure against its thresholds, in /metrics and the health document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.support.clock import FakeClock
from tests.support.servers import wait_until
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.engine.selfwatch import SelfWatchConfig, Threshold
from watchkeeper.store import outbox as outbox_store

SELF_KEYS = {
    "eventLoop:lag",
    "scheduler:lag",
    "outbox:depth",
    "outbox:oldestAge",
    "storage:writeLatency",
    "process:memory",
    "process:openFiles",
}


def make_config(tmp_path: Path, **extra: Any) -> Config:
    return Config.model_validate({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}, **extra})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def runtime(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Runtime]:
    rt = Runtime(make_config(tmp_path), clock=clock)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def one_pass(runtime: Runtime, clock: FakeClock, seconds: float = 5) -> None:
    """Move the clock by `seconds` and wait for the self-watch pass it wakes."""
    before = runtime.selfwatch.passes
    clock.advance(seconds)
    await wait_until(lambda: runtime.selfwatch.passes > before, 5, "a self-watch pass")


def test_thresholds_are_ordered_and_the_defaults_documented() -> None:
    with pytest.raises(ValidationError, match="must not be above fail"):
        Threshold(warn=2, fail=1)
    defaults = SelfWatchConfig()
    assert defaults.scheduler_lag == Threshold(warn=1, fail=10)
    assert Threshold(warn=1, fail=10).level(0.5) == "pass"
    assert Threshold(warn=1, fail=10).level(1) == "warn"
    assert Threshold(warn=1, fail=10).level(10) == "fail"


async def test_a_clock_moved_by_hand_is_no_event_loop_lag(
    runtime: Runtime, clock: FakeClock
) -> None:
    await one_pass(runtime, clock, seconds=3600)
    assert runtime.selfwatch.readings["eventLoop:lag"].value == 0


async def test_a_pass_fills_the_health_document_and_the_metrics(
    runtime: Runtime, clock: FakeClock
) -> None:
    await one_pass(runtime, clock)
    health = await runtime.services.status.health()
    assert set(health["checks"]) >= SELF_KEYS
    assert health["status"] == "pass", health
    write = health["checks"]["storage:writeLatency"][0]
    assert write["status"] == "pass" and write["observedUnit"] == "s"
    memory = health["checks"]["process:memory"][0]
    assert memory["observedValue"] > 0 and memory["observedUnit"] == "MiB"
    files = health["checks"]["process:openFiles"][0]
    assert files["observedValue"] > 0
    text = (await runtime.services.status.exposition()).decode()
    for name in (
        "watchkeeper_event_loop_lag_seconds",
        "watchkeeper_outbox_oldest_age_seconds",
        "watchkeeper_storage_write_seconds",
        "watchkeeper_resident_memory_bytes",
        "watchkeeper_open_fds",
        'watchkeeper_selfwatch_status{measure="storage:writeLatency"} 0.0',
    ):
        assert name in text


async def test_a_late_wake_up_is_event_loop_lag(runtime: Runtime, clock: FakeClock) -> None:
    # The pass was due 5 s on; it ran 7 s on: 2 s late (past warn 0.5 s, short of fail 5 s).
    # Real time caps the lag (a clock moved by hand is no lag): here the clock is the truth.
    runtime.selfwatch.real_monotonic = clock.monotonic
    await one_pass(runtime, clock)  # the next wait is timed on the clock alone
    await one_pass(runtime, clock, seconds=7)
    reading = runtime.selfwatch.readings["eventLoop:lag"]
    assert (reading.status, reading.value) == ("warn", 2.0)
    assert (
        "watchkeeper_event_loop_lag_seconds 2.0"
        in (await runtime.services.status.exposition()).decode()
    )


async def test_the_write_probe_runs_at_most_every_write_every(
    runtime: Runtime, clock: FakeClock
) -> None:
    await one_pass(runtime, clock)
    first = runtime.selfwatch.write_latency
    assert first is not None
    runtime.selfwatch.write_latency = -1.0  # a marker: a new probe would overwrite it
    await runtime.selfwatch.check()
    assert runtime.selfwatch.write_latency == -1.0
    clock.advance(timedelta(seconds=30))
    await runtime.selfwatch.check()
    assert runtime.selfwatch.write_latency != -1.0


async def test_an_old_undelivered_notification_fails_the_outbox_age(
    runtime: Runtime, clock: FakeClock
) -> None:
    async with runtime.db.begin() as conn:
        entry = outbox_store.OutboxEntry("gone", "k1", "alert.firing", {"x": 1})
        await outbox_store.enqueue(conn, [entry], clock.now() - timedelta(hours=1))
    readings = await runtime.selfwatch.check()
    assert readings["outbox:depth"].value == 1
    assert (readings["outbox:oldestAge"].status, readings["outbox:oldestAge"].value) == (
        "fail",
        3600.0,
    )
