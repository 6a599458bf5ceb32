"""`CircuitBreaker` for application code: stop calling a dependency that keeps failing.

    breaker = CircuitBreaker("payments", failure_rate=0.5, min_calls=10, wait_in_open=30)

    @breaker                       # sync or async functions alike
    async def charge(order): ...

    with breaker:                  # or `async with breaker:` around any block
        call_the_dependency()

States, as in resilience4j and Hystrix:

- **closed**: calls go through; their outcomes fill a sliding window (the last `window`
  calls, and only those younger than `window_time` if set). Once the window holds at least
  `min_calls` outcomes and the share of failures reaches `failure_rate`, it opens.
- **open**: calls are refused at once with `CircuitOpenError` (or answered by `fallback`)
  for `wait_in_open` seconds, then it is half-open.
- **half-open**: `half_open_calls` trial calls go through, others are refused. One failure
  opens it again; when all trials succeed it closes with an empty window.

With `registry=` (a prometheus_client `CollectorRegistry`) its state and totals are reported
on that registry at scrape time (see `breaker_metrics`); without one nothing is registered.

Time is read from an injected clock (`monotonic()` only), so tests move it by hand. A lock
makes one breaker safe to share between threads and tasks.
"""

from __future__ import annotations

import enum
import functools
import inspect
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

P = ParamSpec("P")
R = TypeVar("R")


class MonotonicClock(Protocol):
    """All a breaker reads of a clock (`watchkeeper.core.clock.Clock` has it)."""

    def monotonic(self) -> float: ...


class _SystemMonotonic:
    def monotonic(self) -> float:
        return time.monotonic()


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(Exception):
    """A call refused because the breaker is open (or half-open with its trials taken)."""

    def __init__(self, breaker: CircuitBreaker, retry_in: float) -> None:
        super().__init__(f"circuit breaker {breaker.name!r} is {breaker.state.value}")
        self.breaker = breaker
        self.retry_in = retry_in
        """Seconds until the breaker lets a trial call through (0 if trials are running)."""


