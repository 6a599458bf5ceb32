"""CheckService: reading checks, pausing, resuming and running one now."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.clock import FakeClock
from watchkeeper.app import Runtime
from watchkeeper.core.changes import check_key
from watchkeeper.core.domain import CheckResult
from watchkeeper.core.errors import Conflict, NotFound
from watchkeeper.store.results import load_states


async def test_get_and_list_show_each_check_with_its_source_and_filters(runtime: Runtime) -> None:
    checks = runtime.services.checks
    web = checks.get("web")
    assert (web.status, web.component, web.source, web.interval_seconds) == (
        "unknown",
        "frontend",
        "config",
        3600.0,
    )
    job = checks.get("job")
    record = runtime.heartbeats.record("job")
    assert record is not None
    assert job.ping_url == f"{runtime.config.server.base_url()}/ping/{record.uuid}"
    assert web.ping_url is None

    assert [c.name for c in checks.list_checks()] == ["web", "job"]
    assert [c.name for c in checks.list_checks(labels=[("team", "core")])] == ["web"]
    assert [c.name for c in checks.list_checks(labels=[("team", "other")])] == []
    assert [c.name for c in checks.list_checks(component="frontend")] == ["web"]
    assert [c.name for c in checks.list_checks(state="paused")] == []


async def test_an_unknown_check_is_not_found_everywhere(runtime: Runtime) -> None:
    checks = runtime.services.checks
    with pytest.raises(NotFound, match="no check named 'nope'"):
        checks.get("nope")
    with pytest.raises(NotFound):
        await checks.history("nope")
    with pytest.raises(NotFound):
        await checks.pause("nope")
    with pytest.raises(NotFound):
        await checks.resume("nope")
    with pytest.raises(NotFound):
        checks.run_now("nope")


async def test_pause_is_stored_published_and_shown_and_resume_undoes_it(runtime: Runtime) -> None:
    checks = runtime.services.checks
    with runtime.changes.subscribe() as feed:
        change = await checks.pause("web")
        assert check_key("web") in (await feed.changes(0) or ())
        assert (change.check, change.status, change.queued) == ("web", "paused", False)
        assert checks.status("web") == "paused"
        assert checks.get("web").status == "paused"
        assert [c.name for c in checks.list_checks(state="paused")] == ["web"]
        assert (await load_states(runtime.db))["web"].paused
        assert runtime.scheduler._is_paused("web")  # what the scheduler asks before a run

        change = await checks.resume("web")
        assert check_key("web") in (await feed.changes(0) or ())
    assert change.status == "unknown"
    assert not (await load_states(runtime.db))["web"].paused
    assert checks.status("web") == "unknown"


async def test_resuming_a_heartbeat_restarts_its_deadline_from_now(
    runtime: Runtime, clock: FakeClock
) -> None:
    checks = runtime.services.checks
    await checks.pause("job")
    clock.advance(timedelta(hours=5))
    await checks.resume("job")
    record = runtime.heartbeats.record("job")
    assert record is not None and record.resumed_at == clock.now()


async def test_resuming_a_heartbeat_that_was_not_paused_keeps_its_deadline(
    runtime: Runtime, clock: FakeClock
) -> None:
    record = runtime.heartbeats.record("job")
    assert record is not None
    before = record.resumed_at
    clock.advance(60)
    await runtime.services.checks.resume("job")
    assert record.resumed_at == before


async def test_run_now_queues_a_scheduled_check_and_refuses_a_push_check(
    runtime: Runtime,
) -> None:
    checks = runtime.services.checks
    change = checks.run_now("web")
    assert (change.check, change.queued) == ("web", True)
    with pytest.raises(Conflict, match="a push check runs when its job pings it"):
        checks.run_now("job")


async def test_run_now_refuses_a_check_the_scheduler_does_not_hold(runtime: Runtime) -> None:
    await runtime.scheduler.remove("web")
    with pytest.raises(Conflict, match="not scheduled"):
        runtime.services.checks.run_now("web")


async def test_history_includes_results_still_buffered(runtime: Runtime) -> None:
    checks = runtime.services.checks
    assert await checks.history("web") == []
    now = runtime.clock.now()
    for i, reason in enumerate(["first", "second", "third"]):
        runtime.writer.record("web", now + timedelta(seconds=i), CheckResult.up(reason))
    rows = await checks.history("web", limit=2)
    assert [r.reason for r in rows] == ["third", "second"]
