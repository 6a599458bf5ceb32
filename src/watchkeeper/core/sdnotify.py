"""systemd's notify protocol (sd_notify(3)), without a dependency: readiness, watchdog
keep-alives, stopping and status lines, sent as datagrams to `$NOTIFY_SOCKET`.

Outside systemd (no `NOTIFY_SOCKET`) every call does nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

Liveness = Callable[[], str | None]
"""None while the service works; otherwise what is wrong (it then gets no keep-alive)."""


def notify_address(value: str) -> str | bytes | None:
    """The socket address in `$NOTIFY_SOCKET`: a path, or `@name` for Linux's abstract
    namespace (a leading NUL byte on the wire)."""
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # e.g. vsock:… addresses, which a local service is never given


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between keep-alives (half of `$WATCHDOG_USEC`, as sd_watchdog_enabled(3)
    advises), or None when no watchdog is asked of this process."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    owner = environ.get("WATCHDOG_PID")
    if usec <= 0 or (owner is not None and owner.strip() != str(pid)):
        return None
    return usec / 2_000_000


class Notifier:
    """Sends notify messages to systemd and owns the watchdog task."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = notify_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_every = watchdog_interval(env, os.getpid())
        self._watchdog: asyncio.Task[None] | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """Send `KEY=value` lines in one datagram; False if it could not be sent. Never
        blocks and never raises: a service must not stop because its supervisor is busy."""
        if self.address is None:
            return False
        data = "\n".join(lines).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto(data, self.address)
        except OSError as exc:
            if not self._warned:  # once: a full or missing socket would flood the log
                log.warning("cannot notify systemd at NOTIFY_SOCKET: %s", exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str, alive: Liveness) -> None:
        """The service is up: READY=1, then keep-alives while `alive()` says it works."""
        self.send("READY=1", f"STATUS={status}")
        if self.enabled and self.watchdog_every is not None and self._watchdog is None:
            self._watchdog = asyncio.create_task(
                self._keep_alive(self.watchdog_every, alive), name="systemd-watchdog"
            )

    async def stopping(self) -> None:
        """The service begins to stop: no more keep-alives, then STOPPING=1."""
        await self.close()
        self.send("STOPPING=1", "STATUS=stopping")

    async def close(self) -> None:
        """End the watchdog task (idempotent)."""
        task, self._watchdog = self._watchdog, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_alive(self, every: float, alive: Liveness) -> None:
        stalled: str | None = None
        while True:
            problem = alive()
            if problem is None:
                self.send("WATCHDOG=1", *(["STATUS=running"] if stalled is not None else []))
            else:
                if problem != stalled:
                    # No keep-alive: systemd restarts the service once WatchdogSec passes.
                    log.error("systemd watchdog: %s; no keep-alive sent", problem)
                self.send(f"STATUS=stalled: {problem}")
            stalled = problem
            await asyncio.sleep(every)
