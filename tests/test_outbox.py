"""The outbox worker against a real webhook receiver, driven pass by pass on a fake clock."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import sqlalchemy

from tests.support.alerting import DispatchingAlerts
from tests.support.clock import FakeClock, until_parked
from tests.support.delivery import DELIVERY
from tests.support.servers import WebhookReceiver, free_port, wait_until
from watchkeeper.config.loader import Config
from watchkeeper.core.checkstate import CheckState, Transition
from watchkeeper.core.domain import Alert, AlertStatus, CheckResult, Severity, Status
from watchkeeper.notify.channels.base import Channel, ChannelContext, Message, Outcome
from watchkeeper.notify.channels.webhook import (
    SIGNATURE_HEADER,
    WebhookChannel,
    WebhookChannelConfig,
    build_body,
    sign,
)
from watchkeeper.notify.outbox import OutboxWorker, backoff_delay
from watchkeeper.notify.payload import alert_payload
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database
from watchkeeper.store.outbox import OutboxEntry

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
INITIAL = DELIVERY.backoff_initial.total_seconds()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def webhook(http: aiohttp.ClientSession, url: str, secret: str | None) -> WebhookChannel:
    config = WebhookChannelConfig.model_validate(
        {"name": "ops", "type": "webhook", "url": url, "secret": secret}
    )
    return WebhookChannel(config, ChannelContext(http, DELIVERY.timeout.total_seconds()))


@pytest.fixture
def worker(
    db: Database, http: aiohttp.ClientSession, receiver: WebhookReceiver, clock: FakeClock
) -> OutboxWorker:
    return OutboxWorker(
        db, {"ops": webhook(http, receiver.hook_url, receiver.secret)}, DELIVERY, clock
    )


def sample_alert(alert_id: str = "5f0c1b8e-0000-4000-8000-000000000001") -> Alert:
    return Alert(
        id=alert_id,
        fingerprint="check:db",
        name="db",
        check="db",
        rule=None,
        severity=Severity.CRITICAL,
        status=AlertStatus.FIRING,
        started_at=T0,
        resolved_at=None,
        summary="connection refused",
        labels={"check": "db", "severity": "critical"},
    )


async def queue(
    db: Database, at: datetime, channel: str = "ops", alert_id: str | None = None
) -> Any:
    """Queue one alert.firing entry as CheckAlerts would; return its row."""
    alert = sample_alert(alert_id) if alert_id else sample_alert()
    key = f"{alert.id}:alert.firing"
    async with db.begin() as conn:
        await outbox_store.enqueue(
            conn,
            [
                OutboxEntry(
                    channel, key, "alert.firing", alert_payload(alert, "alert.firing"), alert.id
                )
            ],
            at,
        )
    return await row_by_key(db, key, channel)


async def row_by_key(db: Database, key: str, channel: str = "ops") -> Any:
    rows = await outbox_store.list_entries(db)
    [row] = [r for r in rows if r.idempotency_key == key and r.channel == channel]
    return row


async def reload(db: Database, row: Any) -> Any:
    return await row_by_key(db, row.idempotency_key, row.channel)


# -- delivery -----------------------------------------------------------------------------------


async def test_a_200_marks_the_entry_delivered_after_one_attempt(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    row = await queue(db, clock.now())
    assert await worker.deliver_due() == 1

    row = await reload(db, row)
    assert row.status == "delivered"
    assert row.attempts == 1
    assert row.delivered_at == clock.now() and row.last_attempt_at == clock.now()
    assert row.last_error is None
    assert len(receiver.attempts) == 1
    assert worker.delivered == 1 and worker.failed == 0
    assert await outbox_store.depth(db) == 0
    assert await worker.deliver_due() == 0  # nothing left to do
    assert len(receiver.attempts) == 1


async def test_the_webhook_body_is_signed_and_carries_the_idempotency_key_and_sent_at(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    row = await queue(db, clock.now())
    await worker.deliver_due()

    [delivery] = receiver.attempts
    assert receiver.signature_ok(delivery)
    assert delivery.signature == sign(delivery.body, "s3cret-hook-key")
    assert delivery.key == row.idempotency_key == f"{sample_alert().id}:alert.firing"
    assert delivery.event == "alert.firing"
    body = delivery.payload
    assert list(body) == ["version", "event", "sent_at", "alert"]
    stamp = body.pop("sent_at")
    assert stamp.endswith("Z")  # ISO 8601 UTC, stamped when sent
    assert datetime.fromisoformat(stamp).utcoffset() == timedelta(0)
    assert body == row.payload  # otherwise exactly what was queued


async def test_a_webhook_without_a_secret_is_sent_unsigned(
    db: Database,
    http: aiohttp.ClientSession,
    receiver: WebhookReceiver,
    clock: FakeClock,
) -> None:
    worker = OutboxWorker(db, {"ops": webhook(http, receiver.hook_url, None)}, DELIVERY, clock)
    row = await queue(db, clock.now())
    await worker.deliver_due()
    [delivery] = receiver.attempts
    assert delivery.signature is None
    assert (await reload(db, row)).status == "delivered"


async def test_a_503_is_retried_later_with_the_same_idempotency_key(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.reply_status = 503
    row = await queue(db, clock.now())
    first_try = clock.now()
    assert await worker.deliver_due() == 1

    row = await reload(db, row)
    assert row.status == "pending"
    assert row.attempts == 1
    assert "503" in row.last_error
    assert row.last_attempt_at == first_try
    assert (
        first_try + timedelta(seconds=INITIAL / 2)
        <= row.next_attempt_at
        <= first_try + timedelta(seconds=INITIAL)
    )
    assert await outbox_store.depth(db) == 1

    # Not due yet: nothing is sent.
    clock.set(row.next_attempt_at - timedelta(milliseconds=1))
    assert await worker.deliver_due() == 0
    assert len(receiver.attempts) == 1

    receiver.reply_status = 200
    clock.set(row.next_attempt_at + timedelta(milliseconds=1))
    assert await worker.deliver_due() == 1
    row = await reload(db, row)
    assert row.status == "delivered" and row.attempts == 2
    assert row.delivered_at == clock.now()
    assert [(d.answered, d.key) for d in receiver.attempts] == [
        (503, row.idempotency_key),
        (200, row.idempotency_key),
    ]
    assert len(receiver.processed) == 1 and receiver.duplicates == 0


async def test_retries_back_off_further_after_each_failure(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.reply_status = 500
    row = await queue(db, clock.now())
    for attempt in range(1, 6):
        tried_at = clock.now()
        assert await worker.deliver_due() == 1
        row = await reload(db, row)
        assert row.attempts == attempt and row.status == "pending"
        upper = INITIAL * 2 ** (attempt - 1)
        wait = (row.next_attempt_at - tried_at).total_seconds()
        assert upper / 2 <= wait <= upper
        clock.set(row.next_attempt_at)
    assert len(receiver.attempts) == 5
    assert {d.key for d in receiver.attempts} == {row.idempotency_key}


async def test_a_400_fails_the_entry_at_once(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.reply_status = 400
    row = await queue(db, clock.now())
    assert await worker.deliver_due() == 1

    row = await reload(db, row)
    assert row.status == "failed" and row.attempts == 1
    assert "HTTP 400" in row.last_error
    assert row.delivered_at is None
    assert worker.failed == 1
    clock.advance(timedelta(days=1))
    assert await worker.deliver_due() == 0
    assert len(receiver.attempts) == 1


async def test_a_503_that_lasts_beyond_max_age_gives_up(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.reply_status = 503
    row = await queue(db, clock.now())
    await worker.deliver_due()
    assert (await reload(db, row)).status == "pending"

    clock.advance(DELIVERY.max_age + timedelta(seconds=1))
    assert await worker.deliver_due() == 1
    row = await reload(db, row)
    assert row.status == "failed" and row.attempts == 2
    assert row.last_error.startswith("gave up after 2 attempts")
    assert "503" in row.last_error
    assert worker.failed == 1
    assert await outbox_store.depth(db) == 0
    assert len(receiver.attempts) == 2


async def test_max_age_is_reached_at_exactly_max_age_after_creation(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.reply_status = 503
    row = await queue(db, clock.now())
    await worker.deliver_due()
    clock.set(T0 + DELIVERY.max_age)
    assert await worker.deliver_due() == 1
    row = await reload(db, row)
    assert row.status == "failed" and row.last_error.startswith("gave up after 2 attempts")


async def test_max_age_counts_from_creation_not_from_the_last_attempt(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.reply_status = 503
    row = await queue(db, clock.now())
    await worker.deliver_due()
    # Retried a second before max_age: still worth another try …
    clock.set(T0 + DELIVERY.max_age - timedelta(seconds=1))
    assert await worker.deliver_due() == 1
    row = await reload(db, row)
    assert row.status == "pending" and row.attempts == 2
    # … and the next attempt, seconds after the last one, is past max_age since creation.
    clock.set(row.next_attempt_at)
    assert await worker.deliver_due() == 1
    row = await reload(db, row)
    assert row.status == "failed" and row.attempts == 3
    assert row.last_error.startswith("gave up after 3 attempts")
    assert len(receiver.attempts) == 3


async def test_statuses_that_ask_to_come_back_are_retried_other_4xx_fail_at_once(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    retried = [408, 425, 429, 500, 502, 503, 504]
    failed = [400, 401, 403, 404, 410, 413, 422]
    for i, status in enumerate(retried + failed):
        receiver.reply_status = status
        row = await queue(db, clock.now(), alert_id=f"00000000-0000-4000-8000-{i:012d}")
        assert await worker.deliver_due() == 1
        row = await reload(db, row)
        expected = "pending" if status in retried else "failed"
        assert (status, row.status) == (status, expected)
        assert f"HTTP {status}" in row.last_error
        if expected == "pending":  # retried, then delivered
            receiver.reply_status = 200
            clock.set(row.next_attempt_at)
            assert await worker.deliver_due() == 1
            assert (await reload(db, row)).status == "delivered"


async def test_a_429_with_retry_after_waits_at_least_that_long(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.reply_status = 429
    receiver.retry_after = "30"
    row = await queue(db, clock.now())
    tried_at = clock.now()
    await worker.deliver_due()

    row = await reload(db, row)
    assert row.status == "pending" and row.attempts == 1
    assert "429" in row.last_error
    assert row.next_attempt_at >= tried_at + timedelta(seconds=30)
    assert row.next_attempt_at <= tried_at + DELIVERY.backoff_max

    clock.set(tried_at + timedelta(seconds=29))
    assert await worker.deliver_due() == 0
    receiver.reply_status, receiver.retry_after = 200, None
    clock.set(row.next_attempt_at)
    assert await worker.deliver_due() == 1
    assert (await reload(db, row)).status == "delivered"


async def test_a_503_with_retry_after_as_an_http_date_waits_until_that_date(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.reply_status = 503
    receiver.retry_after = email.utils.format_datetime(T0 + timedelta(seconds=90), usegmt=True)
    row = await queue(db, clock.now())
    await worker.deliver_due()
    row = await reload(db, row)
    assert row.status == "pending"
    assert row.next_attempt_at == T0 + timedelta(seconds=90)  # not the 1-2 s backoff

    # A date already past (or unparseable) leaves the ordinary backoff.
    for value in (email.utils.format_datetime(T0 - timedelta(hours=1), usegmt=True), "soon"):
        receiver.retry_after = value
        clock.set(row.next_attempt_at)
        tried_at = clock.now()
        await worker.deliver_due()
        row = await reload(db, row)
        assert row.status == "pending"
        assert row.next_attempt_at <= tried_at + timedelta(
            seconds=INITIAL * 2 ** (row.attempts - 1)
        )


async def test_a_retry_after_date_far_away_is_capped_at_backoff_max(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    receiver.reply_status = 429
    receiver.retry_after = email.utils.format_datetime(T0 + timedelta(days=2), usegmt=True)
    row = await queue(db, clock.now())
    await worker.deliver_due()
    assert (await reload(db, row)).next_attempt_at == T0 + DELIVERY.backoff_max


async def test_an_unreachable_receiver_is_retried_not_failed(
    db: Database, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    worker = OutboxWorker(db, {"ops": webhook(http, dead, "k")}, DELIVERY, clock)
    row = await queue(db, clock.now())
    await worker.deliver_due()
    row = await reload(db, row)
    assert row.status == "pending" and row.attempts == 1
    assert "posting to http://127.0.0.1" in row.last_error


async def test_an_entry_for_a_channel_no_longer_configured_fails_with_a_clear_reason(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    gone = await queue(db, clock.now(), channel="old-pager")
    kept = await queue(db, clock.now(), channel="ops")
    assert await worker.deliver_due() == 2

    gone = await reload(db, gone)
    assert gone.status == "failed" and gone.attempts == 1
    assert gone.last_error == "channel 'old-pager' is no longer configured"
    assert (await reload(db, kept)).status == "delivered"
    assert len(receiver.attempts) == 1


async def test_a_channel_that_crashes_is_retried_later(db: Database, clock: FakeClock) -> None:
    class Crashing(Channel[Any]):
        type = "crashing"

        async def send(self, message: Message) -> Outcome:
            raise ValueError("bug in channel")

    channel = Crashing(None, ChannelContext(None, 1.0))  # type: ignore[arg-type]
    worker = OutboxWorker(db, {"ops": channel}, DELIVERY, clock)
    row = await queue(db, clock.now())
    await worker.deliver_due()
    row = await reload(db, row)
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error == "ValueError: bug in channel"


async def test_one_pass_delivers_more_entries_than_one_batch(
    db: Database,
    http: aiohttp.ClientSession,
    receiver: WebhookReceiver,
    clock: FakeClock,
) -> None:
    channels = {"ops": webhook(http, receiver.hook_url, receiver.secret)}
    worker = OutboxWorker(db, channels, DELIVERY, clock, batch=3, parallel=2)
    for i in range(7):
        await queue(db, clock.now(), alert_id=f"00000000-0000-4000-8000-{i:012d}")
    assert await worker.deliver_due() == 7
    assert len(receiver.processed) == 7
    assert await outbox_store.depth(db) == 0


async def test_an_alert_from_a_transition_reaches_the_receiver_once(
    db: Database, worker: OutboxWorker, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    config = Config.model_validate(
        {
            "checks": [{"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 5432}],
            "notifications": [{"name": "ops", "type": "webhook", "url": receiver.hook_url}],
        }
    )
    alerts = DispatchingAlerts(db, config, clock=clock, on_enqueued=worker.wake)
    result = CheckResult.down("connection refused")
    transition = Transition("db", Status.UP, Status.DOWN, clock.now(), result)
    alert = await alerts.on_transition(transition, CheckState("db", Status.DOWN, clock.now()))
    assert alert is not None
    # The same transition replayed (e.g. after a restart) queues nothing new.
    await alerts.on_transition(transition, CheckState("db", Status.DOWN, clock.now()))

    assert await worker.deliver_due() == 1
    [delivery] = receiver.attempts
    assert receiver.signature_ok(delivery)
    assert delivery.key == f"{alert.id}:alert.firing"
    assert delivery.payload["alert"]["id"] == alert.id
    assert delivery.payload["alert"]["summary"] == "connection refused"


# -- the running worker -------------------------------------------------------------------------


async def until_idle(worker: OutboxWorker, clock: FakeClock) -> None:
    """The running worker has nothing in hand, no pass pending, and sleeps on the clock: its
    last pass saw every delivery settled. (Deliveries settle in tasks of their own, so a park
    alone can come before the settling.)"""
    await wait_until(lambda: worker.idle and clock.waiting == 1, 5, "the worker idle and parked")


@pytest.fixture
async def running(worker: OutboxWorker) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(worker.run())
    yield task
    worker.stop()
    async with asyncio.timeout(5):
        await task


async def test_the_running_worker_delivers_what_is_queued_as_soon_as_it_is_woken(
    db: Database,
    worker: OutboxWorker,
    receiver: WebhookReceiver,
    clock: FakeClock,
    running: asyncio.Task[None],
) -> None:
    await until_parked(clock)
    assert clock.next_deadline == pytest.approx(5.0)  # nothing queued: looks again in 5 s
    row = await queue(db, clock.now())
    worker.wake()
    await wait_until(lambda: receiver.processed, 5, "the delivery")
    await until_idle(worker, clock)
    assert (await reload(db, row)).status == "delivered"
    assert worker.delivered == 1 and worker.depth == 0


async def test_the_running_worker_finds_an_entry_queued_without_a_wake_at_its_next_look(
    db: Database,
    worker: OutboxWorker,
    receiver: WebhookReceiver,
    clock: FakeClock,
    running: asyncio.Task[None],
) -> None:
    await until_parked(clock)
    row = await queue(db, clock.now())
    clock.advance(4.9)
    # Still parked for its next look, 0.1 s away: it has not looked early.
    assert clock.next_deadline == pytest.approx(0.1, abs=1e-6)
    assert receiver.attempts == []
    clock.advance(0.1)
    await wait_until(lambda: receiver.processed, 5, "the delivery at the next look")
    await until_idle(worker, clock)
    assert (await reload(db, row)).status == "delivered"


async def test_the_running_worker_retries_at_the_instant_the_entry_falls_due(
    db: Database,
    worker: OutboxWorker,
    receiver: WebhookReceiver,
    clock: FakeClock,
    running: asyncio.Task[None],
) -> None:
    receiver.reply_status = 503
    await until_parked(clock)
    row = await queue(db, clock.now())
    worker.wake()
    await wait_until(lambda: receiver.attempts, 5, "the first attempt")
    await until_idle(worker, clock)
    row = await reload(db, row)
    assert row.status == "pending" and worker.depth == 1
    # It sleeps exactly until the retry is due (1-2 s of backoff), not the 5 s idle poll.
    due_in = (row.next_attempt_at - clock.now()).total_seconds()
    assert 0 < due_in < 5
    assert clock.next_deadline == pytest.approx(due_in, abs=1e-3)
    # Woken half a second before it is due, it waits the half second that is left.
    clock.set(row.next_attempt_at - timedelta(seconds=0.5))
    worker.wake()
    await until_idle(worker, clock)
    assert clock.next_deadline == pytest.approx(0.5, abs=1e-3)
    assert len(receiver.attempts) == 1

    receiver.reply_status = 200
    clock.set(row.next_attempt_at)
    await wait_until(lambda: receiver.processed, 5, "the retry")
    await until_idle(worker, clock)
    assert (await reload(db, row)).status == "delivered"
    assert worker.depth == 0


async def test_a_retry_already_due_is_attempted_at_once_not_after_a_wait(
    db: Database,
    worker: OutboxWorker,
    receiver: WebhookReceiver,
    clock: FakeClock,
) -> None:
    receiver.reply_status = 503
    row = await queue(db, clock.now())
    await worker.deliver_due()
    row = await reload(db, row)
    clock.set(row.next_attempt_at + timedelta(seconds=30))  # the worker was down meanwhile
    receiver.reply_status = 200
    task = asyncio.create_task(worker.run())
    try:
        await wait_until(lambda: receiver.processed, 5, "the overdue retry")
        await until_idle(worker, clock)
        assert clock.next_deadline == pytest.approx(5.0)
    finally:
        worker.stop()
        async with asyncio.timeout(5):
            await task


async def test_a_failing_pass_is_logged_recorded_and_the_worker_keeps_going(
    db: Database,
    worker: OutboxWorker,
    receiver: WebhookReceiver,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with db.begin() as conn:  # the table is gone, as in a half-restored database
        await conn.execute(sqlalchemy.text("DROP TABLE outbox"))
    task = asyncio.create_task(worker.run())
    try:
        await until_parked(clock)
        assert worker.last_error is not None and "outbox" in worker.last_error
        # The database's own error class names the failure (SQLite, PostgreSQL).
        assert worker.last_error.split(":")[0] in {"OperationalError", "ProgrammingError"}
        assert "outbox pass failed" in [r.getMessage() for r in caplog.records]
        assert clock.next_deadline == pytest.approx(5.0)  # tries again after the idle poll
        assert not task.done()
    finally:
        worker.stop()
        async with asyncio.timeout(5):
            await task


async def test_a_stopped_worker_leaves_run_and_attempts_nothing_more(
    db: Database,
    worker: OutboxWorker,
    receiver: WebhookReceiver,
    clock: FakeClock,
) -> None:
    worker.stop()
    await queue(db, clock.now())
    async with asyncio.timeout(5):
        await worker.run()
    assert await worker.deliver_due() == 0
    assert receiver.attempts == []


# -- backoff ------------------------------------------------------------------------------------


def test_backoff_delay_grows_exponentially_with_jitter_and_is_capped() -> None:
    rng, twin = random.Random(1234), random.Random(1234)
    initial, maximum = 1.0, 60.0
    delays = [backoff_delay(n, initial, maximum, rng) for n in range(1, 13)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(maximum, initial * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
        assert delay == twin.uniform(ceiling / 2, ceiling)  # the jitter is the rng's
    # The ceiling doubles (1, 2, 4, ..., 32) until it reaches the cap of 60 at attempt 7.
    assert delays[0] <= 1.0 <= delays[2] and delays[4] <= 16.0 <= delays[5]
    assert all(30.0 <= d <= 60.0 for d in delays[6:])


def test_backoff_delay_treats_the_first_attempt_and_below_as_the_initial_delay() -> None:
    for attempts in (-3, 0, 1):
        delay = backoff_delay(attempts, 4.0, 100.0, random.Random(attempts))
        assert 2.0 <= delay <= 4.0


def test_backoff_delay_is_deterministic_for_a_seeded_rng() -> None:
    a = [backoff_delay(n, 0.5, 30.0, random.Random(9)) for n in range(1, 20)]
    b = [backoff_delay(n, 0.5, 30.0, random.Random(9)) for n in range(1, 20)]
    assert a == b


def test_backoff_delay_stays_capped_after_very_many_attempts() -> None:
    assert 150.0 <= backoff_delay(2000, 1.0, 300.0, random.Random(0)) <= 300.0


# -- the webhook body, as pure functions ---------------------------------------------------------


def message(payload: dict[str, Any], event: str = "alert.firing") -> Message:
    return Message(
        id=7,
        idempotency_key="abc:alert.firing",
        event=event,
        payload=payload,
        created_at=T0,
        attempt=1,
    )


def test_build_body_puts_version_event_sent_at_then_the_alert() -> None:
    alert = sample_alert()
    payload = alert_payload(alert, "alert.firing")
    sent_at = datetime(2030, 1, 1, 12, 0, 5, 250000, tzinfo=UTC)
    body = build_body(message(payload), sent_at)

    decoded = json.loads(body)
    assert list(decoded) == ["version", "event", "sent_at", "alert"]
    assert decoded["version"] == 1
    assert decoded["event"] == "alert.firing"
    assert decoded["sent_at"] == "2030-01-01T12:00:05.250000Z"
    assert decoded["alert"] == payload["alert"]
    assert body.startswith(
        b'{"version":1,"event":"alert.firing","sent_at":"2030-01-01T12:00:05.250000Z",'
        b'"alert":{"id":"5f0c1b8e-0000-4000-8000-000000000001",'
    )
    assert b" " not in body.replace(b"connection refused", b"")  # compact separators


def test_build_body_is_exact_for_a_minimal_payload() -> None:
    body = build_body(
        message({"event": "stale", "alert": {"id": "x"}, "version": 3}, event="alert.resolved"),
        datetime(2030, 1, 1, tzinfo=UTC),
    )
    # The message's event wins over a stale one in the payload; version is kept.
    assert body == (
        b'{"version":3,"event":"alert.resolved","sent_at":"2030-01-01T00:00:00Z",'
        b'"alert":{"id":"x"}}'
    )


def test_sign_is_the_hex_hmac_sha256_of_the_raw_body() -> None:
    # RFC-style known vector: HMAC-SHA256(key="key", "The quick brown fox ...").
    assert sign(b"The quick brown fox jumps over the lazy dog", "key") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
    body = build_body(message(alert_payload(sample_alert(), "alert.firing")), T0)
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign(body, "s3cret") == f"sha256={expected}"
    assert sign(body + b" ", "s3cret") != sign(body, "s3cret")
    assert sign(body, "other") != sign(body, "s3cret")
    assert SIGNATURE_HEADER == "X-Watchkeeper-Signature"
