"""Flap detection: weighted state changes over a window, with hysteresis."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper.core.domain import Status
from watchkeeper.core.flapping import FlapChange, FlapDetector, change_weights

UP, DOWN, DEGRADED, UNKNOWN = Status.UP, Status.DOWN, Status.DEGRADED, Status.UNKNOWN


def alternating(count: int, first: Status = UP, second: Status = DOWN) -> list[Status]:
    return [first if i % 2 == 0 else second for i in range(count)]


def feed(detector: FlapDetector, statuses: list[Status]) -> list[FlapChange | None]:
    return [detector.observe(status) for status in statuses]


def changes_at(changes: list[FlapChange | None]) -> list[tuple[int, FlapChange]]:
    return [(index, change) for index, change in enumerate(changes) if change is not None]


def test_weights_rise_linearly_from_oldest_to_newest_and_average_one() -> None:
    weights = change_weights(21)
    assert len(weights) == 20
    assert weights[0] == pytest.approx(0.8)
    assert weights[-1] == pytest.approx(1.2)
    steps = [b - a for a, b in itertools.pairwise(weights)]
    assert steps == pytest.approx([0.4 / 19] * 19)
    assert sum(weights) == pytest.approx(20.0)
    assert change_weights(2) == (1.0,)


def test_an_alternating_target_starts_flapping_once_the_window_fills() -> None:
    # Indexes 0..19 only fill the 21-result window, so nothing is decided. Index 20 is the
    # 21st result: all 20 gaps are changes, weighted 0.8 .. 1.2 and summing to 20.0, so
    # percent = 20.0 / 20 * 100 = 100% > 50%: STARTED at index 20, exactly.
    detector = FlapDetector()
    changes = feed(detector, alternating(21))
    assert changes_at(changes) == [(20, FlapChange.STARTED)]
    assert detector.flapping
    assert detector.percent_change == pytest.approx(100.0)


def test_an_alternating_target_never_starts_flapping_twice() -> None:
    detector = FlapDetector()
    changes = feed(detector, alternating(500))
    assert changes_at(changes) == [(20, FlapChange.STARTED)]
    assert detector.flapping


def test_any_difference_in_status_is_a_state_change() -> None:
    detector = FlapDetector()
    changes = feed(detector, alternating(21, DOWN, DEGRADED))
    assert changes_at(changes) == [(20, FlapChange.STARTED)]

    detector = FlapDetector()
    cycle = [UP, DEGRADED, DOWN, UNKNOWN]
    changes = feed(detector, [cycle[i % 4] for i in range(21)])
    assert changes_at(changes) == [(20, FlapChange.STARTED)]


@pytest.mark.parametrize("status", [UP, DEGRADED, DOWN, UNKNOWN])
def test_a_steady_target_never_flaps(status: Status) -> None:
    detector = FlapDetector()
    changes = feed(detector, [status] * 200)
    assert changes_at(changes) == []
    assert not detector.flapping
    assert detector.percent_change == 0.0


def test_nothing_is_decided_before_the_window_is_full() -> None:
    # 10 alternating results fill the newest 9 gaps (weights for gaps 11..19):
    # 9 * 0.8 + 0.4/19 * (11 + ... + 19 = 135) = 10.042 -> 50.2%, over high=40, yet the
    # window holds only 10 of 21 results.
    detector = FlapDetector(high=40.0, low=10.0)
    changes = feed(detector, alternating(10))
    assert changes_at(changes) == []
    assert detector.percent_change == pytest.approx(50.2105, abs=1e-3)
    assert not detector.flapping


def test_a_target_that_settles_stops_flapping_exactly_once() -> None:
    # Alternating indexes 0..20 (ending UP) start flapping at 20. Each steady UP after that
    # pushes one changed gap out at the oldest end. After k steady UPs the m = 20 - k changes
    # sit in gaps 0..m-1, weighing 0.8*m + 0.4/19 * m(m-1)/2, and percent = that * 5:
    #   m = 6 (k = 14, index 34): 4.8 + 0.4/19*15 = 5.116 -> 25.58%, not below 25
    #   m = 5 (k = 15, index 35): 4.0 + 0.4/19*10 = 4.211 -> 21.05%, below 25: STOPPED
    detector = FlapDetector()
    changes = feed(detector, alternating(21) + [UP] * 100)
    assert changes_at(changes) == [(20, FlapChange.STARTED), (35, FlapChange.STOPPED)]
    assert not detector.flapping
    assert detector.percent_change == 0.0


def test_a_change_at_the_newest_position_counts_more_than_at_the_oldest() -> None:
    oldest = FlapDetector()
    feed(oldest, [DOWN] + [UP] * 20)
    newest = FlapDetector()
    feed(newest, [UP] * 20 + [DOWN])
    assert oldest.percent_change == pytest.approx(0.8 / 20 * 100)  # 4%
    assert newest.percent_change == pytest.approx(1.2 / 20 * 100)  # 6%
    assert newest.percent_change > oldest.percent_change


def test_a_percent_between_low_and_high_does_not_start_flapping() -> None:
    # 13 UPs then 8 alternating results: changes in gaps 12..19,
    # 8 * 0.8 + 0.4/19 * (12 + ... + 19 = 124) = 9.011 -> 45.05%, between 25 and 50.
    detector = FlapDetector()
    changes = feed(detector, [UP] * 13 + alternating(8, DOWN, UP))
    assert changes_at(changes) == []
    assert 25.0 < detector.percent_change < 50.0
    assert not detector.flapping


def test_a_percent_between_low_and_high_does_not_stop_flapping() -> None:
    detector = FlapDetector()
    feed(detector, alternating(21))
    assert detector.flapping
    between = []
    for _ in range(14):  # indexes 21..34, see the settling test
        assert detector.observe(UP) is None
        assert detector.flapping
        if 25.0 < detector.percent_change < 50.0:
            between.append(detector.percent_change)
    assert between  # the percent did pass through the hysteresis band
    assert detector.observe(UP) is FlapChange.STOPPED


def test_history_keeps_the_newest_results_read_only() -> None:
    detector = FlapDetector(window=3)
    feed(detector, [UP, DOWN, DEGRADED, UNKNOWN])
    assert detector.history == (DOWN, DEGRADED, UNKNOWN)
    assert isinstance(detector.history, tuple)
    with pytest.raises(AttributeError):
        detector.history = ()  # type: ignore[misc]


def test_a_snapshot_round_trip_restores_behaviour() -> None:
    script = alternating(25) + [UP] * 20
    original = FlapDetector()
    feed(original, script[:27])
    assert original.flapping

    state = json.loads(json.dumps(original.to_state()))
    assert state["flapping"] is True
    assert len(state["history"]) == 21
    assert all(isinstance(value, str) for value in state["history"])

    restored = FlapDetector.from_state(state)
    assert restored.history == original.history
    assert restored.flapping == original.flapping
    assert restored.percent_change == pytest.approx(original.percent_change)
    assert feed(restored, script[27:]) == feed(original, script[27:])
    assert FlapChange.STOPPED in feed(FlapDetector.from_state(state), [UP] * 21)


def test_a_partial_snapshot_still_waits_for_a_full_window() -> None:
    detector = FlapDetector()
    feed(detector, alternating(5))
    restored = FlapDetector.from_state(detector.to_state())
    assert restored.history == tuple(alternating(5))
    changes = feed(restored, alternating(16, DOWN, UP))
    assert changes_at(changes) == [(15, FlapChange.STARTED)]


def test_a_snapshot_restored_into_a_smaller_window_keeps_the_newest_results() -> None:
    detector = FlapDetector()
    feed(detector, [UP] * 18 + [DOWN, DEGRADED, UNKNOWN])
    restored = FlapDetector.from_state(detector.to_state(), window=3)
    assert restored.history == (DOWN, DEGRADED, UNKNOWN)


@pytest.mark.parametrize(
    "state",
    [
        {"history": ["up", "sideways"], "flapping": False},
        {"history": ["up", "paused"], "flapping": False},
        {"history": "up", "flapping": False},
        {"history": ["up"], "flapping": "yes"},
    ],
)
def test_a_malformed_snapshot_raises_value_error(state: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FlapDetector.from_state(state)


def test_paused_is_not_a_result_status() -> None:
    with pytest.raises(ValueError):
        FlapDetector().observe(Status.PAUSED)


@pytest.mark.parametrize(
    ("window", "high", "low"),
    [
        (1, 50.0, 25.0),
        (101, 50.0, 25.0),
        (0, 50.0, 25.0),
        (21.0, 50.0, 25.0),
        (True, 50.0, 25.0),
        (21, 50.0, 50.0),
        (21, 25.0, 50.0),
        (21, 50.0, -1.0),
        (21, 101.0, 25.0),
    ],
)
def test_invalid_parameters_raise_value_error(window: int, high: float, low: float) -> None:
    with pytest.raises(ValueError):
        FlapDetector(window=window, high=high, low=low)


@pytest.mark.parametrize(("window", "high", "low"), [(2, 100.0, 0.0), (100, 0.5, 0.0)])
def test_boundary_parameters_are_accepted(window: int, high: float, low: float) -> None:
    FlapDetector(window=window, high=high, low=low)


result_statuses = st.sampled_from([UP, DEGRADED, DOWN, UNKNOWN])


@settings(max_examples=200, deadline=None)
@given(
    statuses=st.lists(result_statuses, max_size=150),
    window=st.integers(min_value=2, max_value=30),
    thresholds=st.tuples(
        st.floats(min_value=0.0, max_value=100.0), st.floats(min_value=0.0, max_value=100.0)
    ).filter(lambda pair: pair[0] != pair[1]),
)
def test_started_and_stopped_always_alternate(
    statuses: list[Status], window: int, thresholds: tuple[float, float]
) -> None:
    low, high = sorted(thresholds)
    detector = FlapDetector(window=window, high=high, low=low)
    last: FlapChange | None = None
    for index, status in enumerate(statuses):
        before = detector.flapping
        change = detector.observe(status)
        assert 0.0 <= detector.percent_change <= 100.0 + 1e-9
        if index < window - 1:
            assert change is None
        if change is None:
            assert detector.flapping == before
            continue
        expected = FlapChange.STOPPED if last is FlapChange.STARTED else FlapChange.STARTED
        assert change is expected
        last = change
        assert detector.flapping == (last is FlapChange.STARTED)
    assert detector.flapping == (last is FlapChange.STARTED)
