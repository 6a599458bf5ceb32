"""Storage on SQLite and PostgreSQL: schema, time zones, constraints, results, states, outbox."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, inspect, select
from sqlalchemy.exc import IntegrityError, StatementError

from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.domain import Alert, AlertStatus, CheckResult, Severity, Status
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import tables
from watchkeeper.store.database import Database, newest_revision, upsert
from watchkeeper.store.outbox import OutboxEntry
from watchkeeper.store.results import (
    ResultWriter,
    delete_results_before,
    load_states,
    recent_results,
)

T0 = datetime(2030, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


class TransactionCounter:
    """Counts transactions begun on a Database's engines (the async one, and on SQLite the
    one of whole transactions run in a worker thread)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        self._engines = [db.engine.sync_engine]
        if (worker := db.worker_engine()) is not None:
            self._engines.append(worker)
        for engine in self._engines:
            event.listen(engine, "begin", self._on_begin)

    def _on_begin(self, _conn: Any) -> None:
        self.count += 1

    def remove(self) -> None:
        for engine in self._engines:
            event.remove(engine, "begin", self._on_begin)


def make_alert(fingerprint: str = "check:db", at: datetime = T0, **kw: Any) -> Alert:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "fingerprint": fingerprint,
        "name": "db",
        "check": "db",
        "rule": None,
        "severity": Severity.CRITICAL,
        "status": AlertStatus.FIRING,
        "started_at": at,
        "resolved_at": None,
        "summary": "connection refused",
        "labels": {"check": "db", "severity": "critical"},
    }
    values.update(kw)
    return Alert(**values)


def entry(key: str, channel: str = "ops", event_name: str = "alert.firing") -> OutboxEntry:
    return OutboxEntry(channel, key, event_name, {"version": 1, "event": event_name, "n": key})


# -- schema -----------------------------------------------------------------------------------


@pytest.mark.empty_database
async def test_migrations_are_idempotent_and_reach_the_head_revision(db_url: str) -> None:
    head = Database.head_revision()
    assert head is not None
    first = Database(db_url)
    try:
        assert await first.current_revision() is None
        await first.migrate()
        await first.migrate()
        assert first.migrated
        assert await first.current_revision() == head
    finally:
        await first.close()

    # A second process starting against an up-to-date database changes nothing.
    second = Database(db_url)
    try:
        await second.migrate()
        assert await second.current_revision() == head
        async with second.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            indexes = await conn.run_sync(
                lambda c: {i["name"]: i for i in inspect(c).get_indexes("alerts")}
            )
        assert {"alerts", "alert_events", "check_results", "check_states", "outbox"} <= names
        assert indexes["uq_alerts_open_fingerprint"]["unique"]
        await second.ping()
    finally:
        await second.close()


def test_the_newest_revision_read_from_the_file_names_is_alembics_head() -> None:
    # `migrate` skips Alembic when the database is at this revision: a migration whose file
    # name does not start with its revision would leave databases behind it.
    assert newest_revision() == Database.head_revision()


async def test_a_database_at_the_newest_revision_is_not_handed_to_alembic(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command

    first = Database(db_url)
    try:
        await first.migrate()
        assert await first.current_revision() == newest_revision()
    finally:
        await first.close()

    def upgrade(*_: object) -> None:
        raise AssertionError("Alembic ran on an up-to-date database")

    monkeypatch.setattr(command, "upgrade", upgrade)
    again = Database(db_url)
    try:
        await again.migrate()
        assert again.migrated
    finally:
        await again.close()


async def test_the_migrations_create_exactly_the_schema_the_code_declares(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    async with db.connect() as conn:
        diffs = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), tables.metadata)
        )
    assert diffs == []


async def test_datetimes_come_back_timezone_aware_utc(db: Database) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2030, 3, 1, 11, 30, 15, 123456, tzinfo=plus_two)  # == T0
    state = CheckState("db", Status.UP, since=local, last_checked_at=T0)
    async with db.begin() as conn:
        await upsert(conn, tables.check_states, [state.as_row()], ["check_name"])
    async with db.connect() as conn:
        row = (await conn.execute(select(tables.check_states))).one()
    for value in (row.since, row.last_checked_at):
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
        assert value == T0  # the same instant, microseconds kept
    assert row.since.tzinfo == UTC


