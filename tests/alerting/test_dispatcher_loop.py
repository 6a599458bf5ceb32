"""The dispatcher itself (`alerting/dispatcher.py`): its running loop on the injected clock,
what a pass tells the runtime (`on_pass`, `on_enqueued`), a failing pass, and settings
taken in from a reloaded config file. The stages have their own tests next to this one."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.support.clock import FakeClock, until_parked
from tests.test_dispatcher import ESCALATION, T0, World, hooks, tcp
from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.broken import BrokenObjects
from watchkeeper.alerting.config import AlertingConfig, EscalationPolicy
from watchkeeper.alerting.dependencies import DependencyGraph
from watchkeeper.alerting.dispatch.targets import Routing
from watchkeeper.alerting.dispatcher import Dispatcher, build_dispatcher
from watchkeeper.alerting.external import ExternalAlert
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.alerting.matchers import parse_matcher
from watchkeeper.alerting.silences import create_silence
from watchkeeper.alerting.stored_windows import save_window
from watchkeeper.config.loader import Config
from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.domain import Severity, Status
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import tables
from watchkeeper.store.database import Database

IDLE = 5.0  # seconds: the dispatcher's pass when nothing falls due


async def stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def rename_table(db: Database, old: str, new: str) -> None:
    async with db.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


class Told:
    """The instants at which a dispatcher called `on_pass` and `on_enqueued` (a pass may wake
    the outbox twice: once its first pages are queued, again for the rest; one instant each)."""

    def __init__(self, world: World) -> None:
        self.passes: list[timedelta] = []
        self.enqueued: list[timedelta] = []
        clock = world.clock
        world.dispatcher = build_dispatcher(
            world.db,
            clock,
            world.config,
            states=world.states,
            on_pass=lambda: self.passes.append(clock.now() - T0),
            on_enqueued=self._enqueued,
        )
        self._clock = clock

    def _enqueued(self) -> None:
        at = self._clock.now() - T0
        if not self.enqueued or self.enqueued[-1] != at:
            self.enqueued.append(at)


async def test_a_pass_refused_by_storage_is_logged_told_and_retried_after_the_idle_time(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    config = {"checks": [tcp("api")], "notifications": hooks("ops")}
    world = World(db, Config.model_validate(config))
    told = Told(world)
    clock = world.clock
    await world.down("api")
    await rename_table(db, "outbox", "outbox_away")  # the first page cannot be queued
    task = asyncio.create_task(world.dispatcher.run())
    try:
        await until_parked(clock)
        [record] = [r for r in caplog.records if r.name == "watchkeeper.core.loops"]
        assert record.getMessage() == "dispatching notifications failed; will retry"
        assert record.exc_info is not None
        # A database error stops the pass (retried whole), it does not mark the alert broken;
        # live views are told even so, and nothing was queued.
        assert world.dispatcher.broken.all() == []
        assert told.passes == [timedelta(0)] and told.enqueued == []
        assert clock.next_deadline == pytest.approx(IDLE)

        await rename_table(db, "outbox_away", "outbox")
        clock.advance(IDLE)
        await until_parked(clock, after=1)
        assert await world.sent() == [("ops", "alert.firing")]
        assert told.passes == [timedelta(0), timedelta(seconds=5)]
        assert told.enqueued == [timedelta(seconds=5)]
        assert clock.next_deadline == pytest.approx(IDLE)  # nothing more falls due

        # The same for the resolution notice, written while handling the alert itself.
        async with db.begin() as conn:
            await lifecycle.resolve(conn, "check:api", clock.now())
        await rename_table(db, "outbox", "outbox_away")
        world.dispatcher.wake()
        await until_parked(clock, after=2)
        records = [r for r in caplog.records if r.name == "watchkeeper.core.loops"]
        assert len(records) == 2 and world.dispatcher.broken.all() == []
        await rename_table(db, "outbox_away", "outbox")
        clock.advance(IDLE)
        await until_parked(clock, after=3)
        assert await world.sent() == [("ops", "alert.firing"), ("ops", "alert.resolved")]
        assert told.enqueued == [timedelta(seconds=5), timedelta(seconds=10)]
    finally:
        await stop(task)


async def test_a_pass_that_queues_nothing_does_not_wake_the_outbox(db: Database) -> None:
    config = {
        **ESCALATION,
        "checks": [tcp("api"), tcp("db"), tcp("web")],
        "alerting": {"default_escalation": "default", "group_wait": "1m"},
    }
    world = World(db, Config.model_validate(config))
    told = Told(world)
    await world.down("api")
    assert await world.at(timedelta(minutes=1)) == [("a", "alert.firing")]
    assert told.enqueued == [timedelta(minutes=1)]
    # At 2 minutes: api's next step is not due, db waits for group_wait, web is silenced.
    world.clock.set(T0 + timedelta(minutes=2))
    await create_silence(db, [parse_matcher("check=web")], T0, T0 + timedelta(hours=1), "a", "", T0)
    await world.down("db")
    await world.down("web")
    assert await world.dispatcher.dispatch_once() == T0 + timedelta(minutes=3)
    assert await world.sent() == [("a", "alert.firing")]
    assert told.enqueued == [timedelta(minutes=1)]


async def test_the_outbox_is_woken_for_what_a_pass_queued_in_all(db: Database) -> None:
    """Entries are counted from alerts handled one by one, first pages and digests alike."""
    pager = {**hooks("pager")[0], "max_per_hour": 1, "digest_interval": "15m"}
    config = {
        "checks": [
            tcp("api"),
            tcp("db"),
            tcp("mute", notify=[]),
            tcp("web"),
            tcp("cron", notify=["pager"]),
            tcp("batch", notify=["pager"]),
        ],
        "notifications": [*hooks("ops"), pager],
        "alerting": {"routes": [{"notify": ["ops"]}]},
    }
    world = World(db, Config.model_validate(config))
    told = Told(world)
    await world.down("api")
    await world.down("db")
    await world.at(timedelta(0))
    assert told.enqueued == [timedelta(0)]

    # api's resolution notice (one entry), then mute's first page to nobody (none).
    world.clock.set(T0 + timedelta(minutes=1))
    async with db.begin() as conn:
        await lifecycle.resolve(conn, "check:api", world.clock.now())
    await world.down("mute")
    assert await world.at(timedelta(minutes=1)) == [
        ("ops", "alert.firing"),
        ("ops", "alert.firing"),
        ("ops", "alert.resolved"),
    ]
    assert told.enqueued == [timedelta(0), timedelta(minutes=1)]

    # db's acknowledgement notice (one), web's first page (one).
    world.clock.set(T0 + timedelta(minutes=2))
    (db_alert,), _ = await alert_store.list_alerts(db, check="db")
    async with db.begin() as conn:
        await lifecycle.acknowledge(conn, db_alert.id, "alice", None, world.clock.now())
    await world.down("web")
    assert len(await world.at(timedelta(minutes=2))) == 5
    assert told.enqueued == [timedelta(0), timedelta(minutes=1), timedelta(minutes=2)]

    # cron's page to the pager (one); then batch's, held over the pager's limit (one,
    # a held entry is queued too) and the digest that counts it (one).
    world.clock.set(T0 + timedelta(minutes=3))
    await world.down("cron")
    assert (await world.at(timedelta(minutes=3))).count(("pager", "alert.firing")) == 1
    world.clock.set(T0 + timedelta(minutes=4))
    await world.down("batch")
    sent = await world.at(timedelta(minutes=4))
    assert sent.count(("pager", "alert.firing")) == 2
    assert sent.count(("pager", "notifications.digest")) == 1
    assert told.enqueued == [timedelta(minutes=m) for m in range(5)]


RELOADED: dict[str, Any] = {
    "checks": [
        tcp("api"),
        tcp("web", severity="high"),
        tcp("batch", component="storage"),
        tcp("cron"),
    ],
    "notifications": hooks("ops"),
}


async def test_settings_from_a_reloaded_file_decide_the_pass_they_wake(db: Database) -> None:
    world = World(db, Config.model_validate(RELOADED))
    clock = world.clock
    task = asyncio.create_task(world.dispatcher.run())
    try:
        await until_parked(clock)
        for name in ("api", "web", "batch", "cron"):
            await world.down(name)  # the loop is not woken: it idles
        parks = clock.parks
        pager = {**hooks("pager")[0], "max_per_hour": 1, "digest_interval": "15m"}
        world.dispatcher.use_settings(
            Config.model_validate(
                {
                    **RELOADED,
                    "notifications": [*hooks("ops"), pager],
                    "alerting": {
                        "routes": [{"matchers": ["check=api"], "notify": ["pager"]}],
                        "inhibit_rules": [
                            {"source_match": ["check=api"], "target_match": ["check=web"]}
                        ],
                    },
                    "maintenance": [
                        {
                            "name": "deploy",
                            "starts_at": "2026-07-01T08:30:00Z",
                            "ends_at": "2026-07-01T10:00:00Z",
                            "components": ["storage"],
                        }
                    ],
                }
            )
        )
        await until_parked(clock, after=parks)  # the new settings woke the loop
        assert clock.now() == T0
        entries = await outbox_store.list_entries(db, limit=100)
        firing = sorted(
            (e.channel, e.payload["alert"]["check"], str(e.status))
            for e in entries
            if e.event == "alert.firing"
        )
        # api by the new route; cron by no route: every channel of the new list, and the
        # pager's hourly limit (one) holds whichever of the two came second.
        assert [(c, name) for c, name, _ in firing] == [
            ("ops", "cron"),
            ("pager", "api"),
            ("pager", "cron"),
        ]
        assert sorted(status for c, _, status in firing if c == "pager") == [
            "digested",
            "pending",
        ]
        (web,), _ = await alert_store.list_alerts(db, check="web")
        assert web.suppressed_reason == "suppressed: inhibited by api"
        (batch,), _ = await alert_store.list_alerts(db, check="batch")
        assert batch.suppressed_reason == "suppressed: maintenance deploy"
    finally:
        await stop(task)


# -- built by hand: what the constructor assumes when told nothing -----------------------------


async def fire_check_alert(db: Database, check: str) -> None:
    async with db.begin() as conn:
        await lifecycle.fire(
            conn,
            lifecycle.AlertSpec(
                fingerprint=f"check:{check}",
                name=f"{check} down",
                severity=Severity.CRITICAL,
                summary=f"{check} refused",
                check=check,
            ),
            T0,
        )


async def test_a_dispatcher_built_by_hand_escalates_by_the_policies_it_is_given(
    db: Database,
) -> None:
    steps = [{"notify": ["a"]}, {"after": "10m", "notify": ["b"]}]
    dispatcher = Dispatcher(
        db,
        FakeClock(T0),
        config=AlertingConfig.model_validate({"default_escalation": "p"}),
        policies={"p": EscalationPolicy.model_validate({"name": "p", "steps": steps})},
        routing=Routing(["a", "b", "c"]),
    )
    await fire_check_alert(db, "api")  # no dependency graph given: nothing blocks it
    await dispatcher.dispatch_once()
    assert await dispatcher.dispatch_once() == T0 + timedelta(minutes=10)  # the next step
    assert [(e.channel, e.event) for e in await outbox_store.list_entries(db)] == [
        ("a", "alert.firing")
    ]
    assert dispatcher.broken.all() == []


async def test_a_dependency_whose_state_is_unknown_blocks_nothing(db: Database) -> None:
    config = Config.model_validate(
        {"checks": [tcp("api", depends_on=["db"]), tcp("db")], "notifications": hooks("ops")}
    )
    # No check states given (none known yet, as before the first results): api pages.
    dispatcher = build_dispatcher(db, FakeClock(T0), config)
    await fire_check_alert(db, "api")
    await dispatcher.dispatch_once()
    assert [(e.channel, e.event) for e in await outbox_store.list_entries(db)] == [
        ("ops", "alert.firing")
    ]


async def test_a_dispatcher_built_by_hand_holds_alerts_by_the_graph_it_is_given(
    db: Database,
) -> None:
    dispatcher = Dispatcher(
        db,
        FakeClock(T0),
        config=AlertingConfig(),
        policies={},
        routing=Routing(["ops"]),
        states={"db": CheckState("db", Status.DOWN, T0)},
        dependencies=DependencyGraph({"api": ["db"]}),
    )
    await fire_check_alert(db, "api")
    assert await dispatcher.dispatch_once() is None
    assert await outbox_store.list_entries(db) == []
    (api,), _ = await alert_store.list_alerts(db)
    assert api.suppressed_reason == "suppressed: db down"


async def test_a_rule_alert_pages_whom_the_rule_names(db: Database) -> None:
    config = Config.model_validate(
        {
            "notifications": hooks("ops", "pager"),
            "rules": [{"name": "queue-deep", "metric": "queue_depth", "threshold": 100}],
        }
    )
    rule = config.rules[0].model_copy(update={"notify": ["pager"]})
    dispatcher = build_dispatcher(db, FakeClock(T0), config, rules=[rule])
    async with db.begin() as conn:
        await lifecycle.fire(
            conn,
            lifecycle.AlertSpec(
                fingerprint="rule:queue-deep",
                name="queue-deep",
                severity=Severity.MEDIUM,
                summary="queue_depth 250 > 100",
                source="rule",
                rule="queue-deep",
            ),
            T0,
        )
    await dispatcher.dispatch_once()
    assert [(e.channel, e.event) for e in await outbox_store.list_entries(db)] == [
        ("pager", "alert.firing")
    ]


async def test_checks_and_policies_given_to_build_dispatcher_replace_the_files(
    db: Database,
) -> None:
    """The runtime passes the config file's checks and policies with those managed over the
    API added: those are what a pass routes and escalates by."""
    config = Config.model_validate({"checks": [tcp("api")], "notifications": hooks("ops", "a")})
    steps = [{"notify": ["a"]}]
    dispatcher = build_dispatcher(
        db,
        FakeClock(T0),
        config,
        checks=[config.checks[0].model_copy(update={"notify": ["a"]})],
        policies=[EscalationPolicy.model_validate({"name": "managed", "steps": steps})],
    )
    await fire_check_alert(db, "api")
    async with db.begin() as conn:
        spec = ExternalAlert(name="far", severity=Severity.HIGH, escalation="managed").spec()
        await lifecycle.fire(conn, spec, T0)
    await dispatcher.dispatch_once()
    assert [(e.channel, e.event) for e in await outbox_store.list_entries(db)] == [
        ("a", "alert.firing"),
        ("a", "alert.firing"),
    ]


# -- what a pass cannot evaluate ---------------------------------------------------------------

EVERYTHING = [{"name": "severity", "value": ".+", "isRegex": True, "isEqual": True}]
END_OF_TIME = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)


async def plant_silence(db: Database, starts_at: datetime, ends_at: datetime) -> str:
    """A silence row as stored before silences were bounded (longer than 365 days)."""
    silence_id = str(uuid.uuid4())
    async with db.begin() as conn:
        await conn.execute(
            tables.silences.insert().values(
                id=silence_id,
                matchers=EVERYTHING,
                starts_at=starts_at,
                ends_at=ends_at,
                created_by="old",
                comment="shh",
                created_at=starts_at,
            )
        )
    return silence_id


async def test_what_a_pass_cannot_evaluate_is_reported_and_everything_else_decided(
    db: Database,
) -> None:
    config = {
        "checks": [tcp("api"), tcp("batch", component="storage"), tcp("late")],
        "notifications": hooks("ops"),
        "alerting": {"group_wait": "1m", "auto_resolve_after": "10m"},
    }
    world = World(db, Config.model_validate(config))
    forever = await plant_silence(db, datetime(2000, 1, 1, tzinfo=UTC), END_OF_TIME)
    # Just as broken, but over before this pass: not read, so not reported.
    await plant_silence(db, datetime(2000, 1, 1, tzinfo=UTC), datetime(2001, 6, 1, tzinfo=UTC))
    async with db.begin() as conn:
        await conn.execute(
            tables.maintenance_windows.insert().values(
                name="forever",
                definition={"name": "forever", "schedule": "* * * * *", "duration": "999999d"},
                created_by="old",
                created_at=T0,
            )
        )
    await save_window(
        db,
        MaintenanceWindow.model_validate(
            {
                "name": "deploy",
                "starts_at": "2026-07-01T08:30:00Z",
                "ends_at": "2026-07-01T10:00:00Z",
                "components": ["storage"],
            }
        ),
        "alice",
        T0,
    )
    await world.down("api")
    await world.down("batch")
    async with db.begin() as conn:
        # Rows from a source whose clock ran to the end of time: their deadlines overflow,
        # the auto-resolve while handling the alert, the group_wait when paging its group.
        await lifecycle.fire(
            conn, ExternalAlert(name="far", severity=Severity.HIGH).spec(), END_OF_TIME
        )
        await lifecycle.fire(
            conn,
            lifecycle.AlertSpec(
                fingerprint="check:late",
                name="late down",
                severity=Severity.CRITICAL,
                summary="late refused",
                check="late",
            ),
            END_OF_TIME,
        )
    assert await world.at(timedelta(minutes=1)) == [("ops", "alert.firing")]
    assert [e.payload["alert"]["check"] for e in await outbox_store.list_entries(db)] == ["api"]
    (batch,), _ = await alert_store.list_alerts(db, check="batch")
    assert batch.suppressed_reason == "suppressed: maintenance deploy"

    broken = world.dispatcher.broken
    (far,), _ = await alert_store.list_alerts(db, source="external")
    overflow = "OverflowError: date value out of range"
    assert {(b.kind, b.name, b.error) for b in broken.all()} == {
        ("silence", forever, "ends_at: a silence lasts at most 365d after it starts"),
        ("maintenance", "forever", "duration: must be at most 365d"),
        ("alert", far.fingerprint, overflow),
        ("alert", "check:late", overflow),
    }
    assert {b.since for b in broken.all()} == {T0 + timedelta(minutes=1)}


class SelfAlertsFailing(BrokenObjects):
    async def sync_alerts(self, db: Database, now: datetime) -> None:
        raise RuntimeError("self-alerts unavailable")


async def test_a_pass_goes_on_when_self_alerts_cannot_be_raised(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    config = Config.model_validate({"checks": [tcp("api")], "notifications": hooks("ops")})
    world = World(db, config)
    world.dispatcher = build_dispatcher(
        db, world.clock, config, states=world.states, broken=SelfAlertsFailing()
    )
    await world.down("api")
    assert await world.at(timedelta(0)) == [("ops", "alert.firing")]
    [record] = [r for r in caplog.records if r.name == "watchkeeper.alerting.dispatcher"]
    assert record.getMessage() == "raising or resolving alerts about broken objects failed"
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


async def test_a_resolution_goes_to_todays_routing_for_a_page_stored_without_its_channels(
    db: Database,
) -> None:
    config = {"checks": [tcp("api")], "notifications": hooks("ops")}
    world = World(db, Config.model_validate(config))
    await world.down("api")
    assert await world.at(timedelta(0)) == [("ops", "alert.firing")]
    async with db.begin() as conn:  # a row from before the paged channels were recorded
        await conn.execute(tables.alerts.update().values(paged_channels=None))
        await lifecycle.resolve(conn, "check:api", T0 + timedelta(minutes=1))
    assert await world.at(timedelta(minutes=1)) == [
        ("ops", "alert.firing"),
        ("ops", "alert.resolved"),
    ]
    assert world.dispatcher.broken.all() == []
