"""A first page's outbox entries go straight to the outbox worker (no claim read), still
exactly once; its transaction runs on the loop's own SQLite connection, and falls back to
the usual path when another writer holds the database."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event, select
from sqlalchemy.util.concurrency import await_

from tests.support.clock import FakeClock
from tests.support.delivery import DELIVERY
from tests.support.servers import WebhookReceiver, wait_until
from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.dispatcher import build_dispatcher
from watchkeeper.config.loader import Config
from watchkeeper.core.domain import Severity
from watchkeeper.notify.channels.base import ChannelContext
from watchkeeper.notify.channels.webhook import WebhookChannel, WebhookChannelConfig
from watchkeeper.notify.outbox import OutboxWorker
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import tables
from watchkeeper.store.database import Connection, Database
from watchkeeper.store.outbox import OutboxEntry

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def worker_for(
    db: Database, http: aiohttp.ClientSession, receiver: WebhookReceiver, clock: FakeClock
) -> OutboxWorker:
    config = WebhookChannelConfig.model_validate(
        {"name": "ops", "type": "webhook", "url": receiver.hook_url}
    )
    channel = WebhookChannel(config, ChannelContext(http, 5.0))
    return OutboxWorker(db, {"ops": channel}, DELIVERY, clock)


@pytest.fixture
def held_claim(sqlite_db: Database) -> Iterator[tuple[asyncio.Event, asyncio.Event]]:
    """(read, release): the outbox claim, once its rows are read (SQLite's snapshot taken,
    the rows fetched), waits before it looks at them (`read` is set then) until `release`."""
    read, release = asyncio.Event(), asyncio.Event()

    def hold(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "lane_rank" in statement and not release.is_set():
            read.set()
            # In SQLAlchemy's greenlet on the loop: the claim waits, the loop goes on.
            await_(release.wait())

    engine = sqlite_db.engine.sync_engine
    event.listen(engine, "after_cursor_execute", hold)
    yield read, release
    release.set()
    event.remove(engine, "after_cursor_execute", hold)


@pytest.mark.parametrize("released", ["while in hand", "after delivery"])
async def test_an_entry_handed_off_while_a_claim_reads_it_is_sent_once(
    sqlite_db: Database,
    http: aiohttp.ClientSession,
    receiver: WebhookReceiver,
    held_claim: tuple[asyncio.Event, asyncio.Event],
    released: str,
) -> None:
    clock = FakeClock(T0)
    worker = worker_for(sqlite_db, http, receiver, clock)
    entry = OutboxEntry("ops", "a1:alert.firing", "alert.firing", {"event": "alert.firing"}, None)
    async with sqlite_db.begin() as conn:
        rows = await outbox_store.enqueue_returning(conn, [entry], clock.now())
    assert [(r.channel, r.idempotency_key, r.status) for r in rows] == [
        ("ops", "a1:alert.firing", "pending")
    ]
    read, release = held_claim
    if released == "while in hand":
        receiver.hold = asyncio.Event()  # the receiver answers when told
    claim = asyncio.create_task(worker.deliver_due())
    await wait_until(read.is_set, 5, "the claim reads the entry, still pending")
    worker.hand_off(rows)
    if released == "while in hand":
        await wait_until(lambda: receiver.attempts, 5, "the handed-off delivery arrives")
        release.set()  # the claim returns the entry while its delivery is in hand
        await wait_until(lambda: not worker.claiming, 5, "the claim took what it read")
        assert receiver.hold is not None
        receiver.hold.set()
    else:
        await wait_until(lambda: worker.delivered == 1, 5, "delivered by the hand-off")
        await wait_until(lambda: not worker.in_flight, 5, "its slot freed")
        release.set()  # the claim returns the entry it read pending, delivered since
    await asyncio.wait_for(claim, 10)
    assert len(receiver.attempts) == 1
    assert worker.delivered == 1
    [row] = await outbox_store.list_entries(sqlite_db)
    assert (row.status, row.attempts) == ("delivered", 1)


async def test_a_full_lane_leaves_the_handed_entry_to_the_next_claim(
    sqlite_db: Database, http: aiohttp.ClientSession, receiver: WebhookReceiver
) -> None:
    clock = FakeClock(T0)
    worker = worker_for(sqlite_db, http, receiver, clock)
    receiver.hold = asyncio.Event()
    entries = [
        OutboxEntry("ops", f"a{i}:alert.firing", "alert.firing", {"n": i}, None)
        for i in range(worker.lane_limit("ops") + 1)
    ]
    async with sqlite_db.begin() as conn:
        rows = await outbox_store.enqueue_returning(conn, entries, clock.now())
    worker.hand_off(rows)
    assert worker.in_flight == {"ops": worker.lane_limit("ops")}
    assert not worker.idle  # woken: the one left over is claimed when a slot frees
    receiver.hold.set()
    assert await worker.deliver_due() == 1  # the one the lane had no room for
    assert sorted(receiver.accepted_per_key.values()) == [1] * len(entries)


async def test_a_first_page_is_handed_to_the_outbox_without_a_wake(sqlite_db: Database) -> None:
    config = Config.model_validate(
        {"notifications": [{"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/"}]}
    )
    handed: list[Any] = []
    woken: list[bool] = []
    dispatcher = build_dispatcher(
        sqlite_db,
        FakeClock(T0),
        config,
        on_enqueued=lambda: woken.append(True),
        hand_off=handed.extend,
    )
    async with sqlite_db.begin() as conn:
        await lifecycle.fire(
            conn,
            lifecycle.AlertSpec(
                fingerprint="ext:disk", name="disk", severity=Severity.CRITICAL, summary="full"
            ),
            T0,
        )
    await dispatcher.dispatch_once()
    assert [(r.channel, r.event, r.status) for r in handed] == [("ops", "alert.firing", "pending")]
    [row] = await outbox_store.list_entries(sqlite_db)
    assert row.id == handed[0].id and row.idempotency_key == handed[0].idempotency_key
    assert woken == []  # nothing left for a claim to find


async def test_on_loop_runs_the_work_again_the_usual_way_when_the_database_is_locked(
    sqlite_db: Database,
) -> None:
    path = str(sqlite_db.engine.url.database)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the database
    attempts = 0

    async def work(conn: Connection) -> int:
        nonlocal attempts
        attempts += 1
        await conn.execute(
            tables.alert_groups.insert().values(key="k", first_seen_at=T0, last_notified_at=T0)
        )
        return attempts

    task = asyncio.create_task(sqlite_db.on_loop(work))
    # The loop's connection is refused at once; the second attempt waits for the lock.
    await wait_until(lambda: attempts == 2, 5, "the work runs again off the loop")
    holder.execute("ROLLBACK")
    holder.close()
    assert await asyncio.wait_for(task, 10) == 2
    async with sqlite_db.connect() as conn:
        keys = (await conn.execute(select(tables.alert_groups.c.key))).scalars().all()
    assert keys == ["k"]  # once: the refused attempt left nothing


async def test_on_loop_commits_on_the_loops_connection_when_the_database_is_free(
    sqlite_db: Database,
) -> None:
    threads: list[int] = []

    def seen(*args: Any) -> None:
        threads.append(threading.get_ident())

    engine = sqlite_db.loop_engine()
    assert engine is not None
    event.listen(engine, "before_cursor_execute", seen)

    async def work(conn: Connection) -> None:
        await conn.execute(
            tables.alert_groups.insert().values(key="k", first_seen_at=T0, last_notified_at=T0)
        )

    await sqlite_db.on_loop(work)
    assert threads == [threading.get_ident()]  # on the loop's thread, no trip elsewhere
    async with sqlite_db.connect() as conn:
        keys = (await conn.execute(select(tables.alert_groups.c.key))).scalars().all()
    assert keys == ["k"]
