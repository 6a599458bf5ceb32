"""Supervised programs: real processes, killed for real; times on a clock the test moves."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.clock import FakeClock, until_parked
from tests.support.servers import free_port, wait_until
from watchkeeper.core.clock import SystemClock
from watchkeeper.recovery.actions import ActionContext, OutcomeStatus, build_action
from watchkeeper.recovery.config import ProcessAction
from watchkeeper.recovery.supervisor import Program, ProgramState, RotatingFile, Supervisor

RUNNING, BACKOFF, EXHAUSTED = ProgramState.RUNNING, ProgramState.BACKOFF, ProgramState.EXHAUSTED
PY = sys.executable


def process(command: list[str], **options: Any) -> ProcessAction:
    return ProcessAction.model_validate(
        {"name": "app", "type": "process", "command": command, "max_attempts": 100} | options
    )


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[Callable[..., Supervisor]]:
    made: list[Supervisor] = []

    def make(clock: Any = None) -> Supervisor:
        made.append(Supervisor(clock=clock or SystemClock(), log_dir=tmp_path / "logs"))
        return made[-1]

    yield make
    for sup in made:
        await sup.stop()


async def until(program: Program, predicate: Callable[[Program], bool]) -> None:
    async with asyncio.timeout(10):
        await program.wait_for(predicate)


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_a_killed_http_server_is_listening_again_at_once(supervisor: Any) -> None:
    port = free_port()
    sup = supervisor()
    program = sup.add(
        process([PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)], startsecs="0s")
    )
    await sup.start()
    await wait_until(lambda: accepts(port), 10, "http.server listening")
    first = program.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await until(program, lambda p: p.pid not in (None, first) and p.state is RUNNING)
    await wait_until(lambda: accepts(port), 10, "http.server listening again")
    status = program.status()
    assert (status.restarts, status.last_exit, status.state) == (1, -signal.SIGKILL, RUNNING)
    assert status.uptime is not None and status.uptime >= 0


async def test_quick_exits_back_off_exponentially_up_to_the_cap(supervisor: Any) -> None:
    clock = FakeClock()
    sup = supervisor(clock)
    program = sup.add(
        process(["sh", "-c", "exit 1"], startsecs="10s", backoff="1s", max_backoff="4s")
    )
    await sup.start()
    # The first failed start is retried at once; the next ones wait 1s, 2s, 4s, 4s.
    await until(program, lambda p: p.state is BACKOFF)
    assert program.spawns == 2 and program.last_exit == 1
    for spawns, delay in [(2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0)]:
        await until(program, lambda p, n=spawns: p.state is BACKOFF and p.spawns == n)
        await until_parked(clock)
        assert clock.next_deadline == pytest.approx(delay)
        clock.advance(delay - 0.01)
        await asyncio.sleep(0)
        assert program.spawns == spawns  # not a moment early
        clock.advance(0.01)


async def test_a_run_longer_than_startsecs_is_running_and_resets_the_backoff(
    supervisor: Any, tmp_path: Path
) -> None:
    clock = FakeClock()
    sup = supervisor(clock)
    program = sup.add(process(["sleep", "60"], startsecs="5s"))
    await sup.start()
    assert program.state is ProgramState.STARTING
    await until_parked(clock)
    clock.advance(5)
    await until(program, lambda p: p.state is RUNNING)
    clock.advance(7)
    assert program.status().uptime == pytest.approx(12)
    # A crash after a good run restarts at once, without backoff.
    first = program.pid
    assert first is not None
    os.kill(first, signal.SIGTERM)
    await until(program, lambda p: p.pid not in (None, first))
    assert program.restarts == 1 and program.last_exit == -signal.SIGTERM


async def test_too_many_restarts_within_the_window_exhaust_it_until_restarted(
    supervisor: Any,
) -> None:
    clock = FakeClock()
    sup = supervisor(clock)
    program = sup.add(process(["true"], startsecs="1s", backoff="0s", max_attempts=3, within="5m"))
    await sup.start()
    await until(program, lambda p: p.state is EXHAUSTED)
    assert (program.spawns, program.restarts, program.pid) == (4, 3, None)
    await program.restart()  # an operator, or a check UP again, asks for it
    await until(program, lambda p: p.state is EXHAUSTED and p.spawns == 8)


async def test_stop_sends_stop_signal_then_sigkill_after_stop_timeout(
    supervisor: Any, tmp_path: Path
) -> None:
    clock = FakeClock()
    sup = supervisor(clock)
    stubborn = (
        "import signal\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "signal.pause()  # runs until a signal it does not ignore\n"
    )
    program = sup.add(process([PY, "-c", stubborn], stop_signal="INT", stop_timeout="10s"))
    await sup.start()
    log = tmp_path / "logs" / "app.out.log"
    await wait_until(lambda: log.exists() and "ready" in log.read_text(), 10, "handler set")
    pid = program.pid
    assert pid is not None
    stopping = asyncio.create_task(sup.stop())
    await until(program, lambda p: p.state is ProgramState.STOPPING)
    await until_parked(clock)  # the wait for stop_timeout (startsecs is over: running)
    assert not gone(pid)  # SIGINT ignored
    clock.advance(10)
    async with asyncio.timeout(10):
        await stopping
    assert gone(pid) and program.state is ProgramState.STOPPED
    assert program.last_exit == -signal.SIGKILL


async def test_stop_of_a_program_that_obeys_is_prompt_and_leaves_no_task(supervisor: Any) -> None:
    sup = supervisor()
    program = sup.add(process(["sleep", "60"], stop_timeout="10m"))
    await sup.start()
    pid = program.pid
    assert pid is not None
    async with asyncio.timeout(5):  # far less than stop_timeout: SIGTERM did it
        await sup.stop()
    await wait_until(lambda: gone(pid), 5, "the program stopped")
    assert program.state is ProgramState.STOPPED
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "supervise app"]


async def test_keep_running_leaves_the_program_running_when_watchkeeper_stops(
    supervisor: Any, tmp_path: Path
) -> None:
    sup = supervisor()
    program = sup.add(
        process(
            [PY, "-c", "import signal; print('up', flush=True); signal.pause()"], keep_running=True
        )
    )
    await sup.start()
    pid = program.pid
    assert pid is not None
    try:
        await sup.stop()
        assert not gone(pid) and program.detached() == [pid]
        log = tmp_path / "logs" / "app.out.log"
        await wait_until(lambda: log.exists() and "up" in log.read_text(), 10, "output in file")
    finally:
        os.killpg(pid, signal.SIGKILL)
        await wait_until(lambda: not program.detached(), 5, "left-running program reaped")


async def test_output_goes_to_size_rotated_files(supervisor: Any, tmp_path: Path) -> None:
    sup = supervisor()
    script = (
        "import signal, sys\n"
        "for i in range(40): print(f'{i:02d}' + 'x' * 97, flush=True)\n"
        "print('oops', file=sys.stderr, flush=True)\n"
        "signal.pause()\n"
    )
    sup.add(process([PY, "-c", script], log_max_bytes=1024, log_backups=2))
    await sup.start()
    logs = tmp_path / "logs"
    out = logs / "app.out.log"
    err = logs / "app.err.log"
    await wait_until(lambda: err.exists() and err.read_text() == "oops\n", 10, "stderr")
    await wait_until(lambda: out.exists() and "39x" in out.read_text(), 10, "stdout")
    files = sorted(p.name for p in logs.iterdir())
    assert files == ["app.err.log", "app.out.log", "app.out.log.1", "app.out.log.2"]
    assert all((logs / name).stat().st_size <= 1024 for name in files)
    # 4000 bytes in 1024-byte files: the first 1024 were rotated out, the rest is all there.
    written = "".join(f"{i:02d}" + "x" * 97 + "\n" for i in range(40))
    kept = "".join((logs / name).read_text() for name in files[:0:-1])
    assert kept == written[1024:]


def test_rotating_file_keeps_backups_and_drops_the_oldest(tmp_path: Path) -> None:
    log = RotatingFile(tmp_path / "a.log", max_bytes=10, backups=2)
    for chunk in (b"0123456789", b"abcdefghij", b"KLMNOPQRST", b"uv"):
        log.write(chunk)
    log.close()
    read = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert read == {"a.log": b"uv", "a.log.1": b"KLMNOPQRST", "a.log.2": b"abcdefghij"}


async def test_the_process_action_restarts_a_running_but_unhealthy_program(
    supervisor: Any,
) -> None:
    sup = supervisor()
    config = process(["sleep", "60"], startsecs="50ms")
    program = sup.add(config)
    await sup.start()
    await until(program, lambda p: p.state is RUNNING)
    first = program.pid
    outcome = await build_action(config).run(ActionContext(check="app", supervisor=sup))
    assert outcome.status is OutcomeStatus.SUCCEEDED, outcome.reason
    assert program.pid not in (None, first) and program.state is RUNNING
    assert first is not None and gone(first)
    assert program.restarts == 0  # asked for, not a crash


async def test_a_program_that_cannot_start_is_reported_and_backs_off(supervisor: Any) -> None:
    clock = FakeClock()
    sup = supervisor(clock)
    program = sup.add(process(["/nonexistent/api"], backoff="1s"))
    await sup.start()
    await until(program, lambda p: p.state is BACKOFF)
    assert program.last_error == "cannot run /nonexistent/api: No such file or directory"
    outcome = await build_action(program.config).run(ActionContext(supervisor=sup))
    assert outcome.status is OutcomeStatus.FAILED
