"""INSERTs run on the DB-API connection itself, for the store's high-volume writes (pings,
check results) on SQLite: through `Connection.execute` the statement's compilation and
the per-row parameter handling cost more than SQLite's own work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


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
