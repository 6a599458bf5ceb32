"""Storage growth: a simulated year of a realistic install, and the pages at its end.

Writes day after day, through the store's own code, what an install produces, runs the real
retention (and SQLite's `PRAGMA optimize`, as the daily housekeeping does) with an injected
clock at the end of each day, and prints the database size as it grows; at the end it times
the dashboard overview (`GET /dashboard`) and `GET /api/v1/status` on the final database
(a real Runtime, in-process ASGI, median of `--repeat`). Target: < 2 GB after a year, both
pages < 200 ms.

The documented config (the defaults):

* 100 checks: 40 at 30 s, 60 at 60 s (201,600 results a day, 73.6 million a year); 10 of
  them `system` checks carrying 6 metrics each, 20 HTTPS checks carrying `tls.days_left`;
* failures: an incident (down for 3 to 30 minutes) per check every 15 days on average, plus
  0.3 % isolated failures and 0.5 % degraded results; each incident of 2 or more failures
  opens an alert (fired, resolved, 2 events) notified on 2 channels (4 delivered
  notifications); 20 audit entries a day;
* default `storage.retention` (results 30d, raw_success 2d, metrics 30d, alerts 90d,
  rollups_5m 30d, rollups_1h 400d, audit 365d).

The last `--full-days` days (default 32: more than `metrics` and `raw_success`, so every
raw row still stored at the end was written this way) are simulated result by result: every
row written to check_results and folded into the rollups by `rollups.add_results`, as the
result writer does, and the real retention churns them. On the days before, only what that
retention would keep is made: failures and recoveries as raw rows, and the day's rollup rows
generated directly with the same statistics (the plain successes it would delete a few days
later are never written). That saves most of the run time and none of the final size, as
the size over time shows; `--full` simulates every day in full (hours).

Run from the project root:

    .venv/bin/python bench/storage_growth.py                      # 100 checks, 365 days
    .venv/bin/python bench/storage_growth.py --checks 20 --days 40 --every 10   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.lifecycle import AlertSpec
from watchkeeper.app import Runtime
from watchkeeper.auth import tokens
from watchkeeper.config.loader import Config
from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.clock import SystemClock
from watchkeeper.core.domain import Severity, Status
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import rollups, tables, upkeep
from watchkeeper.store.config import RetentionConfig
from watchkeeper.store.database import Database, upsert
from watchkeeper.store.retention import Retention

START = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
UP, DOWN, DEGRADED = Status.UP.value, Status.DOWN.value, Status.DEGRADED.value


@dataclass
class Check:
    name: str
    interval: int
    kind: str  # http, https, system
    phase: int
    last: str = UP


def checks_of(n: int) -> list[Check]:
    out = []
    for i in range(n):
        kind = "system" if i % 10 == 9 else "https" if i % 10 in (7, 8) else "http"
        interval = 30 if i % 10 < 4 else 60
        out.append(Check(f"check-{i:03d}", interval, kind, (i * 7) % interval))
    return out


def metrics_of(check: Check, rng: random.Random) -> dict[str, float] | None:
    if check.kind == "https":
        return {"tls.days_left": round(rng.uniform(10, 90), 4)}
    if check.kind == "system":
        return {
            "system.cpu.percent": round(rng.uniform(1, 90), 1),
            "system.memory.percent": round(rng.uniform(20, 80), 1),
            'system.disk.percent{path="/"}': round(rng.uniform(30, 70), 1),
            "system.load1.per_cpu": round(rng.uniform(0, 2), 2),
            "system.network.receive_bytes_per_s": round(rng.uniform(0, 1e6)),
            "system.network.transmit_bytes_per_s": round(rng.uniform(0, 1e6)),
        }
    return None


@dataclass
class Day:
    results: list[dict[str, Any]]
    """Every result of the day (folded into the rollups by `rollups.add_results`)."""
    raw: list[dict[str, Any]]
    """What is written to check_results."""
    incidents: list[tuple[Check, datetime, datetime]]
    rollups: list[dict[str, Any]] | None = None
    """Rollup rows made directly (a cheap day), instead of from `results`."""


def simulate_day(checks: list[Check], day: datetime, rng: random.Random, full: bool) -> Day:
    """One day of results; `raw` is what is written to check_results (all of them if
    `full`, else all but the plain successes)."""
    results: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    incidents = []
    for check in checks:
        down: tuple[int, int] | None = None
        if rng.random() < 1 / 15:
            start = rng.randrange(0, 86400 - 1800)
            down = (start, start + rng.randrange(180, 1800))
        failures = 0
        for t in range(check.phase, 86400, check.interval):
            k = rng.random()
            if down is not None and down[0] <= t < down[1]:
                status, reason, rt = DOWN, "HTTP 503", round(rng.uniform(0.01, 0.2), 4)
                failures += 1
            elif k < 0.003:
                status, reason, rt = DOWN, "timed out after 10s", None
            elif k < 0.008:
                status, reason, rt = DEGRADED, "slow: 2.1s > 2s", round(rng.uniform(2, 3), 4)
            else:
                status, reason, rt = UP, "HTTP 200", round(rng.uniform(0.005, 0.4), 4)
            metrics = metrics_of(check, rng)
            row = {
                "check_name": check.name,
                "started_at": day + timedelta(seconds=t),
                "status": status,
                "reason": reason,
                "response_time": rt,
                "metrics": metrics,
                "details": None,
            }
            results.append(row)
            if full or status != UP or check.last != UP or metrics:
                raw.append(row)
            check.last = status
        if down is not None and failures >= 2:
            incidents.append(
                (check, day + timedelta(seconds=down[0]), day + timedelta(seconds=down[1]))
            )
    results.sort(key=lambda r: r["started_at"])
    raw.sort(key=lambda r: r["started_at"])
    return Day(results, raw, incidents)


def cheap_day(checks: list[Check], day: datetime, rng: random.Random) -> Day:
    """A day long enough ago that retention keeps only its failures and recoveries (and its
    rollups): those raw rows, and the rollups generated directly, bucket by bucket, with the
    same statistics as `simulate_day` (the rows retention would delete are not made)."""
    raw: list[dict[str, Any]] = []
    rollup_rows: list[dict[str, Any]] = []
    incidents = []
    for check in checks:
        n = 86400 // check.interval
        odd: dict[int, tuple[str, str, float | None]] = {}
        if rng.random() < 1 / 15:
            start = rng.randrange(0, 86400 - 1800)
            end = start + rng.randrange(180, 1800)
            first = -(-(start - check.phase) // check.interval)
            last = -(-(end - check.phase) // check.interval)
            for j in range(max(0, first), min(n, last)):
                odd[j] = (DOWN, "HTTP 503", round(rng.uniform(0.01, 0.2), 4))
            if last - first >= 2:
                incidents.append(
                    (check, day + timedelta(seconds=start), day + timedelta(seconds=end))
                )
        downs = int(n * 0.003 + rng.random())
        degraded = int(n * 0.005 + rng.random())
        for i, j in enumerate(rng.sample(range(n), downs + degraded)):
            if j not in odd:
                if i < downs:
                    odd[j] = (DOWN, "timed out after 10s", None)
                else:
                    odd[j] = (DEGRADED, "slow: 2.1s > 2s", round(rng.uniform(2, 3), 4))
        previous = check.last
        for j in range(n):
            status, reason, rt = odd.get(j, (UP, "HTTP 200", None))
            if status != UP or previous != UP:
                if status == UP:
                    rt = round(rng.uniform(0.005, 0.4), 4)
                raw.append(
                    {
                        "check_name": check.name,
                        "started_at": day + timedelta(seconds=check.phase + j * check.interval),
                        "status": status,
                        "reason": reason,
                        "response_time": rt,
                        "metrics": None,
                        "details": None,
                    }
                )
            previous = status
        check.last = previous
        for resolution in rollups.RESOLUTIONS:
            per = resolution // check.interval
            for b in range(86400 // resolution):
                statuses = [odd.get(j, (UP, "", 0.0)) for j in range(b * per, (b + 1) * per)]
                down = sum(1 for s in statuses if s[0] == DOWN)
                rts = sum(1 for s in statuses if s[2] is not None)
                rollup_rows.append(
                    {
                        "resolution": resolution,
                        "bucket": int((day + timedelta(seconds=b * resolution)).timestamp()),
                        "check_name": check.name,
                        "count": per,
                        "available": per - down,
                        "down": down,
                        "rt_count": rts,
                        "rt_sum": round(rts * rng.uniform(0.15, 0.25), 4),
                        "rt_min": round(rng.uniform(0.005, 0.02), 4),
                        "rt_max": round(rng.uniform(0.3, 0.4), 4),
                    }
                )
    raw.sort(key=lambda r: r["started_at"])
    return Day([], raw, incidents, rollup_rows)


async def write_day(db: Database, day: datetime, data: Day, batch: int = 20_000) -> None:
    """Rollups of every result, raw rows, in writer-sized transactions (the result writer's
    own statements), then the day's alerts, notifications and audit entries."""
    if data.rollups is not None:
        for i in range(0, len(data.rollups), batch):
            async with db.begin() as conn:
                await conn.execute(tables.check_rollups.insert(), data.rollups[i : i + batch])
        for i in range(0, len(data.raw), batch):
            async with db.begin() as conn:
                await conn.execute(tables.check_results.insert(), data.raw[i : i + batch])
    raw_by_time = iter(data.raw if data.rollups is None else [])
    pending = next(raw_by_time, None)
    for i in range(0, len(data.results), batch):
        chunk = data.results[i : i + batch]
        until = chunk[-1]["started_at"]
        rows = []
        while pending is not None and pending["started_at"] <= until:
            rows.append(pending)
            pending = next(raw_by_time, None)
        async with db.begin() as conn:
            if rows:
                await conn.execute(tables.check_results.insert(), rows)
            await rollups.add_results(conn, chunk)
    async with db.begin() as conn:
        for check, started, ended in data.incidents:
            spec = AlertSpec(
                fingerprint=f"check:{check.name}",
                name=check.name,
                severity=Severity.CRITICAL,
                summary=f"{check.name} is down: HTTP 503",
                labels={"check": check.name, "severity": "critical"},
                check=check.name,
                source="check",
            )
            alert, _ = await lifecycle.fire(conn, spec, started)
            await lifecycle.resolve(conn, spec.fingerprint, ended, comment="recovered")
            entries = [
                outbox_store.OutboxEntry(
                    channel,
                    str(uuid.uuid4()),
                    event,
                    {"alert": alert.id, "name": check.name, "summary": spec.summary},
                    alert.id,
                )
                for channel in ("ops-slack", "oncall-webhook")
                for event in ("alert.firing", "alert.resolved")
            ]
            await outbox_store.enqueue(conn, entries, started, outbox_store.DELIVERED)
        await conn.execute(
            tables.audit_log.insert(),
            [
                {
                    "at": day + timedelta(minutes=30 * i),
                    "actor": "alice",
                    "actor_kind": "user",
                    "action": "POST /api/v1/silences",
                    "target": "/api/v1/silences",
                    "status": 201,
                }
                for i in range(20)
            ],
        )


