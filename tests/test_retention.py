"""Retention deletes old history only: open alerts and pending notifications stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from tests.support.clock import FakeClock
from watchkeeper.config.loader import RetentionConfig
from watchkeeper.core.domain import Alert, AlertStatus, CheckResult, Severity
from watchkeeper.http import audit
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import tables
from watchkeeper.store.database import Database
from watchkeeper.store.results import ResultWriter
from watchkeeper.store.retention import Retention


async def count(db: Database, table) -> int:  # type: ignore[no-untyped-def]
    async with db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def alert(alert_id: str, status: AlertStatus, clock: FakeClock, age: timedelta) -> Alert:
    at = clock.now() - age
    return Alert(
        id=alert_id,
        fingerprint=f"check:{alert_id}",
        name=alert_id,
        check=alert_id,
        rule=None,
        severity=Severity.CRITICAL,
        status=status,
        started_at=at,
        resolved_at=at if status is AlertStatus.RESOLVED else None,
        summary="x",
        labels={},
    )


async def test_retention_prunes_only_expired_history(db: Database) -> None:
    clock = FakeClock()
    writer = ResultWriter(db, lambda _name: None)
    for days in (40, 31, 29, 1):
        writer.record("api", clock.now() - timedelta(days=days), CheckResult.up())
    await writer.flush()
    async with db.begin() as conn:
        for a in (
            alert("old-resolved", AlertStatus.RESOLVED, clock, timedelta(days=100)),
            alert("new-resolved", AlertStatus.RESOLVED, clock, timedelta(days=10)),
            alert("old-open", AlertStatus.FIRING, clock, timedelta(days=100)),
        ):
            await alert_store.insert_alert(conn, a)
            await alert_store.add_event(conn, a.id, "firing", a.started_at)
        entry = outbox_store.OutboxEntry("ops", "k", "alert.firing", {}, "old-open")
        await outbox_store.enqueue(conn, [entry], clock.now() - timedelta(days=100))

    pruned = await Retention(db, RetentionConfig(), clock).prune()

    assert (pruned.results, pruned.alerts, pruned.notifications) == (2, 1, 0)
    assert await count(db, tables.check_results) == 2
    alerts, _ = await alert_store.list_alerts(db)
    assert sorted(a.id for a in alerts) == ["new-resolved", "old-open"]
    assert await count(db, tables.alert_events) == 2
    assert await count(db, tables.outbox) == 1  # still pending: never pruned


async def test_retention_prunes_settled_notifications_and_audit_entries_by_age(
    db: Database,
) -> None:
    clock = FakeClock()
    config = RetentionConfig(alerts=timedelta(days=90), audit=timedelta(days=365))
    ages = {
        "delivered-old": (outbox_store.DELIVERED, 100),
        "failed-old": (outbox_store.FAILED, 91),
        "delivered-new": (outbox_store.DELIVERED, 89),
        "pending-old": (outbox_store.PENDING, 100),
    }
    async with db.begin() as conn:
        for key, (status, days) in ages.items():
            entry = outbox_store.OutboxEntry("ops", key, "alert.firing", {})
            await outbox_store.enqueue(conn, [entry], clock.now() - timedelta(days=days), status)
    for days in (400, 366, 364, 1):
        await audit.record(
            db,
            at=clock.now() - timedelta(days=days),
            actor=f"{days}d",
            actor_kind="user",
            action="POST /api/v1/silences",
            target="/api/v1/silences",
            status=201,
        )

    pruned = await Retention(db, config, clock).prune()

    assert (pruned.notifications, pruned.audit) == (2, 2)
    kept = sorted(r.idempotency_key for r in await outbox_store.list_entries(db))
    assert kept == ["delivered-new", "pending-old"]
    async with db.connect() as conn:
        actors = (await conn.execute(select(tables.audit_log.c.actor))).scalars().all()
    assert sorted(actors) == ["1d", "364d"]


async def test_retention_clears_metrics_older_than_their_own_retention_and_keeps_the_results(
    db: Database,
) -> None:
    clock = FakeClock()
    writer = ResultWriter(db, lambda _name: None)
    for days in (20, 8, 6):
        result = CheckResult.up(metrics={"system.cpu.percent": float(days)})
        writer.record("host", clock.now() - timedelta(days=days), result)
    writer.record("api", clock.now() - timedelta(days=9), CheckResult.up())  # no metrics
    await writer.flush()
    config = RetentionConfig(results=timedelta(days=30), metrics=timedelta(days=7))

    pruned = await Retention(db, config, clock).prune()

    assert (pruned.results, pruned.metrics) == (0, 2)
    r = tables.check_results
    async with db.connect() as conn:
        rows = (await conn.execute(select(r.c.check_name, r.c.metrics).order_by(r.c.id))).all()
    assert [(row.check_name, row.metrics) for row in rows] == [
        ("host", None),
        ("host", None),
        ("host", {"system.cpu.percent": 6.0}),
        ("api", None),
    ]
    assert (await Retention(db, config, clock).prune()).metrics == 0  # nothing left to clear
