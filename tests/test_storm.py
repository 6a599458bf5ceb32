"""The storm guard on a real outbox table: what it holds, when its digest is due, what it says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from watchkeeper.notify.storm import DIGEST_EVENT, ChannelLimit, StormGuard
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
GUARD = StormGuard({"ops": ChannelLimit(max_per_hour=2, digest_interval=timedelta(minutes=15))})


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await database.migrate()
    yield database
    await database.close()


def entry(n: int, event: str = "alert.firing", channel: str = "ops") -> outbox_store.OutboxEntry:
    alert = {"name": f"svc{n}", "severity": "critical" if n % 2 else "warning"}
    return outbox_store.OutboxEntry(channel, f"a{n}:{event}", event, {"alert": alert})


async def offer(db: Database, entries: list[outbox_store.OutboxEntry], at: datetime) -> int:
    async with db.begin() as conn:
        return await GUARD.enqueue(conn, entries, at)


async def statuses(db: Database) -> dict[str, str]:
    return {e.idempotency_key: e.status for e in await outbox_store.list_entries(db, limit=500)}


async def digests(db: Database) -> list[Any]:
    return [e for e in await outbox_store.list_entries(db, limit=500) if e.event == DIGEST_EVENT]


async def test_a_digest_counts_and_lists_every_held_event_with_its_alert(db: Database) -> None:
    assert await offer(db, [entry(1), entry(2)], T0) == 2
    later = T0 + timedelta(minutes=1)
    held = [entry(3), entry(4, "alert.resolved"), entry(5)]
    held.append(outbox_store.OutboxEntry("ops", "x:alert.firing", "alert.firing", {}))
    assert await offer(db, held, later) == 0

    assert await GUARD.flush_digests(db, later) == (1, [])
    [digest] = await digests(db)
    assert digest.idempotency_key.startswith("digest:ops:")
    assert digest.payload == {
        "version": 1,
        "event": DIGEST_EVENT,
        "digest": {
            "suppressed": 4,
            "since": "2030-01-01T12:01:00Z",
            "events": {"alert.firing": 3, "alert.resolved": 1},
            "alerts": [
                {"event": "alert.firing", "name": "svc3", "severity": "critical"},
                {"event": "alert.resolved", "name": "svc4", "severity": "warning"},
                {"event": "alert.firing", "name": "svc5", "severity": "critical"},
                {"event": "alert.firing", "name": None, "severity": None},
            ],
        },
    }
    assert {k: s for k, s in (await statuses(db)).items() if k.startswith("a")} == {
        "a1:alert.firing": "pending",
        "a2:alert.firing": "pending",
        "a3:alert.firing": "digested",
        "a4:alert.resolved": "digested",
        "a5:alert.firing": "digested",
    }


async def test_a_digest_names_fifty_alerts_and_counts_them_all(db: Database) -> None:
    await offer(db, [entry(n) for n in range(2 + 60)], T0)
    await GUARD.flush_digests(db, T0)
    [digest] = await digests(db)
    assert digest.payload["digest"]["suppressed"] == 60
    assert len(digest.payload["digest"]["alerts"]) == 50
    assert digest.payload["digest"]["alerts"][0]["name"] == "svc2"


async def test_digests_and_held_entries_do_not_count_against_the_hourly_limit(
    db: Database,
) -> None:
    await offer(db, [entry(1), entry(2), entry(3)], T0)  # two sent, one held
    # A digest is queued half an hour later: it is not an alert page.
    await GUARD.flush_digests(db, T0 + timedelta(minutes=30))
    assert len(await digests(db)) == 1
    # Neither the digest nor the digested entry used up a slot: still two in the hour.
    assert await offer(db, [entry(4)], T0 + timedelta(minutes=31)) == 0
    # An hour after the first two, both slots are free again, the digest inside the hour
    # notwithstanding.
    assert await offer(db, [entry(5), entry(6)], T0 + timedelta(hours=1)) == 2


async def test_another_channel_is_not_limited_by_this_ones_pages(db: Database) -> None:
    await offer(db, [entry(1), entry(2), entry(3)], T0)
    assert await offer(db, [entry(n, channel="mail") for n in range(10)], T0) == 10


async def test_the_next_digest_waits_a_digest_interval_after_the_last(db: Database) -> None:
    await offer(db, [entry(1), entry(2), entry(3)], T0)
    assert (await GUARD.flush_digests(db, T0))[0] == 1
    await offer(db, [entry(4)], T0 + timedelta(minutes=5))
    due = T0 + timedelta(minutes=15)
    assert await GUARD.flush_digests(db, T0 + timedelta(minutes=5)) == (0, [due])
    assert await GUARD.flush_digests(db, due - timedelta(microseconds=1)) == (0, [due])
    assert await GUARD.flush_digests(db, due) == (1, [])
    assert sorted(d.payload["digest"]["suppressed"] for d in await digests(db)) == [1, 1]


async def test_each_channel_digests_its_own_held_entries_on_its_own_schedule(
    db: Database,
) -> None:
    interval = timedelta(minutes=15)
    guard = StormGuard({c: ChannelLimit(1, interval) for c in ("calm", "ops", "pager")})

    async def offer_to(channel: str, n: int, at: datetime) -> None:
        async with db.begin() as conn:
            await guard.enqueue(conn, [entry(n, channel=channel)], at)

    # "calm" never holds anything; "ops" digested a minute ago; "pager" holds for the first time.
    for n in (1, 2):
        await offer_to("ops", n, T0)
    assert await guard.flush_digests(db, T0) == (1, [])
    await offer_to("ops", 3, T0)
    for n in (4, 5, 6):
        await offer_to("pager", n, T0 + timedelta(minutes=1))

    # The pager's first digest is due at once, though the ops channel waits for its interval.
    assert await guard.flush_digests(db, T0 + timedelta(minutes=1)) == (1, [T0 + interval])
    [ops, pager] = sorted(await digests(db), key=lambda d: d.channel)
    assert (ops.channel, pager.channel) == ("ops", "pager")
    assert [a["name"] for a in pager.payload["digest"]["alerts"]] == ["svc5", "svc6"]
    # Both due together: two digests queued in one call.
    await offer_to("pager", 7, T0 + timedelta(minutes=2))
    assert await guard.flush_digests(db, T0 + timedelta(minutes=16)) == (2, [])
    per_channel = sorted((d.channel, d.payload["digest"]["suppressed"]) for d in await digests(db))
    assert per_channel == [("ops", 1), ("ops", 1), ("pager", 1), ("pager", 2)]
