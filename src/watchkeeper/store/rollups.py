"""Time-series rollups of check results: counts and response times per check and time bucket.

Two resolutions are stored, 5-minute and 1-hour buckets, in `check_rollups`. The
ResultWriter keeps them current: each result batch is aggregated here first, then merged
with one additive upsert per (check, resolution, bucket) in the batch's own transaction, so
rollups and raw results can never disagree. Rollups outlive raw results (see
`storage.retention`), which is what lets a 30-day or 1-year chart stay cheap.

Reading (`load_series`, `uptime`) picks the coarsest stored resolution that fits the request
and re-buckets in SQL, so the answer for 1,000 checks is one query, not 1,000.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    case,
    cast,
    delete,
    func,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.core.domain import Status
from watchkeeper.store import tables
from watchkeeper.store.database import Database

R = tables.check_rollups
CR = tables.check_results

FIVE_MINUTES = 300
ONE_HOUR = 3600
RESOLUTIONS = (FIVE_MINUTES, ONE_HOUR)
"""Stored bucket sizes, in seconds."""

AVAILABLE = (Status.UP.value, Status.DEGRADED.value)

_KEY = ("resolution", "bucket", "check_name")

RANGES: dict[str, tuple[timedelta, timedelta]] = {
    "1h": (timedelta(hours=1), timedelta(minutes=1)),
    "24h": (timedelta(hours=24), timedelta(minutes=5)),
    "7d": (timedelta(days=7), timedelta(hours=1)),
    "30d": (timedelta(days=30), timedelta(hours=6)),
}
"""Chart ranges the API and dashboard offer: name -> (span, step)."""

MAX_POINTS = 10_000
"""Most buckets one series may have (a guard against a tiny step over a long span)."""


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    t: datetime
    """Bucket start, UTC."""
    count: int
    available: int
    """Results that were up or degraded."""
    avg_response_time: float | None
    max_response_time: float | None

    @property
    def uptime(self) -> float | None:
        """Share of available results, 0..1; None for an empty bucket."""
        return self.available / self.count if self.count else None


def window(range_name: str, now: datetime) -> tuple[datetime, datetime, timedelta]:
    """(since, until, step) for a named range ending with the bucket that holds `now`.

    Bucket edges fall on multiples of the step since the epoch, so `load_series` reads the
    coarsest rollups exactly (an unaligned `since` costs precision, see there).
    """
    span, step = RANGES[range_name]
    step_s = int(step.total_seconds())
    until_s = (math.floor(now.timestamp()) // step_s + 1) * step_s
    until = datetime.fromtimestamp(until_s, UTC)
    return until - span, until, step


# -- writing ----------------------------------------------------------------------------------


def aggregate(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Result rows (as the writer buffers them) summed per (check, resolution, bucket).

    Sorted by key, so concurrent writers (several nodes on one PostgreSQL) take row locks in
    the same order and cannot deadlock.
    """
    acc: dict[tuple[str, int, int], list[Any]] = {}
    for row in rows:
        at = math.floor(row["started_at"].timestamp())
        status = row["status"]
        available = 1 if status in AVAILABLE else 0
        down = 1 if status == Status.DOWN.value else 0
        rt = row["response_time"]
        for resolution in RESOLUTIONS:
            key = (row["check_name"], resolution, at - at % resolution)
            entry = acc.get(key)
            if entry is None:
                entry = acc[key] = [0, 0, 0, 0, 0.0, None, None]
            entry[0] += 1
            entry[1] += available
            entry[2] += down
            if rt is not None:
                entry[3] += 1
                entry[4] += rt
                entry[5] = rt if entry[5] is None or rt < entry[5] else entry[5]
                entry[6] = rt if entry[6] is None or rt > entry[6] else entry[6]
    return [
        {
            "check_name": name,
            "resolution": resolution,
            "bucket": bucket,
            "count": e[0],
            "available": e[1],
            "down": e[2],
            "rt_count": e[3],
            "rt_sum": e[4],
            "rt_min": e[5],
            "rt_max": e[6],
        }
        for (name, resolution, bucket), e in sorted(acc.items())
    ]


def _lesser(a: Any, b: Any) -> ColumnElement[Any]:
    """min(a, b) ignoring NULLs, the same on both engines (SQLite's min(x, NULL) is NULL)."""
    return case((a.is_(None), b), (b.is_(None), a), (b < a, b), else_=a)


def _greater(a: Any, b: Any) -> ColumnElement[Any]:
    return case((a.is_(None), b), (b.is_(None), a), (b > a, b), else_=a)


def _upsert(dialect: str) -> Any:
    """The additive upsert of `aggregate`'s rows on `dialect` (postgresql or sqlite)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(R)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(R)  # type: ignore[assignment]
    new, old = stmt.excluded, R.c
    additive = ("count", "available", "down", "rt_count", "rt_sum")
    update: dict[str, Any] = {c: old[c] + new[c] for c in additive}
    update["rt_min"] = _lesser(old.rt_min, new.rt_min)
    update["rt_max"] = _greater(old.rt_max, new.rt_max)
    return stmt.on_conflict_do_update(index_elements=list(_KEY), set_=update)


async def add_results(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Fold a batch of result rows into the rollups, inside the caller's transaction."""
    values = aggregate(rows)
    if values:
        await conn.execute(_upsert(conn.dialect.name), values)


