"""Push checks: deadlines with an injected clock, cron across DST, healthchecks.io pings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.clock import FakeClock
from tests.support.servers import Delivery, WebhookReceiver, wait_until
from tests.support.service import running
from watchkeeper.app import Runtime
from watchkeeper.checks import CheckContext, build_check
from watchkeeper.checks.heartbeat import HeartbeatCheck
from watchkeeper.config.loader import Config, ConfigError, parse_config
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.core.schedule import next_cron_instant
from watchkeeper.engine.heartbeat.monitor import HeartbeatMonitor, PingKind
from watchkeeper.store.database import Database
from watchkeeper.store.heartbeats import load_heartbeats

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def heartbeat(**fields: Any) -> HeartbeatCheck:
    config = Config.model_validate({"checks": [{"name": "job", "type": "heartbeat", **fields}]})
    check = build_check(config.checks[0], CheckContext(http=None))  # type: ignore[arg-type]
    assert isinstance(check, HeartbeatCheck)
    return check


class Results:
    def __init__(self) -> None:
        self.seen: list[tuple[datetime, CheckResult]] = []

    async def __call__(self, _check: Any, at: datetime, result: CheckResult) -> None:
        self.seen.append((at, result))

    @property
    def statuses(self) -> list[Status]:
        return [r.status for _, r in self.seen]


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


async def monitor_for(
    db: Database, check: HeartbeatCheck, clock: FakeClock
) -> tuple[HeartbeatMonitor, Results]:
    results = Results()
    monitor = HeartbeatMonitor(db, [check], results, clock)
    await monitor.load()
    return monitor, results


async def test_a_period_heartbeat_goes_late_at_its_period_and_down_after_grace(
    db: Database,
) -> None:
    clock = FakeClock(T0)
    check = heartbeat(period="1m", grace="30s")
    monitor, results = await monitor_for(db, check, clock)

    assert await monitor.evaluate() is None
    assert results.seen == []  # new: nothing to say before the first ping

    await monitor.ping(check, PingKind.SUCCESS)
    assert results.statuses == [Status.UP]
    assert await monitor.evaluate() == T0 + timedelta(seconds=60)

    clock.set(T0 + timedelta(seconds=59))
    await monitor.evaluate()
    assert results.statuses == [Status.UP]

    clock.set(T0 + timedelta(seconds=60))
    assert await monitor.evaluate() == T0 + timedelta(seconds=90)
    assert results.statuses == [Status.UP, Status.DEGRADED]
    assert results.seen[-1][1].reason == "late: expected a ping by 2026-06-01 12:01:00 UTC"

    clock.set(T0 + timedelta(seconds=90))
    await monitor.evaluate()
    assert results.statuses == [Status.UP, Status.DEGRADED, Status.DOWN]
    assert results.seen[-1][1].reason.startswith("no ping since 2026-06-01 12:00:00 UTC")

    clock.advance(5)
    await monitor.ping(check, PingKind.SUCCESS)
    assert results.statuses[-1] is Status.UP


def test_cron_in_berlin_expects_3am_local_across_both_dst_changes() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    spring = [datetime(2026, 3, 27, 12, tzinfo=UTC)]
    autumn = [datetime(2026, 10, 23, 12, tzinfo=UTC)]
    for series in (spring, autumn):
        for _ in range(3):
            series.append(next_cron_instant("0 3 * * *", berlin, series[-1]))
    # 03:00 CET is 02:00 UTC; 03:00 CEST is 01:00 UTC.
    assert spring[1:] == [
        datetime(2026, 3, 28, 2, tzinfo=UTC),
        datetime(2026, 3, 29, 1, tzinfo=UTC),
        datetime(2026, 3, 30, 1, tzinfo=UTC),
    ]
    assert autumn[1:] == [
        datetime(2026, 10, 24, 1, tzinfo=UTC),
        datetime(2026, 10, 25, 2, tzinfo=UTC),
        datetime(2026, 10, 26, 2, tzinfo=UTC),
    ]


def test_cron_times_in_the_dst_gap_fire_when_clocks_jump_and_repeated_times_fire_once() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert next_cron_instant("30 2 * * *", berlin, datetime(2026, 3, 28, 12, tzinfo=UTC)) == (
        datetime(2026, 3, 29, 1, tzinfo=UTC)  # 03:00 CEST, the moment 02:00 became 03:00
    )
    first = next_cron_instant("30 2 * * *", berlin, datetime(2026, 10, 24, 12, tzinfo=UTC))
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, first of two
    assert next_cron_instant("30 2 * * *", berlin, first) == datetime(
        2026, 10, 26, 1, 30, tzinfo=UTC
    )


async def test_a_cron_heartbeat_is_late_after_the_scheduled_instant_plus_grace(
    db: Database,
) -> None:
    ping_at = datetime(2026, 3, 28, 2, 5, tzinfo=UTC)  # 03:05 CET, the nightly job ran
    clock = FakeClock(ping_at)
    check = heartbeat(schedule="0 3 * * *", tz="Europe/Berlin", grace="15m")
    monitor, results = await monitor_for(db, check, clock)
    await monitor.ping(check, PingKind.SUCCESS)
    # The next run is due at 03:00 CEST on the 29th = 01:00 UTC (DST began that night).
    clock.set(datetime(2026, 3, 29, 1, 14, tzinfo=UTC))
    await monitor.evaluate()
    assert results.statuses == [Status.UP, Status.DEGRADED]
    clock.set(datetime(2026, 3, 29, 1, 15, tzinfo=UTC))
    await monitor.evaluate()
    assert results.statuses == [Status.UP, Status.DEGRADED, Status.DOWN]


async def test_start_then_success_records_the_run_duration(db: Database) -> None:
    clock = FakeClock(T0)
    check = heartbeat(period="1h", grace="10m")
    monitor, results = await monitor_for(db, check, clock)
    await monitor.ping(check, PingKind.START)
    assert results.seen == []
    clock.advance(42)
    await monitor.ping(check, PingKind.SUCCESS, body=b"backup done\n")
    ((_, result),) = results.seen
    assert result.status is Status.UP
    assert result.details["duration_seconds"] == 42
    assert result.metrics == {"heartbeat.duration_seconds": 42}
    assert result.details["log"] == "backup done\n"
    assert result.reason == "ping received (run took 42.0s)"


async def test_a_run_that_starts_and_never_finishes_is_down_after_grace(db: Database) -> None:
    clock = FakeClock(T0)
    check = heartbeat(period="1h", grace="10m")
    monitor, results = await monitor_for(db, check, clock)
    await monitor.ping(check, PingKind.SUCCESS)
    clock.advance(timedelta(minutes=30))
    await monitor.ping(check, PingKind.START)
    assert await monitor.evaluate() == T0 + timedelta(minutes=40)
    clock.set(T0 + timedelta(minutes=40))
    await monitor.evaluate()
    assert results.statuses == [Status.UP, Status.DOWN]
    assert "did not finish within 10m" in results.seen[-1][1].reason


async def test_records_and_uuids_survive_a_restart(db: Database) -> None:
    clock = FakeClock(T0)
    check = heartbeat(period="1m", grace="30s")
    first, _ = await monitor_for(db, check, clock)
    await first.ping(check, PingKind.SUCCESS)
    uuid = first.record("job").uuid  # type: ignore[union-attr]
    second, results = await monitor_for(db, check, clock)
    assert second.record("job").uuid == uuid  # type: ignore[union-attr]
    assert second.by_uuid(uuid) is check
    clock.advance(61)
    await second.evaluate()
    assert results.statuses == [Status.DEGRADED]


def test_heartbeat_config_needs_period_or_schedule_and_a_valid_cron_and_zone() -> None:
    base = "checks:\n  - name: job\n    type: heartbeat\n"
    with pytest.raises(ConfigError, match="exactly one of period"):
        parse_config(base, environ={})
    with pytest.raises(ConfigError, match="not a valid cron"):
        parse_config(base + "    schedule: '61 * * * *'\n", environ={})
    with pytest.raises(ConfigError, match="unknown time zone"):
        parse_config(base + "    schedule: '0 3 * * *'\n    tz: Mars/Olympus\n", environ={})


# --- the HTTP endpoints, through the whole runtime -------------------------------------------


@pytest.fixture
async def service(
    tmp_path: Path, receiver: WebhookReceiver
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
            "checks": [
                {"name": "backup", "type": "heartbeat", "period": "1d", "grace": "1h"},
                {"name": "api", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1h"},
            ],
            "notifications": [{"name": "ops", "type": "webhook", "url": receiver.hook_url}],
        }
    )
    async with running(config) as service:
        yield service.runtime, service.client


def ping_path(runtime: Runtime, name: str) -> str:
    """`/ping/<uuid>` of heartbeat `name`: by name is refused unless ping_by_name is on."""
    assert runtime.heartbeats is not None
    record = runtime.heartbeats.record(name)
    assert record is not None
    return f"/ping/{record.uuid}"


async def test_fail_ping_opens_an_alert_at_once(service, receiver: WebhookReceiver) -> None:
    runtime, client = service
    backup = ping_path(runtime, "backup")
    assert (await client.post(f"{backup}/fail", content=b"disk full")).text == "OK"
    # (api, refused on port 9, may page too, before or after backup)
    (firing,) = await receiver.wait_for(of_backup("alert.firing"), 5, "backup's alert.firing")
    assert firing.payload["alert"]["check"] == "backup"
    assert (await client.get("/api/v1/checks/backup")).json()["status"] == "down"

    assert (await client.get(backup)).status_code == 200
    await receiver.wait_for(of_backup("alert.resolved"), 5, "backup's alert.resolved")


def of_backup(event: str) -> Callable[[WebhookReceiver], list[Delivery]]:
    """The receiver's accepted `event`s of the heartbeat `backup`."""
    return lambda r: [d for d in r.accepted(event) if d.payload["alert"]["check"] == "backup"]


