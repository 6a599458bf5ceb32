"""Maintenance windows: planned quiet periods for some checks, components or label sets.

A window is either one-off (`starts_at`..`ends_at`, aware instants) or recurring (a cron
`schedule` in a time zone `tz`, each occurrence lasting `duration`). Its scope is the union
of three selectors: alerts whose `check` label is in `checks`, alerts whose `component`
label is in `components`, and alerts matching every one of `matchers`.

Pure: no clock and no I/O. Every instant is passed in and must be timezone-aware.
Windows are half-open: active from their start inclusive to their end exclusive.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, PrivateAttr, field_validator, model_validator

from watchkeeper.alerting.matchers import Matcher, matches_all, parse_matcher
from watchkeeper.core.durations import LONG_SPAN, LongSpan, format_duration
from watchkeeper.core.model import Name, StrictModel, TimeZoneName
from watchkeeper.core.schedule import next_cron_instant, valid_cron

_MAX_CHAINED_OCCURRENCES = 1000
"""How many back-to-back recurring occurrences `next_change` follows before giving up."""

_AWARE_EXAMPLE = "e.g. 2026-03-29T02:00:00+02:00 or 2026-03-29T00:00:00Z"


def _valid_matcher(value: str) -> str:
    parse_matcher(value)  # raises ValueError saying what is wrong
    return value


MatcherText = Annotated[str, AfterValidator(_valid_matcher)]
"""A label matcher as written in config (`check=api`, `severity=~crit.*`), checked on load."""


class MaintenanceWindow(StrictModel):
    """A named maintenance window; see the module docstring for the two forms and the scope."""

    name: Name
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    schedule: str | None = None
    """Cron, 5 fields, wall-clock time in `tz`: when each occurrence starts."""
    duration: LongSpan | None = None
    """Elapsed time each recurring occurrence lasts (not wall-clock: DST does not stretch it)."""
    tz: TimeZoneName = "UTC"
    checks: list[str] = []
    components: list[str] = []
    matchers: list[MatcherText] = []
    comment: str = ""

    _matchers: list[Matcher] = PrivateAttr(default_factory=list)

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _not_a_bare_date(cls, value: Any) -> Any:
        # YAML turns an unquoted 2026-03-29 into a date; say what is missing.
        if isinstance(value, date) and not isinstance(value, datetime):
            raise ValueError(f"needs a date, a time and a time zone, {_AWARE_EXAMPLE}")
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"has no time zone: add one (an offset or Z), {_AWARE_EXAMPLE}")
        return value.astimezone(UTC)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and (len(value.split()) != 5 or not valid_cron(value)):
            raise ValueError(
                f"not a valid cron expression: {value!r} "
                "(5 fields: minute hour day month weekday, e.g. '0 2 * * 0')"
            )
        return value

    @model_validator(mode="after")
    def _one_form_and_a_scope(self) -> MaintenanceWindow:
        one_off = self.starts_at is not None or self.ends_at is not None
        recurring = self.schedule is not None or self.duration is not None
        if one_off and recurring:
            raise ValueError(
                "set either starts_at and ends_at (a one-off window) or schedule and duration "
                "(a recurring window), not both"
            )
        if not one_off and not recurring:
            raise ValueError(
                "a maintenance window needs starts_at and ends_at (one-off) "
                "or schedule and duration (recurring)"
            )
        if one_off:
            if self.starts_at is None or self.ends_at is None:
                raise ValueError("a one-off window needs both starts_at and ends_at")
            if self.ends_at <= self.starts_at:
                raise ValueError("ends_at must be after starts_at")
            if self.ends_at - self.starts_at > LONG_SPAN.maximum:
                raise ValueError(
                    "ends_at: a one-off window lasts at most "
                    f"{format_duration(LONG_SPAN.maximum)} after starts_at"
                )
            if "tz" in self.model_fields_set:
                raise ValueError(
                    "tz applies to a recurring schedule only; "
                    "give starts_at and ends_at their own offset"
                )
        elif self.schedule is None or self.duration is None:
            raise ValueError("a recurring window needs both schedule (cron) and duration")
        if not (self.checks or self.components or self.matchers):
            raise ValueError("a maintenance window must name checks, components or matchers")
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._matchers = [parse_matcher(m) for m in self.matchers]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def recurring(self) -> bool:
        return self.schedule is not None

    @property
    def parsed_matchers(self) -> list[Matcher]:
        return list(self._matchers)

    def covers(self, labels: dict[str, str]) -> bool:
        """Whether the window's scope takes in an alert with these labels (time aside)."""
        if self.checks and labels.get("check") in self.checks:
            return True
        if self.components and labels.get("component") in self.components:
            return True
        return bool(self._matchers) and matches_all(self._matchers, labels)

    def active_at(self, now: datetime) -> bool:
        """Whether `now` (aware) falls inside the window or one of its occurrences."""
        if self.schedule is None:
            assert self.starts_at is not None and self.ends_at is not None
            return self.starts_at <= now < self.ends_at
        return self._occurrence_covering(now) is not None

    def next_change(self, now: datetime) -> datetime | None:
        """The first instant after `now` at which `active_at` flips, in UTC.

        None when it never flips again: a one-off window that is over, or recurring
        occurrences that overlap back to back for longer than we follow them.
        """
        if self.schedule is None:
            assert self.starts_at is not None and self.ends_at is not None
            if now < self.starts_at:
                return self.starts_at
            return self.ends_at if now < self.ends_at else None
        assert self.duration is not None
        start = self._occurrence_covering(now)
        if start is None:
            return next_cron_instant(self.schedule, self.zone, now)
        end = start + self.duration
        for _ in range(_MAX_CHAINED_OCCURRENCES):
            following = next_cron_instant(self.schedule, self.zone, start)
            if following > end:  # a gap: the window closes at `end`
                return end
            # The next occurrence starts before (or as) this one ends: still active.
            start, end = following, following + self.duration
        return None

    def _occurrence_covering(self, now: datetime) -> datetime | None:
        """The earliest occurrence start in (now - duration, now], if any.

        Every start in that interval covers `now`; none outside it does. Searching from
        `now - duration` rather than stepping back from `now` finds it with one cron step.
        """
        assert self.schedule is not None and self.duration is not None
        start = next_cron_instant(self.schedule, self.zone, now - self.duration)
        return start if start <= now else None


def active_windows(
    windows: Iterable[MaintenanceWindow], labels: dict[str, str], now: datetime
) -> list[MaintenanceWindow]:
    """The windows that cover an alert with `labels` and are active at `now`, in order."""
    return [w for w in windows if w.covers(labels) and w.active_at(now)]
