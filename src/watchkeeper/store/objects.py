"""Checks, escalation policies and rules created over the API, stored as their definitions.

Each row holds the definition as the config file would (validated before it is stored), so
start-up validates it again with the same models and the database stays the source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.store import tables
from watchkeeper.store.database import Database

M = tables.managed_objects


class Kind(StrEnum):
    CHECK = "check"
    ESCALATION_POLICY = "escalation_policy"
    RULE = "rule"
    STATUS_PAGE = "status_page"


@dataclass(frozen=True, slots=True)
class ManagedRecord:
    kind: Kind
    name: str
    definition: dict[str, Any]
    version: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


def _record(row: Any) -> ManagedRecord:
    return ManagedRecord(
        kind=Kind(row.kind),
        name=row.name,
        definition=dict(row.definition),
        version=row.version,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


async def load_objects(db: Database, kind: Kind | None = None) -> list[ManagedRecord]:
    """Every stored object (of `kind`), in order of kind and name."""
    query = select(M).order_by(M.c.kind, M.c.name)
    if kind is not None:
        query = query.where(M.c.kind == kind.value)
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [_record(r) for r in rows]


async def get_object(conn: AsyncConnection, kind: Kind, name: str) -> ManagedRecord | None:
    row = (await conn.execute(select(M).where(M.c.kind == kind.value, M.c.name == name))).first()
    return _record(row) if row is not None else None


async def insert_object(
    db: Database, kind: Kind, name: str, definition: dict[str, Any], who: str, now: datetime
) -> ManagedRecord:
    """Store a new object; raise KeyError if one of that kind and name exists (or another
    node sharing the database stores one at the same moment)."""
    try:
        async with db.begin() as conn:
            if await get_object(conn, kind, name) is not None:
                raise KeyError(name)
            record = ManagedRecord(kind, name, definition, 1, who, now, who, now)
            await _insert(conn, record)
    except IntegrityError:
        raise KeyError(name) from None
    return record


async def replace_object(
    db: Database, kind: Kind, name: str, definition: dict[str, Any], who: str, now: datetime
) -> ManagedRecord:
    """Replace a stored object's definition (its version goes up); KeyError if absent."""
    async with db.begin() as conn:
        old = await get_object(conn, kind, name)
        if old is None:
            raise KeyError(name)
        version = old.version + 1
        await conn.execute(
            M.update()
            .where(M.c.kind == kind.value, M.c.name == name)
            .values(definition=definition, version=version, updated_by=who, updated_at=now)
        )
    return ManagedRecord(kind, name, definition, version, old.created_by, old.created_at, who, now)


async def restore_object(db: Database, record: ManagedRecord) -> None:
    """Put back a record exactly as it was (undoing a write whose runtime change failed)."""
    async with db.begin() as conn:
        await delete_row(conn, record.kind, record.name)
        await _insert(conn, record)


async def _insert(conn: AsyncConnection, record: ManagedRecord) -> None:
    await conn.execute(
        M.insert().values(
            kind=record.kind.value,
            name=record.name,
            definition=record.definition,
            version=record.version,
            created_by=record.created_by,
            created_at=record.created_at,
            updated_by=record.updated_by,
            updated_at=record.updated_at,
        )
    )


async def delete_row(conn: AsyncConnection, kind: Kind, name: str) -> bool:
    """Delete inside the caller's transaction (so other changes can commit with it)."""
    result = await conn.execute(delete(M).where(M.c.kind == kind.value, M.c.name == name))
    return bool(result.rowcount)


async def delete_object(db: Database, kind: Kind, name: str) -> bool:
    async with db.begin() as conn:
        return await delete_row(conn, kind, name)