async def test_a_naive_datetime_is_refused(db: Database) -> None:
    state = CheckState("db", Status.UP, since=datetime(2030, 1, 1))  # no tzinfo
    with pytest.raises(StatementError, match="naive datetime"):
        async with db.begin() as conn:
            await upsert(conn, tables.check_states, [state.as_row()], ["check_name"])


async def test_many_rows_bind_each_time_as_its_own_instant(db: Database) -> None:
    # The bind processor remembers the last time it converted (rows mostly share them):
    # equal instants in other zones, new times, NULLs and repeats after them all come back.
    plus_two = timezone(timedelta(hours=2))
    later = T0 + timedelta(seconds=1, microseconds=7)
    sinces = [T0, T0.astimezone(plus_two), later, None, later, T0, None, T0 + timedelta(days=1)]
    states = [
        CheckState(f"c{i}", Status.UP, since=at or T0, last_checked_at=at)
        for i, at in enumerate(sinces)
    ]
    async with db.begin() as conn:
        await upsert(conn, tables.check_states, [s.as_row() for s in states], ["check_name"])
    async with db.connect() as conn:
        rows = (await conn.execute(select(tables.check_states))).all()
    stored = {r.check_name: r.last_checked_at for r in rows}
    assert [stored[f"c{i}"] for i in range(len(sinces))] == sinces


async def test_a_naive_datetime_is_refused_right_after_an_aware_one(db: Database) -> None:
    aware = CheckState("a", Status.UP, since=T0)
    naive = CheckState("b", Status.UP, since=T0.replace(tzinfo=None))  # == T0's wall time
    with pytest.raises(StatementError, match="naive datetime"):
        async with db.begin() as conn:
            await upsert(
                conn, tables.check_states, [aware.as_row(), naive.as_row()], ["check_name"]
            )


# -- alerts -----------------------------------------------------------------------------------


async def test_the_database_refuses_a_second_open_alert_with_the_same_fingerprint(
    db: Database,
) -> None:
    first = make_alert()
    async with db.begin() as conn:
        await alert_store.insert_alert(conn, first)

    with pytest.raises(IntegrityError):
        async with db.begin() as conn:
            await alert_store.insert_alert(conn, make_alert())
    # Acknowledged still counts as open.
    async with db.begin() as conn:
        await conn.execute(
            tables.alerts.update()
            .where(tables.alerts.c.id == first.id)
            .values(status=AlertStatus.ACKNOWLEDGED.value)
        )
    with pytest.raises(IntegrityError):
        async with db.begin() as conn:
            await alert_store.insert_alert(conn, make_alert())

    # Another fingerprint is independent.
    async with db.begin() as conn:
        await alert_store.insert_alert(conn, make_alert("check:api", name="api", check="api"))

    alerts, total = await alert_store.list_alerts(db, check="db")
    assert total == 1 and [a.id for a in alerts] == [first.id]


async def test_a_new_alert_may_open_once_the_previous_one_is_resolved(db: Database) -> None:
    first = make_alert()
    async with db.begin() as conn:
        await alert_store.insert_alert(conn, first)
        await alert_store.mark_resolved(conn, first, T0 + timedelta(minutes=5))
    second = make_alert(at=T0 + timedelta(minutes=10))
    async with db.begin() as conn:
        await alert_store.insert_alert(conn, second)
        assert (await alert_store.open_alert(conn, "check:db")).id == second.id  # type: ignore[union-attr]
        await alert_store.mark_resolved(conn, second, T0 + timedelta(minutes=15))
    third = make_alert(at=T0 + timedelta(minutes=20))
    async with db.begin() as conn:
        await alert_store.insert_alert(conn, third)

    alerts, total = await alert_store.list_alerts(db, check="db")
    assert total == 3
    assert [a.id for a in alerts] == [third.id, second.id, first.id]  # newest first
    assert [a.status for a in alerts] == [
        AlertStatus.FIRING,
        AlertStatus.RESOLVED,
        AlertStatus.RESOLVED,
    ]
    assert alerts[2].resolved_at == T0 + timedelta(minutes=5)
    open_alerts, open_total = await alert_store.list_alerts(db, status="open")
    assert open_total == 1 and open_alerts[0].id == third.id


