"""Install-wide values kept in the database: generated once (the ping key), or replaced at
each start (the hash of the first-run setup token)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from watchkeeper.store import tables
from watchkeeper.store.database import Database
from watchkeeper.store.errors import translated


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


async def get(db: Database, name: str) -> str | None:
    """The stored value of `name`, or None."""
    query = select(tables.settings.c.value).where(tables.settings.c.name == name)
    async with translated(), db.connect() as conn:
        value = (await conn.execute(query)).scalar_one_or_none()
    return None if value is None else str(value)


async def replace(db: Database, name: str, value: str) -> None:
    """Store `value` as `name`, in place of any value it had."""
    async with translated(), db.begin() as conn:
        await conn.execute(tables.settings.delete().where(tables.settings.c.name == name))
        await conn.execute(tables.settings.insert().values(name=name, value=value))


async def take(db: Database, name: str, value: str) -> bool:
    """Delete `name` if it still holds `value`: True for the one caller that did (of several
    concurrent ones, on one or several processes), False when it was gone or changed."""
    table = tables.settings
    async with translated(), db.begin() as conn:
        deleted = await conn.execute(
            table.delete().where(table.c.name == name, table.c.value == value)
        )
    return bool(deleted.rowcount == 1)


async def delete(db: Database, name: str) -> None:
    """Forget `name` (nothing happens when it is not stored)."""
    async with translated(), db.begin() as conn:
        await conn.execute(tables.settings.delete().where(tables.settings.c.name == name))


async def touch(db: Database, name: str, value: str) -> None:
    """Store `value` under `name` in one short transaction (update, else insert): the
    self-watch's timed trivial write, so it measures what every write pays."""
    table = tables.settings
    async with db.begin() as conn:
        result = await conn.execute(table.update().where(table.c.name == name).values(value=value))
        if not result.rowcount:
            await conn.execute(table.insert().values(name=name, value=value))
