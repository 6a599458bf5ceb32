"""Escalation steps and repeats of a paged alert (alerting/dispatch/escalation)."""

from __future__ import annotations

from datetime import timedelta

from tests.alerting.factory import (
    T0,
    outbox,
    outbox_alert_ids,
    policy,
    reread,
    settings,
    stored_alert,
    targets,
)
from watchkeeper.alerting.dispatch.escalation import Escalation
from watchkeeper.alerting.dispatch.storm import StormStage
from watchkeeper.alerting.dispatch.targets import Targets
from watchkeeper.core.domain import Alert
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database

THREE = policy(
    "three",
    [
        {"notify": ["chat"]},
        {"after": "10m", "notify": ["pager"]},
        {"after": "30m", "notify": ["boss", "pager"]},
    ],
    repeat="1h",
)
ONCE = policy("once", [{"notify": ["chat"]}, {"after": "10m", "notify": ["pager"]}])


def escalation(db: Database, to: Targets) -> Escalation:
    return Escalation(db, to, StormStage())


async def paged(db: Database, name: str, channels: list[str], **spec: str) -> Alert:
    """An alert first paged at T0 to `channels`."""
    alert = await stored_alert(db, name, **spec)
    async with db.begin() as conn:
        assert await alert_store.claim_first_page(
            conn, alert.id, at=T0, channels=channels, group_key="k", next_escalation_at=None
        )
    alert.notified_at, alert.paged_channels = T0, channels
    return alert


async def test_each_step_pages_its_channels_and_schedules_the_next_from_the_first_page(
    db: Database,
) -> None:
    alert = await paged(db, "ApiDown", ["chat"], escalation_policy="three")
    stage = escalation(db, targets(policies=[THREE]))
    now = T0 + timedelta(minutes=12)  # a late pass: the next step still counts from T0
    assert await stage.escalate(alert, now) == 1
    assert await outbox(db) == [("pager", "alert.escalated", f"{alert.id}:alert.escalated:1")]
    [entry] = await outbox_store.list_entries(db)
    assert entry.payload["escalation"] == {"policy": "three", "step": 1}
    stored = await reread(db, alert.id)
    assert stored.escalation_step == 1
    assert stored.next_escalation_at == T0 + timedelta(minutes=30)
    assert stored.paged_channels == ["chat", "pager"]
    found = await alert_store.get_alert(db, alert.id)
    assert found is not None
    assert [(e.kind, e.comment) for e in found[1] if e.kind == "escalated"] == [
        ("escalated", "step 1: pager")
    ]


async def test_the_last_step_repeats_every_repeat_and_stays_on_the_last_channels(
    db: Database,
) -> None:
    alert = await paged(db, "ApiDown", ["chat"], escalation_policy="three")
    stage = escalation(db, targets(policies=[THREE]))
    alert.escalation_step = 1
    now = T0 + timedelta(minutes=31)
    async with db.begin() as conn:
        await alert_store.advance_escalation(
            conn, alert.id, from_step=0, step=1, next_escalation_at=None
        )
    assert await stage.escalate(alert, now) == 2
    stored = await reread(db, alert.id)
    assert (stored.escalation_step, stored.next_escalation_at) == (2, now + timedelta(hours=1))
    assert stored.paged_channels == ["boss", "chat", "pager"]
    alert = stored
    later = now + timedelta(hours=1)
    assert await stage.escalate(alert, later) == 2
    assert [key for _, _, key in await outbox(db)][-2:] == [f"{alert.id}:alert.escalated:3"] * 2
    assert (await reread(db, alert.id)).escalation_step == 3


async def test_a_policy_without_repeat_stops_after_its_last_step(db: Database) -> None:
    alert = await paged(db, "ApiDown", ["chat"], escalation_policy="once")
    assert (
        await escalation(db, targets(policies=[ONCE])).escalate(alert, T0 + timedelta(minutes=10))
        == 1
    )
    stored = await reread(db, alert.id)
    assert (stored.escalation_step, stored.next_escalation_at) == (1, None)


async def test_nothing_is_sent_for_an_alert_never_paged_or_moved_on_meanwhile(
    db: Database,
) -> None:
    stage = escalation(db, targets(policies=[THREE]))
    never = await stored_alert(db, "Never", escalation_policy="three")
    assert await stage.escalate(never, T0 + timedelta(hours=1)) == 0
    alert = await paged(db, "ApiDown", ["chat"], escalation_policy="three")
    async with db.begin() as conn:  # another pass escalated it first
        await alert_store.advance_escalation(
            conn, alert.id, from_step=0, step=1, next_escalation_at=None
        )
    assert await stage.escalate(alert, T0 + timedelta(minutes=10)) == 0
    assert await outbox(db) == []


async def test_without_a_policy_the_same_channels_are_paged_again(db: Database) -> None:
    alert = await paged(db, "ApiDown", ["ops", "chat"])
    stage = escalation(db, targets(settings(repeat_interval="2h")))
    now = T0 + timedelta(hours=2)
    assert await stage.escalate(alert, now) == 2
    assert await outbox(db) == [
        ("ops", "alert.firing", f"{alert.id}:alert.firing:repeat:1"),
        ("chat", "alert.firing", f"{alert.id}:alert.firing:repeat:1"),
    ]
    [entry, _] = await outbox_store.list_entries(db)
    assert (entry.payload["repeat"], entry.payload["event"]) == (1, "alert.firing")
    assert await outbox_alert_ids(db) == [alert.id, alert.id]
    stored = await reread(db, alert.id)
    assert (stored.escalation_step, stored.next_escalation_at) == (1, now + timedelta(hours=2))
    assert await stage.repeat(alert, now) == 0  # step 0 is gone: another pass repeated it


async def test_a_repeat_without_recorded_channels_pages_todays_routing_and_may_be_last(
    db: Database,
) -> None:
    alert = await paged(db, "ApiDown", ["ops"])
    alert.paged_channels = None  # paged before channels were recorded
    stage = escalation(db, targets(channels=["chat"]))  # no repeat_interval (any more)
    assert await stage.repeat(alert, T0 + timedelta(hours=1)) == 1
    assert await outbox(db) == [("chat", "alert.firing", f"{alert.id}:alert.firing:repeat:1")]
    assert (await reread(db, alert.id)).next_escalation_at is None
