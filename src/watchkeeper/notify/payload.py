"""The event payload every channel renders from (the webhook sends it as is)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from watchkeeper.core.domain import Alert

PAYLOAD_VERSION = 1


def _ts(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def alert_payload(alert: Alert, event: str) -> dict[str, Any]:
    """`{"version", "event", "alert": {...}}`; `sent_at` is stamped by the channel at send time."""
    return {
        "version": PAYLOAD_VERSION,
        "event": event,
        "alert": {
            "id": alert.id,
            "fingerprint": alert.fingerprint,
            "name": alert.name,
            "check": alert.check,
            "rule": alert.rule,
            "severity": alert.severity.value,
            "status": alert.status.value,
            "started_at": _ts(alert.started_at),
            "resolved_at": _ts(alert.resolved_at),
            "summary": alert.summary,
            "labels": dict(alert.labels),
            "acknowledged_by": alert.acknowledged_by,
            "acknowledged_at": _ts(alert.acknowledged_at),
        },
    }
