"""The recovery_runs and recovery_guards tables: every run of a recovery action, and what
each action's storm guard keeps across a restart (attempt times, lock-out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.core.domain import AlertStatus
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Database
from watchkeeper.store.errors import translated
from watchkeeper.store.outbox import OutboxEntry, enqueue
from watchkeeper.store.tables import alerts, recovery_guards, recovery_programs, recovery_runs

R = recovery_runs
G = recovery_guards
P = recovery_programs

Run = sa.Row[Any]
"""A run: the columns of `recovery_runs` (`check_name` is the check)."""

RUNNING = "running"
INTERRUPTED = "interrupted"
"""A run that was in progress when Watchkeeper stopped."""
PENDING_APPROVAL = "pending_approval"
"""A runbook run waiting for a person to approve it (kept across a restart)."""


@dataclass(frozen=True, slots=True)
class Escalation:
    """A note for the open alert of `check`, whose next escalation step is due now."""

    check: str
    kind: str
    comment: str


async def insert_run(
    db: Database,
    values: dict[str, Any],
    events: list[OutboxEntry],
    now: datetime,
    escalation: Escalation | None = None,
) -> str | None:
    """Record a run that starts now, with its notifications (and escalation), in one
    transaction; return the id of the alert escalated, if any."""
    async with translated(), db.begin() as conn:
        await conn.execute(R.insert().values(**values))
        await enqueue(conn, events, now)
        return await _escalate(conn, escalation, now)


async def finish_run(
    db: Database,
    run_id: str,
    values: dict[str, Any],
    events: list[OutboxEntry],
    now: datetime,
    escalation: Escalation | None = None,
) -> str | None:
    """Record how a run ended, with its notifications (and escalation), in one
    transaction; return the id of the alert escalated, if any."""
    async with translated(), db.begin() as conn:
        await conn.execute(R.update().where(R.c.id == run_id).values(**values))
        await enqueue(conn, events, now)
        return await _escalate(conn, escalation, now)


async def decide_run(
    db: Database,
    run_id: str,
    values: dict[str, Any],
    events: list[OutboxEntry],
    now: datetime,
    escalation: Escalation | None = None,
) -> tuple[bool, str | None]:
    """Move a run that is pending approval on (approved, rejected, expired), with its
    notifications (and escalation), in one transaction. Returns (whether it was still
    pending, the id of the alert escalated): a run decided twice changes once."""
    async with translated(), db.begin() as conn:
        updated = await conn.execute(
            R.update().where(R.c.id == run_id, R.c.status == PENDING_APPROVAL).values(**values)
        )
        if not updated.rowcount:
            return False, None
        await enqueue(conn, events, now)
        return True, await _escalate(conn, escalation, now)


async def pending_runs(db: Database) -> list[Run]:
    """Runs waiting for approval, oldest first."""
    async with translated(), db.connect() as conn:
        rows = await conn.execute(
            sa.select(R).where(R.c.status == PENDING_APPROVAL).order_by(R.c.started_at, R.c.id)
        )
        return list(rows.all())


async def get_run(db: Database, run_id: str) -> Run | None:
    async with translated(), db.connect() as conn:
        return (await conn.execute(sa.select(R).where(R.c.id == run_id))).first()


async def list_runs(
    db: Database,
    *,
    action: str | None = None,
    check: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Run], int]:
    """Newest first, with the total matching count."""
    where = []
    if status is not None:
        where.append(R.c.status == status)
    if action is not None:
        where.append(R.c.action == action)
    if check is not None:
        where.append(R.c.check_name == check)
    async with translated(), db.connect() as conn:
        total = await conn.scalar(sa.select(sa.func.count()).select_from(R).where(*where))
        rows = await conn.execute(
            sa.select(R)
            .where(*where)
            .order_by(R.c.started_at.desc(), R.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(rows.all()), int(total or 0)


async def interrupt_running(db: Database, now: datetime) -> int:
    """Mark the runs a previous process left running as interrupted; return how many."""
    async with translated(), db.begin() as conn:
        result = await conn.execute(
            R.update()
            .where(R.c.status == RUNNING)
            .values(status=INTERRUPTED, finished_at=now, reason="Watchkeeper stopped")
        )
        return int(result.rowcount or 0)


async def save_guard(
    db: Database, action: str, attempts: list[datetime], exhausted: bool, now: datetime
) -> None:
    """Store one action's guard state (replacing what was stored)."""
    values = {
        "attempts": [at.isoformat() for at in attempts],
        "exhausted": exhausted,
        "updated_at": now,
    }
    async with translated(), db.begin() as conn:
        updated = await conn.execute(G.update().where(G.c.action == action).values(**values))
        if not updated.rowcount:
            await conn.execute(G.insert().values(action=action, **values))


async def load_guards(db: Database) -> dict[str, tuple[list[datetime], bool]]:
    """Every stored guard: action -> (attempt start times, exhausted)."""
    async with translated(), db.connect() as conn:
        rows = await conn.execute(sa.select(G))
        return {
            row.action: ([datetime.fromisoformat(at) for at in row.attempts], row.exhausted)
            for row in rows
        }


async def save_program(
    db: Database, action: str, pid: int | None, identity: str | None, now: datetime
) -> None:
    """Record the running instance of a supervised program (None: none runs any more)."""
    async with translated(), db.begin() as conn:
        await conn.execute(P.delete().where(P.c.action == action))
        if pid is not None and identity is not None:
            await conn.execute(
                P.insert().values(action=action, pid=pid, identity=identity, updated_at=now)
            )


async def load_programs(db: Database) -> dict[str, tuple[int, str]]:
    """Every recorded program instance: action -> (pid, identity)."""
    async with translated(), db.connect() as conn:
        rows = await conn.execute(sa.select(P))
        return {row.action: (row.pid, row.identity) for row in rows}


async def _escalate(
    conn: AsyncConnection, escalation: Escalation | None, now: datetime
) -> str | None:
    """Note the escalation's comment on the open alert of its check and bring the alert's
    next escalation step forward to now (if its policy has one left); return the alert's id
    (None: nothing to escalate, or no open alert)."""
    if escalation is None:
        return None
    alert_id = await _open_alert_of(conn, escalation.check)
    if alert_id is None:
        return None
    await alert_store.add_event(
        conn, alert_id, escalation.kind, now, "recovery", escalation.comment
    )
    await conn.execute(
        alerts.update()
        .where(
            alerts.c.id == alert_id,
            alerts.c.status == AlertStatus.FIRING.value,
            alerts.c.next_escalation_at.is_not(None),
            alerts.c.next_escalation_at > now,
        )
        .values(next_escalation_at=now, updated_at=now)
    )
    return alert_id


async def _open_alert_of(conn: AsyncConnection, check: str) -> str | None:
    row = (
        await conn.execute(
            sa.select(alerts.c.id)
            .where(
                alerts.c.check_name == check,
                alerts.c.source == "check",
                alerts.c.status != AlertStatus.RESOLVED.value,
            )
            .order_by(alerts.c.started_at.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else str(row.id)
