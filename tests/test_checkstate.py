"""Soft/hard states: thresholds decide when a check is DOWN and when it is UP again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from watchkeeper.core.checkstate import CheckState, apply_result
from watchkeeper.core.domain import CheckResult, Status

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def feed(state: CheckState, statuses: list[Status], failure: int, success: int) -> list[Status]:
    """Apply results one per second; return the hard state after each."""
    seen = []
    for i, status in enumerate(statuses):
        apply_result(
            state, CheckResult(status, status.value), T0 + timedelta(seconds=i), failure, success
        )
        seen.append(state.status)
    return seen


def test_failure_threshold_consecutive_failures_make_it_down() -> None:
    state = CheckState("api", Status.UP, T0)
    D, U = Status.DOWN, Status.UP
    assert feed(state, [D, U, D, D, D], failure=3, success=1) == [U, U, U, U, D]


def test_success_threshold_consecutive_successes_make_it_up_again() -> None:
    state = CheckState("api", Status.DOWN, T0)
    D, U = Status.DOWN, Status.UP
    assert feed(state, [U, D, U, U], failure=1, success=2) == [D, D, D, U]


def test_transition_reports_previous_and_current_and_only_on_change() -> None:
    state = CheckState("api", Status.UNKNOWN, T0)
    first = apply_result(state, CheckResult.up(), T0, 1, 1)
    assert first is not None
    assert (first.previous, first.current) == (Status.UNKNOWN, Status.UP)
    assert apply_result(state, CheckResult.up(), T0, 1, 1) is None
    assert state.since == T0


def test_the_hard_state_follows_the_latest_problem_status() -> None:
    state = CheckState("disk", Status.UP, T0)
    W, C = Status.DEGRADED, Status.DOWN
    assert feed(state, [W, C], failure=2, success=1) == [Status.UP, Status.DOWN]
    # Already in a hard problem state, a change between problem states is immediate (Nagios).
    assert feed(state, [W], failure=2, success=1) == [Status.DEGRADED]


def test_state_round_trips_through_a_row() -> None:
    state = CheckState("api", Status.DOWN, T0, Status.DOWN, "boom", T0, 3, 0, False)
    row = type("Row", (), state.as_row())
    assert CheckState.from_row(row) == state


def test_every_result_records_its_status_reason_and_time_even_without_a_transition() -> None:
    state = CheckState("api", Status.UP, T0)
    later = T0 + timedelta(seconds=7)
    assert apply_result(state, CheckResult.down("refused"), later, 3, 1) is None
    assert (state.last_status, state.last_reason, state.last_checked_at) == (
        Status.DOWN,
        "refused",
        later,
    )
    assert (state.status, state.since) == (Status.UP, T0)


def test_a_transition_names_the_check_its_moment_and_the_result_that_caused_it() -> None:
    state = CheckState("api", Status.UP, T0)
    later = T0 + timedelta(seconds=7)
    result = CheckResult.down("refused")
    transition = apply_result(state, result, later, 1, 1)
    assert transition is not None
    assert (transition.check, transition.at) == ("api", later)
    assert transition.result is result
    assert state.since == later


def test_a_fresh_paused_state_with_a_success_streak_round_trips_through_a_row() -> None:
    # No last status yet (never checked), paused, and counting successes: each field must
    # come back as itself, not as a default.
    state = CheckState("api", Status.DOWN, T0, None, None, None, 0, 2, True)
    row = type("Row", (), state.as_row())
    assert CheckState.from_row(row) == state
