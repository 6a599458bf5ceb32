"""The `storage:` config section: which database, and how long history is kept."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from watchkeeper.core.durations import Retention
from watchkeeper.core.model import StrictModel


class RetentionConfig(StrictModel):
    """`storage.retention`: how long each kind of history is kept before it is pruned."""

    results: Retention = timedelta(days=30)
    raw_success: Retention = timedelta(days=2)
    """Plain successful results (`up` after `up`, without metrics still kept): the rollups
    keep their counts and response times, so the raw rows go sooner than failures."""
    metrics: Retention = timedelta(days=30)
    alerts: Retention = timedelta(days=90)
    audit: Retention = timedelta(days=365)
    rollups_5m: Retention = timedelta(days=30)
    """5-minute rollups of check results (counts, availability, response times)."""
    rollups_1h: Retention = timedelta(days=400)
    """1-hour rollups: what charts and uptime read once raw results are gone."""

    @model_validator(mode="after")
    def _coarse_rollups_outlive_fine_ones(self) -> RetentionConfig:
        if self.rollups_1h < self.rollups_5m:
            raise ValueError(
                "rollups_1h must be at least rollups_5m: hourly rollups are what remains of "
                "older history"
            )
        return self

    @model_validator(mode="after")
    def _successes_go_first(self) -> RetentionConfig:
        if self.raw_success > self.results:
            raise ValueError(
                "raw_success must be at most results: successful results are pruned sooner "
                "than the others, never later"
            )
        return self


class StorageConfig(StrictModel):
    """The `storage:` section."""

    url: str = "sqlite:///watchkeeper.db"
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgres|postgresql)(\+\w+)?://", value):
            raise ValueError("expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
        return value
