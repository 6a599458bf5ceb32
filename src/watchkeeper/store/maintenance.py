"""Maintenance windows created over the API, stored as their validated definition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from watchkeeper.alerting.broken import describe
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.store import tables
from watchkeeper.store.database import Database

M = tables.maintenance_windows


@dataclass(frozen=True, slots=True)
class StoredWindow:
    """A stored window: `window` when its definition validates today, else `error` says why
    (a row from before a bound existed, such as `duration: 999999999d`)."""

    name: str
    definition: dict[str, Any]
    window: MaintenanceWindow | None
    error: str | None = None


def _parse(name: str, definition: Any) -> StoredWindow:
    try:
        return StoredWindow(name, definition, MaintenanceWindow.model_validate(definition))
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        where = ".".join(map(str, first["loc"])) or "definition"
        message = first["msg"].removeprefix("Value error, ")
        return StoredWindow(name, definition, None, f"{where}: {message}")
    except Exception as exc:  # one stored row never stops the others from loading
        return StoredWindow(name, definition, None, describe(exc))


async def load_stored_windows(db: Database) -> list[StoredWindow]:
    """Every stored window, each validated on its own."""
    async with db.connect() as conn:
        rows = (await conn.execute(select(M.c.name, M.c.definition).order_by(M.c.name))).all()
    return [_parse(row.name, row.definition) for row in rows]


async def load_windows(db: Database) -> list[MaintenanceWindow]:
    """The stored windows that validate (see `load_stored_windows` for the others)."""
    return [w.window for w in await load_stored_windows(db) if w.window is not None]


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
