"""Benchmark of the scheduler + HTTP check hot path, through the full result pipeline.

For each requested check count N this builds a real `watchkeeper.app.Runtime` from a Config
holding N `http` checks (same interval, all pointed at ONE local target), with storage on a
temporary SQLite file and no notification channels, starts it, lets it run for `--duration`
seconds, stops it, and reports:

* checks/s achieved (scheduler runs) versus scheduled (N / interval);
* scheduling lag p50/p99/max: raw values collected by replacing the runtime's
  `scheduler_lag.observe` (steady state = after the warm-up, by default one interval; plus
  totals over the whole run);
* event-loop stalls (how late a 10 ms sleep wakes up), a direct view of loop saturation, and
  garbage-collector pauses (a `gc.callbacks` hook), the usual cause of the long ones;
* time spent in `ResultPipeline.handle` per result, and the number and duration of alert
  transactions (hard state changes, e.g. every check's first UNKNOWN -> UP on a fresh database);
* results recorded versus persisted by the batched ResultWriter (what is missing after
  `Runtime.stop` was lost), and the writer's largest backlog;
* CPU % (getrusage user+sys over wall time; 100 % = one core) and peak RSS (ru_maxrss) of the
  benchmark process, plus the CPU % of the target process;
* a per-interval timeline, to see the start-up transient and whether the run settles.

Each N runs in its own freshly spawned process, so its peak RSS and CPU figures are its own.
The HTTP target (aiohttp.web answering 200 "ok") is another process, so its CPU does not count
against the scheduler's, but on a small machine both share the same cores: the output says so.

By default the database is new, so the first result of every check is a hard state change
(UNKNOWN -> UP) and goes through an alert transaction: a "first start" of N checks. With
`--seed-states` every check's state is stored as UP beforehand, as after a restart of a
deployment that has been running, so only the steady-state hot path is measured.
`--gc-freeze` calls `gc.collect()` and `gc.freeze()` once more right after start (an early
experiment, since adopted by `Runtime.start`; the per-check metrics no longer create objects
per check, so there is nothing left to create up front).

Run from the project root:

    .venv/bin/python bench/scheduler.py --checks 5000 --duration 60
    .venv/bin/python bench/scheduler.py                    # N = 1000 then 5000, 60 s each
    .venv/bin/python bench/scheduler.py --checks 5000 --seed-states --gc-freeze
    .venv/bin/python bench/scheduler.py --checks 1000 --duration 20 --json
    .venv/bin/python bench/scheduler.py --checks 5000 --duration 30 --profile

`--profile` runs the pipeline under cProfile during the steady-state window (from the end of
the warm-up to the end of the run; `--profile-all` also covers start-up and warm-up) and
prints the top functions by cumulative and by own time. cProfile only sees the event-loop
thread (not aiosqlite's worker threads) and slows the loop down, so the figures of a profiled
run are pessimistic: use unprofiled runs for the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import logging
import multiprocessing as mp
import os
import platform
import pstats
import resource
import shutil
import site
import socket
import sqlite3
import sys
import sysconfig
import tempfile
import time
from array import array
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from unittest import mock

import psutil
from aiohttp import web

import watchkeeper
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.domain import Status
from watchkeeper.store import tables

# The goal this benchmark is judged against.
TARGET_CHECKS = 5000
TARGET_INTERVAL = 5.0
TARGET_LAG_P99 = 1.0
TARGET_RSS_MB = 300.0

STALL_PROBE_PERIOD = 0.01
SAMPLE_PERIOD = 1.0

P = ParamSpec("P")
T = TypeVar("T")
Figures = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Options and helpers


@dataclass(frozen=True, slots=True)
class RunOptions:
    checks: int
    interval: float
    duration: float
    warmup: float
    max_concurrency: int
    check_timeout: float | None
    seed_states: bool
    gc_freeze: bool
    profile: bool
    profile_all: bool
    profile_out: str | None
    profile_top: int
    target_port: int
    target_pid: int


def raise_nofile_limit() -> int:
    """Lift the soft open-files limit to the hard one; thousands of sockets may be open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return soft
    return hard


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 for an empty one)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(q / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


class TimedSeries:
    """(monotonic time, value) pairs in compact arrays."""

    def __init__(self) -> None:
        self.times = array("d")
        self.values = array("d")

    def add(self, value: float) -> None:
        self.times.append(time.monotonic())
        self.values.append(value)

    def between(self, start: float, end: float) -> list[float]:
        """Sorted values recorded in [start, end)."""
        return sorted(v for t, v in zip(self.times, self.values, strict=True) if start <= t < end)

    def summary_ms(self, start: float, end: float) -> dict[str, float]:
        values = self.between(start, end)
        return {
            "count": len(values),
            "p50_ms": percentile(values, 50) * 1000,
            "p99_ms": percentile(values, 99) * 1000,
            "max_ms": (values[-1] if values else 0.0) * 1000,
        }


def timed(fn: Callable[P, Awaitable[T]], series: TimedSeries) -> Callable[P, Awaitable[T]]:
    """Wrap a coroutine function so that each call's duration is added to `series`."""

    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        started = time.monotonic()
        try:
            return await fn(*args, **kwargs)
        finally:
            series.add(time.monotonic() - started)

    return wrapper


class GcPauses:
    """A `gc.callbacks` hook timing every collection, and full (generation 2) ones apart."""

    def __init__(self) -> None:
        self.all = TimedSeries()
        self.full = TimedSeries()
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.monotonic()
            return
        pause = time.monotonic() - self._started
        self.all.add(pause)
        if info["generation"] == 2:
            self.full.add(pause)


class ErrorCounter(logging.Handler):
    """Counts WARNING+ records (they are also printed by the stderr handler)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


# --------------------------------------------------------------------------------------------
# The HTTP target (its own process)


def serve_target(conn: Connection) -> None:
    """Answer `GET /` with 200 "ok" on 127.0.0.1, on a free port sent back through `conn`."""
    raise_nofile_limit()

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", ok)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(runner, sock, backlog=4096)
        await site.start()
        conn.send(sock.getsockname()[1])
        conn.close()
        await asyncio.Event().wait()  # until terminated

    asyncio.run(main())


class Target:
    """The target server process, started and stopped by the orchestrating process."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=serve_target, args=(child,), name="bench-target")
        self._process.start()
        child.close()
        if not parent.poll(30):
            self.stop()
            raise RuntimeError("the target server did not start within 30 s")
        self.port: int = parent.recv()
        parent.close()

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    def stop(self) -> None:
        self._process.terminate()
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


# --------------------------------------------------------------------------------------------
# One benchmark run (in its own process)


def build_config(opts: RunOptions, db_path: Path) -> Config:
    url = f"http://127.0.0.1:{opts.target_port}/"
    check: dict[str, Any] = {"type": "http", "url": url, "interval": opts.interval}
    if opts.check_timeout is not None:
        check["timeout"] = opts.check_timeout
    return Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{db_path}"},
            "scheduler": {"max_concurrency": opts.max_concurrency},
            "checks": [{**check, "name": f"http-{i:05d}"} for i in range(opts.checks)],
        }
    )


