"""Status page incidents: rows, their public updates and their affected components."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.store import tables
from watchkeeper.store.database import Database

I = tables.status_incidents  # noqa: E741
U = tables.status_incident_updates
C = tables.status_incident_components

_OPEN = ("investigating", "identified", "monitoring")


async def insert_incident(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(I).values(**row))


async def update_incident(conn: AsyncConnection, incident_id: str, **changes: Any) -> None:
    await conn.execute(update(I).where(I.c.id == incident_id).values(**changes))


async def add_update(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(U).values(**row))


async def set_components(
    conn: AsyncConnection, incident_id: str, components: dict[str, str]
) -> None:
    """Replace the incident's affected components (name -> status)."""
    await conn.execute(delete(C).where(C.c.incident_id == incident_id))
    if components:
        await conn.execute(
            insert(C),
            [
                {"incident_id": incident_id, "component": name, "status": status}
                for name, status in components.items()
            ],
        )


async def delete_incident(conn: AsyncConnection, incident_id: str) -> bool:
    await conn.execute(delete(U).where(U.c.incident_id == incident_id))
    await conn.execute(delete(C).where(C.c.incident_id == incident_id))
    result = await conn.execute(delete(I).where(I.c.id == incident_id))
    return bool(result.rowcount)


async def for_alert(conn: AsyncConnection, page: str, alert_id: str) -> str | None:
    """The id of the page's incident opened for this alert (open or not), if any."""
    row = (
        await conn.execute(
            select(I.c.id).where(I.c.page == page, I.c.alert_fingerprint == alert_id).limit(1)
        )
    ).first()
    return row[0] if row else None


async def _load(conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Incident rows with `updates` (newest first) and `components` attached."""
    ids = [r.id for r in rows]
    if not ids:
        return []
    updates: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    components: dict[str, dict[str, str]] = {i: {} for i in ids}
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start : chunk_start + 500]
        for u in (
            await conn.execute(
                select(U)
                .where(U.c.incident_id.in_(chunk))
                .order_by(U.c.display_at.desc(), U.c.created_at.desc(), U.c.id)
            )
        ).all():
            updates[u.incident_id].append(dict(u._mapping))
        for c in (await conn.execute(select(C).where(C.c.incident_id.in_(chunk)))).all():
            components[c.incident_id][c.component] = c.status
    return [
        {**dict(r._mapping), "updates": updates[r.id], "components": components[r.id]} for r in rows
    ]


async def get_incident(db: Database, incident_id: str) -> dict[str, Any] | None:
    async with db.connect() as conn:
        rows = (await conn.execute(select(I).where(I.c.id == incident_id))).all()
        loaded = await _load(conn, rows)
    return loaded[0] if loaded else None


async def list_incidents(
    db: Database,
    *,
    page: str | None = None,
    unresolved: bool = False,
    include_drafts: bool = True,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Newest first (by start), with their updates and components; and how many match."""
    conditions: list[Any] = []
    if page is not None:
        conditions.append(I.c.page == page)
    if unresolved:
        conditions.append(I.c.status.in_(_OPEN))
    if not include_drafts:
        conditions.append(I.c.draft.is_(False))
    if since is not None:
        conditions.append((I.c.resolved_at.is_(None)) | (I.c.resolved_at >= since))
    query = (
        select(I)
        .where(*conditions)
        .order_by(I.c.started_at.desc(), I.c.id)
        .limit(limit)
        .offset(offset)
    )
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
        total = (
            await conn.execute(select(func.count()).select_from(I).where(*conditions))
        ).scalar_one()
        return await _load(conn, rows), int(total)
