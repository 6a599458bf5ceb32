"""Durations: exact parsing and formatting, and the bounds each use has (config, API, forms)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from watchkeeper.config.loader import ConfigError, load_config
from watchkeeper.core import durations
from watchkeeper.core.durations import format_duration, parse_duration

MAX = durations.ANY.maximum

# -- the parser ---------------------------------------------------------------------------------


@given(st.timedeltas(min_value=timedelta(0), max_value=MAX))
def test_format_then_parse_gives_the_same_duration(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


@given(
    st.one_of(
        st.text(max_size=80),
        st.from_regex(r"\A([0-9]{1,25}(\.[0-9]{0,12})?(ms|s|m|h|d|w| )){1,6}\Z"),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(),
        st.none(),
        st.booleans(),
        st.lists(st.integers(), max_size=2),
    )
)
def test_parsing_anything_raises_nothing_but_value_error(value: Any) -> None:
    try:
        parsed = parse_duration(value)
    except ValueError:
        return
    assert timedelta(0) <= parsed


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["ms", "s", "m", "h", "d", "w"]))
def test_whole_units_parse_exactly(count: int, unit: str) -> None:
    size = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_duration(f"{count}{unit}") == timedelta(seconds=count * size)


def test_the_usual_spellings() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("0.5s") == timedelta(milliseconds=500)
    assert parse_duration(90) == timedelta(seconds=90)
    assert [format_duration(parse_duration(t)) for t in ("30s", "5m", "1h", "7d", "500ms")] == [
        "30s",
        "5m",
        "1h",
        "7d",
        "500ms",
    ]


def test_a_huge_duration_is_a_value_error_not_an_overflow() -> None:
    for value in ("999999999999d", "99999999999999999999w", 10**30, float("inf")):
        with pytest.raises(ValueError, match="out of range"):
            parse_duration(value)


# -- the bounds ---------------------------------------------------------------------------------

BOUNDED = [
    durations.INTERVAL,
    durations.TIMEOUT,
    durations.LONG_SPAN,
    durations.ESCALATION_DELAY,
    durations.REPEAT,
    durations.RULE_DELAY,
    durations.RETENTION,
    durations.SHORT_WAIT,
    durations.POSITIVE_SHORT,
    durations.PROBE_TIME,
    durations.SHUTDOWN,
    durations.TOKEN_LIFETIME,
]


@pytest.mark.parametrize("bounds", BOUNDED)
@given(value=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40_000)))
def test_a_bound_accepts_exactly_what_lies_within_it(
    bounds: durations.Bounds, value: timedelta
) -> None:
    inside = bounds.minimum <= value <= bounds.maximum and not (
        bounds.positive and value == timedelta(0)
    )
    try:
        assert bounds.check(value) == value
        assert inside
    except ValueError as exc:
        assert not inside, exc
    assert bounds.maximum <= MAX


class _Model(BaseModel):
    interval: durations.Interval
    step: durations.EscalationDelay = timedelta(0)


def test_the_pydantic_types_name_the_field_and_the_bound() -> None:
    with pytest.raises(ValidationError) as caught:
        _Model.model_validate({"interval": "0s", "step": "999999999d"})
    errors = {e["loc"]: e["msg"] for e in caught.value.errors()}
    assert errors == {
        ("interval",): "Value error, must be at least 1s",
        ("step",): "Value error, must be at most 30d",
    }
    assert _Model(interval="1s").model_dump(mode="json") == {"interval": "1s", "step": "0s"}


# -- `watchkeeper validate`: every hostile duration at its line -----------------------------

HOSTILE = """\
checks:
  - name: api
    type: tcp
    host: 127.0.0.1
    port: 9
    interval: 0s
  - name: backup
    type: heartbeat
    period: 999999999d
notifications:
  - name: ops
    type: webhook
    url: http://127.0.0.1:9/hook
escalation:
  - name: oncall
    steps:
      - after: 999999999d
        notify: [ops]
    repeat: 999999999d
maintenance:
  - name: forever
    schedule: "0 2 * * 0"
    duration: 999999999d
    checks: [api]
  - name: never
    schedule: "0 0 30 2 *"
    duration: 1h
    checks: [api]
  - name: decade
    starts_at: 2030-01-01T00:00:00Z
    ends_at: 2040-01-01T00:00:00Z
    checks: [api]
alerting:
  repeat_interval: 999999999d
"""


def test_validate_reports_each_hostile_duration_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "wk.yaml"
    path.write_text(HOSTILE)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    found = {(i.line, i.field): i.message for i in caught.value.issues}
    assert found == {
        (6, "checks[0].interval"): "must be at least 1s",
        (9, "checks[1].period"): "must be at most 365d",
        (17, "escalation[0].steps[0].after"): "must be at most 30d",
        (19, "escalation[0].repeat"): "must be at most 30d",
        (23, "maintenance[0].duration"): "must be at most 365d",
        (26, "maintenance[1].schedule"): (
            "not a valid cron expression: '0 0 30 2 *' "
            "(5 fields: minute hour day month weekday, e.g. '0 2 * * 0')"
        ),
        (29, "maintenance[2]"): "ends_at: a one-off window lasts at most 365d after starts_at",
        (34, "alerting.repeat_interval"): "must be at most 30d",
    }
