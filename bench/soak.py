"""Soak test: `watchkeeper run` for a long time while things break on purpose.

Watchkeeper runs as a subprocess (as systemd runs it) with a realistic config: `http` checks
with `failure_threshold`, one signed `webhook` channel, delivery retries with backoff. Around
it, all seeded by `--seed` so a failing run replays the same story:

* targets: one aiohttp process serving N paths (`/t/000` ...) whose health flips on a
  schedule: down and up holds are each at least 3x the detection time (`failure_threshold` x
  `interval`), so what should alert is unambiguous;
* the webhook receiver (in this process) is down 10 % of the time, either refusing
  connections or answering 503; it counts every Idempotency-Key it accepts and never dedups;
* random SIGTERM restarts and one SIGKILL (each restarted at once, as `Restart=always` does);
* a second SQLite writer (another process) that repeatedly takes the write lock on the same
  database file (BEGIN IMMEDIATE, sleep, COMMIT).

At the end every target is up and the receiver accepts; once every alert is resolved and the
outbox is empty the service is stopped and the receiver's log is compared with the schedule:

* transitions expected: down periods the service was running long enough to detect (and the
  up periods after them); a period cut short by a restart is "ambiguous" and may or may not
  alert;
* lost: an expected down period no delivered alert covers, or an alert whose firing or
  resolved notification was never delivered (or that stayed open through an expected up);
* false: an alert that opened while its target was up, resolved while it was down, or a second
  alert for the same down period;
* duplicates: an Idempotency-Key accepted twice, apart from the documented at-least-once case
  (accepted just before the SIGKILL, before the service recorded it, and sent again after the
  restart: reported on its own line);
* detection latency (flip to the alert's `started_at`) and notification latency (flip to the
  accepted delivery), p50/p99, for flips that happened while the service was running;
* RSS and open file descriptors of the service (psutil): the first process at start, the last
  one at start, after warm-up and at the end.

Exit status 1 when lost, false or duplicates is above 0, a SIGTERM stop did not exit 0, or
the end did not settle.

Run from the project root:

    .venv/bin/python bench/soak.py                     # 60 min, 200 targets
    .venv/bin/python bench/soak.py --minutes 10 --seed 7
    .venv/bin/python bench/soak.py --smoke             # about 2 min, 30 targets (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support: the receiver and process helpers of the tests

from tests.support.auth import cli_token  # noqa: E402
from tests.support.process import WatchkeeperProcess  # noqa: E402
from tests.support.servers import WebhookReceiver, free_port  # noqa: E402


@dataclass(frozen=True)
class Profile:
    """Every timing of one run; `smoke` scales them down for CI on a busy 2-core machine."""

    targets: int
    interval: float
    timeout: float
    failure_threshold: int
    success_threshold: int
    down_hold: tuple[float, float]
    up_hold: tuple[float, float]
    flip_window: float
    """Seconds during which targets flip; afterwards everything is up."""
    receiver_outage: tuple[float, float]
    backoff_max: float
    sigterms: int
    restarts_within: tuple[float, float]
    """Restarts happen in this share of the flip window, so the last process lives long."""
    lock_hold: tuple[float, float]
    lock_every: tuple[float, float]
    slack: float
    """Extra seconds allowed for a busy machine on top of nominal detection times."""
    drain: float
    """How long the end may take to settle (every alert resolved, the outbox empty)."""

    @property
    def detection(self) -> float:
        return self.failure_threshold * self.interval

    @property
    def seen_down(self) -> float:
        """Running this long inside a down period, the service must detect it (first run
        after a start within one interval, then `failure_threshold` failures)."""
        return self.interval + self.detection + self.slack

    @property
    def seen_up(self) -> float:
        return self.interval + self.success_threshold * self.interval + self.slack

    @property
    def tolerance(self) -> float:
        """How long after a flip a result of the old state may still be handled."""
        return self.timeout + self.slack


def profile(opts: Namespace) -> Profile:
    if opts.smoke:
        return Profile(
            targets=opts.targets or 30,
            interval=1,
            timeout=2,
            failure_threshold=2,
            success_threshold=1,
            down_hold=(8, 14),
            up_hold=(8, 20),
            flip_window=70,
            receiver_outage=(2, 5),
            backoff_max=3,
            sigterms=1,
            restarts_within=(0.2, 0.7),
            lock_hold=(0.2, 1.0),
            lock_every=(2, 6),
            slack=3,
            drain=60,
        )
    minutes = opts.minutes
    return Profile(
        targets=opts.targets or 200,
        interval=5,
        timeout=3,
        failure_threshold=2,
        success_threshold=1,
        down_hold=(30, 120),
        up_hold=(40, 300),
        flip_window=max(120.0, minutes * 60 - 60),
        receiver_outage=(5, 30),
        backoff_max=30,
        sigterms=max(1, round(minutes / 12)),
        restarts_within=(0.1, 0.5),
        lock_hold=(0.5, 2.0),
        lock_every=(5, 20),
        slack=5,
        drain=180,
    )


class Namespace(argparse.Namespace):
    minutes: float
    targets: int | None
    seed: int
    smoke: bool
    keep: bool
    serve_targets: str | None
    hold_locks: str | None


# --- the schedule: ground truth shared by this process and the targets' process -------------


def schedule(seed: int, index: int, prof: Profile) -> list[tuple[float, float]]:
    """Down periods of target `index`, as (start, end) seconds after T0; up otherwise."""
    rng = random.Random(f"{seed}:target:{index}")
    downs: list[tuple[float, float]] = []
    t = rng.uniform(0, prof.up_hold[1])  # staggered first flips
    while True:
        length = rng.uniform(*prof.down_hold)
        # A down period ends before the window closes, followed by a full up hold.
        if t + length + prof.up_hold[0] > prof.flip_window:
            return downs
        downs.append((t, t + length))
        t += length + rng.uniform(*prof.up_hold)


def is_down(downs: list[tuple[float, float]], t: float) -> bool:
    return any(a <= t < b for a, b in downs)


def target_name(index: int) -> str:
    return f"t{index:03d}"


def serve_targets(opts: Namespace, prof: Profile) -> None:
    """The targets' process: every path answers by the schedule once T0 is posted."""
    assert opts.serve_targets is not None
    port_file = Path(opts.serve_targets)
    downs = [schedule(opts.seed, i, prof) for i in range(prof.targets)]
    t0: list[float] = []

    async def health(request: web.Request) -> web.Response:
        index = int(request.match_info["index"])
        if t0 and is_down(downs[index], time.time() - t0[0]):
            return web.Response(status=503, text="down")
        return web.Response(text="ok")

    async def start(request: web.Request) -> web.Response:
        t0.append(float((await request.json())["t0"]))
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/t/{index}", health)
        app.router.add_post("/start", start)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        port_file.write_text(str(port))
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def hold_locks(opts: Namespace, prof: Profile) -> None:
    """The second writer: takes the database's write lock again and again until SIGTERM."""
    assert opts.hold_locks is not None
    rng = random.Random(f"{opts.seed}:locks")
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    conn = sqlite3.connect(opts.hold_locks, timeout=60, isolation_level=None)
    held = 0.0
    holds = 0
    while not stop:
        time.sleep(rng.uniform(*prof.lock_every))
        if stop:
            break
        conn.execute("BEGIN IMMEDIATE")
        length = rng.uniform(*prof.lock_hold)
        time.sleep(length)
        conn.execute("COMMIT")
        held += length
        holds += 1
    conn.close()
    print(json.dumps({"holds": holds, "held": round(held, 1)}), flush=True)


