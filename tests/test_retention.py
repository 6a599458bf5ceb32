"""Retention deletes old history only: open alerts and pending notifications stay."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from tests.support.clock import FakeClock
from watchkeeper.config.loader import RetentionConfig
from watchkeeper.core.domain import Alert, AlertStatus, CheckResult, Severity, Status
from watchkeeper.http import audit
from watchkeeper.store import alert_groups as group_store
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import rollups, tables
from watchkeeper.store.database import Database
from watchkeeper.store.results import ResultWriter
from watchkeeper.store.retention import KEEP_LATEST, Retention


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

    # Successes are kept as long as the rest here (raw_success: see the tests below).
    config = RetentionConfig(raw_success=timedelta(days=30))
    pruned = await Retention(db, config, clock).prune()

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


async def test_notification_groups_not_paged_for_two_days_go_and_recent_ones_stay(
    db: Database,
) -> None:
    # group_interval is at most a day: an older row cannot hold a page back any more.
    clock = FakeClock()
    async with db.begin() as conn:
        for key, hours in (("group:ops|host=a", 49), ("group:ops|host=b", 47), ("k", 1)):
            await group_store.touch(
                conn, key, clock.now() - timedelta(hours=hours), clock.now() - timedelta(days=9)
            )
    pruned = await Retention(db, RetentionConfig(), clock, batch=1).prune()
    assert pruned.groups == 1
    async with db.connect() as conn:
        assert sorted(await group_store.load(conn)) == ["group:ops|host=b", "k"]


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
    config = RetentionConfig(
        results=timedelta(days=30), metrics=timedelta(days=7), raw_success=timedelta(days=30)
    )

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


async def test_plain_successes_go_after_raw_success_and_failures_recoveries_and_metrics_stay(
    db: Database,
) -> None:
    clock = FakeClock()
    writer = ResultWriter(db, lambda _name: None)
    story = [(10, "up"), (9, "up"), (8, "down"), (7, "up"), (6, "up"), (5, "degraded")]
    story += [(4, "up"), (1, "up")]
    for days, status in story:
        writer.record("api", clock.now() - timedelta(days=days), CheckResult(Status(status), "x"))
    cpu = {"system.cpu.percent": 5.0}
    writer.record("host", clock.now() - timedelta(days=9), CheckResult.up(metrics=cpu))
    writer.record("host", clock.now() - timedelta(days=5), CheckResult.up(metrics=cpu))
    writer.record("host", clock.now() - timedelta(days=4), CheckResult.up())
    for i in range(KEEP_LATEST):  # each check's latest results stay whatever their age
        for name in ("api", "host"):
            writer.record(name, clock.now() - timedelta(hours=1, seconds=-i), CheckResult.up())
    for days in (10, 9):  # a slow check: all of its results are among its latest
        writer.record("nightly", clock.now() - timedelta(days=days), CheckResult.up())
    await writer.flush()
    config = RetentionConfig(
        results=timedelta(days=30), metrics=timedelta(days=7), raw_success=timedelta(days=2)
    )
    since, until = clock.now() - timedelta(days=30), clock.now()
    uptime_before = await rollups.uptime(db, None, since, until)

    pruned = await Retention(db, config, clock).prune()

    # api: 10 and 9 (up after up or nothing) and 6 go; the down, the recovery after it (7),
    # the degraded one and the recovery after it (4) stay, and so does the recent success.
    # host: its 9-day-old metrics are past `metrics`, so that success is plain; the 5-day-old
    # one still carries kept metrics; the 4-day-old one follows an up without metrics.
    assert (pruned.successes, pruned.results, pruned.metrics) == (5, 0, 0)
    r = tables.check_results
    async with db.connect() as conn:
        rows = (await conn.execute(select(r.c.check_name, r.c.started_at).order_by(r.c.id))).all()
    ages = [(row.check_name, (clock.now() - row.started_at).days) for row in rows]
    left = [(name, days) for name, days in ages if days > 0]
    assert left == [
        ("api", 8),
        ("api", 7),
        ("api", 5),
        ("api", 4),
        ("api", 1),
        ("host", 5),
        ("nightly", 10),
        ("nightly", 9),
    ]
    assert len(ages) - len(left) == 2 * KEEP_LATEST
    # Availability is answered from the rollups, which keep every result.
    assert await rollups.uptime(db, None, since, until) == uptime_before
    assert (await Retention(db, config, clock).prune()).successes == 0  # stable


def test_raw_success_cannot_outlive_results() -> None:
    with pytest.raises(ValidationError, match="raw_success must be at most results"):
        RetentionConfig.model_validate({"results": "7d", "raw_success": "8d"})
    assert RetentionConfig().raw_success == timedelta(days=2)


async def test_a_big_prune_deletes_in_batches_and_never_holds_other_writers_off(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """Months of history pruned at once (an upgraded install): every old row goes, yet a
    second writer with a short busy timeout gets the lock between batches and alongside."""
    clock = FakeClock()
    old = clock.now() - timedelta(days=60)
    rows = [
        {
            "check_name": f"c{i % 20}",
            "started_at": old + timedelta(seconds=i),
            "status": "down" if i % 3 else "up",
            "reason": "x",
        }
        for i in range(24_000)
    ]
    async with sqlite_db.begin() as conn:
        await conn.execute(tables.check_results.insert(), rows)

    def connection() -> sqlite3.Connection:
        conn = sqlite3.connect(
            tmp_path / "wk.db", timeout=0.5, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    waits: list[float] = []

    def write(conn: sqlite3.Connection) -> None:
        began = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")  # 'database is locked' past the 0.5 s timeout
        conn.execute(
            "INSERT INTO audit_log (at, actor, actor_kind, action, target, status) "
            "VALUES ('2030-01-01 00:00:00.000000', 'w', 'user', 'x', 'y', 200)"
        )
        conn.execute("COMMIT")
        waits.append(time.perf_counter() - began)

    stop = threading.Event()
    failures: list[BaseException] = []

    def keep_writing(conn: sqlite3.Connection) -> None:
        while not stop.is_set():
            try:
                write(conn)
            except sqlite3.Error as exc:
                failures.append(exc)
                return

    between, alongside = connection(), connection()
    retention = Retention(
        sqlite_db,
        RetentionConfig(),
        clock,
        batch=1000,
        between=lambda: asyncio.to_thread(write, between),
    )
    writer = threading.Thread(target=keep_writing, args=(alongside,))
    writer.start()
    try:
        pruned = await retention.prune()
    finally:
        stop.set()
        await asyncio.to_thread(writer.join)
        between.close()
        alongside.close()

    assert failures == []
    assert pruned.results == 24_000
    assert retention.batches >= 24
    assert len(waits) > retention.batches  # the writer between batches, and alongside
    assert await count(sqlite_db, tables.check_results) == 0