async def test_pings_accept_get_head_post_exit_codes_and_uuids(service) -> None:
    runtime, client = service
    backup = ping_path(runtime, "backup")
    assert (await client.head(backup)).status_code == 200
    assert (await client.post(f"{backup}/0", content=b"ok")).status_code == 200
    assert (await client.get(f"{backup}/3")).status_code == 200
    assert (await client.get("/api/v1/checks/backup")).json()["status"] == "down"
    check = (await client.get("/api/v1/checks/backup")).json()
    assert check["ping_url"].endswith(backup)
    assert (await client.get(backup)).status_code == 200
    assert (await client.get("/api/v1/checks/backup")).json()["status"] == "up"
    assert (await client.get(f"{backup}/256")).status_code == 400
    results = (await client.get("/api/v1/checks/backup/results")).json()
    assert [r["details"].get("exit_code") for r in results][:3] == [None, 3, 0]


async def test_unknown_and_non_heartbeat_checks_get_the_same_404(service) -> None:
    _, client = service
    for path in ("/ping/nope", "/ping/api", "/ping/00000000-0000-0000-0000-000000000000/fail"):
        response = await client.post(path)
        assert (response.status_code, response.text) == (404, "not found")


async def test_a_ping_body_is_kept_up_to_10kb_as_the_run_log(service) -> None:
    runtime, client = service
    await client.post(ping_path(runtime, "backup"), content=b"x" * 50_000)
    (latest, *_) = (await client.get("/api/v1/checks/backup/results")).json()
    assert len(latest["details"]["log"]) == 10_000


