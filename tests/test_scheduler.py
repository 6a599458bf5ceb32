"""Scheduling: timeouts always enforced, no overlap, no pile-up, a global concurrency cap."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tests.support.clock import FakeClock, run_until
from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext
from watchkeeper.core.clock import SystemClock
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.engine.scheduler import Scheduler, run_once

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class FakeConfig(CheckConfigBase):
    type: Literal["fake"] = "fake"
    # Configured checks run at most once a second; these run the real scheduler in real
    # time, so their slots are milliseconds apart.
    interval: timedelta = timedelta(seconds=30)


class ScriptedCheck(Check[FakeConfig]):
    """A check whose body the test supplies."""

    type = "fake"
    config_model = FakeConfig

    def __init__(self, name: str, body: Callable[[], Awaitable[CheckResult]], **cfg: Any) -> None:
        super().__init__(FakeConfig(name=name, **cfg), CheckContext(http=None))  # type: ignore[arg-type]
        self.body = body

    async def run(self) -> CheckResult:
        return await self.body()


class Collector:
    def __init__(self) -> None:
        self.results: list[tuple[str, datetime, CheckResult]] = []
        self.changed = asyncio.Condition()

    async def __call__(self, check: Check[Any], started_at: datetime, result: CheckResult) -> None:
        self.results.append((check.name, started_at, result))
        async with self.changed:
            self.changed.notify_all()

    def starts(self) -> list[datetime]:
        return [at for _, at, _ in self.results]

    async def wait_for(self, count: int, timeout: float = 5) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: len(self.results) >= count)


async def test_a_check_that_hangs_is_down_at_its_timeout_and_was_cancelled() -> None:
    cancelled = asyncio.Event()

    async def hang() -> CheckResult:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    result = await run_once(ScriptedCheck("slow", hang, timeout=timedelta(milliseconds=100)))
    assert result.status is Status.DOWN
    assert result.reason == "timed out after 100ms"
    assert cancelled.is_set()


async def test_a_crashing_check_is_unknown_with_the_error_as_reason() -> None:
    async def crash() -> CheckResult:
        raise RuntimeError("kaboom")

    result = await run_once(ScriptedCheck("bad", crash))
    assert result.status is Status.UNKNOWN
    assert result.reason == "check crashed: RuntimeError: kaboom"


def scheduled(
    checks: list[ScriptedCheck], collect: Collector, clock: FakeClock, **kwargs: Any
) -> Scheduler:
    """A scheduler on the fake clock whose first runs come at once (phase 0)."""
    scheduler = Scheduler(checks, collect, clock, **kwargs)
    scheduler._initial_delay = lambda _interval: 0.0  # type: ignore[method-assign]
    return scheduler


async def test_a_slow_check_never_overlaps_itself_and_skips_missed_slots() -> None:
    clock = FakeClock(T0)
    running = 0
    max_running = 0

    async def slow() -> CheckResult:
        nonlocal running, max_running
        running += 1
        max_running = max(max_running, running)
        if clock.now() == T0:
            clock.advance(25)  # the first run's work takes two and a half slots
        await asyncio.sleep(0)
        running -= 1
        return CheckResult.up()

    collect = Collector()
    scheduler = scheduled(
        [ScriptedCheck("slow", slow, interval=timedelta(seconds=10))], collect, clock
    )
    scheduler.start()
    await run_until(clock, T0 + timedelta(seconds=50))
    await scheduler.stop()
    assert max_running == 1
    # The slots at 10 s and 20 s passed during the first run: they are skipped, not fired in
    # a burst at 25 s; the next run waits for the slot at 30 s and the phase stays.
    assert collect.starts() == [T0 + timedelta(seconds=s) for s in (0, 30, 40, 50)]


async def test_a_held_start_times_the_first_runs_from_the_release_without_lag() -> None:
    clock = FakeClock(T0)

    async def up() -> CheckResult:
        return CheckResult.up()

    collect = Collector()
    scheduler = scheduled([ScriptedCheck("probe", up)], collect, clock)
    scheduler.hold()  # as at a start, until the HTTP server listens
    scheduler.start()
    await asyncio.sleep(0)  # a yield, no wait: the loop starts and stops at the hold
    clock.advance(60)  # nothing is due while held, however long it takes
    assert scheduler.held
    scheduler.release()
    await run_until(clock, T0 + timedelta(seconds=90))
    await scheduler.stop()
    # Phase 0 from the release: a run at 60 s, then every 30 s; the wait is no lag.
    assert collect.starts() == [T0 + timedelta(seconds=s) for s in (60, 90)]
    assert scheduler.last_lag == 0


async def test_no_more_than_max_concurrency_checks_run_at_once() -> None:
    running = 0
    peak = 0
    release = asyncio.Event()

    async def blocked() -> CheckResult:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        return CheckResult.up()

    checks = [ScriptedCheck(f"c{i}", blocked, interval=timedelta(seconds=60)) for i in range(10)]
    collect = Collector()
    scheduler = Scheduler(checks, collect, SystemClock(), max_concurrency=3)
    scheduler._initial_delay = lambda _interval: 0.0  # type: ignore[method-assign]
    scheduler.start()
    async with asyncio.timeout(5):
        while running < 3:
            await asyncio.sleep(0)
    for _ in range(20):
        await asyncio.sleep(0)
    assert peak == 3
    release.set()
    await collect.wait_for(10)
    await scheduler.stop()
    assert peak == 3


async def test_stop_lets_in_flight_checks_finish_within_the_grace_period() -> None:
    started = asyncio.Event()
    finish = asyncio.Event()

    async def in_flight() -> CheckResult:
        started.set()
        await finish.wait()
        return CheckResult.up("finished")

    collect = Collector()
    scheduler = Scheduler(
        [ScriptedCheck("c", in_flight, interval=timedelta(seconds=60))],
        collect,
        SystemClock(),
        shutdown_grace=5,
    )
    scheduler._initial_delay = lambda _interval: 0.0  # type: ignore[method-assign]
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    stopping = asyncio.create_task(scheduler.stop())
    await asyncio.sleep(0)
    finish.set()
    await asyncio.wait_for(stopping, 5)
    assert [r.reason for _, _, r in collect.results] == ["finished"]
    assert not scheduler.running


async def test_stop_cancels_a_check_that_outlives_the_grace_period() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck() -> CheckResult:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return CheckResult.up()

    scheduler = Scheduler(
        [ScriptedCheck("c", stuck, interval=timedelta(seconds=60), timeout=timedelta(hours=1))],
        Collector(),
        SystemClock(),
        shutdown_grace=0.1,
    )
    scheduler._initial_delay = lambda _interval: 0.0  # type: ignore[method-assign]
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(scheduler.stop(), 5)
    assert cancelled.is_set()


async def test_runs_keep_their_phase_instead_of_drifting() -> None:
    clock = FakeClock(T0)

    async def one_second() -> CheckResult:
        clock.advance(1)  # each run takes a second
        return CheckResult.up()

    collect = Collector()
    scheduler = scheduled(
        [ScriptedCheck("q", one_second, interval=timedelta(seconds=10))], collect, clock
    )
    scheduler.start()
    await run_until(clock, T0 + timedelta(seconds=95))
    await scheduler.stop()
    # Every ten seconds on the dot — not every eleven, as a sleep-after-run loop would drift.
    assert collect.starts() == [T0 + timedelta(seconds=10 * i) for i in range(10)]
    assert scheduler.last_lag == 0


async def test_run_now_runs_a_check_at_once_without_moving_its_schedule() -> None:
    clock = FakeClock(T0)

    async def quick() -> CheckResult:
        return CheckResult.up()

    collect = Collector()
    scheduler = scheduled([ScriptedCheck("q", quick, interval=timedelta(hours=1))], collect, clock)
    scheduler.start()
    await run_until(clock, T0 + timedelta(minutes=10))
    assert scheduler.run_now("q") and not scheduler.run_now("nope")
    await collect.wait_for(2)
    await run_until(clock, T0 + timedelta(hours=1))
    await scheduler.stop()
    assert collect.starts() == [T0, T0 + timedelta(minutes=10), T0 + timedelta(hours=1)]
