"""Auto-resolution and the acknowledgement and resolution notices (alerting/dispatch/resolution)."""

from __future__ import annotations

from datetime import timedelta

from tests.alerting.factory import (
    T0,
    alert,
    outbox,
    outbox_alert_ids,
    reread,
    stored_alert,
    targets,
)
from watchkeeper.alerting.dispatch.context import Pass
from watchkeeper.alerting.dispatch.resolution import Expiry, Resolution
from watchkeeper.alerting.dispatch.storm import StormStage
from watchkeeper.core.domain import AlertStatus
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database

HOUR = timedelta(hours=1)


async def test_only_open_external_alerts_expire_from_their_last_re_assertion(
    db: Database,
) -> None:
    expiry = Expiry(db, HOUR)
    assert expiry.expires_at(alert(source="external")) == T0 + HOUR
    refreshed = alert(source="external", updated_at=T0 + HOUR)
    assert expiry.expires_at(refreshed) == T0 + 2 * HOUR
    assert expiry.expires_at(alert(source="check")) is None
    assert expiry.expires_at(alert(source="watchkeeper")) is None
    assert expiry.expires_at(alert(source="external", status=AlertStatus.RESOLVED)) is None
    assert Expiry(db, None).expires_at(alert(source="external")) is None


async def test_an_external_alert_resolves_exactly_when_it_expires(db: Database) -> None:
    external = await stored_alert(db, "Ext", source="external")
    expiry = Expiry(db, HOUR)
    early = Pass(T0 + HOUR - timedelta(seconds=1))
    await expiry.apply(external, early)
    assert external.status is AlertStatus.FIRING and early.wakeups == [T0 + HOUR]
    due = Pass(T0 + HOUR)
    await expiry.apply(external, due)
    assert external.status is AlertStatus.RESOLVED and due.wakeups == []
    stored = await reread(db, external.id)
    assert stored.status is AlertStatus.RESOLVED and stored.resolved_at == T0 + HOUR
    found = await alert_store.get_alert(db, external.id)
    assert found is not None
    # The history says why it resolved without anyone saying so.
    assert [e.comment for e in found[1] if e.kind == "resolved"] == ["auto-resolved: not re-sent"]


async def test_an_alert_that_never_expires_is_left_alone(db: Database) -> None:
    check = await stored_alert(db, "Check")
    at = Pass(T0 + 10 * HOUR)
    await Expiry(db, HOUR).apply(check, at)
    assert check.status is AlertStatus.FIRING and at.wakeups == []
    assert (await reread(db, check.id)).status is AlertStatus.FIRING


async def test_an_acknowledgement_is_told_once_to_everyone_paged(db: Database) -> None:
    api = await stored_alert(db, "ApiDown")
    api.paged_channels = ["ops", "pager"]
    stage = Resolution(db, targets(channels=["elsewhere"]), StormStage())
    now = T0 + HOUR
    assert await stage.acknowledged(api, now) == 2
    [entry, _] = await outbox_store.list_entries(db)
    assert entry.payload["event"] == "alert.acknowledged"
    assert await outbox_alert_ids(db) == [api.id, api.id]
    assert await outbox(db) == [
        ("ops", "alert.acknowledged", f"{api.id}:alert.acknowledged"),
        ("pager", "alert.acknowledged", f"{api.id}:alert.acknowledged"),
    ]
    assert (await reread(db, api.id)).ack_notified_at == now
    assert await stage.acknowledged(api, now) == 0  # another pass told them already
    assert len(await outbox(db)) == 2


async def test_an_alert_read_as_told_is_not_told_again(db: Database) -> None:
    api = await stored_alert(db, "ApiDown")
    api.paged_channels, api.ack_notified_at = ["ops"], T0 + HOUR
    stage = Resolution(db, targets(), StormStage())
    assert await stage.acknowledged(api, T0 + 2 * HOUR) == 0
    assert await outbox(db) == []
    assert (await reread(db, api.id)).ack_notified_at is None  # not even marked


async def test_a_resolution_goes_to_todays_routing_when_nobody_recorded_who_was_paged(
    db: Database,
) -> None:
    api = await stored_alert(db, "ApiDown")
    stage = Resolution(db, targets(channels=["ops"]), StormStage())
    assert api.paged_channels is None
    assert await stage.resolved(api, T0 + HOUR) == 1
    assert await outbox(db) == [("ops", "alert.resolved", f"{api.id}:alert.resolved")]
    assert (await reread(db, api.id)).resolved_notified_at == T0 + HOUR
    assert await stage.resolved(api, T0 + 2 * HOUR) == 0


async def test_nobody_paged_means_nobody_told_but_the_notice_counts_as_given(
    db: Database,
) -> None:
    api = await stored_alert(db, "ApiDown")
    api.paged_channels = []
    stage = Resolution(db, targets(channels=["ops"]), StormStage())
    assert await stage.resolved(api, T0 + HOUR) == 0
    assert await outbox(db) == []
    async with db.connect() as conn:
        stored = await alert_store.by_id(conn, api.id)
    assert stored is not None and stored.resolved_notified_at == T0 + HOUR
