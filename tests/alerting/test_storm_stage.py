"""The storm stage between the other stages and the guard (alerting/dispatch/storm)."""

from __future__ import annotations

from datetime import timedelta

from tests.alerting.factory import T0
from watchkeeper.alerting.dispatch.context import Pass
from watchkeeper.alerting.dispatch.storm import StormStage
from watchkeeper.notify.storm import DIGEST_EVENT, ChannelLimit
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database

LIMIT = {"ops": ChannelLimit(max_per_hour=1, digest_interval=timedelta(minutes=15))}


def entry(n: int, channel: str = "ops") -> outbox_store.OutboxEntry:
    return outbox_store.OutboxEntry(channel, f"a{n}:alert.firing", "alert.firing", {})


async def statuses(db: Database) -> dict[str, str]:
    return {e.idempotency_key: e.status for e in await outbox_store.list_entries(db, limit=100)}


async def test_held_entries_count_as_queued(db: Database) -> None:
    stage = StormStage(LIMIT)
    async with db.begin() as conn:
        assert await stage.enqueue(conn, [entry(1), entry(2), entry(3, "chat")], T0) == 3
    assert await statuses(db) == {
        "a1:alert.firing": outbox_store.PENDING,
        "a2:alert.firing": outbox_store.HELD,
        "a3:alert.firing": outbox_store.PENDING,
    }


async def test_without_limits_everything_is_queued(db: Database) -> None:
    async with db.begin() as conn:
        assert await StormStage().enqueue(conn, [entry(1), entry(2)], T0) == 2
    assert set((await statuses(db)).values()) == {outbox_store.PENDING}


async def test_a_due_digest_is_queued_and_the_next_one_wakes_the_pass(db: Database) -> None:
    stage = StormStage(LIMIT)
    async with db.begin() as conn:
        await stage.enqueue(conn, [entry(1), entry(2)], T0)
    at = Pass(T0)
    assert await stage.flush_digests(db, at) == 1
    assert at.wakeups == []
    async with db.begin() as conn:
        await stage.enqueue(conn, [entry(3)], T0 + timedelta(minutes=1))
    later = Pass(T0 + timedelta(minutes=1))
    assert await stage.flush_digests(db, later) == 0
    assert later.wakeups == [T0 + timedelta(minutes=15)]
    events = [e.event for e in await outbox_store.list_entries(db, limit=100)]
    assert events.count(DIGEST_EVENT) == 1
