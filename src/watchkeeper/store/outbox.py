"""The notification outbox table: enqueue inside the caller's transaction, claim, settle."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.store import tables
from watchkeeper.store.database import Database

OB = tables.outbox

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
HELD, DIGESTED = "held", "digested"
"""Storm protection: held entries wait for a digest; digested ones were summarised in one."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    channel: str
    idempotency_key: str
    event: str
    payload: dict[str, Any]
    alert_id: str | None = None


async def enqueue(
    conn: AsyncConnection, entries: list[OutboxEntry], now: datetime, status: str = PENDING
) -> None:
    """Queue deliveries in the caller's transaction: they exist iff the change they report does."""
    if not entries:
        return
    await conn.execute(
        OB.insert(),
        [
            {
                "channel": e.channel,
                "idempotency_key": e.idempotency_key,
                "event": e.event,
                "alert_id": e.alert_id,
                "payload": e.payload,
                "status": status,
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
            for e in entries
        ],
    )


def _claimable(
    now: datetime | None, skip_ids: Collection[int], skip_channels: Collection[str]
) -> ColumnElement[bool]:
    """Pending entries not in hand (`skip_ids`) of lanes with a free slot (not `skip_channels`),
    due by `now` when given."""
    conditions = [OB.c.status == PENDING]
    if now is not None:
        conditions.append(OB.c.next_attempt_at <= now)
    if skip_ids:
        conditions.append(OB.c.id.notin_(sorted(skip_ids)))
    if skip_channels:
        conditions.append(OB.c.channel.notin_(sorted(skip_channels)))
    return and_(*conditions)


async def due(
    db: Database,
    now: datetime,
    limit: int = 100,
    *,
    per_channel: int | None = None,
    skip_ids: Collection[int] = (),
    skip_channels: Collection[str] = (),
) -> list[Any]:
    """Entries due by `now`, oldest first, at most `limit`; with `per_channel`, at most that
    many of each channel (the oldest of each), so one channel's backlog cannot fill the batch.
    `skip_ids` (entries in hand) and `skip_channels` (full lanes) are left out."""
    where = _claimable(now, skip_ids, skip_channels)
    if per_channel is None:
        query = select(OB).where(where).order_by(OB.c.next_attempt_at, OB.c.id).limit(limit)
    else:
        rank = func.row_number().over(
            partition_by=OB.c.channel, order_by=(OB.c.next_attempt_at, OB.c.id)
        )
        ranked = select(OB, rank.label("lane_rank")).where(where).subquery()
        query = (
            select(*(ranked.c[c.name] for c in OB.columns))
            .where(ranked.c.lane_rank <= per_channel)
            .order_by(ranked.c.next_attempt_at, ranked.c.id)
            .limit(limit)
        )
    async with db.connect() as conn:
        rows = await conn.execute(query)
        return list(rows.all())


async def next_due_at(
    db: Database, *, skip_ids: Collection[int] = (), skip_channels: Collection[str] = ()
) -> datetime | None:
    """When the next entry falls due, leaving out those in hand and those of full lanes."""
    async with db.connect() as conn:
        value = await conn.execute(
            select(func.min(OB.c.next_attempt_at)).where(_claimable(None, skip_ids, skip_channels))
        )
        result: datetime | None = value.scalar_one_or_none()
        return result


async def pending(
    db: Database, *, skip_ids: Collection[int] = (), skip_channels: Collection[str] = ()
) -> tuple[int, datetime | None]:
    """In one statement: how many entries are pending (the depth), and when the next one
    falls due, leaving out those in hand and those of full lanes (None: none)."""
    claimable = _claimable(None, skip_ids, skip_channels)
    next_at = func.min(case((claimable, OB.c.next_attempt_at), else_=None))
    query = select(func.count(), next_at).where(OB.c.status == PENDING)
    async with db.connect() as conn:
        count, due_at = (await conn.execute(query)).one()
        return int(count), due_at


async def settle(db: Database, entry_id: int, **values: Any) -> None:
    async with db.begin() as conn:
        await conn.execute(OB.update().where(OB.c.id == entry_id).values(**values))


async def depth(db: Database) -> int:
    async with db.connect() as conn:
        value = await conn.execute(select(func.count()).where(OB.c.status == PENDING))
        return int(value.scalar_one())


async def backlog(db: Database) -> tuple[int, datetime | None]:
    """Entries waiting for delivery, and when the oldest of them was queued (None: none)."""
    query = select(func.count(), func.min(OB.c.created_at)).where(OB.c.status == PENDING)
    async with db.connect() as conn:
        count, oldest = (await conn.execute(query)).one()
        return int(count), oldest


async def list_entries(db: Database, *, status: str | None = None, limit: int = 100) -> list[Any]:
    query = select(OB).order_by(OB.c.id.desc()).limit(limit)
    if status:
        query = query.where(OB.c.status == status)
    async with db.connect() as conn:
        return list((await conn.execute(query)).all())


# -- the storm guard's held entries and digests -----------------------------------------------


async def held(conn: AsyncConnection, channel: str) -> list[Any]:
    """The channel's held entries, oldest first: `id`, `event`, `created_at`, `payload`."""
    query = (
        select(OB.c.id, OB.c.event, OB.c.created_at, OB.c.payload)
        .where(OB.c.channel == channel, OB.c.status == HELD)
        .order_by(OB.c.id)
    )
    return list((await conn.execute(query)).all())


async def last_created(conn: AsyncConnection, channel: str, event: str) -> datetime | None:
    """When the channel's newest entry for `event` was queued (None: never)."""
    query = select(func.max(OB.c.created_at)).where(OB.c.channel == channel, OB.c.event == event)
    value: datetime | None = (await conn.execute(query)).scalar_one_or_none()
    return value


async def mark_digested(conn: AsyncConnection, ids: list[int]) -> None:
    await conn.execute(OB.update().where(OB.c.id.in_(ids)).values(status=DIGESTED))


async def sent_since(conn: AsyncConnection, channel: str, since: datetime, but: str) -> int:
    """Entries queued to be sent to `channel` after `since` (not held, not digested, not
    of the event `but`)."""
    value = await conn.execute(
        select(func.count()).where(
            OB.c.channel == channel,
            OB.c.created_at > since,
            OB.c.status.notin_([HELD, DIGESTED]),
            OB.c.event != but,
        )
    )
    return int(value.scalar_one())