async def test_alert_events_are_listed_in_time_order_with_their_alert(db: Database) -> None:
    alert = make_alert(labels={"check": "db", "severity": "critical", "team": "core"})
    async with db.begin() as conn:
        await alert_store.insert_alert(conn, alert)
        await alert_store.add_event(conn, alert.id, "firing", T0, comment="down")
        await alert_store.add_event(
            conn, alert.id, "acknowledged", T0 + timedelta(minutes=1), actor="ann"
        )
    found = await alert_store.get_alert(db, alert.id)
    assert found is not None
    stored, events = found
    assert stored == alert
    assert [(e.kind, e.actor, e.comment) for e in events] == [
        ("firing", None, "down"),
        ("acknowledged", "ann", None),
    ]
    assert await alert_store.get_alert(db, "no-such-id") is None


# -- check states and results ------------------------------------------------------------------


async def test_upsert_inserts_then_updates_check_states(db: Database) -> None:
    down = CheckState(
        "db",
        Status.DOWN,
        since=T0,
        last_status=Status.DOWN,
        last_reason="refused",
        last_checked_at=T0,
        consecutive_failures=3,
    )
    other = CheckState("api", Status.UP, since=T0)
    async with db.begin() as conn:
        await upsert(conn, tables.check_states, [down.as_row(), other.as_row()], ["check_name"])
        await upsert(conn, tables.check_states, [], ["check_name"])  # nothing to do
    later = T0 + timedelta(minutes=2)
    up = CheckState(
        "db",
        Status.UP,
        since=later,
        last_status=Status.UP,
        last_reason="OK",
        last_checked_at=later,
        consecutive_successes=1,
        paused=True,
    )
    async with db.begin() as conn:
        await upsert(conn, tables.check_states, [up.as_row()], ["check_name"])

    async with db.connect() as conn:
        count = (
            await conn.execute(select(func.count()).select_from(tables.check_states))
        ).scalar_one()
    assert count == 2
    states = await load_states(db)
    assert states == {"db": up, "api": other}


async def test_load_states_round_trips_a_check_state(db: Database) -> None:
    state = CheckState(
        name="queue",
        status=Status.DEGRADED,
        since=T0,
        last_status=Status.UNKNOWN,
        last_reason="no answer",
        last_checked_at=T0 + timedelta(seconds=30),
        consecutive_failures=4,
        consecutive_successes=0,
        paused=True,
    )
    bare = CheckState("fresh", Status.UNKNOWN, since=T0)
    async with db.begin() as conn:
        await upsert(conn, tables.check_states, [state.as_row(), bare.as_row()], ["check_name"])
    loaded = await load_states(db)
    assert loaded == {"queue": state, "fresh": bare}
    assert loaded["queue"].status is Status.DEGRADED
    assert loaded["queue"].paused is True and loaded["fresh"].paused is False


async def test_result_writer_writes_many_results_in_one_transaction(db: Database) -> None:
    states = {"db": CheckState("db", Status.DOWN, since=T0, consecutive_failures=2)}
    writer = ResultWriter(db, states.get, max_batch=1000)
    for i in range(300):
        name = "db" if i % 2 == 0 else "api"  # "api" has no state to write
        writer.record(name, T0 + timedelta(seconds=i), CheckResult.up(f"ok {i}"))
    counter = TransactionCounter(db)
    try:
        await writer.flush()
    finally:
        counter.remove()
    assert counter.count == 1
    assert writer.flushed == 300
    async with db.connect() as conn:
        count = (
            await conn.execute(select(func.count()).select_from(tables.check_results))
        ).scalar_one()
    assert count == 300
    assert await load_states(db) == states

    # Nothing buffered: no transaction at all.
    counter = TransactionCounter(db)
    try:
        await writer.flush()
    finally:
        counter.remove()
    assert counter.count == 0


async def test_result_writer_splits_a_large_buffer_into_max_batch_sized_transactions(
    db: Database,
) -> None:
    writer = ResultWriter(db, lambda _name: None, max_batch=100)
    for i in range(250):
        writer.record("db", T0 + timedelta(seconds=i), CheckResult.down("refused"))
    counter = TransactionCounter(db)
    try:
        await writer.flush()
    finally:
        counter.remove()
    assert counter.count == 3
    assert writer.flushed == 250
    assert len(await recent_results(db, "db", limit=1000)) == 250


