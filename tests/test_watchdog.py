"""The dead man's switch against real receivers on loopback: a plain ping receiver, and a
second Watchkeeper whose heartbeat check goes down when the first one stalls."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiohttp import web
from pydantic import ValidationError

from tests.support.clock import FakeClock, run_until
from tests.support.servers import Server, free_port, wait_until
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.core.domain import Status
from watchkeeper.http.factory import create_app


class PingReceiver(Server):
    """Answers every request with `reply_status` and records its method and path."""

    def __init__(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._ping)
        self.hits: list[tuple[str, str]] = []
        self.reply_status = 200
        self._arrived = asyncio.Condition()
        super().__init__(app)

    async def _ping(self, request: web.Request) -> web.Response:
        self.hits.append((request.method, request.path))
        async with self._arrived:
            self._arrived.notify_all()
        return web.Response(status=self.reply_status, text="OK")

    async def wait_for_hits(self, count: int) -> None:
        async with asyncio.timeout(5):
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.hits) >= count)


@pytest.fixture
async def receiver() -> AsyncIterator[PingReceiver]:
    server = PingReceiver()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def make_config(tmp_path: Path, name: str = "wk", **extra: Any) -> Config:
    return Config.model_validate(
        {"storage": {"url": f"sqlite:///{tmp_path / f'{name}.db'}"}, **extra}
    )


@pytest.fixture
async def start() -> AsyncIterator[Any]:
    runtimes: list[Runtime] = []

    async def started(config: Config, clock: FakeClock) -> Runtime:
        runtime = Runtime(config, clock=clock)
        await runtime.start()
        runtimes.append(runtime)
        return runtime

    yield started
    for runtime in reversed(runtimes):
        await runtime.stop()


def status(runtime: Runtime, check: str) -> Status | None:
    state = runtime.states.get(check)
    return state.status if state is not None else None


def test_the_watchdog_url_must_be_http() -> None:
    with pytest.raises(ValidationError, match="http:// or https://"):
        Config.model_validate({"watchdog": {"url": "ftp://x/ping"}})
    assert Config().watchdog is None


async def test_it_pings_every_interval_only_while_the_core_loops_run(
    tmp_path: Path, receiver: PingReceiver, start: Any
) -> None:
    clock = FakeClock()
    url = f"{receiver.url}/ping/{uuid.uuid4()}"
    runtime = await start(make_config(tmp_path, watchdog={"url": url, "interval": "1m"}), clock)
    watchdog = runtime.watchdog
    assert watchdog is not None
    # Each step waits for the beat to end: the loop then parks on the clock at once.
    await wait_until(lambda: watchdog.pings == 1, 5, "the ping at start")
    clock.advance(60)
    await wait_until(lambda: watchdog.pings == 2, 5, "the ping a minute on")
    assert receiver.hits == [("GET", url.removeprefix(receiver.url))] * 2
    assert watchdog.last_ping_at == clock.now()

    await runtime.scheduler.stop()  # stalled: the outside heartbeat must go late
    for beat in (3, 4, 5):
        clock.advance(60)
        await wait_until(lambda n=beat: watchdog.beats == n, 5, "a beat held back")
    assert watchdog.held_back == "scheduler not running"
    assert len(receiver.hits) == 2 and watchdog.pings == 2

    runtime.scheduler.start()
    clock.advance(60)
    await wait_until(lambda: watchdog.pings == 3, 5, "pinging again")
    assert watchdog.held_back is None and len(receiver.hits) == 3


async def test_a_failing_ping_is_logged_and_tried_at_the_next_interval(
    tmp_path: Path, receiver: PingReceiver, start: Any
) -> None:
    clock = FakeClock()
    receiver.reply_status = 503
    runtime = await start(
        make_config(
            tmp_path, watchdog={"url": f"{receiver.url}/hc", "interval": "30s", "method": "POST"}
        ),
        clock,
    )
    watchdog = runtime.watchdog
    assert watchdog is not None
    await receiver.wait_for_hits(1)
    await wait_until(lambda: watchdog.last_error, 5, "the failure noted")
    assert watchdog.last_error == "ValueError: HTTP 503" and watchdog.pings == 0
    receiver.reply_status = 200
    clock.advance(30)
    await receiver.wait_for_hits(2)
    assert receiver.hits == [("POST", "/hc"), ("POST", "/hc")]
    await wait_until(lambda: watchdog.pings == 1, 5, "the ping counted")
    assert watchdog.last_error is None


async def test_two_instances_a_stalled_one_goes_down_on_the_other(
    tmp_path: Path, start: Any
) -> None:
    # B watches A: a heartbeat check that A's watchdog pings at B's /ping/<uuid>.
    peer = str(uuid.uuid4())
    b_clock = FakeClock()
    b_config = make_config(
        tmp_path,
        "b",
        checks=[
            {"name": "peer", "type": "heartbeat", "period": "1m", "grace": "30s", "uuid": peer}
        ],
    )
    b = await start(b_config, b_clock)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(b_config, runtime=b),
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="off",
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, 5, "B listening")
        a_clock = FakeClock()
        a = await start(
            make_config(
                tmp_path,
                "a",
                watchdog={"url": f"http://127.0.0.1:{port}/ping/{peer}", "interval": "1m"},
            ),
            a_clock,
        )
        await wait_until(lambda: status(b, "peer") is Status.UP, 5, "A's ping on B")

        await a.scheduler.stop()  # A stalls: it stops pinging, B's deadline passes
        a_clock.advance(60)
        assert a.watchdog is not None
        await wait_until(lambda: a.watchdog and a.watchdog.held_back, 5, "A holding back")
        await run_until(b_clock, b_clock.now() + b_config.checks[0].grace * 4, loops=1)
        await wait_until(lambda: status(b, "peer") is Status.DOWN, 5, "A down on B")
    finally:
        server.should_exit = True
        await serving
