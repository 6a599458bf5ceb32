"""Checks added to, replaced in and removed from a running scheduler (API-managed checks)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.test_scheduler import Collector, ScriptedCheck
from watchkeeper.core.clock import SystemClock
from watchkeeper.core.domain import CheckResult
from watchkeeper.engine.scheduler import Scheduler


async def up() -> CheckResult:
    return CheckResult.up()


def scheduler(collect: Collector) -> Scheduler:
    s = Scheduler([], collect, SystemClock(), shutdown_grace=5)
    s._initial_delay = lambda _interval: 0.0  # type: ignore[method-assign]
    return s


async def test_an_added_check_runs_and_a_replaced_one_runs_its_new_definition() -> None:
    collect = Collector()
    s = scheduler(collect)
    s.start()
    try:
        s.add(ScriptedCheck("a", up, interval=timedelta(hours=1)))
        await collect.wait_for(1)
        assert s.scheduled == {"a"}

        async def degraded() -> CheckResult:
            return CheckResult.down("new definition")

        old = await s.replace(ScriptedCheck("a", degraded, interval=timedelta(hours=1)))
        assert old is not None and old.config.interval == timedelta(hours=1)
        await collect.wait_for(2)
        assert collect.results[-1][2].reason == "new definition"
        assert s.scheduled == {"a"}
    finally:
        await s.stop()


async def test_remove_hands_over_the_run_in_flight_and_then_nothing_more_arrives() -> None:
    collect = Collector()
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow() -> CheckResult:
        started.set()
        await finish.wait()
        return CheckResult.up("finished")

    s = scheduler(collect)
    s.start()
    try:
        s.add(ScriptedCheck("slow", slow, interval=timedelta(milliseconds=10)))
        await asyncio.wait_for(started.wait(), 5)
        removing = asyncio.create_task(s.remove("slow"))
        await asyncio.sleep(0)
        assert not removing.done()  # waits for the run in hand
        finish.set()
        removed = await asyncio.wait_for(removing, 5)
        assert removed is not None and removed.name == "slow"
        assert [r[2].reason for r in collect.results] == ["finished"]
        assert s.scheduled == set()
        assert s.run_now("slow") is False
        assert await s.remove("slow") is None
    finally:
        await s.stop()
    assert len(collect.results) == 1
