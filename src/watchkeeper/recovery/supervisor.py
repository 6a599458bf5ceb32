"""Supervised programs (the `process` action type), the way supervisord runs them.

Each `Program` is started in its own session (so its own process group). Its exit is noticed
the moment it happens: a pidfd (Linux 5.3+) becomes readable and the event loop calls us
back; nothing polls. It is then started again at once. A run shorter than `startsecs` is a
failed start; after the first one each further failed start in a row waits longer
(`backoff`, doubling up to `max_backoff`). More than `max_attempts` restarts within `within`
and it gives up: `exhausted` until `restart()` (a check, an operator) asks for it again.

Stopping sends `stop_signal` to the program's group, then SIGKILL after `stop_timeout`.
stdout and stderr go through pipes into size-rotated files. Programs with `keep_running`
write straight to their files instead (rotated only when started), because a pipe would die
with Watchkeeper and take the program with it (SIGPIPE); `stop()` leaves them running.

After Watchkeeper's own restart, a program instance it recorded as running (pid and
identity: boot id and start time, so a reused pid never passes) is *adopted* when it was
left running on purpose (`keep_running`, writing straight to its files): watched through a
pidfd like any instance, its exit noticed at once (its exit code is not ours to read). An
instance of a program without `keep_running` (left behind by a crash, its output pipe gone)
is stopped (its group: `stop_signal`, then SIGKILL) and the program started cleanly.

Every task and file descriptor here belongs to its `Program` and is released by `stop()`.
Times (startsecs, backoff, stop_timeout, the restart window) are read from an injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
import subprocess
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from watchkeeper.core.clock import Clock, SystemClock
from watchkeeper.core.durations import format_duration
from watchkeeper.recovery.config import ProcessAction

log = logging.getLogger(__name__)

_KILL_WAIT = 5.0
"""Seconds a SIGKILLed program may take to be gone (normally microseconds); real time."""
_READ_SIZE = 64 * 1024


class ProgramState(enum.StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    """Started less than `startsecs` ago."""
    RUNNING = "running"
    BACKOFF = "backoff"
    """Waiting before the next start after failed starts."""
    STOPPING = "stopping"
    EXHAUSTED = "exhausted"
    """Gave up after too many restarts; `restart()` tries again."""


@dataclass(frozen=True, slots=True)
class ProgramStatus:
    """What the API shows of a supervised program."""

    name: str
    state: ProgramState
    pid: int | None
    uptime: float | None
    """Seconds since the running instance started."""
    restarts: int
    """Automatic restarts since Watchkeeper started supervising it."""
    last_exit: int | None
    """Exit code of the last instance; negative: killed by that signal."""
    adopted: bool = False
    """The running instance was started by an earlier Watchkeeper and adopted."""


class RotatingFile:
    """Append-only file rotated by size: `path` → `path.1` → ... → `path.<backups>`."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = None
        self._size = 0

    def _open(self) -> IO[bytes]:
        if self._file is None:
            # Unbuffered: what a crashing program wrote last is what one needs to read.
            self._file = self.path.open("ab", buffering=0)
            self._size = self._file.tell()
        return self._file

    def rotate_if_full(self) -> None:
        """Rotate now if the file has reached `max_bytes`."""
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_size >= self.max_bytes:
                self._rotate()

    def _rotate(self) -> None:
        self.close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.path.exists():
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def write(self, data: bytes) -> None:
        while data:
            file = self._open()
            room = self.max_bytes - self._size
            if room <= 0:
                self._rotate()
                continue
            chunk, data = data[:room], data[room:]
            file.write(chunk)
            self._size += len(chunk)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _Child:
    """One running instance: its process, the pidfd that says it exited, its output pipes."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes] | None,
        loop: asyncio.AbstractEventLoop,
        outputs: list[tuple[int, RotatingFile]],
        pid: int | None = None,
    ) -> None:
        self.proc = proc
        """None: an adopted instance (not our child: its exit code is not ours to read)."""
        resolved = proc.pid if proc is not None else pid
        if resolved is None:
            raise ValueError("a child needs a process or a pid")
        self.pid: int = resolved
        self.exited = asyncio.Event()
        self.returncode: int | None = None
        self._loop = loop
        self._pidfd: int | None = os.pidfd_open(self.pid)
        loop.add_reader(self._pidfd, self._on_exit)
        self._outputs: dict[int, RotatingFile] = {}
        for fd, sink in outputs:
            os.set_blocking(fd, False)
            self._outputs[fd] = sink
            loop.add_reader(fd, self._on_output, fd)

    def _on_exit(self) -> None:
        self._close_pidfd()
        # The pidfd is readable once the process is a zombie: this reaps it without blocking.
        self.returncode = self.proc.poll() if self.proc is not None else None
        self.exited.set()

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    def _on_output(self, fd: int) -> None:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            sink = self._outputs[fd]
            try:
                sink.write(data)
            except OSError as exc:
                # A full disk must not stop the program: its output is dropped, not kept
                # unread in the pipe (where it would block the program's writes).
                log.warning("cannot write %s: %s", sink.path, exc)
        else:  # every writer closed it
            self._close_output(fd)

    def _close_output(self, fd: int) -> None:
        if self._outputs.pop(fd, None) is not None:
            self._loop.remove_reader(fd)
            os.close(fd)

    @property
    def done(self) -> bool:
        """Exited and every output pipe closed."""
        return self.exited.is_set() and not self._outputs

    def release(self) -> None:
        """Stop watching the process and its pipes (it keeps running if it still does)."""
        self._close_pidfd()
        for fd in list(self._outputs):
            self._close_output(fd)


def process_identity(pid: int) -> str | None:
    """`boot id:start time` of a live process (None: no such process, or a zombie): the
    same pid with the same identity is the same process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    if not fields or fields[0] in ("Z", "X"):
        return None
    return f"{boot}:{fields[19]}"  # field 22: start time, in clock ticks since boot


