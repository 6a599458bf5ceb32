"""The first page of a group (alerting/dispatch/first_page)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

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
from watchkeeper.alerting.dispatch.first_page import FirstPage
from watchkeeper.alerting.dispatch.storm import StormStage
from watchkeeper.alerting.dispatch.targets import Targets
from watchkeeper.store import alert_groups as group_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database

NOW = T0 + timedelta(minutes=1)


def first_page(db: Database, to: Targets) -> FirstPage:
    return FirstPage(db, to, StormStage())


async def test_one_alert_is_paged_on_its_own_to_its_first_channels(db: Database) -> None:
    api = await stored_alert(db, "ApiDown")
    sent = await first_page(db, targets(channels=["ops", "chat"])).send("k1", [api], NOW)
    assert sent == 2
    assert await outbox(db) == [
        ("ops", "alert.firing", f"{api.id}:alert.firing"),
        ("chat", "alert.firing", f"{api.id}:alert.firing"),
    ]
    [entry, _] = await outbox_store.list_entries(db)
    assert entry.payload["alert"]["name"] == "ApiDown" and "alerts" not in entry.payload
    assert (api.notified_at, api.paged_channels) == (NOW, ["ops", "chat"])
    stored = await reread(db, api.id)
    assert (stored.notified_at, stored.paged_channels, stored.group_key) == (
        NOW,
        ["ops", "chat"],
        "k1",
    )
    async with db.connect() as conn:
        groups = await group_store.load(conn)
    assert (groups["k1"].first_seen_at, groups["k1"].last_notified_at) == (T0, NOW)


async def test_several_alerts_share_one_group_notification(db: Database) -> None:
    members = [
        await stored_alert(db, "ApiDown", labels={"zone": "eu"}),
        await stored_alert(db, "DbDown", labels={"zone": "eu"}),
    ]
    stage = first_page(db, targets(settings(group_by=["zone"])))
    assert await stage.send("group:ops|zone=eu", members, NOW) == 1
    [entry] = await outbox_store.list_entries(db)
    assert entry.idempotency_key.startswith("group:") and entry.event == "alert.firing"
    assert [a["name"] for a in entry.payload["alerts"]] == ["ApiDown", "DbDown"]
    assert entry.payload["alert"]["name"] == "ApiDown"
    assert entry.payload["group"] == {
        "key": "group:ops|zone=eu",
        "labels": {"zone": "eu"},
        "count": 2,
    }


async def test_an_alert_another_pass_paged_first_is_not_paged_again(db: Database) -> None:
    api = await stored_alert(db, "ApiDown")
    stage = first_page(db, targets())
    assert await stage.send("k1", [api], NOW) == 1
    again = await stored_alert(db, "ApiDown")  # the same open alert, read before the page
    again.notified_at = None
    assert await stage.send("k1", [again], NOW + timedelta(minutes=1)) == 0
    assert len(await outbox(db)) == 1
    assert (await reread(db, api.id)).notified_at == NOW


async def test_the_next_page_is_scheduled_by_the_policy_else_by_repeat_interval(
    db: Database,
) -> None:
    two_steps = policy("two", [{"after": "1m", "notify": ["a"]}, {"after": "11m", "notify": ["b"]}])
    repeating = policy("rep", [{"notify": ["a"]}], repeat="30m")
    once = policy("once", [{"notify": ["a"]}])
    to = targets(settings(repeat_interval="2h"), [two_steps, repeating, once])
    stage = first_page(db, to)
    expected = {
        "two": NOW + timedelta(minutes=10),
        "rep": NOW + timedelta(minutes=30),
        "once": None,  # a policy without repeat is not repeated by repeat_interval
        None: NOW + timedelta(hours=2),
    }
    for name, next_at in expected.items():
        alert = await stored_alert(db, f"A{name}", escalation_policy=name)
        await stage.send(f"k{name}", [alert], NOW)
        assert (await reread(db, alert.id)).next_escalation_at == next_at, name
    plain = await stored_alert(db, "Plain")
    await first_page(db, targets()).send("kplain", [plain], NOW)
    assert (await reread(db, plain.id)).next_escalation_at is None


async def test_a_page_names_its_event_and_is_stored_against_its_alert(db: Database) -> None:
    api = await stored_alert(db, "ApiDown")
    await first_page(db, targets(channels=["ops"])).send("k1", [api], NOW)
    [entry] = await outbox_store.list_entries(db)
    assert entry.payload["event"] == "alert.firing"
    assert await outbox_alert_ids(db) == [api.id]


async def test_a_group_page_names_its_event_its_first_alert_and_blank_missing_labels(
    db: Database,
) -> None:
    members = [
        await stored_alert(db, "ApiDown", labels={"zone": "eu"}),
        await stored_alert(db, "DbDown", labels={"zone": "eu"}),
    ]
    stage = first_page(db, targets(settings(group_by=["zone", "team"])))
    await stage.send("group:ops|zone=eu", members, NOW)
    [entry] = await outbox_store.list_entries(db)
    assert entry.payload["event"] == "alert.firing"
    # A label the alerts do not carry groups them as blank, as the group key does.
    assert entry.payload["group"]["labels"] == {"zone": "eu", "team": ""}
    assert await outbox_alert_ids(db) == [members[0].id]


async def test_the_first_page_is_logged_with_its_channels_count_and_group(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="watchkeeper.alerting.dispatcher")
    api = await stored_alert(db, "ApiDown")
    await first_page(db, targets(channels=["ops", "chat"])).send("k1", [api], NOW)
    lonely = await stored_alert(db, "Lonely")
    await first_page(db, targets(channels=[])).send("k2", [lonely], NOW)
    assert [r.getMessage() for r in caplog.records if r.name.endswith("dispatcher")] == [
        "paged ops,chat about 1 alert(s) in k1",
        "paged nobody about 1 alert(s) in k2",
    ]


async def test_a_group_paged_again_keeps_when_it_was_first_seen(db: Database) -> None:
    async with db.begin() as conn:
        await group_store.touch(conn, "k1", NOW, first_seen=T0)
        await group_store.touch(conn, "k2", NOW, first_seen=T0 + timedelta(seconds=5))
    later = NOW + timedelta(hours=2)
    async with db.begin() as conn:  # one statement, a new row or only the last page's time
        await group_store.touch(conn, "k1", later, first_seen=later)
    async with db.connect() as conn:
        groups = await group_store.load(conn)
    assert {k: (g.first_seen_at, g.last_notified_at) for k, g in groups.items()} == {
        "k1": (T0, later),
        "k2": (T0 + timedelta(seconds=5), NOW),
    }


async def test_groups_paged_together_skip_an_alert_another_pass_paged_first(
    db: Database,
) -> None:
    """Several groups are claimed in one statement run; when one of their alerts was paged
    meanwhile (another pass or node), the others are still paged and it is not again."""
    alerts = [await stored_alert(db, f"A{i}") for i in range(3)]
    stage = first_page(db, targets(channels=["ops"]))
    assert await stage.send("elsewhere", [alerts[1]], NOW) == 1
    later = NOW + timedelta(seconds=1)
    queued = await stage.send_many([(f"k{i}", [a]) for i, a in enumerate(alerts)], later)
    assert queued == 2
    assert sorted(await outbox_alert_ids(db)) == sorted(a.id for a in alerts)
    assert (await reread(db, alerts[1].id)).group_key == "elsewhere"
    assert [(await reread(db, a.id)).notified_at for a in alerts] == [later, NOW, later]


async def test_many_groups_paging_nobody_are_logged_in_one_line(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="watchkeeper.alerting.dispatcher")
    alerts = [await stored_alert(db, f"A{i}") for i in range(5)]
    await first_page(db, targets(channels=[])).send_many(
        [(f"k{i}", [a]) for i, a in enumerate(alerts)], NOW
    )
    assert [r.getMessage() for r in caplog.records if r.name.endswith("dispatcher")] == [
        "paged nobody about 5 alert(s) in 5 groups (k0, k1, k2, …)"
    ]


async def test_an_alert_paged_alone_stores_no_group_and_a_shared_group_is_stored(
    db: Database,
) -> None:
    # An alert's own group (`alert:<id>`, no group_by) is paged once and never read again:
    # a row for it would be written for every alert and kept forever.
    alone = await stored_alert(db, "ApiDown")
    await first_page(db, targets()).send(f"alert:{alone.id}", [alone], NOW)
    shared = await stored_alert(db, "DbDown", labels={"zone": "eu"})
    await first_page(db, targets(settings(group_by=["zone"]))).send(
        "group:ops|zone=eu", [shared], NOW
    )
    async with db.connect() as conn:
        groups = await group_store.load(conn)
    # The shared group's last page holds its next one back by group_interval.
    assert list(groups) == ["group:ops|zone=eu"]
    assert (await reread(db, alone.id)).group_key == f"alert:{alone.id}"
    assert len(await outbox(db)) == 2


async def test_an_alert_no_channel_takes_is_marked_paged_and_queues_nothing(
    db: Database,
) -> None:
    api = await stored_alert(db, "ApiDown")
    assert await first_page(db, targets(channels=[])).send("k1", [api], NOW) == 0
    assert await outbox(db) == []
    stored = await reread(db, api.id)
    assert (stored.notified_at, stored.paged_channels) == (NOW, [])
