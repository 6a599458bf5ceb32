"""Run a program once, bounded: what `command` checks and the `command` and `systemd`
recovery actions share.

The program runs without a shell in its own session (hence its own process group, led by
it), so that on timeout, cancellation or plain exit everything it started is killed with one
`killpg`. Output is read as it comes and capped; past the cap it is read and dropped, never
left unread (a program blocked on a full pipe would never exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter

STDOUT, STDERR = 1, 2
"""The keys of `ProgramRun.output`."""

PIPE_GRACE = 1.0
"""After the program exits and its group is killed, how long its pipes may stay open (held by
a descendant that escaped the group with setsid) before we stop reading and use what we have."""

REAP_TIMEOUT = 5.0
"""Bound on waiting for a SIGKILLed program to be reaped; it normally takes microseconds."""


@dataclass(frozen=True, slots=True)
class ProgramRun:
    """How one run of a program went; the caller words it as its own result."""

    output: Mapping[int, bytes]
    """What it wrote, by stream (`STDOUT`, `STDERR`; with `merge_stderr` all is under
    `STDOUT`, in the order written), each at most the run's limit."""
    truncated: bool
    """Some output was past the limit and dropped."""
    pipes_held: bool
    """Its pipes were still open `PIPE_GRACE` after it exited: output may be missing."""
    timed_out: bool
    returncode: int | None
    """Its exit status (negative: killed by that signal); None when it timed out."""
    duration: float
    """Seconds from start to end."""


class _Collector(asyncio.SubprocessProtocol):
    """Keeps the first `limit` bytes of each stream; says when the program exited and when
    its pipes closed, separately: `asyncio.subprocess.Process.wait()` (3.11) returns only once
    every pipe is closed, so a background child holding one would make a finished program
    look hung."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.limit = limit
        self.output: dict[int, bytearray] = {STDOUT: bytearray(), STDERR: bytearray()}
        self.truncated = False
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        buffer = self.output.setdefault(fd, bytearray())
        room = max(0, self.limit - len(buffer))
        if len(data) > room:
            self.truncated = True
        buffer += data[:room]

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


_Spawned = tuple[asyncio.SubprocessTransport, _Collector]


async def run_program(
    argv: Sequence[str],
    *,
    timeout: float,
    limit: int,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    merge_stderr: bool = False,
) -> ProgramRun:
    """Run `argv` once within `timeout` seconds, keeping `limit` bytes of each stream (of
    the one, with `merge_stderr`); `env` is added to ours. OSError when it cannot start
    (FileNotFoundError names the program or `cwd`); the program's own failures are in the
    returned run. Cancelled, it kills the program's group all the same."""
    loop = asyncio.get_running_loop()
    started = perf_counter()
    collector = _Collector(loop, limit)
    transport, _ = await _spawn(loop, collector, argv, env, cwd, merge_stderr)
    pid = transport.get_pid()
    timed_out = pipes_held = False
    returncode: int | None = None
    try:
        async with asyncio.timeout(timeout):
            await collector.exited
            status = transport.get_returncode()
            # Set by the time `exited` fires; 255 is asyncio's own "status unavailable".
            returncode = 255 if status is None else status
            # What it left running in its group would otherwise keep the pipes open (and
            # leak a process per run).
            kill_group(pid)
            _, pending = await asyncio.wait([collector.closed], timeout=PIPE_GRACE)
            pipes_held = bool(pending)
    except TimeoutError:
        timed_out = True
        returncode = None
    finally:
        # On our timeout and on cancellation (a scheduler's timeout) alike.
        kill_group(pid)
        try:
            if not collector.exited.done():
                await asyncio.wait([collector.exited], timeout=REAP_TIMEOUT)
        finally:
            # Closes our pipe ends (and warns nobody later about an unclosed transport).
            transport.close()
    return ProgramRun(
        output={fd: bytes(data) for fd, data in collector.output.items()},
        truncated=collector.truncated,
        pipes_held=pipes_held,
        timed_out=timed_out,
        returncode=returncode,
        duration=perf_counter() - started,
    )


async def _spawn(
    loop: asyncio.AbstractEventLoop,
    collector: _Collector,
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    cwd: str | None,
    merge_stderr: bool,
) -> _Spawned:
    # The low-level API (rather than create_subprocess_exec) gives the collector's separate
    # exit notification; start_new_session makes the child a process-group leader.
    spawn: asyncio.Future[_Spawned] = asyncio.ensure_future(
        loop.subprocess_exec(
            lambda: collector,
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
            start_new_session=True,
        )
    )
    try:
        # Shielded: once fork/exec has happened we must learn the pid to kill its group, even
        # if cancelled while asyncio is still connecting the pipes.
        return await asyncio.shield(spawn)
    except asyncio.CancelledError:
        spawn.add_done_callback(_kill_spawned)
        raise


def _kill_spawned(spawn: asyncio.Future[_Spawned]) -> None:
    if spawn.cancelled() or spawn.exception() is not None:
        return
    transport, protocol = spawn.result()
    kill_group(transport.get_pid())
    # Close only once reaped: closing a transport whose child still runs makes asyncio
    # poll() it, racing the child watcher for the exit status.
    protocol.exited.add_done_callback(lambda _: transport.close())


def kill_group(pgid: int) -> None:
    """SIGKILL the process group `pgid`; a group already gone is not an error."""
    # start_new_session made the child a group leader, so its pid is the group id. After the
    # leader is reaped the id stays reserved while any member lives; once the group is empty
    # this is ESRCH (reuse of that exact id by a new group leader in between is negligible).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def signal_name(signum: int) -> str:
    """SIGKILL for 9; `signal N` for a number that names none."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
