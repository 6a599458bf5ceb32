"""The alert_groups table: when each notification group was last paged."""

from __future__ import annotations

import functools
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


_BY_KEYS = select(G).where(G.c.key.in_(bindparam("keys", expanding=True)))


async def by_keys(conn: AsyncConnection, keys: Collection[str]) -> dict[str, Any]:
    """The groups of these keys that exist, by key (rows as `load` returns them)."""
    found: dict[str, Any] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):  # bounded statements
        rows = await conn.execute(_BY_KEYS, {"keys": ordered[start : start + 500]})
        found.update((r.key, r) for r in rows.all())
    return found


async def touch(conn: AsyncConnection, key: str, now: datetime, first_seen: datetime) -> None:
    """The group was paged `now` (created, first seen at `first_seen`, if new): one
    statement, INSERT … ON CONFLICT (key) DO UPDATE of `last_notified_at` alone."""
    await touch_many(conn, [(key, first_seen)], now)


@functools.cache
def _touch(dialect: str) -> Any:
    """The statement of `touch_many`, built once per dialect (building it cost more than
    running it for a group or two)."""
    insert: Any = pg_insert(G) if dialect == "postgresql" else sqlite_insert(G)
    stmt = insert.values(
        key=bindparam("b_key"),
        first_seen_at=bindparam("b_first"),
        last_notified_at=bindparam("b_now"),
    )
    return stmt.on_conflict_do_update(
        index_elements=[G.c.key], set_={"last_notified_at": stmt.excluded.last_notified_at}
    )


async def touch_many(
    conn: AsyncConnection, groups: list[tuple[str, datetime]], now: datetime
) -> None:
    """`touch` for several groups ((key, first seen) each) in one statement run."""
    if not groups:
        return
    await conn.execute(
        _touch(conn.dialect.name),
        # In key order: two passes (nodes) touching the same groups wait, not deadlock.
        [{"b_key": k, "b_first": first, "b_now": now} for k, first in sorted(groups)],
    )
