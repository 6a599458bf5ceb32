"""Writes racing for one unique key, from concurrent requests.

Two Alertmanagers of an HA pair post the same alert at once, a client retries, two admins
create the same name: both transactions read "absent", both insert, and the database lets one
commit and refuses the other (SQLite: `UNIQUE constraint failed`; PostgreSQL: a unique
violation). The loser is not an error to show as a 500. Where the write is an upsert, it is
run again, and now finds and updates the winner's row (`retrying`); where it creates a
named object, the loser is told the name is taken (the caller maps the conflict to 409).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from watchkeeper.store.errors import is_conflict

T = TypeVar("T")

ATTEMPTS = 3
"""Runs of an upsert before a unique violation is let through: a retry sees the winner's
committed row, so a second loss means something other than this race."""


async def retrying(transaction: Callable[[], Awaitable[T]], attempts: int = ATTEMPTS) -> T:
    """Run `transaction` (a whole `db.begin()` block, rolled back when it raises) again when a
    concurrent one committed the same unique key first."""
    for attempt in range(1, attempts + 1):
        try:
            return await transaction()
        except Exception as exc:
            if not is_conflict(exc) or attempt == attempts:
                raise
    raise AssertionError("unreachable")
