"""HEAD answered as GET without the body (RFC 9110 §9.3.2: a server that answers GET must
answer HEAD), for every route: load balancers, uptime monitors and `curl -I` probe with it.

FastAPI's routes take only the methods they declare, so `HEAD /health/live` was a 405. The
request goes on as a GET; the response's head is sent as the route made it (status,
Content-Type, Content-Length of the body it would have sent), then an empty body at once,
and the route is stopped at its next send: a stream (server-sent events) is not kept open
for a client that asked for headers only.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _Answered(Exception):
    """The head is sent: the route's body is not wanted."""


class HeadAsGet:
    """Pure ASGI middleware: HEAD runs the GET route and sends its head alone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        answered = False

        async def send_head(message: Message) -> None:
            nonlocal answered
            if answered:
                raise _Answered
            await send(message)
            if message["type"] == "http.response.start":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                answered = True

        try:
            await self.app({**scope, "method": "GET"}, receive, send_head)
        except* _Answered:
            pass