async def seed_states(runtime: Runtime) -> None:
    """Store every check as UP, as a deployment restarting after running a while would be."""
    await runtime.db.migrate()
    now = datetime.now(UTC)
    rows = [CheckState(name, Status.UP, now).as_row() for name in runtime.check_configs]
    async with runtime.db.begin() as conn:
        await conn.execute(tables.check_states.insert(), rows)


async def stall_probe(series: TimedSeries) -> None:
    """Record how late each short sleep wakes up: the time the loop was busy elsewhere."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(STALL_PROBE_PERIOD)
        series.add(max(0.0, loop.time() - before - STALL_PROBE_PERIOD))


async def backlog_sampler(runtime: Runtime, series: TimedSeries) -> None:
    """Sample how many results wait in the ResultWriter's buffer."""
    while True:
        await asyncio.sleep(SAMPLE_PERIOD)
        series.add(len(runtime.writer._buffer))


def db_figures(db_path: Path) -> Figures:
    size = sum(p.stat().st_size for p in db_path.parent.glob(db_path.name + "*"))
    conn = sqlite3.connect(db_path)
    try:
        by_status = dict(
            conn.execute("SELECT status, count(*) FROM check_results GROUP BY status").fetchall()
        )
        alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    finally:
        conn.close()
    return {"db_mb": size / 2**20, "rows_by_status": by_status, "alerts_opened": alerts}


