"""Group commit of heartbeat pings: answered only once stored, but many per transaction.

A ping changes its heartbeat's record in memory at once and hands the record (and, for
`/start` and `/log`, a history row) to the `PingWriter`; it is answered when the transaction
holding it has committed, so an answered ping survives a crash (`kill -9`). Committing each
ping alone caps pings at what one writer commits per second (SQLite: a few hundred); the
writer instead takes everything that arrived while the previous commit ran (or, when it was
idle, what arrives within `linger`), and commits it in one transaction: one upsert per heartbeat
(its latest record) and the history rows.

- A ping that changes its heartbeat's state (a `/fail`, a late heartbeat coming back) is
  `urgent`: the writer does not linger for it, it goes with the next commit.
- A batch that fails fails only its own pings (`PingNotStored`, answered 503); the writer
  goes on with the next. No ping waits for ever: stopping the writer fails what it holds.
- At most `max_pending` pings wait: past that a ping is refused at once (`PingBacklog`,
  answered 503 with Retry-After) rather than queued in memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from watchkeeper.store.heartbeats import HeartbeatRecord

log = logging.getLogger(__name__)

LINGER = 0.002
"""Seconds an idle writer waits for more pings before committing a non-urgent one."""

MAX_PENDING = 5_000
"""Pings that may wait for their commit before new ones are refused."""

MAX_BATCH = 1_000
"""Pings per transaction at most."""

Save = Callable[[Sequence[dict[str, Any]], Sequence[dict[str, Any]]], Awaitable[None]]
"""Stores heartbeat rows (upserted by check name) and history rows in one transaction."""


class PingNotStored(Exception):
    """The ping's transaction failed (or the writer stopped): it was not stored."""


class PingBacklog(Exception):
    """Too many pings wait for their commit: this one is refused, not queued."""

    retry_after = 1.0


class _Pending:
    __slots__ = ("future", "note", "record")

    def __init__(
        self, record: HeartbeatRecord, note: dict[str, Any] | None, future: asyncio.Future[None]
    ) -> None:
        self.record = record
        self.note = note
        self.future = future


class PingWriter:
    """The one writer of heartbeat records: a task (started with the first ping, ended by
    `close`) that commits pings in groups; see the module docstring."""

    def __init__(
        self,
        save: Save,
        *,
        linger: float = LINGER,
        max_pending: int = MAX_PENDING,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._save = save
        self._linger = linger
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.commits = 0
        """Transactions committed (for tests and the benchmark's curiosity)."""

    @property
    def pending(self) -> int:
        return len(self._queue)

    def submit(
        self, record: HeartbeatRecord, note: dict[str, Any] | None = None, *, urgent: bool = False
    ) -> asyncio.Future[None]:
        """Queue `record` (as it is when its batch is taken) and `note` (a history row);
        the future resolves once they are committed, or fails with PingNotStored. Raises
        PingBacklog when `max_pending` pings already wait."""
        if self._closed:
            raise PingNotStored("the service is stopping")
        if len(self._queue) >= self._max_pending:
            raise PingBacklog(f"{len(self._queue)} pings are waiting to be stored")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(record, note, future))
        if urgent:
            self._urgent.set()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ping-writer")
        return future

    async def write(
        self, record: HeartbeatRecord, note: dict[str, Any] | None = None, *, urgent: bool = False
    ) -> None:
        """`submit` and wait for the commit."""
        await self.submit(record, note, urgent=urgent)

    async def open(self) -> None:
        """Take pings again after `close` (a runtime started anew)."""
        self._closed = False
        self._urgent.clear()

    async def close(self, timeout: float = 5.0) -> None:
        """Stop the writer: what is queued is committed first (for at most `timeout`
        seconds), then the task ends; a ping still waiting fails with PingNotStored."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            self._urgent.set()
            self._wake.set()
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._fail(self._queue, PingNotStored("the service is stopping"))
        self._queue = []

    async def _run(self) -> None:
        while True:
            # Pings that arrived while the last commit ran go at once: they have waited.
            idle = not self._queue
            await self._wake.wait()
            if not self._queue and self._closed:
                return
            if idle and not self._urgent.is_set() and len(self._queue) < self._max_batch:
                # Idle until now: give the pings arriving together a moment to join.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._linger):
                        await self._urgent.wait()
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            if not self._queue and not self._closed:
                self._wake.clear()
            if not self._closed:
                self._urgent.clear()
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            # Snapshots now: a ping arriving during the commit changes its record for the next.
            rows = {p.record.check_name: p.record.row() for p in batch}
            notes = [p.note for p in batch if p.note is not None]
            await self._save(list(rows.values()), notes)
        except asyncio.CancelledError:
            self._fail(batch, PingNotStored("the service is stopping"))
            raise
        except Exception as exc:
            log.error(
                "storing %d heartbeat pings failed: %s: %s", len(batch), type(exc).__name__, exc
            )
            failed = PingNotStored(f"{type(exc).__name__}: {exc}")
            failed.__cause__ = exc
            self._fail(batch, failed)
        else:
            self.commits += 1
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_result(None)

    @staticmethod
    def _fail(batch: list[_Pending], exc: Exception) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(exc)
                # Nobody may be awaiting it any more (the client left): not "never retrieved".
                pending.future.exception()
