"""Install-wide values generated once and kept in the database (e.g. the ping key)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from watchkeeper.store import tables
from watchkeeper.store.database import Database


async def get_or_create(db: Database, name: str, make: Callable[[], str]) -> str:
    """The stored value of `name`; the first caller stores `make()`. Concurrent first callers
    (two processes on one database) all end up with the one value that was stored."""
    query = select(tables.settings.c.value).where(tables.settings.c.name == name)
    async with db.connect() as conn:
        value = (await conn.execute(query)).scalar_one_or_none()
    if value is not None:
        return str(value)
    try:
        async with db.begin() as conn:
            await conn.execute(tables.settings.insert().values(name=name, value=make()))
    except IntegrityError:
        pass  # someone else stored it first: theirs wins
    async with db.connect() as conn:
        return str((await conn.execute(query)).scalar_one())


async def touch(db: Database, name: str, value: str) -> None:
    """Store `value` under `name` in one short transaction (update, else insert): the
    self-watch's timed trivial write, so it measures what every write pays."""
    table = tables.settings
    async with db.begin() as conn:
        result = await conn.execute(table.update().where(table.c.name == name).values(value=value))
        if not result.rowcount:
            await conn.execute(table.insert().values(name=name, value=value))