def _path_prefixes() -> list[str]:
    roots = [
        *site.getsitepackages(),
        sysconfig.get_paths()["stdlib"],
        str(Path(watchkeeper.__file__).resolve().parents[1]),  # src/
        str(Path(__file__).resolve().parents[1]),  # the project root, for bench/
    ]
    return sorted({os.path.join(root, "") for root in roots}, key=len, reverse=True)


def profile_text(profiler: cProfile.Profile, top: int) -> str:
    """Top functions by cumulative and own time, and own time per package."""
    prefixes = _path_prefixes()

    def short(func: tuple[str, int, str]) -> tuple[str, int, str]:
        # Like pstats' strip_dirs, but keeps package paths, so that aiohttp/client.py and
        # watchkeeper/scheduler.py stay apart from each other (and from bench/scheduler.py).
        filename, line, name = func
        for prefix in prefixes:
            if filename.startswith(prefix):
                return filename[len(prefix) :], line, name
        return func

    out = io.StringIO()
    with mock.patch.object(pstats, "func_strip_path", short):
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
    for key in ("cumulative", "tottime"):
        out.write(f"\n--- top {top} by {key} ---\n")
        stats.sort_stats(key).print_stats(top)
    per_package: dict[str, float] = {}
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, own, _cum, _callers) in raw.items():
        package = "(built-in)" if filename == "~" else filename.split("/")[0].removesuffix(".py")
        per_package[package] = per_package.get(package, 0.0) + own
    total = sum(per_package.values()) or 1.0
    out.write("\n--- own time per package ---\n")
    for package, own in sorted(per_package.items(), key=lambda item: -item[1])[:15]:
        out.write(f"{own:9.3f} s {100 * own / total:5.1f} %  {package}\n")
    return out.getvalue()


@dataclass(slots=True)
class Series:
    lags: TimedSeries
    stalls: TimedSeries
    handle: TimedSeries
    alert_tx: TimedSeries
    backlog: TimedSeries
    gc: GcPauses


def timeline(series: Series, t0: float, t_end: float, window: float) -> list[Figures]:
    rows = []
    start = t0
    while start < t_end:
        end = start + window
        if t_end - end < 0.1 * window:  # fold a sliver at the end into the last window
            end = t_end
        lags = series.lags.summary_ms(start, end)
        rows.append(
            {
                "from_s": start - t0,
                "to_s": end - t0,
                "runs_per_s": lags["count"] / (end - start),
                "lag_p50_ms": lags["p50_ms"],
                "lag_p99_ms": lags["p99_ms"],
                "lag_max_ms": lags["max_ms"],
                "stall_max_ms": series.stalls.summary_ms(start, end)["max_ms"],
                "gc_full_max_ms": series.gc.full.summary_ms(start, end)["max_ms"],
                "handle_p99_ms": series.handle.summary_ms(start, end)["p99_ms"],
                "alert_tx": len(series.alert_tx.between(start, end)),
                "backlog_max": max(series.backlog.between(start, end), default=0.0),
            }
        )
        start = end
    return rows


