"""`heartbeat`: a push check. The monitored job calls `/ping/<uuid>`; we never probe it.

The config lives here with the other check types; the deadline logic is in
`watchkeeper.engine.heartbeat`, which the runtime drives instead of the scheduler.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from watchkeeper.checks.base import Check, CheckConfigBase
from watchkeeper.checks.registry import register
from watchkeeper.core.domain import CheckResult
from watchkeeper.core.durations import LongSpan
from watchkeeper.core.model import TimeZoneName
from watchkeeper.core.schedule import valid_cron


class HeartbeatCheckConfig(CheckConfigBase):
    """Either `period` (every N) or `schedule` (cron) with `tz`, plus `grace`."""

    push: ClassVar[bool] = True

    type: Literal["heartbeat"]
    period: LongSpan | None = None
    schedule: str | None = None
    tz: TimeZoneName = "UTC"
    grace: LongSpan = timedelta(minutes=5)
    uuid: UUID | None = None
    """Fixed ping UUID; when unset one is generated once and kept in the database."""
    failure_threshold: int = Field(default=1, ge=1)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not valid_cron(value):
            raise ValueError(
                f"not a valid cron expression: {value!r} "
                "(5 fields: minute hour day month weekday, e.g. '0 3 * * *')"
            )
        return value

    @model_validator(mode="after")
    def _period_or_schedule(self) -> HeartbeatCheckConfig:
        if (self.period is None) == (self.schedule is None):
            raise ValueError("set exactly one of period (e.g. 1h) or schedule (cron)")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


@register
class HeartbeatCheck(Check[HeartbeatCheckConfig]):
    type = "heartbeat"
    config_model = HeartbeatCheckConfig

    async def run(self) -> CheckResult:
        # Run once from the CLI there is nothing to probe: the job reports to us.
        return CheckResult.unknown(
            f"push check: the job pings /ping/<uuid> or /ping/<ping key>/{self.name}"
        )
