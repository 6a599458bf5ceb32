"""Who hears what, when: grouping, silences, escalation and acknowledgement (injected clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.clock import FakeClock
from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.check_alerts import CheckAlerts
from watchkeeper.alerting.dispatcher import Dispatcher, build_dispatcher
from watchkeeper.alerting.matchers import parse_matcher
from watchkeeper.alerting.silences import create_silence, expire_silence
from watchkeeper.config.loader import Config
from watchkeeper.core.checkstate import CheckState, Transition
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def tcp(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "tcp", "host": "127.0.0.1", "port": 9, **extra}


def hooks(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "type": "webhook", "url": f"http://127.0.0.1:9/{n}"} for n in names]


class World:
    """A database, a clock, check alerts and a dispatcher, as the runtime wires them."""

    def __init__(self, db: Database, config: Config, clock: FakeClock | None = None) -> None:
        self.db, self.config = db, config
        self.clock = clock or FakeClock(T0)
        self.states: dict[str, CheckState] = {}
        self.alerts = CheckAlerts(db, {c.name: c for c in config.checks})
        self.dispatcher = self.new_dispatcher()

    def new_dispatcher(self) -> Dispatcher:
        return build_dispatcher(self.db, self.clock, self.config, states=self.states)

    async def down(self, name: str) -> None:
        state = self.states[name] = CheckState(name, Status.DOWN, self.clock.now())
        result = CheckResult.down(f"{name} refused")
        await self.alerts.on_transition(
            Transition(name, Status.UP, Status.DOWN, self.clock.now(), result), state
        )

    async def at(self, offset: timedelta) -> list[tuple[str, str]]:
        """Move the clock to T0 + offset, run a pass, return every (channel, key) queued."""
        self.clock.set(T0 + offset)
        await self.dispatcher.dispatch_once()
        return await self.sent()

    async def sent(self) -> list[tuple[str, str]]:
        rows = await outbox_store.list_entries(self.db, limit=1000)
        return sorted((r.channel, r.event) for r in rows)


async def test_fifty_checks_failing_together_become_one_grouped_notification(db: Database) -> None:
    config = Config.model_validate(
        {
            "checks": [tcp(f"svc{i:02}") for i in range(50)],
            "notifications": hooks("ops"),
            "alerting": {"group_by": ["severity"], "group_wait": "10s"},
        }
    )
    world = World(db, config)
    for i in range(50):
        await world.down(f"svc{i:02}")
    assert await world.at(timedelta(seconds=9)) == []  # still inside group_wait
    assert await world.at(timedelta(seconds=10)) == [("ops", "alert.firing")]
    [entry] = await outbox_store.list_entries(db)
    assert len(entry.payload["alerts"]) == 50
    assert entry.payload["group"]["labels"] == {"severity": "critical"}
    assert entry.payload["group"]["count"] == 50
    assert entry.idempotency_key.startswith("group:")
    # A 51st alert joining the group waits for group_interval (default 5m) after the last page.
    config51 = Config.model_validate(
        {**config.model_dump(mode="json", exclude={"checks"}), "checks": [tcp("late")]}
    )
    world.alerts = CheckAlerts(db, {c.name: c for c in config51.checks})
    await world.down("late")
    assert len(await world.at(timedelta(minutes=4))) == 1
    assert len(await world.at(timedelta(minutes=5, seconds=10))) == 2


async def test_a_silenced_alert_is_listed_as_silenced_and_pages_when_the_silence_ends(
    db: Database,
) -> None:
    config = Config.model_validate(
        {"checks": [tcp("api"), tcp("db")], "notifications": hooks("ops")}
    )
    world = World(db, config)
    silence = await create_silence(
        db,
        [parse_matcher("check=api"), parse_matcher("severity=~crit.*")],
        T0,
        T0 + timedelta(hours=1),
        "alice",
        "deploying",
        T0,
    )
    await world.down("api")
    await world.down("db")
    assert await world.at(timedelta(0)) == [("ops", "alert.firing")]  # db only
    (api,), _ = await alert_store.list_alerts(db, check="api")
    assert api.silenced_by == silence.id and api.notified_at is None

    # Ending the silence early, the alert still firing: now it pages.
    world.clock.set(T0 + timedelta(minutes=20))
    await expire_silence(db, silence.id, world.clock.now())
    assert await world.at(timedelta(minutes=20)) == [("ops", "alert.firing")] * 2
    (api,), _ = await alert_store.list_alerts(db, check="api")
    assert api.silenced_by is None and api.notified_at == T0 + timedelta(minutes=20)


async def test_an_alert_that_resolves_while_silenced_pages_nobody(db: Database) -> None:
    config = Config.model_validate({"checks": [tcp("api")], "notifications": hooks("ops")})
    world = World(db, config)
    await create_silence(db, [parse_matcher("check=api")], T0, T0 + timedelta(hours=1), "a", "", T0)
    await world.down("api")
    await world.at(timedelta(0))
    async with db.begin() as conn:
        await lifecycle.resolve(conn, "check:api", T0 + timedelta(minutes=1))
    assert await world.at(timedelta(hours=2)) == []


ESCALATION = {
    "checks": [tcp("api")],
    "notifications": hooks("a", "b"),
    "escalation": [
        {"name": "default", "steps": [{"notify": ["a"]}, {"after": "10m", "notify": ["b"]}]}
    ],
    "alerting": {"default_escalation": "default"},
}


async def test_without_an_ack_the_second_step_is_paged_at_10_minutes(db: Database) -> None:
    world = World(db, Config.model_validate(ESCALATION))
    await world.down("api")
    assert await world.at(timedelta(0)) == [("a", "alert.firing")]
    assert await world.at(timedelta(minutes=9, seconds=59)) == [("a", "alert.firing")]
    assert await world.at(timedelta(minutes=10)) == [
        ("a", "alert.firing"),
        ("b", "alert.escalated"),
    ]


async def test_an_ack_at_5_minutes_means_the_second_step_is_never_paged(db: Database) -> None:
    world = World(db, Config.model_validate(ESCALATION))
    await world.down("api")
    await world.at(timedelta(0))
    (alert,), _ = await alert_store.list_alerts(db)
    world.clock.set(T0 + timedelta(minutes=5))
    async with db.begin() as conn:
        await lifecycle.acknowledge(conn, alert.id, "alice", "on it", world.clock.now())
    assert await world.at(timedelta(minutes=5)) == [
        ("a", "alert.acknowledged"),
        ("a", "alert.firing"),
    ]
    assert await world.at(timedelta(hours=3)) == [
        ("a", "alert.acknowledged"),
        ("a", "alert.firing"),
    ]
    [ack] = [e for e in await outbox_store.list_entries(db) if e.event == "alert.acknowledged"]
    assert ack.payload["alert"]["acknowledged_by"] == "alice"


async def test_a_restart_at_7_minutes_still_pages_the_second_step_at_10_not_17(
    db: Database,
) -> None:
    world = World(db, Config.model_validate(ESCALATION))
    await world.down("api")
    await world.at(timedelta(0))
    # The process dies at 7 minutes; a new dispatcher reads everything from the database.
    world.clock.set(T0 + timedelta(minutes=7))
    world.dispatcher = world.new_dispatcher()
    assert await world.dispatcher.dispatch_once() == T0 + timedelta(minutes=10)
    assert await world.at(timedelta(minutes=10)) == [
        ("a", "alert.firing"),
        ("b", "alert.escalated"),
    ]


async def test_resolution_notifies_everyone_who_was_paged(db: Database) -> None:
    world = World(db, Config.model_validate(ESCALATION))
    await world.down("api")
    await world.at(timedelta(0))
    await world.at(timedelta(minutes=10))
    async with db.begin() as conn:
        await lifecycle.resolve(conn, "check:api", T0 + timedelta(minutes=12))
    sent = await world.at(timedelta(minutes=12))
    assert ("a", "alert.resolved") in sent and ("b", "alert.resolved") in sent


async def test_repeat_pages_the_last_step_again_until_acknowledged(db: Database) -> None:
    config = {**ESCALATION, "escalation": [{**ESCALATION["escalation"][0], "repeat": "30m"}]}
    world = World(db, Config.model_validate(config))
    await world.down("api")
    await world.at(timedelta(0))
    await world.at(timedelta(minutes=10))
    sent = await world.at(timedelta(minutes=40))
    assert sent.count(("b", "alert.escalated")) == 2


async def test_maintenance_holds_alerts_and_still_failing_checks_page_when_it_ends(
    db: Database,
) -> None:
    config = Config.model_validate(
        {
            "checks": [tcp("api", component="API"), tcp("db")],
            "notifications": hooks("ops"),
            "maintenance": [
                {
                    "name": "deploy",
                    "starts_at": "2026-07-01T08:30:00Z",
                    "ends_at": "2026-07-01T10:00:00Z",
                    "components": ["API"],
                }
            ],
        }
    )
    world = World(db, config)
    await world.down("api")
    await world.down("db")
    assert await world.at(timedelta(0)) == [("ops", "alert.firing")]  # db only
    (api,), _ = await alert_store.list_alerts(db, check="api")
    assert api.suppressed_reason == "suppressed: maintenance deploy"
    assert await world.dispatcher.dispatch_once() == T0 + timedelta(hours=1)  # the window's end
    assert await world.at(timedelta(hours=1)) == [("ops", "alert.firing")] * 2


async def test_an_inhibit_rule_mutes_lesser_alerts_on_the_same_component(db: Database) -> None:
    config = Config.model_validate(
        {
            "checks": [
                tcp("db", component="storage"),
                tcp("replica", component="storage", severity="high"),
                tcp("web", component="frontend", severity="high"),
            ],
            "notifications": hooks("ops"),
            "alerting": {
                "inhibit_rules": [
                    {
                        "source_match": ["check=db", "severity=critical"],
                        "target_match": ["severity=high"],
                        "equal": ["component"],
                    }
                ]
            },
        }
    )
    world = World(db, config)
    for name in ("db", "replica", "web"):
        await world.down(name)
    await world.at(timedelta(0))
    paged = sorted(e.payload["alert"]["check"] for e in await outbox_store.list_entries(db))
    assert paged == ["db", "web"]
    (replica,), _ = await alert_store.list_alerts(db, check="replica")
    assert replica.suppressed_reason == "suppressed: inhibited by db"


async def test_routes_send_alerts_by_label_and_continue_adds_more(db: Database) -> None:
    config = Config.model_validate(
        {
            "checks": [tcp("api"), tcp("batch", severity="low"), tcp("mail", notify=["chat"])],
            "notifications": hooks("pager", "chat", "email"),
            "alerting": {
                "routes": [
                    {"matchers": ["severity=critical"], "notify": ["pager"], "continue": True},
                    {"matchers": ["severity=~critical|high"], "notify": ["chat"]},
                    {"notify": ["email"]},
                ]
            },
        }
    )
    world = World(db, config)
    for name in ("api", "batch", "mail"):
        await world.down(name)
    await world.at(timedelta(0))
    sent = sorted(
        (e.payload["alert"]["check"], e.channel) for e in await outbox_store.list_entries(db)
    )
    # mail's own notify wins over the tree.
    assert sent == [("api", "chat"), ("api", "pager"), ("batch", "email"), ("mail", "chat")]


async def test_repeat_interval_pages_again_until_acknowledged(db: Database) -> None:
    config = Config.model_validate(
        {
            "checks": [tcp("api")],
            "notifications": hooks("ops"),
            "alerting": {"repeat_interval": "1h"},
        }
    )
    world = World(db, config)
    await world.down("api")
    await world.at(timedelta(0))
    assert len(await world.at(timedelta(minutes=59))) == 1
    assert len(await world.at(timedelta(hours=1))) == 2
    (alert,), _ = await alert_store.list_alerts(db)
    async with db.begin() as conn:
        await lifecycle.acknowledge(conn, alert.id, "bob", None, T0 + timedelta(hours=1, minutes=1))
    sent = await world.at(timedelta(hours=5))
    assert [e for _, e in sent].count("alert.firing") == 2


async def test_over_max_per_hour_a_digest_counts_what_was_held(db: Database) -> None:
    config = Config.model_validate(
        {
            "checks": [tcp(f"svc{i}") for i in range(12)],
            "notifications": [
                {**hooks("ops")[0], "max_per_hour": 3, "digest_interval": "15m"},
                *hooks("audit"),
            ],
        }
    )
    world = World(db, config)
    for i in range(10):
        await world.down(f"svc{i}")
    await world.at(timedelta(0))
    entries = await outbox_store.list_entries(db, limit=100)
    ops = [e for e in entries if e.channel == "ops"]
    assert (
        sorted(e.status for e in ops if e.event == "alert.firing")
        == ["digested"] * 7 + ["pending"] * 3
    )
    (digest,) = [e for e in ops if e.event == "notifications.digest"]
    assert digest.payload["digest"]["suppressed"] == 7
    assert digest.payload["digest"]["events"] == {"alert.firing": 7}
    assert len([e for e in entries if e.channel == "audit"]) == 10  # unlimited channel

    # Two more while still over the limit: held until the next digest, 15 minutes later.
    world.clock.set(T0 + timedelta(minutes=1))
    await world.down("svc10")
    await world.down("svc11")
    await world.at(timedelta(minutes=1))
    assert await world.dispatcher.dispatch_once() == T0 + timedelta(minutes=15)
    await world.at(timedelta(minutes=15))
    digests = [
        e
        for e in await outbox_store.list_entries(db, limit=100)
        if e.event == "notifications.digest"
    ]
    assert sorted(d.payload["digest"]["suppressed"] for d in digests) == [2, 7]


async def test_external_alerts_auto_resolve_when_not_re_sent(db: Database) -> None:
    from watchkeeper.alerting.external import ExternalAlert

    config = Config.model_validate(
        {"notifications": hooks("ops"), "alerting": {"auto_resolve_after": "10m"}}
    )
    world = World(db, config)
    spec = ExternalAlert(name="queue-backlog", severity="high").spec()
    async with db.begin() as conn:
        await lifecycle.fire(conn, spec, T0)
    await world.at(timedelta(0))
    world.clock.set(T0 + timedelta(minutes=8))
    async with db.begin() as conn:
        await lifecycle.fire(conn, spec, world.clock.now())  # the source says it again
    assert await world.at(timedelta(minutes=17)) == [("ops", "alert.firing")]
    assert await world.at(timedelta(minutes=18)) == [
        ("ops", "alert.firing"),
        ("ops", "alert.resolved"),
    ]


async def test_a_third_step_is_timed_from_the_first_page_even_when_the_second_came_late(
    db: Database,
) -> None:
    config = {
        **ESCALATION,
        "notifications": hooks("a", "b", "c"),
        "escalation": [
            {
                "name": "default",
                "steps": [
                    {"notify": ["a"]},
                    {"after": "10m", "notify": ["b"]},
                    {"after": "30m", "notify": ["c"]},
                ],
            }
        ],
    }
    world = World(db, Config.model_validate(config))
    await world.down("api")
    await world.at(timedelta(0))
    # The pass for step 2 runs two minutes late (a restart, a slow database).
    sent = await world.at(timedelta(minutes=12))
    assert ("b", "alert.escalated") in sent
    assert await world.dispatcher.dispatch_once() == T0 + timedelta(minutes=30)
    assert ("c", "alert.escalated") not in await world.at(timedelta(minutes=29, seconds=59))
    assert await world.at(timedelta(minutes=30)) == [
        ("a", "alert.firing"),
        ("b", "alert.escalated"),
        ("c", "alert.escalated"),
    ]
    (alert,), _ = await alert_store.list_alerts(db)
    assert alert.escalation_step == 2 and alert.next_escalation_at is None


# -- negative matchers (!=, !~) in silences, routes and inhibit rules ---------------------------


async def paged_checks(db: Database) -> list[str]:
    return sorted(e.payload["alert"]["check"] for e in await outbox_store.list_entries(db))


async def test_a_silence_with_negative_matchers_silences_only_what_they_leave(
    db: Database,
) -> None:
    config = Config.model_validate(
        {
            "checks": [tcp("api"), tcp("db"), tcp("batch", severity="low")],
            "notifications": hooks("ops"),
        }
    )
    world = World(db, config)
    matchers = [parse_matcher("check!=db"), parse_matcher("severity!~low|info")]
    silence = await create_silence(db, matchers, T0, T0 + timedelta(hours=1), "a", "", T0)
    for name in ("api", "db", "batch"):
        await world.down(name)
    await world.at(timedelta(0))
    assert await paged_checks(db) == ["batch", "db"]
    (api,), _ = await alert_store.list_alerts(db, check="api")
    assert api.silenced_by == silence.id


async def test_routes_with_negative_matchers_send_each_alert_where_they_say(
    db: Database,
) -> None:
    config = Config.model_validate(
        {
            "checks": [tcp("api"), tcp("batch", severity="low"), tcp("db")],
            "notifications": hooks("pager", "chat", "email"),
            "alerting": {
                "routes": [
                    {"matchers": ["severity!=critical"], "notify": ["chat"]},
                    {"matchers": ["check!~db|cache"], "notify": ["pager"]},
                    {"notify": ["email"]},
                ]
            },
        }
    )
    world = World(db, config)
    for name in ("api", "batch", "db"):
        await world.down(name)
    await world.at(timedelta(0))
    sent = sorted(
        (e.payload["alert"]["check"], e.channel) for e in await outbox_store.list_entries(db)
    )
    assert sent == [("api", "pager"), ("batch", "chat"), ("db", "email")]


async def test_an_inhibit_rule_with_negative_target_matchers_spares_what_they_exclude(
    db: Database,
) -> None:
    config = Config.model_validate(
        {
            "checks": [
                tcp("db", component="storage"),
                tcp("replica", component="storage", severity="high"),
                tcp("cache", component="storage"),
                tcp("web", component="frontend", severity="high"),
            ],
            "notifications": hooks("ops"),
            "alerting": {
                "inhibit_rules": [
                    {
                        "source_match": ["check=db"],
                        "target_match": ["check!=db", "severity!~crit.*"],
                        "equal": ["component"],
                    }
                ]
            },
        }
    )
    world = World(db, config)
    for name in ("db", "replica", "cache", "web"):
        await world.down(name)
    await world.at(timedelta(0))
    assert await paged_checks(db) == ["cache", "db", "web"]
    (replica,), _ = await alert_store.list_alerts(db, check="replica")
    assert replica.suppressed_reason == "suppressed: inhibited by db"


async def test_the_hourly_limit_is_a_sliding_hour(db: Database) -> None:
    config = Config.model_validate(
        {
            "checks": [tcp(f"svc{i}") for i in range(6)],
            "notifications": [{**hooks("ops")[0], "max_per_hour": 3, "digest_interval": "15m"}],
        }
    )
    world = World(db, config)

    async def page(name: str, at: timedelta) -> str:
        world.clock.set(T0 + at)
        await world.down(name)
        await world.at(at)
        [entry] = [
            e
            for e in await outbox_store.list_entries(db, limit=100)
            if e.event == "alert.firing" and e.payload["alert"]["check"] == name
        ]
        return str(entry.status)

    for i in range(3):
        assert await page(f"svc{i}", timedelta(0)) == "pending"
    assert await page("svc3", timedelta(minutes=30)) in ("held", "digested")
    # The first three are still inside the hour one second before it ends …
    assert await page("svc4", timedelta(minutes=59, seconds=59)) in ("held", "digested")
    # … and out of it at the hour: the limit counts the last hour, not all time.
    assert await page("svc5", timedelta(hours=1)) == "pending"


async def test_a_new_alerts_page_is_handed_over_before_the_open_alerts_are_looked_at(
    sqlite_db: Database,
) -> None:
    """The first page of a new alert leaves (the outbox is woken) before the pass goes over
    the alerts already paged: its latency does not grow with the number of open alerts."""
    from watchkeeper.alerting.external import ExternalAlert

    config = Config.model_validate({"notifications": hooks("ops")})
    seen: list[str] = []
    world = World(sqlite_db, config)
    world.dispatcher = build_dispatcher(
        sqlite_db, world.clock, config, on_enqueued=lambda: seen.append("outbox woken")
    )
    for name in ("old-1", "old-2", "old-3"):
        async with sqlite_db.begin() as conn:
            await lifecycle.fire(conn, ExternalAlert(name=name, severity="high").spec(), T0)
    await world.at(timedelta(0))
    assert seen == ["outbox woken"]  # the three paged in one pass, woken once

    handle = world.dispatcher._handle

    async def noted(alert: Any, *args: Any) -> int:
        seen.append(alert.name)
        return await handle(alert, *args)

    world.dispatcher._handle = noted  # type: ignore[method-assign]
    seen.clear()
    async with sqlite_db.begin() as conn:
        await lifecycle.fire(conn, ExternalAlert(name="new", severity="high").spec(), T0)
    assert await world.at(timedelta(seconds=1)) == [("ops", "alert.firing")] * 4
    assert seen[:2] == ["new", "outbox woken"]
    assert sorted(seen[2:]) == ["old-1", "old-2", "old-3"]  # nothing more queued: no wake

    # A pass that queues nothing new for a new alert but something for an open one (its
    # resolution notice) still wakes the outbox, once, after it.
    seen.clear()
    async with sqlite_db.begin() as conn:
        await lifecycle.resolve(
            conn, ExternalAlert(name="old-2", severity="high").spec().fingerprint, T0
        )
    await world.at(timedelta(seconds=2))
    assert seen.count("outbox woken") == 1 and seen[-1] == "outbox woken"
