"""Keeping SQLite's write-ahead log short when the event loop's own connection writes.

The loop's connection (`Database.loop_engine`: posted alerts, first pages, heartbeat pings)
never checkpoints, because a checkpoint copies the log into the database file and syncs it,
which would stall the loop. SQLite's other connections checkpoint after their own commits,
but a service with no checks may have no other writer: during an alert storm the log then
grew without bound (345 MB in 8 s of new alerts, with a 0.3 MB database), and every read
had to search it. This task checkpoints from a worker thread instead.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from watchkeeper.core.clock import Clock
from watchkeeper.store.database import BUSY_TIMEOUT_MS, Database

log = logging.getLogger(__name__)

EVERY_S = 1.0
"""How often the log is copied into the database file."""

RESTART_FRAMES = 4096
"""A log longer than this (pages: 16 MB) is emptied once copied. Emptying it keeps the loop's
writer waiting meanwhile (tens of milliseconds), so not at SQLite's own 1,000 pages, which an
alert storm writes in a tenth of a second."""

RESTART_WAIT_MS = 50
"""How long the truncating checkpoint waits for writers and readers to finish. It keeps
other writers out while it runs (the loop's writer falls back to its waiting path): a short
wait, tried again at the next round when readers are still busy, never a long stall."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What one round did: frames in the log before, and whether it was truncated."""

    frames: int
    truncated: bool


class WalCheckpointer:
    """Copies the write-ahead log into the database file `every` seconds after the loop's
    connection wrote (so at most once per `every` during a storm), in a worker thread: a
    passive checkpoint first (it waits for nobody; writers go on meanwhile), then,
    if the log has grown past `restart_frames`, a truncating one (short: the passive one has
    copied nearly everything). Only for SQLite in a file (`Database.worker_engine`)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        every: float = EVERY_S,
        restart_frames: int = RESTART_FRAMES,
    ) -> None:
        self._db = db
        self._clock = clock
        self._every = every
        self._restart_frames = restart_frames

    @property
    def needed(self) -> bool:
        """Whether this database has a loop connection whose log nobody else checkpoints."""
        return self._db.worker_engine() is not None

    async def run(self) -> None:
        """Checkpoint `every` seconds after the loop's connection wrote, until cancelled
        (idle, it waits for a write, not on the clock); a failed round is logged and the
        next write brings another."""
        never = asyncio.Event()  # a wait the clock ends (a test's clock moves it by hand)
        while True:
            await self._db.loop_wrote.wait()
            await self._clock.wait(never, self._every)
            self._db.loop_wrote.clear()
            try:
                await self.checkpoint()
            except Exception:
                log.warning("checkpointing the SQLite write-ahead log failed", exc_info=True)

    async def checkpoint(self) -> Checkpoint | None:
        """One round now (None: not SQLite in a file)."""
        engine = self._db.worker_engine()
        if engine is None:
            return None
        frames = await asyncio.to_thread(_passive, engine)
        if frames < self._restart_frames:
            return Checkpoint(frames=frames, truncated=False)
        # The loop's writer waits meanwhile: finding the file locked, it would take the
        # slower path through a worker thread for each of its transactions.
        async with self._db.loop_writes_paused():
            truncated = await asyncio.to_thread(_truncate, engine)
        return Checkpoint(frames=frames, truncated=truncated)


def _passive(engine: Engine) -> int:
    """Copy what the log holds into the database file, waiting for nobody; the log's
    length in frames."""
    with engine.connect() as conn:
        # (busy, frames in the log, frames copied); the log is -1 when not in WAL mode.
        _busy, frames, _copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    return max(int(frames), 0)


def _truncate(engine: Engine) -> bool:
    """Copy the rest and empty the log, waiting briefly for writers and readers; whether
    it was emptied."""
    with engine.connect() as conn:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
        try:
            busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return not busy