def _leads_its_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _signal_group(pgid: int, signum: int) -> None:
    # After the leader is reaped its id stays reserved while any member of the group lives;
    # once the group is empty this is ESRCH.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class Program:
    """One supervised program (see the module docstring)."""

    def __init__(
        self,
        config: ProcessAction,
        *,
        clock: Clock | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self._clock = clock or SystemClock()
        self._log_dir = log_dir
        self.state = ProgramState.STOPPED
        self.pid: int | None = None
        self.restarts = 0
        self.spawns = 0
        """Start attempts, successful or not."""
        self.last_exit: int | None = None
        self.last_error: str | None = None
        """Why the last start failed to run the program at all (not found, no permission)."""
        self._started_at: float | None = None
        self._child: _Child | None = None
        self._leftovers: list[_Child] = []
        """Exited instances whose pipes a descendant still holds open."""
        self._detached: list[subprocess.Popen[bytes]] = []
        """Instances left running by `stop()` (keep_running): still our children, so
        kept here to be reaped once they exit (`detached`)."""
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._restart_now = False
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._window: deque[float] = deque()
        self.identity: str | None = None
        """The running instance's `process_identity` (to adopt it after a restart)."""
        self.adopted = False
        """The running instance was adopted at start (started by an earlier Watchkeeper)."""
        self.on_spawn: Callable[[Program], None] = lambda _program: None
        """Told each time an instance starts or ends (to record it for adoption)."""
        self._stdout = self._sink(config.stdout_log, "out")
        self._stderr = self._sink(config.stderr_log, "err")

    def _sink(self, configured: str | None, stream: str) -> RotatingFile | None:
        cfg = self.config
        if configured is not None:
            path = Path(configured)
        elif self._log_dir is not None:
            path = self._log_dir / f"{self.name}.{stream}.log"
        else:
            return None
        return RotatingFile(path, cfg.log_max_bytes, cfg.log_backups)

    # -- observing ------------------------------------------------------------------------

    def status(self) -> ProgramStatus:
        uptime = None
        if self.pid is not None and self._started_at is not None:
            uptime = self._clock.monotonic() - self._started_at
        return ProgramStatus(
            self.name, self.state, self.pid, uptime, self.restarts, self.last_exit, self.adopted
        )

    def detached(self) -> list[int]:
        """Pids of instances left running by `stop()` that still run (reaps the others)."""
        self._detached = [proc for proc in self._detached if proc.poll() is None]
        return [proc.pid for proc in self._detached]

    def _set(self, state: ProgramState) -> None:
        self.state = state
        self._notify()

    def _notify(self) -> None:
        # Wake everyone waiting on the last change; later waiters wait for the next one.
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[Program], bool]) -> None:
        """Return once `predicate(self)` holds (checked at each change; bound it with
        `asyncio.timeout`)."""
        while not predicate(self):
            await self._changed.wait()

    # -- running --------------------------------------------------------------------------

    async def start(self, recorded: tuple[int, str] | None = None) -> None:
        """Start supervising; return once the first start was attempted. `recorded`: the
        (pid, identity) of an instance an earlier Watchkeeper started, to adopt (when left
        running on purpose) or to stop before starting cleanly."""
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._window.clear()
        adopted = await self._take_over(recorded) if recorded is not None else None
        spawns = self.spawns
        self._task = asyncio.create_task(self._run(adopted), name=f"supervise {self.name}")
        await self.wait_for(lambda p: p.spawns > spawns or p.adopted or p._task_done())

    async def _take_over(self, recorded: tuple[int, str]) -> _Child | None:
        pid, identity = recorded
        if process_identity(pid) != identity or not _leads_its_group(pid):
            return None  # gone (or its pid reused by another process)
        if self.config.keep_running:
            try:
                child = _Child(None, asyncio.get_running_loop(), [], pid=pid)
            except OSError:
                return None
            log.info("%s: adopted the running instance (pid %d)", self.name, pid)
            self._child, self.pid, self.identity, self.adopted = child, pid, identity, True
            self._started_at = self._clock.monotonic() - _age(pid)
            self._set(ProgramState.RUNNING)
            return child
        # Its output pipe died with the last Watchkeeper: stop it, start it cleanly.
        log.info("%s: stopping the instance left behind (pid %d)", self.name, pid)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return None
        loop = asyncio.get_running_loop()
        gone = asyncio.Event()
        loop.add_reader(pidfd, gone.set)
        try:
            _signal_group(pid, self.config.stop_signum)
            if not await self._clock.wait(gone, self.config.stop_timeout.total_seconds()):
                _signal_group(pid, signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_KILL_WAIT):
                        await gone.wait()
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        _signal_group(pid, signal.SIGKILL)  # what it left in its group
        return None

    def _task_done(self) -> bool:
        return self._task is None or self._task.done()

    async def _run(self, adopted: _Child | None = None) -> None:
        quick_failures = 0
        while not self._stopping:
            self._restart_now = False  # a restart asked for during a backoff wait is this one
            child: _Child | None
            if adopted is not None:  # started by an earlier Watchkeeper, running since
                taken, adopted, quick, child = adopted, None, False, None
                self._set(ProgramState.RUNNING)
                await taken.exited.wait()
                self._reap(taken)
            else:
                self._set(ProgramState.STARTING)
                child = self._spawn()
                quick = True
            if child is not None:
                startsecs = self.config.startsecs.total_seconds()
                quick = await self._clock.wait(child.exited, startsecs)
                if not quick:
                    quick_failures = 0
                    self._set(ProgramState.RUNNING)
                    await child.exited.wait()
                self._reap(child)
            if self._stopping:
                break
            if self._restart_now:  # asked for (restart()): not a crash, not counted
                self._restart_now = False
                quick_failures = 0
                continue
            if not self._budget_left():
                self._set(ProgramState.EXHAUSTED)
                log.warning(
                    "%s: gave up after %d restarts within %s",
                    self.name,
                    self.config.max_attempts,
                    format_duration(self.config.within),
                )
                return
            self.restarts += 1
            quick_failures = quick_failures + 1 if quick else 0
            if quick_failures > 1:
                delay = min(
                    self.config.max_backoff.total_seconds(),
                    self.config.backoff.total_seconds() * 2 ** (quick_failures - 2),
                )
                self._wake.clear()
                self._set(ProgramState.BACKOFF)
                await self._clock.wait(self._wake, delay)
        self._set(ProgramState.STOPPED)

    def _budget_left(self) -> bool:
        now = self._clock.monotonic()
        horizon = now - self.config.within.total_seconds()
        while self._window and self._window[0] <= horizon:
            self._window.popleft()
        if len(self._window) >= self.config.max_attempts:
            return False
        self._window.append(now)
        return True

    def _spawn(self) -> _Child | None:
        cfg = self.config
        self.spawns += 1
        loop = asyncio.get_running_loop()
        pipes: list[tuple[int, RotatingFile]] = []
        targets: list[int] = []
        opened: list[int] = []
        try:
            for sink in (self._stdout, self._stderr):
                if sink is None:
                    targets.append(subprocess.DEVNULL)
                elif cfg.keep_running:
                    # Straight to the file: the program must not depend on our pipe.
                    sink.rotate_if_full()
                    fd = os.open(sink.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                    opened.append(fd)
                    targets.append(fd)
                else:
                    read_end, write_end = os.pipe()
                    opened.append(write_end)
                    pipes.append((read_end, sink))
                    targets.append(write_end)
            proc = subprocess.Popen(
                cfg.command,
                stdin=subprocess.DEVNULL,
                stdout=targets[0],
                stderr=targets[1],
                cwd=cfg.cwd,
                env={**os.environ, **cfg.env} if cfg.env else None,
                start_new_session=True,
            )
        except OSError as exc:
            for read_end, _ in pipes:
                os.close(read_end)
            self.last_error = f"cannot run {cfg.command[0]}: {exc.strerror or exc}"
            log.error("%s: %s", self.name, self.last_error)
            self._notify()
            return None
        finally:
            for fd in opened:  # the child has its copies
                os.close(fd)
        try:
            child = _Child(proc, loop, pipes)
        except OSError as exc:  # no pidfd (Linux before 5.3): we could not notice its exit
            proc.kill()
            proc.wait()
            for read_end, _ in pipes:
                os.close(read_end)
            self.last_error = f"cannot watch {cfg.command[0]}: {exc.strerror or exc}"
            log.error("%s: %s", self.name, self.last_error)
            self._notify()
            return None
        self._child = child
        self.pid = child.pid
        self.identity = process_identity(child.pid)
        self.adopted = False
        self.last_error = None
        self._started_at = self._clock.monotonic()
        self._notify()
        self.on_spawn(self)
        return child

    def _reap(self, child: _Child) -> None:
        self.last_exit = child.returncode
        self.pid = None
        self.identity = None
        self.adopted = False
        self._child = None
        self.on_spawn(self)
        # What the program left in its group would hold its port and pipes.
        _signal_group(child.pid, signal.SIGKILL)
        self._leftovers = [c for c in self._leftovers if not c.done]
        if not child.done:
            self._leftovers.append(child)
        self._notify()

    async def _terminate(self, child: _Child) -> None:
        """stop_signal to the group, SIGKILL after stop_timeout; return once it exited."""
        self._set(ProgramState.STOPPING)
        _signal_group(child.pid, self.config.stop_signum)
        if not await self._clock.wait(child.exited, self.config.stop_timeout.total_seconds()):
            _signal_group(child.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_KILL_WAIT):
                    await child.exited.wait()

    async def restart(self) -> None:
        """Stop the running instance (if any) and start it again now; lifts a lock-out."""
        if self._task is None or self._task.done():
            await self.start()
            return
        spawns = self.spawns
        self._restart_now = True
        self._wake.set()  # out of a backoff wait
        if (child := self._child) is not None:
            await self._terminate(child)
        await self.wait_for(lambda p: p.spawns > spawns or p._task_done())

    async def stop(self) -> None:
        """Stop supervising: stop the program (unless `keep_running`), release everything."""
        self._stopping = True
        self._wake.set()
        child = self._child
        if child is not None and not self.config.keep_running:
            await self._terminate(child)
            _signal_group(child.pid, signal.SIGKILL)  # whatever ignored stop_signal
        if self._task is not None:
            if child is not None and not self.config.keep_running:
                # It saw the exit: let it record it (last_exit) before it is gone.
                await asyncio.wait([self._task], timeout=1.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if child is not None:
            if self.config.keep_running and not child.exited.is_set():
                log.info("%s: left running (pid %d)", self.name, child.pid)
                if child.proc is not None:
                    self._detached.append(child.proc)
            child.release()
        for leftover in self._leftovers:
            leftover.release()
        self._leftovers.clear()
        self._child = None
        self.pid = None
        for sink in (self._stdout, self._stderr):
            if sink is not None:
                sink.close()
        self._set(ProgramState.STOPPED)


class Supervisor:
    """All supervised programs; `stop()` stops every one of them."""

    def __init__(self, *, clock: Clock | None = None, log_dir: Path | None = None) -> None:
        self._clock = clock or SystemClock()
        self._log_dir = log_dir
        self.programs: dict[str, Program] = {}

    def add(self, config: ProcessAction) -> Program:
        if config.name in self.programs:
            raise ValueError(f"program {config.name!r} is already supervised")
        program = Program(config, clock=self._clock, log_dir=self._log_dir)
        self.programs[config.name] = program
        return program

    def get(self, name: str) -> Program:
        """The program called `name`; KeyError if there is none."""
        return self.programs[name]

    async def start(self, recorded: dict[str, tuple[int, str]] | None = None) -> None:
        """Start every program; `recorded`: instances an earlier Watchkeeper left (see
        `Program.start`)."""
        for name, program in self.programs.items():
            await program.start((recorded or {}).get(name))

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.programs.values()))

    def status(self) -> list[ProgramStatus]:
        return [p.status() for p in self.programs.values()]


def _age(pid: int) -> float:
    """Seconds since the process started (0 when unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError):
        return 0.0
    ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
    return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))


__all__ = [
    "Program",
    "ProgramState",
    "ProgramStatus",
    "RotatingFile",
    "Supervisor",
    "process_identity",
]