async def bench(opts: RunOptions) -> Figures:
    tmp = Path(tempfile.mkdtemp(prefix="watchkeeper-bench-"))
    db_path = tmp / "bench.db"
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    target = psutil.Process(opts.target_pid)
    series = Series(
        lags=TimedSeries(),
        stalls=TimedSeries(),
        handle=TimedSeries(),
        alert_tx=TimedSeries(),
        backlog=TimedSeries(),
        gc=GcPauses(),
    )
    gc.callbacks.append(series.gc)
    try:
        setup_started = time.monotonic()
        config = build_config(opts, db_path)
        config_seconds = time.monotonic() - setup_started
        runtime = Runtime(config)
        if opts.seed_states:
            await seed_states(runtime)
        # Runtime wires the scheduler's on_lag to the lag histogram: capture raw lags too.
        histogram_observe = runtime.metrics.scheduler_lag.observe

        def observe_lag(lag: float) -> None:
            series.lags.add(lag)
            histogram_observe(lag)

        runtime.scheduler._on_lag = observe_lag
        profiler = cProfile.Profile() if opts.profile else None
        if profiler is not None and opts.profile_all:
            profiler.enable()

        start_called = time.monotonic()
        await runtime.start()
        t0 = time.monotonic()
        if opts.gc_freeze:
            # Runtime.start does this too: move everything built so far out of the GC's reach.
            gc.collect()
            gc.freeze()
        scheduler, writer, pipeline = runtime.scheduler, runtime.writer, runtime.pipeline
        # No check task has run yet (nothing awaited since start): time the pipeline stages.
        scheduler._on_result = timed(scheduler._on_result, series.handle)
        alerts = pipeline._alerts
        recorded = 0
        record = writer.record

        def counting_record(*args: Any, **kwargs: Any) -> None:
            nonlocal recorded
            recorded += 1
            record(*args, **kwargs)

        writer.record = counting_record  # type: ignore[method-assign]
        alerts.on_transition = timed(alerts.on_transition, series.alert_tx)  # type: ignore[method-assign, assignment]
        helpers = [
            asyncio.create_task(stall_probe(series.stalls)),
            asyncio.create_task(backlog_sampler(runtime, series.backlog)),
        ]
        usage0 = resource.getrusage(resource.RUSAGE_SELF)

        warmup = min(opts.warmup, opts.duration)
        await asyncio.sleep(max(0.0, t0 + warmup - time.monotonic()))
        t_warm = time.monotonic()
        usage_warm = resource.getrusage(resource.RUSAGE_SELF)
        target_warm = sum(target.cpu_times()[:2])
        runs_warm, flushed_warm = scheduler.runs, writer.flushed
        if profiler is not None and not opts.profile_all:
            profiler.enable()

        await asyncio.sleep(max(0.0, t0 + opts.duration - time.monotonic()))
        t_end = time.monotonic()
        if profiler is not None:
            profiler.disable()
        usage_end = resource.getrusage(resource.RUSAGE_SELF)
        target_end = sum(target.cpu_times()[:2])
        runs_end, flushed_end = scheduler.runs, writer.flushed
        rss_end = psutil.Process().memory_info().rss
        gc_objects = len(gc.get_objects())

        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await runtime.stop()
        stopped = time.monotonic()
        usage_stop = resource.getrusage(resource.RUSAGE_SELF)

        steady = t_end - t_warm

        def per_steady_second(amount: float) -> float:
            return amount / steady if steady > 0 else 0.0

        figures: Figures = {
            "checks": opts.checks,
            "interval_s": opts.interval,
            "duration_s": opts.duration,
            "warmup_s": warmup,
            "max_concurrency": opts.max_concurrency,
            "seeded_states": opts.seed_states,
            "scheduled_per_s": opts.checks / opts.interval,
            "achieved_per_s_steady": per_steady_second(runs_end - runs_warm),
            "achieved_per_s_total": runs_end / (t_end - t0),
            "runs_total": runs_end,
            "lag_steady": series.lags.summary_ms(t_warm, t_end),
            "lag_total": series.lags.summary_ms(t0, t_end),
            "loop_stall_steady": series.stalls.summary_ms(t_warm, t_end),
            "handle_steady": series.handle.summary_ms(t_warm, t_end),
            "gc_full_steady": series.gc.full.summary_ms(t_warm, t_end),
            "gc_tracked_objects": gc_objects,
            "gc_frozen": opts.gc_freeze,
            "gc_time_pct_steady": 100
            * per_steady_second(sum(series.gc.all.between(t_warm, t_end))),
            "alert_tx_total": series.alert_tx.summary_ms(t0, t_end),
            "recorded_total": recorded,
            "persisted_total": writer.flushed,
            "lost_at_stop": recorded - writer.flushed,
            "persisted_per_s_steady": per_steady_second(flushed_end - flushed_warm),
            "writer_backlog_max": int(max(series.backlog.values, default=0.0)),
            "cpu_pct_steady": 100
            * per_steady_second(cpu_seconds(usage_end) - cpu_seconds(usage_warm)),
            "cpu_pct_total": 100 * (cpu_seconds(usage_stop) - cpu_seconds(usage0)) / (stopped - t0),
            "target_cpu_pct_steady": 100 * per_steady_second(target_end - target_warm),
            # ru_maxrss is in KiB on Linux.
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_end_mb": rss_end / 2**20,
            "config_build_s": config_seconds,
            "start_s": t0 - start_called,
            "stop_s": stopped - t_end,
            "warnings_logged": errors.count,
            "profiled": opts.profile,
            "timeline": timeline(series, t0, t_end, opts.interval),
        }
        figures.update(db_figures(db_path))
        if profiler is not None:
            if opts.profile_out:
                profiler.dump_stats(opts.profile_out)
            figures["profile"] = profile_text(profiler, opts.profile_top)
        return figures
    finally:
        gc.callbacks.remove(series.gc)
        logging.getLogger().removeHandler(errors)
        shutil.rmtree(tmp, ignore_errors=True)


