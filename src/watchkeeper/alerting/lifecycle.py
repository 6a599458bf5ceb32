"""The alert lifecycle, whatever the source: firing → acknowledged → resolved.

These functions change alert rows and their event timeline inside the caller's transaction.
They never notify: the dispatcher reads the rows and decides who hears what, and when.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from watchkeeper.core.domain import Alert, AlertEventKind, AlertStatus, Severity
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Connection as AsyncConnection


class AlertStateError(Exception):
    """The requested change does not apply to the alert as it is (e.g. ack a resolved one)."""


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """What a source says is wrong: one alert per fingerprint while it is open."""

    fingerprint: str
    name: str
    severity: Severity
    summary: str
    labels: dict[str, str] = field(default_factory=dict)
    source: str = "check"
    check: str | None = None
    rule: str | None = None
    escalation_policy: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    generator_url: str | None = None
    starts_at: datetime | None = None
    """When the source says it started (default: when it is first taken in)."""
    ends_at: datetime | None = None
    """When it resolves unless re-sent (Alertmanager's `endsAt`; None: never by itself)."""


async def fire(
    conn: AsyncConnection, spec: AlertSpec, at: datetime, *, alert_id: str | None = None
) -> tuple[Alert, bool]:
    """Open the alert for `spec.fingerprint`, or refresh the open one; (alert, created).
    `alert_id`: the id a new alert gets (one already told about before it could be stored)."""
    existing = await alert_store.open_alert(conn, spec.fingerprint)
    if existing is not None:
        # The summary stays what it was when the alert opened: the first reason is the cause.
        changes: dict[str, object] = {}
        if existing.severity is not spec.severity:
            await alert_store.add_event(
                conn,
                existing.id,
                "severity",
                at,
                comment=f"{existing.severity.value} → {spec.severity.value}",
            )
            existing.severity = spec.severity
            changes["severity"] = spec.severity.value
            existing.labels = {**existing.labels, "severity": spec.severity.value}
            changes["labels"] = existing.labels
        # Every re-assertion counts as a sign of life (auto_resolve_after measures from it).
        await alert_store.refresh(conn, existing.id, at, **changes)
        existing.updated_at = at
        return existing, False
    alert = Alert(
        id=alert_id or str(uuid.uuid4()),
        fingerprint=spec.fingerprint,
        name=spec.name,
        check=spec.check,
        rule=spec.rule,
        severity=spec.severity,
        status=AlertStatus.FIRING,
        started_at=at,
        resolved_at=None,
        summary=spec.summary,
        labels=dict(spec.labels),
        source=spec.source,
        escalation_policy=spec.escalation_policy,
    )
    await alert_store.insert_alert(conn, alert)
    await alert_store.add_event(
        conn, alert.id, AlertEventKind.FIRING.value, at, comment=spec.summary
    )
    return alert, True


async def resolve(
    conn: AsyncConnection,
    fingerprint: str,
    at: datetime,
    comment: str | None = None,
    actor: str | None = None,
) -> Alert | None:
    """Resolve the open alert of `fingerprint`, if there is one."""
    alert = await alert_store.open_alert(conn, fingerprint)
    if alert is None:
        return None
    await _resolve(conn, alert, at, comment, actor)
    return alert


async def _resolve(
    conn: AsyncConnection, alert: Alert, at: datetime, comment: str | None, actor: str | None
) -> None:
    await alert_store.mark_resolved(conn, alert, at)
    await alert_store.stop_escalation(conn, alert.id)
    await alert_store.add_event(
        conn, alert.id, AlertEventKind.RESOLVED.value, at, actor=actor, comment=comment
    )


async def _get(conn: AsyncConnection, alert_id: str) -> Alert:
    alert = await alert_store.by_id(conn, alert_id)
    if alert is None:
        raise KeyError(alert_id)
    return alert


async def acknowledge(
    conn: AsyncConnection, alert_id: str, actor: str, comment: str | None, at: datetime
) -> Alert:
    """Someone is on it: escalation stops; everyone paged hears who took it."""
    alert = await _get(conn, alert_id)
    if alert.status is AlertStatus.RESOLVED:
        raise AlertStateError("the alert is resolved")
    if alert.status is AlertStatus.ACKNOWLEDGED:
        return alert
    await alert_store.mark_acknowledged(conn, alert_id, actor, at)
    await alert_store.add_event(
        conn, alert_id, AlertEventKind.ACKNOWLEDGED.value, at, actor=actor, comment=comment
    )
    alert.status, alert.acknowledged_at, alert.acknowledged_by = (
        AlertStatus.ACKNOWLEDGED,
        at,
        actor,
    )
    alert.next_escalation_at = None
    return alert


async def resolve_by_id(
    conn: AsyncConnection, alert_id: str, actor: str, comment: str | None, at: datetime
) -> Alert:
    """Manual resolution (for sources that never say they recovered)."""
    alert = await _get(conn, alert_id)
    if alert.status is AlertStatus.RESOLVED:
        raise AlertStateError("the alert is already resolved")
    await _resolve(conn, alert, at, comment, actor)
    return alert


async def add_comment(
    conn: AsyncConnection, alert_id: str, actor: str, comment: str, at: datetime
) -> Alert:
    alert = await _get(conn, alert_id)
    await alert_store.add_event(conn, alert_id, "comment", at, actor=actor, comment=comment)
    return alert
