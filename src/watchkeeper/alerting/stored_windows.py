"""Maintenance windows created over the API: stored definitions turned into windows.

Each stored definition is validated on its own when it is read: one that no longer validates
(a row from before a bound existed, such as `duration: 999999999d`) is kept with the reason,
so the dispatcher can report it as broken while the others still apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from watchkeeper.alerting.broken import describe
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.store import maintenance as window_store
from watchkeeper.store.database import Connection, Database

delete_window = window_store.delete_window


@dataclass(frozen=True, slots=True)
class StoredWindow:
    """A stored window: `window` when its definition validates today, else `error` says why
    (a row from before a bound existed, such as `duration: 999999999d`)."""

    name: str
    definition: dict[str, Any]
    window: MaintenanceWindow | None
    error: str | None = None


def parse_stored(name: str, definition: Any) -> StoredWindow:
    """Validate one stored definition; never raises (the reason goes into `error`)."""
    try:
        return StoredWindow(name, definition, MaintenanceWindow.model_validate(definition))
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        where = ".".join(map(str, first["loc"])) or "definition"
        message = first["msg"].removeprefix("Value error, ")
        return StoredWindow(name, definition, None, f"{where}: {message}")
    except Exception as exc:  # one stored row never stops the others from loading
        return StoredWindow(name, definition, None, describe(exc))


async def load_stored_windows(db: Database, conn: Connection | None = None) -> list[StoredWindow]:
    """Every stored window, each validated on its own; `conn`: read in the caller's
    transaction."""
    rows = await window_store.load_rows(db, conn=conn)
    return [parse_stored(row.name, row.definition) for row in rows]


async def load_windows(db: Database) -> list[MaintenanceWindow]:
    """The stored windows that validate (see `load_stored_windows` for the others)."""
    return [w.window for w in await load_stored_windows(db) if w.window is not None]


async def save_window(
    db: Database, window: MaintenanceWindow, created_by: str, now: datetime
) -> None:
    """Store a window as its definition; raise KeyError if the name is taken (concurrent
    creates of one name included: the database refuses all but the first)."""
    definition = window.model_dump(mode="json", exclude_unset=True)
    await window_store.insert_window(db, window.name, definition, created_by, now)


__all__ = [
    "StoredWindow",
    "delete_window",
    "load_stored_windows",
    "load_windows",
    "parse_stored",
    "save_window",
]
