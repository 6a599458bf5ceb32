"""Status page subscribers: add (idempotently per page and address), confirm, remove, list,
and delete those never confirmed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.store import tables
from watchkeeper.store.database import Database
from watchkeeper.store.errors import translated

T = tables.status_subscribers


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    page: str
    kind: str
    address: str
    address_key: str
    components: list[str] | None
    salt: str
    created_at: datetime
    confirmed_at: datetime | None


def _subscriber(row: Row[tuple[object, ...]]) -> Subscriber:
    m = row._mapping
    return Subscriber(
        id=int(m["id"]),
        page=m["page"],
        kind=m["kind"],
        address=m["address"],
        address_key=m["address_key"],
        components=list(m["components"]) if m["components"] is not None else None,
        salt=m["salt"],
        created_at=m["created_at"],
        confirmed_at=m["confirmed_at"],
    )


async def find(conn: AsyncConnection, page: str, kind: str, address_key: str) -> Subscriber | None:
    query = select(T).where(T.c.page == page, T.c.kind == kind, T.c.address_key == address_key)
    row = (await conn.execute(query)).first()
    return _subscriber(row) if row is not None else None


async def add(
    conn: AsyncConnection,
    *,
    page: str,
    kind: str,
    address: str,
    address_key: str,
    components: Sequence[str] | None,
    salt: str,
    now: datetime,
    confirmed: bool,
) -> Subscriber:
    """Insert a subscriber in the caller's transaction and return it."""
    values = {
        "page": page,
        "kind": kind,
        "address": address,
        "address_key": address_key,
        "components": list(components) if components is not None else None,
        "salt": salt,
        "created_at": now,
        "confirmed_at": now if confirmed else None,
    }
    result = await conn.execute(T.insert().values(**values).returning(T.c.id))
    return Subscriber(id=int(result.scalar_one()), **values)  # type: ignore[arg-type]


async def set_components(
    conn: AsyncConnection, subscriber_id: int, components: Sequence[str] | None
) -> None:
    value = list(components) if components is not None else None
    await conn.execute(T.update().where(T.c.id == subscriber_id).values(components=value))


async def get(db: Database, subscriber_id: int) -> Subscriber | None:
    async with translated(), db.connect() as conn:
        row = (await conn.execute(select(T).where(T.c.id == subscriber_id))).first()
    return _subscriber(row) if row is not None else None


async def confirm(db: Database, subscriber_id: int, now: datetime) -> bool:
    """Mark confirmed (once: a second call leaves the first time); False: no such row."""
    async with translated(), db.begin() as conn:
        result = await conn.execute(
            T.update()
            .where(T.c.id == subscriber_id, T.c.confirmed_at.is_(None))
            .values(confirmed_at=now)
        )
        if result.rowcount:
            return True
        found = await conn.execute(select(T.c.id).where(T.c.id == subscriber_id))
        return found.first() is not None


async def remove(db: Database, subscriber_id: int) -> bool:
    async with translated(), db.begin() as conn:
        result = await conn.execute(T.delete().where(T.c.id == subscriber_id))
    return bool(result.rowcount)


async def confirmed(conn: AsyncConnection, page: str) -> list[Subscriber]:
    """The page's confirmed subscribers, oldest first."""
    query = select(T).where(T.c.page == page, T.c.confirmed_at.is_not(None)).order_by(T.c.id)
    return [_subscriber(row) for row in await conn.execute(query)]


async def listing(
    db: Database, *, kind: str | None, page: str | None, limit: int, offset: int
) -> tuple[list[Subscriber], int]:
    """One page of every subscriber (oldest first) and how many there are in all."""
    query = select(T)
    count = select(func.count()).select_from(T)
    for column, value in ((T.c.kind, kind), (T.c.page, page)):
        if value is not None:
            query, count = query.where(column == value), count.where(column == value)
    async with translated(), db.connect() as conn:
        rows = await conn.execute(query.order_by(T.c.id).limit(limit).offset(offset))
        total = int((await conn.execute(count)).scalar_one())
        return [_subscriber(row) for row in rows], total


async def delete_unconfirmed(db: Database, created_before: datetime) -> int:
    """Delete the subscribers never confirmed that subscribed before `created_before`."""
    async with db.begin() as conn:
        result = await conn.execute(
            T.delete().where(T.c.confirmed_at.is_(None), T.c.created_at < created_before)
        )
    return int(result.rowcount or 0)