class FixedClock(SystemClock):
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now


def file_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def counts(db: Database) -> dict[str, int]:
    out = {}
    async with db.connect() as conn:
        for table in (tables.check_results, tables.check_rollups, tables.alerts, tables.outbox):
            query = select(func.count()).select_from(table)
            out[table.name] = int((await conn.execute(query)).scalar_one())
    return out


async def table_sizes(db: Database) -> dict[str, int]:
    """Bytes per table and index (SQLite's dbstat, when this build has it)."""
    try:
        async with db.connect() as conn:
            rows = await conn.execute(
                text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
            )
            return {name: int(size) for name, size in rows}
    except Exception:
        return {}


async def seed_states(db: Database, checks: list[Check], now: datetime) -> None:
    rows = []
    for check in checks:
        state = CheckState(check.name, Status(check.last), now - timedelta(hours=3))
        state.last_status = state.status
        state.last_reason = "HTTP 200"
        state.last_checked_at = now - timedelta(seconds=check.interval)
        rows.append(state.as_row())
    async with db.begin() as conn:
        await upsert(conn, tables.check_states, rows, ["check_name"])


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    await fn()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


async def pages(path: Path, checks: list[Check], now: datetime, repeat: int) -> dict[str, float]:
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{path}"},
            "checks": [
                {"name": c.name, "type": "http", "url": "http://127.0.0.1:9/", "enabled": False}
                for c in checks
            ],
        }
    )
    runtime = Runtime(config, clock=FixedClock(now))
    await runtime.start()
    try:
        _, token = await tokens.create_token(runtime.db, name="bench", role=Role.VIEWER, now=now)
        app = create_app(config, runtime=runtime)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://wk",
            headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"},
        ) as client:
            out = {}
            for url in ("/dashboard", "/api/v1/status"):

                async def get(url: str = url) -> None:
                    got = await client.get(url)
                    assert got.status_code == 200, (url, got.status_code, got.text[:300])

                out[url] = statistics.median(await timed(get, repeat))
            return out
    finally:
        await runtime.stop()


