"""Benchmark: alert ingest, Watchkeeper against Prometheus Alertmanager, in one run.

Starts both on loopback: Debian's `/usr/bin/prometheus-alertmanager` (a temporary config with
one receiver that sends nothing, a temporary storage directory, clustering off) and
`watchkeeper run` (a temporary SQLite database, no checks, an operator token). Then, for each,
posts Alertmanager v2 alerts (`POST /api/v2/alerts`, JSON arrays of `--batch` alerts, as
Prometheus sends them) over `--connections` keep-alive connections for `--seconds`:

* re-post: `--alerts` distinct alerts (1,000), posted once to warm up, then again and again
  (what Prometheus does every evaluation); alerts/s for both, and their non-2xx answers;
* new: alerts never seen before, every one a new label set (Watchkeeper stores each one
  and its first page durably before it answers; Alertmanager keeps them in memory).

Targets (issue #20): re-post >= 50 % of Alertmanager's alerts/s with 0 non-2xx; new >= 10,000
alerts/s. The figures depend on the machine: measure on an idle one. On a busy one, the CPU
time each server spent per 1,000 alerts (from /proc, on Linux) is the steadier comparison:
it is printed too.

Run from the project root:

    .venv/bin/python bench/alert_ingest.py
    .venv/bin/python bench/alert_ingest.py --seconds 20 --connections 4 --batch 100
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
AM_CONFIG = """\
route:
  receiver: blackhole
  group_wait: 30s
receivers:
  - name: blackhole
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of the process so far (None where /proc cannot tell)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    alerts: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    cpu: float | None = None
    """CPU seconds the server spent meanwhile."""

    @property
    def cpu_per_1000(self) -> str:
        if self.cpu is None or not self.alerts:
            return "n/a"
        return f"{self.cpu / self.alerts * 1e6:,.0f} ms"

    @property
    def rate(self) -> float:
        return self.alerts / self.seconds if self.seconds else 0.0

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


def alert(i: int, ends_at: str, run: str) -> dict[str, object]:
    return {
        "labels": {
            "alertname": f"BenchAlert{i % 20}",
            "instance": f"host-{i}.example:9100",
            "job": "node",
            "severity": "warning",
            "run": run,
        },
        "annotations": {
            "summary": f"host-{i} is unhappy",
            "description": "the bench posts this alert again and again",
        },
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": ends_at,
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up",
    }


def batches(first: int, count: int, size: int, ends_at: str, run: str) -> list[bytes]:
    return [
        json.dumps(
            [alert(i, ends_at, run) for i in range(start, min(start + size, first + count))]
        ).encode()
        for start in range(first, first + count, size)
    ]


