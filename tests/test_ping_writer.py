"""Group commit of heartbeat pings: answered only once committed, many pings per
transaction, state changes without delay, a failed batch fails only its own pings, and a
full backlog is refused (503 + Retry-After) instead of queued without bound."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.clock import FakeClock
from watchkeeper.checks import CheckContext, build_check
from watchkeeper.checks.heartbeat import HeartbeatCheck
from watchkeeper.config.loader import Config
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.engine.heartbeat.access import PingAccess
from watchkeeper.engine.heartbeat.monitor import HeartbeatMonitor, PingKind
from watchkeeper.engine.heartbeat.settings import HeartbeatsConfig
from watchkeeper.engine.heartbeat.writer import PingBacklog, PingNotStored, PingWriter
from watchkeeper.prometheus.service import ServiceMetrics
from watchkeeper.services.heartbeats import HeartbeatService
from watchkeeper.store.database import Database
from watchkeeper.store.heartbeats import HeartbeatRecord, load_heartbeats, save_heartbeat_rows
from watchkeeper.store.results import delete_results_before, recent_results

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FOREVER = 3600.0
"""A linger no test waits out: a ping that needed it would time the test out."""


def heartbeats(n: int) -> list[HeartbeatCheck]:
    config = Config.model_validate(
        {"checks": [{"name": f"job-{i}", "type": "heartbeat", "period": "1h"} for i in range(n)]}
    )
    built = [build_check(c, CheckContext(http=None)) for c in config.checks]  # type: ignore[arg-type]
    assert all(isinstance(c, HeartbeatCheck) for c in built)
    return built  # type: ignore[return-value]


class Results:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Status]] = []

    async def __call__(self, check: Any, _at: datetime, result: CheckResult) -> None:
        self.seen.append((check.name, result.status))


class Saves:
    """A save that counts its transactions and can be held shut or made to fail."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.batches: list[list[str]] = []
        self.open = asyncio.Event()
        self.open.set()
        self.entered = asyncio.Event()
        self.fail_next = 0

    async def __call__(
        self, rows: Sequence[dict[str, Any]], notes: Sequence[dict[str, Any]]
    ) -> None:
        self.entered.set()
        await self.open.wait()
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("disk I/O error")
        await save_heartbeat_rows(self.db, rows, notes)
        self.batches.append(sorted(r["check_name"] for r in rows))


async def monitor_with(
    db: Database,
    checks: list[HeartbeatCheck],
    *,
    linger: float = FOREVER,
    clock: FakeClock | None = None,
    **writer: Any,
) -> tuple[HeartbeatMonitor, Results, Saves]:
    results = Results()
    monitor = HeartbeatMonitor(db, checks, results, clock or FakeClock(T0))
    await monitor.load()
    saves = Saves(db)
    monitor.writer = PingWriter(saves, linger=linger, **writer)
    return monitor, results, saves


async def stored_counts(db: Database) -> dict[str, int]:
    return {name: r.ping_count for name, r in (await load_heartbeats(db)).items()}


async def test_concurrent_pings_share_one_transaction_and_each_is_stored(db: Database) -> None:
    checks = heartbeats(20)
    monitor, results, saves = await monitor_with(db, checks)
    # Each heartbeat is new, so each first ping is a state change: none lingers.
    async with asyncio.timeout(10):
        await asyncio.gather(*(monitor.ping(c, PingKind.SUCCESS) for c in checks * 3))
    assert len(saves.batches) == 1
    assert saves.batches[0] == sorted(c.name for c in checks)  # one row per heartbeat
    assert await stored_counts(db) == {c.name: 3 for c in checks}
    assert sorted(results.seen) == sorted((c.name, Status.UP) for c in checks * 3)
    await monitor.close()


async def test_a_ping_is_answered_only_once_its_transaction_committed(
    sqlite_db: Database,
) -> None:
    (check,) = heartbeats(1)
    monitor, results, saves = await monitor_with(sqlite_db, [check])
    saves.open.clear()
    ping = asyncio.create_task(monitor.ping(check, PingKind.SUCCESS))
    async with asyncio.timeout(10):
        await saves.entered.wait()
    assert not ping.done()
    assert results.seen == []  # not reported before it is stored either
    assert await stored_counts(sqlite_db) == {check.name: 0}
    saves.open.set()
    async with asyncio.timeout(10):
        await ping
    assert await stored_counts(sqlite_db) == {check.name: 1}
    assert results.seen == [(check.name, Status.UP)]
    await monitor.close()


async def test_state_changes_go_at_once_while_routine_pings_linger_for_company(
    sqlite_db: Database,
) -> None:
    (check,) = heartbeats(1)
    clock = FakeClock(T0)
    monitor, results, saves = await monitor_with(sqlite_db, [check], clock=clock)
    async with asyncio.timeout(10):
        await monitor.ping(check, PingKind.SUCCESS)  # new -> up: a change
    routine = asyncio.create_task(monitor.ping(check, PingKind.SUCCESS))  # up -> up
    done, _ = await asyncio.wait([routine], timeout=0.05)
    assert not done, "a ping of an up heartbeat should linger for company"
    async with asyncio.timeout(10):
        await monitor.ping(check, PingKind.FAIL)  # up -> down: at once, taking the other along
        await routine
        clock.advance(1)
        await monitor.ping(check, PingKind.SUCCESS)  # down -> up: at once
    assert [s for _, s in results.seen] == [Status.UP, Status.UP, Status.DOWN, Status.UP]
    assert len(saves.batches) == 3
    await monitor.close()