async def main(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    checks = checks_of(args.checks)
    config = RetentionConfig()
    per_day = sum(86400 // c.interval for c in checks)
    print(
        f"storage growth: {args.checks} checks ({per_day:,} results a day), {args.days} days, "
        f"retention {config.model_dump(mode='json')}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "growth.db"
        if path.exists():
            os.remove(path)
        db = Database(f"sqlite:///{path}")
        await db.migrate()
        began = time.perf_counter()
        prune_s = 0.0
        most_batches = 0
        print("| day | file MiB | results rows | rollup rows | alerts | notifications |")
        print("|---:|---:|---:|---:|---:|---:|")
        for d in range(args.days):
            day = START + d * DAY
            if args.full or d >= args.days - args.full_days:
                await write_day(db, day, simulate_day(checks, day, rng, full=True))
            else:
                await write_day(db, day, cheap_day(checks, day, rng))
            clock = FixedClock(day + DAY)
            retention = Retention(db, config, clock, pause=0)
            t = time.perf_counter()
            await retention.prune()
            prune_s += time.perf_counter() - t
            most_batches = max(most_batches, retention.batches)
            await upkeep.optimize(db)
            async with db.connect() as conn:
                await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            if (d + 1) % args.every == 0 or d + 1 == args.days:
                n = await counts(db)
                print(
                    f"| {d + 1} | {file_size(path) / 2**20:,.0f} | {n['check_results']:,} | "
                    f"{n['check_rollups']:,} | {n['alerts']:,} | {n['outbox']:,} |",
                    flush=True,
                )
        end = START + args.days * DAY
        await seed_states(db, checks, end)
        sizes = await table_sizes(db)
        await db.close()
        size = file_size(path)
        print(
            f"\nsimulated in {time.perf_counter() - began:,.0f} s; retention took "
            f"{prune_s:,.1f} s in all (at most {most_batches} batches a day)"
        )
        if sizes:
            print(
                "largest tables and indexes (MiB): "
                + ", ".join(f"{name} {b / 2**20:,.0f}" for name, b in list(sizes.items())[:8])
            )
        latency = await pages(path, checks, end, args.repeat)
    print(f"final size: {size / 2**20:,.0f} MiB ({size / 1e9:.2f} GB); target < 2 GB")
    for url, ms in latency.items():
        print(f"GET {url}: median {ms:.0f} ms of {args.repeat}; target < 200 ms")
    ok = size < 2e9 and all(ms < 200 for ms in latency.values())
    print("met" if ok else "MISSED")
    return 0 if ok else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--full-days", type=int, default=32, help="last days written in full")
    parser.add_argument("--full", action="store_true", help="write every raw row of every day")
    parser.add_argument("--every", type=int, default=30, help="print the size every N days")
    parser.add_argument("--repeat", type=int, default=10, help="timed GETs per page")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", default=None, help="the database file (replaced)")
    parser.add_argument("--dir", default=None, help="where the temporary database goes")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args(None))))