# --- pause and resume ------------------------------------------------------------------------


async def test_a_paused_heartbeat_never_goes_down_and_resuming_restarts_its_deadline(
    db: Database,
) -> None:
    clock = FakeClock(T0)
    check = heartbeat(period="1m", grace="30s")
    paused: set[str] = set()
    results, kept = Results(), Results()
    monitor = HeartbeatMonitor(
        db, [check], results, clock, is_paused=paused.__contains__, on_paused_result=kept
    )
    await monitor.load()
    await monitor.ping(check, PingKind.SUCCESS)
    paused.add("job")

    clock.set(T0 + timedelta(minutes=10))  # far past the deadline and its grace
    assert await monitor.evaluate() is None  # no deadline while paused
    await monitor.ping(check, PingKind.FAIL)
    assert results.statuses == [Status.UP]  # neither the silence nor the failure counted
    assert kept.statuses == [Status.DOWN]  # the ping itself is kept

    resumed = clock.now()
    await monitor.resume("job", resumed)
    paused.discard("job")
    assert await monitor.evaluate() == resumed + timedelta(minutes=1)
    assert results.statuses == [Status.UP]  # resuming pages nobody
    assert (await load_heartbeats(db))["job"].resumed_at == resumed  # survives a restart

    clock.set(resumed + timedelta(seconds=89))
    await monitor.evaluate()
    assert results.statuses == [Status.UP, Status.DEGRADED]
    clock.set(resumed + timedelta(seconds=90))
    await monitor.evaluate()
    assert results.statuses == [Status.UP, Status.DEGRADED, Status.DOWN]
    assert results.seen[-1][1].reason.startswith(
        "no ping since the resume at 2026-06-01 12:10:00 UTC"
    )


