"""No stored object can silence paging: hostile durations are refused at the edge, and rows
from before the bounds existed are marked broken, ignored, and paged about (fail-open)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.clock import FakeClock
from tests.support.servers import WebhookReceiver
from tests.support.service import Service, running
from watchkeeper.alerting.dispatcher import build_dispatcher
from watchkeeper.config.loader import Config, EscalationPolicy, EscalationStep
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import tables
from watchkeeper.store.database import Database

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
HUGE = "999999999d"
PAGED_WITHIN = 1.0  # seconds, wall clock: the acceptance bound for a new critical alert


def config(db_url: str, hook: str) -> dict[str, Any]:
    return {
        "storage": {"url": db_url},
        "notifications": [{"name": "ops", "type": "webhook", "url": hook}],
        "checks": [{"name": "nightly", "type": "heartbeat", "period": "1d"}],
    }


async def plant_hostile_rows(db_url: str) -> str:
    """Rows as today's service stores them (the API took these before the bounds existed),
    written straight into the database; returns the hostile silence's id."""
    db = Database(db_url)
    await db.migrate()
    silence_id = str(uuid.uuid4())
    everything = [{"name": "severity", "value": ".+", "isRegex": True, "isEqual": True}]
    managed = {"version": 1, "created_by": "old", "created_at": T0, "updated_by": "old"}
    async with db.begin() as conn:
        await conn.execute(
            tables.maintenance_windows.insert().values(
                name="forever",
                definition={
                    "name": "forever",
                    "schedule": "* * * * *",
                    "duration": HUGE,
                    "matchers": ["severity=~.+"],
                },
                created_by="old",
                created_at=T0,
            )
        )
        await conn.execute(
            tables.managed_objects.insert().values(
                kind="escalation_policy",
                name="slow",
                definition={
                    "name": "slow",
                    "steps": [{"after": HUGE, "notify": ["ops"]}],
                    "repeat": HUGE,
                },
                updated_at=T0,
                **managed,
            )
        )
        await conn.execute(
            tables.managed_objects.insert().values(
                kind="check",
                name="lazy",
                definition={"name": "lazy", "type": "heartbeat", "period": HUGE},
                updated_at=T0,
                **managed,
            )
        )
        await conn.execute(
            tables.heartbeats.insert().values(
                check_name="lazy", uuid=str(uuid.uuid4()), last_ping_at=T0
            )
        )
        # A valid heartbeat whose stored last ping is at the end of time: its deadline overflows.
        await conn.execute(
            tables.heartbeats.insert().values(
                check_name="nightly",
                uuid=str(uuid.uuid4()),
                last_ping_at=datetime(9999, 12, 31, tzinfo=UTC),
            )
        )
        await conn.execute(
            tables.silences.insert().values(
                id=silence_id,
                matchers=everything,
                starts_at=datetime(2000, 1, 1, tzinfo=UTC),
                ends_at=datetime(9999, 12, 31, tzinfo=UTC),
                created_by="old",
                comment="shh",
                created_at=T0,
            )
        )
    await db.close()
    return silence_id


@pytest.fixture
async def service(db_url: str, receiver: WebhookReceiver) -> AsyncIterator[Service]:
    await plant_hostile_rows(db_url)
    async with running(config(db_url, receiver.hook_url), clock=FakeClock(T0)) as started:
        yield started


def fired(receiver: WebhookReceiver, name: str) -> list[dict[str, Any]]:
    return [
        d.payload["alert"]
        for d in receiver.accepted("alert.firing")
        if d.payload["alert"]["name"] == name
    ]


def broken_alerts(receiver: WebhookReceiver) -> set[tuple[str, str]]:
    return {
        (a["labels"]["kind"], a["labels"]["object"])
        for a in fired(receiver, "WatchkeeperObjectBroken")
    }


