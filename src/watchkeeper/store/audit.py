"""The audit_log table (see `auth.audit` for what is recorded)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from watchkeeper.store.database import Database
from watchkeeper.store.errors import translated
from watchkeeper.store.tables import audit_log

Record = sa.Row[Any]
"""An entry: `id`, `at`, `actor`, `actor_kind`, `action`, `target`, `status`, `detail`,
`source_ip`."""


async def insert(db: Database, **values: Any) -> None:
    """Append an entry (the table's columns as keywords)."""
    async with translated(), db.begin() as conn:
        await conn.execute(audit_log.insert().values(**values))


async def page(
    db: Database, *, limit: int, offset: int, actor: str | None, action: str | None
) -> tuple[list[Record], int]:
    """Newest first, with the total matching count (read in one connection)."""
    where = []
    if actor is not None:
        where.append(audit_log.c.actor == actor)
    if action is not None:
        where.append(audit_log.c.action == action)
    async with translated(), db.connect() as conn:
        total = await conn.scalar(sa.select(sa.func.count()).select_from(audit_log).where(*where))
        rows = await conn.execute(
            sa.select(audit_log)
            .where(*where)
            .order_by(audit_log.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(rows), int(total or 0)
