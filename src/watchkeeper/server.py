"""uvicorn, owned by `watchkeeper run`, ending with exit code 0 on SIGTERM/SIGINT."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import uvicorn


class GracefulServer(uvicorn.Server):
    """uvicorn re-raises the caught signal after shutdown (exit 143/130); a service manager
    should instead see a clean exit 0 after a requested stop."""

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