async def test_hostile_stored_objects_do_not_stop_a_critical_alert_being_paged(
    service: Service, receiver: WebhookReceiver
) -> None:
    client = service.client
    plain = {"name": "db-down", "severity": "critical", "summary": "primary down"}
    assert (await client.post("/api/v1/alerts", json=plain)).status_code in (200, 201)
    await receiver.wait_for(lambda r: fired(r, "db-down"), PAGED_WITHIN, "db-down paged")

    # An alert naming the policy whose delays overflow is routed as if it named none.
    named = {**plain, "name": "queue-stuck", "escalation": "slow"}
    assert (await client.post("/api/v1/alerts", json=named)).status_code in (200, 201)
    await receiver.wait_for(lambda r: fired(r, "queue-stuck"), PAGED_WITHIN, "queue-stuck paged")


async def test_each_broken_object_is_paged_once_shown_in_health_and_in_its_api_object(
    service: Service, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    silences = (await service.client.get("/api/v1/silences")).json()["items"]
    (silence,) = [s for s in silences if s["created_by"] == "old"]
    expected = {
        ("maintenance", "forever"),
        ("silence", silence["id"]),
        ("escalation_policy", "slow"),
        ("check", "lazy"),
        ("heartbeat", "nightly"),
    }
    await receiver.wait_for(
        lambda r: broken_alerts(r) >= expected, 10, "one self-alert per broken object"
    )
    for _ in range(3):  # more passes: nothing is logged or paged again
        await service.runtime.dispatcher.dispatch_once()  # type: ignore[union-attr]
        await service.runtime.heartbeats.evaluate()  # type: ignore[union-attr]
    assert len(fired(receiver, "WatchkeeperObjectBroken")) == len(expected)
    logged = [
        r.getMessage()
        for r in [*caplog.get_records("setup"), *caplog.records]
        if r.levelno == logging.ERROR
    ]
    for kind, name in expected:
        assert sum(f"{kind.replace('_', ' ')} {name!r}" in line for line in logged) == 1, logged

    health = (await service.client.get("/health")).json()
    component = health["checks"]["objects:broken"][0]
    assert health["status"] == "warn" and component["status"] == "warn"
    assert component["observedValue"] == len(expected)
    assert "maintenance forever: duration: must be at most 365d" in component["output"]

    assert silence["broken"] == "ends_at: a silence lasts at most 365d after it starts"
    (window,) = (await service.client.get("/api/v1/maintenances")).json()["items"]
    assert window["name"] == "forever" and window["active"] is False
    assert window["broken"] == "duration: must be at most 365d"
    checks = {c["name"]: c for c in (await service.client.get("/api/v1/checks")).json()["items"]}
    assert checks["nightly"]["broken"].startswith("OverflowError")


async def test_every_list_endpoint_answers_200_with_hostile_objects_stored(
    service: Service, receiver: WebhookReceiver
) -> None:
    client = service.client
    # As hostile as the API allows: the longest of everything, at the end of time.
    created = [
        await client.post(
            "/api/v1/maintenances",
            json={"name": "year", "schedule": "* * * * *", "duration": "365d", "checks": ["x"]},
        ),
        await client.post(
            "/api/v1/maintenances",
            json={
                "name": "last",
                "starts_at": "9998-12-31T00:00:00Z",
                "ends_at": "9999-12-30T23:59:59Z",
                "matchers": ["severity=~.+"],
            },
        ),
        await client.post(
            "/api/v1/silences",
            json={
                "matchers": ["severity=~.+"],
                "starts_at": "9998-12-31T00:00:00Z",
                "ends_at": "9999-12-30T23:59:59Z",
            },
        ),
        await client.post(
            "/api/v1/escalation-policies",
            json={"name": "max", "steps": [{"after": "30d", "notify": ["ops"]}], "repeat": "30d"},
        ),
        await client.post(
            "/api/v1/checks",
            json={"name": "yearly", "type": "heartbeat", "period": "365d", "grace": "365d"},
        ),
    ]
    assert [r.status_code for r in created] == [201] * 5, [r.text for r in created]

    schema = (await client.get("/api/v1/openapi.json")).json()
    paths = sorted(
        path
        for path, operations in schema["paths"].items()
        if "get" in operations
        and path.startswith("/api/v1/")
        and not any(p.get("required") for p in operations["get"].get("parameters", []))
    )  # every list (no path or required query parameter)
    assert "/api/v1/maintenances" in paths and "/api/v1/silences" in paths
    answers = {path: (await client.get(path)).status_code for path in [*paths, "/health"]}
    assert answers == dict.fromkeys(answers, 200)

    alert = {"name": "disk-full", "severity": "critical", "summary": "disk full"}
    assert (await client.post("/api/v1/alerts", json=alert)).status_code in (200, 201)
    await receiver.wait_for(lambda r: fired(r, "disk-full"), PAGED_WITHIN, "disk-full paged")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/maintenances",
            {"name": "m", "schedule": "0 2 * * 0", "duration": HUGE, "checks": ["a"]},
            "duration",
        ),
        (
            "/api/v1/maintenances",
            {
                "name": "m",
                "starts_at": "2030-01-01T00:00:00Z",
                "ends_at": "2031-01-02T00:00:00Z",
                "checks": ["a"],
            },
            "ends_at",
        ),
        (
            "/api/v1/maintenances",
            {"name": "m", "schedule": "0 0 30 2 *", "duration": "1h", "checks": ["a"]},
            "schedule",
        ),
        (
            "/api/v1/escalation-policies",
            {"name": "p", "steps": [{"after": HUGE, "notify": ["ops"]}]},
            "steps",
        ),
        (
            "/api/v1/escalation-policies",
            {"name": "p", "steps": [{"notify": ["ops"]}], "repeat": HUGE},
            "repeat",
        ),
        (
            "/api/v1/checks",
            {"name": "c", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": "0s"},
            "interval",
        ),
        (
            "/api/v1/checks",
            {"name": "c", "type": "tcp", "host": "127.0.0.1", "port": 9, "timeout": "0s"},
            "timeout",
        ),
        ("/api/v1/checks", {"name": "h", "type": "heartbeat", "period": HUGE}, "period"),
        ("/api/v1/rules", {"name": "r", "metric": "m", "threshold": 1, "for": HUGE}, "for"),
        (
            "/api/v1/silences",
            {
                "matchers": ["a=b"],
                "starts_at": "2030-01-01T00:00:00Z",
                "ends_at": "2031-01-02T00:00:00Z",
            },
            "ends_at",
        ),
        ("/api/v1/silences", {"matchers": ["a=b"], "ends_at": "9999-12-31T00:00:00Z"}, "ends_at"),
    ],
)
async def test_the_api_refuses_unbounded_durations_naming_the_field(
    db_url: str, receiver: WebhookReceiver, path: str, body: dict[str, Any], field: str
) -> None:
    async with running(config(db_url, receiver.hook_url), clock=FakeClock(T0)) as service:
        answer = await service.client.post(path, json=body)
        assert answer.status_code == 422, answer.text
        assert field in answer.text, answer.text
        assert (await service.client.get(path)).status_code == 200


