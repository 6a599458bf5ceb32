"""INSERTs run on the DB-API connection itself, for the store's high-volume writes (pings,
check results) on SQLite: through `Connection.execute` the statement's compilation and
the per-row parameter handling cost more than SQLite's own work."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

_JSON_EACH = sqlite3.sqlite_version_info >= (3, 38)
"""SQLite has `json_each` and `->>` built in (3.38 on); before, `executemany` it is."""
_JSON_KINDS = frozenset((str, int, float, bool, type(None)))
_INT64 = (-(2**63), 2**63 - 1)


class Statement:
    """An INSERT with SQLAlchemy's conversion of each column (dates, JSON) looked up once."""

    def __init__(self, table: Any, columns: Sequence[str], sql: str) -> None:
        self.columns = tuple(columns)
        self.sql = sql
        self._table = table
        self._processors: list[Any] | None = None

    def params(self, dialect: Any, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """`rows` as the driver's parameter tuples, each column converted as SQLAlchemy
        would (a missing column is NULL)."""
        if self._processors is None:
            # The dialect's own type, as SQLAlchemy's execution uses it: the generic
            # DateTime has no processor, and sqlite3 would then store a whole second as
            # `12:00:00`, which sorts before the `12:00:00.000000` of every other writer.
            self._processors = [
                self._table.c[c].type.dialect_impl(dialect).bind_processor(dialect)
                for c in self.columns
            ]
        pairs = list(zip(self.columns, self._processors, strict=True))
        return [
            tuple(p(row.get(c)) if p is not None else row.get(c) for c, p in pairs) for row in rows
        ]


def insert_sql(table: Any, columns: Sequence[str], conflict: str | None = None) -> str:
    """`INSERT INTO table (columns) VALUES (?, …)`, with `ON CONFLICT (conflict) DO UPDATE`
    of every other column when `conflict` is given (SQLite's qmark style)."""
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    if conflict is not None:
        sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c != conflict)
        sql += f" ON CONFLICT ({conflict}) DO UPDATE SET {sets}"
    return sql


def json_select(sql: str) -> str:
    """`sql`, an INSERT of `VALUES (?, …)` (as `insert_sql` or SQLAlchemy's compiler makes
    it), as the same INSERT of every row of a JSON array of arrays bound as its only
    parameter (see `json_rows`): one statement, one `sqlite3_step` for the whole batch."""
    head, sep, rest = sql.partition(" VALUES (")
    marks, close, tail = rest.partition(")")
    n = marks.count("?")
    if not sep or not close or marks != ", ".join("?" * n) or "?" in tail or not n:
        raise ValueError(f"not an INSERT of one row of parameters: {sql}")
    values = ", ".join(f"value ->> {i}" for i in range(n))
    # `WHERE true`: SQLite's documented cure for `ON CONFLICT` read as a join's constraint.
    return f"{head} SELECT {values} FROM json_each(?) WHERE true{tail}"


def json_rows(rows: Sequence[tuple[Any, ...]]) -> str | None:
    """`rows` (parameter tuples, as `Statement.params` makes them) as the JSON bound to a
    `json_select` statement, or None when JSON would not give SQLite every value exactly
    as binding it does: a type other than text, integer, float, bool and None (bytes, a
    str subclass), an integer beyond 64 bits, a NaN or an infinity, a NUL character (SQLite
    ends a JSON string's text there), or a SQLite without `json_each`."""
    if not _JSON_EACH or not rows:
        return None
    values = list(chain.from_iterable(rows))
    kinds = set(map(type, values))
    if not kinds <= _JSON_KINDS:
        return None
    if int in kinds:
        low, high = _INT64
        if not all(low <= v <= high for v in values if type(v) is int):
            return None
    try:
        text = json.dumps(rows, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return None
    # A NUL is written `\u0000` (and a text holding that spelling is written `\\u0000`,
    # which also matches: it merely goes the slower way).
    if "\\u0000" in text:
        return None
    return text


@dataclass(frozen=True, slots=True)
class Rows:
    """A statement's parameter tuples, and their JSON text when JSON carries them exactly
    (`json_rows`; None: it does not). Made before the transaction (`prepare_rows`), so the
    write lock is held for SQLite's work alone."""

    params: Sequence[tuple[Any, ...]]
    text: str | None


def prepare_rows(params: Sequence[tuple[Any, ...]]) -> Rows:
    return Rows(params, json_rows(params))


def execute_rows(conn: sqlite3.Connection, sql: str, json_sql: str, rows: Rows) -> None:
    """Run the INSERT `sql` for every parameter tuple of `rows`: as `json_sql` (its
    `json_select` form) over one JSON text when JSON carries them, else with
    `executemany`. The first runs inside one call into SQLite, which does not take
    Python's GIL back until the batch is in; `executemany` takes it back after each row,
    and from a worker thread then waits for the event loop's thread to give it up."""
    if rows.text is None:
        conn.executemany(sql, rows.params)
    else:
        conn.execute(json_sql, (rows.text,))
