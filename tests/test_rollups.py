"""Rollups of check results: kept by the writer, backfilled by the migration, read as series.

The reference everywhere is a brute-force aggregation of the raw results, in plain Python.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects import sqlite

from tests.support.clock import FakeClock
from watchkeeper.config.loader import RetentionConfig
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.store import result_metrics, rollups, tables
from watchkeeper.store.database import Database, _alembic_config
from watchkeeper.store.results import ResultWriter
from watchkeeper.store.retention import Retention

BASE = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)  # on an hour boundary
STATUSES = [Status.UP, Status.DEGRADED, Status.DOWN, Status.UNKNOWN]


@dataclass(frozen=True)
class Raw:
    check: str
    at: datetime
    status: Status
    response_time: float | None


def brute_rollups(results: Iterable[Raw], resolution: int) -> dict[tuple[str, int], dict[str, Any]]:
    """(check, bucket start) -> what the rollup row must hold, from the raw results."""
    groups: dict[tuple[str, int], list[Raw]] = defaultdict(list)
    for r in results:
        second = math.floor(r.at.timestamp())
        groups[(r.check, second - second % resolution)].append(r)
    out = {}
    for key, rows in groups.items():
        times = [r.response_time for r in rows if r.response_time is not None]
        out[key] = {
            "count": len(rows),
            "available": sum(r.status in (Status.UP, Status.DEGRADED) for r in rows),
            "down": sum(r.status is Status.DOWN for r in rows),
            "rt_count": len(times),
            "rt_sum": sum(times),
            "rt_min": min(times, default=None),
            "rt_max": max(times, default=None),
        }
    return out


def brute_series(
    results: Iterable[Raw], check: str, since: datetime, until: datetime, step: timedelta
) -> list[tuple[datetime, int, int, float | None, float | None]]:
    n = math.ceil((until - since) / step)
    points: list[list[Raw]] = [[] for _ in range(n)]
    for r in results:
        if r.check == check and since <= r.at < until:
            points[int((r.at - since) / step)].append(r)
    out = []
    for i, rows in enumerate(points):
        times = [r.response_time for r in rows if r.response_time is not None]
        out.append(
            (
                since + i * step,
                len(rows),
                sum(r.status in (Status.UP, Status.DEGRADED) for r in rows),
                sum(times) / len(times) if times else None,
                max(times, default=None),
            )
        )
    return out


def brute_uptime(
    results: Iterable[Raw], check: str, since: datetime, until: datetime
) -> float | None:
    rows = [r for r in results if r.check == check and since <= r.at < until]
    if not rows:
        return None
    return sum(r.status in (Status.UP, Status.DEGRADED) for r in rows) / len(rows)


async def stored_rollups(db: Database, resolution: int) -> dict[tuple[str, int], dict[str, Any]]:
    R = tables.check_rollups
    async with db.connect() as conn:
        rows = (await conn.execute(select(R).where(R.c.resolution == resolution))).mappings().all()
    return {
        (row["check_name"], row["bucket"]): {
            k: row[k]
            for k in ("count", "available", "down", "rt_count", "rt_sum", "rt_min", "rt_max")
        }
        for row in rows
    }


def assert_rollups_match(
    stored: dict[Any, dict[str, Any]], expected: dict[Any, dict[str, Any]]
) -> None:
    assert stored.keys() == expected.keys()
    for key, want in expected.items():
        got = stored[key]
        for field in ("count", "available", "down", "rt_count", "rt_min", "rt_max"):
            assert got[field] == pytest.approx(want[field]), (key, field)
        assert got["rt_sum"] == pytest.approx(want["rt_sum"]), key


async def write(db: Database, results: list[Raw], max_batch: int) -> None:
    writer = ResultWriter(db, lambda _name: None, max_batch=max_batch)
    for r in results:
        writer.record(r.check, r.at, CheckResult(r.status, "r", response_time=r.response_time))
    await writer.flush()


async def clear(db: Database) -> None:
    async with db.begin() as conn:
        await conn.execute(delete(tables.check_results))
        await conn.execute(delete(tables.check_rollups))


raw_results = st.lists(
    st.builds(
        Raw,
        check=st.sampled_from(["api", "db", "web"]),
        # Up to 3 hours after BASE, with microseconds, edges of buckets included.
        at=st.one_of(
            st.integers(0, 3 * 3600 * 10**6 - 1).map(lambda us: BASE + timedelta(microseconds=us)),
            st.integers(0, 36).map(lambda k: BASE + timedelta(seconds=300 * k)),
        ),
        status=st.sampled_from(STATUSES),
        response_time=st.one_of(st.none(), st.floats(0, 30, allow_nan=False)),
    ),
    max_size=120,
)

SLOW = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SLOW
@given(results=raw_results, max_batch=st.integers(1, 50), data=st.data())
async def test_rollups_and_series_match_a_brute_force_aggregation_of_the_raw_results(
    db: Database, results: list[Raw], max_batch: int, data: st.DataObject
) -> None:
    await clear(db)
    # Small batches: the same bucket is merged across many transactions.
    await write(db, results, max_batch)

    for resolution in rollups.RESOLUTIONS:
        assert_rollups_match(
            await stored_rollups(db, resolution), brute_rollups(results, resolution)
        )

    # Series: steps read 1 h rollups, 5 min rollups (a step or `since` that is not on the
    # hour) or raw results (steps under 5 minutes, or not a multiple of them).
    step = timedelta(seconds=data.draw(st.sampled_from([60, 90, 300, 600, 900, 3600, 7200])))
    if step.total_seconds() % 300:
        since = BASE + timedelta(seconds=data.draw(st.integers(-600, 3 * 3600)))
    else:
        since = BASE + timedelta(minutes=5 * data.draw(st.integers(-3, 36)))
    until = (
        since
        + step * data.draw(st.integers(1, 40))
        - timedelta(seconds=data.draw(st.integers(0, 59)))
    )
    series = await rollups.load_series(db, ["api", "db", "web", "none"], since, until, step)
    for check in ("api", "db", "web", "none"):
        got = [
            (p.t, p.count, p.available, p.avg_response_time, p.max_response_time)
            for p in series[check]
        ]
        expected_points = brute_series(results, check, since, until, step)
        assert len(got) == len(expected_points)
        for point, want in zip(got, expected_points, strict=True):
            assert point[:3] == want[:3], check
            assert point[3:] == pytest.approx(want[3:]), (check, point[0])

    # Uptime over any window, to the second: exact (hours, 5-minute edges, raw edges).
    lo = BASE + timedelta(seconds=data.draw(st.integers(-600, 3 * 3600)))
    hi = lo + timedelta(seconds=data.draw(st.integers(1, 4 * 3600)))
    got_uptime = await rollups.uptime(db, None, lo, hi)
    expected = {c: brute_uptime(results, c, lo, hi) for c in ("api", "db", "web")}
    assert got_uptime == pytest.approx({c: u for c, u in expected.items() if u is not None})


async def test_rollups_are_written_in_the_result_batch_transaction(db: Database) -> None:
    writer = ResultWriter(db, lambda _name: None)
    writer.record("api", BASE, CheckResult.up(response_time=0.25))
    writer.record("api", BASE + timedelta(minutes=1), CheckResult.down("refused"))
    await writer.flush()
    # A later batch in the same bucket adds to it rather than replacing it.
    writer.record(
        "api", BASE + timedelta(minutes=2), CheckResult.degraded("slow", response_time=2.0)
    )
    await writer.flush()

    five = await stored_rollups(db, 300)
    assert five == {
        ("api", int(BASE.timestamp())): {
            "count": 3,
            "available": 2,
            "down": 1,
            "rt_count": 2,
            "rt_sum": 2.25,
            "rt_min": 0.25,
            "rt_max": 2.0,
        }
    }
    assert (await stored_rollups(db, 3600)).keys() == {("api", int(BASE.timestamp()))}


async def test_load_series_returns_aligned_buckets_with_empty_ones_included(db: Database) -> None:
    writer = ResultWriter(db, lambda _name: None)
    writer.record("api", BASE + timedelta(hours=1, minutes=10), CheckResult.up(response_time=0.1))
    writer.record(
        "api", BASE + timedelta(hours=1, minutes=20), CheckResult.down("x", response_time=0.3)
    )
    writer.record("db", BASE + timedelta(hours=3, minutes=59), CheckResult.unknown("?"))
    await writer.flush()
    since, until = BASE, BASE + timedelta(hours=4)

    series = await rollups.load_series(db, ["api", "quiet"], since, until, timedelta(hours=1))

    assert list(series) == ["api", "quiet"]
    hours = [BASE + timedelta(hours=h) for h in range(4)]
    for check in ("api", "quiet"):
        assert [p.t for p in series[check]] == hours
    api = series["api"]
    assert [p.count for p in api] == [0, 2, 0, 0]
    assert api[1].available == 1 and api[1].uptime == 0.5
    assert api[1].avg_response_time == pytest.approx(0.2) and api[1].max_response_time == 0.3
    assert api[0].uptime is None and api[0].avg_response_time is None
    assert all(p.count == 0 and p.uptime is None for p in series["quiet"])

    # names=None: every check with data in the window, nothing else.
    everyone = await rollups.load_series(db, None, since, until, timedelta(hours=1))
    assert list(everyone) == ["api", "db"]
    assert [p.count for p in everyone["db"]] == [0, 0, 0, 1]
    assert everyone["db"][3].uptime == 0.0

    # Five-minute points from 5 min rollups, one-minute points from raw results: same grid.
    fine = await rollups.load_series(db, ["api"], since, until, timedelta(minutes=5))
    assert len(fine["api"]) == 48 and sum(p.count for p in fine["api"]) == 2
    raw = await rollups.load_series(db, ["api"], since, until, timedelta(minutes=1))
    assert len(raw["api"]) == 240
    assert [i for i, p in enumerate(raw["api"]) if p.count] == [70, 80]

    assert await rollups.uptime(db, ["api", "db", "quiet"], since, until) == {
        "api": 0.5,
        "db": 0.0,
        "quiet": None,
    }


async def test_load_series_refuses_more_points_than_it_allows(db: Database) -> None:
    with pytest.raises(ValueError, match="at most"):
        await rollups.load_series(db, None, BASE, BASE + timedelta(days=30), timedelta(seconds=1))
    with pytest.raises(ValueError, match="whole number of seconds"):
        await rollups.load_series(db, None, BASE, BASE + timedelta(hours=1), timedelta(0))


def test_range_windows_end_with_the_bucket_holding_now_and_are_aligned_to_the_step() -> None:
    now = datetime(2030, 3, 1, 9, 47, 31, 5000, tzinfo=UTC)
    since, until, step = rollups.window("24h", now)
    assert (since, until, step) == (
        datetime(2030, 2, 28, 9, 50, tzinfo=UTC),
        datetime(2030, 3, 1, 9, 50, tzinfo=UTC),
        timedelta(minutes=5),
    )
    since, until, step = rollups.window("30d", now)
    assert until == datetime(2030, 3, 1, 12, tzinfo=UTC) and until - since == timedelta(days=30)
    assert {name: rollups.RANGES[name][1] for name in rollups.RANGES} == {
        "1h": timedelta(minutes=1),
        "24h": timedelta(minutes=5),
        "7d": timedelta(hours=1),
        "30d": timedelta(hours=6),
    }


@pytest.mark.empty_database
async def test_the_migration_backfills_rollups_from_results_already_stored(db_url: str) -> None:
    results = [
        Raw("api", BASE + timedelta(seconds=s), status, rt)
        for s, status, rt in [
            (0, Status.UP, 0.1),
            (59.5, Status.DOWN, None),
            (299.999, Status.DEGRADED, 1.5),
            (300, Status.UNKNOWN, 0.2),
            (3600 + 17, Status.UP, 0.4),
        ]
    ] + [Raw("db", BASE + timedelta(hours=2, seconds=1), Status.DOWN, 3.0)]
    database = Database(db_url)
    try:
        async with database.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0005"))
            await conn.execute(
                tables.check_results.insert(),
                [
                    {
                        "check_name": r.check,
                        "started_at": r.at,
                        "status": r.status.value,
                        "reason": "r",
                        "response_time": r.response_time,
                    }
                    for r in results
                ],
            )
        await database.migrate()

        for resolution in rollups.RESOLUTIONS:
            assert_rollups_match(
                await stored_rollups(database, resolution), brute_rollups(results, resolution)
            )
        # And the writer carries on from there.
        await write(database, [Raw("api", BASE + timedelta(seconds=10), Status.UP, 0.3)], 10)
        expected = brute_rollups(
            [*results, Raw("api", BASE + timedelta(seconds=10), Status.UP, 0.3)], 300
        )
        assert_rollups_match(await stored_rollups(database, 300), expected)
    finally:
        await database.close()


async def count_rollups(db: Database, resolution: int) -> int:
    R = tables.check_rollups
    async with db.connect() as conn:
        query = select(func.count()).select_from(R).where(R.c.resolution == resolution)
        return int((await conn.execute(query)).scalar_one())


async def test_retention_drops_old_rollups_by_their_own_settings(db: Database) -> None:
    clock = FakeClock(datetime(2031, 6, 1, 12, tzinfo=UTC))
    writer = ResultWriter(db, lambda _name: None)
    for days in (500, 100, 40, 20, 1):
        writer.record("api", clock.now() - timedelta(days=days), CheckResult.up())
    await writer.flush()
    assert (await count_rollups(db, 300), await count_rollups(db, 3600)) == (5, 5)

    config = RetentionConfig(results=timedelta(days=7), rollups_5m=timedelta(days=30))
    pruned = await Retention(db, config, clock).prune()

    # Raw results: 7 days; 5-minute rollups: 30 days; hourly rollups: 400 days (default).
    assert pruned.results == 4
    assert pruned.rollups == 3 + 1
    assert (await count_rollups(db, 300), await count_rollups(db, 3600)) == (2, 4)
    # What the raw results no longer hold, the rollups still answer.
    old = clock.now() - timedelta(days=100, hours=1)
    assert await rollups.uptime(db, ["api"], old, old + timedelta(hours=3)) == {"api": 1.0}


def test_hourly_rollups_may_not_be_kept_shorter_than_five_minute_ones() -> None:
    with pytest.raises(ValidationError, match="rollups_1h must be at least rollups_5m"):
        RetentionConfig.model_validate({"rollups_5m": "60d", "rollups_1h": "30d"})
    assert RetentionConfig().rollups_5m == timedelta(days=30)
    assert RetentionConfig().rollups_1h == timedelta(days=400)


async def test_result_metrics_are_averaged_per_bucket_on_both_engines(db: Database) -> None:
    cpu, disk = "system.cpu.percent", 'system.disk.percent{path="/"}'
    writer = ResultWriter(db, lambda _name: None)
    writer.record("host", BASE + timedelta(minutes=1), CheckResult.up(metrics={cpu: 10, disk: 70}))
    writer.record("host", BASE + timedelta(minutes=4), CheckResult.up(metrics={cpu: 30.5}))
    writer.record("host", BASE + timedelta(minutes=6), CheckResult.down("no readings"))
    writer.record("host", BASE + timedelta(minutes=16), CheckResult.up(metrics={cpu: 50}))
    writer.record("web", BASE + timedelta(minutes=2), CheckResult.up(metrics={cpu: 5}))
    writer.record("web", BASE - timedelta(minutes=2), CheckResult.up(metrics={cpu: 99}))
    await writer.flush()
    since, until, step = BASE, BASE + timedelta(minutes=20), timedelta(minutes=5)

    host = await result_metrics.check_metrics(db, "host", since, until, step)
    assert host == {cpu: [20.25, None, None, 50.0], disk: [70.0, None, None, None]}
    across = await result_metrics.metric_by_check(db, cpu, since, until, step)
    assert across == {"host": [20.25, None, None, 50.0], "web": [5.0, None, None, None]}
    assert await result_metrics.metric_by_check(db, disk, since, until, step) == {
        "host": [70.0, None, None, None]
    }
    assert await result_metrics.metric_by_check(db, "system", since, until, step) == {}


async def test_one_checks_series_reads_its_rows_through_the_slim_index(sqlite_db: Database) -> None:
    """The check index is not covering (migration 0015): without the statistics the
    migration seeds, SQLite would scan every check's rollups of the range instead."""
    since, until, step = rollups.window("30d", datetime(2030, 1, 1, tzinfo=UTC))
    since_s, until_s = int(since.timestamp()), int(until.timestamp())
    step_s = int(step.total_seconds())
    for names in (["api"], None):
        query = rollups._series_query("sqlite", names, since_s, until_s, step_s)
        sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
        async with sqlite_db.connect() as conn:
            plan = " ".join(row[3] for row in await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        if names:
            assert (
                "INDEX ix_check_rollups_check (check_name=? AND resolution=? AND bucket>?" in plan
            )
        else:
            assert "PRIMARY KEY (resolution=? AND bucket>?" in plan
