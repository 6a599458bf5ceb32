"""Benchmark: the public status page under load (target: `summary.json` >= 3,000 req/s with
p99 < 50 ms at 100 concurrent connections on 2 cores).

Starts `watchkeeper run` (a real process, uvicorn as in production) with a status page of
`--components` components fed by as many TCP checks, one open incident and a maintenance
window, then loads `/status/summary.json` and `/status` with wrk (Debian's package) at 100
connections, or, without wrk, with an asyncio load generator (aiohttp; it shares the CPU
with the server, so its figures are lower bounds). Prints requests/s and p99 latency.

Run from the project root:

    .venv/bin/python bench/status_page.py
    .venv/bin/python bench/status_page.py --duration 20 --connections 100 --components 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from watchkeeper.auth import tokens
from watchkeeper.http.roles import Role
from watchkeeper.store.database import Database


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, db: Path, components: int, target_port: int) -> None:
    now = datetime.now(UTC)
    lines = [f"storage: {{url: 'sqlite:///{db}'}}", "checks:"]
    for i in range(components):
        lines.append(
            f"  - {{name: c{i}, type: tcp, host: 127.0.0.1, port: {target_port},"
            f" interval: 10s, component: 'Component {i}'}}"
        )
    lines += [
        "maintenance:",
        f"  - {{name: upgrade, starts_at: '{(now + timedelta(days=1)).isoformat()}',"
        f" ends_at: '{(now + timedelta(days=1, hours=2)).isoformat()}', checks: [c0],"
        " comment: Database upgrade}",
        "status_page:",
        "  title: Bench status",
        "  components:",
    ]
    lines += [f"    - {{name: 'Component {i}', group: G{i % 3}}}" for i in range(components)]
    path.write_text("\n".join(lines) + "\n")


async def operator_token(url: str) -> str:
    db = Database(url)
    await db.migrate()
    _, secret = await tokens.create_token(
        db, name="bench", role=Role.OPERATOR, now=datetime.now(UTC)
    )
    await db.close()
    return secret


async def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{url}/status/summary.json") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("watchkeeper did not become ready")


def run_wrk(url: str, connections: int, duration: int, threads: int) -> tuple[float, float]:
    import subprocess

    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        print(f"  wrk: {errors.group(1)} non-2xx responses", file=sys.stderr)
    return rate, float(p99.group(1)) * scale


async def run_asyncio(url: str, connections: int, duration: int) -> tuple[float, float]:
    latencies: list[float] = []
    stop = time.monotonic() + duration
    connector = aiohttp.TCPConnector(limit=connections)

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
                assert response.status == 200
            latencies.append(time.perf_counter() - started)

    began = time.monotonic()
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    elapsed = time.monotonic() - began
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 100 else 0.0
    return len(latencies) / elapsed, p99


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--components", type=int, default=10)
    parser.add_argument("--asyncio", action="store_true", help="use the asyncio generator")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        target = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        target_port = target.sockets[0].getsockname()[1]
        db_path = work / "wk.db"
        config = work / "watchkeeper.yaml"
        write_config(config, db_path, args.components, target_port)
        token = await operator_token(f"sqlite:///{db_path}")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = (work / "wk.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "watchkeeper",
            "run",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
            cwd=work,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=log,
        )
        try:
            await wait_ready(base)
            async with (
                aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session,
                session.post(
                    f"{base}/api/v1/incidents",
                    json={
                        "name": "Elevated error rates",
                        "impact": "minor",
                        "components": {"Component 1": "degraded_performance"},
                        "body": "We are looking into it.",
                    },
                ) as r,
            ):
                assert r.status == 201, await r.text()
            use_wrk = not args.asyncio and shutil.which("wrk") is not None
            tool = "wrk" if use_wrk else "asyncio (aiohttp)"
            print(
                f"status page: {args.components} components, {args.connections} connections, "
                f"{args.duration} s per endpoint, load by {tool}, {os.cpu_count()} CPUs"
            )
            for path in ("/status/summary.json", "/status"):
                url = base + path
                # Warm up (connections opened, the first checks run), not counted.
                if use_wrk:
                    await asyncio.to_thread(run_wrk, url, args.connections, 2, args.threads)
                else:
                    await run_asyncio(url, args.connections, 2)
                if use_wrk:
                    rate, p99 = await asyncio.to_thread(
                        run_wrk, url, args.connections, args.duration, args.threads
                    )
                else:
                    rate, p99 = await run_asyncio(url, args.connections, args.duration)
                verdict = ""
                if path.endswith("summary.json"):
                    ok = rate >= 3000 and p99 < 50
                    verdict = "  (target >= 3000 req/s, p99 < 50 ms: " + (
                        "met)" if ok else "NOT met)"
                    )
                print(f"  GET {path:<22} {rate:9.0f} req/s   p99 {p99:7.2f} ms{verdict}")
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
            log.close()
            target.close()


if __name__ == "__main__":
    asyncio.run(main())