@pytest.mark.empty_database
async def test_result_writer_keeps_its_buffer_when_a_flush_fails(db_url: str) -> None:
    unmigrated = Database(db_url)
    try:
        writer = ResultWriter(unmigrated, lambda _name: None)
        writer.record("db", T0, CheckResult.down("refused"))
        await writer.flush()  # no tables yet: logged, kept for the next flush
        assert writer.flushed == 0
        await unmigrated.migrate()
        await writer.flush()
        assert writer.flushed == 1
        [row] = await recent_results(unmigrated, "db")
        assert row.reason == "refused"
    finally:
        await unmigrated.close()


async def test_recent_results_are_newest_first_with_metrics_and_details(db: Database) -> None:
    writer = ResultWriter(db, lambda _name: None)
    for i in range(5):
        writer.record(
            "web",
            T0 + timedelta(seconds=10 * i),
            CheckResult(
                Status.DEGRADED if i == 4 else Status.UP,
                f"result {i}",
                response_time=0.25 * i,
                metrics={"latency_ms": 12.5 * i, "bytes": 1024.0},
                details={"status_code": 200, "headers": {"server": "nginx"}, "tags": ["a", i]},
            ),
        )
    writer.record("web", T0 - timedelta(hours=1), CheckResult.up())  # no metrics or details
    writer.record("other", T0 + timedelta(hours=1), CheckResult.up())
    await writer.flush()

    rows = await recent_results(db, "web", limit=3)
    assert [r.reason for r in rows] == ["result 4", "result 3", "result 2"]
    newest = rows[0]
    assert newest.status == "degraded"
    assert newest.started_at == T0 + timedelta(seconds=40)
    assert newest.started_at.tzinfo is not None
    assert newest.response_time == pytest.approx(1.0)
    assert newest.metrics == {"latency_ms": 50.0, "bytes": 1024.0}
    assert newest.details == {"status_code": 200, "headers": {"server": "nginx"}, "tags": ["a", 4]}

    everything = await recent_results(db, "web")
    assert len(everything) == 6
    oldest = everything[-1]
    assert oldest.reason == "OK" and oldest.metrics is None and oldest.details is None
    assert await recent_results(db, "missing") == []


async def test_delete_results_before_deletes_only_older_rows(db: Database) -> None:
    writer = ResultWriter(db, lambda _name: None)
    for minutes in (-120, -61, -60, -59, 0):
        writer.record("db", T0 + timedelta(minutes=minutes), CheckResult.up(f"{minutes}"))
    await writer.flush()

    cutoff = T0 - timedelta(minutes=60)
    assert await delete_results_before(db, cutoff) == 2
    kept = await recent_results(db, "db")
    assert [r.reason for r in kept] == ["0", "-59", "-60"]  # a row exactly at the cutoff stays
    assert await delete_results_before(db, cutoff) == 0


# -- outbox -------------------------------------------------------------------------------------