# --- the receiver ----------------------------------------------------------------------------


@dataclass
class SoakReceiver(WebhookReceiver):
    """The tests' receiver, plus an arrival log and a "refusing" mode (connections dropped)."""

    refusing: bool = False
    log: list[tuple[float, str | None, int]] = field(default_factory=list)
    """(arrival time, Idempotency-Key, answer; 0 = connection dropped)."""

    async def _hook(self, request: web.Request) -> web.Response:
        arrived = time.time()
        if self.refusing:
            # The listening socket is closed, but a kept-alive connection may still bring a
            # request: drop it as a dead host would.
            self.log.append((arrived, request.headers.get("Idempotency-Key"), 0))
            assert request.transport is not None
            request.transport.close()
            raise web.HTTPServiceUnavailable()
        response = await super()._hook(request)
        self.log.append((arrived, request.headers.get("Idempotency-Key"), response.status))
        return response

    async def refuse(self) -> None:
        self.refusing = True
        for site in list(self.runner.sites):
            await site.stop()

    async def accept(self) -> None:
        self.refusing = False
        self.reply_status = 200
        if not self.runner.sites:
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()


async def receiver_outages(
    receiver: SoakReceiver, prof: Profile, seed: int, t0: float, outages: list[list[Any]]
) -> None:
    """Down about 10 % of the flip window: each outage followed by about 9x its length up."""
    rng = random.Random(f"{seed}:receiver")
    t = rng.uniform(0, 9 * sum(prof.receiver_outage) / 2)
    while t < prof.flip_window:
        length = rng.uniform(*prof.receiver_outage)
        mode = rng.choice(["refused", "503"])
        await asyncio.sleep(max(0.0, t0 + t - time.time()))
        if mode == "refused":
            await receiver.refuse()
        else:
            receiver.reply_status = 503
        outages.append([mode, length])
        await asyncio.sleep(length)
        await receiver.accept()
        t += length + length * rng.uniform(6, 12)


