"""Delivers queued notifications: retries with backoff, survives restarts, gives up visibly."""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from watchkeeper.core.clock import Clock
from watchkeeper.notify.channels.base import Channel, Message, Outcome
from watchkeeper.notify.config import DEFAULT_MAX_IN_FLIGHT, DeliveryConfig
from watchkeeper.store import outbox as store
from watchkeeper.store.database import Database

log = logging.getLogger(__name__)

_IDLE_POLL = 5.0  # seconds between looks at the table when nothing wakes us


def backoff_delay(
    attempts: int, initial: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Exponential backoff with jitter in [d/2, d], so retries spread yet never come too soon."""
    exponent = min(max(0, attempts - 1), 60)  # 2**60 s is past any cap; avoids float overflow
    delay = min(maximum, initial * 2.0**exponent)
    return (rng or random).uniform(delay / 2, delay)


class OutboxWorker:
    """The only sender of notifications. Delivery is at-least-once with a stable
    Idempotency-Key, which receivers use to see each (alert, event) exactly once.

    Each channel is a lane: at most its `max_in_flight` deliveries in hand at once, claimed
    from its own pending entries, so a slow or hung receiver holds only its own slots. Lanes
    are claimed round-robin, one entry per lane per turn, under an overall ceiling of
    `parallel` deliveries. Deliveries run as tasks of their own; each one settles its entry
    (the worker stays the one writer of delivery state), frees its slot and wakes the loop,
    which claims again at once."""

    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel[Any]],
        config: DeliveryConfig,
        clock: Clock,
        *,
        batch: int = 50,
        parallel: int = 256,
    ) -> None:
        self._db = db
        self._channels = channels
        self._config = config
        self._clock = clock
        self._batch = batch
        self._parallel = parallel
        self._wake = asyncio.Event()
        self._stopping = False
        self._in_hand: dict[str, set[int]] = {}
        """Lane (channel name) -> ids of its entries being delivered."""
        self._sends: set[asyncio.Task[None]] = set()
        self._last_lane = ""
        """The lane claimed from last: the next claim starts with the lane after it."""
        self._cooling: dict[int, float] = {}
        """Entry id -> monotonic time before which it is not claimed again: its delivery
        could not be settled (the database may be restarting), so it is not sent again and
        again meanwhile."""
        self._claims: list[set[int]] = []
        """One set per claim reading the database right now: the ids of the deliveries
        that ended meanwhile (the claim may have read them still pending, and must not send
        them again)."""
        self._ended = 0
        """Deliveries ended so far (settled or not)."""
        self.depth = 0
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None

    def wake(self) -> None:
        """Called after a transaction queued entries: deliver now, not at the next poll."""
        self._wake.set()

    def hand_off(self, rows: list[Any]) -> None:
        """Deliver these entries, just committed as pending (rows as `outbox.due` returns
        them), without a claim's trip to the database: each one whose lane has a free slot
        starts at once; the loop claims the others as usual."""
        left = False
        for row in rows:
            if self._stopping or len(self._sends) >= self._parallel:
                left = True
                break
            hand = self._in_hand.get(row.channel, ())
            if row.id in hand or row.id in self._cooling:
                continue  # a claim took it first
            if len(hand) >= self.lane_limit(row.channel):
                left = True  # the lane is full: its turn comes with the next claim
                continue
            self._start(row)
        if left:
            self._wake.set()

    def stop(self) -> None:
        """Finish the deliveries in hand, then leave `run`."""
        self._stopping = True
        self._wake.set()

    @property
    def in_flight(self) -> dict[str, int]:
        """Deliveries in hand, by lane (channel name); lanes with none are left out."""
        return {lane: len(ids) for lane, ids in self._in_hand.items() if ids}

    @property
    def claiming(self) -> bool:
        """Whether a claim is reading the database right now (what it read is not taken
        yet)."""
        return bool(self._claims)

    @property
    def idle(self) -> bool:
        """Nothing in hand and no pass pending (the running loop sleeps until its next look)."""
        return not self._sends and not self._wake.is_set()

    def lane_limit(self, channel: str) -> int:
        """How many deliveries `channel`'s lane may have in hand at once."""
        configured = self._channels.get(channel)
        limit = getattr(configured.config, "max_in_flight", None) if configured else None
        return limit if isinstance(limit, int) else DEFAULT_MAX_IN_FLIGHT

    async def run(self) -> None:
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    await self._start_due()
                    wait = await self._seconds_until_next()
                except Exception as exc:  # the database may be restarting: keep going
                    log.exception("outbox pass failed")
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    wait = _IDLE_POLL
                if self._stopping:
                    break
                # Through the clock, like the other timed loops: a test clock moved wakes it.
                await self._clock.wait(self._wake, wait)
            await asyncio.gather(*self._sends)  # the deliveries in hand
        finally:
            # Cancelled: what is in hand stays pending and goes out again, same key.
            for send in self._sends:
                send.cancel()

    async def _seconds_until_next(self) -> float:
        self.depth, next_at = await store.pending(
            self._db,
            skip_ids=self._in_hand_ids() | self._cooling.keys(),
            skip_channels=self._full_lanes(),
        )
        wait = _IDLE_POLL
        if len(self._sends) >= self._parallel:
            return wait  # a delivery that ends wakes the loop
        if next_at is not None:
            wait = min(wait, max(0.0, (next_at - self._clock.now()).total_seconds()))
        if self._cooling:
            wait = min(wait, max(0.0, min(self._cooling.values()) - self._clock.monotonic()))
        return wait

    async def deliver_due(self) -> int:
        """Attempt every entry that is due now, lane by lane, and wait for the attempts;
        return how many were attempted."""
        attempted = 0
        freed = asyncio.Event()
        while True:
            # Cleared before claiming: a delivery that ends while the claim reads the database
            # frees its slot after the claim looked, and must bring another claim.
            freed.clear()
            ended_before = self._ended
            attempted += await self._start_due()
            if not self._sends:
                if self._ended != ended_before:
                    # The last deliveries ended while the claim read: their lanes, full
                    # when it looked, have room now.
                    continue
                return attempted
            for send in self._sends:
                send.add_done_callback(lambda _: freed.set())
            await freed.wait()

    # -- lanes ------------------------------------------------------------------------------

    def _in_hand_ids(self) -> set[int]:
        return set().union(*self._in_hand.values())

    def _full_lanes(self) -> list[str]:
        return [lane for lane, ids in self._in_hand.items() if len(ids) >= self.lane_limit(lane)]

    async def _start_due(self) -> int:
        """Claim what is due for the lanes with a free slot and start delivering it; return
        how many deliveries were started."""
        started = 0
        while not self._stopping and len(self._sends) < self._parallel:
            self._cool_down()
            ended: set[int] = set()
            self._claims.append(ended)
            try:
                rows = await store.due(
                    self._db,
                    self._clock.now(),
                    self._batch,
                    per_channel=max(
                        (self.lane_limit(name) for name in self._channels),
                        default=DEFAULT_MAX_IN_FLIGHT,
                    ),
                    skip_ids=self._in_hand_ids() | self._cooling.keys(),
                    skip_channels=self._full_lanes(),
                )
            finally:
                self._claims = [c for c in self._claims if c is not ended]
            # What was handed off (`hand_off`) while the claim read may be in hand, or even
            # delivered already: the rows read then are not sent twice.
            in_hand = self._in_hand_ids()
            claimed = self._claim([r for r in rows if r.id not in in_hand and r.id not in ended])
            for row in claimed:
                self._start(row, claimed=True)
            started += len(claimed)
            if len(rows) < self._batch or not claimed:
                break  # all that is due was read (or nothing more can be taken)
        return started

    def _start(self, row: Any, *, claimed: bool = False) -> None:
        """Deliver `row` in a task of its own (`claimed`: `_claim` put it in hand)."""
        if not claimed:
            self._in_hand.setdefault(row.channel, set()).add(row.id)
        send = asyncio.create_task(self._send(row), name=f"outbox-{row.channel}-{row.id}")
        self._sends.add(send)
        send.add_done_callback(self._sends.discard)

    def _cool_down(self) -> None:
        """Forget the entries whose settling failed long enough ago to try them again."""
        now = self._clock.monotonic()
        for entry_id in [i for i, until in self._cooling.items() if until <= now]:
            del self._cooling[entry_id]

    def _claim(self, rows: list[Any]) -> list[Any]:
        """Take entries from `rows` round-robin, one per lane per turn, starting after the
        lane claimed from last, while the lane has a free slot and the ceiling allows."""
        queues: dict[str, deque[Any]] = {}
        for row in rows:
            queues.setdefault(row.channel, deque()).append(row)
        lanes = sorted(queues)
        first = bisect.bisect_right(lanes, self._last_lane)
        order = lanes[first:] + lanes[:first]
        claimed: list[Any] = []
        progressed = True
        while progressed:
            progressed = False
            for lane in order:
                if len(self._sends) + len(claimed) >= self._parallel:
                    return claimed
                if queues[lane] and len(self._in_hand.get(lane, ())) < self.lane_limit(lane):
                    row = queues[lane].popleft()
                    self._in_hand.setdefault(lane, set()).add(row.id)
                    claimed.append(row)
                    self._last_lane = lane
                    progressed = True
        return claimed

    async def _send(self, row: Any) -> None:
        """Deliver one claimed entry and settle it; free its slot however that ends."""
        try:
            await self._attempt(row)
        except Exception as exc:  # settling failed: the entry stays pending, sent again later
            log.exception("settling %s to %s failed", row.event, row.channel)
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._cooling[row.id] = self._clock.monotonic() + _IDLE_POLL
        finally:
            self._sends.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._ended += 1
            for ended in self._claims:
                ended.add(row.id)
            hand = self._in_hand.get(row.channel, set())
            hand.discard(row.id)
            if not hand:
                self._in_hand.pop(row.channel, None)
            self._wake.set()

    async def _attempt(self, row: Any) -> None:
        now = self._clock.now()
        channel = self._channels.get(row.channel)
        attempt = row.attempts + 1
        if channel is None:
            outcome = Outcome.permanent(f"channel {row.channel!r} is no longer configured")
        else:
            message = Message(
                id=row.id,
                idempotency_key=row.idempotency_key,
                event=row.event,
                payload=row.payload,
                created_at=row.created_at,
                attempt=attempt,
            )
            try:
                # Channels apply their own timeouts; this one guards against a channel bug.
                async with asyncio.timeout(self._config.timeout.total_seconds() + 5):
                    outcome = await channel.send(message)
            except TimeoutError:
                outcome = Outcome.temporary("delivery timed out")
            except Exception as exc:
                log.exception("channel %s crashed delivering %s", row.channel, row.event)
                outcome = Outcome.temporary(f"{type(exc).__name__}: {exc}")
        await self._settle(row, attempt, outcome, now)

    async def _settle(self, row: Any, attempt: int, outcome: Outcome, now: datetime) -> None:
        common: dict[str, Any] = {"attempts": attempt, "last_attempt_at": now}
        if outcome.delivered:
            await store.settle(self._db, row.id, status=store.DELIVERED, delivered_at=now, **common)
            self.delivered += 1  # counted once settled: a settle that fails is tried again
            log.info("delivered %s to %s (attempt %d)", row.event, row.channel, attempt)
            return
        expired = now - row.created_at >= self._config.max_age
        if outcome.retry and not expired:
            delay = backoff_delay(
                attempt,
                self._config.backoff_initial.total_seconds(),
                self._config.backoff_max.total_seconds(),
            )
            retry_after = outcome.retry_after
            if outcome.retry_at is not None:  # an HTTP-date: how far it is on our clock
                retry_after = (outcome.retry_at - now).total_seconds()
            if retry_after:
                delay = min(max(delay, retry_after), self._config.backoff_max.total_seconds())
            await store.settle(
                self._db,
                row.id,
                next_attempt_at=now + timedelta(seconds=delay),
                last_error=outcome.error,
                **common,
            )
            log.warning(
                "delivering %s to %s failed (attempt %d), retry in %.1fs: %s",
                row.event,
                row.channel,
                attempt,
                delay,
                outcome.error,
            )
            return
        reason = outcome.error or "failed"
        if expired and outcome.retry:
            reason = f"gave up after {attempt} attempts over {self._config.max_age}: {reason}"
        await store.settle(self._db, row.id, status=store.FAILED, last_error=reason, **common)
        self.failed += 1
        log.error("notification %s to %s failed for good: %s", row.event, row.channel, reason)
