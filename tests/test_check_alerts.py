"""Check alerts on both engines: one alert per outage, notifications queued atomically."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from tests.support.alerting import DispatchingAlerts
from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.config.loader import Config
from watchkeeper.core.checkstate import CheckState, Transition
from watchkeeper.core.domain import Alert, AlertStatus, CheckResult, Status
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import tables
from watchkeeper.store.database import Database
from watchkeeper.store.results import load_states

T0 = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)

CONFIG = Config.model_validate(
    {
        "checks": [
            {
                "name": "db",
                "type": "tcp",
                "host": "127.0.0.1",
                "port": 5432,
                "severity": "high",
                "component": "storage",
                "labels": {"team": "core"},
            },
            {
                "name": "api",
                "type": "tcp",
                "host": "127.0.0.1",
                "port": 8443,
                "notify": ["pager"],
            },
            {"name": "batch", "type": "tcp", "host": "127.0.0.1", "port": 9000, "notify": []},
        ],
        "notifications": [
            {"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/hook"},
            {"name": "pager", "type": "webhook", "url": "http://127.0.0.1:9/pager"},
            {"name": "chat", "type": "webhook", "url": "http://127.0.0.1:9/chat"},
        ],
    }
)
CHECKS: dict[str, CheckConfigBase] = {c.name: c for c in CONFIG.checks}
CHANNELS = [n.name for n in CONFIG.notifications]


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def make_alerts(db: Database, wakes: Wakes | None = None) -> DispatchingAlerts:
    return DispatchingAlerts(db, CONFIG, on_enqueued=wakes or Wakes())


def transition(
    check: str, previous: Status, current: Status, at: datetime, reason: str
) -> tuple[Transition, CheckState]:
    result = CheckResult(current, reason)
    state = CheckState(
        check,
        current,
        since=at,
        last_status=current,
        last_reason=reason,
        last_checked_at=at,
        consecutive_failures=0 if current is Status.UP else 3,
        consecutive_successes=1 if current is Status.UP else 0,
    )
    return Transition(check, previous, current, at, result), state


def down(check: str = "db", at: datetime = T0, reason: str = "connection refused") -> Any:
    return transition(check, Status.UP, Status.DOWN, at, reason)


def up(check: str = "db", at: datetime = T0 + timedelta(minutes=7)) -> Any:
    return transition(check, Status.DOWN, Status.UP, at, "connected in 2 ms")


async def count(db: Database, table: Any) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def events_of(db: Database, alert_id: str) -> list[Any]:
    found = await alert_store.get_alert(db, alert_id)
    assert found is not None
    return found[1]


async def outbox_rows(db: Database) -> list[Any]:
    return sorted(await outbox_store.list_entries(db), key=lambda r: (r.event, r.channel))


# ---------------------------------------------------------------------------------------------


async def test_a_down_transition_opens_one_alert_and_queues_one_notification_per_channel(
    db: Database,
) -> None:
    wakes = Wakes()
    alert = await make_alerts(db, wakes).on_transition(*down())

    assert isinstance(alert, Alert)
    assert alert.status is AlertStatus.FIRING
    assert alert.fingerprint == "check:db" and alert.check == "db" and alert.rule is None
    assert alert.started_at == T0 and alert.resolved_at is None
    assert alert.summary == "connection refused"

    alerts, total = await alert_store.list_alerts(db)
    assert total == 1 and alerts[0].id == alert.id
    assert alerts[0].notified_at == T0 and alerts[0].paged_channels == ["ops", "pager", "chat"]
    [firing] = await events_of(db, alert.id)
    assert (firing.kind, firing.at, firing.comment) == ("firing", T0, "connection refused")

    rows = await outbox_rows(db)
    assert [r.channel for r in rows] == ["chat", "ops", "pager"]  # notify unset: every channel
    for row in rows:
        assert row.event == "alert.firing"
        assert row.idempotency_key == f"{alert.id}:alert.firing"
        assert row.alert_id == alert.id
        assert (row.status, row.attempts) == ("pending", 0)
        assert row.created_at == T0 and row.next_attempt_at == T0
    assert wakes.count == 1

    # The hard state is stored with the alert.
    states = await load_states(db)
    assert states["db"].status is Status.DOWN and states["db"].since == T0


async def test_the_firing_payload_has_the_documented_shape(db: Database) -> None:
    alert = await make_alerts(db).on_transition(*down())
    assert alert is not None
    payload = (await outbox_rows(db))[0].payload
    assert list(payload) == ["version", "event", "alert"]
    assert payload["version"] == 1
    assert payload["event"] == "alert.firing"
    assert payload["alert"] == {
        "id": alert.id,
        "fingerprint": "check:db",
        "name": "db",
        "check": "db",
        "rule": None,
        "severity": "high",
        "status": "firing",
        "started_at": "2030-06-01T08:00:00Z",
        "resolved_at": None,
        "summary": "connection refused",
        "labels": {"team": "core", "check": "db", "severity": "high", "component": "storage"},
        "acknowledged_by": None,
        "acknowledged_at": None,
    }


async def test_check_notify_limits_the_channels_notified(db: Database) -> None:
    alert = await make_alerts(db).on_transition(*down("api"))
    assert alert is not None
    rows = await outbox_rows(db)
    assert [(r.channel, r.event) for r in rows] == [("pager", "alert.firing")]
    assert rows[0].payload["alert"]["labels"] == {"check": "api", "severity": "critical"}


async def test_a_check_with_an_empty_notify_list_alerts_without_notifying(db: Database) -> None:
    wakes = Wakes()
    alert = await make_alerts(db, wakes).on_transition(*down("batch"))
    assert alert is not None and alert.status is AlertStatus.FIRING
    assert await count(db, tables.alerts) == 1
    assert await count(db, tables.outbox) == 0
    assert wakes.count == 0  # nothing queued, nothing to wake


async def test_a_failed_enqueue_leaves_the_alert_unpaged_until_the_next_pass(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_enqueue(*_args: Any, **_kwargs: Any) -> None:
        # What SQLite raises when the disk fills: a storage failure stops the pass (retried
        # whole), unlike an object that cannot be evaluated, which is isolated.
        raise OperationalError("INSERT INTO outbox", {}, Exception("database or disk is full"))

    monkeypatch.setattr(outbox_store, "enqueue", broken_enqueue)
    wakes = Wakes()
    alerts = make_alerts(db, wakes)
    with pytest.raises(OperationalError, match="disk is full"):
        await alerts.on_transition(*down())
    # The alert and the state are stored; the page was rolled back with its bookkeeping.
    assert await count(db, tables.alerts) == 1
    assert await count(db, tables.outbox) == 0
    [open_alert], _ = await alert_store.list_alerts(db)
    assert open_alert.notified_at is None
    assert wakes.count == 0

    monkeypatch.undo()
    await alerts.dispatcher.dispatch_once()
    assert await count(db, tables.outbox) == 3
    assert wakes.count == 1


async def test_restart_does_not_open_a_second_alert(db_url: str, db: Database) -> None:
    first = await make_alerts(db).on_transition(*down())
    assert first is not None

    # A new process: new Database, new CheckAlerts, same storage; the check is seen DOWN again.
    restarted_db = Database(db_url)
    try:
        await restarted_db.migrate()
        wakes = Wakes()
        again = await make_alerts(restarted_db, wakes).on_transition(
            *down(at=T0 + timedelta(minutes=1), reason="still refused")
        )
    finally:
        await restarted_db.close()

    assert again is not None and again.id == first.id
    assert again.started_at == T0 and again.summary == "connection refused"
    assert wakes.count == 0
    assert await count(db, tables.alerts) == 1
    assert len(await events_of(db, first.id)) == 1
    rows = await outbox_rows(db)
    assert len(rows) == 3 and {r.idempotency_key for r in rows} == {f"{first.id}:alert.firing"}
    # The newer state is still recorded.
    assert (await load_states(db))["db"].last_reason == "still refused"


async def test_concurrent_down_transitions_open_only_one_alert(db_url: str, db: Database) -> None:
    others = [Database(db_url) for _ in range(3)]
    try:
        workers = [make_alerts(d) for d in (db, *others)]
        outcomes = await asyncio.gather(
            *(w.on_transition(*down()) for w in workers), return_exceptions=True
        )
    finally:
        for other in others:
            await other.close()
    alerts, total = await alert_store.list_alerts(db)
    assert total == 1 and alerts[0].status is AlertStatus.FIRING
    # Each node either got that one alert or was stopped by the unique index.
    for outcome in outcomes:
        assert isinstance(outcome, Alert | IntegrityError), outcome
        if isinstance(outcome, Alert):
            assert outcome.id == alerts[0].id
    assert await count(db, tables.alert_events) == 1
    assert [r.channel for r in await outbox_rows(db)] == ["chat", "ops", "pager"]


async def test_an_up_transition_resolves_the_alert_and_queues_alert_resolved(
    db: Database,
) -> None:
    wakes = Wakes()
    alerts = make_alerts(db, wakes)
    opened = await alerts.on_transition(*down())
    assert opened is not None
    resolved_at = T0 + timedelta(minutes=7)
    resolved = await alerts.on_transition(*up(at=resolved_at))

    assert resolved is not None and resolved.id == opened.id
    assert resolved.status is AlertStatus.RESOLVED and resolved.resolved_at == resolved_at
    stored, total = await alert_store.list_alerts(db)
    assert total == 1
    assert stored[0].status is AlertStatus.RESOLVED and stored[0].resolved_at == resolved_at
    assert [(e.kind, e.at) for e in await events_of(db, opened.id)] == [
        ("firing", T0),
        ("resolved", resolved_at),
    ]

    rows = [r for r in await outbox_rows(db) if r.event == "alert.resolved"]
    assert [r.channel for r in rows] == ["chat", "ops", "pager"]
    for row in rows:
        assert row.idempotency_key == f"{opened.id}:alert.resolved"
        assert row.alert_id == opened.id
        assert row.created_at == resolved_at
        assert list(row.payload) == ["version", "event", "alert"]
        assert row.payload["event"] == "alert.resolved"
        body = row.payload["alert"]
        assert body["id"] == opened.id
        assert body["status"] == "resolved"
        assert body["started_at"] == "2030-06-01T08:00:00Z"
        assert body["resolved_at"] == "2030-06-01T08:07:00Z"
    assert wakes.count == 2
    assert (await load_states(db))["db"].status is Status.UP


async def test_a_second_up_transition_changes_nothing(db: Database) -> None:
    alerts = make_alerts(db)
    await alerts.on_transition(*down())
    await alerts.on_transition(*up())
    assert await alerts.on_transition(*up(at=T0 + timedelta(minutes=9))) is None
    assert await count(db, tables.outbox) == 6
    assert await count(db, tables.alert_events) == 2


async def test_a_down_after_a_resolved_alert_opens_a_new_alert(db: Database) -> None:
    alerts = make_alerts(db)
    first = await alerts.on_transition(*down())
    await alerts.on_transition(*up())
    second = await alerts.on_transition(*down(at=T0 + timedelta(hours=1), reason="reset"))
    assert first is not None and second is not None and second.id != first.id
    assert second.status is AlertStatus.FIRING and second.summary == "reset"
    open_alerts, open_total = await alert_store.list_alerts(db, status="open")
    assert open_total == 1 and open_alerts[0].id == second.id
    keys = {r.idempotency_key for r in await outbox_rows(db)}
    assert keys == {
        f"{first.id}:alert.firing",
        f"{first.id}:alert.resolved",
        f"{second.id}:alert.firing",
    }


async def test_a_degraded_transition_without_an_open_alert_does_nothing(db: Database) -> None:
    wakes = Wakes()
    result = await make_alerts(db, wakes).on_transition(
        *transition("db", Status.UP, Status.DEGRADED, T0, "slow: 900 ms")
    )
    assert result is None
    assert await count(db, tables.alerts) == 0
    assert await count(db, tables.alert_events) == 0
    assert await count(db, tables.outbox) == 0
    assert wakes.count == 0
    # Only the hard state is recorded.
    state = (await load_states(db))["db"]
    assert state.status is Status.DEGRADED and state.last_reason == "slow: 900 ms"
