"""A clock the test moves by hand: `now()` and `monotonic()` only change when told to."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta


class FakeClock:
    """Satisfies watchkeeper.core.clock.Clock. `sleep` advances time instead of waiting; `wait`
    really waits, until the event is set or the test moves the clock past its deadline, so
    running timed loops (scheduler, dispatcher, heartbeats, rules) wake exactly when the
    clock says and never on their own."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._mono = 1000.0
        self._alarms: list[tuple[float, asyncio.Future[None]]] = []
        self._parked_by: dict[int, str] = {}
        self.parks = 0
        """How many times a `wait` has parked on this clock (to see that a loop went round)."""
        self._park_watchers: list[asyncio.Future[None]] = []

    def now(self) -> datetime:
        return self._now

    def next_park(self) -> asyncio.Future[None]:
        """Done when the next `wait` parks on this clock."""
        watcher: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._park_watchers.append(watcher)
        return watcher

    def monotonic(self) -> float:
        return self._mono

    @property
    def waiting(self) -> int:
        """How many `wait` calls are parked on a deadline of this clock."""
        return sum(1 for _, alarm in self._alarms if not alarm.done())

    @property
    def next_deadline(self) -> float | None:
        """Seconds from now to the earliest parked `wait` deadline (None: nobody waits)."""
        pending = [at for at, alarm in self._alarms if not alarm.done()]
        return min(pending) - self._mono if pending else None

    @property
    def parked(self) -> dict[str, float]:
        """Name of each task parked in `wait` -> seconds from now to its deadline."""
        return {
            self._parked_by[id(alarm)]: at - self._mono
            for at, alarm in self._alarms
            if not alarm.done()
        }

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._mono += max(0.0, (when - self._now).total_seconds())
        self._now = when.astimezone(UTC)
        self._ring()

    def advance(self, seconds: float | timedelta) -> datetime:
        delta = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        self._now += delta
        self._mono += delta.total_seconds()
        self._ring()
        return self._now

    def _ring(self) -> None:
        for at, alarm in self._alarms:
            # Times move in whole microseconds (timedelta): a deadline within one is reached.
            if at <= self._mono + 1e-6 and not alarm.done():
                alarm.set_result(None)

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)  # still yield, like a real sleep

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        if event.is_set() or seconds <= 0:
            await asyncio.sleep(0)
            return event.is_set()
        alarm: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self._mono + seconds, alarm)
        self._alarms.append(entry)
        task = asyncio.current_task()
        self._parked_by[id(alarm)] = task.get_name() if task is not None else "?"
        self.parks += 1
        watchers, self._park_watchers = self._park_watchers, []
        for watcher in watchers:
            if not watcher.done():
                watcher.set_result(None)
        setter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({setter, alarm}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            setter.cancel()
            alarm.cancel()
            self._alarms.remove(entry)
            self._parked_by.pop(id(alarm), None)
        return event.is_set()


async def until_parked(clock: FakeClock, loops: int = 1, *, after: int = 0) -> None:
    """Wait (real time, bounded) until `loops` waits are parked on `clock` and more than
    `after` parks happened in all: every loop has done what was due and sleeps again."""
    async with asyncio.timeout(5):
        while clock.waiting < loops or clock.parks <= after:
            await clock.next_park()  # only a park can make either count grow


async def run_until(clock: FakeClock, until: datetime, loops: int = 1) -> None:
    """Move `clock` to `until` from deadline to deadline, letting the `loops` parked on it
    do what falls due at each one, as real time would."""
    while True:
        await until_parked(clock, loops)
        remaining = (until - clock.now()).total_seconds()
        deadline = clock.next_deadline
        if deadline is None or deadline > remaining:
            if remaining > 0:
                clock.advance(remaining)
                await until_parked(clock, loops)
            return
        clock.advance(deadline)
