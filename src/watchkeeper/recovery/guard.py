"""Storm guards: how often and how many recovery actions may run.

Per target (`TargetGuard`): at most `max_attempts` attempts within `within`, at least
`cooldown` between the end of one attempt and the start of the next, one attempt at a time.
When the budget is spent the target is *exhausted*: locked out until `reset()` (the check is
UP again, or an operator reset it), not merely until the window slides on, so a futile
action never runs again on its own. Across all targets (`RecoveryGuard`), at most
`max_concurrent` attempts run at once.

Pure logic on an injected clock (only `monotonic()` is read); nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from watchkeeper.core.clock import Clock


class GuardSettings(Protocol):
    """What a guard reads of an action's config (`recovery.config.Guards` has these)."""

    @property
    def max_attempts(self) -> int: ...

    @property
    def within(self) -> timedelta: ...

    @property
    def cooldown(self) -> timedelta: ...


class GuardState(enum.StrEnum):
    """What a target may do now, as the API and dashboard show it."""

    READY = "ready"
    RUNNING = "running"
    PENDING_APPROVAL = "pending_approval"
    """A runbook run waits for a person to approve it."""
    COOLING_DOWN = "cooling_down"
    EXHAUSTED = "exhausted"


class Refused(Exception):
    """An attempt the guard does not allow now; `state` says why (the message says more)."""

    def __init__(self, state: GuardState, message: str) -> None:
        super().__init__(message)
        self.state = state


@dataclass(slots=True)
class Attempt:
    """One allowed attempt. Inside `RecoveryGuard.attempt`, set `ok = False` for a failure
    that did not raise; after the block, `exhausted` says whether to escalate."""

    target: str
    number: int
    """Its number within the current window (1 = first)."""
    started: float
    """Monotonic time the attempt was allowed."""
    ok: bool = True
    exhausted: bool = False


class TargetGuard:
    """Attempt window, cooldown, lock-out and one-at-a-time for one target."""

    def __init__(self, name: str, settings: GuardSettings, clock: Clock) -> None:
        self.name = name
        self.settings = settings
        self._clock = clock
        self._attempts: deque[float] = deque()
        self._last_end: float | None = None
        self.running = False
        self.exhausted = False
        self.pending: str | None = None
        """The id of a run waiting for approval (no other run starts meanwhile)."""

    def _prune(self) -> None:
        horizon = self._clock.monotonic() - self.settings.within.total_seconds()
        while self._attempts and self._attempts[0] <= horizon:
            self._attempts.popleft()

    @property
    def attempts(self) -> int:
        """Attempts within the current window."""
        self._prune()
        return len(self._attempts)

    def cooldown_left(self) -> float:
        """Seconds until the cooldown after the last attempt is over (0 if it is)."""
        if self._last_end is None:
            return 0.0
        passed = self._clock.monotonic() - self._last_end
        return max(0.0, self.settings.cooldown.total_seconds() - passed)

    @property
    def state(self) -> GuardState:
        if self.exhausted:
            return GuardState.EXHAUSTED
        if self.running:
            return GuardState.RUNNING
        if self.pending is not None:
            return GuardState.PENDING_APPROVAL
        if self.cooldown_left() > 0:
            return GuardState.COOLING_DOWN
        return GuardState.READY

    def begin(self) -> Attempt:
        """Allow one attempt now, or raise `Refused`. Every allowed attempt must `end`."""
        self.admit()
        if self.attempts >= self.settings.max_attempts:
            # The budget was spent by attempts that each looked successful (a flapping
            # target): stop here too rather than restart it forever.
            self.exhausted = True
            raise Refused(GuardState.EXHAUSTED, self.exhausted_message())
        now = self._clock.monotonic()
        self._attempts.append(now)
        self.running = True
        return Attempt(self.name, len(self._attempts), now)

    def admit(self) -> None:
        """Raise `Refused` if an attempt could not start now (locked out, running, waiting
        for approval, cooling down); changes nothing."""
        if self.exhausted:
            raise Refused(GuardState.EXHAUSTED, self.exhausted_message())
        if self.running:
            raise Refused(GuardState.RUNNING, f"{self.name}: an attempt is already running")
        if self.pending is not None:
            raise Refused(
                GuardState.PENDING_APPROVAL,
                f"{self.name}: run {self.pending} is waiting for approval",
            )
        if (left := self.cooldown_left()) > 0:
            raise Refused(GuardState.COOLING_DOWN, f"{self.name}: cooling down ({left:.0f}s left)")

    def end(self, *, succeeded: bool) -> bool:
        """Record the end of the running attempt; return whether the target is now
        exhausted (its last allowed attempt failed: time to escalate)."""
        self.running = False
        self._last_end = self._clock.monotonic()
        if not succeeded and self.attempts >= self.settings.max_attempts:
            self.exhausted = True
        return self.exhausted

    def attempt_times(self) -> list[float]:
        """Monotonic start times of the attempts within the current window (to store)."""
        self._prune()
        return list(self._attempts)

    def restore(self, times: list[float], *, exhausted: bool) -> None:
        """Take back stored state: attempt start times (monotonic, on this guard's clock)
        and the lock-out, as they were before a restart."""
        self._attempts = deque(sorted(times))
        self._prune()
        self.exhausted = exhausted

    def exhausted_message(self) -> str:
        n = self.settings.max_attempts
        return f"automatic recovery exhausted after {n} attempt{'s' if n != 1 else ''}"

    def reset(self) -> None:
        """Forget attempts, cooldown and lock-out (check UP again, or an operator's reset).
        A running attempt stays running."""
        self._attempts.clear()
        self._last_end = None
        self.exhausted = False


class RecoveryGuard:
    """Every target's guard, and the limit on attempts running at once across all of them."""

    def __init__(self, clock: Clock, max_concurrent: int = 4) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self._clock = clock
        self._slots = asyncio.Semaphore(max_concurrent)
        self._targets: dict[str, TargetGuard] = {}
        self.active = 0
        """Attempts holding a slot right now."""
        self.waiting = 0
        """Attempts allowed by their target's guard, waiting for a slot."""

    def target(self, name: str, settings: GuardSettings) -> TargetGuard:
        """The guard of `name` (created on first use; `settings` replace the old ones)."""
        guard = self._targets.get(name)
        if guard is None:
            guard = self._targets[name] = TargetGuard(name, settings, self._clock)
        guard.settings = settings
        return guard

    def get(self, name: str) -> TargetGuard | None:
        return self._targets.get(name)

    @asynccontextmanager
    async def attempt(self, name: str, settings: GuardSettings) -> AsyncIterator[Attempt]:
        """Run one attempt of `name` inside the block: raises `Refused` at once if its guard
        says no, else waits for a free slot first. An exception from the block, or
        `attempt.ok = False`, counts the attempt as failed."""
        guard = self.target(name, settings)
        attempt = guard.begin()  # before waiting: a second trigger meanwhile sees RUNNING
        ok = False
        try:
            self.waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self.waiting -= 1
            self.active += 1
            try:
                yield attempt
                ok = attempt.ok
            finally:
                self.active -= 1
                self._slots.release()
        finally:
            attempt.exhausted = guard.end(succeeded=ok)

    def reset(self, name: str) -> None:
        """Lift the lock-out and forget the attempts of `name`."""
        if (guard := self._targets.get(name)) is not None:
            guard.reset()


__all__ = ["Attempt", "GuardSettings", "GuardState", "RecoveryGuard", "Refused", "TargetGuard"]
