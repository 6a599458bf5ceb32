"""Run a program once, as `command` and `systemd` actions do.

The program runs in its own session (so its own process group) without a shell; stdout and
stderr share one pipe, so the output reads in the order it was written. On timeout or
cancellation the whole group is killed, so nothing it started outlives the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from datetime import timedelta
from time import perf_counter

from watchkeeper.core.durations import format_duration
from watchkeeper.recovery.actions.base import ActionOutcome, OutcomeStatus, truncate

_PIPE_GRACE = 1.0
"""After the program exits and its group is killed, how long its pipe may stay open (held by
a descendant that left the group with setsid) before we use what we have."""
_REAP_TIMEOUT = 5.0
"""Bound on waiting for a SIGKILLed program to be reaped; it normally takes microseconds."""


class _Collector(asyncio.SubprocessProtocol):
    """Keeps the first `limit` bytes of output; says when the program exited and when its
    pipe closed, separately (a background descendant may hold the pipe after the exit)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.limit = limit
        self.output = bytearray()
        self.dropped = 0
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        # Past the cap data is read and dropped, never left unread: a program blocked on a
        # full pipe would never exit.
        room = max(0, self.limit - len(self.output))
        self.output += data[:room]
        self.dropped += max(0, len(data) - room)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def kill_group(pgid: int, signum: int = signal.SIGKILL) -> None:
    """Signal the process group `pgid`; a group already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def run_program(
    argv: Sequence[str],
    *,
    timeout: float,
    limit: int,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> ActionOutcome:
    """Run `argv` once and describe how it went; never raises for the program's failures."""
    loop = asyncio.get_running_loop()
    started = perf_counter()
    collector = _Collector(loop, limit)
    try:
        transport, _ = await _spawn(loop, collector, argv, env, cwd)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and cwd is not None and exc.filename == cwd:
            reason = f"working directory not found: {cwd}"
        elif isinstance(exc, FileNotFoundError):
            reason = f"program not found: {argv[0]}"
        else:
            reason = f"cannot run {argv[0]}: {exc.strerror or exc}"
        return ActionOutcome(OutcomeStatus.ERROR, perf_counter() - started, reason=reason)

    pid = transport.get_pid()
    timed_out = False
    try:
        async with asyncio.timeout(timeout):
            await collector.exited
            kill_group(pid)  # what it left running would hold the pipe (and leak)
            await asyncio.wait([collector.closed], timeout=_PIPE_GRACE)
    except TimeoutError:
        timed_out = True
    finally:
        # On our timeout and on cancellation alike.
        kill_group(pid)
        try:
            if not collector.exited.done():
                await asyncio.wait([collector.exited], timeout=_REAP_TIMEOUT)
        finally:
            transport.close()
    duration = perf_counter() - started
    output, cut = truncate(bytes(collector.output), limit)
    cut = cut or collector.dropped > 0
    if timed_out:
        return ActionOutcome(
            OutcomeStatus.TIMED_OUT,
            duration,
            output,
            cut,
            reason=f"timed out after {format_duration(timedelta(seconds=timeout))}",
        )
    code = transport.get_returncode()
    code = 255 if code is None else code  # asyncio's own "status unavailable"
    if code == 0:
        return ActionOutcome(OutcomeStatus.SUCCEEDED, duration, output, cut, 0, reason="exit 0")
    reason = f"killed by {_signal_name(-code)}" if code < 0 else f"exit code {code}"
    return ActionOutcome(OutcomeStatus.FAILED, duration, output, cut, code, reason=reason)


async def _spawn(
    loop: asyncio.AbstractEventLoop,
    collector: _Collector,
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    cwd: str | None,
) -> tuple[asyncio.SubprocessTransport, _Collector]:
    spawn = asyncio.ensure_future(
        loop.subprocess_exec(
            lambda: collector,
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
            start_new_session=True,
        )
    )
    try:
        # Shielded: once fork/exec happened we must learn the pid to kill its group, even if
        # cancelled while asyncio is still connecting the pipe.
        return await asyncio.shield(spawn)
    except asyncio.CancelledError:
        spawn.add_done_callback(_kill_spawned)
        raise


def _kill_spawned(spawn: asyncio.Future[tuple[asyncio.SubprocessTransport, _Collector]]) -> None:
    if spawn.cancelled() or spawn.exception() is not None:
        return
    transport, protocol = spawn.result()
    kill_group(transport.get_pid())
    # Close only once reaped: closing a live child's transport makes asyncio poll() it.
    protocol.exited.add_done_callback(lambda _: transport.close())


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
