"""Escalation pages in detail: what each carries, how it is keyed, recorded and repeated."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from tests.test_dispatcher import ESCALATION, T0, World, hooks, tcp
from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.dispatcher import build_dispatcher
from watchkeeper.alerting.external import ExternalAlert
from watchkeeper.alerting.matchers import parse_matcher
from watchkeeper.alerting.silences import create_silence
from watchkeeper.config.loader import Config
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await database.migrate()
    yield database
    await database.close()


async def escalated(db: Database) -> list[Any]:
    entries = await outbox_store.list_entries(db, limit=1000)
    return sorted(
        (e for e in entries if e.event == "alert.escalated"), key=lambda e: e.idempotency_key
    )


async def test_an_escalation_page_names_its_policy_and_step_and_is_keyed_by_step(
    db: Database,
) -> None:
    world = World(db, Config.model_validate(ESCALATION))
    await world.down("api")
    await world.at(timedelta(0))
    await world.at(10 * MINUTE)
    (alert,), _ = await alert_store.list_alerts(db)
    [page] = await escalated(db)
    assert (page.channel, page.idempotency_key) == ("b", f"{alert.id}:alert.escalated:1")
    assert page.payload["event"] == "alert.escalated"
    assert page.payload["escalation"] == {"policy": "default", "step": 1}
    assert page.payload["alert"]["id"] == alert.id and page.alert_id == alert.id
    # Everyone paged so far hears of the resolution; the history says who was paged when.
    assert alert.paged_channels == ["a", "b"]
    assert (alert.escalation_step, alert.next_escalation_at) == (1, None)
    found = await alert_store.get_alert(db, alert.id)
    assert found is not None
    [event] = [e for e in found[1] if e.kind == "escalated"]
    assert (event.at, event.comment) == (T0 + 10 * MINUTE, "step 1: b")


async def test_after_the_last_step_the_repeat_pages_it_again_each_interval_from_the_page(
    db: Database,
) -> None:
    config = {**ESCALATION, "escalation": [{**ESCALATION["escalation"][0], "repeat": "30m"}]}
    world = World(db, Config.model_validate(config))
    await world.down("api")
    await world.at(timedelta(0))
    await world.at(12 * MINUTE)  # the pass for step 1 comes two minutes late
    (alert,), _ = await alert_store.list_alerts(db)
    assert alert.next_escalation_at == T0 + 42 * MINUTE  # the repeat counts from this page
    await world.at(42 * MINUTE)
    pages = await escalated(db)
    assert [(p.channel, p.idempotency_key) for p in pages] == [
        ("b", f"{alert.id}:alert.escalated:1"),
        ("b", f"{alert.id}:alert.escalated:2"),
    ]
    assert pages[1].payload["escalation"] == {"policy": "default", "step": 2}
    (alert,), _ = await alert_store.list_alerts(db)
    assert (alert.escalation_step, alert.next_escalation_at) == (2, T0 + 72 * MINUTE)


async def test_a_step_with_several_channels_pages_each_and_names_them_all(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="watchkeeper.alerting.dispatcher")
    config = {
        **ESCALATION,
        "notifications": hooks("a", "b", "c"),
        "escalation": [
            {
                "name": "default",
                "steps": [{"notify": ["a"]}, {"after": "10m", "notify": ["c", "b"]}],
            }
        ],
    }
    world = World(db, Config.model_validate(config))
    await world.down("api")
    await world.at(timedelta(0))
    assert await world.at(10 * MINUTE) == [
        ("a", "alert.firing"),
        ("b", "alert.escalated"),
        ("c", "alert.escalated"),
    ]
    (alert,), _ = await alert_store.list_alerts(db)
    assert alert.paged_channels == ["a", "b", "c"]
    found = await alert_store.get_alert(db, alert.id)
    assert found is not None
    assert [e.comment for e in found[1] if e.kind == "escalated"] == ["step 1: c, b"]
    assert "escalated api to step 1: c, b" in [r.getMessage() for r in caplog.records]


async def test_two_alerts_escalating_in_the_same_pass_each_page_their_next_step(
    db: Database,
) -> None:
    config = {**ESCALATION, "checks": [tcp("api"), tcp("db")]}
    config["alerting"] = {**config["alerting"], "group_by": None}
    world = World(db, Config.model_validate(config))
    await world.down("api")
    await world.down("db")
    await world.at(timedelta(0))
    await world.at(10 * MINUTE)
    pages = await escalated(db)
    assert sorted(p.payload["alert"]["check"] for p in pages) == ["api", "db"]
    alerts, _ = await alert_store.list_alerts(db)
    assert [(a.escalation_step, a.next_escalation_at) for a in alerts] == [(1, None), (1, None)]


async def test_an_escalation_is_logged_with_the_alert_step_and_channels(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="watchkeeper.alerting.dispatcher")
    world = World(db, Config.model_validate(ESCALATION))
    await world.down("api")
    await world.at(timedelta(0))
    await world.at(10 * MINUTE)
    assert "escalated api to step 1: b" in [r.getMessage() for r in caplog.records]


async def test_a_first_step_with_a_delay_pages_then_and_later_steps_count_from_the_start(
    db: Database,
) -> None:
    config = {
        **ESCALATION,
        "notifications": hooks("a", "b", "c"),
        "escalation": [
            {
                "name": "default",
                "steps": [
                    {"after": "5m", "notify": ["a"]},
                    {"after": "10m", "notify": ["b"]},
                    {"after": "30m", "notify": ["c"]},
                ],
            }
        ],
    }
    world = World(db, Config.model_validate(config))
    await world.down("api")
    assert await world.at(5 * MINUTE - timedelta(seconds=1)) == []
    assert await world.at(5 * MINUTE) == [("a", "alert.firing")]
    assert await world.dispatcher.dispatch_once() == T0 + 10 * MINUTE
    assert await world.at(10 * MINUTE) == [("a", "alert.firing"), ("b", "alert.escalated")]
    assert await world.dispatcher.dispatch_once() == T0 + 30 * MINUTE


# -- what the dispatcher wakes for, and what auto-resolves -------------------------------------


async def test_a_silenced_alert_wakes_the_dispatcher_when_the_silence_ends(db: Database) -> None:
    world = World(db, Config.model_validate({"checks": [tcp("api")], "notifications": hooks("o")}))
    await create_silence(db, [parse_matcher("check=api")], T0, T0 + HOUR, "al", "", T0)
    await world.down("api")
    assert await world.dispatcher.dispatch_once() == T0 + HOUR


async def test_a_silence_yet_to_start_wakes_the_dispatcher_when_it_starts(db: Database) -> None:
    config = {"checks": [tcp("api")], "notifications": hooks("o")}
    config["alerting"] = {"group_wait": "0s"}
    world = World(db, Config.model_validate(config))
    await world.down("api")
    await world.at(timedelta(0))  # paged; nothing else due
    await create_silence(db, [parse_matcher("check=db")], T0 + HOUR, T0 + 2 * HOUR, "al", "", T0)
    assert await world.dispatcher.dispatch_once() == T0 + HOUR
    # At its start it silences nothing here: no reason to wake again at once.
    world.clock.set(T0 + HOUR)
    assert await world.dispatcher.dispatch_once() is None


async def test_auto_resolve_after_applies_to_external_alerts_only(db: Database) -> None:
    config = {
        "checks": [tcp("api")],
        "notifications": hooks("ops"),
        "alerting": {"auto_resolve_after": "10m"},
    }
    world = World(db, Config.model_validate(config))
    await world.down("api")
    await world.at(timedelta(0))
    assert await world.at(timedelta(hours=2)) == [("ops", "alert.firing")]
    (alert,), _ = await alert_store.list_alerts(db)
    assert alert.status.value == "firing"


async def test_without_auto_resolve_after_an_external_alert_stays_firing(db: Database) -> None:
    world = World(db, Config.model_validate({"notifications": hooks("ops")}))
    spec = ExternalAlert(name="queue-backlog", severity="high").spec()
    async with db.begin() as conn:
        await lifecycle.fire(conn, spec, T0)
    assert await world.at(timedelta(0)) == [("ops", "alert.firing")]
    assert await world.at(timedelta(days=2)) == [("ops", "alert.firing")]
    assert world.dispatcher.broken.all() == []


# -- flapping ----------------------------------------------------------------------------------


async def test_a_flapping_check_is_suppressed_before_its_first_page_and_not_after(
    db: Database,
) -> None:
    flapping: set[str] = set()
    config = Config.model_validate(
        {
            "checks": [tcp("api"), tcp("db"), tcp("web")],
            "notifications": hooks("o"),
            "alerting": {"group_by": None},
            "maintenance": [
                {"name": "m", "starts_at": T0, "ends_at": T0 + HOUR, "checks": ["web"]}
            ],
        }
    )
    world = World(db, config)
    world.dispatcher = build_dispatcher(
        db, world.clock, config, states=world.states, is_flapping=lambda c: c in flapping
    )
    await world.down("db")
    await world.at(timedelta(0))  # db is paged while steady
    flapping.update({"api", "db", "web"})
    await world.down("api")
    await world.down("web")
    await world.at(MINUTE)
    alerts, _ = await alert_store.list_alerts(db)
    reasons = {a.check: a.suppressed_reason for a in alerts}
    # Flapping comes first, even inside a maintenance window; a page already sent stands.
    assert reasons == {"api": "suppressed: flapping", "web": "suppressed: flapping", "db": None}


async def test_silencing_an_alert_is_recorded_in_its_history_with_the_silence(
    db: Database,
) -> None:
    world = World(db, Config.model_validate({"checks": [tcp("api")], "notifications": hooks("o")}))
    silence = await create_silence(db, [parse_matcher("check=api")], T0, T0 + HOUR, "al", "", T0)
    await world.down("api")
    await world.at(timedelta(0))
    (alert,), _ = await alert_store.list_alerts(db)
    found = await alert_store.get_alert(db, alert.id)
    assert found is not None
    assert [(e.kind, e.at, e.comment) for e in found[1] if e.kind == "silenced"] == [
        ("silenced", T0, silence.id)
    ]
