"""Plain typed values shared by every layer: statuses, severities, results, alerts."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Status(enum.StrEnum):
    """State of a check. Results carry UP/DEGRADED/DOWN/UNKNOWN; PAUSED is set by operators."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"
    PAUSED = "paused"

    @property
    def is_problem(self) -> bool:
        return self in (Status.DEGRADED, Status.DOWN, Status.UNKNOWN)


class Severity(enum.StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class AlertStatus(enum.StrEnum):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertEventKind(enum.StrEnum):
    """Names of notification events; the webhook `event` field is `alert.<kind>`."""

    FIRING = "firing"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of running a check once."""

    status: Status
    reason: str
    response_time: float | None = None
    """Seconds the probe took, when it measured one."""
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def up(cls, reason: str = "OK", **kwargs: Any) -> CheckResult:
        return cls(Status.UP, reason, **kwargs)

    @classmethod
    def down(cls, reason: str, **kwargs: Any) -> CheckResult:
        return cls(Status.DOWN, reason, **kwargs)

    @classmethod
    def degraded(cls, reason: str, **kwargs: Any) -> CheckResult:
        return cls(Status.DEGRADED, reason, **kwargs)

    @classmethod
    def unknown(cls, reason: str, **kwargs: Any) -> CheckResult:
        return cls(Status.UNKNOWN, reason, **kwargs)


@dataclass(frozen=True, slots=True)
class RecordedResult:
    """A result as stored: which check, when it started."""

    check: str
    started_at: datetime
    result: CheckResult


@dataclass(slots=True)
class Alert:
    id: str
    fingerprint: str
    name: str
    check: str | None
    rule: str | None
    severity: Severity
    status: AlertStatus
    started_at: datetime
    resolved_at: datetime | None
    summary: str
    labels: dict[str, str] = field(default_factory=dict)
    suppressed_reason: str | None = None
    """Why nobody was notified, e.g. "suppressed: database down"; None once notified."""
    notified_at: datetime | None = None
    source: str = "check"
    silenced_by: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    escalation_policy: str | None = None
    escalation_step: int = 0
    next_escalation_at: datetime | None = None
    paged_channels: list[str] | None = None
    ack_notified_at: datetime | None = None
    resolved_notified_at: datetime | None = None
    group_key: str | None = None
    updated_at: datetime | None = None
    """Last time the source re-asserted or changed the alert."""
    ends_at: datetime | None = None
    """When the alert resolves unless re-sent (an Alertmanager client's `endsAt`)."""
    annotations: dict[str, str] = field(default_factory=dict)
    """Alertmanager-style annotations (summary, description, runbook_url...) as posted."""
    generator_url: str | None = None

    @property
    def match_labels(self) -> dict[str, str]:
        """Labels silences and routes match on: the alert's labels plus `alertname`."""
        return {"alertname": self.name, **self.labels}


# Severity words other tools use, mapped onto ours.
_SEVERITY_WORDS = {
    "critical": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "fatal": Severity.CRITICAL,
    "high": Severity.HIGH,
    "error": Severity.HIGH,
    "major": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "warning": Severity.MEDIUM,
    "warn": Severity.MEDIUM,
    "minor": Severity.LOW,
    "low": Severity.LOW,
    "info": Severity.INFO,
    "informational": Severity.INFO,
    "none": Severity.INFO,
}


def severity_from(word: str | None, default: Severity = Severity.MEDIUM) -> Severity:
    return _SEVERITY_WORDS.get((word or "").strip().lower(), default)