async def test_interval_zero_is_refused_where_today_it_kills_the_check_loop(db_url: str) -> None:
    with pytest.raises(ValueError, match="must be at least 1s"):
        Config.model_validate(
            {"checks": [{"name": "a", "type": "tcp", "host": "h", "port": 1, "interval": "0s"}]}
        )
    with pytest.raises(ValueError, match="must be at least 1s"):
        Config.model_validate({"defaults": {"interval": "0s"}})


async def test_the_dispatcher_routes_around_a_policy_whose_delays_overflow(db_url: str) -> None:
    """A policy object from before the bounds (built without validation) stops no pass."""
    db = Database(db_url)
    await db.migrate()
    try:
        cfg = Config.model_validate(
            {"notifications": [{"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/"}]}
        )
        old = EscalationPolicy.model_construct(
            name="old",
            steps=[EscalationStep.model_construct(after=timedelta.max, notify=["ops"])],
            repeat=timedelta.max,
        )
        clock = FakeClock(T0)
        dispatcher = build_dispatcher(db, clock, cfg, policies=[old])
        from watchkeeper.alerting import lifecycle
        from watchkeeper.core.domain import Severity

        async with db.begin() as conn:
            spec = lifecycle.AlertSpec("fp", "x", Severity.CRITICAL, "x", escalation_policy="old")
            await lifecycle.fire(conn, spec, T0)
        await dispatcher.dispatch_once()
        await dispatcher.dispatch_once()  # the self-alert, opened at the start of this pass
        sent = await outbox_store.list_entries(db, limit=10)
        assert sorted((e.channel, e.event) for e in sent) == [
            ("ops", "alert.firing"),
            ("ops", "alert.firing"),
        ]
        (broken,) = dispatcher.broken.all()
        assert (broken.kind, broken.name) == ("escalation_policy", "old")
        assert broken.error.startswith("OverflowError")
    finally:
        await db.close()


