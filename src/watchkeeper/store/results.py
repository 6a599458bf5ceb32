"""Batched writes of check results and states: one transaction per batch, not per result."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.domain import CheckResult
from watchkeeper.store import rollups, tables
from watchkeeper.store.database import Database, upsert
from watchkeeper.store.json_text import json_text
from watchkeeper.store.rawsql import (
    Statement,
    execute_rows,
    insert_sql,
    json_select,
    prepare_rows,
)
from watchkeeper.store.types import sqlite_text

log = logging.getLogger(__name__)

_MAX_BUFFERED = 100_000


class ResultWriter:
    """Buffers results and flushes them together.

    Results are the high-volume path (thousands a second at scale); writing each in its own
    transaction would make SQLite the bottleneck. State changes that open or resolve alerts are
    written synchronously elsewhere; what a crash can lose here is at most one flush interval of
    result history, never an alert or a notification. Each batch updates the checks' rollups
    (store/rollups.py) in the same transaction, so the two always agree.
    """

    def __init__(
        self,
        db: Database,
        snapshot: Callable[[str], CheckState | None],
        *,
        flush_interval: float = 0.5,
        max_batch: int = 1000,
    ) -> None:
        self._db = db
        self._snapshot = snapshot
        self._flush_interval = flush_interval
        self._max_batch = max_batch
        self._buffer: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._stopping = False
        self.flushed = 0

    def record(self, check: str, started_at: datetime, result: CheckResult) -> None:
        response_time = result.response_time
        if response_time is not None and not math.isfinite(response_time):
            # A python check may return any float: NaN made the rollup's sum NULL, and the
            # refused row, first in the buffer, failed every later flush.
            response_time = None
        self._buffer.append(
            {
                "check_name": check,
                "started_at": started_at,
                "status": result.status.value,
                "reason": result.reason,
                "response_time": response_time,
                "metrics": result.metrics or None,
                "details": result.details or None,
            }
        )
        if len(self._buffer) >= self._max_batch:
            self._wake.set()

    async def flush(self) -> None:
        async with self._lock:
            while self._buffer:
                # Rows leave the buffer only once committed: a flush cancelled or failed
                # half-way loses nothing.
                batch = self._buffer[: self._max_batch]
                names = {row["check_name"] for row in batch}
                states = [s.as_row() for n in names if (s := self._snapshot(n)) is not None]
                try:
                    await self._write(batch, states)
                except Exception:
                    # The database may be restarting: keep the rows for the next flush, but
                    # bound the buffer so a long outage cannot exhaust memory.
                    log.exception("writing %d check results failed; will retry", len(batch))
                    if len(self._buffer) > _MAX_BUFFERED:
                        del self._buffer[: len(self._buffer) - _MAX_BUFFERED]
                    return
                del self._buffer[: len(batch)]
                self.flushed += len(batch)

    async def _write(self, batch: list[dict[str, Any]], states: list[dict[str, Any]]) -> None:
        """One transaction: the results, their rollups, the checks' states."""
        engine = self._db.worker_engine()
        if engine is None:
            async with self._db.begin() as conn:
                await conn.execute(tables.check_results.insert(), batch)
                await rollups.add_results(conn, batch)
                await upsert(conn, tables.check_states, states, ["check_name"])
            return
        # SQLite: the whole transaction in one trip to a worker thread (see worker_engine),
        # so the pings committed on the loop meanwhile wait for SQLite's work alone.
        write = asyncio.get_running_loop().run_in_executor(
            None, _write_in_thread, engine, batch, states
        )
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            # The thread commits (or not) whatever happens here: wait for it, so rows it
            # committed leave the buffer and are not written twice by the next flush.
            with contextlib.suppress(Exception):
                await write
                del self._buffer[: len(batch)]
                self.flushed += len(batch)
            raise

    def stop(self) -> None:
        """Make `run` return after the flush in progress (call `flush` once more after)."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Flush every interval until `stop`."""
        while not self._stopping:
            try:
                async with asyncio.timeout(self._flush_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()


_RESULT_COLUMNS = (
    "check_name",
    "started_at",
    "status",
    "reason",
    "response_time",
    "metrics",
    "details",
)
INSERT_RESULTS = Statement(
    tables.check_results, _RESULT_COLUMNS, insert_sql(tables.check_results, _RESULT_COLUMNS)
)
"""Result rows (as `ResultWriter.record` makes them) into `check_results`, on SQLite."""
_INSERT_RESULTS_JSON = json_select(INSERT_RESULTS.sql)
_STATE_COLUMNS = tuple(c.name for c in tables.check_states.columns)
_UPSERT_STATES = Statement(
    tables.check_states,
    _STATE_COLUMNS,
    insert_sql(tables.check_states, _STATE_COLUMNS, "check_name"),
)
_UPSERT_STATES_JSON = json_select(_UPSERT_STATES.sql)
_UPSERT_ROLLUPS = rollups.SQLiteUpsert()
_UPSERT_ROLLUPS_JSON = json_select(_UPSERT_ROLLUPS.sql)


def _json(value: Any) -> str:
    """A JSON column's value as SQLAlchemy's JSON type stores it (None is JSON `null`)."""
    return "null" if value is None else json_text(value)


def result_rows(batch: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """`INSERT_RESULTS.params(dialect, batch)` on SQLite, the same values a few times faster
    (the writer's thread holds the GIL meanwhile, which the event loop waits for)."""
    return [
        (
            r["check_name"],
            sqlite_text(r["started_at"]),
            r["status"],
            r["reason"],
            r["response_time"],
            _json(r["metrics"]),
            _json(r["details"]),
        )
        for r in batch
    ]


def _write_in_thread(
    engine: Engine, batch: list[dict[str, Any]], states: list[dict[str, Any]]
) -> None:
    # Parameters first: the write lock is then held for SQLite's work alone. Each statement
    # runs once over the batch as JSON (see rawsql.execute_rows), which leaves the GIL to
    # the event loop until SQLite is done.
    rows = prepare_rows(result_rows(batch))
    totals = prepare_rows(_UPSERT_ROLLUPS.params(batch))
    state_rows = prepare_rows(_UPSERT_STATES.params(engine.dialect, states))
    with engine.begin() as conn:
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        execute_rows(driver, INSERT_RESULTS.sql, _INSERT_RESULTS_JSON, rows)
        if totals.params:
            execute_rows(driver, _UPSERT_ROLLUPS.sql, _UPSERT_ROLLUPS_JSON, totals)
        if state_rows.params:
            execute_rows(driver, _UPSERT_STATES.sql, _UPSERT_STATES_JSON, state_rows)


async def load_states(db: Database) -> dict[str, CheckState]:
    async with db.connect() as conn:
        rows = (await conn.execute(select(tables.check_states))).all()
    return {row.check_name: CheckState.from_row(row) for row in rows}


async def recent_results(db: Database, check: str, limit: int = 100) -> list[Any]:
    query = (
        select(tables.check_results)
        .where(tables.check_results.c.check_name == check)
        .order_by(tables.check_results.c.started_at.desc(), tables.check_results.c.id.desc())
        .limit(limit)
    )
    async with db.connect() as conn:
        return list((await conn.execute(query)).all())


async def recent_statuses(db: Database, per_check: int) -> dict[str, list[str]]:
    """The statuses of each check's latest `per_check` results, oldest first (one query,
    whatever the number of checks)."""
    r = tables.check_results
    rank = (
        func.row_number()
        .over(partition_by=r.c.check_name, order_by=(r.c.started_at.desc(), r.c.id.desc()))
        .label("rank")
    )
    latest = select(r.c.check_name, r.c.status, r.c.started_at, r.c.id, rank).subquery()
    query = (
        select(latest.c.check_name, latest.c.status)
        .where(latest.c.rank <= per_check)
        .order_by(latest.c.check_name, latest.c.started_at, latest.c.id)
    )
    statuses: dict[str, list[str]] = {}
    async with db.connect() as conn:
        for row in (await conn.execute(query)).all():
            statuses.setdefault(row.check_name, []).append(row.status)
    return statuses


async def delete_results_before(db: Database, cutoff: datetime) -> int:
    async with db.begin() as conn:
        result = await conn.execute(
            delete(tables.check_results).where(tables.check_results.c.started_at < cutoff)
        )
    return int(result.rowcount or 0)


async def save_state(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Insert or replace one check's state row (`CheckState.as_row()`), in the caller's
    transaction."""
    await upsert(conn, tables.check_states, [row], ["check_name"])


async def forget_check(conn: AsyncConnection, name: str) -> None:
    """A deleted check's state and heartbeat rows go (its results stay for retention)."""
    for table in (tables.check_states, tables.heartbeats):
        await conn.execute(delete(table).where(table.c.check_name == name))


async def count_since(db: Database, since: datetime) -> int:
    """Check results started at or after `since`."""
    R = tables.check_results
    async with db.connect() as conn:
        recent = await conn.execute(
            select(func.count()).select_from(R).where(R.c.started_at >= since)
        )
        return int(recent.scalar_one())
