"""Benchmark: the dashboard overview of 1,000 checks, rendered server-side (target < 200 ms).

Builds a new SQLite database holding N checks x 24 h of results (written through the real
ResultWriter, so the rollups are built as in production; see bench/rollups.py), stores a
state for every check (2 % down, 3 % degraded, one paused, the rest up) and a few open
alerts, starts a real Runtime on it (checks disabled, so nothing runs meanwhile) and times

* `GET /dashboard` in-process through the whole app (auth, routing, queries, Jinja2), as a
  viewer token; the figure the target is about;
* its parts: gathering the rows (states + 24 hourly rollup points per check), the summary
  (counts + open alerts), and the template render alone;
* one event-stream update (a changed check's row and the summary).

Run from the project root:

    .venv/bin/python bench/dashboard.py
    .venv/bin/python bench/dashboard.py --checks 5000 --interval 300 --repeat 10
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.lifecycle import AlertSpec
from watchkeeper.app import Runtime
from watchkeeper.auth import tokens
from watchkeeper.config.loader import Config
from watchkeeper.core.changes import check_key
from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.clock import SystemClock
from watchkeeper.core.domain import Severity, Status
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Principal, Role
from watchkeeper.http.web import live, views
from watchkeeper.store import tables
from watchkeeper.store.database import Database, upsert

# The result generator and filler of the rollups benchmark, shared rather than copied.
_spec = importlib.util.spec_from_file_location(
    "bench_rollups", Path(__file__).with_name("rollups.py")
)
assert _spec and _spec.loader
bench_rollups = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_rollups)
NOW: datetime = bench_rollups.NOW


class FixedClock(SystemClock):
    """The benchmark's data ends at NOW; the pages are rendered as of then (the loops wait
    in real time, as with the system clock)."""

    def now(self) -> datetime:
        return NOW


def status_of(i: int) -> Status:
    k = i % 100
    return Status.DOWN if k < 2 else Status.DEGRADED if k < 5 else Status.UP


async def seed(db: Database, names: list[str]) -> None:
    rows = []
    for i, name in enumerate(names):
        state = CheckState(name, status_of(i), NOW - timedelta(hours=3))
        state.last_status = state.status
        state.last_reason = (
            f"HTTP 200 in {5 + i % 40}ms" if state.status is Status.UP else "HTTP 503"
        )
        state.last_checked_at = NOW - timedelta(seconds=i % 60)
        state.paused = i == 7
        rows.append(state.as_row())
    async with db.begin() as conn:
        await upsert(conn, tables.check_states, rows, ["check_name"])
        for i, name in enumerate(names):
            if status_of(i) is Status.DOWN:
                spec = AlertSpec(
                    fingerprint=f"check:{name}",
                    name=name,
                    severity=Severity.CRITICAL,
                    summary=f"{name} is down: HTTP 503",
                    labels={"check": name},
                    check=name,
                    source="check",
                )
                await lifecycle.fire(conn, spec, NOW - timedelta(minutes=i % 50))


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    await fn()  # warm caches: compiled templates, statements, connections
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


async def main(args: argparse.Namespace) -> None:
    names = [f"check-{i:04d}" for i in range(args.checks)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dashboard.db"
        db = Database(f"sqlite:///{path}")
        await db.migrate()
        total = args.checks * args.hours * 3600 // args.interval
        print(
            f"writing {total:,} results ({args.checks} checks x {args.hours} h) ...",
            file=sys.stderr,
            flush=True,
        )
        await bench_rollups.fill(db, args.checks, args.hours, args.interval, with_rollups=True)
        await seed(db, names)
        await db.close()

        config = Config.model_validate(
            {
                "storage": {"url": f"sqlite:///{path}"},
                "checks": [
                    {"name": n, "type": "http", "url": "http://127.0.0.1:9/", "enabled": False}
                    for n in names
                ],
            }
        )
        runtime = Runtime(config, clock=FixedClock())
        await runtime.start()
        try:
            _, token = await tokens.create_token(
                runtime.db, name="bench", role=Role.VIEWER, now=NOW
            )
            app = create_app(config, runtime=runtime)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://wk",
                headers={"Authorization": f"Bearer {token}"},
            ) as client:
                page = await client.get("/dashboard")
                assert page.status_code == 200, page.text[:500]
                rows = page.text.count('<tr id="check-')
                assert rows == args.checks, rows
                size = len(page.content) / 1024
                zipped = await client.get("/dashboard", headers={"Accept-Encoding": "gzip"})
                wire = int(zipped.headers.get("content-length", 0)) / 1024
                print(
                    f"GET /dashboard: {rows} rows, {size:,.0f} KiB of HTML, {wire:,.0f} KiB gzipped"
                )

                async def full() -> None:
                    got = await client.get("/dashboard", headers={"Accept-Encoding": "identity"})
                    got.raise_for_status()

                async def compressed() -> None:
                    got = await client.get("/dashboard", headers={"Accept-Encoding": "gzip"})
                    assert got.headers["content-encoding"] == "gzip"

                configs = list(runtime.check_configs.values())
                template = app.state.templates.get_template("overview.html")
                viewer = Principal("bench", Role.VIEWER, "token", None)
                gathered = views.sort_rows(await views.check_rows(runtime.services, configs, NOW))
                summary = await views.summary(runtime.services, NOW)

                async def render_only() -> None:
                    template.render(
                        rows=gathered,
                        summary=summary,
                        user=viewer,
                        can_act=False,
                        csrf="",
                        path="/dashboard",
                        notice=None,
                        now=NOW,
                        state=None,
                        q="",
                        states=views.STATES,
                    )

                results = [
                    ("GET /dashboard (whole request)", await timed(full, args.repeat)),
                    ("GET /dashboard, gzip-compressed", await timed(compressed, args.repeat)),
                    (
                        "rows: states + 24 h rollups",
                        await timed(
                            lambda: views.check_rows(runtime.services, configs, NOW), args.repeat
                        ),
                    ),
                    (
                        "summary: counts + open alerts",
                        await timed(lambda: views.summary(runtime.services, NOW), args.repeat),
                    ),
                    ("template render only", await timed(render_only, args.repeat)),
                    (
                        "one live update (row + summary)",
                        await timed(
                            lambda: live.render_changes(
                                app.state.templates, runtime.services, {check_key(names[3])}
                            ),
                            args.repeat,
                        ),
                    ),
                ]
        finally:
            await runtime.stop()

    print()
    print(f"| {args.checks} checks, SQLite | min ms | median ms | max ms |")
    print("|---|---:|---:|---:|")
    for label, samples in results:
        low, mid, high = min(samples), statistics.median(samples), max(samples)
        print(f"| {label} | {low:.1f} | {mid:.1f} | {high:.1f} |")
    median = statistics.median(results[0][1])
    verdict = "met" if median < 200 else "MISSED"
    print(f"\ntarget: {args.checks} checks < 200 ms server-side: median {median:.0f} ms, {verdict}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--interval", type=int, default=60, help="seconds between results")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per measurement")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args(None)))