# --- the service -----------------------------------------------------------------------------


def write_config(workdir: Path, prof: Profile, target_port: int, hook_url: str) -> Path:
    checks = "".join(
        f"  - name: {target_name(i)}\n"
        f"    type: http\n"
        f"    url: http://127.0.0.1:{target_port}/t/{i}\n"
        for i in range(prof.targets)
    )
    config = workdir / "watchkeeper.yaml"
    config.write_text(
        f"""\
storage:
  url: "sqlite:///{workdir / "wk.db"}"
defaults:
  interval: {prof.interval:g}s
  timeout: {prof.timeout:g}s
  failure_threshold: {prof.failure_threshold}
  success_threshold: {prof.success_threshold}
delivery:
  timeout: 5s
  backoff_initial: 1s
  backoff_max: {prof.backoff_max:g}s
checks:
{checks}notifications:
  - name: ops
    type: webhook
    url: {hook_url}
    secret: "${{HOOK_SECRET}}"
""",
        encoding="utf-8",
    )
    return config


@dataclass
class Life:
    """One process of the service: when it could be trusted to watch, and its resources."""

    spawned: float
    ready: float
    ended: float = 0.0
    how: str = ""
    exit_code: int | None = None
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    """(time, RSS bytes, open fds)."""


def sample(wk: WatchkeeperProcess, life: Life) -> None:
    assert wk.proc is not None
    try:
        proc = psutil.Process(wk.proc.pid)
        life.samples.append((time.time(), proc.memory_info().rss, proc.num_fds()))
    except psutil.Error:
        pass


