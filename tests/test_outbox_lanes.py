"""Delivery lanes: each channel has its own in-flight limit, a hung receiver holds only its own
lane, lanes are claimed round-robin, and a freed slot is taken again at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from tests.support.clock import FakeClock, until_parked
from tests.support.delivery import DELIVERY
from tests.support.servers import WebhookReceiver, wait_until
from tests.support.service import running
from watchkeeper.config.loader import Config
from watchkeeper.notify.channels.base import ChannelContext, Message, Outcome
from watchkeeper.notify.channels.webhook import WebhookChannel, WebhookChannelConfig
from watchkeeper.notify.outbox import OutboxWorker
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database
from watchkeeper.store.outbox import OutboxEntry

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Sends:
    """What every gated channel of a test saw, in order, and a way to await a state of it."""

    def __init__(self) -> None:
        self.order: list[tuple[str, str]] = []
        """(channel, idempotency key) as each send started."""
        self.done: list[tuple[str, str]] = []
        self.changed = asyncio.Condition()

    async def note(self, into: list[tuple[str, str]], item: tuple[str, str]) -> None:
        into.append(item)
        async with self.changed:
            self.changed.notify_all()

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(5), self.changed:
                await self.changed.wait_for(predicate)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; sent {self.order}") from None


class Gated(WebhookChannel):
    """A channel whose sends wait until the test opens their gate (or at once when `open`);
    it counts how many it has in hand, and the most it ever had."""

    def __init__(self, name: str, sends: Sends, *, limit: int | None = None, open: bool) -> None:
        spec: dict[str, Any] = {"name": name, "type": "webhook", "url": "http://127.0.0.1:9/"}
        if limit is not None:
            spec["max_in_flight"] = limit
        super().__init__(WebhookChannelConfig.model_validate(spec), ChannelContext(None, 5.0))  # type: ignore[arg-type]
        self.sends = sends
        self.open = open
        self.gates: dict[str, asyncio.Event] = {}
        self.in_hand = 0
        self.most = 0

    def release(self, count: int = 1) -> None:
        waiting = [g for g in self.gates.values() if not g.is_set()]
        assert len(waiting) >= count, f"{self.name}: only {len(waiting)} sends wait"
        for gate in waiting[:count]:
            gate.set()

    async def send(self, message: Message) -> Outcome:
        self.in_hand += 1
        self.most = max(self.most, self.in_hand)
        try:
            gate = self.gates.setdefault(message.idempotency_key, asyncio.Event())
            await self.sends.note(self.sends.order, (self.name, message.idempotency_key))
            if not self.open:
                await gate.wait()
            return Outcome.ok()
        finally:
            self.in_hand -= 1
            await self.sends.note(self.sends.done, (self.name, message.idempotency_key))


def open_all(*channels: Gated) -> None:
    """Let every send through from now on, those waiting too."""
    for gated in channels:
        gated.open = True
        for gate in gated.gates.values():
            gate.set()


@pytest.fixture
def sends() -> Sends:
    return Sends()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


async def queue(db: Database, channel: str, count: int, at: datetime = T0) -> list[str]:
    """Queue `count` entries for `channel` (one transaction each); return their keys."""
    keys = [f"{channel}-{i:03d}" for i in range(count)]
    for key in keys:
        async with db.begin() as conn:
            entry = OutboxEntry(channel, key, "alert.firing", {"alert": {"id": key}})
            await outbox_store.enqueue(conn, [entry], at)
    return keys


async def statuses(db: Database) -> dict[str, str]:
    return {r.idempotency_key: r.status for r in await outbox_store.list_entries(db, limit=1000)}


@pytest.fixture
async def stop_after() -> AsyncIterator[list[tuple[OutboxWorker, asyncio.Task[None]]]]:
    started: list[tuple[OutboxWorker, asyncio.Task[None]]] = []
    yield started
    for worker, task in started:
        worker.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# -- the limit of a lane ------------------------------------------------------------------------


async def test_a_lane_holds_at_most_max_in_flight_and_refills_each_freed_slot(
    sqlite_db: Database, sends: Sends, clock: FakeClock
) -> None:
    ops = Gated("ops", sends, limit=2, open=False)
    worker = OutboxWorker(sqlite_db, {"ops": ops}, DELIVERY, clock)
    keys = await queue(sqlite_db, "ops", 5)
    passing = asyncio.create_task(worker.deliver_due())

    await sends.until(lambda: len(sends.order) == 2, "two sends in hand")
    assert worker.in_flight == {"ops": 2}  # claimed: exactly the limit, no third
    assert [k for _, k in sends.order] == keys[:2]  # oldest first

    ops.release(1)  # one finishes: its slot is taken by the next entry, only one
    await sends.until(lambda: len(sends.order) == 3, "the third send")
    await sends.until(lambda: len(sends.done) == 1, "the first send over")
    assert worker.in_flight == {"ops": 2}
    assert (await statuses(sqlite_db))[keys[0]] == "delivered"

    ops.release(2)
    await sends.until(lambda: len(sends.order) == 5, "the last two sends")
    assert worker.in_flight == {"ops": 2}
    ops.release(2)
    async with asyncio.timeout(5):
        assert await passing == 5
    assert ops.most == 2
    assert worker.in_flight == {}
    assert set((await statuses(sqlite_db)).values()) == {"delivered"}
    assert worker.delivered == 5


async def test_max_in_flight_of_one_sends_a_lane_in_order_one_at_a_time(
    sqlite_db: Database, sends: Sends, clock: FakeClock
) -> None:
    ops = Gated("ops", sends, limit=1, open=True)
    worker = OutboxWorker(sqlite_db, {"ops": ops}, DELIVERY, clock)
    keys = await queue(sqlite_db, "ops", 4)
    assert await worker.deliver_due() == 4
    assert [k for _, k in sends.order] == keys
    assert ops.most == 1


async def test_each_lane_has_its_own_limit_and_the_default_is_four(
    sqlite_db: Database, sends: Sends, clock: FakeClock
) -> None:
    small = Gated("small", sends, limit=1, open=False)
    plain = Gated("plain", sends, open=False)  # no max_in_flight: the default
    worker = OutboxWorker(sqlite_db, {"small": small, "plain": plain}, DELIVERY, clock)
    assert plain.config.max_in_flight == 4
    await queue(sqlite_db, "small", 3)
    await queue(sqlite_db, "plain", 6)
    passing = asyncio.create_task(worker.deliver_due())
    await sends.until(lambda: len(sends.order) == 5, "five sends in hand")
    assert worker.in_flight == {"small": 1, "plain": 4}
    small.release(1)
    plain.release(1)
    await sends.until(lambda: len(sends.order) == 7, "a refill of each lane")
    assert worker.in_flight == {"small": 1, "plain": 4}
    open_all(small, plain)
    async with asyncio.timeout(5):
        assert await passing == 9
    assert (small.most, plain.most) == (1, 4)


async def test_the_ceiling_over_all_lanes_is_never_passed(
    sqlite_db: Database, sends: Sends, clock: FakeClock
) -> None:
    a, b = Gated("a", sends, open=False), Gated("b", sends, open=False)
    worker = OutboxWorker(sqlite_db, {"a": a, "b": b}, DELIVERY, clock, parallel=3)
    await queue(sqlite_db, "a", 4)
    await queue(sqlite_db, "b", 4)
    passing = asyncio.create_task(worker.deliver_due())
    await sends.until(lambda: len(sends.order) == 3, "three sends in hand")
    assert sum(worker.in_flight.values()) == 3
    assert sorted(worker.in_flight.values()) == [1, 2]  # shared out, not one lane's four
    a.release(a.in_hand)
    b.release(b.in_hand)
    await sends.until(lambda: len(sends.order) == 6, "three more")
    assert sum(worker.in_flight.values()) == 3
    a.release(a.in_hand)
    b.release(b.in_hand)
    await sends.until(lambda: len(sends.order) == 8, "the last two")
    a.release(a.in_hand)
    b.release(b.in_hand)
    async with asyncio.timeout(5):
        assert await passing == 8


# -- fairness -------------------------------------------------------------------------------------


async def test_lanes_are_claimed_round_robin_not_oldest_lane_first(
    sqlite_db: Database, sends: Sends, clock: FakeClock
) -> None:
    channels = {n: Gated(n, sends, open=True) for n in ("a", "b", "c")}
    # One delivery at a time in all, so the order of claims is the order of sends. Lane "a"
    # has the oldest backlog; it still gets one turn in three.
    worker = OutboxWorker(sqlite_db, channels, DELIVERY, clock, parallel=1)
    await queue(sqlite_db, "a", 4, at=T0 - timedelta(minutes=5))
    await queue(sqlite_db, "b", 2)
    await queue(sqlite_db, "c", 2)
    assert await worker.deliver_due() == 8
    assert [lane for lane, _ in sends.order] == ["a", "b", "c", "a", "b", "c", "a", "a"]
    # Within a lane, oldest first.
    assert [k for lane, k in sends.order if lane == "a"] == [f"a-{i:03d}" for i in range(4)]


async def test_the_next_pass_starts_with_the_lane_after_the_one_served_last(
    sqlite_db: Database, sends: Sends, clock: FakeClock
) -> None:
    channels = {n: Gated(n, sends, open=True) for n in ("a", "b", "c")}
    worker = OutboxWorker(sqlite_db, channels, DELIVERY, clock, parallel=1)
    await queue(sqlite_db, "b", 1)
    assert await worker.deliver_due() == 1  # "b" served last
    await queue(sqlite_db, "a", 1)
    await queue(sqlite_db, "c", 1)
    assert await worker.deliver_due() == 2
    assert [lane for lane, _ in sends.order] == ["b", "c", "a"]


async def test_a_backlog_larger_than_a_batch_does_not_hide_another_lane(
    sqlite_db: Database, sends: Sends, clock: FakeClock
) -> None:
    busy = Gated("busy", sends, limit=2, open=False)
    quiet = Gated("quiet", sends, limit=2, open=True)
    worker = OutboxWorker(sqlite_db, {"busy": busy, "quiet": quiet}, DELIVERY, clock, batch=4)
    await queue(sqlite_db, "busy", 12, at=T0 - timedelta(minutes=1))  # older than quiet's
    keys = await queue(sqlite_db, "quiet", 3)
    passing = asyncio.create_task(worker.deliver_due())
    await sends.until(
        lambda: sum(lane == "quiet" for lane, _ in sends.done) == 3, "quiet's three deliveries"
    )
    await wait_until(lambda: worker.in_flight == {"busy": 2}, 5, "quiet's settled")
    assert {k: s for k, s in (await statuses(sqlite_db)).items() if k in keys} == dict.fromkeys(
        keys, "delivered"
    )
    open_all(busy)
    async with asyncio.timeout(5):
        assert await passing == 15
    assert busy.most == 2


# -- a hung receiver ----------------------------------------------------------------------------


async def test_a_hung_lane_holds_only_its_slots_and_the_loop_does_not_spin(
    sqlite_db: Database,
    sends: Sends,
    clock: FakeClock,
    stop_after: list[tuple[OutboxWorker, asyncio.Task[None]]],
) -> None:
    hung = Gated("hung", sends, limit=3, open=False)
    healthy = Gated("healthy", sends, open=True)
    worker = OutboxWorker(sqlite_db, {"hung": hung, "healthy": healthy}, DELIVERY, clock)
    await queue(sqlite_db, "hung", 10)
    await queue(sqlite_db, "healthy", 10)
    stop_after.append((worker, asyncio.create_task(worker.run())))
    await sends.until(
        lambda: sum(lane == "healthy" for lane, _ in sends.done) == 10, "healthy's ten"
    )
    # Healthy's last delivery settled, the loop looked again and sleeps: the hung lane is
    # full and its other seven entries are due, yet it sleeps the idle poll (a freed slot
    # wakes it) instead of looking again and again.
    async with asyncio.timeout(5):
        while not (worker.depth == 10 and clock.waiting == 1):
            await clock.next_park()
    assert worker.in_flight == {"hung": 3}
    assert clock.next_deadline == pytest.approx(5.0)
    # A slot freed: the loop wakes and claims the next hung entry at once.
    hung.release(1)
    await sends.until(lambda: len(sends.order) == 14, "the next hung entry")
    assert worker.in_flight == {"hung": 3}


async def test_an_entry_in_hand_is_not_due_again_for_the_loop(
    sqlite_db: Database,
    sends: Sends,
    clock: FakeClock,
    stop_after: list[tuple[OutboxWorker, asyncio.Task[None]]],
) -> None:
    slow = Gated("slow", sends, open=False)  # room for four; one is in hand
    worker = OutboxWorker(sqlite_db, {"slow": slow}, DELIVERY, clock)
    await queue(sqlite_db, "slow", 1)
    stop_after.append((worker, asyncio.create_task(worker.run())))
    await sends.until(lambda: len(sends.order) == 1, "the send in hand")
    await until_parked(clock)  # not looking again and again at the entry it is sending
    assert clock.next_deadline == pytest.approx(5.0)
    assert worker.in_flight == {"slow": 1} and worker.depth == 1


async def test_at_the_ceiling_the_loop_sleeps_until_a_delivery_ends(
    sqlite_db: Database,
    sends: Sends,
    clock: FakeClock,
    stop_after: list[tuple[OutboxWorker, asyncio.Task[None]]],
) -> None:
    slow = Gated("slow", sends, open=False)
    worker = OutboxWorker(sqlite_db, {"slow": slow}, DELIVERY, clock, parallel=2)
    await queue(sqlite_db, "slow", 3)  # the third is due, its lane has room, the ceiling not
    stop_after.append((worker, asyncio.create_task(worker.run())))
    await sends.until(lambda: len(sends.order) == 2, "two sends in hand")
    await until_parked(clock)
    assert clock.next_deadline == pytest.approx(5.0)
    assert worker.in_flight == {"slow": 2}
    slow.release(1)
    await sends.until(lambda: len(sends.order) == 3, "the third, once a delivery ended")


async def test_an_entry_that_could_not_be_settled_is_tried_again_when_its_pause_ends(
    sqlite_db: Database,
    sends: Sends,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    stop_after: list[tuple[OutboxWorker, asyncio.Task[None]]],
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("database went away")

    worker = OutboxWorker(sqlite_db, {"ops": Gated("ops", sends, open=True)}, DELIVERY, clock)
    await queue(sqlite_db, "ops", 1)
    settle = outbox_store.settle
    monkeypatch.setattr(outbox_store, "settle", broken)
    stop_after.append((worker, asyncio.create_task(worker.run())))
    await wait_until(
        lambda: worker.last_error and worker.idle and clock.waiting == 1, 5, "the failed settle"
    )
    assert clock.next_deadline == pytest.approx(5.0)
    clock.advance(4.5)
    worker.wake()  # something else queued: the loop looks, the entry still pauses
    await wait_until(lambda: worker.idle and clock.waiting == 1, 5, "the loop parked again")
    assert clock.next_deadline == pytest.approx(0.5)  # the end of the pause, not the idle poll
    assert len(sends.order) == 1
    monkeypatch.setattr(outbox_store, "settle", settle)
    clock.advance(0.5)
    await sends.until(lambda: len(sends.done) == 2, "the second attempt")
    await wait_until(
        lambda: worker.delivered == 1 and worker.idle and clock.waiting == 1, 5, "settled"
    )
    assert await statuses(sqlite_db) == {"ops-000": "delivered"}


async def test_a_send_that_crashes_frees_its_slot(
    sqlite_db: Database, sends: Sends, clock: FakeClock
) -> None:
    class Crashing(Gated):
        async def send(self, message: Message) -> Outcome:
            await self.sends.note(self.sends.order, (self.name, message.idempotency_key))
            raise ValueError("bug in channel")

    worker = OutboxWorker(
        sqlite_db, {"ops": Crashing("ops", sends, limit=1, open=True)}, DELIVERY, clock
    )
    await queue(sqlite_db, "ops", 3)
    assert await worker.deliver_due() == 3  # each crash freed the one slot for the next
    assert worker.in_flight == {}
    rows = await outbox_store.list_entries(sqlite_db)
    assert {(r.status, r.attempts, r.last_error) for r in rows} == {
        ("pending", 1, "ValueError: bug in channel")
    }


async def test_a_settle_that_fails_frees_the_slot_and_records_the_error(
    sqlite_db: Database, sends: Sends, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("database went away")

    worker = OutboxWorker(
        sqlite_db, {"ops": Gated("ops", sends, limit=1, open=True)}, DELIVERY, clock
    )
    await queue(sqlite_db, "ops", 2)
    settle = outbox_store.settle
    monkeypatch.setattr(outbox_store, "settle", broken)
    assert await worker.deliver_due() == 2  # each freed the lane's one slot for the next
    assert worker.in_flight == {}
    assert worker.last_error == "ConnectionError: database went away"
    assert set((await statuses(sqlite_db)).values()) == {"pending"}
    assert worker.delivered == 0  # not counted: not settled
    # Not sent again and again meanwhile: left alone for the idle poll, then retried.
    assert await worker.deliver_due() == 0
    clock.advance(4.9)
    assert await worker.deliver_due() == 0
    monkeypatch.setattr(outbox_store, "settle", settle)
    clock.advance(0.1)
    assert await worker.deliver_due() == 2
    assert set((await statuses(sqlite_db)).values()) == {"delivered"}
    assert len(sends.order) == 4 and worker.delivered == 2


async def test_stop_finishes_the_deliveries_in_hand_and_claims_no_more(
    sqlite_db: Database, sends: Sends, clock: FakeClock
) -> None:
    ops = Gated("ops", sends, limit=2, open=False)
    worker = OutboxWorker(sqlite_db, {"ops": ops}, DELIVERY, clock)
    keys = await queue(sqlite_db, "ops", 4)
    task = asyncio.create_task(worker.run())
    await sends.until(lambda: len(sends.order) == 2, "two in hand")
    worker.stop()
    ops.release(2)
    async with asyncio.timeout(5):
        await task
    assert len(sends.order) == 2
    assert await statuses(sqlite_db) == {
        keys[0]: "delivered",
        keys[1]: "delivered",
        keys[2]: "pending",
        keys[3]: "pending",
    }


async def test_a_cancelled_worker_cancels_its_sends_and_leaves_them_pending(
    sqlite_db: Database, sends: Sends, clock: FakeClock
) -> None:
    ops = Gated("ops", sends, limit=2, open=False)
    worker = OutboxWorker(sqlite_db, {"ops": ops}, DELIVERY, clock)
    await queue(sqlite_db, "ops", 2)
    task = asyncio.create_task(worker.run())
    await sends.until(lambda: len(sends.order) == 2, "two in hand")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await sends.until(lambda: len(sends.done) == 2, "both sends cancelled")
    assert ops.in_hand == 0
    assert set((await statuses(sqlite_db)).values()) == {"pending"}


# -- the claim query, on both engines ------------------------------------------------------------


async def test_due_per_channel_takes_the_oldest_of_each_lane_and_skips_what_is_in_hand(
    db: Database,
) -> None:
    await queue(db, "a", 5, at=T0 - timedelta(minutes=1))
    await queue(db, "b", 2)
    await queue(db, "c", 1, at=T0 + timedelta(minutes=1))  # not due yet

    rows = await outbox_store.due(db, T0, 10, per_channel=2)
    assert [r.idempotency_key for r in rows] == ["a-000", "a-001", "b-000", "b-001"]
    assert rows[0].payload == {"alert": {"id": "a-000"}} and rows[0].status == "pending"
    assert [r.idempotency_key for r in await outbox_store.due(db, T0, 3, per_channel=2)] == [
        "a-000",
        "a-001",
        "b-000",
    ]
    in_hand = {rows[0].id, rows[2].id}
    rows = await outbox_store.due(db, T0, 10, per_channel=2, skip_ids=in_hand)
    assert [r.idempotency_key for r in rows] == ["a-001", "a-002", "b-001"]
    rows = await outbox_store.due(db, T0, 10, per_channel=3, skip_channels=["a"])
    assert [r.idempotency_key for r in rows] == ["b-000", "b-001"]
    # Without per_channel: the oldest overall, the same skips.
    oldest = await outbox_store.due(db, T0, 10)
    assert [r.idempotency_key for r in oldest] == [f"a-{i:03d}" for i in range(5)] + [
        "b-000",
        "b-001",
    ]
    assert len(await outbox_store.due(db, T0, 3)) == 3
    assert [r.idempotency_key for r in await outbox_store.due(db, T0, 10, skip_ids=in_hand)] == [
        "a-001",
        "a-002",
        "a-003",
        "a-004",
        "b-001",
    ]

    b_ids = {r.id for r in await outbox_store.due(db, T0, 10, skip_channels=["a"])}
    assert await outbox_store.due(db, T0, 10, skip_ids=b_ids, skip_channels=["a"]) == []
    # The depth (every pending entry) and the next due (of what may be claimed) in one.
    minute = timedelta(minutes=1)
    assert await outbox_store.pending(db) == (8, T0 - minute)
    assert await outbox_store.pending(db, skip_channels=["a"]) == (8, T0)
    assert await outbox_store.pending(db, skip_ids=b_ids, skip_channels=["a"]) == (8, T0 + minute)
    assert await outbox_store.pending(db, skip_channels=["a", "b", "c"]) == (8, None)
    async with db.begin() as conn:  # delivered and failed entries count for neither
        await conn.execute(outbox_store.OB.update().values(status="delivered"))
    assert await outbox_store.pending(db) == (0, None)


# -- config ---------------------------------------------------------------------------------------


def test_max_in_flight_is_validated_naming_the_field() -> None:
    base = {"name": "ops", "type": "webhook", "url": "http://127.0.0.1/"}
    assert Config.model_validate({"notifications": [base]}).notifications[0].max_in_flight == 4
    for bad in (0, -1, 65, "many", 2.5):
        with pytest.raises(ValidationError) as raised:
            Config.model_validate({"notifications": [{**base, "max_in_flight": bad}]})
        assert "max_in_flight" in str(raised.value)
    ok = Config.model_validate({"notifications": [{**base, "max_in_flight": 64}]})
    assert ok.notifications[0].max_in_flight == 64


# -- acceptance: a receiver that never answers, through the whole service -------------------


async def test_a_receiver_that_never_answers_does_not_delay_the_healthy_one(
    tmp_path: Any, receiver: WebhookReceiver
) -> None:
    hung = WebhookReceiver(hold=asyncio.Event())  # takes the request, never answers
    await hung.start()
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
            "notifications": [
                {"name": "hung", "type": "webhook", "url": hung.hook_url},
                {"name": "healthy", "type": "webhook", "url": receiver.hook_url},
            ],
        }
    )
    try:
        async with running(config) as service:
            # As Alertmanager sends them: one webhook call with the 30 alerts.
            alerts = [
                {
                    "status": "firing",
                    "labels": {"alertname": f"DiskFull{i:02d}", "severity": "critical"},
                    "annotations": {"summary": "disk full"},
                    "startsAt": "2026-07-01T09:00:00Z",
                }
                for i in range(30)
            ]
            body = {"version": "4", "status": "firing", "receiver": "wk", "alerts": alerts}
            started = time.monotonic()
            response = await service.client.post("/api/v1/alerts", json=body)
            assert response.status_code == 200, response.text
            assert len(response.json()) == 30
            await receiver.wait_for(
                lambda r: len(r.accepted("alert.firing")) == 30,
                2 - (time.monotonic() - started),
                "all 30 alerts at the healthy receiver within 2 s",
            )
            assert time.monotonic() - started < 2
            assert receiver.duplicates == 0
            # The hung receiver has exactly its lane's four requests in hand.
            await hung.wait_for(lambda r: len(r.attempts) == 4, 2, "the hung lane's four")
            outbox = service.runtime.outbox
            await wait_until(lambda: outbox.in_flight == {"hung": 4}, 2, "healthy settled")
            assert len(hung.attempts) == 4
            hung.hold.set()  # so stopping does not wait out the delivery timeout
    finally:
        assert hung.hold is not None
        hung.hold.set()
        await hung.close()
