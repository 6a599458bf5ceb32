"""The `alerting:` and `escalation:` config sections: how alerts become notifications."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from watchkeeper.alerting.inhibition import InhibitRule
from watchkeeper.alerting.routes import Route
from watchkeeper.core.durations import EscalationDelay, LongSpan, Repeat, ShortWait
from watchkeeper.core.model import Name, StrictModel


class EscalationStep(StrictModel):
    after: EscalationDelay = timedelta(0)
    """Delay after the alert's first page before this step pages."""
    notify: list[Name] = Field(min_length=1)


class EscalationPolicy(StrictModel):
    """Ordered steps, each paging more channels, until someone acknowledges."""

    name: Name
    steps: list[EscalationStep] = Field(min_length=1)
    repeat: Repeat | None = None
    """After the last step, page its channels again every `repeat` until acknowledged."""

    @model_validator(mode="after")
    def _ordered(self) -> EscalationPolicy:
        afters = [step.after for step in self.steps]
        if afters != sorted(afters):
            raise ValueError("steps must be in order of `after`")
        return self


class FlappingConfig(StrictModel):
    """Nagios-style flap detection over each check's recent results."""

    enabled: bool = True
    window: int = Field(default=21, ge=2, le=100)
    high: float = Field(default=50.0, gt=0, le=100)
    """Percent state change above which a check starts flapping."""
    low: float = Field(default=25.0, ge=0, lt=100)
    """Percent state change below which it stops flapping."""

    @model_validator(mode="after")
    def _hysteresis(self) -> FlappingConfig:
        if self.low >= self.high:
            raise ValueError("low must be below high")
        return self


class AlertingConfig(StrictModel):
    """How alerts become notifications (Alertmanager's grouping semantics)."""

    flapping: FlappingConfig = Field(default_factory=FlappingConfig)

    group_by: list[str] | None = None
    """Label names; alerts with equal values are notified together. None: each alert alone."""
    group_wait: ShortWait = timedelta(0)
    """How long a new group waits for more alerts before its first notification."""
    group_interval: ShortWait = timedelta(minutes=5)
    """Minimum time between notifications about new alerts in the same group."""
    repeat_interval: Repeat | None = None
    """Re-send a still-firing, unacknowledged alert this often (None: never)."""
    default_escalation: Name | None = None
    auto_resolve_after: LongSpan | None = None
    """Resolve alerts POSTed by other systems that were not re-sent for this long (for
    sources that never send a recovery)."""
    routes: list[Route] = Field(default_factory=list)
    """Alertmanager-style routing tree from alert labels to channels (checks' and rules'
    own `notify` wins; no matching route: every channel)."""
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
