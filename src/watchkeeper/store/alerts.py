"""Alert rows and their event timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.domain import Alert, AlertStatus, Severity
from watchkeeper.store import tables
from watchkeeper.store.database import Database

A = tables.alerts


def alert_from_row(row: Any) -> Alert:
    return Alert(
        id=row.id,
        fingerprint=row.fingerprint,
        name=row.name,
        check=row.check_name,
        rule=row.rule_name,
        severity=Severity(row.severity),
        status=AlertStatus(row.status),
        started_at=row.started_at,
        resolved_at=row.resolved_at,
        summary=row.summary,
        labels=dict(row.labels or {}),
        suppressed_reason=row.suppressed_reason,
        notified_at=row.notified_at,
        source=row.source,
        silenced_by=row.silenced_by,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        escalation_policy=row.escalation_policy,
        escalation_step=row.escalation_step,
        next_escalation_at=row.next_escalation_at,
        paged_channels=list(row.paged_channels) if row.paged_channels is not None else None,
        ack_notified_at=row.ack_notified_at,
        resolved_notified_at=row.resolved_notified_at,
        group_key=row.group_key,
        updated_at=row.updated_at,
    )


async def open_alert(conn: AsyncConnection, fingerprint: str) -> Alert | None:
    row = (
        await conn.execute(
            select(A).where(A.c.fingerprint == fingerprint, A.c.status != AlertStatus.RESOLVED)
        )
    ).first()
    return alert_from_row(row) if row else None


async def open_check_alerts(conn: AsyncConnection) -> set[str]:
    """Names of checks that have an open alert."""
    rows = await conn.execute(
        select(A.c.check_name).where(
            A.c.status != AlertStatus.RESOLVED, A.c.check_name.is_not(None)
        )
    )
    return {row.check_name for row in rows}


async def insert_alert(conn: AsyncConnection, alert: Alert) -> None:
    alert.updated_at = alert.updated_at or alert.started_at
    await conn.execute(
        A.insert().values(
            id=alert.id,
            fingerprint=alert.fingerprint,
            name=alert.name,
            check_name=alert.check,
            rule_name=alert.rule,
            severity=alert.severity.value,
            status=alert.status.value,
            summary=alert.summary,
            labels=alert.labels,
            started_at=alert.started_at,
            resolved_at=alert.resolved_at,
            updated_at=alert.updated_at,
            suppressed_reason=alert.suppressed_reason,
            notified_at=alert.notified_at,
            source=alert.source,
            escalation_policy=alert.escalation_policy,
            escalation_step=alert.escalation_step,
        )
    )


async def mark_resolved(conn: AsyncConnection, alert: Alert, at: datetime) -> None:
    alert.status, alert.resolved_at = AlertStatus.RESOLVED, at
    await conn.execute(
        A.update()
        .where(A.c.id == alert.id)
        .values(status=AlertStatus.RESOLVED.value, resolved_at=at, updated_at=at)
    )


async def add_event(
    conn: AsyncConnection,
    alert_id: str,
    kind: str,
    at: datetime,
    actor: str | None = None,
    comment: str | None = None,
) -> None:
    await conn.execute(
        tables.alert_events.insert().values(
            alert_id=alert_id, kind=kind, at=at, actor=actor, comment=comment
        )
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_alerts(
    db: Database,
    *,
    status: str | None = None,
    check: str | None = None,
    severity: str | None = None,
    source: str | None = None,
    silenced: bool | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Alert], int]:
    """Newest first. `status` is a stored status, `open` (not resolved) or `silenced` (open
    and muted); `silenced` alone selects muted (or unmuted) alerts of any status; `q` is a
    case-insensitive substring of the name or the summary."""
    muted = A.c.silenced_by.is_not(None) | A.c.suppressed_reason.is_not(None)
    conditions: list[Any] = []
    if status in ("open", "silenced"):
        conditions.append(A.c.status != AlertStatus.RESOLVED)
        if status == "silenced":
            conditions.append(muted)
    elif status:
        conditions.append(A.c.status == status)
    if check:
        conditions.append(A.c.check_name == check)
    if severity:
        conditions.append(A.c.severity == severity)
    if source:
        conditions.append(A.c.source == source)
    if silenced is not None:
        conditions.append(muted if silenced else ~muted)
    if q:
        pattern = f"%{_escape_like(q.lower())}%"
        conditions.append(
            func.lower(A.c.name).like(pattern, escape="\\")
            | func.lower(A.c.summary).like(pattern, escape="\\")
        )
    query = select(A).where(*conditions)
    count = select(func.count()).select_from(A).where(*conditions)
    query = query.order_by(A.c.started_at.desc(), A.c.id).limit(limit).offset(offset)
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
        total = (await conn.execute(count)).scalar_one()
    return [alert_from_row(r) for r in rows], int(total)


async def get_alert(db: Database, alert_id: str) -> tuple[Alert, list[Any]] | None:
    async with db.connect() as conn:
        row = (await conn.execute(select(A).where(A.c.id == alert_id))).first()
        if row is None:
            return None
        events = (
            await conn.execute(
                select(tables.alert_events)
                .where(tables.alert_events.c.alert_id == alert_id)
                .order_by(tables.alert_events.c.at, tables.alert_events.c.id)
            )
        ).all()
    return alert_from_row(row), list(events)
