"""uvicorn, owned by `watchkeeper run`, ending with exit code 0 on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import uvicorn

from watchkeeper.core.sdnotify import Liveness, Notifier


class GracefulServer(uvicorn.Server):
    """uvicorn re-raises the caught signal after shutdown (exit 143/130); a service manager
    should instead see a clean exit 0 after a requested stop.

    `before_shutdown` runs as soon as the stop begins: uvicorn waits for open connections
    before the app's own shutdown, so long-lived ones (event streams) must be ended first.

    `on_listening` runs once the app's lifespan has started and the sockets listen (uvicorn
    starts the lifespan before it binds), before systemd is told READY=1."""

    def __init__(
        self,
        config: uvicorn.Config,
        before_shutdown: Callable[[], None],
        on_hangup: Callable[[], Coroutine[Any, Any, None]] | None = None,
        on_listening: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._before_shutdown = before_shutdown
        self._on_hangup = on_hangup
        self._on_listening = on_listening
        self._hangups: set[asyncio.Task[None]] = set()
        self._notifier: Notifier | None = None
        self._status: Callable[[], str] = lambda: "serving"
        self._stalled: Liveness = lambda: None

    def notify_systemd(self, status: Callable[[], str], stalled: Liveness) -> None:
        """Tell systemd READY=1 (with `status()`) once serving, WATCHDOG=1 while `stalled()`
        is None, STOPPING=1 when the stop begins; see watchkeeper.core.sdnotify."""
        self._notifier = Notifier()
        self._status, self._stalled = status, stalled

    async def serve(self, sockets: Any = None) -> None:
        try:
            await super().serve(sockets)
        finally:  # also when start-up fails (uvicorn exits) or the loop is torn down
            if self._notifier is not None:
                await self._notifier.close()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        # The app's lifespan (the runtime) has started and the sockets listen.
        if self.started and not self.should_exit and self._on_listening is not None:
            self._on_listening()
        if self.started and not self.should_exit and self._notifier is not None:
            self._notifier.ready(self._status(), self._stalled)
        if self.started and self._on_hangup is not None:
            # Only once the runtime runs: a SIGHUP before then keeps its default (ends us).
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hangup)

    def _hangup(self) -> None:
        """SIGHUP: run `on_hangup` (a config reload) as a task; a held reference keeps it
        from being collected before it ends."""
        assert self._on_hangup is not None
        task = asyncio.get_running_loop().create_task(self._on_hangup(), name="sighup")
        self._hangups.add(task)
        task.add_done_callback(self._hangups.discard)

    async def shutdown(self, sockets: Any = None) -> None:
        if self._on_hangup is not None:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._notifier is not None:
            await self._notifier.stopping()
        self._before_shutdown()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
