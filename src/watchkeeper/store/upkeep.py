"""Database upkeep the housekeeping jobs run: SQLite's `PRAGMA optimize` and incremental
vacuum. PostgreSQL does both on its own (autovacuum), so there these do nothing."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.store.database import Database

INCREMENTAL = 2
"""`PRAGMA auto_vacuum` of a database whose free pages `PRAGMA incremental_vacuum` returns."""


async def optimize(db: Database) -> bool:
    """Let SQLite refresh the query planner's statistics where they are stale (cheap; the
    SQLite documentation advises it every few hours). False: not SQLite, nothing done."""
    if db.dialect != "sqlite":
        return False
    async with db.connect() as conn:
        raw = await conn.get_raw_connection()
        # In one IMMEDIATE transaction: the ANALYZE it may run reads and then writes, and a
        # read turned write fails at once (no busy wait) if another writer committed between.
        await raw.driver_connection.executescript("BEGIN IMMEDIATE; PRAGMA optimize; COMMIT;")
    return True


async def auto_vacuum(db: Database) -> int | None:
    """SQLite's `auto_vacuum` mode (0 none, 1 full, 2 incremental); None: not SQLite."""
    if db.dialect != "sqlite":
        return None
    async with db.connect() as conn:
        return int((await conn.execute(text("PRAGMA auto_vacuum"))).scalar_one())


async def incremental_vacuum(db: Database) -> int:
    """Give the file's free pages back to the file system; return how many were freed.
    Only for a database in `auto_vacuum=INCREMENTAL` mode (see `auto_vacuum`)."""
    async with db.connect() as conn:
        before = await _freelist(conn)
        raw = await conn.get_raw_connection()
        # Each step of the statement frees one page, and a cursor's execute steps once:
        # executescript (sqlite3_exec) steps it to the end.
        await raw.driver_connection.executescript("PRAGMA incremental_vacuum")
        after = await _freelist(conn)
    return before - after


async def _freelist(conn: AsyncConnection) -> int:
    return int((await conn.execute(text("PRAGMA freelist_count"))).scalar_one())
