"""Benchmark: heartbeat pings per second against `/health/live`, the same way in one run.

Starts the real service (`python -m watchkeeper run`) on a new SQLite database with 100
heartbeat checks (rate limits raised out of the way), then drives it with `wrk` (Debian's
`wrk` package) or, when `wrk` is absent, an asyncio load generator:

* 50 connections, each request on a new connection (`Connection: close`, as cron's `curl`
  pings), rotating through the 100 heartbeats' `/ping/<uuid>` URLs;
* then `/health/live` the same way, as the ceiling the HTTP stack allows.

Prints requests/s, p50 and p99 latency, and the errors of each, and pings as a share of
`/health/live`. Targets (issue #20): >= 2,500 pings/s with p99 < 50 ms, >= 80 % of
`/health/live`.

Run from the project root:

    .venv/bin/python bench/pings.py
    .venv/bin/python bench/pings.py --duration 10 --connections 50 --loadgen asyncio
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHECKS = 100
_NAMESPACE = uuid.UUID("6f1c2a34-9d7e-4c1b-8a55-20cafe200020")

_LUA = """
local paths = {%(paths)s}
local i = 0
request = function()
  i = (i %% #paths) + 1
  return wrk.format("GET", paths[i], {["Connection"] = "close"})
end
done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"p50_us\\": %%d, \\"p99_us\\": %%d, "
    .. "\\"status_errors\\": %%d, \\"socket_errors\\": %%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


@dataclass
class Figures:
    what: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_seconds: float = 0.0
    """CPU time the service used meanwhile (user + system, all its threads)."""

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds / self.requests * 1e6 if self.requests else 0.0

    def line(self) -> str:
        return (
            f"{self.what:<13} {self.per_second:8.0f} req/s   p50 {self.p50_ms:6.1f} ms   "
            f"p99 {self.p99_ms:6.1f} ms   errors {self.errors}   "
            f"service CPU {self.cpu_us_per_request:5.0f} us/request"
        )


def heartbeat_uuid(i: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"hb-{i}"))


def write_config(workdir: Path) -> Path:
    checks = "".join(
        f"  - name: hb-{i}\n    type: heartbeat\n    period: 1h\n    grace: 1h\n"
        f'    uuid: "{heartbeat_uuid(i)}"\n'
        for i in range(CHECKS)
    )
    config = workdir / "watchkeeper.yaml"
    config.write_text(
        f"""
storage:
  url: "sqlite:///{workdir / "wk.db"}"
heartbeats:
  rate_limit:
    per_check: {{rate: 1000000, burst: 1000000}}
    per_address: {{rate: 1000000, burst: 1000000}}
checks:
{checks}""",
        encoding="utf-8",
    )
    return config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def service(workdir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    config = write_config(workdir)
    log = (workdir / "watchkeeper.log").open("wb")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "watchkeeper", "run", "--config", str(config)),
            *("--listen", f"127.0.0.1:{port}", "--log-level", "warning"),
        ],
        cwd=workdir,
        stdout=log,
        stderr=log,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(
                    f"watchkeeper exited {proc.returncode}:\n"
                    + (workdir / "watchkeeper.log").read_text(errors="replace")
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("watchkeeper did not become ready in 60 s") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run_wrk(
    what: str, port: int, paths: list[str], connections: int, duration: int, workdir: Path
) -> Figures:
    script = workdir / f"{what.replace('/', '_')}.lua"
    script.write_text(_LUA % {"paths": ", ".join(f'"{p}"' for p in paths)}, encoding="utf-8")
    out = subprocess.run(
        [
            *("wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-s", str(script)),
            f"http://127.0.0.1:{port}{paths[0]}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    return Figures(
        what,
        data["requests"],
        data["duration_us"] / 1e6,
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
        data["status_errors"] + data["socket_errors"],
    )


async def _asyncio_load(
    port: int, paths: list[str], connections: int, duration: float
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    counter = 0
    stop_at = time.monotonic() + duration

    async def one(path: str) -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            answer = await reader.read()
        finally:
            writer.close()
        return answer[9:10] == b"2"

    async def worker() -> None:
        nonlocal errors, counter
        while time.monotonic() < stop_at:
            path = paths[counter % len(paths)]
            counter += 1
            began = time.perf_counter()
            try:
                ok = await one(path)
            except OSError:
                ok = False
            latencies.append(time.perf_counter() - began)
            errors += not ok

    began = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies, errors, time.monotonic() - began


def run_asyncio(what: str, port: int, paths: list[str], connections: int, duration: int) -> Figures:
    latencies, errors, seconds = asyncio.run(_asyncio_load(port, paths, connections, duration))
    latencies.sort()

    def pct(q: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return Figures(what, len(latencies), seconds, pct(0.5), pct(0.99), errors)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stored_pings(workdir: Path) -> int:
    with contextlib.closing(sqlite3.connect(workdir / "wk.db")) as conn:
        row = conn.execute("SELECT COALESCE(SUM(ping_count), 0) FROM heartbeats").fetchone()
        return int(row[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--loadgen", choices=["auto", "wrk", "asyncio"], default="auto", help="auto: wrk if found"
    )
    args = parser.parse_args(argv)
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
    if args.loadgen == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk not found (Debian: apt install wrk)")
    pings = [f"/ping/{heartbeat_uuid(i)}" for i in range(CHECKS)]
    with tempfile.TemporaryDirectory(prefix="wk-bench-pings-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        with service(workdir, port) as proc:
            results = []
            for what, paths in (("pings", pings), ("/health/live", ["/health/live"])):
                cpu_before = cpu_seconds(proc.pid)
                if use_wrk:
                    fig = run_wrk(what, port, paths, args.connections, args.duration, workdir)
                else:
                    fig = run_asyncio(what, port, paths, args.connections, args.duration)
                fig.cpu_seconds = cpu_seconds(proc.pid) - cpu_before
                results.append(fig)
        stored = stored_pings(workdir)
    ping, live = results
    print(
        f"load: {'wrk' if use_wrk else 'asyncio'}, {args.connections} connections, "
        f"Connection: close, {args.duration} s each, {CHECKS} heartbeats, SQLite"
    )
    for fig in results:
        print(fig.line())
    share = ping.per_second / live.per_second * 100 if live.per_second else 0.0
    cpu_share = (
        live.cpu_us_per_request / ping.cpu_us_per_request * 100 if ping.cpu_us_per_request else 0
    )
    print(
        f"pings / live  {share:7.0f} %   (by the service's CPU per request: {cpu_share:.0f} %; "
        f"stored pings: {stored})"
    )
    ok = ping.per_second >= 2500 and ping.p99_ms < 50 and share >= 80 and ping.errors == 0
    print(
        "targets (>= 2,500/s, p99 < 50 ms, >= 80 % of /health/live, 0 errors):",
        "met" if ok else "NOT met",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
