"""Silences on their own: when one is active, what its length may be, and how it is stored."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from watchkeeper.alerting.matchers import parse_matcher
from watchkeeper.alerting.silences import (
    Silence,
    check_length,
    create_silence,
    expire_silence,
    get_silence,
    list_silences,
)
from watchkeeper.core.durations import LONG_SPAN
from watchkeeper.store import tables
from watchkeeper.store.database import Database

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
API = [parse_matcher("check=api")]


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await database.migrate()
    yield database
    await database.close()


async def create(db: Database, starts_at: datetime, ends_at: datetime) -> Silence:
    return await create_silence(db, API, starts_at, ends_at, "alice", "deploy", T0)


def test_a_silence_is_active_from_its_start_up_to_but_not_at_its_end() -> None:
    silence = Silence("s", API, T0, T0 + HOUR, "alice", "deploy", T0)
    assert not silence.active(T0 - timedelta(microseconds=1))
    assert silence.active(T0)
    assert silence.active(T0 + HOUR - timedelta(microseconds=1))
    assert not silence.active(T0 + HOUR)
    assert [silence.state(t) for t in (T0 - HOUR, T0, T0 + HOUR)] == [
        "pending",
        "active",
        "expired",
    ]
    assert not silence.silences({"check": "api"}, T0 + HOUR)


def test_a_silence_must_end_after_it_starts() -> None:
    for ends_at in (T0, T0 - HOUR):
        with pytest.raises(ValueError) as caught:
            check_length(T0, ends_at)
        assert str(caught.value) == "ends_at must be after starts_at"


def test_a_silence_may_last_exactly_the_longest_span_and_no_longer() -> None:
    check_length(T0, T0 + LONG_SPAN.maximum)
    with pytest.raises(ValueError) as caught:
        check_length(T0, T0 + LONG_SPAN.maximum + timedelta(microseconds=1))
    assert str(caught.value).startswith("ends_at: a silence lasts at most ")


async def test_a_silence_without_matchers_is_refused_saying_so(db: Database) -> None:
    with pytest.raises(ValueError) as caught:
        await create_silence(db, [], T0, T0 + HOUR, "alice", "deploy", T0)
    assert str(caught.value) == "a silence needs at least one matcher"
    assert await list_silences(db) == []


async def test_each_silence_gets_its_own_id_and_reads_back_by_it(db: Database) -> None:
    first, second = await create(db, T0, T0 + HOUR), await create(db, T0, T0 + HOUR)
    assert first.id != second.id
    assert uuid.UUID(first.id).version == 4
    stored = await get_silence(db, first.id)
    assert stored is not None and stored.id == first.id and stored.matchers == API


async def test_an_unknown_silence_id_reads_back_as_none(db: Database) -> None:
    assert await get_silence(db, str(uuid.uuid4())) is None
    assert await expire_silence(db, str(uuid.uuid4()), T0) is None


async def test_silences_are_listed_latest_ending_first(db: Database) -> None:
    made = [await create(db, T0, T0 + n * HOUR) for n in (1, 3, 2)]
    listed = await list_silences(db)
    assert [s.id for s in listed] == [made[1].id, made[2].id, made[0].id]


async def test_a_silence_that_ended_exactly_at_the_cutoff_is_not_listed(db: Database) -> None:
    ended = await create(db, T0 - HOUR, T0)
    later = await create(db, T0 - HOUR, T0 + timedelta(seconds=1))
    listed = await list_silences(db, include_expired_since=T0)
    assert [s.id for s in listed] == [later.id]
    assert {s.id for s in await list_silences(db)} == {ended.id, later.id}


async def test_expiring_a_pending_silence_ends_it_at_its_start(db: Database) -> None:
    pending = await create(db, T0 + HOUR, T0 + 2 * HOUR)
    expired = await expire_silence(db, pending.id, T0)
    assert expired is not None and expired.ends_at == T0 + HOUR
    assert expired.state(T0) == "pending" and not expired.active(T0 + HOUR)


async def test_a_stored_silence_whose_matchers_cannot_be_read_names_the_error(
    db: Database,
) -> None:
    # Not even a string or an object: parsing fails with a TypeError, not a ValueError.
    async with db.begin() as conn:
        await conn.execute(
            tables.silences.insert().values(
                id="odd",
                matchers=[123],
                starts_at=T0,
                ends_at=T0 + HOUR,
                created_by="old",
                comment="",
                created_at=T0,
            )
        )
    silence = await get_silence(db, "odd")
    assert silence is not None and silence.matchers == []
    assert silence.error is not None and silence.error.startswith("TypeError: ")
    assert not silence.silences({"check": "api"}, T0)