async def test_a_failed_batch_fails_only_its_own_pings_and_the_writer_goes_on(
    sqlite_db: Database,
) -> None:
    checks = heartbeats(2)
    monitor, results, saves = await monitor_with(sqlite_db, checks)
    service = HeartbeatService(
        monitor=monitor,
        access=PingAccess(HeartbeatsConfig(ping_by_name=True), "k" * 16, lambda: 0.0),
        metrics=ServiceMetrics(),
        base_url="http://wk",
        ping_by_name=True,
    )
    saves.fail_next = 1
    async with asyncio.timeout(10):
        first = await service.ping([checks[0].name], "10.0.0.1")
        second = await service.ping([checks[1].name], "10.0.0.1")
    assert (first.status, first.retry_after) == (503, 1.0)
    assert second.status == 200
    assert results.seen == [(checks[1].name, Status.UP)]  # the failed one reported nothing
    assert (await stored_counts(sqlite_db))[checks[1].name] == 1
    await monitor.close()


async def test_a_full_backlog_is_refused_with_503_and_retry_after(sqlite_db: Database) -> None:
    checks = heartbeats(3)
    monitor, _, saves = await monitor_with(sqlite_db, checks, linger=0, max_pending=2)
    service = HeartbeatService(
        monitor=monitor,
        access=PingAccess(HeartbeatsConfig(ping_by_name=True), "k" * 16, lambda: 0.0),
        metrics=ServiceMetrics(),
        base_url="http://wk",
        ping_by_name=True,
    )
    saves.open.clear()
    first = asyncio.create_task(service.ping([checks[0].name], None))
    async with asyncio.timeout(10):
        await saves.entered.wait()  # the first is being committed, out of the queue
    waiting = [asyncio.create_task(service.ping([c.name], None)) for c in checks[1:]]
    async with asyncio.timeout(10):
        while monitor.writer.pending < 2:
            await asyncio.wait(waiting, timeout=0.01)
        refused = await service.ping([checks[0].name], None)
    assert (refused.status, refused.retry_after) == (503, PingBacklog.retry_after)
    saves.open.set()
    async with asyncio.timeout(10):
        answers = [await t for t in (first, *waiting)]
    assert [a.status for a in answers] == [200, 200, 200]
    await monitor.close()


async def test_closing_commits_what_is_queued_and_fails_what_cannot_be(
    sqlite_db: Database,
) -> None:
    saves = Saves(sqlite_db)
    writer = PingWriter(saves, linger=FOREVER)
    stored = HeartbeatRecord("job", "u-1", ping_count=1)
    await save_heartbeat_rows(sqlite_db, [HeartbeatRecord("job", "u-1").row()])
    queued = writer.submit(stored)
    await writer.close()
    assert queued.done() and queued.exception() is None
    assert (await stored_counts(sqlite_db)) == {"job": 1}

    hung = PingWriter(saves)
    saves.open.clear()
    pending = hung.submit(stored)
    async with asyncio.timeout(10):
        await saves.entered.wait()
        await hung.close(timeout=0.05)
    with pytest.raises(PingNotStored):
        pending.result()
    with pytest.raises(PingNotStored):
        hung.submit(stored)  # closed: refused, never left waiting


async def test_on_sqlite_a_locked_database_defers_the_commit_without_blocking_the_loop(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """Pings commit on the loop's own thread only when SQLite is free: while another writer
    holds it, the group waits off the loop (the loop goes on) and is stored once it is free."""
    await save_heartbeat_rows(sqlite_db, [HeartbeatRecord("job", "u-1").row()])
    with contextlib.closing(sqlite3.connect(tmp_path / "wk.db", isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the database
        began = time.monotonic()
        save = asyncio.create_task(
            save_heartbeat_rows(sqlite_db, [HeartbeatRecord("job", "u-1", ping_count=7).row()])
        )
        done, _ = await asyncio.wait([save], timeout=0.2)
        assert not done
        assert time.monotonic() - began < 2, "the loop was blocked by the locked database"
        other.execute("COMMIT")
    async with asyncio.timeout(10):
        await save
    assert await stored_counts(sqlite_db) == {"job": 7}


async def test_times_at_a_whole_second_are_stored_as_every_other_writer_stores_them(
    sqlite_db: Database,
) -> None:
    """The loop's writer converts times as SQLAlchemy does (`12:00:00.000000`), not as
    sqlite3 would (`12:00:00`, which sorts before it: a log at exactly a retention cutoff
    was deleted with the older ones)."""
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    note = {
        "check_name": "job",
        "started_at": at,
        "status": "up",
        "reason": "log received",
        "response_time": None,
        "metrics": None,
        "details": {"ping": "log"},
    }
    record = HeartbeatRecord("job", "u-1", last_ping_at=at)
    await save_heartbeat_rows(sqlite_db, [record.row()], [note])
    assert await delete_results_before(sqlite_db, at) == 0  # a row exactly at the cutoff stays
    assert [r.started_at for r in await recent_results(sqlite_db, "job")] == [at]
    assert (await load_heartbeats(sqlite_db))["job"].last_ping_at == at
