"""Alerts POSTed by other systems: Watchkeeper's own shape and Alertmanager's webhook."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, Field

from watchkeeper.alerting.lifecycle import AlertSpec
from watchkeeper.domain import Severity, severity_from


def _label_hash(name: str, labels: dict[str, str]) -> str:
    text = name + "\0" + "\0".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class ExternalAlert(BaseModel):
    """Watchkeeper's own shape for `POST /api/v1/alerts`."""

    name: str = Field(min_length=1, max_length=200)
    status: Literal["firing", "resolved"] = "firing"
    severity: Severity = Severity.MEDIUM
    summary: str = Field(default="", max_length=4000)
    labels: dict[str, str] = Field(default_factory=dict)
    fingerprint: str | None = Field(default=None, max_length=200)
    """Stable identity; default: a hash of name and labels."""
    escalation: str | None = None

    def spec(self) -> AlertSpec:
        fingerprint = f"ext:{self.fingerprint or _label_hash(self.name, self.labels)}"
        return AlertSpec(
            fingerprint=fingerprint,
            name=self.name,
            severity=self.severity,
            summary=self.summary or self.name,
            labels={**self.labels, "severity": self.severity.value},
            source="external",
            escalation_policy=self.escalation,
        )


class AlertmanagerAlert(BaseModel):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str | None = None
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str | None = None

    def spec(self) -> AlertSpec:
        name = self.labels.get("alertname", "alertmanager")
        severity = severity_from(self.labels.get("severity"))
        summary = (
            self.annotations.get("summary")
            or self.annotations.get("description")
            or self.annotations.get("message")
            or name
        )
        key = self.fingerprint or _label_hash(name, self.labels)
        return AlertSpec(
            fingerprint=f"am:{key}",
            name=name,
            severity=severity,
            summary=summary,
            labels={**self.labels, "severity": severity.value},
            source="external",
        )


class AlertmanagerWebhook(BaseModel):
    """Prometheus Alertmanager's webhook payload (version 4)."""

    version: Literal["4"]
    status: str | None = None
    receiver: str | None = None
    groupKey: str | None = None
    alerts: list[AlertmanagerAlert] = Field(default_factory=list, max_length=1000)


def parse_external(body: Any) -> list[tuple[AlertSpec, bool]]:
    """(spec, firing) for each alert in an own-shape or Alertmanager body; ValueError if neither."""
    if isinstance(body, dict) and body.get("version") == "4" and "alerts" in body:
        webhook = AlertmanagerWebhook.model_validate(body)
        return [(a.spec(), a.status == "firing") for a in webhook.alerts]
    if isinstance(body, list):
        items = [ExternalAlert.model_validate(item) for item in body]
    else:
        items = [ExternalAlert.model_validate(body)]
    return [(item.spec(), item.status == "firing") for item in items]
