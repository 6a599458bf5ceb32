"""Storm guards: attempts within a window, cooldown, lock-out, one at a time, max_concurrent."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.support.clock import FakeClock
from watchkeeper.recovery.config import Guards
from watchkeeper.recovery.guard import GuardState, RecoveryGuard, Refused


def guards(max_attempts: int = 3, within: str = "15m", cooldown: str = "0s") -> Guards:
    return Guards.model_validate(
        {"max_attempts": max_attempts, "within": within, "cooldown": cooldown}
    )


async def run_once(guard: RecoveryGuard, name: str, settings: Guards, ok: bool) -> bool:
    """One attempt; returns whether it left the target exhausted."""
    async with guard.attempt(name, settings) as attempt:
        attempt.ok = ok
    return attempt.exhausted


async def test_a_futile_action_runs_exactly_max_attempts_times_then_is_exhausted() -> None:
    clock = FakeClock()
    guard = RecoveryGuard(clock)
    settings = guards(max_attempts=3)
    runs = 0
    exhausted_after: list[bool] = []
    for _ in range(10):
        try:
            exhausted_after.append(await run_once(guard, "web", settings, ok=False))
            runs += 1
        except Refused as refused:
            assert refused.state is GuardState.EXHAUSTED
            assert str(refused) == "automatic recovery exhausted after 3 attempts"
    assert runs == 3
    assert exhausted_after == [False, False, True]  # the third says: escalate now
    # Locked out even once the window has passed: only a reset (check UP) lifts it.
    clock.advance(timedelta(hours=2))
    assert guard.target("web", settings).state is GuardState.EXHAUSTED
    with pytest.raises(Refused):
        await run_once(guard, "web", settings, ok=False)
    guard.reset("web")
    assert guard.target("web", settings).state is GuardState.READY
    await run_once(guard, "web", settings, ok=True)


async def test_attempts_older_than_the_window_no_longer_count() -> None:
    clock = FakeClock()
    guard = RecoveryGuard(clock)
    settings = guards(max_attempts=2, within="10m")
    await run_once(guard, "web", settings, ok=True)
    clock.advance(timedelta(minutes=6))
    await run_once(guard, "web", settings, ok=True)
    clock.advance(timedelta(minutes=5))  # the first one is out of the window now
    target = guard.target("web", settings)
    assert target.attempts == 1
    await run_once(guard, "web", settings, ok=True)
    # Two successful runs within 10 minutes spent the budget: a third is a flapping target.
    with pytest.raises(Refused) as refused:
        await run_once(guard, "web", settings, ok=True)
    assert refused.value.state is GuardState.EXHAUSTED


async def test_cooldown_refuses_until_it_has_passed_since_the_last_attempt_ended() -> None:
    clock = FakeClock()
    guard = RecoveryGuard(clock)
    settings = guards(max_attempts=10, cooldown="1m")
    await run_once(guard, "web", settings, ok=False)
    target = guard.target("web", settings)
    assert target.state is GuardState.COOLING_DOWN
    clock.advance(59)
    with pytest.raises(Refused) as refused:
        await run_once(guard, "web", settings, ok=False)
    assert refused.value.state is GuardState.COOLING_DOWN and "1s left" in str(refused.value)
    clock.advance(1)
    assert target.state is GuardState.READY
    await run_once(guard, "web", settings, ok=True)


async def test_one_attempt_at_a_time_per_target_and_other_targets_are_not_blocked() -> None:
    guard = RecoveryGuard(FakeClock())
    settings = guards()
    release = asyncio.Event()
    inside = asyncio.Event()

    async def long_attempt() -> None:
        async with guard.attempt("web", settings):
            inside.set()
            await release.wait()

    task = asyncio.create_task(long_attempt())
    async with asyncio.timeout(5):
        await inside.wait()
    assert guard.target("web", settings).state is GuardState.RUNNING
    with pytest.raises(Refused) as refused:
        await run_once(guard, "web", settings, ok=True)
    assert refused.value.state is GuardState.RUNNING
    await run_once(guard, "db", settings, ok=True)
    release.set()
    await task
    assert guard.target("web", settings).state is GuardState.READY


async def test_an_exception_in_the_attempt_counts_as_a_failure() -> None:
    guard = RecoveryGuard(FakeClock())
    settings = guards(max_attempts=1)
    with pytest.raises(RuntimeError):
        async with guard.attempt("web", settings):
            raise RuntimeError("boom")
    assert guard.target("web", settings).state is GuardState.EXHAUSTED


async def test_twenty_triggers_with_max_concurrent_two_never_run_more_than_two_at_once() -> None:
    guard = RecoveryGuard(FakeClock(), max_concurrent=2)
    settings = guards()
    inside: list[int] = []
    peak = 0
    entered = asyncio.Event()
    gates = [asyncio.Event() for _ in range(20)]

    async def action(i: int) -> None:
        nonlocal peak
        async with guard.attempt(f"check-{i}", settings):
            inside.append(i)
            peak = max(peak, len(inside))
            entered.set()
            await gates[i].wait()
            inside.remove(i)

    tasks = [asyncio.create_task(action(i)) for i in range(20)]
    async with asyncio.timeout(5):
        for finished in range(20):
            # As many inside as the limit allows, then let the oldest one finish.
            while len(inside) < min(2, 20 - finished):
                entered.clear()
                await entered.wait()
            assert len(inside) == min(2, 20 - finished) == guard.active
            assert guard.waiting == 20 - finished - len(inside)
            oldest = inside[0]
            gates[oldest].set()
            await tasks[oldest]
    assert peak == 2
    assert guard.active == 0 and guard.waiting == 0 and not inside


def test_max_concurrent_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        RecoveryGuard(FakeClock(), max_concurrent=0)
