"""Maintenance windows created over the API, stored as their definition (JSON).

Rows only: what a definition means, and whether it still validates, is the alerting side's
business (`alerting/stored_windows.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from watchkeeper.store import tables
from watchkeeper.store.database import Connection, Database

M = tables.maintenance_windows


@dataclass(frozen=True, slots=True)
class WindowRow:
    """A stored window: its name and its definition as stored (not validated here)."""

    name: str
    definition: Any


async def load_rows(db: Database, *, conn: Connection | None = None) -> list[WindowRow]:
    """Every stored window, by name. `conn`: read in the caller's transaction (else in one
    of its own)."""
    query = select(M.c.name, M.c.definition).order_by(M.c.name)
    if conn is not None:
        rows = (await conn.execute(query)).all()
    else:
        async with db.connect() as own:
            rows = (await own.execute(query)).all()
    return [WindowRow(row.name, row.definition) for row in rows]


async def insert_window(
    db: Database, name: str, definition: dict[str, Any], created_by: str, now: datetime
) -> None:
    """Insert a window; raise KeyError if the name is taken (concurrent creates of one name
    included: the database refuses all but the first)."""
    try:
        async with db.begin() as conn:
            taken = (await conn.execute(select(M.c.name).where(M.c.name == name))).first()
            if taken:
                raise KeyError(name)
            await conn.execute(
                M.insert().values(
                    name=name, definition=definition, created_by=created_by, created_at=now
                )
            )
    except IntegrityError:
        raise KeyError(name) from None


async def delete_window(db: Database, name: str) -> bool:
    """Delete the named window; whether there was one."""
    async with db.begin() as conn:
        result = await conn.execute(delete(M).where(M.c.name == name))
    return bool(result.rowcount)
