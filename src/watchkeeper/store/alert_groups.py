"""The alert_groups table: when each notification group was last paged."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.store import tables

G = tables.alert_groups


async def load(conn: AsyncConnection) -> dict[str, Any]:
    """Every group by key: rows with `first_seen_at` and `last_notified_at`."""
    return {r.key: r for r in (await conn.execute(select(G))).all()}


async def by_keys(conn: AsyncConnection, keys: Collection[str]) -> dict[str, Any]:
    """The groups of these keys that exist, by key (rows as `load` returns them)."""
    found: dict[str, Any] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):  # bounded statements
        query = select(G).where(G.c.key.in_(ordered[start : start + 500]))
        found.update((r.key, r) for r in (await conn.execute(query)).all())
    return found


async def touch(conn: AsyncConnection, key: str, now: datetime, first_seen: datetime) -> None:
    """The group was paged `now` (created, first seen at `first_seen`, if new): one
    statement, INSERT … ON CONFLICT (key) DO UPDATE of `last_notified_at` alone."""
    insert: Any = pg_insert(G) if conn.dialect.name == "postgresql" else sqlite_insert(G)
    stmt = insert.values(key=key, first_seen_at=first_seen, last_notified_at=now)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[G.c.key], set_={"last_notified_at": stmt.excluded.last_notified_at}
        )
    )


async def touch_many(
    conn: AsyncConnection, groups: list[tuple[str, datetime]], now: datetime
) -> None:
    """`touch` for several groups ((key, first seen) each) in one statement run."""
    if not groups:
        return
    insert: Any = pg_insert(G) if conn.dialect.name == "postgresql" else sqlite_insert(G)
    stmt = insert.values(
        key=bindparam("b_key"),
        first_seen_at=bindparam("b_first"),
        last_notified_at=bindparam("b_now"),
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[G.c.key], set_={"last_notified_at": stmt.excluded.last_notified_at}
        ),
        # In key order: two passes (nodes) touching the same groups wait, not deadlock.
        [{"b_key": k, "b_first": first, "b_now": now} for k, first in sorted(groups)],
    )
