"""Flap detection: notice a check that keeps changing state, Nagios Core style.

A target that alternates between UP and DOWN would otherwise page someone on every
transition. Nagios' answer (see "Detection and Handling of State Flapping") is to keep the
last few check results, measure how often the state changed among them, and declare the
check *flapping* when that rate is high, so notifications can be suppressed until it
settles.

Two thresholds give hysteresis: flapping starts only when the rate rises above `high`, and
stops only when it falls below `low`. With a single threshold a rate hovering around it
would start and stop flapping on alternate results, which is the very notification storm
flap detection exists to prevent.

This module is pure logic: no I/O and no clock. The caller feeds it every check *result*
status (soft results, before any failure/success threshold turns them into hard states),
acts on the returned `FlapChange`, and persists `to_state()` if detection should survive a
restart.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from watchkeeper.core.domain import Status

OLDEST_CHANGE_WEIGHT = 0.8
"""Weight of a state change between the two oldest results in a full window."""
NEWEST_CHANGE_WEIGHT = 1.2
"""Weight of a state change between the two newest results: recent changes count more."""

MIN_WINDOW = 2
MAX_WINDOW = 100

_RESULT_STATUSES = frozenset({Status.UP, Status.DEGRADED, Status.DOWN, Status.UNKNOWN})


class FlapChange(enum.StrEnum):
    """A change in flapping, returned by `FlapDetector.observe`."""

    STARTED = "started"
    STOPPED = "stopped"


def change_weights(window: int) -> tuple[float, ...]:
    """Weights of the `window - 1` gaps between consecutive results, oldest first.

    They rise linearly from `OLDEST_CHANGE_WEIGHT` to `NEWEST_CHANGE_WEIGHT`, averaging 1.0,
    so a window in which every result differs from the previous one scores exactly 100%.
    A window of two has a single gap, which is both oldest and newest: it weighs 1.0.
    """
    gaps = window - 1
    if gaps == 1:
        return (1.0,)
    span = NEWEST_CHANGE_WEIGHT - OLDEST_CHANGE_WEIGHT
    return tuple(OLDEST_CHANGE_WEIGHT + span * i / (gaps - 1) for i in range(gaps))


class FlapDetector:
    """Tracks the recent results of one check and says when it starts or stops flapping.

    `window` results are kept (21 as in Nagios). Nothing is decided until the window is full:
    a handful of results says too little about how often the check changes state. Then the
    detector starts flapping when `percent_change` exceeds `high` and stops when it drops
    below `low`; anywhere in between the current verdict stands (hysteresis).
    """

    __slots__ = ("_flapping", "_high", "_history", "_low", "_percent", "_weights", "_window")

    def __init__(self, window: int = 21, high: float = 50.0, low: float = 25.0) -> None:
        if isinstance(window, bool) or not isinstance(window, int):
            raise ValueError(f"window must be an integer, got {window!r}")
        if not MIN_WINDOW <= window <= MAX_WINDOW:
            raise ValueError(f"window must be between {MIN_WINDOW} and {MAX_WINDOW}, got {window}")
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(f"thresholds need 0 <= low < high <= 100, got low={low}, high={high}")
        self._window = window
        self._high = float(high)
        self._low = float(low)
        self._weights = change_weights(window)
        self._history: deque[Status] = deque(maxlen=window)
        self._flapping = False
        self._percent = 0.0

    @property
    def window(self) -> int:
        return self._window

    @property
    def high(self) -> float:
        return self._high

    @property
    def low(self) -> float:
        return self._low

    @property
    def flapping(self) -> bool:
        return self._flapping

    @property
    def percent_change(self) -> float:
        """Weighted state changes in the window as a percentage of the most possible.

        Before the window is full the results present are scored in the newest positions of
        the window and the missing ones count as no change, so the value only informs; no
        decision is taken on it.
        """
        return self._percent

    @property
    def history(self) -> tuple[Status, ...]:
        """The results kept, oldest first."""
        return tuple(self._history)

    @property
    def full(self) -> bool:
        return len(self._history) == self._window

    def observe(self, status: Status) -> FlapChange | None:
        """Record one check result; return whether flapping started or stopped because of it."""
        status = _result_status(status)
        self._history.append(status)
        self._percent = self._score()
        return self._decide()

    def to_state(self) -> dict[str, Any]:
        """A JSON-able snapshot: the kept results (oldest first) and the flapping verdict."""
        return {
            "history": [status.value for status in self._history],
            "flapping": self._flapping,
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        window: int = 21,
        high: float = 50.0,
        low: float = 25.0,
    ) -> FlapDetector:
        """Rebuild a detector from `to_state()` output, under the current configuration.

        Thresholds and window are configuration, not state, so they are passed again. If the
        window shrank since the snapshot, only the newest results are kept. The flapping
        verdict is restored as saved and no change is reported for it: whoever persisted the
        snapshot already acted on it.
        """
        detector = cls(window=window, high=high, low=low)
        history: Iterable[Any] = state.get("history", [])
        if isinstance(history, str | bytes) or not isinstance(history, Iterable):
            raise ValueError("flap state history must be a list of status strings")
        detector._history.extend(_result_status(Status(value)) for value in history)
        flapping = state.get("flapping", False)
        if not isinstance(flapping, bool):
            raise ValueError("flap state flapping must be a boolean")
        detector._flapping = flapping
        detector._percent = detector._score()
        return detector

    def _score(self) -> float:
        history = self._history
        # Right-align the history in the window: its newest gap takes the newest weight.
        offset = len(self._weights) - (len(history) - 1)
        changes = 0.0
        previous: Status | None = None
        for index, status in enumerate(history):
            if previous is not None and status is not previous:
                changes += self._weights[offset + index - 1]
            previous = status
        return changes / (self._window - 1) * 100.0

    def _decide(self) -> FlapChange | None:
        if not self.full:
            return None
        if not self._flapping and self._percent > self._high:
            self._flapping = True
            return FlapChange.STARTED
        if self._flapping and self._percent < self._low:
            self._flapping = False
            return FlapChange.STOPPED
        return None

    def __repr__(self) -> str:
        return (
            f"FlapDetector(window={self._window}, high={self._high}, low={self._low}, "
            f"flapping={self._flapping}, percent_change={self._percent:.1f}, "
            f"results={len(self._history)})"
        )


def _result_status(status: Status) -> Status:
    """Only result statuses take part; PAUSED is an operator's setting, not an observation."""
    status = Status(status)
    if status not in _RESULT_STATUSES:
        raise ValueError(f"flap detection takes check result statuses, not {status.value!r}")
    return status
