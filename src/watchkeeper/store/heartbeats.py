"""Heartbeat records: the last ping of each push check, kept across restarts."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from watchkeeper.store import tables
from watchkeeper.store.database import Database, upsert
from watchkeeper.store.rawsql import Statement, insert_sql
from watchkeeper.store.results import INSERT_RESULTS


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
        await db.loop_writes_resumed()
        for pause in _RETRY_PAUSES:
            try:
                _save_on_loop(engine, rows, results)
                db.loop_wrote.set()
                return
            except sqlite3.OperationalError as exc:
                message = str(exc).lower()
                if "locked" not in message and "busy" not in message:
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


_RETRY_PAUSES = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016)
"""Seconds between attempts on the loop's thread while SQLite is locked (31.5 ms in all)."""


_UPSERT = Statement(
    tables.heartbeats, _FIELDS, insert_sql(tables.heartbeats, _FIELDS, "check_name")
)


def _save_on_loop(
    engine: Engine, rows: Sequence[dict[str, Any]], results: Sequence[dict[str, Any]]
) -> None:
    """One transaction on the loop's own SQLite connection (see `Database.loop_engine`);
    raises sqlite3.OperationalError at once when another writer holds the database."""
    pooled = engine.raw_connection()
    try:
        conn = pooled.driver_connection
        assert isinstance(conn, sqlite3.Connection)
        try:
            if rows:
                conn.executemany(_UPSERT.sql, _UPSERT.params(engine.dialect, rows))
            if results:
                conn.executemany(INSERT_RESULTS.sql, INSERT_RESULTS.params(engine.dialect, results))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    finally:
        pooled.close()
