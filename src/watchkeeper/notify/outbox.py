"""Delivers queued notifications: retries with backoff, survives restarts, gives up visibly."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from watchkeeper.core.clock import Clock
from watchkeeper.notify.channels.base import Channel, Message, Outcome
from watchkeeper.notify.config import DeliveryConfig
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
    Idempotency-Key, which receivers use to see each (alert, event) exactly once."""

    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel[Any]],
        config: DeliveryConfig,
        clock: Clock,
        *,
        batch: int = 50,
        parallel: int = 8,
    ) -> None:
        self._db = db
        self._channels = channels
        self._config = config
        self._clock = clock
        self._batch = batch
        self._parallel = parallel
        self._wake = asyncio.Event()
        self._stopping = False
        self.depth = 0
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None

    def wake(self) -> None:
        """Called after a transaction queued entries: deliver now, not at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the deliveries in hand, then leave `run`."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.deliver_due()
                wait = await self._seconds_until_next()
            except Exception as exc:  # the database may be restarting: keep going
                log.exception("outbox pass failed")
                self.last_error = f"{type(exc).__name__}: {exc}"
                wait = _IDLE_POLL
            if self._stopping:
                break
            # Through the clock, like the other timed loops: a test clock moved wakes it.
            await self._clock.wait(self._wake, wait)

    async def _seconds_until_next(self) -> float:
        self.depth = await store.depth(self._db)
        next_at = await store.next_due_at(self._db)
        if next_at is None:
            return _IDLE_POLL
        return min(_IDLE_POLL, max(0.0, (next_at - self._clock.now()).total_seconds()))

    async def deliver_due(self) -> int:
        """Attempt every entry that is due now; return how many were attempted."""
        attempted = 0
        semaphore = asyncio.Semaphore(self._parallel)
        while not self._stopping:
            rows = await store.due(self._db, self._clock.now(), self._batch)
            if not rows:
                break
            await asyncio.gather(*(self._attempt_limited(r, semaphore) for r in rows))
            attempted += len(rows)
            if len(rows) < self._batch:
                break
        return attempted

    async def _attempt_limited(self, row: Any, semaphore: asyncio.Semaphore) -> None:
        async with semaphore:
            if not self._stopping:
                await self._attempt(row)

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
            self.delivered += 1
            await store.settle(self._db, row.id, status=store.DELIVERED, delivered_at=now, **common)
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
        self.failed += 1
        reason = outcome.error or "failed"
        if expired and outcome.retry:
            reason = f"gave up after {attempt} attempts over {self._config.max_age}: {reason}"
        await store.settle(self._db, row.id, status=store.FAILED, last_error=reason, **common)
        log.error("notification %s to %s failed for good: %s", row.event, row.channel, reason)
