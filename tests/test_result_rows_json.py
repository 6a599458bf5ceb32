"""On SQLite the ResultWriter runs each statement of a batch once, over the batch as one JSON
text (`json_each`), so SQLite inserts every row without taking Python's GIL back in between;
values JSON cannot carry exactly go the `executemany` way. Either way the rows stored are
the ones SQLAlchemy's own path stores (the path PostgreSQL takes), byte for byte."""

from __future__ import annotations

import contextlib
import math
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.store import rollups, tables
from watchkeeper.store.database import Database, upsert
from watchkeeper.store.rawsql import json_rows
from watchkeeper.store.results import ResultWriter, result_rows

T0 = datetime(2030, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))

ORDINARY = [
    CheckResult(Status.UP, "ok", response_time=0.1 + 0.2, metrics={"rtt": 0.1 + 0.2}),
    CheckResult(Status.DOWN, 'l\'arrêt "net" \\ 😀\n\ttab \u2028', details={"é": "😀 'q'"}),
    CheckResult(Status.DEGRADED, "", response_time=5e-324, details={"n": [1, 2.5, None]}),
    CheckResult(Status.UP, "big", response_time=1.7976931348623157e308),
    CheckResult(Status.UP, "negative zero", response_time=-0.0),
    CheckResult(Status.UP, "whole", response_time=2.0, metrics={"a": 1, "b": -3}),
    CheckResult(Status.UNKNOWN, "an int", response_time=3),
    CheckResult(Status.UP, "tiny", response_time=1e-300),
]
"""Results JSON carries: text of every kind, floats at their edges, NULLs, JSON columns."""

ODD = [
    CheckResult(Status.DOWN, "infinite", response_time=1.5, metrics={"rtt": math.inf}),
    CheckResult(Status.DOWN, "NUL \x00 inside", details={"log": "a\x00b"}),
]
"""Results it does not: these go the `executemany` way. (A non-finite response time is stored
as NULL by the writer: see the last test.)"""

TIMES = [
    T0,
    T0.replace(microsecond=0),  # stored as `09:30:15.000000` by every writer
    T0.astimezone(PLUS_TWO) + timedelta(seconds=1),
    T0 + timedelta(hours=1, microseconds=1),
]


def batch_rows(results: list[CheckResult]) -> list[dict[str, Any]]:
    """The rows `ResultWriter.record` buffers, for the reference write."""
    rows = []
    for i, result in enumerate(results):
        rows.append(
            {
                "check_name": f"c{i % 3}",
                "started_at": TIMES[i % len(TIMES)],
                "status": result.status.value,
                "reason": result.reason,
                "response_time": result.response_time,
                "metrics": result.metrics or None,
                "details": result.details or None,
            }
        )
    return rows


def stored(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored value with its SQLite type, table by table (ids left out)."""
    queries = {
        "check_results": "SELECT check_name, started_at, status, reason, response_time, "
        "typeof(response_time), metrics, typeof(metrics), details, typeof(details) "
        "FROM check_results ORDER BY id",
        "check_rollups": "SELECT *, typeof(rt_sum), typeof(rt_min), typeof(rt_max) "
        "FROM check_rollups ORDER BY resolution, bucket, check_name",
        "check_states": "SELECT *, typeof(last_checked_at), typeof(paused) "
        "FROM check_states ORDER BY check_name",
    }
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return {table: conn.execute(sql).fetchall() for table, sql in queries.items()}


@pytest.mark.parametrize("kind", ["json", "executemany"])
async def test_a_batch_is_stored_as_sqlalchemys_own_path_stores_it(
    sqlite_db: Database, tmp_path: Path, kind: str
) -> None:
    results = ORDINARY if kind == "json" else ORDINARY + ODD
    rows = batch_rows(results)
    # The case takes the way it names.
    assert (json_rows(result_rows(rows)) is not None) == (kind == "json")
    states = {
        "c0": CheckState("c0", Status.DOWN, since=T0, last_reason="l'arrêt", paused=True),
        "c1": CheckState(
            "c1", Status.UP, since=TIMES[2], last_checked_at=TIMES[1], consecutive_successes=7
        ),
    }
    writer = ResultWriter(sqlite_db, states.get, max_batch=1000)
    for row, result in zip(rows, results, strict=True):
        writer.record(row["check_name"], row["started_at"], result)
    await writer.flush()
    assert writer.flushed == len(rows)
    written = stored(tmp_path / "wk.db")
    assert len(written["check_results"]) == len(rows)
    assert written["check_rollups"] and len(written["check_states"]) == 2

    # The reference: the same transaction through SQLAlchemy, as on PostgreSQL.
    async with sqlite_db.begin() as conn:
        for table in (tables.check_results, tables.check_rollups, tables.check_states):
            await conn.execute(delete(table))
    async with sqlite_db.begin() as conn:
        await conn.execute(tables.check_results.insert(), rows)
        await rollups.add_results(conn, rows)
        await upsert(
            conn, tables.check_states, [s.as_row() for s in states.values()], ["check_name"]
        )
    assert written == stored(tmp_path / "wk.db")


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, "a\x00b", 2**63, -(2**63) - 1, b"bytes", Status.UP],
    ids=repr,
)
def test_values_json_cannot_carry_exactly_are_left_to_executemany(value: Any) -> None:
    assert json_rows([("ok", 1.5, None, 2**63 - 1, -(2**63), True)]) is not None
    assert json_rows([("ok", 1.5, None), ("x", value, None)]) is None


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=repr)
async def test_a_non_finite_response_time_is_stored_as_none_and_the_history_goes_on(
    sqlite_db: Database, tmp_path: Path, value: float
) -> None:
    # A python check may return its own CheckResult with any float: NaN made the rollup's
    # sum NULL, refused by its NOT NULL column, and that row at the head of the buffer
    # failed every later flush.
    writer = ResultWriter(sqlite_db, lambda _name: None, max_batch=1000)
    writer.record("odd", T0, CheckResult(Status.UP, "OK", response_time=value))
    writer.record("fine", T0, CheckResult(Status.UP, "OK", response_time=0.25))
    await writer.flush()
    assert writer.flushed == 2
    written = stored(tmp_path / "wk.db")
    times = sorted((r[0], r[4]) for r in written["check_results"])
    assert times == [("fine", 0.25), ("odd", None)]
