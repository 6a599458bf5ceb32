"""Scheduler edges on the fake clock: first-run spread, pauses, exact slot ends, lag, counts,
logs and the grace of `remove`."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta

import pytest

from tests.support.clock import FakeClock, run_until
from tests.test_scheduler import T0, Collector, ScriptedCheck, scheduled
from watchkeeper.core.clock import SystemClock
from watchkeeper.core.domain import CheckResult
from watchkeeper.engine.scheduler import Scheduler, run_once


async def up() -> CheckResult:
    return CheckResult.up()


async def test_first_runs_are_spread_over_the_interval_but_at_most_five_seconds_away() -> None:
    clock = FakeClock(T0)
    collect = Collector()
    checks = [
        ScriptedCheck("short", up, interval=timedelta(seconds=2)),
        ScriptedCheck("long", up, interval=timedelta(hours=1)),
    ]
    scheduler = Scheduler(checks, collect, clock, rng=random.Random(7))
    twin = random.Random(7)
    expected = {"short": twin.uniform(0, 2.0), "long": twin.uniform(0, 5.0)}
    assert expected["long"] > 0 and expected["short"] < 2.0
    scheduler.start()
    await run_until(clock, T0 + timedelta(seconds=5), loops=2)
    await scheduler.stop()
    first = {}
    for name, at, _ in collect.results:
        first.setdefault(name, (at - T0).total_seconds())
    assert first == pytest.approx(expected, abs=1e-5)


async def test_a_fresh_scheduler_has_run_nothing_and_counts_each_run_once() -> None:
    clock = FakeClock(T0)
    collect = Collector()
    lags: list[float] = []
    scheduler = scheduled(
        [ScriptedCheck("q", up, interval=timedelta(seconds=10))], collect, clock, on_lag=lags.append
    )
    assert (scheduler.runs, scheduler.last_lag, scheduler.running) == (0, 0.0, False)
    scheduler.start()
    assert scheduler.running
    await run_until(clock, T0 + timedelta(seconds=30))
    await scheduler.stop()
    assert not scheduler.running
    assert scheduler.runs == len(collect.results) == 4
    assert lags == [0.0] * 4


async def test_a_check_added_before_start_waits_for_start() -> None:
    clock = FakeClock(T0)
    collect = Collector()
    scheduler = scheduled([], collect, clock)
    scheduler.add(ScriptedCheck("q", up, interval=timedelta(seconds=10)))
    assert scheduler.scheduled == set()
    with pytest.raises(KeyError) as caught:
        scheduler.add(ScriptedCheck("q", up))
    assert caught.value.args == ("'q' is already scheduled",)
    scheduler.start()
    assert scheduler.scheduled == {"q"}
    await scheduler.stop()


async def test_a_paused_check_skips_its_slots_runs_when_asked_and_keeps_its_phase() -> None:
    clock = FakeClock(T0)
    collect = Collector()
    paused = {"p"}
    scheduler = scheduled(
        [
            ScriptedCheck("p", up, interval=timedelta(seconds=10)),
            ScriptedCheck("q", up, interval=timedelta(seconds=10)),
        ],
        collect,
        clock,
        is_paused=lambda name: name in paused,
    )
    scheduler.start()
    await run_until(clock, T0 + timedelta(seconds=25), loops=2)
    assert [n for n, _, _ in collect.results].count("p") == 0
    assert scheduler.run_now("p")  # "run now" runs a paused check too
    await collect.wait_for(4)
    assert [(n, at) for n, at, _ in collect.results if n == "p"] == [("p", clock.now())]
    paused.clear()
    await run_until(clock, T0 + timedelta(seconds=45), loops=2)
    await scheduler.stop()
    starts = [(at - T0).total_seconds() for n, at, _ in collect.results if n == "p"]
    assert starts == [25, 30, 40]


async def test_a_run_that_ends_exactly_at_its_next_slot_runs_again_at_once() -> None:
    clock = FakeClock(T0)

    async def first_takes_a_whole_slot() -> CheckResult:
        if clock.now() == T0:
            clock.advance(10)
        return CheckResult.up()

    collect = Collector()
    scheduler = scheduled(
        [ScriptedCheck("q", first_takes_a_whole_slot, interval=timedelta(seconds=10))],
        collect,
        clock,
    )
    scheduler.start()
    await run_until(clock, T0 + timedelta(seconds=20))
    await scheduler.stop()
    assert collect.starts() == [T0 + timedelta(seconds=s) for s in (0, 10, 20)]


async def test_a_failing_result_handler_is_logged_by_check_and_the_check_keeps_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(T0)
    calls = 0

    async def broken_handler(*_args: object) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("database down")

    scheduler = Scheduler(
        [ScriptedCheck("q", up, interval=timedelta(seconds=10))], broken_handler, clock
    )
    scheduler._initial_delay = lambda _interval: 0.0  # type: ignore[method-assign]
    scheduler.start()
    await run_until(clock, T0 + timedelta(seconds=10))
    await scheduler.stop()
    assert calls == 2
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert messages == ["handling the result of q failed"] * 2


async def test_a_crashing_check_is_logged_by_name(caplog: pytest.LogCaptureFixture) -> None:
    async def crash() -> CheckResult:
        raise RuntimeError("kaboom")

    await run_once(ScriptedCheck("bad", crash))
    assert [r.getMessage() for r in caplog.records] == ["check bad crashed"]


async def test_a_quick_check_with_a_short_timeout_is_not_cut_short() -> None:
    async def ten_milliseconds() -> CheckResult:
        # The check's own work: an answer that comes 10 ms later, well inside its timeout.
        answered = asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, answered.set)
        await answered.wait()
        return CheckResult.up()

    check = ScriptedCheck("quick", ten_milliseconds, timeout=timedelta(milliseconds=100))
    assert await run_once(check) == CheckResult.up()


async def test_removing_a_check_whose_run_hangs_cancels_it_after_the_grace() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck() -> CheckResult:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # cleanup takes a turn of the loop
            cancelled.set()
            raise
        return CheckResult.up()

    collect = Collector()
    check = ScriptedCheck("c", stuck, interval=timedelta(seconds=60), timeout=timedelta(hours=1))
    scheduler = Scheduler([check], collect, SystemClock(), shutdown_grace=0.05)
    scheduler._initial_delay = lambda _interval: 0.0  # type: ignore[method-assign]
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    async with asyncio.timeout(5):
        assert await scheduler.remove("c") is check
    assert cancelled.is_set()  # done by the time remove returns, not later
    assert scheduler.scheduled == set() and collect.results == []
    await scheduler.stop()


async def test_stop_returns_only_once_a_run_past_its_grace_is_cancelled() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck() -> CheckResult:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # cleanup takes a turn of the loop
            cancelled.set()
            raise
        return CheckResult.up()

    check = ScriptedCheck("c", stuck, interval=timedelta(seconds=60), timeout=timedelta(hours=1))
    scheduler = Scheduler([check], Collector(), SystemClock(), shutdown_grace=0.05)
    scheduler._initial_delay = lambda _interval: 0.0  # type: ignore[method-assign]
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    async with asyncio.timeout(5):
        await scheduler.stop()
    assert cancelled.is_set()


async def test_a_run_still_waiting_for_a_slot_when_stop_comes_never_starts() -> None:
    clock = FakeClock(T0)
    release = asyncio.Event()

    async def holds_the_slot() -> CheckResult:
        await release.wait()
        return CheckResult.up("first")

    collect = Collector()
    scheduler = scheduled(
        [
            ScriptedCheck("a", holds_the_slot, interval=timedelta(hours=1)),
            ScriptedCheck("b", up, interval=timedelta(hours=1)),
        ],
        collect,
        clock,
        max_concurrency=1,
    )
    scheduler.start()
    for _ in range(20):  # both loops start; "a" takes the only slot, "b" waits for it
        await asyncio.sleep(0)
    stopping = asyncio.create_task(scheduler.stop())
    await asyncio.sleep(0)
    release.set()
    await asyncio.wait_for(stopping, 5)
    assert [(n, r.reason) for n, _, r in collect.results] == [("a", "first")]