class SQLiteUpsert:
    """`add_results`'s statement for SQLite's DB-API connection itself (see
    watchkeeper.store.rawsql): its SQL, compiled once, and its parameter tuples."""

    def __init__(self) -> None:
        from sqlalchemy.dialects import sqlite

        columns = [c.name for c in R.columns]
        compiled = _upsert("sqlite").compile(dialect=sqlite.dialect(), column_keys=columns)
        self.sql = str(compiled)
        self._order = tuple(compiled.positiontup or ())
        if sorted(self._order) != sorted(columns):
            raise RuntimeError(f"unexpected parameters of the rollup upsert: {self._order}")

    def params(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """`aggregate(rows)` as parameter tuples (integers, floats and names: no conversion)."""
        return [tuple(v[c] for c in self._order) for v in aggregate(rows)]


async def delete_before(
    conn: AsyncConnection, resolution: int, cutoff: datetime, limit: int | None = None
) -> int:
    """Drop rollups of one resolution whose bucket starts before `cutoff` (retention), at
    most `limit` of them (the oldest first; retention deletes in batches)."""
    old = and_(R.c.resolution == resolution, R.c.bucket < math.floor(cutoff.timestamp()))
    if limit is None:
        result = await conn.execute(delete(R).where(old))
    else:
        key = (R.c.resolution, R.c.bucket, R.c.check_name)
        oldest = select(*key).where(old).order_by(*key).limit(limit)
        result = await conn.execute(delete(R).where(tuple_(*key).in_(oldest)))
    return int(result.rowcount or 0)


# -- reading ----------------------------------------------------------------------------------


def _epoch(dialect: str, column: Any) -> ColumnElement[int]:
    """Whole seconds since the epoch of a UTCDateTime column, in SQL."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS.ffffff' text.
    return cast(func.strftime("%s", column), BigInteger)


def _available_case() -> ColumnElement[int]:
    return case((CR.c.status.in_(AVAILABLE), 1), else_=0)


def _resolution_for(step_s: int, since_s: int) -> int | None:
    """The coarsest stored resolution that divides the step (and, ideally, `since`)."""
    dividing = [r for r in sorted(RESOLUTIONS, reverse=True) if step_s % r == 0]
    for resolution in dividing:
        if since_s % resolution == 0:
            return resolution
    # An unaligned `since`: each stored bucket counts in the point where it starts, so the
    # points' edges are precise to the finest resolution rather than exact.
    return dividing[-1] if dividing else None


def _whole_seconds(step: timedelta) -> int:
    seconds = step.total_seconds()
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"step must be a whole number of seconds, at least 1: {step}")
    return int(seconds)


def _name_filter(names: Sequence[str] | None) -> tuple[Sequence[str] | None, set[str] | None]:
    """(names for an SQL IN, names to keep in Python): a long list is filtered after."""
    if names is None:
        return None, None
    if len(names) <= 500:
        return names, None
    return None, set(names)


async def load_series(
    db: Database,
    names: Sequence[str] | None,
    since: datetime,
    until: datetime,
    step: timedelta,
) -> dict[str, list[SeriesPoint]]:
    """Points per check, one per `step` from `since` up to `until`, empty buckets included.

    `names=None` means every check with data in the window; a named check without data gets
    all-empty points, so charts of several checks align. A step that is a multiple of 1 h or
    5 min reads the rollups; a shorter one (or one that is neither) reads raw results.
    `since` is taken to the whole second.
    """
    step_s = _whole_seconds(step)
    since_s = math.floor(since.timestamp())
    until_s = math.ceil(until.timestamp())
    n = max(0, -(-(until_s - since_s) // step_s))
    if n > MAX_POINTS:
        raise ValueError(f"{n} points asked for; at most {MAX_POINTS}")
    if names is not None and not names:
        return {}
    sql_names, keep = _name_filter(names)
    query = _series_query(db.dialect, sql_names, since_s, until_s, step_s)
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()

    times = [datetime.fromtimestamp(since_s + i * step_s, UTC) for i in range(n)]
    # Frozen points are immutable, so one empty point per bucket serves every check.
    empty = [SeriesPoint(t, 0, 0, None, None) for t in times]
    series: dict[str, list[SeriesPoint]] = {}
    if names is not None:
        series = {name: empty.copy() for name in names}
    if keep is not None:
        rows = [r for r in rows if r[0] in keep]
    point, get = SeriesPoint, series.get
    # The hot loop of the dashboard overview (24,000 rows for 1,000 checks): kept bare.
    for name, i, count, available, avg, most in rows:
        points = get(name)
        if points is None:
            points = series[name] = empty.copy()
        points[i] = point(times[i], count, available, avg, most)
    if names is None:
        series = dict(sorted(series.items()))
    return series


def _series_query(
    dialect: str, names: Sequence[str] | None, since_s: int, until_s: int, step_s: int
) -> Select[Any]:
    """Rows (check, point index, count, available, avg and max response time) in SQL."""
    resolution = _resolution_for(step_s, since_s)
    query: Select[Any]
    if resolution == step_s and since_s % step_s == 0:
        # Stored buckets are the points: no re-bucketing, the cheapest read there is.
        query = select(
            R.c.check_name,
            (R.c.bucket - since_s) // step_s,
            R.c["count"],
            R.c.available,
            R.c.rt_sum / func.nullif(R.c.rt_count, 0),
            R.c.rt_max,
        )
    elif resolution is not None:
        index = ((R.c.bucket - since_s) // step_s).label("i")
        query = select(
            R.c.check_name,
            index,
            func.sum(R.c["count"]),
            func.sum(R.c.available),
            func.sum(R.c.rt_sum) / func.nullif(func.sum(R.c.rt_count), 0),
            func.max(R.c.rt_max),
        ).group_by(R.c.check_name, index)
    else:
        epoch = _epoch(dialect, CR.c.started_at)
        index = ((epoch - since_s) // step_s).label("i")
        query = (
            select(
                CR.c.check_name,
                index,
                func.count(),
                func.sum(_available_case()),
                func.avg(CR.c.response_time),
                func.max(CR.c.response_time),
            )
            .where(
                CR.c.started_at >= datetime.fromtimestamp(since_s, UTC),
                CR.c.started_at < datetime.fromtimestamp(until_s, UTC),
            )
            .group_by(CR.c.check_name, index)
        )
        return query if names is None else query.where(CR.c.check_name.in_(names))
    query = query.where(R.c.resolution == resolution, R.c.bucket >= since_s, R.c.bucket < until_s)
    return query if names is None else query.where(R.c.check_name.in_(names))


def _cover(lo: int, hi: int) -> list[tuple[int | None, int, int]]:
    """Split [lo, hi) into (resolution, start, end) pieces: whole hours read 1 h rollups,
    whole 5-minute buckets at the edges 5 min rollups, and the rest raw results (None)."""
    up5, up1 = -(-lo // FIVE_MINUTES) * FIVE_MINUTES, -(-lo // ONE_HOUR) * ONE_HOUR
    down5, down1 = hi - hi % FIVE_MINUTES, hi - hi % ONE_HOUR
    if up1 <= down1:
        pieces = [
            (None, lo, up5),
            (FIVE_MINUTES, up5, up1),
            (ONE_HOUR, up1, down1),
            (FIVE_MINUTES, down1, down5),
            (None, down5, hi),
        ]
    elif up5 <= down5:
        pieces = [(None, lo, up5), (FIVE_MINUTES, up5, down5), (None, down5, hi)]
    else:
        pieces = [(None, lo, hi)]
    return [(r, a, b) for r, a, b in pieces if a < b]


def _uptime_part(
    resolution: int | None, start: int, end: int, names: Sequence[str] | None
) -> Select[Any]:
    """(check, results, available results) over [start, end) from one source."""
    if resolution is None:
        conditions = [
            CR.c.started_at >= datetime.fromtimestamp(start, UTC),
            CR.c.started_at < datetime.fromtimestamp(end, UTC),
        ]
        if names is not None:
            conditions.append(CR.c.check_name.in_(names))
        return (
            select(CR.c.check_name, func.count(), func.sum(_available_case()))
            .where(*conditions)
            .group_by(CR.c.check_name)
        )
    conditions = [R.c.resolution == resolution, R.c.bucket >= start, R.c.bucket < end]
    if names is not None:
        conditions.append(R.c.check_name.in_(names))
    return (
        select(R.c.check_name, func.sum(R.c["count"]), func.sum(R.c.available))
        .where(*conditions)
        .group_by(R.c.check_name)
    )


async def uptime(
    db: Database, names: Sequence[str] | None, since: datetime, until: datetime
) -> dict[str, float | None]:
    """Share of available (up or degraded) results per check over [since, until), 0..1.

    None for a named check without results. Whole hours come from 1 h rollups, the edges
    from 5 min rollups and raw results, so the figure is exact while those are retained.
    """
    if names is not None and not names:
        return {}
    sql_names, keep = _name_filter(names)
    lo, hi = math.floor(since.timestamp()), math.ceil(until.timestamp())
    parts = [_uptime_part(r, start, end, sql_names) for r, start, end in _cover(lo, hi)]
    totals: dict[str, list[int]] = {}
    if parts:
        query = parts[0] if len(parts) == 1 else union_all(*parts)
        async with db.connect() as conn:
            rows = (await conn.execute(query)).all()
        for name, count, available in rows:
            if keep is not None and name not in keep:
                continue
            total = totals.setdefault(name, [0, 0])
            total[0] += int(count or 0)
            total[1] += int(available or 0)
    if names is None:
        return {name: ok / n if n else None for name, (n, ok) in sorted(totals.items())}
    result: dict[str, float | None] = {}
    for name in names:
        n, ok = totals.get(name, (0, 0))
        result[name] = ok / n if n else None
    return result
