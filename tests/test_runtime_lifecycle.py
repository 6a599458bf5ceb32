"""The composition root's lifecycle: a start that fails half-way leaves nothing running or open."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest
import uvicorn

from tests.conftest import PG_ADMIN_DSN
from tests.support.servers import wait_until
from watchkeeper.app import Runtime, Step
from watchkeeper.auth.workers import PasswordWorkers
from watchkeeper.config.loader import Config
from watchkeeper.http.factory import create_app
from watchkeeper.http.server import GracefulServer


def config(db_url: str) -> Config:
    return Config.model_validate(
        {
            "storage": {"url": db_url},
            "checks": [
                {"name": "web", "type": "http", "url": "http://127.0.0.1:9/", "interval": "1h"},
                {"name": "job", "type": "heartbeat", "period": "1h", "grace": "5m"},
            ],
            "notifications": [{"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/"}],
        }
    )


def password_threads() -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith(PasswordWorkers.THREAD_PREFIX) and t.is_alive()
    ]


async def open_connections(db_url: str) -> int:
    """Connections the runtime still holds to its database (aiosqlite: one thread each)."""
    if db_url.startswith("sqlite"):
        return sum(
            1
            for t in threading.enumerate()
            if "_connection_worker_thread" in t.name and t.is_alive()
        )
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        return int(
            await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                db_url.rsplit("/", 1)[1],
            )
        )
    finally:
        await admin.close()


async def assert_nothing_left(
    runtime: Runtime, before: set[asyncio.Task[Any]], db_url: str
) -> None:
    left = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert not left, f"tasks still running: {sorted(t.get_name() for t in left)}"
    assert runtime.http.closed
    assert not runtime.started
    assert password_threads() == []
    await wait_until(
        lambda: _none(open_connections(db_url)), 10, "the database connections to close"
    )


async def _none(count: Any) -> bool:
    return await count == 0


async def test_a_start_failing_after_the_tasks_started_stops_them_all(db_url: str) -> None:
    # Everything but the scheduler has started: the database, the HTTP session, the
    # password pool (in use), the writer, outbox, rules, dispatcher and heartbeat loops.
    runtime = Runtime(config(db_url))
    before = asyncio.all_tasks()
    await runtime.passwords.run(sum, [1, 2])  # the pool's thread exists
    assert password_threads()

    def refuse() -> None:
        raise RuntimeError("the scheduler cannot start")

    runtime.scheduler.start = refuse  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="the scheduler cannot start"):
        await runtime.start()

    await assert_nothing_left(runtime, before, db_url)


async def test_a_step_that_fails_while_loading_stops_what_had_started(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreadable(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("the ping key cannot be read")

    monkeypatch.setattr("watchkeeper.app.load_ping_key", unreadable)
    runtime = Runtime(config(db_url))
    before = asyncio.all_tasks()
    with pytest.raises(OSError, match="the ping key cannot be read"):
        await runtime.start()

    await assert_nothing_left(runtime, before, db_url)
    # The runtime's own stop after a failed start has nothing left to do, and says so quietly.
    await runtime.stop()


async def _raises() -> None:
    raise RuntimeError("cannot stop")


async def _hangs() -> None:
    await asyncio.Event().wait()


@pytest.mark.parametrize("stop", [_raises, _hangs], ids=["raises", "hangs"])
async def test_a_step_whose_stop_fails_or_hangs_does_not_keep_the_others_open(
    sqlite_url: str, stop: Any, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime(config(sqlite_url))
    before = asyncio.all_tasks()

    async def start() -> None:
        pass

    runtime.steps.insert(3, Step("stubborn", start, stop, stop_timeout=0.2))
    await runtime.start()
    await runtime.stop()

    await assert_nothing_left(runtime, before, sqlite_url)
    assert any("stopping stubborn" in m for m in caplog.messages)


async def test_run_on_a_port_in_use_leaves_nothing_open(sqlite_url: str) -> None:
    # What `watchkeeper run` does: the app's lifespan starts the runtime, then uvicorn
    # cannot bind and exits; the runtime must have been stopped all the same.
    cfg = config(sqlite_url)
    runtime = Runtime(cfg)
    before = asyncio.all_tasks()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = GracefulServer(
            uvicorn.Config(
                create_app(cfg, runtime=runtime),
                host="127.0.0.1",
                port=taken.getsockname()[1],
                log_config=None,
                lifespan="on",
            ),
            before_shutdown=runtime.changes.close,
        )
        with pytest.raises(SystemExit):
            await server.serve()

    await assert_nothing_left(runtime, before, sqlite_url)
