"""A heartbeat's verdict at an instant (pure): failures, runs in progress, pauses, deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from watchkeeper.checks.heartbeat import HeartbeatCheckConfig
from watchkeeper.config.loader import Config
from watchkeeper.core.domain import Status
from watchkeeper.engine.heartbeat.evaluate import Verdict, evaluate
from watchkeeper.store.heartbeats import HeartbeatRecord

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def config(**fields: Any) -> HeartbeatCheckConfig:
    fields = {"period": "1m", "grace": "30s", **fields}
    parsed = Config.model_validate({"checks": [{"name": "job", "type": "heartbeat", **fields}]})
    check = parsed.checks[0]
    assert isinstance(check, HeartbeatCheckConfig)
    return check


def record(**fields: Any) -> HeartbeatRecord:
    return HeartbeatRecord("job", "5f0c1b8e-0000-4000-8000-000000000001", **fields)


def test_a_reported_failure_is_down_with_its_exit_code() -> None:
    verdict = evaluate(config(), record(last_fail_at=T0, last_exit_code=3), T0 + MINUTE)
    assert verdict == Verdict(
        Status.DOWN, "failure reported at 2026-06-01 12:00:00 UTC (exit code 3)", None
    )


def test_a_reported_failure_without_an_exit_code_says_just_when() -> None:
    verdict = evaluate(config(), record(last_fail_at=T0), T0)
    assert verdict.reason == "failure reported at 2026-06-01 12:00:00 UTC"


def test_a_failure_reported_at_the_same_instant_as_a_ping_wins() -> None:
    verdict = evaluate(config(), record(last_ping_at=T0, last_fail_at=T0), T0)
    assert verdict.status is Status.DOWN
    # A ping after the failure clears it.
    later = evaluate(config(), record(last_ping_at=T0 + MINUTE, last_fail_at=T0), T0 + MINUTE)
    assert later.status is Status.UP


def test_a_run_started_before_the_resume_no_longer_counts() -> None:
    resumed = T0 + MINUTE
    state = record(last_ping_at=T0 - MINUTE, last_start_at=T0, resumed_at=resumed)
    # Without the resume, the run started at T0 would be overdue since T0 + 30 s.
    verdict = evaluate(config(), state, resumed + timedelta(seconds=40))
    assert verdict.status is Status.UP
    assert verdict.reason == "resumed at 2026-06-01 12:01:00 UTC"
    assert verdict.changes_at == resumed + MINUTE


def test_a_run_in_progress_changes_the_verdict_at_whichever_deadline_comes_first() -> None:
    # Pinged at T0 (next expected T0+1m), a run started at T0+50s must finish by T0+80s.
    state = record(last_ping_at=T0, last_start_at=T0 + timedelta(seconds=50))
    up = evaluate(config(), state, T0 + timedelta(seconds=55))
    assert (up.status, up.changes_at) == (Status.UP, T0 + MINUTE)
    late = evaluate(config(), state, T0 + timedelta(seconds=65))
    assert (late.status, late.changes_at) == (Status.DEGRADED, T0 + timedelta(seconds=80))
    down = evaluate(config(), state, T0 + timedelta(seconds=80))
    assert down.status is Status.DOWN
    assert down.reason == "started at 2026-06-01 12:00:50 UTC and did not finish within 30s"


def test_a_new_heartbeat_is_unknown_until_its_first_ping() -> None:
    assert evaluate(config(), record(), T0) == Verdict(Status.UNKNOWN, "new: no ping yet", None)


def test_a_first_run_in_progress_is_unknown_until_its_grace_runs_out() -> None:
    state = record(last_start_at=T0)
    assert evaluate(config(), state, T0 + timedelta(seconds=29)) == Verdict(
        Status.UNKNOWN, "new: first run started at 2026-06-01 12:00:00 UTC", T0 + 0.5 * MINUTE
    )
    assert evaluate(config(), state, T0 + 0.5 * MINUTE).status is Status.DOWN


def test_a_start_and_a_ping_at_the_same_instant_is_a_finished_run() -> None:
    verdict = evaluate(config(), record(last_ping_at=T0, last_start_at=T0), T0 + 0.75 * MINUTE)
    assert (verdict.status, verdict.changes_at) == (Status.UP, T0 + MINUTE)