async def test_a_heartbeat_that_cannot_be_evaluated_does_not_stop_the_others(
    sqlite_url: str,
) -> None:
    from watchkeeper.checks import CheckContext, build_check
    from watchkeeper.core.domain import Status
    from watchkeeper.engine.heartbeat.monitor import HeartbeatMonitor, PingKind

    cfg = Config.model_validate(
        {
            "checks": [
                {"name": "a-ancient", "type": "heartbeat", "period": "1d", "grace": "1m"},
                {"name": "b-job", "type": "heartbeat", "period": "1m", "grace": "1m"},
            ]
        }
    )
    checks = [build_check(c, CheckContext(http=None)) for c in cfg.checks]  # type: ignore[arg-type]
    db = Database(sqlite_url)
    await db.migrate()
    seen: list[tuple[str, Status]] = []

    async def record(check: Any, _at: datetime, result: Any) -> None:
        seen.append((check.name, result.status))

    try:
        clock = FakeClock(T0)
        monitor = HeartbeatMonitor(db, checks, record, clock)  # type: ignore[arg-type]
        await monitor.load()
        for check in checks:
            await monitor.ping(check, PingKind.SUCCESS)  # type: ignore[arg-type]
        # A stored ping time at the end of time (as a bad row would hold): its deadline overflows.
        monitor.record("a-ancient").last_ping_at = datetime(9999, 12, 31, tzinfo=UTC)  # type: ignore[union-attr]
        clock.advance(timedelta(minutes=5))
        await monitor.evaluate()
        assert ("b-job", Status.DOWN) in seen
        assert monitor.verdict("a-ancient").status is Status.UNKNOWN
        assert monitor._broken.error("heartbeat", "a-ancient").startswith("OverflowError")  # type: ignore[union-attr]
    finally:
        await db.close()


async def test_a_rule_that_cannot_be_evaluated_does_not_stop_the_others(sqlite_url: str) -> None:
    from watchkeeper.alerting.rule_config import RuleConfig
    from watchkeeper.alerting.rules import RuleEngine

    ok = RuleConfig.model_validate({"name": "b-ok", "metric": "m", "threshold": 1, "for": "0s"})
    # A rule from before `for` was bounded (built without validation): its deadline overflows.
    old = ok.model_copy(update={"name": "a-old", "for_": timedelta.max})
    db = Database(sqlite_url)
    await db.migrate()
    try:
        clock = FakeClock(T0)
        engine = RuleEngine(db, [old, ok], clock)
        engine.observe("m", {}, 5.0, T0)
        await engine.evaluate()
        states = {
            r["name"]: (r["broken"], [s["state"] for s in r["series"]]) for r in engine.snapshot()
        }
        assert states["b-ok"] == (None, ["firing"])
        assert states["a-old"][0] is not None and states["a-old"][0].startswith("OverflowError")
    finally:
        await db.close()
