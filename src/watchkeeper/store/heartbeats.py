"""Heartbeat records: the last ping of each push check, kept across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection as SyncConnection
from sqlalchemy import select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from watchkeeper.store import tables
from watchkeeper.store.database import Database, upsert


@dataclass(slots=True)
class HeartbeatRecord:
    check_name: str
    uuid: str
    last_ping_at: datetime | None = None
    last_start_at: datetime | None = None
    last_fail_at: datetime | None = None
    last_exit_code: int | None = None
    last_duration: float | None = None
    ping_count: int = 0
    resumed_at: datetime | None = None
    """When the check's last pause ended: its deadline restarts from here."""
    body_day: datetime | None = None
    """Start (UTC midnight) of the day `body_bytes` counts."""
    body_bytes: int = 0
    """Bytes of ping bodies stored on `body_day` (see `heartbeats.body_bytes_per_day`)."""

    def row(self) -> dict[str, Any]:
        """The record as a `heartbeats` row (`asdict` without its deep copies: every field
        is immutable)."""
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in fields(HeartbeatRecord))


async def load_heartbeats(db: Database) -> dict[str, HeartbeatRecord]:
    async with db.connect() as conn:
        rows = (await conn.execute(select(tables.heartbeats))).all()
    return {row.check_name: HeartbeatRecord(**row._asdict()) for row in rows}


async def save_heartbeats(
    db: Database, records: list[HeartbeatRecord], results: Sequence[dict[str, Any]] = ()
) -> None:
    """Upsert `records`; `results` (check_results rows: pings that change no state, such as
    `/log`) go into the history in the same transaction, outside the rollups."""
    await save_heartbeat_rows(db, [r.row() for r in records], results)


async def save_heartbeat_rows(
    db: Database, rows: Sequence[dict[str, Any]], results: Sequence[dict[str, Any]] = ()
) -> None:
    """`save_heartbeats` of records already made rows (`row()`), one per check at most: a
    group of pings in one transaction. On SQLite it is committed on the loop's own thread
    when the database is free (see `Database.loop_engine`), else as usual."""
    if not rows and not results:
        return
    engine = db.loop_engine()
    if engine is not None:
        for pause in _RETRY_PAUSES:
            try:
                with engine.begin() as conn:
                    _upsert_sqlite(conn, list(rows))
                    if results:
                        conn.execute(tables.check_results.insert(), list(results))
                return
            except OperationalError as exc:
                if not _locked(exc):
                    raise
            # Another writer holds the database, usually for a few trips to aiosqlite's
            # thread: SQLite tells no one when it is free, so look again shortly (as its
            # own busy handler does, but without blocking the loop meanwhile).
            await asyncio.sleep(pause)
        # Still held: wait for it off the loop, as every other write does.
    async with db.begin() as conn:
        await upsert(conn, tables.heartbeats, list(rows), ["check_name"])
        if results:
            await conn.execute(tables.check_results.insert(), list(results))


def _sqlite_upsert() -> Any:
    stmt = sqlite_insert(tables.heartbeats)
    update = {c: stmt.excluded[c] for c in _FIELDS if c != "check_name"}
    return stmt.on_conflict_do_update(index_elements=["check_name"], set_=update)


_SQLITE_UPSERT = _sqlite_upsert()
"""Built once: building it takes longer than running it."""


_RETRY_PAUSES = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016)
"""Seconds between attempts on the loop's thread while SQLite is locked (31.5 ms in all)."""


def _upsert_sqlite(conn: SyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(_SQLITE_UPSERT, rows)


def _locked(exc: OperationalError) -> bool:
    message = str(exc.orig).lower()
    return "locked" in message or "busy" in message
