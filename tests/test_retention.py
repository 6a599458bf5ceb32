"""Retention deletes old history only: open alerts and pending notifications stay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.support.clock import FakeClock
from watchkeeper.config import RetentionConfig
from watchkeeper.domain import Alert, AlertStatus, CheckResult, Severity
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import tables
from watchkeeper.store.database import Database
from watchkeeper.store.results import ResultWriter
from watchkeeper.store.retention import Retention


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await database.migrate()
    yield database
    await database.close()


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
