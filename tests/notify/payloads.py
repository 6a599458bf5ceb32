"""The alert payloads and outbox messages every channel test renders."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from watchkeeper.notify.channels.base import Message

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def alert(**overrides: Any) -> dict[str, Any]:
    """A firing alert as `notify.payload.alert_payload` renders it."""
    base: dict[str, Any] = {
        "id": "a-1",
        "fingerprint": "check:db",
        "name": "db",
        "check": "db",
        "rule": None,
        "severity": "critical",
        "status": "firing",
        "started_at": "2030-01-01T12:00:00Z",
        "resolved_at": None,
        "summary": "connection refused",
        "labels": {"check": "db"},
    }
    return {**base, **overrides}


def message(event: str, payload: dict[str, Any], key: str | None = None) -> Message:
    body = {"version": 1, "event": event, **payload}
    return Message(1, key or f"a-1:{event}", event, body, T0, 1)
