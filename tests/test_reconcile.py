"""On start, open alerts are made to match stored hard states (crash between the two)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.alerting import DispatchingAlerts
from watchkeeper.config.loader import Config
from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.domain import Status
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CONFIG = Config.model_validate(
    {
        "checks": [
            {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 5432},
            {"name": "api", "type": "tcp", "host": "127.0.0.1", "port": 8080},
        ],
        "notifications": [{"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/hook"}],
    }
)


def alerts_for(db: Database) -> DispatchingAlerts:
    return DispatchingAlerts(db, CONFIG)


async def test_a_down_state_without_its_alert_gets_one_on_start(db: Database) -> None:
    states = {
        "db": CheckState("db", Status.DOWN, T0, Status.DOWN, "connection refused"),
        "api": CheckState("api", Status.UP, T0, Status.UP, "ok"),
    }
    assert await alerts_for(db).reconcile(states, T0) == 1
    (alert,), _ = await alert_store.list_alerts(db, status="open")
    assert (alert.check, alert.summary) == ("db", "connection refused")
    [entry] = await outbox_store.list_entries(db)
    assert entry.event == "alert.firing"
    # Idempotent: a second start repairs nothing.
    assert await alerts_for(db).reconcile(states, T0) == 0


async def test_an_open_alert_of_a_check_that_is_up_is_resolved_on_start(db: Database) -> None:
    down = {"db": CheckState("db", Status.DOWN, T0, Status.DOWN, "refused")}
    await alerts_for(db).reconcile(down, T0)
    up = {"db": CheckState("db", Status.UP, T0, Status.UP, "ok")}
    assert await alerts_for(db).reconcile(up, T0) == 1
    assert (await alert_store.list_alerts(db, status="open"))[1] == 0
    events = [e.event for e in await outbox_store.list_entries(db)]
    assert sorted(events) == ["alert.firing", "alert.resolved"]
