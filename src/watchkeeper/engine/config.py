"""The `defaults:` and `scheduler:` config sections: how checks are scheduled."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from watchkeeper.checks.base import MAX_THRESHOLD, CheckConfigBase
from watchkeeper.core.durations import Interval, ShutdownGrace, Timeout
from watchkeeper.core.model import StrictModel


class DefaultsConfig(StrictModel):
    """`defaults:`: scheduling values for checks that do not set their own."""

    interval: Interval = timedelta(seconds=30)
    timeout: Timeout = timedelta(seconds=10)
    failure_threshold: int = Field(default=1, ge=1, le=MAX_THRESHOLD)
    success_threshold: int = Field(default=1, ge=1, le=MAX_THRESHOLD)


class SchedulerConfig(StrictModel):
    """The `scheduler:` section."""

    max_concurrency: int = Field(default=500, ge=1, le=100_000)
    """Checks running at once, across all checks."""
    shutdown_grace: ShutdownGrace = timedelta(seconds=5)
    """How long in-flight checks may finish on shutdown before they are cancelled."""


_DEFAULTED_FIELDS = ("interval", "timeout", "failure_threshold", "success_threshold")


def apply_defaults(check: CheckConfigBase, defaults: DefaultsConfig) -> None:
    """Give a check's unset scheduling fields the `defaults:` values (push checks have none)."""
    for field in _DEFAULTED_FIELDS:
        if field not in check.model_fields_set and not check.push:
            setattr(check, field, getattr(defaults, field))
