"""A pass woken only by posted alerts (`Dispatcher.wake_for`) reads the alerts owing a
first page and those posted, not every paged alert, and loses nothing the others are due."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from tests.support.clock import FakeClock, until_parked
from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.dispatcher import Dispatcher, build_dispatcher
from watchkeeper.config.loader import Config
from watchkeeper.core.domain import Alert, Severity
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
CONFIG = Config.model_validate(
    {
        "notifications": [{"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/"}],
        "alerting": {"repeat_interval": "10m"},
    }
)


@contextlib.contextmanager
def statements(db: Database, wanted: Callable[[str], bool]) -> Iterator[list[str]]:
    """The statements for which `wanted` is true, run on either of the database's engines
    while the block runs."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM alerts" in statement and wanted(statement):
            seen.append(statement)

    engines = [db.engine.sync_engine, db.loop_engine()]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", note)


@pytest.fixture
def paged_reads(sqlite_db: Database) -> Iterator[list[str]]:
    """The statements reading every paged alert (`dispatchable(paged=True)`)."""
    with statements(sqlite_db, lambda s: s.endswith("AND alerts.notified_at IS NOT NULL")) as seen:
        yield seen


async def post(db: Database, name: str, at: datetime) -> Alert:
    spec = lifecycle.AlertSpec(
        fingerprint=f"ext:{name}", name=name, severity=Severity.CRITICAL, summary=name
    )
    async with db.begin() as conn:
        alert, _ = await lifecycle.fire(conn, spec, at)
    return alert


async def sent(db: Database) -> list[tuple[str, str]]:
    rows = await outbox_store.list_entries(db, limit=1000)
    return sorted((r.event, str(r.alert_id)) for r in rows)


def dispatcher(db: Database, clock: FakeClock) -> Dispatcher:
    return build_dispatcher(db, clock, CONFIG)


async def test_a_pass_about_a_posted_alert_reads_no_other_paged_alert(
    sqlite_db: Database, paged_reads: list[str]
) -> None:
    clock = FakeClock(T0)
    wk = dispatcher(sqlite_db, clock)
    first = await post(sqlite_db, "first", T0)
    await wk.dispatch_once()  # a pass over everything: `first` is paged
    assert await sent(sqlite_db) == [("alert.firing", first.id)]
    paged_reads.clear()

    clock.advance(timedelta(seconds=1))
    second = await post(sqlite_db, "second", clock.now())
    wk.wake_for([second.id])
    next_at = await wk.dispatch_once()
    assert await sent(sqlite_db) == sorted(
        [("alert.firing", first.id), ("alert.firing", second.id)]
    )
    assert paged_reads == []  # `first` was not read again
    # The pass still wakes for a look at everything: no later than the idle interval.
    assert next_at is not None and next_at <= T0 + timedelta(seconds=5)


async def test_a_posted_alert_resolved_is_told_at_once(sqlite_db: Database) -> None:
    clock = FakeClock(T0)
    wk = dispatcher(sqlite_db, clock)
    alert = await post(sqlite_db, "disk", T0)
    await wk.dispatch_once()
    clock.advance(timedelta(seconds=1))
    async with sqlite_db.begin() as conn:
        await lifecycle.resolve(conn, alert.fingerprint, clock.now())
    wk.wake_for([alert.id])
    await wk.dispatch_once()
    assert await sent(sqlite_db) == [("alert.firing", alert.id), ("alert.resolved", alert.id)]


async def test_paged_alerts_repeat_on_time_between_passes_about_posted_ones(
    sqlite_db: Database,
) -> None:
    clock = FakeClock(T0)
    wk = dispatcher(sqlite_db, clock)
    old = await post(sqlite_db, "old", T0)
    await wk.dispatch_once()
    # Alerts posted every few seconds, each pass about them alone...
    for i in range(1, 205):  # past T0 + 10 min
        clock.set(T0 + timedelta(seconds=3 * i))
        new = await post(sqlite_db, f"new{i}", clock.now())
        wk.wake_for([new.id])
        await wk.dispatch_once()
    # ...and `old` was paged again when its repeat interval (10 min) came.
    async with sqlite_db.connect() as conn:
        stored = await alert_store.by_id(conn, old.id)
    assert stored is not None and stored.escalation_step == 1
    entries = await outbox_store.list_entries(sqlite_db, limit=1000)
    repeats = [r for r in entries if r.alert_id == old.id]
    assert sorted(r.idempotency_key for r in repeats) == [
        f"{old.id}:alert.firing",
        f"{old.id}:alert.firing:repeat:1",
    ]


async def test_a_wake_after_a_posted_alert_looks_at_every_alert(
    sqlite_db: Database, paged_reads: list[str]
) -> None:
    clock = FakeClock(T0)
    wk = dispatcher(sqlite_db, clock)
    await post(sqlite_db, "first", T0)
    await wk.dispatch_once()
    paged_reads.clear()
    second = await post(sqlite_db, "second", T0)
    wk.wake_for([second.id])
    wk.wake()  # a silence, an acknowledgement, the config: every alert may be concerned
    await wk.dispatch_once()
    assert len(paged_reads) == 1