async def sampler(holder: list[tuple[WatchkeeperProcess, Life]], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        if holder and not holder[-1][1].ended:  # not while it stops: its files are closing
            sample(*holder[-1])


async def start(config: Path, workdir: Path, token: str, lives: list[Life]) -> WatchkeeperProcess:
    spawned = time.time()
    wk = await WatchkeeperProcess(config, workdir, token=token).start(timeout=120)
    life = Life(spawned=spawned, ready=time.time())
    lives.append(life)
    sample(wk, life)
    return wk


async def stop(wk: WatchkeeperProcess, life: Life, sig: int) -> None:
    life.ended = time.time()
    life.how = "SIGKILL" if sig == signal.SIGKILL else "SIGTERM"
    sample(wk, life)
    life.exit_code = await wk.stop(sig, timeout=60)


async def health_of(wk: WatchkeeperProcess) -> tuple[int, int]:
    """(open alerts, outbox depth) as the service reports them."""
    alerts = await wk.get("/api/v1/alerts?status=open&limit=1")
    health = await wk.get("/health/detailed")
    depth = int(health["checks"]["outbox:depth"][0]["observedValue"])
    return int(alerts["total"]), depth


# --- the comparison --------------------------------------------------------------------------


@dataclass
class AlertSeen:
    id: str
    check: str
    started_at: float
    resolved_at: float | None = None
    fired: float | None = None
    """Arrival of the first accepted alert.firing."""
    resolved: float | None = None


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def overlap_ok(a: float, b: float, windows: list[tuple[float, float]], need: float) -> bool:
    return any(min(b, w1) - max(a, w0) >= need for w0, w1 in windows)


def covers(a: float, b: float, windows: list[tuple[float, float]]) -> bool:
    return any(w0 <= a and b <= w1 for w0, w1 in windows)


def analyse(
    prof: Profile,
    seed: int,
    t0: float,
    receiver: SoakReceiver,
    lives: list[Life],
) -> dict[str, Any]:
    names = {target_name(i): i for i in range(prof.targets)}
    downs = {
        name: [(t0 + a, t0 + b) for a, b in schedule(seed, i, prof)] for name, i in names.items()
    }
    watching = [(life.ready, life.ended) for life in lives]
    tol = prof.tolerance

    alerts: dict[str, AlertSeen] = {}
    others: dict[str, str] = {}
    for arrived, key, status in sorted(receiver.log, key=lambda x: x[0]):
        if key is None or not 200 <= status < 300:
            continue
        delivery = receiver.processed[key]
        alert = delivery.payload["alert"]
        if alert["check"] not in names or alert["rule"] is not None:
            others[alert["id"]] = alert["name"]  # a self-alert or a flap alert
            continue
        seen = alerts.setdefault(
            alert["id"], AlertSeen(alert["id"], alert["check"], ts(alert["started_at"]))
        )
        if delivery.event == "alert.firing" and seen.fired is None:
            seen.fired = arrived
        if delivery.event == "alert.resolved" and seen.resolved is None:
            seen.resolved = arrived
            seen.resolved_at = ts(alert["resolved_at"])
    by_check: dict[str, list[AlertSeen]] = {}
    for seen in alerts.values():
        by_check.setdefault(seen.check, []).append(seen)

    expected_down = expected_up = ambiguous = 0
    lost: list[str] = []
    false: list[str] = []
    detection: list[float] = []
    notification: list[float] = []
    # A result is stamped with its check's start; what it saw is the target at some moment of
    # the run that followed (up to the check's timeout later), so a result stamped shortly
    # before a flip may already report the new state.
    early = prof.timeout
    for name, periods in downs.items():
        mine = sorted(by_check.get(name, []), key=lambda s: s.started_at)
        # The up after the last down period lasts until the end (everything up, drained).
        ups = [
            (b, periods[k + 1][0] if k + 1 < len(periods) else lives[-1].ended)
            for k, (_, b) in enumerate(periods)
        ]
        for a, b in periods:
            covering = [
                s
                for s in mine
                if s.started_at <= b + tol and (s.resolved_at is None or s.resolved_at >= a)
            ]
            if overlap_ok(a, b, watching, prof.seen_down):
                expected_down += 1
                if not covering:
                    lost.append(f"{name}: down {a - t0:.1f}-{b - t0:.1f}s never alerted")
            else:
                ambiguous += 1
            starts_here = [s for s in mine if a - early <= s.started_at <= b + tol]
            for extra in starts_here[1:]:
                false.append(f"{name}: second alert {extra.id} in down {a - t0:.1f}s")
            if starts_here and covers(a - prof.interval, a + prof.seen_down, watching):
                first = starts_here[0]
                detection.append(first.started_at - a)
                if first.fired is not None:
                    notification.append(first.fired - a)
        for a, b in ups:
            if overlap_ok(a, b, watching, prof.seen_up):
                expected_up += 1
                for s in mine:
                    if s.started_at < a and (s.resolved_at is None or s.resolved_at > b + tol):
                        lost.append(f"{name}: alert {s.id} stayed open through up {a - t0:.1f}s")
        for s in mine:
            if not any(a - early <= s.started_at <= b + tol for a, b in periods):
                false.append(f"{name}: alert {s.id} opened at {s.started_at - t0:.1f}s, target up")
            if s.resolved_at is not None and any(
                a + tol < s.resolved_at < b - early for a, b in periods
            ):
                false.append(
                    f"{name}: alert {s.id} resolved at {s.resolved_at - t0:.1f}s, target down"
                )
            if s.fired is None:
                lost.append(f"{name}: alert {s.id} firing never delivered")
            if s.resolved is None:
                lost.append(f"{name}: alert {s.id} resolution never delivered")

    kills = [life.ended for life in lives if life.how == "SIGKILL"]
    duplicates: list[str] = []
    at_least_once: list[str] = []
    for key, n in receiver.accepted_per_key.items():
        if n < 2:
            continue
        times = sorted(t for t, k, status in receiver.log if k == key and 200 <= status < 300)
        if n == 2 and any(times[0] <= kill <= times[1] for kill in kills):
            at_least_once.append(key)
        else:
            duplicates.append(f"{key} accepted {n} times")
    return {
        "expected_down": expected_down,
        "expected_up": expected_up,
        "ambiguous": ambiguous,
        "fired": sum(s.fired is not None for s in alerts.values()),
        "resolved": sum(s.resolved is not None for s in alerts.values()),
        "other_alerts": sorted(set(others.values())),
        "lost": lost,
        "false": false,
        "duplicates": duplicates,
        "at_least_once": at_least_once,
        "detection": detection,
        "notification": notification,
    }


# --- the run ---------------------------------------------------------------------------------


async def soak(opts: Namespace, prof: Profile, workdir: Path) -> int:
    rng = random.Random(f"{opts.seed}:restarts")
    began = time.time()
    port_file = workdir / "targets.port"
    me = [sys.executable, str(Path(__file__).resolve()), "--seed", str(opts.seed)]
    if opts.smoke:
        me.append("--smoke")
    if opts.targets:
        me += ["--targets", str(opts.targets)]
    me += ["--minutes", str(opts.minutes)]
    targets = await asyncio.create_subprocess_exec(*me, "--serve-targets", str(port_file))
    receiver = SoakReceiver(secret="soak-secret")
    await receiver.start()
    os.environ["HOOK_SECRET"] = "soak-secret"
    locker: asyncio.subprocess.Process | None = None
    lives: list[Life] = []
    holder: list[tuple[WatchkeeperProcess, Life]] = []
    outages: list[list[Any]] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        while not port_file.exists() or not port_file.read_text():
            await asyncio.sleep(0.05)
        target_port = int(port_file.read_text())
        config = write_config(workdir, prof, target_port, receiver.hook_url)
        token = await cli_token(config)  # creates the database
        locker = await asyncio.create_subprocess_exec(
            *me, "--hold-locks", str(workdir / "wk.db"), stdout=asyncio.subprocess.PIPE
        )
        wk = await start(config, workdir, token, lives)
        holder.append((wk, lives[-1]))
        tasks.append(asyncio.create_task(sampler(holder, 5.0)))
        # Every check has run and is up before anything flips.
        await asyncio.sleep(prof.interval * (prof.success_threshold + 2) + prof.slack)
        t0 = time.time()
        async with aiohttp.ClientSession() as session:
            await session.post(f"http://127.0.0.1:{target_port}/start", json={"t0": t0})
        tasks.append(asyncio.create_task(receiver_outages(receiver, prof, opts.seed, t0, outages)))

        lo, hi = prof.restarts_within
        while True:
            moments = sorted(
                rng.uniform(lo, hi) * prof.flip_window for _ in range(prof.sigterms + 1)
            )
            # Spaced, so each process lives long enough to be judged.
            gap = min(60.0, (hi - lo) * prof.flip_window / (len(moments) + 1))
            if all(b - a > gap for a, b in itertools.pairwise(moments)):
                break
        kill_at = rng.choice(range(len(moments)))
        for k, moment in enumerate(moments):
            await asyncio.sleep(max(0.0, t0 + moment - time.time()))
            sig = signal.SIGKILL if k == kill_at else signal.SIGTERM
            await stop(wk, lives[-1], sig)
            wk = await start(config, workdir, token, lives)
            holder.append((wk, lives[-1]))
            print(
                f"  {time.time() - t0:6.1f}s {signal.Signals(sig).name}: restarted in "
                f"{lives[-1].ready - lives[-2].ended:.1f}s",
                flush=True,
            )

        await asyncio.sleep(max(0.0, t0 + prof.flip_window - time.time()))
        tasks[-1].cancel()
        await receiver.accept()
        drain_started = time.time()
        settled = False
        while time.time() - drain_started < prof.drain:
            try:
                open_alerts, depth = await health_of(wk)
            except (aiohttp.ClientError, TimeoutError):
                open_alerts = depth = -1  # a busy machine: ask again
            if open_alerts == 0 and depth == 0:
                settled = True
                break
            await asyncio.sleep(1)
        sample(wk, lives[-1])
        await stop(wk, lives[-1], signal.SIGTERM)
    finally:
        for task in tasks:
            task.cancel()
        if locker is not None:
            locker.send_signal(signal.SIGTERM)
        targets.send_signal(signal.SIGTERM)
        await targets.wait()
        await receiver.close()
    assert locker is not None
    locks = json.loads((await locker.communicate())[0].decode() or "{}")

    result = analyse(prof, opts.seed, t0, receiver, lives)
    refused = sum(1 for _, _, status in receiver.log if status == 0)
    refused_503 = sum(1 for _, _, status in receiver.log if status == 503)
    unclean = [life for life in lives if life.how == "SIGTERM" and life.exit_code != 0]
    first, last = lives[0], lives[-1]
    warm = next((s for s in last.samples if s[0] >= last.ready + 60), last.samples[-1])

    def mem(s: tuple[float, int, int]) -> str:
        return f"{s[1] / 2**20:.0f} MiB, {s[2]} fds"

    def ms(values: list[float]) -> str:
        return f"{pct(values, 0.5):.1f} / {pct(values, 0.99):.1f} s (n={len(values)})"

    outage_time = sum(length for _, length in outages)
    print(
        f"soak: seed {opts.seed}, {prof.targets} targets at {prof.interval:g}s "
        f"(failure_threshold {prof.failure_threshold}), flips for {prof.flip_window:.0f}s, "
        f"ran {time.time() - began:.0f}s"
    )
    print(
        f"  restarts: {sum(1 for x in lives if x.how == 'SIGTERM') - 1} SIGTERM, "
        f"{sum(1 for x in lives if x.how == 'SIGKILL')} SIGKILL; "
        f"unclean SIGTERM exits: {len(unclean)}"
    )
    print(
        f"  receiver down {len(outages)} times, {outage_time:.0f}s "
        f"({100 * outage_time / prof.flip_window:.0f} % of the flips): "
        f"{refused} requests dropped, {refused_503} answered 503"
    )
    print(f"  second writer: {locks.get('holds', 0)} lock holds, {locks.get('held', 0)}s in all")
    print(
        f"  transitions expected: {result['expected_down']} down, {result['expected_up']} up "
        f"({result['ambiguous']} down periods cut by a restart: ambiguous, not counted)"
    )
    print(
        f"  alerts fired {result['fired']}, resolved {result['resolved']}; "
        f"other alerts: {result['other_alerts'] or 'none'}"
    )
    print(
        f"  lost {len(result['lost'])}, false {len(result['false'])}, "
        f"duplicates {len(result['duplicates'])} "
        f"(redelivered after the SIGKILL, same key, at-least-once: "
        f"{len(result['at_least_once'])})"
    )
    print(f"  detection latency p50 / p99: {ms(result['detection'])}")
    print(f"  notification latency p50 / p99: {ms(result['notification'])}")
    print(
        f"  service at start: {mem(first.samples[0])}; last process at start: "
        f"{mem(last.samples[0])}, after warm-up: {mem(warm)}, at end: {mem(last.samples[-1])} "
        f"({(last.samples[-1][0] - last.ready) / 60:.1f} min up)"
    )
    after = [s for s in last.samples if s[0] >= warm[0]] or [last.samples[-1]]
    growth = 100 * (last.samples[-1][1] - warm[1]) / warm[1]
    print(
        f"  RSS growth after warm-up: {growth:+.1f} % (peak {max(s[1] for s in after) / 2**20:.0f}"
        f" MiB); open fds after warm-up: min {min(s[2] for s in after)}, "
        f"max {max(s[2] for s in after)}, at end {last.samples[-1][2]} ({len(after)} samples)"
    )
    if not settled:
        print("  the end did not settle (open alerts or undelivered notifications remained)")
    for line in [*result["lost"], *result["false"], *result["duplicates"]][:30]:
        print(f"    {line}")
    for life in unclean:
        print(f"    SIGTERM exit code {life.exit_code}")
    bad = result["lost"] or result["false"] or result["duplicates"] or unclean or not settled
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--targets", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="about 2 minutes, for CI")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--serve-targets", help=argparse.SUPPRESS)
    parser.add_argument("--hold-locks", help=argparse.SUPPRESS)
    opts = parser.parse_args(namespace=Namespace())
    prof = profile(opts)
    if opts.serve_targets:
        serve_targets(opts, prof)
        return 0
    if opts.hold_locks:
        hold_locks(opts, prof)
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="wk-soak-"))
    try:
        code = asyncio.run(soak(opts, prof, workdir))
    finally:
        if opts.keep:
            print(f"  work directory: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