def bench_worker(opts: RunOptions, conn: Connection) -> None:
    """Entry point of the spawned process running one benchmark."""
    raise_nofile_limit()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        conn.send(asyncio.run(bench(opts)))
    except BaseException as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        conn.close()


def run_isolated(opts: RunOptions) -> Figures:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=bench_worker, args=(opts, child), name=f"bench-{opts.checks}")
    process.start()
    child.close()
    try:
        result: Figures = parent.recv()
    except EOFError:
        result = {"error": f"benchmark process died (exit code {process.exitcode})"}
    process.join()
    return result


# --------------------------------------------------------------------------------------------
# Reporting


def environment() -> Figures:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "event_loop": "asyncio (default selector loop)",
        "note": (
            "the target server runs in a separate process but shares the same "
            f"{os.cpu_count()} CPU core(s) with the benchmark process"
        ),
    }


def verdict(fig: Figures) -> str:
    if fig["checks"] != TARGET_CHECKS or fig["interval_s"] != TARGET_INTERVAL:
        return "n/a (goal is 5000 checks @ 5 s)"
    problems = []
    if fig["achieved_per_s_steady"] < 0.99 * fig["scheduled_per_s"]:
        problems.append("throughput")
    if fig["lag_steady"]["p99_ms"] >= TARGET_LAG_P99 * 1000:
        problems.append("lag p99")
    if fig["peak_rss_mb"] >= TARGET_RSS_MB:
        problems.append("RSS")
    return "PASS" if not problems else "FAIL: " + ", ".join(problems)


def _ms3(summary: dict[str, float]) -> str:
    return f"{summary['p50_ms']:.1f} / {summary['p99_ms']:.1f} / {summary['max_ms']:.0f}"