async def test_an_alert_waiting_for_its_group_is_paged_by_a_pass_about_another(
    sqlite_db: Database,
) -> None:
    """A pass about posted alerts reads the never-paged alerts whose group was not due at
    an earlier pass (not only those posted): one falling due meanwhile is paged then."""
    config = Config.model_validate(
        {**CONFIG.model_dump(mode="json"), "alerting": {"group_wait": "2s"}}
    )
    clock = FakeClock(T0)
    wk = build_dispatcher(sqlite_db, clock, config)
    await wk.dispatch_once()  # a pass over everything: next one due at T0 + 5 s
    clock.set(T0 + timedelta(seconds=1))
    waiting = await post(sqlite_db, "waiting", clock.now())
    wk.wake_for([waiting.id])
    assert await wk.dispatch_once() == T0 + timedelta(seconds=3)
    assert await sent(sqlite_db) == []  # its group is due at T0 + 3 s
    clock.set(T0 + timedelta(seconds=3.5))
    other = await post(sqlite_db, "other", T0)  # started long enough ago: due now
    wk.wake_for([other.id])
    await wk.dispatch_once()
    assert await sent(sqlite_db) == sorted(
        [("alert.firing", waiting.id), ("alert.firing", other.id)]
    )


@pytest.fixture
def reads_by_id(sqlite_db: Database) -> Iterator[list[str]]:
    """The statements reading alerts by their ids (`by_ids`)."""
    with statements(sqlite_db, lambda s: "alerts.id IN" in s) as seen:
        yield seen


async def test_an_alert_opened_by_a_post_is_paged_as_handed_over_without_a_read(
    sqlite_db: Database, reads_by_id: list[str]
) -> None:
    clock = FakeClock(T0)
    wk = dispatcher(sqlite_db, clock)
    await wk.dispatch_once()
    clock.advance(timedelta(seconds=1))
    new = await post(sqlite_db, "new", clock.now())
    reads_by_id.clear()
    wk.wake_for([new.id], [new])
    await wk.dispatch_once()
    assert await sent(sqlite_db) == [("alert.firing", new.id)]
    assert reads_by_id == []


async def test_an_alert_changed_after_it_was_handed_over_is_read_as_stored(
    sqlite_db: Database,
) -> None:
    """Opened by one post as low, raised to critical by the next before the pass: the pass
    reads it again and routes it as critical (the object handed over still says low)."""
    config = Config.model_validate(
        {
            "notifications": [
                {"name": n, "type": "webhook", "url": "http://127.0.0.1:9/"}
                for n in ("ops", "pager")
            ],
            "alerting": {
                "routes": [
                    {"matchers": ["severity=critical"], "notify": ["pager"]},
                    {"notify": ["ops"]},
                ]
            },
        }
    )
    clock = FakeClock(T0)
    wk = build_dispatcher(sqlite_db, clock, config)
    await wk.dispatch_once()
    clock.advance(timedelta(seconds=1))
    spec = lifecycle.AlertSpec(
        fingerprint="ext:disk", name="disk", severity=Severity.LOW, summary="disk"
    )
    async with sqlite_db.begin() as conn:
        opened, _ = await lifecycle.fire(conn, spec, clock.now())
    wk.wake_for([opened.id], [opened])
    raised = lifecycle.AlertSpec(
        fingerprint="ext:disk", name="disk", severity=Severity.CRITICAL, summary="disk"
    )
    async with sqlite_db.begin() as conn:
        await lifecycle.fire(conn, raised, clock.now())
    wk.wake_for([opened.id])
    await wk.dispatch_once()
    [entry] = await outbox_store.list_entries(sqlite_db)
    assert (entry.channel, entry.alert_id) == ("pager", opened.id)


class PassTimer:
    """`pass_timer` for a dispatcher: each reading is `step` seconds after the last (a pass
    over every alert then seems to take `step` seconds)."""

    def __init__(self, step: float) -> None:
        self.at, self.step = 0.0, step

    def __call__(self) -> float:
        self.at += self.step
        return self.at


async def test_a_long_pass_over_every_alert_spaces_out_the_next_in_the_real_loop(
    sqlite_db: Database, paged_reads: list[str]
) -> None:
    clock = FakeClock(T0)
    # Each pass over every alert seems to take 1 s: the safety net's next one is due 20 s
    # later (5 % of the time), not after the 5 s idle interval.
    config = CONFIG.model_copy(deep=True)
    config.alerting.group_wait = timedelta(0)
    wk = build_dispatcher(sqlite_db, clock, config)
    wk._pass_timer = PassTimer(1.0)  # read at the pass's start and end: 1 s apart
    await post(sqlite_db, "open", T0)
    loop = asyncio.create_task(wk.run(), name="dispatcher")
    try:
        await until_parked(clock)
        assert len(paged_reads) == 1  # the first pass looked at every alert
        for seconds in (5, 10, 15):  # the idle timer
            parks = clock.parks
            clock.set(T0 + timedelta(seconds=seconds))
            await until_parked(clock, after=parks)
            assert len(paged_reads) == 1, f"a pass over every alert at {seconds} s"
        parks = clock.parks
        clock.set(T0 + timedelta(seconds=20))
        await until_parked(clock, after=parks)
        assert len(paged_reads) == 2
        # A wake still gets its pass over every alert at once.
        parks = clock.parks
        wk.wake()
        await until_parked(clock, after=parks)
        assert len(paged_reads) == 3
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
