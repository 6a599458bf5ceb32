"""Housekeeping: named periodic jobs on the injected clock, each one's last run kept, a
failing job retried at its next turn without stopping the others."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.clock import FakeClock, run_until
from tests.support.servers import wait_until
from tests.support.service import running
from watchkeeper.engine.housekeeping import (
    FAILED,
    OK,
    SKIPPED,
    Housekeeping,
    Job,
    Outcome,
    optimize_job,
    retention_job,
    vacuum_job,
)
from watchkeeper.store import upkeep
from watchkeeper.store.config import RetentionConfig
from watchkeeper.store.database import Database
from watchkeeper.store.retention import Retention

HOUR = timedelta(hours=1)


class Counted:
    """A job body that counts its runs, failing on the runs listed in `fail_on`."""

    def __init__(self, clock: FakeClock, fail_on: tuple[int, ...] = ()) -> None:
        self.clock = clock
        self.at: list[float] = []
        self.fail_on = fail_on

    async def __call__(self) -> Outcome:
        self.at.append(self.clock.monotonic())
        if len(self.at) in self.fail_on:
            raise RuntimeError(f"run {len(self.at)} broke")
        return Outcome(OK, f"run {len(self.at)}")


async def test_each_job_runs_at_start_then_every_period_on_the_injected_clock() -> None:
    clock = FakeClock()
    hourly, daily = Counted(clock), Counted(clock)
    housekeeping = Housekeeping(
        [Job("hourly", HOUR, hourly), Job("daily", 24 * HOUR, daily)], clock
    )
    task = asyncio.create_task(housekeeping.run())
    try:
        await run_until(clock, clock.now() + 25 * HOUR + timedelta(minutes=1))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    start = 1000.0  # FakeClock's monotonic start
    assert [round((t - start) / 3600, 2) for t in hourly.at] == [float(h) for h in range(26)]
    assert [round((t - start) / 3600, 2) for t in daily.at] == [0.0, 24.0]
    last = housekeeping.last_runs["daily"]
    assert (last.outcome, last.detail) == (OK, "run 2")
    assert last.at == clock.now() - HOUR - timedelta(minutes=1)


async def test_a_failing_job_is_logged_by_name_retried_next_time_and_stops_no_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    broken, fine = Counted(clock, fail_on=(1,)), Counted(clock)
    housekeeping = Housekeeping([Job("broken", HOUR, broken), Job("fine", HOUR, fine)], clock)
    with caplog.at_level(logging.ERROR, logger="watchkeeper.engine.housekeeping"):
        next_at = await housekeeping.run_due()
    assert next_at == clock.now() + HOUR
    assert housekeeping.last_runs["broken"].outcome == FAILED
    assert housekeeping.last_runs["broken"].detail == "RuntimeError: run 1 broke"
    assert housekeeping.last_runs["fine"].outcome == OK
    assert "housekeeping job broken failed" in caplog.text

    clock.advance(HOUR)
    await housekeeping.run_due()
    assert len(broken.at) == len(fine.at) == 2
    assert housekeeping.last_runs["broken"].outcome == OK


async def test_a_run_records_its_real_duration() -> None:
    clock = FakeClock()
    ticks = iter([10.0, 10.25])
    housekeeping = Housekeeping([Job("x", HOUR, Counted(clock))], clock, timer=lambda: next(ticks))
    last = await housekeeping.run_job("x")
    assert (last.at, last.duration, last.outcome) == (clock.now(), 0.25, OK)


async def test_retention_and_optimize_run_and_vacuum_is_skipped_on_a_database_without_it(
    sqlite_db: Database,
) -> None:
    clock = FakeClock()
    retention = Retention(sqlite_db, RetentionConfig(), clock)
    housekeeping = Housekeeping(
        [retention_job(retention), optimize_job(sqlite_db), vacuum_job(sqlite_db)], clock
    )
    await housekeeping.run_due()
    runs = housekeeping.last_runs
    assert runs["retention"].outcome == OK
    assert runs["retention"].detail.startswith("Pruned(results=0")
    assert runs["optimize"].outcome == OK
    # Watchkeeper's databases are made without auto_vacuum: left alone, never rewritten.
    assert await upkeep.auto_vacuum(sqlite_db) == 0
    assert runs["vacuum"].outcome == SKIPPED
    assert "without auto_vacuum=INCREMENTAL" in runs["vacuum"].detail


async def test_incremental_vacuum_gives_free_pages_back_when_the_database_allows_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "incremental.db"
    with contextlib.closing(sqlite3.connect(path)) as made:
        # Only a new file takes the mode (before its first table): made by hand here.
        made.execute("PRAGMA auto_vacuum=INCREMENTAL")
        made.execute("CREATE TABLE junk (data BLOB)")
        made.executemany("INSERT INTO junk VALUES (zeroblob(8192))", [()] * 50)
        made.commit()
        made.execute("DELETE FROM junk")
        made.commit()
    db = Database(f"sqlite:///{path}")
    try:
        assert await upkeep.auto_vacuum(db) == upkeep.INCREMENTAL
        housekeeping = Housekeeping([vacuum_job(db)], FakeClock())
        last = await housekeeping.run_job("vacuum")
        assert last.outcome == OK, last.detail
        freed = int(last.detail.split()[0])
        assert freed > 50
        async with db.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA freelist_count")).scalar_one() == 0
    finally:
        await db.close()


async def test_health_detailed_shows_each_jobs_last_run(tmp_path: Path) -> None:
    clock = FakeClock()
    config = {"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}
    async with running(config, clock=clock) as service:
        housekeeping = service.runtime.housekeeping
        # Every job runs once at start.
        await wait_until(lambda: len(housekeeping.last_runs) == 3, 5, "the first runs")
        checks = (await service.client.get("/health/detailed")).json()["checks"]
    (retention,) = checks["housekeeping:retention"]
    assert retention["status"] == "pass"
    assert retention["outcome"] == OK
    assert retention["lastRun"] == clock.now().isoformat().replace("+00:00", "Z")
    assert retention["observedUnit"] == "ms"
    assert checks["housekeeping:optimize"][0]["outcome"] == OK
    (vacuum,) = checks["housekeeping:vacuum"]
    assert (vacuum["status"], vacuum["outcome"]) == ("pass", SKIPPED)
    assert "auto_vacuum" in vacuum["output"]


async def test_a_job_whose_last_run_failed_warns_in_health_detailed_with_its_error(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    config = {"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}
    async with running(config, clock=clock) as service:
        housekeeping = service.runtime.housekeeping
        housekeeping.jobs["broken"] = Job("broken", HOUR, Counted(clock, fail_on=(1,)))
        await housekeeping.run_job("broken")
        body = (await service.client.get("/health/detailed")).json()
    (broken,) = body["checks"]["housekeeping:broken"]
    assert (broken["status"], broken["outcome"]) == ("warn", FAILED)
    assert broken["output"] == "RuntimeError: run 1 broke"
    assert body["status"] == "warn"
