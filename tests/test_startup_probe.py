"""At start, the checks wait for the HTTP server to listen: uvicorn starts the app's lifespan
(the runtime) before it binds, and a check of Watchkeeper's own API run in between would
find nothing there and page at every restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from tests.support.clock import FakeClock
from tests.support.servers import free_port
from watchkeeper.app import Runtime
from watchkeeper.config.builtin import builtin_config
from watchkeeper.http.factory import create_app
from watchkeeper.http.server import GracefulServer

SELF_PROBE = "check:watchkeeper-api"
"""The scheduler's task running the built-in check of Watchkeeper's own API."""


async def until_parked(clock: FakeClock, task: str, timeout: float = 10) -> None:
    """Wait until `task` waits on `clock` (a check's loop: for its next run)."""
    async with asyncio.timeout(timeout):
        while task not in clock.parked:
            await clock.next_park()


async def test_the_self_probe_runs_first_once_the_server_listens_and_finds_it_up(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = builtin_config(f"127.0.0.1:{port}", f"sqlite:///{tmp_path / 'wk.db'}")
    clock = FakeClock()
    runtime = Runtime(config, clock=clock)
    app = create_app(config, runtime=runtime)

    # The moment the lifespan hands over to uvicorn, which then binds: a check whose run
    # is timed by then may run before anything listens (on a loaded machine it does).
    timed_before_listening: set[str] = set()
    lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def noting_the_timed_checks(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app):
            timed_before_listening.update(t for t in clock.parked if t.startswith("check:"))
            yield

    app.router.lifespan_context = noting_the_timed_checks
    release = runtime.hold_checks_until_listening()
    listening = asyncio.Event()

    def on_listening() -> None:
        release()
        listening.set()

    server = GracefulServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"),
        before_shutdown=runtime.changes.close,
        on_listening=on_listening,
    )
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            await listening.wait()
        assert timed_before_listening == set()

        await until_parked(clock, SELF_PROBE)  # its first run is timed, within 5 s
        clock.advance(5)
        await until_parked(clock, SELF_PROBE)  # ran, handed its result over, waits again

        history = await runtime.services.checks.history("watchkeeper-api")
        assert [r.status for r in history] == ["up"], [r.reason for r in history]
        assert [a.name for a in await runtime.services.alerts.open_alerts()] == []
    finally:
        server.should_exit = True
        async with asyncio.timeout(30):
            await serving
