"""Live updates: the change feed, and the event stream over a real HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import uvicorn
from fastapi import FastAPI

from tests.support.auth import bearer, token_for
from tests.support.servers import FlippingTarget, free_port, wait_until
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.core.changes import ALERTS, ChangeFeed, check_key
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role
from watchkeeper.http.web.streams import LiveUpdates


async def test_a_subscriber_gets_each_change_once_however_often_it_happened() -> None:
    feed = ChangeFeed()
    with feed.subscribe() as subscription:
        for _ in range(100):
            feed.publish(check_key("api"))
        feed.publish(ALERTS)
        assert await subscription.changes(1) == {"check:api", "alerts"}
        assert await subscription.changes(0.01) == set()  # quiet: empty after the timeout
    assert feed.subscribers == 0


async def test_closing_the_feed_ends_waiting_subscribers_at_once() -> None:
    feed = ChangeFeed()
    with feed.subscribe() as subscription:
        waiting = asyncio.create_task(subscription.changes(60))
        await asyncio.sleep(0)
        feed.close()
        assert await asyncio.wait_for(waiting, 1) is None
    with feed.subscribe() as late:
        assert await late.changes(60) is None


@contextlib.asynccontextmanager
async def served(
    runtime: Runtime, config: Config, app: FastAPI | None = None
) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app or create_app(config, runtime=runtime),
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_config=None,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, 10, "uvicorn serving")
        yield f"http://127.0.0.1:{port}"
    finally:
        runtime.changes.close()  # as `watchkeeper run` does first on shutdown
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def next_event(stream: aiohttp.StreamReader, name: str) -> str:
    """The data of the next event called `name` (other events are skipped)."""
    event, data = None, []
    async for raw in stream:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "":
            if event == name:
                return "\n".join(data)
            event, data = None, []
    raise AssertionError(f"the stream ended before a {name} event")


async def test_a_state_change_reaches_an_open_event_stream_as_the_rendered_row(
    tmp_path: Path, target: FlippingTarget
) -> None:
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
            "checks": [{"name": "api", "type": "http", "url": f"{target.url}/health"}],
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    try:
        headers = bearer(await token_for(runtime, Role.VIEWER))
        async with served(runtime, config) as url, aiohttp.ClientSession(headers=headers) as http:
            refused = await http.get(f"{url}/dashboard/events")
            assert refused.status == 406  # not an EventSource
            async with http.get(
                f"{url}/dashboard/events", headers={"Accept": "text/event-stream"}
            ) as stream:
                assert stream.status == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                target.status = 500
                assert runtime.scheduler is not None
                runtime.scheduler.run_now("api")
                async with asyncio.timeout(5):
                    row = await next_event(stream.content, "check-api")
                    assert 'class="check st-down"' in row
                    assert "HTTP 500" in row
                    # Its uptime already counts the result that turned it red.
                    assert '<td class="uptime">100%</td>' not in row
                    summary = await next_event(stream.content, "summary")
                    assert "<strong>1</strong> down" in summary
                    # The alert follows through the dispatcher's pass.
                    await next_event(stream.content, "alerts")
                # Shutdown ends the stream rather than waiting for the browser to go.
                runtime.changes.close()
                async with asyncio.timeout(5):
                    assert await stream.content.read() is not None
                    assert stream.content.at_eof()
    finally:
        await runtime.stop()


async def test_an_anonymous_event_stream_is_refused(tmp_path: Path) -> None:
    config = Config.model_validate({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}})
    runtime = Runtime(config)
    await runtime.start()
    try:
        async with served(runtime, config) as url, aiohttp.ClientSession() as http:
            response = await http.get(
                f"{url}/dashboard/events", headers={"Accept": "text/event-stream"}
            )
            assert response.status == 401
    finally:
        await runtime.stop()


async def test_pausing_over_the_api_and_adding_a_check_reach_open_streams(
    tmp_path: Path, target: FlippingTarget
) -> None:
    config = Config.model_validate({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}})
    runtime = Runtime(config)
    await runtime.start()
    try:
        admin = bearer(await token_for(runtime, Role.ADMIN))
        async with (
            served(runtime, config) as url,
            aiohttp.ClientSession(headers=admin) as http,
            http.get(f"{url}/dashboard/events", headers={"Accept": "text/event-stream"}) as stream,
        ):
            check = {"name": "api", "type": "http", "url": f"{target.url}/health"}
            created = await http.post(f"{url}/api/v1/checks", json=check)
            assert created.status == 201, await created.text()
            async with asyncio.timeout(5):
                await next_event(stream.content, "checks")  # the overview re-fetches
            paused = await http.post(f"{url}/api/v1/checks/api/pause")
            assert paused.status == 200
            async with asyncio.timeout(5):
                row = await next_event(stream.content, "check-api")
            assert 'class="check st-paused"' in row
    finally:
        await runtime.stop()


async def open_stream(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
    """An event stream whose subscription is in place (its first line has arrived)."""
    response = await http.get(f"{url}/dashboard/events", headers={"Accept": "text/event-stream"})
    assert response.status == 200, await response.text()
    async with asyncio.timeout(5):
        assert await response.content.readline() == b"retry: 2000\n"
    return response


async def test_a_change_is_rendered_once_for_all_open_streams(tmp_path: Path) -> None:
    config = Config.model_validate({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}})
    runtime = Runtime(config)
    await runtime.start()
    try:
        app = create_app(config, runtime=runtime)
        templates = app.state.templates
        renders: list[str] = []
        get_template = templates.get_template

        def counting(name: str, *args: object, **kwargs: object) -> object:
            if name == "_summary.html":
                renders.append(name)
            return get_template(name, *args, **kwargs)

        templates.get_template = counting
        viewers = [bearer(await token_for(runtime, Role.VIEWER, name=f"v{i}")) for i in range(5)]
        async with served(runtime, config, app) as url, contextlib.AsyncExitStack() as stack:
            streams = []
            for headers in viewers:
                http = await stack.enter_async_context(aiohttp.ClientSession(headers=headers))
                streams.append(await stack.enter_async_context(await open_stream(http, url)))
            renders.clear()
            runtime.changes.publish(ALERTS)
            async with asyncio.timeout(5):
                summaries = [await next_event(s.content, "summary") for s in streams]
            assert len(set(summaries)) == 1  # all got the same rendering
            # One render for the change (the dispatcher's own passes may add one), not one
            # per stream.
            assert 1 <= len(renders) < len(streams), renders
    finally:
        await runtime.stop()


async def test_open_streams_are_capped_per_user_and_in_all(tmp_path: Path) -> None:
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
            "server": {"max_event_streams": 3, "max_event_streams_per_user": 2},
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    try:
        app = create_app(config, runtime=runtime)
        alice, bob, carol = [
            bearer(await token_for(runtime, Role.VIEWER, name=n)) for n in ("a", "b", "c")
        ]
        async with (
            served(runtime, config, app) as url,
            aiohttp.ClientSession(headers=alice) as as_alice,
            aiohttp.ClientSession(headers=bob) as as_bob,
            aiohttp.ClientSession(headers=carol) as as_carol,
        ):
            accept = {"Accept": "text/event-stream"}
            first = await open_stream(as_alice, url)
            second = await open_stream(as_alice, url)
            async with as_alice.get(f"{url}/dashboard/events", headers=accept) as third:
                assert third.status == 429
                assert third.headers["content-type"] == "application/problem+json"
                assert "Retry-After" in third.headers
                assert "server.max_event_streams_per_user" in (await third.json())["detail"]
            bobs = await open_stream(as_bob, url)
            async with as_carol.get(f"{url}/dashboard/events", headers=accept) as fourth:
                assert fourth.status == 503
                assert "server.max_event_streams" in (await fourth.json())["detail"]
            # A stream that ends frees its place.
            first.close()
            await wait_until(lambda: app.state.live.open_streams == 2, 5, "a slot freed")
            carols = await open_stream(as_carol, url)
            for stream in (second, bobs, carols):
                stream.close()
            await wait_until(lambda: app.state.live.open_streams == 0, 5, "every slot freed")
    finally:
        await runtime.stop()


async def test_a_slow_stream_gets_the_newest_rendering_of_each_event_once() -> None:
    feed = ChangeFeed()
    renders: list[set[str]] = []

    async def render(keys: set[str]) -> list[tuple[str, str]]:
        renders.append(keys)
        return [(f"check-{k}", k) for k in sorted(keys)] + [("summary", f"v{len(renders)}")]

    live = LiveUpdates(feed, render, max_streams=10, max_per_owner=10)
    slow, other = live.open("alice"), live.open("bob")
    feed.publish("one")
    await wait_until(lambda: len(renders) == 1, 5, "the first change rendered")
    feed.publish("two")
    await wait_until(lambda: len(renders) == 2, 5, "the second change rendered")
    expected = [("check-one", "one"), ("check-two", "two"), ("summary", "v2")]
    assert await slow.next(1) == expected  # the older summary is gone, not queued
    assert await other.next(1) == expected
    assert renders == [{"one"}, {"two"}]  # once per change, not once per stream
    feed.close()
    assert await asyncio.wait_for(slow.next(60), 5) is None
    live.close(slow)
    live.close(other)
    assert live.open_streams == 0
