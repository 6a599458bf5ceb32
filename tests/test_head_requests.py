"""HEAD is answered for every GET route, without the body (RFC 9110 §9.3.2): load
balancers and uptime monitors probe with it, and FastAPI's routes answered 405."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route
from starlette.types import Message

from tests.support.service import running
from watchkeeper.http.edge.head import HeadAsGet


async def test_head_gets_the_head_of_the_get_answer_and_no_body(tmp_path: Path) -> None:
    async with running({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}) as service:
        got = await service.client.get("/health/live")
        head = await service.client.head("/health/live")
        assert head.status_code == got.status_code == 200
        assert head.content == b""
        for name in ("content-type", "content-length", "x-content-type-options"):
            assert head.headers[name] == got.headers[name], name
        # What GET answers otherwise, HEAD answers alike.
        for path in ("/api/v1/checks", "/api/v1/no-such-thing", "/metrics"):
            head = await service.client.head(path)
            assert head.status_code == (await service.client.get(path)).status_code, path
            assert head.content == b"", path


async def test_head_of_a_route_that_takes_no_get_is_refused_as_get_is(tmp_path: Path) -> None:
    async with running({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}) as service:
        login_get = await service.client.get("/api/v1/auth/login")
        login_head = await service.client.head("/api/v1/auth/login")
        assert login_head.status_code == login_get.status_code
        assert login_head.content == b""


async def test_head_of_an_endless_stream_ends_with_its_head() -> None:
    """A server-sent event stream is not kept open for a client that wants headers only:
    the route is stopped once its head is sent, though the client stays connected (a
    keep-alive connection: no disconnect comes)."""

    async def forever(_request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[str]:
            while True:
                yield "data: tick\n\n"
                await asyncio.sleep(0)

        return StreamingResponse(body(), media_type="text/event-stream")

    app = HeadAsGet(Starlette(routes=[Route("/events", forever)]))
    connected = asyncio.Event()  # never set: the client never goes away
    sent: list[Message] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if requests:
            return requests.pop()
        await connected.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "HEAD",
        "scheme": "http", "path": "/events", "raw_path": b"/events", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"test")], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip
    await asyncio.wait_for(app(scope, receive, send), 5)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    assert sent[1]["body"] == b"" and not sent[1].get("more_body", False)
