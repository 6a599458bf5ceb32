"""The recovery tables on both engines: runs with their notifications, guards across a
restart, runs cut short, and the escalation of a check's open alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from watchkeeper.core.domain import Alert, AlertStatus, Severity
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import recovery as run_store
from watchkeeper.store.database import Database
from watchkeeper.store.outbox import OutboxEntry

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def run(run_id: str, **values: object) -> dict[str, object]:
    return {
        "id": run_id,
        "action": "heal",
        "check_name": "web",
        "trigger": "check",
        "attempt": 1,
        "status": run_store.RUNNING,
        "started_at": NOW,
        **values,
    }


async def test_runs_are_recorded_with_their_notifications_and_listed_newest_first(
    db: Database,
) -> None:
    entry = OutboxEntry("hook", "r1:recovery.started", "recovery.started", {"recovery": {}})
    await run_store.insert_run(db, run("r1"), [entry], NOW)
    await run_store.insert_run(
        db, run("r2", action="other", started_at=NOW + timedelta(seconds=1)), [], NOW
    )
    done = {"status": "failed", "finished_at": NOW, "output": "no", "exit_code": 3}
    await run_store.finish_run(db, "r1", done, [], NOW)

    row = await run_store.get_run(db, "r1")
    assert row is not None and row.status == "failed" and row.exit_code == 3
    assert row.output == "no" and row.finished_at == NOW
    rows, total = await run_store.list_runs(db)
    assert total == 2 and [r.id for r in rows] == ["r2", "r1"]
    rows, total = await run_store.list_runs(db, action="heal")
    assert total == 1 and rows[0].id == "r1"
    assert await run_store.get_run(db, "nope") is None
    (queued,) = await outbox_store.list_entries(db)
    assert queued.idempotency_key == "r1:recovery.started"

    assert await run_store.interrupt_running(db, NOW) == 1
    cut = await run_store.get_run(db, "r2")
    assert cut is not None and cut.status == run_store.INTERRUPTED


async def test_a_guard_is_stored_and_replaced(db: Database) -> None:
    times = [NOW - timedelta(minutes=2), NOW - timedelta(minutes=1)]
    await run_store.save_guard(db, "heal", times, False, NOW)
    assert await run_store.load_guards(db) == {"heal": (times, False)}
    await run_store.save_guard(db, "heal", [], True, NOW)
    assert await run_store.load_guards(db) == {"heal": ([], True)}


async def test_exhausting_notes_the_open_alert_and_brings_its_next_step_forward(
    db: Database,
) -> None:
    alert = Alert(
        id="a1",
        fingerprint="check:web",
        name="web",
        check="web",
        rule=None,
        severity=Severity.CRITICAL,
        status=AlertStatus.FIRING,
        started_at=NOW,
        resolved_at=None,
        summary="down",
        labels={},
    )
    async with db.begin() as conn:
        await alert_store.insert_alert(conn, alert)
        await alert_store.refresh(conn, "a1", NOW, next_escalation_at=NOW + timedelta(hours=1))
    escalation = run_store.Escalation("web", "recovery_exhausted", "exhausted after 3 attempts")
    later = NOW + timedelta(minutes=5)
    assert await run_store.insert_run(db, run("r1"), [], later, escalation) == "a1"
    found = await alert_store.get_alert(db, "a1")
    assert found is not None
    stored, events = found
    assert [(e.kind, e.comment) for e in events] == [
        ("recovery_exhausted", "exhausted after 3 attempts")
    ]
    assert stored.next_escalation_at == later
    # No open alert of that check: nothing to escalate.
    other = run_store.Escalation("db", "recovery_exhausted", "x")
    assert await run_store.insert_run(db, run("r2"), [], later, other) is None


async def test_a_pending_run_is_decided_once_and_listed_while_pending(db: Database) -> None:
    await run_store.insert_run(db, run("p1", status=run_store.PENDING_APPROVAL), [], NOW)
    await run_store.insert_run(db, run("r2"), [], NOW)
    assert [r.id for r in await run_store.pending_runs(db)] == ["p1"]
    assert await run_store.interrupt_running(db, NOW) == 1  # r2; a pending run stays
    entry = OutboxEntry("hook", "p1:recovery.rejected", "recovery.rejected", {"recovery": {}})
    rejected = {"status": "rejected", "finished_at": NOW, "reason": "rejected by ann: no"}
    assert await run_store.decide_run(db, "p1", rejected, [entry], NOW) == (True, None)
    # Decided already: a second decision changes nothing and queues nothing.
    again = await run_store.decide_run(db, "p1", {"status": "running"}, [entry], NOW)
    assert again == (False, None)
    row = await run_store.get_run(db, "p1")
    assert row is not None and row.status == "rejected" and row.reason == "rejected by ann: no"
    assert len(await outbox_store.list_entries(db)) == 1
    assert await run_store.pending_runs(db) == []
