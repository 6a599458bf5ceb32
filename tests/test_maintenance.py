"""Maintenance windows: one-off and recurring (cron across DST), scope, config errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from watchkeeper.alerting.maintenance import MaintenanceWindow, active_windows

API = {"alertname": "api down", "check": "api", "severity": "critical", "component": "web"}
DB = {"alertname": "db down", "check": "db", "severity": "high", "component": "storage"}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def window(**fields: Any) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate({"name": "planned", "checks": ["api"], **fields})


def berlin_sunday_nights() -> MaintenanceWindow:
    return window(schedule="0 2 * * 0", duration="2h", tz="Europe/Berlin")


def test_a_one_off_window_is_active_from_its_start_until_just_before_its_end() -> None:
    w = window(starts_at="2026-06-01T10:00:00+02:00", ends_at="2026-06-01T12:00:00+02:00")
    assert not w.active_at(utc(2026, 6, 1, 7, 59))
    assert w.next_change(utc(2026, 6, 1, 7, 59)) == utc(2026, 6, 1, 8)
    assert w.active_at(utc(2026, 6, 1, 8))
    assert w.next_change(utc(2026, 6, 1, 8)) == utc(2026, 6, 1, 10)
    assert w.active_at(utc(2026, 6, 1, 9, 59))
    assert not w.active_at(utc(2026, 6, 1, 10))
    assert w.next_change(utc(2026, 6, 1, 10)) is None


def test_one_off_instants_parse_from_yaml_timestamps_and_are_kept_in_utc() -> None:
    data = yaml.safe_load(
        "name: upgrade\nchecks: [api]\n"
        "starts_at: 2026-06-01T10:00:00+02:00\nends_at: '2026-06-01T09:00:00Z'\n"
    )
    w = MaintenanceWindow.model_validate(data)
    assert w.starts_at == utc(2026, 6, 1, 8)
    assert w.starts_at is not None and w.starts_at.tzinfo is UTC
    assert w.ends_at == utc(2026, 6, 1, 9)


def test_a_recurring_window_is_active_for_its_duration_after_each_cron_start() -> None:
    w = berlin_sunday_nights()
    # An ordinary summer Sunday: 02:00 CEST is 00:00 UTC.
    assert not w.active_at(utc(2026, 6, 6, 23, 59))
    assert w.next_change(utc(2026, 6, 6, 23, 59)) == utc(2026, 6, 7, 0)
    assert w.active_at(utc(2026, 6, 7, 0))
    assert w.active_at(utc(2026, 6, 7, 1, 59))
    assert w.next_change(utc(2026, 6, 7, 1)) == utc(2026, 6, 7, 2)
    assert not w.active_at(utc(2026, 6, 7, 2))
    assert w.next_change(utc(2026, 6, 7, 2)) == utc(2026, 6, 14, 0)
    # Not on other days at that hour.
    assert not w.active_at(utc(2026, 6, 8, 0, 30))


def test_a_recurring_window_starting_in_the_spring_forward_gap_opens_when_clocks_jump() -> None:
    w = berlin_sunday_nights()
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:00 never happens.
    assert not w.active_at(utc(2026, 3, 29, 0, 59))
    assert w.next_change(utc(2026, 3, 29, 0, 59)) == utc(2026, 3, 29, 1)
    assert w.active_at(utc(2026, 3, 29, 1))
    assert w.next_change(utc(2026, 3, 29, 1)) == utc(2026, 3, 29, 3)
    assert w.active_at(utc(2026, 3, 29, 2, 59))
    assert not w.active_at(utc(2026, 3, 29, 3))
    # The next Sunday is on summer time: 02:00 CEST is 00:00 UTC.
    assert w.next_change(utc(2026, 3, 29, 3)) == utc(2026, 4, 5, 0)


def test_a_recurring_window_in_the_fall_back_night_opens_once_and_lasts_two_real_hours() -> None:
    w = berlin_sunday_nights()
    # 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00 UTC); 02:00 happens twice.
    assert not w.active_at(utc(2026, 10, 24, 23, 59))
    assert w.next_change(utc(2026, 10, 24, 23, 59)) == utc(2026, 10, 25, 0)
    assert w.active_at(utc(2026, 10, 25, 0))  # 02:00 CEST, the first 02:00
    assert w.next_change(utc(2026, 10, 25, 0)) == utc(2026, 10, 25, 2)
    assert w.active_at(utc(2026, 10, 25, 1, 30))  # 02:30 CET, the second 02:30: same window
    assert w.next_change(utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 25, 2)
    assert not w.active_at(utc(2026, 10, 25, 2))  # 03:00 CET
    # The next Sunday is on winter time: 02:00 CET is 01:00 UTC.
    assert w.next_change(utc(2026, 10, 25, 2)) == utc(2026, 11, 1, 1)


def test_back_to_back_occurrences_merge_into_one_window() -> None:
    w = window(schedule="0,30 2 * * *", duration="30m")
    assert w.active_at(utc(2026, 6, 1, 2, 10))
    assert w.next_change(utc(2026, 6, 1, 2, 10)) == utc(2026, 6, 1, 3)
    assert w.active_at(utc(2026, 6, 1, 2, 45))
    assert not w.active_at(utc(2026, 6, 1, 3))


def test_overlapping_occurrences_find_the_most_recent_start() -> None:
    # Hourly, each lasting 90 minutes: every start keeps it open; it never closes.
    w = window(schedule="0 * * * *", duration="90m")
    assert w.active_at(utc(2026, 6, 1, 12, 45))
    assert w.next_change(utc(2026, 6, 1, 12, 45)) is None
    # Every other hour, 90 minutes: 12:00-13:30 then closed until 14:00.
    w = window(schedule="0 */2 * * *", duration="90m")
    assert w.active_at(utc(2026, 6, 1, 13, 29))
    assert w.next_change(utc(2026, 6, 1, 13, 29)) == utc(2026, 6, 1, 13, 30)
    assert not w.active_at(utc(2026, 6, 1, 13, 30))
    assert w.next_change(utc(2026, 6, 1, 13, 30)) == utc(2026, 6, 1, 14)


def test_a_window_covers_alerts_by_check_name() -> None:
    w = window(schedule="0 2 * * 0", duration="2h", checks=["api", "web"])
    assert w.covers(API)
    assert not w.covers(DB)
    assert not w.covers({"alertname": "disk full"})


def test_a_window_covers_alerts_by_component() -> None:
    w = window(schedule="0 2 * * 0", duration="2h", checks=[], components=["storage"])
    assert w.covers(DB)
    assert not w.covers(API)


def test_a_window_covers_alerts_matching_all_of_its_matchers() -> None:
    w = window(
        schedule="0 2 * * 0",
        duration="2h",
        checks=[],
        matchers=["severity=~high|low", "check!=api"],
    )
    assert w.covers(DB)
    assert not w.covers(API)
    assert not w.covers({**DB, "severity": "critical"})
    assert [str(m) for m in w.parsed_matchers] == ["severity=~high|low", "check!=api"]


def test_scope_selectors_add_up() -> None:
    w = window(
        schedule="0 2 * * 0", duration="2h", checks=["api"], matchers=["alertname=disk full"]
    )
    assert w.covers(API)
    assert w.covers({"alertname": "disk full"})
    assert not w.covers(DB)


def test_active_windows_lists_the_active_windows_covering_an_alert() -> None:
    now = utc(2026, 6, 7, 0, 30)
    sunday = window(name="sunday", schedule="0 2 * * 0", duration="2h", tz="Europe/Berlin")
    storage = window(
        name="storage",
        checks=[],
        components=["storage"],
        starts_at="2026-06-07T00:00:00Z",
        ends_at="2026-06-07T01:00:00Z",
    )
    later = window(name="later", starts_at="2026-07-01T00:00:00Z", ends_at="2026-07-02T00:00:00Z")
    windows = [sunday, storage, later]
    assert active_windows(windows, API, now) == [sunday]
    assert active_windows(windows, DB, now) == [storage]
    assert active_windows(windows, API, utc(2026, 6, 8)) == []


def invalid(**fields: Any) -> str:
    with pytest.raises(ValidationError) as info:
        MaintenanceWindow.model_validate({"name": "planned", **fields})
    return str(info.value)


def test_both_forms_at_once_are_refused() -> None:
    message = invalid(
        checks=["api"],
        starts_at="2026-06-01T10:00:00Z",
        ends_at="2026-06-01T12:00:00Z",
        schedule="0 2 * * 0",
        duration="2h",
    )
    assert "set either starts_at and ends_at (a one-off window) or schedule and duration" in message


def test_neither_form_is_refused() -> None:
    message = invalid(checks=["api"])
    assert "needs starts_at and ends_at (one-off) or schedule and duration (recurring)" in message


def test_half_a_form_is_refused() -> None:
    assert "needs both starts_at and ends_at" in invalid(
        checks=["api"], starts_at="2026-06-01T10:00:00Z"
    )
    assert "needs both schedule (cron) and duration" in invalid(
        checks=["api"], schedule="0 2 * * 0"
    )
    assert "ends_at must be after starts_at" in invalid(
        checks=["api"], starts_at="2026-06-01T10:00:00Z", ends_at="2026-06-01T10:00:00Z"
    )


def test_naive_datetimes_are_refused_with_a_hint_to_add_a_time_zone() -> None:
    message = invalid(
        checks=["api"], starts_at="2026-06-01T10:00:00", ends_at="2026-06-01T12:00:00Z"
    )
    assert "starts_at" in message
    assert "has no time zone: add one (an offset or Z)" in message
    # An unquoted YAML date arrives as a date; an unquoted naive timestamp as a naive datetime.
    data = yaml.safe_load("starts_at: 2026-06-01\nends_at: 2026-06-01 12:00:00")
    message = invalid(checks=["api"], **data)
    assert "needs a date, a time and a time zone" in message
    assert "ends_at" in message and "has no time zone" in message


def test_a_window_with_no_scope_is_refused() -> None:
    message = invalid(schedule="0 2 * * 0", duration="2h")
    assert "a maintenance window must name checks, components or matchers" in message


def test_a_bad_cron_expression_is_refused() -> None:
    assert "not a valid cron expression: '0 25 * * *'" in invalid(
        checks=["api"], schedule="0 25 * * *", duration="2h"
    )
    # Six fields (seconds) are not cron as written in crontab.
    assert "5 fields" in invalid(checks=["api"], schedule="0 0 2 * * 0", duration="2h")


def test_a_bad_matcher_is_refused_at_load_time() -> None:
    message = invalid(schedule="0 2 * * 0", duration="2h", matchers=["check=api", "severity"])
    assert "matchers.1" in message
    assert "expected a matcher like check=api" in message
    message = invalid(schedule="0 2 * * 0", duration="2h", matchers=["severity=~(crit"])
    assert "invalid regex '(crit' for severity" in message


def test_other_recurring_mistakes_are_refused() -> None:
    assert "unknown time zone 'Mars/Olympus'" in invalid(
        checks=["api"], schedule="0 2 * * 0", duration="2h", tz="Mars/Olympus"
    )
    assert "must be positive" in invalid(checks=["api"], schedule="0 2 * * 0", duration="0s")
    assert "tz applies to a recurring schedule only" in invalid(
        checks=["api"],
        starts_at="2026-06-01T10:00:00Z",
        ends_at="2026-06-01T12:00:00Z",
        tz="Europe/Berlin",
    )


def test_unknown_keys_are_refused() -> None:
    assert "extra" in invalid(checks=["api"], schedule="0 2 * * 0", duration="2h", every="1d")


def test_duration_serialises_back_to_its_config_form() -> None:
    w = berlin_sunday_nights()
    assert w.duration == timedelta(hours=2)
    assert w.model_dump(exclude_defaults=True) == {
        "name": "planned",
        "schedule": "0 2 * * 0",
        "duration": "2h",
        "tz": "Europe/Berlin",
        "checks": ["api"],
    }
