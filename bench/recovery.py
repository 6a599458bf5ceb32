"""Benchmark: SIGKILL → listening again, for a supervised `python3 -m http.server`.

The same program runs under Watchkeeper's supervisor (recovery/supervisor.py, in a process
of its own, as in production) and, when `supervisord` is installed (Debian's `supervisor`
package), under supervisord, in the same run and with the same settings (startsecs 1s,
restart on any exit, stop as a group). For each, `--kills` times:

1. wait until the port accepts and the server has been up for more than startsecs (so a
   kill is a crash of a healthy program, never a failed start that backs off);
2. SIGKILL the server (found as the supervisor's child listening on the port);
3. time until the port refuses (the old socket is gone) and then accepts again.

The port is probed with a non-blocking connect every `--probe` seconds (default 2 ms): that
is the resolution of the figures. Both supervisors and this process share the machine's
cores with whatever else runs: the load average is printed before and after.

Run from the project root:

    .venv/bin/python bench/recovery.py
    .venv/bin/python bench/recovery.py --kills 50 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

STARTSECS = 1.0
SETTLE = STARTSECS + 0.2
"""How long the server must have been up before the next kill."""


class Namespace(argparse.Namespace):
    kills: int
    probe: float
    json: bool
    serve: int | None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate: Callable[[], object], timeout: float, what: str, step: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def server_command(port: int) -> list[str]:
    # The interpreter itself, not whatever `python3` is on PATH: a version manager's shim
    # (pyenv's is a shell script) adds a few hundred ms to every start, for both supervisors.
    python3 = os.path.realpath(sys.executable)
    return [python3, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


def server_pid(supervisor_pid: int, port: int) -> int | None:
    """The http.server child of the supervisor (None while there is none)."""
    try:
        for child in psutil.Process(supervisor_pid).children():
            try:
                cmdline = child.cmdline()
                if "http.server" in cmdline and str(port) in cmdline:
                    return child.pid
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
    except psutil.NoSuchProcess:
        return None
    return None


def measure(
    name: str, supervisor: subprocess.Popen[bytes], port: int, opts: Namespace
) -> list[float]:
    times: list[float] = []
    for i in range(opts.kills):
        wait_for(lambda: accepts(port), 20, f"{name}: server listening", 0.01)
        time.sleep(SETTLE)  # up longer than startsecs: the kill is a crash, not a failed start
        pid = server_pid(supervisor.pid, port)
        if pid is None:
            raise SystemExit(f"{name}: no http.server child found")
        started = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        # First the old socket must be gone (a connect right after kill() may still reach
        # it), then a new one must accept.
        wait_for(lambda: not accepts(port), 10, f"{name}: old server gone", opts.probe)
        wait_for(lambda: accepts(port), 20, f"{name}: listening again", opts.probe)
        times.append(time.perf_counter() - started)
        if not opts.json:
            print(f"  {name} kill {i + 1:2d}: {times[-1] * 1000:7.1f} ms", flush=True)
    return times


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_ours(opts: Namespace) -> list[float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        return measure("watchkeeper", proc, port, opts)
    finally:
        stop(proc)


SUPERVISORD_CONF = """\
[supervisord]
nodaemon=true
logfile={dir}/supervisord.log
pidfile={dir}/supervisord.pid
childlogdir={dir}

[program:web]
command={command}
startsecs={startsecs}
autorestart=true
startretries=100
stopasgroup=true
killasgroup=true
"""


def run_supervisord(opts: Namespace, binary: str) -> list[float]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="wk-bench-supervisord-") as tmp:
        conf = Path(tmp) / "supervisord.conf"
        command = " ".join(server_command(port))
        conf.write_text(SUPERVISORD_CONF.format(dir=tmp, command=command, startsecs=int(STARTSECS)))
        proc = subprocess.Popen(
            [binary, "-n", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            return measure("supervisord", proc, port, opts)
        finally:
            stop(proc)


def supervisord_binary() -> str | None:
    found = shutil.which("supervisord")
    if found is None:
        print("supervisord not found; trying: apt-get install -y supervisor", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        result = subprocess.run(
            ["apt-get", "install", "-y", "-q", "supervisor"],
            env=env,
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            print("could not install supervisor: supervisord is skipped", file=sys.stderr)
            return None
        found = shutil.which("supervisord")
    return found


async def serve(port: int) -> None:
    """Supervise the http.server until SIGTERM (the process the benchmark kills into)."""
    from watchkeeper.recovery.config import ProcessAction
    from watchkeeper.recovery.supervisor import Supervisor

    config = ProcessAction.model_validate(
        {
            "name": "web",
            "type": "process",
            "command": server_command(port),
            "startsecs": STARTSECS,
            "max_attempts": 100,
            "within": "1h",
        }
    )
    with tempfile.TemporaryDirectory(prefix="wk-bench-recovery-") as tmp:
        supervisor = Supervisor(log_dir=Path(tmp))
        supervisor.add(config)
        done = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
        await supervisor.start()
        await done.wait()
        await supervisor.stop()


def summary(times: list[float]) -> dict[str, float]:
    return {
        "min": min(times),
        "median": statistics.median(times),
        "max": max(times),
        "n": len(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--probe", type=float, default=0.002, help="seconds between probes")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    opts = parser.parse_args(namespace=Namespace())
    if opts.serve is not None:
        asyncio.run(serve(opts.serve))
        return

    load_before = os.getloadavg()
    results = {"watchkeeper": summary(run_ours(opts))}
    binary = supervisord_binary()
    if binary is not None:
        results["supervisord"] = summary(run_supervisord(opts, binary))
    load_after = os.getloadavg()

    if opts.json:
        print(json.dumps({"results": results, "load": [load_before, load_after]}, indent=2))
        return
    print()
    print(f"SIGKILL -> listening again, python3 -m http.server, {opts.kills} kills each")
    print(
        f"(probe every {opts.probe * 1000:g} ms; {os.cpu_count()} CPUs; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after)"
    )
    print(f"{'supervisor':<14}{'min':>10}{'median':>10}{'max':>10}")
    for name, figures in results.items():
        ms = {k: f"{v * 1000:.0f} ms" for k, v in figures.items() if k != "n"}
        print(f"{name:<14}{ms['min']:>10}{ms['median']:>10}{ms['max']:>10}")
    if "supervisord" not in results:
        print("supervisord: not installed, not measured")


if __name__ == "__main__":
    main()
