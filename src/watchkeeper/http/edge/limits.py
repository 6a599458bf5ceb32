"""Request body size limits, enforced before any work is done for the request.

A body whose `Content-Length` is over the limit is refused before the app sees the request
(not a byte of it is read); a streamed (chunked) body is counted as it arrives and refused at
the first chunk past the limit, so at most `limit` bytes of it are ever held.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeeper.config.server import ServerConfig
from watchkeeper.http import problems

LOGIN_BODY_LIMIT = 64 * 1024
"""Login forms and JSON logins: a user name and a password fit in far less."""
LOGIN_PATHS = frozenset({"/auth/login", "/dashboard/login"})
ALERT_INGEST_PATHS = frozenset({"/api/v1/alerts", "/api/v2/alerts"})
"""`POST` here takes Alertmanager's batches: `server.max_alert_body_size`."""

CLOSE = {"Connection": "close"}
"""A refused body is not read to its end: the connection cannot carry another request."""


def size(n: int) -> str:
    """`1 MiB`, `64 KiB` or `1500 bytes`."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def body_limit(config: ServerConfig, method: str, path: str) -> tuple[int, str]:
    """The largest body a request may carry, and the setting that says so."""
    if path in LOGIN_PATHS:
        return min(LOGIN_BODY_LIMIT, config.max_body_size), "the login limit"
    if method == "POST" and path in ALERT_INGEST_PATHS:
        return int(config.max_alert_body_size), "server.max_alert_body_size"
    return int(config.max_body_size), "server.max_body_size"


class BodyTooLarge(HTTPException):
    """Raised by the counting `receive` when a streamed body passes its limit; an HTTP
    exception, so FastAPI passes it on as it is and it is answered as a 413 problem."""

    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(
            413, f"the request body is larger than {size(limit)} ({setting})", headers=CLOSE
        )
        self.limit = limit
        self.problem_extensions = {"limit": limit}


def declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class BodyLimitMiddleware:
    """Pure ASGI: the limit of `body_limit`, on `Content-Length` and on the streamed body."""

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = body_limit(self.config, scope["method"], scope["path"])
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(BodyTooLarge(limit, setting), scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            if received > limit:
                raise BodyTooLarge(limit, setting)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge as exc:
            if started:
                raise
            # Read by a middleware of ours (not the app's exception handlers): answer here.
            await self._refuse(exc, scope, receive, send)

    @staticmethod
    async def _refuse(exc: BodyTooLarge, scope: Scope, receive: Receive, send: Send) -> None:
        response = problems.problem(
            413,
            exc.detail,
            instance=scope["path"],
            headers=exc.headers,
            accept=Headers(scope=scope).get("accept"),
            limit=exc.limit,
        )
        await response(scope, receive, send)
