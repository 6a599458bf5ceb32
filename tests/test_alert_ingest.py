"""The ingest of posted alerts: endsAt resolves through the dispatcher's real loop, an unchanged
re-post writes nothing until the batched flush, concurrent posts of the same alerts make one
alert each (SQLite and PostgreSQL), and one request wakes the dispatcher once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from tests.support.clock import FakeClock, until_parked
from watchkeeper.alerting.dispatcher import build_dispatcher
from watchkeeper.alerting.ingest import AlertIngest
from watchkeeper.config.loader import Config
from watchkeeper.services.alerts import AlertService
from watchkeeper.store import tables
from watchkeeper.store.database import Database

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
A = tables.alerts


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def body(*alerts: dict[str, Any]) -> bytes:
    return json.dumps(list(alerts)).encode()


def am_alert(name: str, ends_at: datetime | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"labels": {"alertname": name, "job": "node"}, **extra}
    if ends_at is not None:
        item["endsAt"] = iso(ends_at)
    return item


@contextmanager
def writes(db: Database) -> Iterator[list[str]]:
    """The INSERT, UPDATE and DELETE statements run on `db` meanwhile."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            seen.append(statement)

    # Both engines: small writes run on the loop's own SQLite connection (Database.on_loop).
    engines = [e for e in (db.engine.sync_engine, db.loop_engine()) if e is not None]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


async def status_of(db: Database, name: str) -> list[str]:
    async with db.connect() as conn:
        rows = await conn.execute(select(A.c.status).where(A.c.name == name))
        return [r.status for r in rows]


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def wakes() -> Wakes:
    return Wakes()


@pytest.fixture
def service(sqlite_db: Database, clock: FakeClock, wakes: Wakes) -> AlertService:
    return AlertService(
        db=sqlite_db, clock=clock, wake_dispatcher=wakes, posted=AlertIngest(sqlite_db, clock)
    )


async def test_an_alert_whose_ends_at_passes_without_a_re_send_resolves_in_the_loop(
    sqlite_db: Database, clock: FakeClock
) -> None:
    ingest = AlertIngest(sqlite_db, clock)  # no flush task: re-posts stay in the index
    dispatcher = build_dispatcher(sqlite_db, clock, Config(), posted=ingest)
    alerts = AlertService(db=sqlite_db, clock=clock, wake_dispatcher=dispatcher.wake, posted=ingest)
    loop = asyncio.create_task(dispatcher.run(), name="dispatcher")
    try:
        await alerts.post_alertmanager(body(am_alert("Hot", T0 + timedelta(minutes=5))))
        await until_parked(clock)

        async def at(minutes: int) -> None:
            parks = clock.parks
            clock.set(T0 + timedelta(minutes=minutes))
            await until_parked(clock, after=parks)

        await at(4)
        # Re-sent with a later endsAt: only the index knows it, and the loop asks it.
        await alerts.post_alertmanager(body(am_alert("Hot", T0 + timedelta(minutes=9))))
        await at(6)
        assert await status_of(sqlite_db, "Hot") == ["firing"]
        await at(10)
        assert await status_of(sqlite_db, "Hot") == ["resolved"]
        # Sent again after it resolved: a new alert.
        await alerts.post_alertmanager(body(am_alert("Hot", T0 + timedelta(minutes=20))))
        assert sorted(await status_of(sqlite_db, "Hot")) == ["firing", "resolved"]
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


async def test_a_past_ends_at_resolves_at_once(service: AlertService, sqlite_db: Database) -> None:
    await service.post_alertmanager(body(am_alert("Gone", T0 + timedelta(hours=1))))
    await service.post_alertmanager(body(am_alert("Gone", T0 - timedelta(seconds=1))))
    assert await status_of(sqlite_db, "Gone") == ["resolved"]
    # Resolved again (Prometheus re-sends resolved alerts for a while): nothing is written.
    with writes(sqlite_db) as seen:
        await service.post_alertmanager(body(am_alert("Gone", T0 - timedelta(seconds=1))))
    assert seen == []


async def test_an_unchanged_re_post_writes_nothing_until_the_batched_flush(
    db: Database, clock: FakeClock, wakes: Wakes
) -> None:
    service = AlertService(db=db, clock=clock, wake_dispatcher=wakes, posted=AlertIngest(db, clock))
    batch = [am_alert(f"A{i}", T0 + timedelta(minutes=5)) for i in range(50)]
    await service.post_alertmanager(body(*batch))
    clock.advance(60)
    later = T0 + timedelta(minutes=6)
    with writes(db) as seen:
        await service.post_alertmanager(body(*[am_alert(f"A{i}", later) for i in range(50)]))
    assert seen == []
    assert service.posted.pending == 50
    with writes(db) as seen:
        assert await service.posted.flush() == 50
    assert len([s for s in seen if s.lstrip().upper().startswith("UPDATE")]) == 1
    async with db.connect() as conn:
        ends = {r.ends_at for r in await conn.execute(select(A.c.ends_at))}
        seen_at = {r.updated_at for r in await conn.execute(select(A.c.updated_at))}
    assert ends == {later} and seen_at == {clock.now()}

    # A restart rebuilds the index from the database: still nothing to write.
    restarted = AlertIngest(db, clock)
    await restarted.load()
    service.posted = restarted
    with writes(db) as seen:
        await service.post_alertmanager(body(*[am_alert(f"A{i}", later) for i in range(50)]))
    assert seen == []