def _not_up(fig: Figures) -> str:
    return str(sum(count for status, count in fig["rows_by_status"].items() if status != "up"))


Render = Callable[[Figures], str]

ROWS: list[tuple[str, Render]] = [
    ("checks @ interval", lambda f: f"{f['checks']} @ {f['interval_s']:g} s"),
    ("duration (warm-up)", lambda f: f"{f['duration_s']:g} s ({f['warmup_s']:g} s)"),
    ("database", lambda f: "states seeded UP" if f["seeded_states"] else "new"),
    ("gc.freeze() after start", lambda f: "yes" if f["gc_frozen"] else "no"),
    ("scheduled checks/s", lambda f: f"{f['scheduled_per_s']:.0f}"),
    ("achieved checks/s, steady", lambda f: f"{f['achieved_per_s_steady']:.1f}"),
    ("achieved checks/s, total", lambda f: f"{f['achieved_per_s_total']:.1f}"),
    ("lag p50 / p99 / max ms, steady", lambda f: _ms3(f["lag_steady"])),
    ("lag p50 / p99 / max ms, total", lambda f: _ms3(f["lag_total"])),
    ("loop stall p50 / p99 / max ms, steady", lambda f: _ms3(f["loop_stall_steady"])),
    ("pipeline.handle p50 / p99 / max ms, steady", lambda f: _ms3(f["handle_steady"])),
    (
        "full GC pauses: count, p50 / p99 / max ms, steady",
        lambda f: f"{f['gc_full_steady']['count']}: {_ms3(f['gc_full_steady'])}",
    ),
    ("time in GC %, steady", lambda f: f"{f['gc_time_pct_steady']:.1f}"),
    (
        "GC-tracked objects at end",
        lambda f: f"{f['gc_tracked_objects']:,}" + (" (+ frozen)" if f["gc_frozen"] else ""),
    ),
    ("alert transactions (count)", lambda f: str(f["alert_tx_total"]["count"])),
    ("alert transaction p50 / p99 / max ms", lambda f: _ms3(f["alert_tx_total"])),
    (
        "results recorded / persisted / lost at stop",
        lambda f: f"{f['recorded_total']} / {f['persisted_total']} / {f['lost_at_stop']}",
    ),
    ("results persisted/s, steady", lambda f: f"{f['persisted_per_s_steady']:.1f}"),
    ("writer backlog max (rows)", lambda f: str(f["writer_backlog_max"])),
    ("results not UP", _not_up),
    ("bench CPU %, steady", lambda f: f"{f['cpu_pct_steady']:.0f}"),
    ("bench CPU %, total", lambda f: f"{f['cpu_pct_total']:.0f}"),
    ("target CPU %, steady", lambda f: f"{f['target_cpu_pct_steady']:.0f}"),
    ("peak RSS MB", lambda f: f"{f['peak_rss_mb']:.0f}"),
    ("RSS at end MB", lambda f: f"{f['rss_end_mb']:.0f}"),
    (
        "config build / start / stop s",
        lambda f: f"{f['config_build_s']:.1f} / {f['start_s']:.1f} / {f['stop_s']:.1f}",
    ),
    ("SQLite size MB", lambda f: f"{f['db_mb']:.1f}"),
    ("warnings logged", lambda f: str(f["warnings_logged"])),
    ("goal (5000 @ 5 s: lag p99 < 1 s, RSS < 300 MB)", verdict),
]


def markdown_table(results: list[Figures]) -> str:
    header = "| figure | " + " | ".join(f"N = {r['checks']}" for r in results) + " |"
    lines = [header, "|---|" + "---:|" * len(results)]
    for label, render in ROWS:
        lines.append(f"| {label} | " + " | ".join(render(r) for r in results) + " |")
    return "\n".join(lines)