async def wait_ready(url: str, what: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise SystemExit(f"{what} exited with {proc.returncode}")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{what} did not become ready at {url}")


async def post_for(
    url: str,
    bodies: Iterator[bytes],
    size: int,
    connections: int,
    seconds: float,
    token: str | None,
    pid: int,
) -> Result:
    """Post `bodies` (each `size` alerts) over `connections` keep-alive connections for
    `seconds`; count the alerts of 2xx answers, and the CPU time of the server (`pid`)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    result = Result()
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        stop = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < stop:
                body = next(bodies)
                async with session.post(url, data=body) as response:
                    await response.read()
                    result.statuses[response.status] += 1
                    if 200 <= response.status < 300:
                        result.alerts += body.count(b'"alertname"')

        started, cpu = time.monotonic(), cpu_seconds(pid)
        await asyncio.gather(*(worker() for _ in range(connections)))
        result.seconds = time.monotonic() - started
        after = cpu_seconds(pid)
        result.cpu = None if cpu is None or after is None else after - cpu
    return result


async def warm(url: str, bodies: list[bytes], token: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession(headers=headers) as session:
        for body in bodies:
            async with session.post(url, data=body) as response:
                await response.read()
                if response.status != 200:
                    raise SystemExit(f"{url}: warm-up answered {response.status}")


async def start_alertmanager(tmp: Path) -> tuple[asyncio.subprocess.Process, str]:
    config = tmp / "alertmanager.yml"
    config.write_text(AM_CONFIG)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        ALERTMANAGER,
        f"--config.file={config}",
        f"--storage.path={tmp / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=(tmp / "alertmanager.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    await wait_ready(f"{url}/-/ready", "alertmanager", proc)
    return proc, url


async def start_watchkeeper(tmp: Path) -> tuple[asyncio.subprocess.Process, str, str]:
    config = tmp / "watchkeeper.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{tmp / 'wk.db'}'}}\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    create = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watchkeeper", "token", "create", "--role", "operator",
        "--name", "bench", "--config", str(config),
        cwd=tmp, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await create.communicate()
    if create.returncode != 0:
        raise SystemExit(f"watchkeeper token create failed: {err.decode()}")
    token = out.decode().strip().splitlines()[-1]
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watchkeeper", "run", "--config", str(config),
        "--listen", f"127.0.0.1:{port}",
        cwd=tmp, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=(tmp / "watchkeeper.log").open("wb"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    await wait_ready(f"{url}/health/live", "watchkeeper", proc)
    return proc, url, token


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def line(name: str, result: Result) -> str:
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(result.statuses.items()))
    return (
        f"{name:<34} {result.rate:>10,.0f} alerts/s   non-2xx: {result.non_2xx:<4}"
        f" ({result.alerts:,} alerts in {result.seconds:.1f} s; {statuses};"
        f" server CPU per 1,000 alerts: {result.cpu_per_1000})"
    )


async def main(args: argparse.Namespace) -> int:
    if shutil.which(ALERTMANAGER) is None:
        print(f"{ALERTMANAGER} is not installed (Debian: apt install prometheus-alertmanager)")
        return 2
    ends_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    repost = batches(0, args.alerts, args.batch, ends_at, "repost")
    with tempfile.TemporaryDirectory(prefix="alert-ingest-") as name:
        tmp = Path(name)
        am, am_url = await start_alertmanager(tmp)
        wk, wk_url, token = await start_watchkeeper(tmp)
        try:
            print(
                f"{args.alerts:,} distinct alerts, batches of {args.batch}, "
                f"{args.connections} connections, {args.seconds:g} s each"
            )
            target = "/api/v2/alerts"
            await warm(am_url + target, repost, None)
            am_result = await post_for(
                am_url + target, itertools.cycle(repost), args.batch, args.connections,
                args.seconds, None, am.pid,
            )  # fmt: skip
            print(line("Alertmanager, re-post", am_result))
            await warm(wk_url + target, repost, token)
            wk_result = await post_for(
                wk_url + target, itertools.cycle(repost), args.batch, args.connections,
                args.seconds, token, wk.pid,
            )  # fmt: skip
            print(line("Watchkeeper, re-post", wk_result))

            def fresh(run: str) -> Iterator[bytes]:
                for n in itertools.count():
                    yield from batches(
                        n * args.batch * 10, args.batch * 10, args.batch, ends_at, run
                    )

            am_new = await post_for(
                am_url + target, fresh("am-new"), args.batch, args.connections,
                args.new_seconds, None, am.pid,
            )  # fmt: skip
            print(line("Alertmanager, new alerts", am_new))
            new_result = await post_for(
                wk_url + target, fresh("new"), args.batch, args.connections, args.new_seconds,
                token, wk.pid,
            )  # fmt: skip
            print(line("Watchkeeper, new alerts", new_result))
            sizes = {
                part: (tmp / f"wk.db{part}").stat().st_size / 1e6
                for part in ("", "-wal")
                if (tmp / f"wk.db{part}").exists()
            }
            print(
                "Watchkeeper's database after the run: "
                + ", ".join(f"wk.db{part} {mb:,.1f} MB" for part, mb in sizes.items())
            )
            ratio = wk_result.rate / am_result.rate if am_result.rate else 0.0
            print(f"Watchkeeper re-post / Alertmanager: {ratio:.0%}  (target >= 50 %)")
            print(
                f"Watchkeeper new alerts: {new_result.rate:,.0f}/s  (target >= 10,000/s; "
                f"Alertmanager, which keeps them in memory: {am_new.rate:,.0f}/s)"
            )
            if am_result.cpu and wk_result.cpu and am_result.alerts and wk_result.alerts:
                per = (wk_result.cpu / wk_result.alerts) / (am_result.cpu / am_result.alerts)
                print(f"Re-post CPU per alert, Watchkeeper / Alertmanager: {per:.2f}")
            ok = (
                ratio >= 0.5
                and new_result.rate >= 10_000
                and wk_result.non_2xx == 0
                and new_result.non_2xx == 0
            )
            return 0 if ok else 1
        finally:
            await stop(wk)
            await stop(am)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=1000, help="distinct re-posted alerts")
    parser.add_argument("--batch", type=int, default=100, help="alerts per request")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0, help="per re-post run")
    parser.add_argument("--new-seconds", type=float, default=5.0, help="new alerts run")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args(None))))
