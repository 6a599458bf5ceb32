"""The running timed loops wake at the instant their step asked for, on the injected clock.

Deadlines are otherwise tested by calling `evaluate()` / `dispatch_once()` by hand; these
tests run the loops themselves (`HeartbeatMonitor.run`, `Dispatcher.run`, `run_timed`) and
only move the fake clock, so a loop that waits its idle time instead is caught."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.clock import FakeClock, until_parked
from tests.support.servers import wait_until
from tests.test_dispatcher import World, hooks, tcp
from tests.test_heartbeats import Results, heartbeat
from watchkeeper.config.loader import Config
from watchkeeper.core.domain import Status
from watchkeeper.core.loops import run_timed
from watchkeeper.engine.heartbeat.monitor import HeartbeatMonitor, PingKind
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


async def stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_run_timed_wakes_at_the_instant_its_step_returned_not_after_idle() -> None:
    clock = FakeClock(T0)
    calls: list[datetime] = []

    async def step() -> datetime | None:
        calls.append(clock.now())
        return clock.now() + timedelta(seconds=30) if len(calls) == 1 else None

    wake = asyncio.Event()
    task = asyncio.create_task(run_timed(step, wake, clock, idle=60, what="test"))
    try:
        await until_parked(clock)
        # A hair past the instant asked for, far short of the idle minute.
        assert clock.next_deadline == pytest.approx(30.01)
        clock.advance(30.01)
        await until_parked(clock, after=1)
        assert calls == [T0, T0 + timedelta(seconds=30.01)]
        # Nothing due: the idle time, and a wake cuts it short.
        assert clock.next_deadline == pytest.approx(60)
        wake.set()
        await until_parked(clock, after=2)
        assert len(calls) == 3 and calls[-1] == T0 + timedelta(seconds=30.01)
    finally:
        await stop(task)


async def test_run_timed_runs_an_overdue_step_again_at_once_and_survives_a_failing_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(T0)
    calls: list[datetime] = []

    async def step() -> datetime | None:
        calls.append(clock.now())
        if len(calls) == 1:
            return clock.now() - timedelta(seconds=5)  # already due: look again at once
        if len(calls) == 2:
            raise RuntimeError("database restarting")
        return None

    task = asyncio.create_task(run_timed(step, asyncio.Event(), clock, idle=60, what="testing"))
    try:
        await until_parked(clock)
        assert clock.next_deadline == pytest.approx(0.01)
        clock.advance(0.01)
        await until_parked(clock, after=1)
        # The failure is logged with its traceback and the loop retries after its idle time.
        assert len(calls) == 2 and clock.next_deadline == pytest.approx(60)
        [record] = [r for r in caplog.records if r.name == "watchkeeper.core.loops"]
        assert record.getMessage() == "testing failed; will retry"
        assert record.exc_info is not None and record.exc_info[0] is RuntimeError
        clock.advance(60)
        await until_parked(clock, after=2)
        assert len(calls) == 3 and not task.done()
    finally:
        await stop(task)


async def test_the_running_heartbeat_monitor_reports_late_and_down_at_their_instants(
    db: Database,
) -> None:
    clock = FakeClock(T0)
    check = heartbeat(period="20s", grace="10s")
    results = Results()
    monitor = HeartbeatMonitor(db, [check], results, clock)
    await monitor.load()
    task = asyncio.create_task(monitor.run())
    try:
        await until_parked(clock)
        parks = clock.parks
        await monitor.ping(check, PingKind.SUCCESS)
        await until_parked(clock, after=parks)  # the loop saw the new deadline
        assert results.statuses == [Status.UP]

        clock.advance(20.01)  # the period is over: late, though the idle time is 60 s
        await wait_until(lambda: len(results.seen) == 2, 5, "the heartbeat to go late")
        assert results.statuses[-1] is Status.DEGRADED
        await until_parked(clock)
        clock.advance(10)  # and the grace
        await wait_until(lambda: len(results.seen) == 3, 5, "the heartbeat to go down")
        assert results.statuses[-1] is Status.DOWN
        assert [at for at, _ in results.seen][1:] == [
            T0 + timedelta(seconds=20.01),
            T0 + timedelta(seconds=30.01),
        ]
    finally:
        await stop(task)


async def test_the_running_dispatcher_pages_when_group_wait_ends(db: Database) -> None:
    config = Config.model_validate(
        {"checks": [tcp("api")], "notifications": hooks("ops"), "alerting": {"group_wait": "2s"}}
    )
    world = World(db, config)
    clock = world.clock
    task = asyncio.create_task(world.dispatcher.run())
    try:
        await until_parked(clock)
        parks = clock.parks
        await world.down("api")
        world.dispatcher.wake()
        await until_parked(clock, after=parks)
        assert await world.sent() == []  # inside group_wait
        clock.advance(2.01)  # well inside the dispatcher's idle time of 5 s
        await wait_until(world.sent, 5, "the first page")
        [entry] = await outbox_store.list_entries(db)
        assert entry.event == "alert.firing" and entry.created_at == T0 + timedelta(seconds=2.01)
    finally:
        await stop(task)
