"""Maintenance windows created over the API, stored as their validated definition."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.store import tables
from watchkeeper.store.database import Database

M = tables.maintenance_windows


async def load_windows(db: Database) -> list[MaintenanceWindow]:
    async with db.connect() as conn:
        rows = (await conn.execute(select(M.c.definition).order_by(M.c.name))).all()
    return [MaintenanceWindow.model_validate(row.definition) for row in rows]


async def save_window(
    db: Database, window: MaintenanceWindow, created_by: str, now: datetime
) -> None:
    """Insert a window; raise KeyError if the name is taken (concurrent creates of one name
    included: the database refuses all but the first)."""
    try:
        async with db.begin() as conn:
            taken = (await conn.execute(select(M.c.name).where(M.c.name == window.name))).first()
            if taken:
                raise KeyError(window.name)
            await conn.execute(
                M.insert().values(
                    name=window.name,
                    definition=window.model_dump(mode="json", exclude_unset=True),
                    created_by=created_by,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise KeyError(window.name) from None


async def delete_window(db: Database, name: str) -> bool:
    async with db.begin() as conn:
        result = await conn.execute(delete(M).where(M.c.name == name))
    return bool(result.rowcount)
