"""Benchmark of the rollup read path: the dashboard overview of many checks over 24 hours.

Fills a new SQLite database with N checks x `--hours` of results at `--interval` seconds
(default 1,000 x 24 h x 60 s = 1.44 million results), written through the real
`ResultWriter` so the rollups are built exactly as in production, then times what the
overview asks for:

* `load_series(None, since, until, 1 h)`: every check, 24 hourly points each;
* `uptime(None, since, until)`: every check's availability over the window;

and, for comparison, one check's series at each API range (`24h`, `7d`, `30d` read rollups,
`1h` reads raw results at a one-minute step). Each query runs `--repeat` times; the table
gives min / median / max in milliseconds. Like `Runtime.start`, the benchmark calls
`gc.freeze()` once set up, so collections do not walk the start-up objects again and again.
The ingest rate (results/s, rollups included) is printed too; `--compare-raw` also times
the same ingest without rollups, in a second database, to show what maintaining them costs
on the write path.

Run from the project root:

    .venv/bin/python bench/rollups.py
    .venv/bin/python bench/rollups.py --checks 1000 --hours 24 --repeat 20 --compare-raw
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.store import rollups
from watchkeeper.store.database import Database
from watchkeeper.store.results import ResultWriter

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def result(i: int, j: int) -> CheckResult:
    """Mostly up, some degraded and down, a response time on most results."""
    k = (i * 7 + j) % 100
    status = Status.DOWN if k < 2 else Status.DEGRADED if k < 5 else Status.UP
    rt = None if k == 99 else 0.005 + (k % 17) / 100
    return CheckResult(status, "ok", response_time=rt)


async def fill(
    db: Database, checks: int, hours: int, interval: int, *, with_rollups: bool
) -> float:
    """Write the results through the ResultWriter; return the seconds it took."""
    writer = ResultWriter(db, lambda _name: None, max_batch=1000)
    names = [f"check-{i:04d}" for i in range(checks)]
    start = NOW - timedelta(hours=hours)
    steps = hours * 3600 // interval
    add = rollups.add_results
    if not with_rollups:

        async def no_rollups(_conn: Any, _rows: Any) -> None:
            return None

        rollups.add_results = no_rollups  # type: ignore[assignment]
    began = time.perf_counter()
    try:
        for j in range(steps):
            at = start + timedelta(seconds=j * interval)
            for i, name in enumerate(names):
                # Checks run at their own phase within the interval.
                writer.record(name, at + timedelta(seconds=(i * 0.037) % interval), result(i, j))
            if len(writer._buffer) >= 20_000:
                await writer.flush()
        await writer.flush()
    finally:
        rollups.add_results = add  # type: ignore[assignment]
    return time.perf_counter() - began


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    await fn()  # warm the connection and statement caches
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def row(label: str, samples: list[float]) -> str:
    return (
        f"| {label} | {min(samples):.1f} | {statistics.median(samples):.1f} | {max(samples):.1f} |"
    )


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "bench.db"
        reuse = path.exists()
        db = Database(f"sqlite:///{path}")
        await db.migrate()
        total = args.checks * args.hours * 3600 // args.interval
        if reuse:
            print(f"reusing {path} as it is", file=sys.stderr)
        else:
            print(
                f"writing {total:,} results ({args.checks} checks x {args.hours} h at "
                f"{args.interval} s) ...",
                file=sys.stderr,
                flush=True,
            )
            seconds = await fill(db, args.checks, args.hours, args.interval, with_rollups=True)
            print(f"ingest with rollups: {total / seconds:,.0f} results/s ({seconds:.1f} s)")
        if args.compare_raw:
            raw_db = Database(f"sqlite:///{Path(tmp) / 'raw.db'}")
            await raw_db.migrate()
            raw = await fill(raw_db, args.checks, args.hours, args.interval, with_rollups=False)
            await raw_db.close()
            print(
                f"ingest without rollups: {total / raw:,.0f} results/s ({raw:.1f} s); "
                f"rollups add {(seconds / raw - 1) * 100:.0f} %"
            )

        # As `Runtime.start` does: what lives for the whole process leaves the cyclic GC's
        # view, so collections triggered by the read path do not walk it over and over.
        gc.collect()
        gc.freeze()

        until = NOW
        since = until - timedelta(hours=24)
        hour = timedelta(hours=1)
        series = await rollups.load_series(db, None, since, until, hour)
        points = sum(len(p) for p in series.values())
        print(f"overview: {len(series)} checks, {points:,} points")

        async def overview() -> None:
            await rollups.load_series(db, None, since, until, hour)
            await rollups.uptime(db, None, since, until)

        results = [
            (
                "overview: load_series(all, 24 h, 1 h) + uptime(all)",
                await timed(overview, args.repeat),
            ),
            (
                "load_series(all, 24 h, 1 h)",
                await timed(lambda: rollups.load_series(db, None, since, until, hour), args.repeat),
            ),
            (
                "uptime(all, 24 h)",
                await timed(lambda: rollups.uptime(db, None, since, until), args.repeat),
            ),
        ]
        one = ["check-0001"]
        for name in ("1h", "24h", "7d", "30d"):
            s, u, step = rollups.window(name, NOW - timedelta(seconds=1))

            async def single(s: datetime = s, u: datetime = u, step: timedelta = step) -> None:
                await rollups.load_series(db, one, s, u, step)
                await rollups.uptime(db, one, s, u)

            results.append(
                (f"one check, range {name} (series + uptime)", await timed(single, args.repeat))
            )
        await db.close()

    print()
    print("| query (SQLite) | min ms | median ms | max ms |")
    print("|---|---:|---:|---:|")
    for label, samples in results:
        print(row(label, samples))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--interval", type=int, default=60, help="seconds between results")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per query")
    parser.add_argument(
        "--db", default=None, help="keep the database in this file; an existing one is reused"
    )
    parser.add_argument("--compare-raw", action="store_true", help="also ingest without rollups")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args(None)))
