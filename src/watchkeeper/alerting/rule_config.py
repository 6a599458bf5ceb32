"""The `rules:` config model (kept apart from the engine so loading a config stays light)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from watchkeeper.alerting.matchers import Matcher, parse_matcher
from watchkeeper.core.domain import Severity, severity_from
from watchkeeper.core.durations import RuleDelay
from watchkeeper.core.model import Name, StrictModel

Op = Literal[">", ">=", "<", "<=", "==", "!="]
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}  # critical first


class RuleConfig(StrictModel):
    """One metric rule. Set `threshold` (with `severity`) or `thresholds` per severity."""

    name: Name
    metric: str = Field(min_length=1, max_length=200)
    op: Op = ">"
    threshold: float | None = None
    thresholds: dict[str, float] | None = None
    """Several levels of one alert, e.g. `{warning: 80, critical: 95}`: it escalates and
    de-escalates instead of opening a second alert."""
    for_: RuleDelay = Field(default=timedelta(0), alias="for")
    keep_firing_for: RuleDelay = timedelta(0)
    stale_after: RuleDelay = timedelta(minutes=5)
    """A series with no sample for this long no longer holds the condition (Prometheus)."""
    matchers: list[str] = Field(default_factory=list)
    """Only series whose labels match, e.g. `["check=host"]`."""
    severity: Severity = Severity.MEDIUM
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str | None = None
    notify: list[Name] | None = None
    escalation: Name | None = None
    recovery: Name | None = None
    """A recovery action (of the config file's `recovery:` section) run when the rule's
    alert fires, under that action's guard."""

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_matcher(item)
        return value

    @field_validator("thresholds")
    @classmethod
    def _levels(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None:
            if not value:
                raise ValueError("give at least one level, e.g. {warning: 80, critical: 95}")
            for word in value:
                if severity_from(word, default=None) is None:  # type: ignore[arg-type]
                    raise ValueError(f"unknown severity {word!r} (critical, high, warning, ...)")
        return value

    @model_validator(mode="after")
    def _one_threshold_form(self) -> RuleConfig:
        if (self.threshold is None) == (self.thresholds is None):
            raise ValueError("set exactly one of threshold or thresholds")
        return self

    def levels(self) -> list[tuple[Severity, float]]:
        """(severity, threshold), most severe first."""
        if self.thresholds is None:
            assert self.threshold is not None
            return [(self.severity, self.threshold)]
        pairs = [(severity_from(k), v) for k, v in self.thresholds.items()]
        return sorted(pairs, key=lambda p: _SEVERITY_RANK[p[0]])

    def parsed_matchers(self) -> list[Matcher]:
        return [parse_matcher(m) for m in self.matchers]
