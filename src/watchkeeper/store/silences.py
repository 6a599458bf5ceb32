"""The silences table (see `alerting.silences`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from watchkeeper.store import tables
from watchkeeper.store.database import Connection, Database
from watchkeeper.store.errors import translated

S = tables.silences

Record = Any
"""A row: `id`, `matchers` (a list of dicts), `starts_at`, `ends_at`, `created_by`,
`comment`, `created_at`."""


async def insert(db: Database, **values: Any) -> None:
    """Store a silence (the table's columns as keywords)."""
    async with translated(), db.begin() as conn:
        await conn.execute(S.insert().values(**values))


async def list_rows(
    db: Database, *, ending_after: datetime | None = None, conn: Connection | None = None
) -> list[Record]:
    """Silences ending last first; only those ending after `ending_after` when given.
    `conn`: read in the caller's transaction (else in one of its own)."""
    params = {"after": ending_after}
    query = _ALL if ending_after is None else _ENDING_AFTER
    if conn is not None:
        return list((await conn.execute(query, params)).all())
    async with translated(), db.connect() as own:
        return list((await own.execute(query, params)).all())


# Built once: every dispatcher pass reads the silences.
_ALL = select(S).order_by(S.c.ends_at.desc())
_ENDING_AFTER = _ALL.where(S.c.ends_at > bindparam("after"))


async def by_id(db: Database, silence_id: str) -> Record | None:
    async with translated(), db.connect() as conn:
        return (await conn.execute(select(S).where(S.c.id == silence_id))).first()


async def set_end(db: Database, silence_id: str, ends_at: datetime) -> None:
    async with translated(), db.begin() as conn:
        await conn.execute(S.update().where(S.c.id == silence_id).values(ends_at=ends_at))
