"""Runs every check on its interval: fixed phase per check, a global concurrency limit,
an enforced timeout, and no overlap or pile-up when a check is slower than its interval."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from watchkeeper.checks.base import Check
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import CheckResult
from watchkeeper.core.durations import format_duration

log = logging.getLogger(__name__)

ResultHandler = Callable[[Check[Any], datetime, CheckResult], Awaitable[None]]
LagObserver = Callable[[float], None]


# Checks enforce their own timeout and say what timed out; this backstop, slightly later,
# catches a check that does not (a user's callable), so no run can outlive its timeout by much.
_BACKSTOP_SLACK = 0.5


async def run_once(check: Check[Any]) -> CheckResult:
    """Run a check under its timeout; every failure becomes a result, never an exception."""
    timeout = check.config.timeout.total_seconds()
    try:
        async with asyncio.timeout(timeout + _BACKSTOP_SLACK):
            return await check.run()
    except TimeoutError:
        return CheckResult.down(f"timed out after {format_duration(check.config.timeout)}")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("check %s crashed", check.name)
        return CheckResult.unknown(f"check crashed: {type(exc).__name__}: {exc}")


class Scheduler:
    """Owns one task per check. `start` launches them, `stop` ends them gracefully."""

    def __init__(
        self,
        checks: list[Check[Any]],
        on_result: ResultHandler,
        clock: Clock,
        *,
        max_concurrency: int = 500,
        shutdown_grace: float = 5.0,
        on_lag: LagObserver | None = None,
        is_paused: Callable[[str], bool] = lambda _name: False,
        is_held: Callable[[str], bool] = lambda _name: False,
        rng: random.Random | None = None,
    ) -> None:
        self._checks = {c.name: c for c in checks}
        self._on_result = on_result
        self._clock = clock
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._shutdown_grace = shutdown_grace
        self._on_lag = on_lag
        self._is_paused = is_paused
        self._is_held = is_held
        """A check whose run is skipped now (its circuit breaker is open); `run_now` still
        runs it."""
        self._rng = rng or random.Random()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._kicks: dict[str, asyncio.Event] = {}
        self._in_flight: set[str] = set()
        self._stopping = False
        self._started = False
        self._released = asyncio.Event()
        self._released.set()
        self.runs = 0
        self.last_lag = 0.0

    @property
    def running(self) -> bool:
        return self._started and not self._stopping

    @property
    def scheduled(self) -> set[str]:
        """Names of the checks that have a running loop."""
        return {name for name, task in self._tasks.items() if not task.done()}

    def _initial_delay(self, interval: float) -> float:
        # Spread first runs over the interval (capped, so a new check reports soon) to avoid a
        # thundering herd at start; the phase then stays fixed, so runs never drift.
        return self._rng.uniform(0, min(interval, 5.0))

    def start(self) -> None:
        self._stopping = False
        self._started = True
        for check in self._checks.values():
            self._launch(check)

    def hold(self) -> None:
        """Keep every check's first run (and its phase) from being timed until `release`: a
        loop launched meanwhile waits, so no probe can run before, say, the HTTP server it
        may be pointed at listens."""
        self._released.clear()

    def release(self) -> None:
        """Let the held checks be timed: each first run comes within its spread (at most 5 s)
        from now, as after an unheld start."""
        self._released.set()

    @property
    def held(self) -> bool:
        """Whether first runs wait for `release`."""
        return not self._released.is_set()

    def _launch(self, check: Check[Any]) -> None:
        self._tasks[check.name] = asyncio.create_task(self._loop(check), name=f"check:{check.name}")

    def add(self, check: Check[Any]) -> None:
        """Schedule one more check (first run within its interval, at most 5 s away)."""
        if check.name in self._checks:
            raise KeyError(f"{check.name!r} is already scheduled")
        self._checks[check.name] = check
        if self._started and not self._stopping:
            self._launch(check)

    async def remove(self, name: str) -> Check[Any] | None:
        """Stop scheduling a check and return it (None if unknown). A run in flight gets the
        shutdown grace to finish and hand over its result, then is cancelled: once this
        returns, no result of the check arrives any more."""
        check = self._checks.pop(name, None)
        task = self._tasks.pop(name, None)
        self._kicks.pop(name, None)
        if task is not None:
            if name in self._in_flight:
                await asyncio.wait([task], timeout=self._shutdown_grace)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return check

    async def replace(self, check: Check[Any]) -> Check[Any] | None:
        """Swap a check for a new definition of the same name; return the old one."""
        old = await self.remove(check.name)
        self.add(check)
        return old

    async def _loop(self, check: Check[Any]) -> None:
        interval = check.config.interval.total_seconds()
        kick = self._kicks.setdefault(check.name, asyncio.Event())
        # Before the phase is fixed: a held start must neither run early nor count as lag
        # (a `run_now` meanwhile runs it right after the release).
        await self._released.wait()
        next_due = self._clock.monotonic() + self._initial_delay(interval)
        # A removed check's loop ends after the run in hand (see `remove`).
        while not self._stopping and self._checks.get(check.name) is check:
            kicked = await self._sleep_or_kick(kick, next_due - self._clock.monotonic())
            if (self._is_paused(check.name) or self._is_held(check.name)) and not kicked:
                next_due += interval
                continue
            self._in_flight.add(check.name)
            try:
                # The slot covers the probe only: a slow database handling results must not
                # take slots away from the probes.
                async with self._semaphore:
                    if self._stopping or self._checks.get(check.name) is not check:
                        return
                    lag = max(0.0, self._clock.monotonic() - next_due)
                    self.last_lag = lag
                    if self._on_lag:
                        self._on_lag(lag)
                    started_at = self._clock.now()
                    result = await run_once(check)
                self.runs += 1
                await self._on_result(check, started_at, result)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handling the result of %s failed", check.name)
            finally:
                self._in_flight.discard(check.name)
            if not kicked:
                next_due += interval
            now = self._clock.monotonic()
            if next_due < now:
                # The run overran its slot(s): skip them instead of firing a burst to catch up.
                next_due += math.ceil((now - next_due) / interval) * interval

    async def _sleep_or_kick(self, kick: asyncio.Event, delay: float) -> bool:
        """Sleep `delay` seconds unless `run_now` kicks first; return whether it did."""
        kicked = await self._clock.wait(kick, delay)
        kick.clear()
        return kicked

    def run_now(self, name: str) -> bool:
        """Run a check as soon as a slot is free, keeping its schedule; False if unknown."""
        kick = self._kicks.get(name)
        if kick is None:
            return False
        kick.set()
        return True

    async def stop(self) -> None:
        """Let in-flight runs finish within the grace period, cancel everything else."""
        self._stopping = True
        idle = [t for n, t in self._tasks.items() if n not in self._in_flight]
        busy = [t for n, t in self._tasks.items() if n in self._in_flight]
        for task in idle:
            task.cancel()
        if busy:
            _, pending = await asyncio.wait(busy, timeout=self._shutdown_grace)
            for task in pending:
                task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
