"""AlertService: reading alerts, acting on them, taking in external ones."""

from __future__ import annotations

import pytest

from tests.support.clock import FakeClock
from watchkeeper.alerting.external import InvalidAlerts
from watchkeeper.alerting.ingest import AlertIngest
from watchkeeper.core.errors import Conflict, NotFound
from watchkeeper.services.alerts import AlertService
from watchkeeper.store.database import Database


class Wakes:
    """Counts the dispatcher's wake-ups."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def wakes() -> Wakes:
    return Wakes()


@pytest.fixture
def alerts(sqlite_db: Database, wakes: Wakes) -> AlertService:
    clock = FakeClock()
    return AlertService(
        db=sqlite_db, clock=clock, wake_dispatcher=wakes, posted=AlertIngest(sqlite_db, clock)
    )


async def _fire(alerts: AlertService, name: str = "disk", severity: str = "high") -> str:
    [alert] = await alerts.ingest({"name": name, "severity": severity, "summary": "full"})
    return alert.id


async def test_ingest_fires_then_resolves_and_wakes_the_dispatcher_each_time(
    alerts: AlertService, wakes: Wakes
) -> None:
    alert_id = await _fire(alerts)
    assert wakes.count == 1
    alert, events = await alerts.get(alert_id)
    assert (alert.name, alert.status.value, alert.source) == ("disk", "firing", "external")
    assert [e.kind for e in events] == ["firing"]

    [resolved] = await alerts.ingest([{"name": "disk", "severity": "high", "status": "resolved"}])
    assert resolved.id == alert_id
    assert wakes.count == 2
    assert (await alerts.get(alert_id))[0].status.value == "resolved"


async def test_ingest_of_an_invalid_body_stores_nothing_and_wakes_nobody(
    alerts: AlertService, wakes: Wakes
) -> None:
    with pytest.raises(InvalidAlerts) as caught:
        await alerts.ingest([{"name": "ok"}, {"name": ""}])
    assert caught.value.errors[0]["loc"][0] == 1
    assert await alerts.list_alerts() == ([], 0)
    assert wakes.count == 0


async def test_acknowledge_resolve_and_comment_record_who_and_wake_the_dispatcher(
    alerts: AlertService, wakes: Wakes
) -> None:
    alert_id = await _fire(alerts)
    acked = await alerts.acknowledge(alert_id, "ann", "on it")
    assert (acked.status.value, acked.acknowledged_by) == ("acknowledged", "ann")
    assert wakes.count == 2
    await alerts.comment(alert_id, "bob", "disk replaced")
    assert wakes.count == 3
    resolved = await alerts.resolve(alert_id, "bob")
    assert resolved.status.value == "resolved" and resolved.resolved_at is not None
    assert wakes.count == 4
    _, events = await alerts.get(alert_id)
    assert [(e.kind, e.actor, e.comment) for e in events][1:] == [
        ("acknowledged", "ann", "on it"),
        ("comment", "bob", "disk replaced"),
        ("resolved", "bob", None),
    ]


async def test_an_unknown_alert_is_not_found_and_nobody_is_woken(
    alerts: AlertService, wakes: Wakes
) -> None:
    for act in (alerts.acknowledge, alerts.resolve, alerts.comment):
        with pytest.raises(NotFound, match=r"^no such alert$"):
            await act("nope", "ann", "hi")
    with pytest.raises(NotFound, match=r"^no such alert$"):
        await alerts.get("nope")
    assert wakes.count == 0


async def test_acting_on_a_resolved_alert_is_a_conflict(alerts: AlertService, wakes: Wakes) -> None:
    alert_id = await _fire(alerts)
    await alerts.resolve(alert_id, "ann")
    with pytest.raises(Conflict, match="the alert is already resolved"):
        await alerts.resolve(alert_id, "ann")
    with pytest.raises(Conflict, match="the alert is resolved"):
        await alerts.acknowledge(alert_id, "ann")
    assert wakes.count == 2


async def test_list_filters_and_counts_split_open_alerts_by_state_and_severity(
    alerts: AlertService,
) -> None:
    disk = await _fire(alerts, "disk", "high")
    await _fire(alerts, "cpu", "critical")
    await _fire(alerts, "mem", "low")
    await alerts.acknowledge(disk, "ann")
    await alerts.resolve(await _fire(alerts, "old", "high"), "ann")

    found, total = await alerts.list_alerts(status="open", limit=2)
    assert total == 3 and len(found) == 2
    assert [a.name for a in (await alerts.list_alerts(q="CP"))[0]] == ["cpu"]
    assert [a.name for a in (await alerts.list_alerts(status="resolved"))[0]] == ["old"]

    counts = await alerts.counts()
    assert counts.firing == {"critical": 1, "high": 0, "medium": 0, "low": 1, "info": 0}
    assert counts.acknowledged["high"] == 1 and sum(counts.acknowledged.values()) == 1
    assert sum(counts.silenced.values()) == 0
