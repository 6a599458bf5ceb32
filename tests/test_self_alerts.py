"""Self-alerts with real failing conditions on a hand-moved clock: a stalled scheduler, an
outbox backed up behind a receiver that refuses, and a database that is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.clock import FakeClock
from tests.support.servers import WebhookReceiver, wait_until
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.core.domain import Alert, AlertStatus
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = await WebhookReceiver().start()
    try:
        yield hook
    finally:
        await hook.close()


def make_config(db: Path, hook: WebhookReceiver, **selfwatch: Any) -> Config:
    return Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{db}"},
            "notifications": [{"name": "ops", "type": "webhook", "url": hook.hook_url}],
            "delivery": {"backoff_initial": "1s", "backoff_max": "2s"},
            # The loop's own passes never come (the clock moves less): each test calls check().
            "selfwatch": {"interval": "1h", **selfwatch},
        }
    )


@pytest.fixture
async def start(clock: FakeClock) -> AsyncIterator[Any]:
    runtimes: list[Runtime] = []

    async def started(config: Config) -> Runtime:
        runtime = Runtime(config, clock=clock)
        await runtime.start()
        runtimes.append(runtime)
        return runtime

    yield started
    for runtime in runtimes:
        await runtime.stop()


async def self_alert(runtime: Runtime, what: str) -> Alert | None:
    """The newest alert of fingerprint `watchkeeper:<what>`, open or resolved."""
    async with runtime.db.connect() as conn:
        found = await alert_store.open_alert(conn, f"watchkeeper:{what}")
    if found is not None:
        return found
    alerts, _ = await alert_store.list_alerts(runtime.db, source="watchkeeper")
    return next((a for a in alerts if a.fingerprint == f"watchkeeper:{what}"), None)


def about(hook: WebhookReceiver, what: str, event: str) -> list[Any]:
    return [
        d
        for d in hook.attempts
        if d.event == event
        and d.payload.get("alert", {}).get("fingerprint") == f"watchkeeper:{what}"
    ]


async def test_a_stopped_scheduler_opens_a_self_alert_that_resolves_when_it_runs_again(
    tmp_path: Path, receiver: WebhookReceiver, start: Any
) -> None:
    runtime = await start(make_config(tmp_path / "wk.db", receiver))
    await runtime.scheduler.stop()
    await runtime.selfwatch.check()
    alert = await self_alert(runtime, "scheduler")
    assert alert is not None and alert.status is AlertStatus.FIRING
    assert (alert.name, alert.source, alert.summary) == (
        "WatchkeeperSchedulerStalled",
        "watchkeeper",
        "scheduler not running",
    )
    # Routed like any other alert: the dispatcher pages the channel through the outbox.
    await receiver.wait_for(lambda r: about(r, "scheduler", "alert.firing"), 5, "the page")

    runtime.scheduler.start()
    await runtime.selfwatch.check()
    alert = await self_alert(runtime, "scheduler")
    assert alert is not None and alert.status is AlertStatus.RESOLVED
    await receiver.wait_for(lambda r: about(r, "scheduler", "alert.resolved"), 5, "the all-clear")


async def test_an_outbox_backed_up_behind_a_refusing_receiver_alerts_until_it_drains(
    tmp_path: Path, receiver: WebhookReceiver, clock: FakeClock, start: Any
) -> None:
    runtime = await start(
        make_config(tmp_path / "wk.db", receiver, outbox_depth={"warn": 1, "fail": 3})
    )
    receiver.reply_status = 503  # the receiver is down: every delivery waits for a retry
    async with runtime.db.begin() as conn:
        entries = [
            outbox_store.OutboxEntry("ops", f"k{i}", "alert.firing", {"n": i}) for i in range(3)
        ]
        await outbox_store.enqueue(conn, entries, clock.now())
    runtime.outbox.wake()
    await receiver.wait_for(lambda r: len(r.attempts) >= 3, 5, "three refused deliveries")

    readings = await runtime.selfwatch.check()
    assert readings["outbox:depth"].status == "fail"
    alert = await self_alert(runtime, "outbox")
    assert alert is not None and alert.status is AlertStatus.FIRING
    assert alert.summary == "outbox depth 3 notifications, past its fail threshold"
    health = await runtime.services.status.health()
    assert health["status"] == "fail"
    # Its page queues behind the others, and is refused like them for now.
    await receiver.wait_for(lambda r: about(r, "outbox", "alert.firing"), 5, "the page")

    receiver.reply_status = 200
    clock.advance(timedelta(seconds=3))  # past every retry's backoff
    await receiver.wait_for(lambda r: len(r.processed) >= 4, 5, "the backlog delivered")
    await wait_until(lambda: _drained(runtime), 5, "the outbox drained")
    await runtime.selfwatch.check()
    alert = await self_alert(runtime, "outbox")
    assert alert is not None and alert.status is AlertStatus.RESOLVED


async def test_a_stopped_receiver_backs_the_outbox_up_until_it_is_back(
    tmp_path: Path, receiver: WebhookReceiver, clock: FakeClock, start: Any
) -> None:
    runtime = await start(
        make_config(tmp_path / "wk.db", receiver, outbox_oldest_age={"warn": 60, "fail": 600})
    )
    port = receiver.port
    await receiver.close()  # stopped: every delivery is refused at connect and retried
    async with runtime.db.begin() as conn:
        entry = outbox_store.OutboxEntry("ops", "k0", "alert.firing", {"n": 0})
        await outbox_store.enqueue(conn, [entry], clock.now())
    runtime.outbox.wake()
    await wait_until(lambda: _attempted(runtime), 5, "a refused delivery")

    clock.advance(timedelta(minutes=11))  # the entry has waited past oldest_age's fail
    readings = await runtime.selfwatch.check()
    assert readings["outbox:oldestAge"].status == "fail"
    alert = await self_alert(runtime, "outbox")
    assert alert is not None and alert.status is AlertStatus.FIRING
    assert alert.summary.startswith("oldest undelivered notification 660")

    back = WebhookReceiver()  # started again, on the port the channel names
    await back.runner.setup()
    await web.TCPSite(back.runner, "127.0.0.1", port).start()
    try:
        clock.advance(timedelta(seconds=3))  # past every retry's backoff
        await back.wait_for(lambda r: r.accepted("alert.firing"), 5, "the backlog")
        await wait_until(lambda: _drained(runtime), 5, "the outbox drained")
        await runtime.selfwatch.check()
        alert = await self_alert(runtime, "outbox")
        assert alert is not None and alert.status is AlertStatus.RESOLVED
        await back.wait_for(lambda r: about(r, "outbox", "alert.resolved"), 5, "the all-clear")
        assert len(about(back, "outbox", "alert.firing")) == 1
    finally:
        await back.close()


async def _attempted(runtime: Runtime) -> bool:
    rows = await outbox_store.list_entries(runtime.db, status="pending")
    return bool(rows) and all(row.attempts >= 1 for row in rows)


async def _drained(runtime: Runtime) -> bool:
    return await outbox_store.depth(runtime.db) == 0


async def test_with_the_database_gone_it_is_sent_straight_once_and_recorded_when_back(
    tmp_path: Path, receiver: WebhookReceiver, clock: FakeClock, start: Any
) -> None:
    home = tmp_path / "data"
    home.mkdir()
    runtime = await start(make_config(home / "wk.db", receiver))
    await runtime.selfwatch.check()
    assert runtime.selfwatch.readings["storage:writeLatency"].status == "pass"

    # The database's directory disappears (an unmounted volume): no connection can open it.
    home.rename(tmp_path / "away")
    await runtime.db.engine.dispose()
    outage = clock.advance(timedelta(seconds=30))
    await runtime.selfwatch.check()
    reading = runtime.selfwatch.readings["storage:writeLatency"]
    assert reading.status == "fail" and "unable to open database file" in (reading.output or "")
    sent = about(receiver, "storage", "alert.firing")
    assert len(sent) == 1
    assert sent[0].payload["alert"]["status"] == "firing"
    assert sent[0].payload["alert"]["name"] == "WatchkeeperStorageFailing"
    for _ in range(2):  # the outage goes on: nobody is told again
        clock.advance(timedelta(seconds=30))
        await runtime.selfwatch.check()
    assert len(about(receiver, "storage", "alert.firing")) == 1

    (tmp_path / "away").rename(home)
    await runtime.db.engine.dispose()
    clock.advance(timedelta(seconds=30))
    await runtime.selfwatch.check()
    assert runtime.selfwatch.readings["storage:writeLatency"].status == "pass"
    alert = await self_alert(runtime, "storage")
    assert alert is not None and alert.status is AlertStatus.RESOLVED
    assert alert.id == sent[0].payload["alert"]["id"]
    assert alert.started_at == outage
    assert alert.paged_channels == ["ops"]
    # The all-clear goes through the outbox as usual; the firing is not sent a second time.
    await receiver.wait_for(lambda r: about(r, "storage", "alert.resolved"), 5, "the all-clear")
    assert len(about(receiver, "storage", "alert.firing")) == 1


async def test_a_self_alert_left_open_by_an_earlier_run_resolves_when_healthy(
    tmp_path: Path, receiver: WebhookReceiver, start: Any
) -> None:
    config = make_config(tmp_path / "wk.db", receiver)
    first = await start(config)
    await first.scheduler.stop()
    await first.selfwatch.check()
    await first.stop()

    second = await start(config)
    await second.selfwatch.check()
    alert = await self_alert(second, "scheduler")
    assert alert is not None and alert.status is AlertStatus.RESOLVED
