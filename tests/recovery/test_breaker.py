"""CircuitBreaker: every transition, sync and async, on an injected clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.clock import FakeClock
from watchkeeper.recovery.breaker import BreakerState, CircuitBreaker, CircuitOpenError

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class Boom(Exception):
    pass


def fail() -> None:
    raise Boom("down")


def succeed() -> str:
    return "ok"


def breaker(clock: FakeClock, **options: Any) -> tuple[CircuitBreaker, list[tuple[str, str]]]:
    changes: list[tuple[str, str]] = []
    settings: dict[str, Any] = {
        "failure_rate": 0.5,
        "min_calls": 4,
        "window": 10,
        "wait_in_open": 30,
        "half_open_calls": 2,
        "clock": clock,
        "on_change": lambda old, new: changes.append((old.value, new.value)),
    }
    return CircuitBreaker("dep", **(settings | options)), changes


def calls(b: CircuitBreaker, *outcomes: bool) -> None:
    """Make calls that succeed (True) or fail (False)."""
    for ok in outcomes:
        if ok:
            b.call(succeed)
        else:
            with pytest.raises(Boom):
                b.call(fail)


def test_closed_stays_closed_below_min_calls_whatever_the_failures() -> None:
    b, changes = breaker(FakeClock())
    calls(b, False, False, False)
    assert b.state is CLOSED and b.failure_rate == 1.0 and changes == []


def test_closed_opens_once_the_failure_rate_reaches_the_threshold() -> None:
    b, changes = breaker(FakeClock())
    calls(b, True, True, True, False)  # 25%
    assert b.state is CLOSED
    calls(b, False)  # 2 of 5 = 40%
    assert b.state is CLOSED
    calls(b, False)  # 3 of 6 = 50%
    assert b.state is OPEN and changes == [("closed", "open")]


def test_open_refuses_calls_without_calling_them_until_wait_in_open_has_passed() -> None:
    clock = FakeClock()
    b, _ = breaker(clock)
    calls(b, False, False, False, False)
    called: list[int] = []
    clock.advance(29)
    with pytest.raises(CircuitOpenError) as refused:
        b.call(lambda: called.append(1))
    assert called == [] and refused.value.retry_in == pytest.approx(1)
    assert "'dep' is open" in str(refused.value) and b.rejected == 1
    clock.advance(1)
    assert b.state is HALF_OPEN


def test_half_open_permits_its_trial_calls_only_and_closes_when_they_succeed() -> None:
    clock = FakeClock()
    b, changes = breaker(clock)
    calls(b, False, False, False, False)
    clock.advance(30)
    with b:  # first trial, still running
        with b:  # second trial
            with pytest.raises(CircuitOpenError) as refused:
                b.call(succeed)  # a third is refused while the trials run
            assert refused.value.retry_in == 0
        assert b.state is HALF_OPEN  # one trial succeeded, one still running
    assert b.state is CLOSED
    assert b.failure_rate == 0.0  # a fresh window
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_a_failing_trial_opens_it_again_for_another_wait() -> None:
    clock = FakeClock()
    b, changes = breaker(clock)
    calls(b, False, False, False, False)
    clock.advance(30)
    calls(b, True, False)
    assert b.state is OPEN
    clock.advance(29)
    assert b.state is OPEN
    clock.advance(1)
    assert b.state is HALF_OPEN
    assert changes[-2:] == [("half_open", "open"), ("open", "half_open")]


def test_the_window_slides_by_count() -> None:
    b, _ = breaker(FakeClock(), window=4, min_calls=4, failure_rate=0.75)
    calls(b, False, False, True, True)  # 50%
    calls(b, True, False)  # window: True True True False = 25%
    assert b.state is CLOSED and b.failure_rate == 0.25


def test_the_window_slides_by_time() -> None:
    clock = FakeClock()
    b, _ = breaker(clock, window_time=60)
    calls(b, False, False, False)
    clock.advance(61)  # those three failures are out of the window now
    calls(b, True, True, True, False)
    assert b.state is CLOSED and b.failure_rate == 0.25


def test_exceptions_outside_failure_on_pass_through_as_successes() -> None:
    b, _ = breaker(FakeClock(), failure_on=(Boom,), min_calls=1)

    def not_found() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        b.call(not_found)
    assert b.state is CLOSED and b.failure_rate == 0.0


def test_fallback_answers_refused_and_failed_calls() -> None:
    seen: list[type[BaseException]] = []

    def fallback(exc: BaseException) -> str:
        seen.append(type(exc))
        return "cached"

    b, _ = breaker(FakeClock(), min_calls=1, failure_rate=1.0, fallback=fallback)
    assert b.call(fail) == "cached"
    assert b.state is OPEN
    assert b.call(succeed) == "cached"
    assert seen == [Boom, CircuitOpenError]


def test_as_a_decorator_of_a_function() -> None:
    clock = FakeClock()
    b, _ = breaker(clock, min_calls=2, failure_rate=1.0)
    attempts: list[str] = []

    @b
    def fetch(key: str) -> str:
        attempts.append(key)
        raise Boom(key)

    for key in ("a", "b", "c"):
        with pytest.raises((Boom, CircuitOpenError)):
            fetch(key)
    assert attempts == ["a", "b"] and b.state is OPEN
    assert fetch.__name__ == "fetch"


async def test_as_a_decorator_of_a_coroutine_function_with_an_async_fallback() -> None:
    clock = FakeClock()

    async def fallback(exc: BaseException) -> str:
        await asyncio.sleep(0)
        return f"fallback after {type(exc).__name__}"

    b, changes = breaker(clock, min_calls=1, failure_rate=1.0, half_open_calls=1, fallback=fallback)
    healthy = False

    @b
    async def fetch() -> str:
        await asyncio.sleep(0)
        if not healthy:
            raise Boom("down")
        return "fresh"

    assert await fetch() == "fallback after Boom"
    assert await fetch() == "fallback after CircuitOpenError"
    healthy = True
    clock.advance(30)
    assert await fetch() == "fresh"
    assert b.state is CLOSED
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_as_an_async_context_manager() -> None:
    b, _ = breaker(FakeClock(), min_calls=2, failure_rate=1.0)
    for _ in range(2):
        with pytest.raises(Boom):
            async with b:
                raise Boom("down")
    with pytest.raises(CircuitOpenError):
        async with b:
            pytest.fail("the block must not run while the breaker is open")
    assert (b.calls, b.failures, b.rejected) == (2, 2, 1)


async def test_cancellation_is_not_counted_as_a_failure() -> None:
    b, _ = breaker(FakeClock(), min_calls=1, failure_rate=1.0)
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(b.acall(slow))
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state is CLOSED and b.failures == 0


def test_reset_closes_it() -> None:
    b, _ = breaker(FakeClock(), min_calls=1, failure_rate=1.0)
    calls(b, False)
    b.reset()
    assert b.state is CLOSED and b.failure_rate == 0.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"failure_rate": 0}, "failure_rate"),
        ({"min_calls": 11}, "min_calls"),
        ({"half_open_calls": 0}, "half_open_calls"),
        ({"window_time": 0}, "window_time"),
        ({"wait_in_open": -1}, "wait_in_open"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        breaker(FakeClock(), **options)


def test_it_is_part_of_the_library_surface() -> None:
    import watchkeeper

    assert watchkeeper.CircuitBreaker is CircuitBreaker