async def test_outbox_enqueue_is_part_of_the_callers_transaction(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.begin() as conn:
            await outbox_store.enqueue(conn, [entry("a:alert.firing")], T0)
            raise Boom
    assert await outbox_store.list_entries(db) == []
    assert await outbox_store.depth(db) == 0

    async with db.begin() as conn:
        await outbox_store.enqueue(conn, [entry("a:alert.firing")], T0)
        await outbox_store.enqueue(conn, [], T0)  # nothing to do
    [row] = await outbox_store.list_entries(db)
    assert (row.channel, row.idempotency_key, row.event) == (
        "ops",
        "a:alert.firing",
        "alert.firing",
    )
    assert row.payload == {"version": 1, "event": "alert.firing", "n": "a:alert.firing"}
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.created_at == T0 and row.next_attempt_at == T0
    assert row.last_attempt_at is None and row.delivered_at is None and row.last_error is None


async def test_outbox_channel_and_idempotency_key_are_unique_together(db: Database) -> None:
    async with db.begin() as conn:
        await outbox_store.enqueue(conn, [entry("k1", "ops"), entry("k1", "pager")], T0)
    with pytest.raises(IntegrityError):
        async with db.begin() as conn:
            await outbox_store.enqueue(conn, [entry("k2", "ops")], T0)
            await outbox_store.enqueue(conn, [entry("k1", "ops")], T0)
    # The failed transaction took its other entry with it.
    rows = await outbox_store.list_entries(db)
    assert sorted((r.channel, r.idempotency_key) for r in rows) == [
        ("ops", "k1"),
        ("pager", "k1"),
    ]


async def test_outbox_due_returns_pending_rows_that_are_due_in_order(db: Database) -> None:
    async with db.begin() as conn:
        # Queued out of order in time, to see that `due` orders by next_attempt_at.
        await outbox_store.enqueue(conn, [entry("late")], T0 + timedelta(seconds=1))
        await outbox_store.enqueue(conn, [entry("early")], T0 - timedelta(minutes=5))
        await outbox_store.enqueue(conn, [entry("now-1"), entry("now-2")], T0)
        await outbox_store.enqueue(conn, [entry("delivered")], T0 - timedelta(hours=1))
        await outbox_store.enqueue(conn, [entry("failed")], T0 - timedelta(hours=1))
    by_key = {r.idempotency_key: r for r in await outbox_store.list_entries(db)}
    await outbox_store.settle(
        db, by_key["delivered"].id, status=outbox_store.DELIVERED, delivered_at=T0, attempts=1
    )
    await outbox_store.settle(db, by_key["failed"].id, status=outbox_store.FAILED, attempts=1)

    due = await outbox_store.due(db, T0)
    assert [r.idempotency_key for r in due] == ["early", "now-1", "now-2"]
    assert [r.idempotency_key for r in await outbox_store.due(db, T0, limit=2)] == [
        "early",
        "now-1",
    ]
    assert [r.idempotency_key for r in await outbox_store.due(db, T0 - timedelta(hours=2))] == []
    later = await outbox_store.due(db, T0 + timedelta(seconds=1))
    assert [r.idempotency_key for r in later] == ["early", "now-1", "now-2", "late"]

    # Rescheduling moves a row back in the queue.
    await outbox_store.settle(db, by_key["early"].id, next_attempt_at=T0 + timedelta(minutes=1))
    assert [r.idempotency_key for r in await outbox_store.due(db, T0)] == ["now-1", "now-2"]

    next_at = await outbox_store.next_due_at(db)
    assert next_at == T0 and next_at.tzinfo is not None  # type: ignore[union-attr]


async def test_outbox_depth_counts_only_pending_rows(db: Database) -> None:
    assert await outbox_store.depth(db) == 0
    assert await outbox_store.next_due_at(db) is None
    async with db.begin() as conn:
        await outbox_store.enqueue(conn, [entry(f"k{i}") for i in range(4)], T0)
    assert await outbox_store.depth(db) == 4
    rows = await outbox_store.list_entries(db)
    await outbox_store.settle(db, rows[0].id, status=outbox_store.DELIVERED)
    await outbox_store.settle(db, rows[1].id, status=outbox_store.FAILED)
    assert await outbox_store.depth(db) == 2
    assert len(await outbox_store.list_entries(db, status=outbox_store.PENDING)) == 2
    assert len(await outbox_store.list_entries(db, status=outbox_store.FAILED)) == 1


async def test_a_flush_cancelled_while_sqlite_writes_it_does_not_write_it_twice(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """On SQLite a batch is written in a worker thread, which cannot be cancelled: a flush
    cancelled meanwhile waits for it, so the rows it committed leave the buffer."""
    writer = ResultWriter(sqlite_db, lambda _name: None)
    for i in range(10):
        writer.record("db", T0 + timedelta(seconds=i), CheckResult.up(f"ok {i}"))
    with contextlib.closing(sqlite3.connect(tmp_path / "wk.db", isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # the thread waits for the database
        flush = asyncio.create_task(writer.flush())
        done, _ = await asyncio.wait([flush], timeout=0.2)
        assert not done
        flush.cancel()
        done, _ = await asyncio.wait([flush], timeout=0.2)
        assert not done, "the cancelled flush left while its batch was being written"
        other.execute("COMMIT")
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(flush, 10)
    await writer.flush()  # nothing left to write
    assert writer.flushed == 10
    assert len(await recent_results(sqlite_db, "db", limit=100)) == 10