Fallback = Callable[[BaseException], Any]
"""Called with the refusal (`CircuitOpenError`) or the counted failure; its result (awaited
if it is awaitable) is returned instead of raising."""


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class CircuitBreaker:
    """A closed/open/half-open breaker over a sliding failure-rate window."""

    def __init__(
        self,
        name: str = "breaker",
        *,
        failure_rate: float = 0.5,
        min_calls: int = 10,
        window: int = 100,
        window_time: float | timedelta | None = None,
        wait_in_open: float | timedelta = 30.0,
        half_open_calls: int = 1,
        failure_on: tuple[type[BaseException], ...] = (Exception,),
        fallback: Fallback | None = None,
        on_change: Callable[[BreakerState, BreakerState], None] | None = None,
        clock: MonotonicClock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not 0 < failure_rate <= 1:
            raise ValueError("failure_rate must be more than 0 and at most 1")
        if not 1 <= min_calls <= window:
            raise ValueError("min_calls must be at least 1 and at most window")
        if half_open_calls < 1:
            raise ValueError("half_open_calls must be at least 1")
        if window_time is not None and _seconds(window_time) <= 0:
            raise ValueError("window_time must be positive")
        if _seconds(wait_in_open) < 0:
            raise ValueError("wait_in_open must not be negative")
        self.name = name
        self.failure_rate_threshold = failure_rate
        self.min_calls = min_calls
        self.window_time = None if window_time is None else _seconds(window_time)
        self.wait_in_open = _seconds(wait_in_open)
        self.half_open_calls = half_open_calls
        self.failure_on = failure_on
        self.fallback = fallback
        self.on_change = on_change
        self._clock = clock or _SystemMonotonic()
        self._lock = threading.RLock()
        self._state = BreakerState.CLOSED
        self._outcomes: deque[tuple[float, bool]] = deque(maxlen=window)
        """(monotonic time, failed) of the latest calls, oldest first."""
        self._opened_at = 0.0
        self._trials = 0
        """Trial calls let through in this half-open period."""
        self._trial_successes = 0
        self.calls = 0
        self.failures = 0
        self.rejected = 0
        """Totals since creation (for metrics)."""
        if registry is not None:
            # Imported here: a breaker without metrics does not load prometheus_client.
            from watchkeeper.recovery.breaker_metrics import BreakerMetrics

            BreakerMetrics.on(registry).add(self)

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose wait is over reads as half-open."""
        with self._lock:
            if (
                self._state is BreakerState.OPEN
                and self._clock.monotonic() - self._opened_at >= self.wait_in_open
            ):
                self._move(BreakerState.HALF_OPEN)
            return self._state

    def snapshot(self) -> tuple[BreakerState, int, int, int]:
        """State, calls, failures and rejected calls, read together (for metrics)."""
        with self._lock:
            return self.state, self.calls, self.failures, self.rejected

    @property
    def failure_rate(self) -> float:
        """Share of failures in the window (0.0 when it is empty)."""
        with self._lock:
            self._prune()
            if not self._outcomes:
                return 0.0
            return sum(failed for _, failed in self._outcomes) / len(self._outcomes)

    def _prune(self) -> None:
        if self.window_time is None:
            return
        horizon = self._clock.monotonic() - self.window_time
        while self._outcomes and self._outcomes[0][0] <= horizon:
            self._outcomes.popleft()

    def _move(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        if new is BreakerState.OPEN:
            self._opened_at = self._clock.monotonic()
        if new is BreakerState.HALF_OPEN:
            self._trials = self._trial_successes = 0
        if new is BreakerState.CLOSED:
            self._outcomes.clear()
        if self.on_change is not None and old is not new:
            self.on_change(old, new)

    def reset(self) -> None:
        """Close the breaker and forget the window."""
        with self._lock:
            self._move(BreakerState.CLOSED)

    # -- the protocol every way of calling goes through ------------------------------------

    def _acquire(self) -> None:
        """Let a call through or raise CircuitOpenError."""
        with self._lock:
            state = self.state
            if state is BreakerState.CLOSED:
                return
            if state is BreakerState.HALF_OPEN and self._trials < self.half_open_calls:
                self._trials += 1
                return
            self.rejected += 1
            retry_in = 0.0
            if state is BreakerState.OPEN:
                retry_in = self.wait_in_open - (self._clock.monotonic() - self._opened_at)
            raise CircuitOpenError(self, max(0.0, retry_in))

    def _record(self, failed: bool) -> None:
        with self._lock:
            self.calls += 1
            self.failures += failed
            if self._state is BreakerState.HALF_OPEN:
                if failed:
                    self._move(BreakerState.OPEN)
                else:
                    self._trial_successes += 1
                    if self._trial_successes >= self.half_open_calls:
                        self._move(BreakerState.CLOSED)
                return
            if self._state is BreakerState.OPEN:
                return  # a call let through before it opened, finishing late
            self._outcomes.append((self._clock.monotonic(), failed))
            self._prune()
            if (
                failed
                and len(self._outcomes) >= self.min_calls
                and self.failure_rate >= self.failure_rate_threshold
            ):
                self._move(BreakerState.OPEN)

    def record(self, *, failed: bool) -> None:
        """Count one outcome observed outside the breaker (a check's result), as a call's."""
        self._record(failed)

    def _counts(self, exc: BaseException) -> bool:
        return isinstance(exc, self.failure_on)

    # -- sync and async calls ------------------------------------------------------------

    def call(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Call `func` through the breaker."""
        try:
            self._acquire()
        except CircuitOpenError as refused:
            return self._fallback_or_raise(refused)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            counted = self._counts(exc)
            self._record(counted)
            if counted and self.fallback is not None:
                return self._fallback_or_raise(exc)
            raise
        self._record(False)
        return result

    async def acall(self, func: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
        """Await `func(...)` through the breaker."""
        try:
            self._acquire()
        except CircuitOpenError as refused:
            return await self._afallback_or_raise(refused)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            # Cancellation is not the dependency's failure; it is not counted (by default).
            counted = self._counts(exc)
            self._record(counted)
            if counted and self.fallback is not None:
                return await self._afallback_or_raise(exc)
            raise
        self._record(False)
        return result

    def _fallback_or_raise(self, exc: BaseException) -> Any:
        if self.fallback is None:
            raise exc
        return self.fallback(exc)

    async def _afallback_or_raise(self, exc: BaseException) -> Any:
        result = self._fallback_or_raise(exc)
        return await result if inspect.isawaitable(result) else result

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Decorate a function or coroutine function: every call goes through the breaker."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.acall(func, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return self.call(func, *args, **kwargs)

        return wrapper

    # -- context managers (no fallback: there is no value to stand in for) ------------------

    def __enter__(self) -> CircuitBreaker:
        self._acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._record(exc is not None and self._counts(exc))

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state.value})"


__all__ = ["BreakerState", "CircuitBreaker", "CircuitOpenError", "Fallback"]