def timeline_table(rows: list[Figures]) -> str:
    lines = [
        "| window s | runs/s | lag p50 / p99 / max ms | loop stall max ms | full GC max ms "
        "| handle p99 ms | alert tx | writer backlog max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['from_s']:.0f}-{r['to_s']:.0f} | {r['runs_per_s']:.0f} "
            f"| {r['lag_p50_ms']:.1f} / {r['lag_p99_ms']:.1f} / {r['lag_max_ms']:.0f} "
            f"| {r['stall_max_ms']:.0f} | {r['gc_full_max_ms']:.0f} "
            f"| {r['handle_p99_ms']:.1f} | {r['alert_tx']} "
            f"| {r['backlog_max']:.0f} |"
        )
    return "\n".join(lines)


def print_report(results: list[Figures], env: Figures) -> None:
    print(
        f"watchkeeper scheduler benchmark — Python {env['python']}, {env['event_loop']}, "
        f"{env['cpus']} CPUs ({env['platform']})"
    )
    print(f"Note: {env['note']}; CPU % is user+sys over wall time, 100 % = one core.")
    if any(r.get("profiled") for r in results):
        print("Note: profiled run — cProfile slows the event loop; figures are pessimistic.")
    good = [r for r in results if "error" not in r]
    for r in results:
        if "error" in r:
            print(f"\nN = {r.get('checks', '?')}: ERROR {r['error']}")
    if good:
        print()
        print(markdown_table(good))
    for r in good:
        print(f"\nTimeline, N = {r['checks']} (windows of one interval from start):\n")
        print(timeline_table(r["timeline"]))
    for r in good:
        if "profile" in r:
            print(f"\n=== cProfile, N = {r['checks']} (event-loop thread only) ===")
            print(r["profile"])


# --------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the watchkeeper scheduler + HTTP check pipeline.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--checks", type=int, nargs="+", default=[1000, 5000], help="check counts to run, in turn"
    )
    parser.add_argument("--interval", type=float, default=5.0, help="check interval, seconds")
    parser.add_argument("--duration", type=float, default=60.0, help="run length, seconds")
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds excluded from steady-state figures; None means one interval",
    )
    parser.add_argument("--max-concurrency", type=int, default=500, help="scheduler setting")
    parser.add_argument(
        "--check-timeout",
        type=float,
        default=None,
        help="check timeout, s; None keeps the config default",
    )
    parser.add_argument(
        "--seed-states", action="store_true", help="store every check as UP before starting"
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: gc.collect() + gc.freeze() once more after start",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--profile", action="store_true", help="run under cProfile")
    parser.add_argument(
        "--profile-all", action="store_true", help="profile start-up and warm-up too"
    )
    parser.add_argument("--profile-out", default=None, help="also dump pstats to this file")
    parser.add_argument("--profile-top", type=int, default=25, help="functions to list")
    args = parser.parse_args(argv)
    if args.profile_all or args.profile_out:
        args.profile = True
    if any(n < 1 for n in args.checks) or args.interval <= 0 or args.duration <= 0:
        parser.error("--checks, --interval and --duration must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile_limit()
    env = environment()
    results: list[Figures] = []
    for n in args.checks:
        print(f"running N = {n} for {args.duration:g} s ...", file=sys.stderr, flush=True)
        target = Target()
        try:
            opts = RunOptions(
                checks=n,
                interval=args.interval,
                duration=args.duration,
                warmup=args.interval if args.warmup is None else args.warmup,
                max_concurrency=args.max_concurrency,
                check_timeout=args.check_timeout,
                seed_states=args.seed_states,
                gc_freeze=args.gc_freeze,
                profile=args.profile,
                profile_all=args.profile_all,
                profile_out=args.profile_out,
                profile_top=args.profile_top,
                target_port=target.port,
                target_pid=target.pid,
            )
            result = run_isolated(opts)
            result.setdefault("checks", n)
            results.append(result)
        finally:
            target.stop()
    if args.json:
        print(json.dumps({"environment": env, "runs": results}, indent=2, default=str))
    else:
        print_report(results, env)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
