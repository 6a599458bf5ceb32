"""SQLite's write-ahead log stays short when only the event loop's own connection writes
(it never checkpoints): the runtime's checkpoint task copies it into the database file and
empties it, and the loop's writer waits while it does instead of falling back."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from tests.support.clock import FakeClock, until_parked
from tests.support.servers import wait_until
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.store.checkpoints import RESTART_FRAMES, WalCheckpointer
from watchkeeper.store.database import Database
from watchkeeper.store.heartbeats import HeartbeatRecord, save_heartbeat_rows


async def write_on_loop(db: Database, rows: int) -> None:
    """`rows` rows of 4 KB each through the loop's connection: about one log frame each."""

    async def work(conn: Any) -> None:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS bulk (data BLOB)"))
        await conn.execute(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows)"
                " INSERT INTO bulk SELECT randomblob(4000) FROM n"
            ),
            {"rows": rows},
        )

    await db.on_loop(work)


def wal_bytes(db_file: Path) -> int:
    wal = db_file.with_name(db_file.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def rows_in_file(db_file: Path) -> int:
    with sqlite3.connect(db_file) as conn:
        return int(conn.execute("SELECT count(*) FROM bulk").fetchone()[0])


async def test_the_task_copies_a_long_log_into_the_file_and_empties_it(
    sqlite_db: Database, tmp_path: Path
) -> None:
    db_file = tmp_path / "wk.db"
    clock = FakeClock()
    checkpointer = WalCheckpointer(sqlite_db, clock, every=1.0, restart_frames=100)
    assert checkpointer.needed
    await write_on_loop(sqlite_db, 300)
    assert wal_bytes(db_file) > 300 * 4096  # the loop's connection did not checkpoint
    task = asyncio.create_task(checkpointer.run())
    try:
        await until_parked(clock)  # the write is waiting for its round
        clock.advance(1.0)
        await wait_until(lambda: wal_bytes(db_file) == 0, 5, "the log emptied")
        # With the log empty, every row is in the database file itself.
        assert rows_in_file(db_file) == 300
        # Idle, it waits for a write, not on the clock (a test's clock would step through
        # every second of the hours it moves).
        assert clock.waiting == 0
        parks = clock.parks
        await write_on_loop(sqlite_db, 1)
        await until_parked(clock, after=parks)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_short_log_is_copied_but_left_to_grow_on(sqlite_db: Database) -> None:
    checkpointer = WalCheckpointer(sqlite_db, FakeClock(), restart_frames=1000)
    await write_on_loop(sqlite_db, 50)
    done = await checkpointer.checkpoint()
    assert done is not None
    assert done.frames >= 50
    assert not done.truncated
    await write_on_loop(sqlite_db, 1000)
    done = await checkpointer.checkpoint()
    assert done is not None
    assert done.frames >= 1000
    assert done.truncated


async def save_ping(db: Database) -> None:
    await save_heartbeat_rows(db, [HeartbeatRecord("job", "u-1", ping_count=1).row()])


@pytest.mark.parametrize(
    ("write", "table"),
    [(lambda db: write_on_loop(db, 1), "bulk"), (save_ping, "heartbeats")],
    ids=["on_loop", "pings"],
)
async def test_loop_writes_wait_while_paused_and_then_run_on_the_loop(
    sqlite_db: Database, tmp_path: Path, write: Callable[[Database], Awaitable[None]], table: str
) -> None:
    fallback: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        fallback.append(statement)

    # The slower path, taken when the loop's connection finds the file locked.
    event.listen(sqlite_db.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with sqlite_db.loop_writes_paused():
            writing = asyncio.create_task(write(sqlite_db))
            done, _ = await asyncio.wait({writing}, timeout=0.2)
            assert not done
        await asyncio.wait_for(writing, 5)
    finally:
        event.remove(sqlite_db.engine.sync_engine, "before_cursor_execute", record)
    assert not [s for s in fallback if f"INSERT INTO {table}" in s]
    with sqlite3.connect(tmp_path / "wk.db") as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 1


async def test_the_runtime_runs_the_task_for_a_database_file(tmp_path: Path) -> None:
    db_file = tmp_path / "wk.db"
    clock = FakeClock()
    runtime = Runtime(
        Config.model_validate({"storage": {"url": f"sqlite:///{db_file}"}}), clock=clock
    )
    await runtime.start()
    try:
        await write_on_loop(runtime.db, RESTART_FRAMES + 100)
        assert wal_bytes(db_file) > RESTART_FRAMES * 4096
        # A second later on the wall clock (not the runtime's, which stands still here).
        await wait_until(lambda: wal_bytes(db_file) == 0, 10, "the log emptied")
    finally:
        await runtime.stop()


def test_no_task_for_a_database_in_memory() -> None:
    runtime = Runtime(Config.model_validate({"storage": {"url": "sqlite:///:memory:"}}))
    assert not runtime.checkpoints.needed
    assert "wal checkpoints" not in [step.name for step in runtime.steps]
