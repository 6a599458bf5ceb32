"""One scheduler for the periodic upkeep jobs (retention, SQLite optimize and vacuum), on
the injected clock, with each job's last run (time, duration, outcome) kept for
`/health/detailed`.

A job that fails is logged with its name and runs again at its next turn; it never stops
the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from watchkeeper.core.clock import Clock
from watchkeeper.core.loops import run_timed
from watchkeeper.core.redact import Redactor
from watchkeeper.store import upkeep
from watchkeeper.store.database import Database
from watchkeeper.store.retention import Retention

log = logging.getLogger(__name__)

OK, SKIPPED, FAILED = "ok", "skipped", "failed"
_IDLE = 3600.0  # seconds; a job is never due further away than its own period anyway

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one run of a job did: `ok` or `skipped` (nothing to do here), and a word why."""

    status: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Job:
    """A named periodic job: first run at start, then every `every`."""

    name: str
    every: timedelta
    run: Callable[[], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class LastRun:
    """A job's last run: when it started, how long it took (seconds), how it ended."""

    at: datetime
    duration: float
    outcome: str
    detail: str = ""


class Housekeeping:
    """Runs each job when it falls due, one after another; keeps each one's last run."""

    def __init__(
        self,
        jobs: Sequence[Job],
        clock: Clock,
        *,
        redactor: Redactor | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.jobs = {job.name: job for job in jobs}
        self._clock = clock
        self._redactor = redactor or Redactor()
        # How long a run took is real time, whatever clock decides when jobs are due.
        self._timer = timer
        self._due: dict[str, datetime] = {}
        self.last_runs: dict[str, LastRun] = {}
        """Job name -> its last run (absent: not run yet)."""
        self._wake = asyncio.Event()

    async def run_due(self) -> datetime | None:
        """Run every job that is due now (each new job is due at once); return when the
        next one falls due."""
        now = self._clock.now()
        for name, job in self.jobs.items():
            if self._due.setdefault(name, now) <= now:
                await self.run_job(name)
                # From when it was due, so runs keep their phase; a job that fell behind
                # (the process slept) runs once, not once per missed period.
                due = self._due[name] + job.every
                self._due[name] = due if due > now else now + job.every
        return min(self._due.values(), default=None)

    async def run_job(self, name: str) -> LastRun:
        """Run job `name` now and record how it went; a failure is logged, never raised."""
        job = self.jobs[name]
        at = self._clock.now()
        started = self._timer()
        try:
            outcome = await job.run()
        except Exception as exc:
            log.exception("housekeeping job %s failed; it runs again at its next turn", name)
            outcome = Outcome(FAILED, self._redactor(f"{type(exc).__name__}: {exc}"))
        last = LastRun(at, self._timer() - started, outcome.status, outcome.detail)
        self.last_runs[name] = last
        return last

    async def run(self) -> None:
        """Run the jobs until cancelled."""
        await run_timed(self.run_due, self._wake, self._clock, idle=_IDLE, what="housekeeping")


def retention_job(retention: Retention, every: timedelta = HOUR) -> Job:
    """`retention`: prune every kind of history past its `storage.retention`."""

    async def run() -> Outcome:
        pruned = await retention.prune()
        return Outcome(OK, str(pruned))

    return Job("retention", every, run)


def optimize_job(db: Database, every: timedelta = DAY) -> Job:
    """`optimize`: SQLite's `PRAGMA optimize` (PostgreSQL's autovacuum does it there)."""

    async def run() -> Outcome:
        if await upkeep.optimize(db):
            return Outcome(OK)
        return Outcome(SKIPPED, f"{db.dialect}: statistics are kept by the database itself")

    return Job("optimize", every, run)


def vacuum_job(db: Database, every: timedelta = DAY) -> Job:
    """`vacuum`: SQLite's `PRAGMA incremental_vacuum`, for a database made with
    `auto_vacuum=INCREMENTAL`. Any other database is left as it is: turning the mode on
    needs a full `VACUUM`, which rewrites the whole file (a backup and a restore window)."""

    async def run() -> Outcome:
        mode = await upkeep.auto_vacuum(db)
        if mode is None:
            return Outcome(SKIPPED, f"{db.dialect}: autovacuum reclaims space by itself")
        if mode != upkeep.INCREMENTAL:
            return Outcome(
                SKIPPED,
                "the database was created without auto_vacuum=INCREMENTAL; enabling it needs "
                "a full VACUUM, which is not done here",
            )
        freed = await upkeep.incremental_vacuum(db)
        return Outcome(OK, f"{freed} free pages returned")

    return Job("vacuum", every, run)
