"""Benchmark: alert -> webhook latency, Watchkeeper next to Prometheus Alertmanager (issue 20).

One alert at a time (each a new alert, so each is a first notification, no grouping wait):
the clock starts just before the alert is posted and stops when the webhook receiver, on
loopback in this process, has read the notification. Targets: p50 < 10 ms, p99 < 25 ms.

* **Watchkeeper** runs as `watchkeeper run` (a subprocess, SQLite, one webhook channel);
  alerts are posted to `POST /api/v2/alerts` when the server has it, else `/api/v1/alerts`.
* **Alertmanager** is Debian's `prometheus-alertmanager`, started by this script on loopback
  with `group_wait: 0s` (group_by alertname, so every alert is a new group) and a webhook
  receiver; alerts go to its `POST /api/v2/alerts`.

The two are measured in the same run, alert by alert in turn, so both see the same machine.

`--breakdown` then times where Watchkeeper's milliseconds go, with a Runtime in this process
(the API in-process through ASGI, the receiver still on loopback): each stage is wrapped here
with `time.perf_counter` stamps (monkeypatched in this script; nothing in the product
measures itself): the API call up to its commit, the wake-up of the dispatcher, its pass, the
hand-off to the outbox, the claim, and the HTTP post to the receiver.

Run from the project root:

    .venv/bin/python bench/alert_latency.py
    .venv/bin/python bench/alert_latency.py --alerts 500 --breakdown
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support: the process helpers of the tests

from tests.support.auth import cli_token  # noqa: E402
from tests.support.process import WatchkeeperProcess  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


class Receiver:
    """Webhook receiver on loopback: `/wk` for Watchkeeper, `/am` for Alertmanager. Each
    arrival resolves the future waiting for that alert name with its perf_counter stamp."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.cpu_at: dict[str, float] = {}
        """Alert name -> `time.thread_time()` at arrival (for the in-process breakdown)."""
        self.port = free_port()
        app = web.Application()
        app.router.add_post("/wk", self._wk)
        app.router.add_post("/am", self._am)
        self.runner = web.AppRunner(app, access_log=None)

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def expect(self, name: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[name] = future
        return future

    def _arrived(self, name: str) -> None:
        at = time.perf_counter()
        self.cpu_at[name] = time.thread_time()
        future = self.waiting.pop(name, None)
        if future is not None and not future.done():
            future.set_result(at)

    async def _wk(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if body.get("event") == "alert.firing":
            self._arrived(body["alert"]["name"])
        return web.Response()

    async def _am(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        for alert in body.get("alerts", []):
            if alert.get("status") == "firing":
                self._arrived(alert["labels"]["alertname"])
        return web.Response()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def summary(values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    return (
        f"p50 {pct(ms, 50):6.2f}  p90 {pct(ms, 90):6.2f}  p99 {pct(ms, 99):6.2f}  "
        f"max {max(ms):7.2f}  mean {statistics.fmean(ms):6.2f} ms  (n={len(ms)})"
    )


# -- Watchkeeper as a subprocess ------------------------------------------------------------


def wk_config(workdir: Path, hook_url: str) -> Path:
    config = workdir / "watchkeeper.yaml"
    config.write_text(
        f"""
storage:
  url: "sqlite:///{workdir / "wk.db"}"
alerting:
  group_wait: 0s
notifications:
  - name: bench
    type: webhook
    url: {hook_url}
""",
        encoding="utf-8",
    )
    return config


@contextlib.asynccontextmanager
async def watchkeeper(workdir: Path, hook_url: str) -> AsyncIterator[Callable[[str], Any]]:
    """A running Watchkeeper; yields `post(name)` that posts one firing alert."""
    config = wk_config(workdir, hook_url)
    token = await cli_token(config)
    wk = await WatchkeeperProcess(config, workdir, token=token).start(timeout=60)
    session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
    v2 = f"{wk.url}/api/v2/alerts"
    async with session.post(v2, json=[{"labels": {"alertname": "probe"}}]) as response:
        use_v2 = response.status < 300
    url = v2 if use_v2 else f"{wk.url}/api/v1/alerts"
    print(f"watchkeeper: posting to {url}")

    async def post(name: str) -> Any:
        if use_v2:
            body: Any = [{"labels": {"alertname": name, "severity": "critical"}}]
        else:
            body = {"name": name, "severity": "critical", "summary": "bench"}
        async with session.post(url, json=body) as response:
            if response.status >= 300:
                raise RuntimeError(f"{response.status}: {await response.text()}")
            await response.read()

    try:
        yield post
    finally:
        await session.close()
        await wk.stop()


# -- Alertmanager ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def alertmanager(workdir: Path, hook_url: str) -> AsyncIterator[Callable[[str], Any]]:
    config = workdir / "alertmanager.yml"
    config.write_text(
        f"""
route:
  receiver: bench
  group_by: [alertname]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: bench
    webhook_configs:
      - url: {hook_url}
        send_resolved: false
""",
        encoding="utf-8",
    )
    port = free_port()
    log = (workdir / "alertmanager.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        ALERTMANAGER,
        f"--config.file={config}",
        f"--storage.path={workdir / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        stdout=log,
        stderr=log,
    )
    session = aiohttp.ClientSession()
    url = f"http://127.0.0.1:{port}/api/v2/alerts"
    try:
        async with asyncio.timeout(30):
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/-/ready") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.05)

        async def post(name: str) -> Any:
            body = [{"labels": {"alertname": name, "severity": "critical"}}]
            async with session.post(url, json=body) as response:
                if response.status >= 300:
                    raise RuntimeError(f"{response.status}: {await response.text()}")
                await response.read()

        yield post
    finally:
        await session.close()
        proc.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 10)
        log.close()


async def one(receiver: Receiver, post: Callable[[str], Any], name: str) -> tuple[float, float]:
    """Post alert `name`; return (seconds until the webhook arrived, seconds the POST took)."""
    arrival = receiver.expect(name)
    started = time.perf_counter()
    await post(name)
    answered = time.perf_counter()
    async with asyncio.timeout(10):
        arrived = await arrival
    return arrived - started, answered - started


async def side_by_side(opts: argparse.Namespace, workdir: Path) -> None:
    receiver = Receiver()
    await receiver.start()
    have_am = Path(ALERTMANAGER).exists()
    if not have_am:
        print(f"{ALERTMANAGER} not found: Watchkeeper alone")
    async with contextlib.AsyncExitStack() as stack:
        posts: dict[str, Callable[[str], Any]] = {
            "watchkeeper": await stack.enter_async_context(
                watchkeeper(workdir / "wk", receiver.url("/wk"))
            )
        }
        if have_am:
            posts["alertmanager"] = await stack.enter_async_context(
                alertmanager(workdir / "am", receiver.url("/am"))
            )
        latencies: dict[str, list[float]] = {k: [] for k in posts}
        answers: dict[str, list[float]] = {k: [] for k in posts}
        for i in range(opts.warmup + opts.alerts):
            for what, post in posts.items():
                latency, answer = await one(receiver, post, f"{what[:2]}-{i:05d}")
                if i >= opts.warmup:
                    latencies[what].append(latency)
                    answers[what].append(answer)
            if opts.gap:
                await asyncio.sleep(opts.gap)
    print(f"\nalert -> webhook, {opts.alerts} alerts one at a time (after {opts.warmup} warm-up)")
    for what in posts:
        print(f"  {what:13} {summary(latencies[what])}")
        print(f"  {'  POST answer':13} {summary(answers[what])}")


# -- where the milliseconds go (in-process) --------------------------------------------------

STAGES = (
    ("api", "POST received", "ingest committed"),
    ("wake", "ingest committed", "dispatcher pass starts"),
    ("dispatch", "dispatcher pass starts", "outbox woken"),
    ("hand-off", "outbox woken", "claim starts"),
    ("claim", "claim starts", "send starts"),
    ("http post", "send starts", "receiver has it"),
)


async def breakdown(opts: argparse.Namespace, workdir: Path) -> None:
    import httpx

    from tests.support.auth import bearer, token_for
    from watchkeeper.alerting.dispatcher import Dispatcher
    from watchkeeper.app import Runtime
    from watchkeeper.config.loader import Config
    from watchkeeper.http.factory import create_app
    from watchkeeper.http.roles import Role
    from watchkeeper.notify.channels.webhook import WebhookChannel
    from watchkeeper.notify.outbox import OutboxWorker
    from watchkeeper.services.alerts import AlertService

    events: list[tuple[str, float, float]] = []
    """(stage, perf_counter, thread_time of the event loop's thread)"""

    def first(name: str) -> None:
        events.append((name, time.perf_counter(), time.thread_time()))

    def chain() -> dict[str, tuple[float, float]]:
        """Each stage's stamps: its first event after the stamp of the stage before it."""
        found: dict[str, tuple[float, float]] = {}
        after = 0.0
        for _, start, end in STAGES:
            if start not in found:
                found[start] = next((t, c) for n, t, c in events if n == start and t >= after)
            after = found[start][0]
            found[end] = next(
                ((t, c) for n, t, c in events if n == end and t >= after), (math.nan, math.nan)
            )
            after = found[end][0]
        return found

    def wrap(owner: Any, attr: str, before: str | None, after: str | None) -> None:
        original = getattr(owner, attr)
        if asyncio.iscoroutinefunction(original):

            @functools.wraps(original)
            async def timed(*args: Any, **kwargs: Any) -> Any:
                if before:
                    first(before)
                result = await original(*args, **kwargs)
                if after:
                    first(after)
                return result

        else:

            @functools.wraps(original)
            def timed(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                if before:
                    first(before)
                result = original(*args, **kwargs)
                if after:
                    first(after)
                return result

        setattr(owner, attr, timed)

    wrap(AlertService, "ingest", None, "ingest committed")
    wrap(AlertService, "post_alertmanager", None, "ingest committed")
    wrap(Dispatcher, "dispatch_once", "dispatcher pass starts", None)
    wrap(OutboxWorker, "wake", "outbox woken", None)
    wrap(OutboxWorker, "_start_due", "claim starts", None)
    if hasattr(OutboxWorker, "hand_off"):  # a first page handed over: no claim (0 ms)
        wrap(OutboxWorker, "hand_off", "claim starts", None)
        wrap(OutboxWorker, "hand_off", "outbox woken", None)
    wrap(WebhookChannel, "send", "send starts", None)

    receiver = Receiver()
    await receiver.start()
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{workdir / 'inproc.db'}"},
            "alerting": {"group_wait": "0s"},
            "notifications": [{"name": "bench", "type": "webhook", "url": receiver.url("/wk")}],
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    from sqlalchemy import event

    statements: list[tuple[float, str]] = []

    def counted(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append((time.perf_counter(), statement))

    event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", counted)
    loop_engine = getattr(runtime.db, "loop_engine", lambda: None)()
    if loop_engine is not None:  # statements on the loop's own connection count too
        event.listen(loop_engine, "before_cursor_execute", counted)
    queries: dict[str, list[int]] = {name: [] for name, _, _ in STAGES}
    rows: dict[str, list[float]] = {name: [] for name, _, _ in STAGES}
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in STAGES}
    totals: list[float] = []
    cpu_totals: list[float] = []
    try:
        app = create_app(config, runtime=runtime)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://wk",
            headers=bearer(await token_for(runtime, Role.OPERATOR)),
        ) as client:
            for i in range(opts.warmup + opts.alerts):
                name = f"in-{i:05d}"
                arrival = receiver.expect(name)
                events.clear()
                statements.clear()
                first("POST received")
                if opts.v1:
                    path, body = "/api/v1/alerts", {"name": name, "severity": "critical"}
                else:  # as the side-by-side run posts
                    path = "/api/v2/alerts"
                    body = [{"labels": {"alertname": name, "severity": "critical"}}]
                response = await client.post(path, json=body)
                response.raise_for_status()
                async with asyncio.timeout(10):
                    events.append(("receiver has it", await arrival, receiver.cpu_at[name]))
                if i < opts.warmup:
                    continue
                stamps = chain()
                totals.append(stamps["receiver has it"][0] - stamps["POST received"][0])
                cpu_totals.append(stamps["receiver has it"][1] - stamps["POST received"][1])
                for stage, start, end in STAGES:
                    (t0, c0), (t1, c1) = stamps[start], stamps[end]
                    rows[stage].append(t1 - t0)
                    cpu[stage].append(c1 - c0)
                    queries[stage].append(sum(t0 <= t < t1 for t, _ in statements))
                if opts.show_sql and i == opts.warmup:
                    t0 = stamps["POST received"][0]
                    for t, statement in statements:
                        print(f"{(t - t0) * 1000:8.2f} ms  {' '.join(statement.split())[:150]}")
    finally:
        await runtime.stop()
        await receiver.runner.cleanup()
    print(
        f"\nwhere the milliseconds go (in-process, {opts.alerts} alerts): wall-clock p50/p99, "
        "the event loop thread's CPU p50 (what is left of the stage on an idle machine, SQLite's"
        " own thread aside), SQL statements"
    )
    for stage, start, end in STAGES:
        ms = [v * 1000 for v in rows[stage]]
        cpu_ms = [v * 1000 for v in cpu[stage]]
        print(
            f"  {stage:10} {start + ' -> ' + end:48} "
            f"p50 {pct(ms, 50):6.2f}  p99 {pct(ms, 99):6.2f}  cpu {pct(cpu_ms, 50):5.2f} ms  "
            f"SQL {statistics.median(queries[stage]):g}"
        )
    print(f"  {'total':10} {'':48} {summary(totals)}")
    print(f"  {'total cpu':10} {'':48} {summary(cpu_totals)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.0, help="seconds between alerts")
    parser.add_argument("--breakdown", action="store_true", help="also time the stages")
    parser.add_argument(
        "--only-breakdown", action="store_true", help="the stages only (no subprocesses)"
    )
    parser.add_argument("--show-sql", action="store_true", help="one alert's statements")
    parser.add_argument(
        "--v1", action="store_true", help="breakdown: post to /api/v1/alerts (else /api/v2)"
    )
    opts = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="wk-latency-"))
    try:
        (workdir / "wk").mkdir()
        (workdir / "am").mkdir()
        if not opts.only_breakdown:
            await side_by_side(opts, workdir)
        if opts.breakdown or opts.only_breakdown:
            await breakdown(opts, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
