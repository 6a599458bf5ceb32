"""Soft and hard states: thresholds turn a stream of results into state changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watchkeeper.core.domain import CheckResult, Status


@dataclass(slots=True)
class CheckState:
    """What is known about one check. `status` is the hard state that alerts follow."""

    name: str
    status: Status
    since: datetime
    last_status: Status | None = None
    last_reason: str | None = None
    last_checked_at: datetime | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    paused: bool = False

    def as_row(self) -> dict[str, Any]:
        return {
            "check_name": self.name,
            "status": self.status.value,
            "since": self.since,
            "last_status": self.last_status.value if self.last_status else None,
            "last_reason": self.last_reason,
            "last_checked_at": self.last_checked_at,
            "consecutive_failures": self.consecutive_failures,
            "consecutive_successes": self.consecutive_successes,
            "paused": self.paused,
        }

    @classmethod
    def from_row(cls, row: Any) -> CheckState:
        return cls(
            name=row.check_name,
            status=Status(row.status),
            since=row.since,
            last_status=Status(row.last_status) if row.last_status else None,
            last_reason=row.last_reason,
            last_checked_at=row.last_checked_at,
            consecutive_failures=row.consecutive_failures,
            consecutive_successes=row.consecutive_successes,
            paused=bool(row.paused),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """A hard state change, with the result that caused it."""

    check: str
    previous: Status
    current: Status
    at: datetime
    result: CheckResult = field(compare=False)


def apply_result(
    state: CheckState,
    result: CheckResult,
    at: datetime,
    failure_threshold: int,
    success_threshold: int,
) -> Transition | None:
    """Fold one result into `state` (mutating it); return the hard transition it causes, if any.

    `failure_threshold` consecutive problem results make the hard state the latest problem
    status (DOWN, DEGRADED or UNKNOWN); `success_threshold` consecutive UPs make it UP.
    """
    state.last_status = result.status
    state.last_reason = result.reason
    state.last_checked_at = at
    if result.status is Status.UP:
        state.consecutive_successes += 1
        state.consecutive_failures = 0
        wanted = Status.UP if state.consecutive_successes >= success_threshold else None
    else:
        state.consecutive_failures += 1
        state.consecutive_successes = 0
        wanted = result.status if state.consecutive_failures >= failure_threshold else None
    if wanted is None or wanted is state.status:
        return None
    transition = Transition(state.name, state.status, wanted, at, result)
    state.status = wanted
    state.since = at
    return transition
