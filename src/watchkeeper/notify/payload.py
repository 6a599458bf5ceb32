"""The event payload every channel renders from (the webhook sends it as is)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from watchkeeper.core.domain import Alert

PAYLOAD_VERSION = 1


def _ts(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def alert_record(alert: Alert) -> dict[str, Any]:
    """Every public field of an alert as plain values: enums by value, times as datetimes.

    The one serialisation of an alert: the API answers with it (`AlertOut`), and the event
    payload takes its fields from it with the times as ISO text."""
    return {
        "id": alert.id,
        "fingerprint": alert.fingerprint,
        "name": alert.name,
        "check": alert.check,
        "rule": alert.rule,
        "severity": alert.severity.value,
        "status": alert.status.value,
        "started_at": alert.started_at,
        "resolved_at": alert.resolved_at,
        "summary": alert.summary,
        "labels": dict(alert.labels),
        "suppressed": alert.suppressed_reason,
        "silenced_by": alert.silenced_by,
        "acknowledged_at": alert.acknowledged_at,
        "acknowledged_by": alert.acknowledged_by,
        "source": alert.source,
        "escalation_step": alert.escalation_step,
        "paged_channels": alert.paged_channels,
    }


PAYLOAD_FIELDS = (
    "id",
    "fingerprint",
    "name",
    "check",
    "rule",
    "severity",
    "status",
    "started_at",
    "resolved_at",
    "summary",
    "labels",
    "acknowledged_by",
    "acknowledged_at",
)
"""The fields of `alert_record` that a notification carries, in the order channels send them
(the webhook body is signed, so the order is part of the contract)."""


def alert_payload(alert: Alert, event: str) -> dict[str, Any]:
    """`{"version", "event", "alert": {...}}`; `sent_at` is stamped by the channel at send time."""
    record = alert_record(alert)
    return {
        "version": PAYLOAD_VERSION,
        "event": event,
        "alert": {
            name: _ts(value) if isinstance(value := record[name], datetime) else value
            for name in PAYLOAD_FIELDS
        },
    }


RECOVERY_FIELDS = (
    "id",
    "action",
    "check",
    "attempt",
    "status",
    "started_at",
    "finished_at",
    "output",
)
"""The fields of a recovery run a notification carries, in the order channels send them."""


def recovery_payload(run: Mapping[str, Any], event: str) -> dict[str, Any]:
    """`{"version", "event", "recovery": {...}}` for `recovery.started|succeeded|failed|
    exhausted`: a recovery run's record (redacted output) instead of an alert."""
    return {
        "version": PAYLOAD_VERSION,
        "event": event,
        "recovery": {
            name: _ts(value) if isinstance(value := run.get(name), datetime) else value
            for name in RECOVERY_FIELDS
        },
    }
