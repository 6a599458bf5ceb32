"""Circuit breakers for checks (`breaker:`): a target that keeps failing is probed only every
`wait_in_open` by the real scheduler loop on an injected clock, closes again on an UP
trial, and holds its automatic recovery meanwhile."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from tests.support.clock import FakeClock, run_until
from tests.test_scheduler import T0, Collector, ScriptedCheck
from watchkeeper.checks.base import BreakerSettings, Check
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.engine.breakers import CheckBreakers
from watchkeeper.engine.scheduler import Scheduler
from watchkeeper.recovery.breaker import BreakerState


async def test_an_open_breaker_probes_every_wait_in_open_and_an_up_trial_closes_it() -> None:
    clock = FakeClock(T0)
    breakers = CheckBreakers(clock)
    collector = Collector()
    up = False

    async def body() -> CheckResult:
        return CheckResult.up() if up else CheckResult.down("refused")

    async def on_result(check: Check[Any], at: Any, result: CheckResult) -> None:
        breakers.record(check.config, result.status)
        await collector(check, at, result)

    settings = BreakerSettings(min_results=3, window=3, wait_in_open=timedelta(seconds=60))
    check = ScriptedCheck("web", body, interval=timedelta(seconds=10), breaker=settings)
    scheduler = Scheduler([check], on_result, clock, is_held=breakers.is_open, rng=random.Random(0))
    scheduler.start()
    try:
        await run_until(clock, T0 + timedelta(seconds=200))
        first = collector.starts()[0]
        offsets = [(at - first).total_seconds() for at in collector.starts()]
        # Three DOWN results open it; then one trial run a minute, each DOWN again.
        assert offsets == [0, 10, 20, 80, 140]
        assert breakers.state("web") is BreakerState.OPEN

        up = True
        await run_until(clock, first + timedelta(seconds=230))
        offsets = [(at - first).total_seconds() for at in collector.starts()]
        assert offsets[5:] == [200, 210, 220, 230], "the UP trial closed it"
        assert breakers.state("web") is BreakerState.CLOSED
    finally:
        await scheduler.stop()


def test_the_breaker_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="min_results must not be more than window"):
        BreakerSettings(min_results=5, window=3)
    assert breakers_state_after([Status.DOWN, Status.UNKNOWN, Status.DOWN]) is BreakerState.OPEN
    assert breakers_state_after([Status.DOWN, Status.UP]) is BreakerState.CLOSED


def breakers_state_after(statuses: list[Status]) -> BreakerState | None:
    """UNKNOWN results do not count; two DOWN of the last two open it."""
    breakers = CheckBreakers(FakeClock(T0))
    config = ScriptedCheck(
        "db",
        lambda: None,
        breaker=BreakerSettings(min_results=2, window=2),  # type: ignore[arg-type, return-value]
    ).config
    for status in statuses:
        breakers.record(config, status)
    return breakers.state("db")
