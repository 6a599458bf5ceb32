"""Every channel type once through the outbox against its loopback receiver: the first attempt
is refused for a while (5xx, or an SMTP temporary failure), the outbox retries it on its clock,
and the receiver ends up with the notification exactly once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.notify.test_apprise import JsonReceiver
from tests.notify.test_email import Inbox, smtp_server
from tests.notify.test_pagerduty import KEY, PagerDutyReceiver
from tests.notify.test_slack import SlackReceiver
from tests.support.clock import FakeClock
from tests.support.delivery import DELIVERY
from tests.support.servers import WebhookReceiver
from watchkeeper.config.loader import Config
from watchkeeper.core.domain import Alert, AlertStatus, Severity
from watchkeeper.notify.channels.base import Channel, ChannelContext
from watchkeeper.notify.channels.registry import build_channel
from watchkeeper.notify.outbox import OutboxWorker
from watchkeeper.notify.payload import alert_payload
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
ALERT = Alert(
    id="5f0c1b8e-0000-4000-8000-000000000001",
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


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


async def refused_then_delivered(
    db: Database,
    http: aiohttp.ClientSession,
    spec: dict[str, Any],
    recover: Callable[[], None],
    delivered: Callable[[], Awaitable[int] | int],
) -> None:
    """Queue one alert.firing for the channel `spec` describes; its receiver refuses the first
    attempt, `recover` makes it accept; `delivered` counts what it accepted."""
    clock = FakeClock(T0)
    [config] = Config.model_validate({"notifications": [spec]}).notifications
    channel: Channel[Any] = build_channel(
        config, ChannelContext(http, DELIVERY.timeout.total_seconds(), clock.now)
    )
    worker = OutboxWorker(db, {channel.name: channel}, DELIVERY, clock)
    event = "alert.firing"
    async with db.begin() as conn:
        entry = outbox_store.OutboxEntry(
            channel.name, f"{ALERT.id}:{event}", event, alert_payload(ALERT, event), ALERT.id
        )
        await outbox_store.enqueue(conn, [entry], clock.now())

    assert await worker.deliver_due() == 1
    [row] = await outbox_store.list_entries(db)
    assert row.status == "pending" and row.attempts == 1, row.last_error
    assert row.last_error and row.next_attempt_at > clock.now()
    assert await count(delivered) == 0

    recover()
    clock.set(row.next_attempt_at)
    assert await worker.deliver_due() == 1
    [row] = await outbox_store.list_entries(db)
    assert (row.status, row.attempts) == ("delivered", 2), row.last_error
    assert await count(delivered) == 1

    clock.advance(timedelta(days=1))  # nothing left to send, however long we wait
    assert await worker.deliver_due() == 0
    assert await count(delivered) == 1


async def count(delivered: Callable[[], Awaitable[int] | int]) -> int:
    value = delivered()
    return value if isinstance(value, int) else await value


async def test_webhook(db: Database, http: aiohttp.ClientSession) -> None:
    receiver = await WebhookReceiver(secret="k3y").start()
    try:
        receiver.reply_status = 503

        def recover() -> None:
            receiver.reply_status = 200

        spec = {"name": "ops", "type": "webhook", "url": receiver.hook_url, "secret": "k3y"}
        await refused_then_delivered(db, http, spec, recover, lambda: len(receiver.accepted()))
        assert [d.answered for d in receiver.attempts] == [503, 200]
        assert receiver.duplicates == 0
    finally:
        await receiver.close()


async def test_slack(db: Database, http: aiohttp.ClientSession) -> None:
    receiver = await SlackReceiver().start()
    try:
        receiver.reply = (500, "internal_error")
        refused: list[int] = []

        def recover() -> None:
            refused.append(len(receiver.received))
            receiver.reply = None

        def accepted() -> int:
            # The receiver records every well-formed body, the refused ones too.
            return len(receiver.received) - (refused[0] if refused else len(receiver.received))

        spec = {"name": "chat", "type": "slack", "webhook_url": receiver.hook_url}
        await refused_then_delivered(db, http, spec, recover, accepted)
        first, second = receiver.received
        assert refused == [1] and first == second  # the same message, refused then accepted
    finally:
        await receiver.close()


async def test_pagerduty(db: Database, http: aiohttp.ClientSession) -> None:
    receiver = await PagerDutyReceiver().start()
    try:
        receiver.status = 502  # refused before it is recorded as an event

        def recover() -> None:
            receiver.status = None

        spec = {
            "name": "pd",
            "type": "pagerduty",
            "routing_key": KEY,
            "url": f"{receiver.url}/v2/enqueue",
            "change_url": f"{receiver.url}/v2/change/enqueue",
        }
        await refused_then_delivered(db, http, spec, recover, lambda: len(receiver.events))
        [event] = receiver.events
        assert event["event_action"] == "trigger" and event["dedup_key"] == "check:db"
    finally:
        await receiver.close()


class GreylistingInbox(Inbox):
    """Answers DATA with a temporary failure while `refuse` is set."""

    refuse = True

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            return "451 4.7.1 Greylisted, try again later"
        return await super().handle_DATA(server, session, envelope)


async def test_email(db: Database, http: aiohttp.ClientSession) -> None:
    inbox = GreylistingInbox()

    def recover() -> None:
        inbox.refuse = False

    async with smtp_server(inbox) as port:
        spec = {
            "name": "mail",
            "type": "email",
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "from_addr": "Watchkeeper <wk@example.com>",
            "to": ["ops@example.com"],
        }
        await refused_then_delivered(db, http, spec, recover, lambda: len(inbox.received))
    [mail] = inbox.received
    assert mail.recipients == ["ops@example.com"]
    assert "db" in str(mail.message["Subject"])


async def test_apprise_json(db: Database, http: aiohttp.ClientSession) -> None:
    receiver = await JsonReceiver().start()
    try:
        receiver.status = 500
        refused: list[int] = []

        def recover() -> None:
            refused.append(len(receiver.received))
            receiver.status = 200

        def accepted() -> int:
            return len(receiver.received) - (refused[0] if refused else len(receiver.received))

        spec = {"name": "push", "type": "apprise", "url": receiver.apprise_url()}
        await refused_then_delivered(db, http, spec, recover, accepted)
        assert refused == [1]  # one refused post, then one accepted
    finally:
        await receiver.close()