async def test_one_request_wakes_the_dispatcher_once_and_only_when_something_changed(
    service: AlertService, sqlite_db: Database, wakes: Wakes
) -> None:
    batch = [am_alert(f"W{i}", annotations={"summary": "s"}) for i in range(100)]
    await service.post_alertmanager(body(*batch))
    assert wakes.count == 1
    await service.post_alertmanager(body(*batch))
    assert wakes.count == 1
    changed = [*batch[:99], am_alert("W99", annotations={"summary": "worse"})]
    with writes(sqlite_db) as seen:
        await service.post_alertmanager(body(*changed))
    assert wakes.count == 2
    assert len(seen) == 2  # the skipped INSERT of the changed one, its UPDATE; no event
    async with sqlite_db.connect() as conn:
        annotations = (
            await conn.execute(select(A.c.annotations).where(A.c.name == "W99"))
        ).scalar_one()
    assert annotations == {"summary": "worse"}


async def test_identical_alerts_posted_at_once_make_one_alert_each(db: Database) -> None:
    # Twelve requests at once: some through one node's index, some through other nodes'
    # (an empty index each), all racing to open the same 30 alerts.
    clock = FakeClock(T0)
    shared = AlertIngest(db, clock)
    indexes = [shared] * 6 + [AlertIngest(db, clock) for _ in range(6)]
    alerts = [am_alert(f"C{i}", T0 + timedelta(hours=1)) for i in range(30)]
    # Half of them in the opposite order: the writes must not deadlock (PostgreSQL).
    bodies = [body(*alerts), body(*reversed(alerts))]
    services = [
        AlertService(db=db, clock=clock, wake_dispatcher=Wakes(), posted=index) for index in indexes
    ]
    await asyncio.gather(*(s.post_alertmanager(bodies[i % 2]) for i, s in enumerate(services)))
    async with db.connect() as conn:
        open_count = (
            await conn.execute(select(func.count()).select_from(A).where(A.c.status == "firing"))
        ).scalar_one()
        events = (
            await conn.execute(
                select(func.count())
                .select_from(tables.alert_events)
                .where(tables.alert_events.c.kind == "firing")
            )
        ).scalar_one()
    assert (open_count, events) == (30, 30)


async def test_the_flush_task_writes_re_posts_a_second_after_the_first(
    sqlite_db: Database, clock: FakeClock
) -> None:
    ingest = AlertIngest(sqlite_db, clock)
    alerts = AlertService(db=sqlite_db, clock=clock, wake_dispatcher=Wakes(), posted=ingest)
    await alerts.post_alertmanager(body(am_alert("F", T0 + timedelta(minutes=5))))
    flushing = asyncio.create_task(ingest.run(), name="alert-ingest")
    try:
        later = T0 + timedelta(minutes=7)
        await alerts.post_alertmanager(body(am_alert("F", later)))
        await until_parked(clock)
        ingest.flushed.clear()
        clock.advance(1)
        async with asyncio.timeout(5):
            await ingest.flushed.wait()
        async with sqlite_db.connect() as conn:
            assert (await conn.execute(select(A.c.ends_at))).scalar_one() == later
        assert ingest.pending == 0
    finally:
        flushing.cancel()
        await asyncio.gather(flushing, return_exceptions=True)


async def test_new_alerts_get_distinct_time_ordered_version_7_uuids_as_ids(
    service: AlertService, sqlite_db: Database, clock: FakeClock
) -> None:
    await service.post_alertmanager(body(*(am_alert(f"Id{i}") for i in range(300))))
    clock.advance(0.002)
    await service.post_alertmanager(body(am_alert("Later")))
    async with sqlite_db.connect() as conn:
        rows = [(r.id, r.name) for r in await conn.execute(select(A.c.id, A.c.name))]
    ids = [alert_id for alert_id, _ in rows]
    assert len(ids) == len(set(ids)) == 301
    for alert_id in ids:
        parsed = uuid.UUID(alert_id)
        assert (str(parsed), parsed.version, parsed.variant) == (alert_id, 7, uuid.RFC_4122)
        # The first 48 bits: the clock's time in Unix milliseconds (RFC 9562).
        assert parsed.int >> 80 in (int(T0.timestamp() * 1000), int(T0.timestamp() * 1000) + 2)
    # Ordered by creation (index pages are appended to, not dirtied at random).
    later = next(alert_id for alert_id, name in rows if name == "Later")
    assert max(ids) == later