async def test_a_ping_after_the_resume_moves_the_deadline_as_usual(db: Database) -> None:
    clock = FakeClock(T0)
    check = heartbeat(period="1m", grace="30s")
    monitor, _ = await monitor_for(db, check, clock)
    await monitor.ping(check, PingKind.SUCCESS)
    clock.advance(timedelta(minutes=5))
    await monitor.resume("job", clock.now())
    clock.advance(20)
    await monitor.ping(check, PingKind.SUCCESS)
    assert await monitor.evaluate() == clock.now() + timedelta(minutes=1)


async def test_pausing_a_heartbeat_over_the_api_holds_its_deadline_until_resumed(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    clock = FakeClock(T0)
    config = {
        "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
        "checks": [{"name": "backup", "type": "heartbeat", "period": "1h", "grace": "10m"}],
        "notifications": [{"name": "ops", "type": "webhook", "url": receiver.hook_url}],
    }
    async with running(config, clock=clock) as service:
        client, monitor = service.client, service.runtime.heartbeats
        assert monitor is not None

        async def check() -> dict[str, Any]:
            return dict((await client.get("/api/v1/checks/backup")).json())

        async def open_alerts() -> list[dict[str, Any]]:
            page = (await client.get("/api/v1/alerts", params={"status": "open"})).json()
            return list(page["items"])

        backup = ping_path(service.runtime, "backup")
        assert (await client.get(backup)).status_code == 200
        assert (await check())["status"] == "up"
        paused = await client.post("/api/v1/checks/backup/pause")
        assert paused.json()["status"] == "paused"

        clock.advance(timedelta(hours=3))  # deadline and grace long gone
        await monitor.evaluate()
        assert (await check())["status"] == "paused"
        assert await open_alerts() == []

        # Pings while paused are recorded and shown, but the check stays paused.
        assert (await client.post(backup, content=b"ran by hand")).status_code == 200
        pinged_at = clock.now()
        clock.advance(60)
        assert (await client.get(f"{backup}/fail")).status_code == 200
        shown = await check()
        assert shown["status"] == "paused"
        assert shown["last_ping_at"].replace("Z", "+00:00") == pinged_at.isoformat()
        assert shown["last_result"]["status"] == "down"
        results = (await client.get("/api/v1/checks/backup/results")).json()
        assert [r["details"]["ping"] for r in results[:2]] == ["fail", "success"]
        assert await open_alerts() == []

        clock.advance(60)
        resumed_at = clock.now()
        assert (await client.post("/api/v1/checks/backup/resume")).status_code == 200
        await monitor.evaluate()
        assert (await check())["status"] == "up"  # a fresh start, not a page
        assert await open_alerts() == []

        clock.set(resumed_at + timedelta(hours=1, minutes=10))  # the new deadline + grace
        await monitor.evaluate()
        assert (await check())["status"] == "down"
        (alert,) = await open_alerts()
        assert alert["check"] == "backup"
        (firing,) = await receiver.wait_for(
            lambda r: r.accepted("alert.firing"), 10, "alert.firing after the resume"
        )
        assert firing.payload["alert"]["check"] == "backup"
        assert receiver.accepted() == [firing]  # nothing was sent while paused


async def test_an_open_alert_stays_open_while_paused_and_resolves_on_resume(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    clock = FakeClock(T0)
    config = {
        "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
        "checks": [{"name": "backup", "type": "heartbeat", "period": "1h", "grace": "10m"}],
        "notifications": [{"name": "ops", "type": "webhook", "url": receiver.hook_url}],
    }
    async with running(config, clock=clock) as service:
        client, monitor = service.client, service.runtime.heartbeats
        assert monitor is not None

        async def open_alerts() -> int:
            page = (await client.get("/api/v1/alerts", params={"status": "open"})).json()
            return int(page["total"])

        async def _none_open() -> bool:
            return await open_alerts() == 0

        backup = ping_path(service.runtime, "backup")
        await client.post(f"{backup}/fail")
        assert await open_alerts() == 1
        await client.post("/api/v1/checks/backup/pause")
        clock.advance(60)
        await client.post(backup)
        assert await open_alerts() == 1  # a ping while paused changes nothing

        clock.advance(60)
        await client.post("/api/v1/checks/backup/resume")
        await monitor.evaluate()
        assert (await client.get("/api/v1/checks/backup")).json()["status"] == "up"
        # The monitor's own task may be the one resolving it: wait for that, not for ours.
        await wait_until(lambda: _none_open(), 10, "the alert resolved")
        await receiver.wait_for(lambda r: r.accepted("alert.resolved"), 10, "alert.resolved")
