"""healthchecks.io-compatible ping endpoints for heartbeat checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from watchkeeper.core.ratelimit import retry_after
from watchkeeper.engine.heartbeat.monitor import MAX_LOG_BYTES
from watchkeeper.http import problems
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import PUBLIC, Role, require
from watchkeeper.services import Services

# Cron jobs ping without credentials: the unguessable UUID (or ping key) is the secret.
_pings = APIRouter(tags=["heartbeats"], dependencies=[Depends(PUBLIC)])
_admin = APIRouter(
    prefix="/api/v1/heartbeats", tags=["heartbeats"], dependencies=[Depends(require(Role.ADMIN))]
)

_METHODS = ["GET", "HEAD", "POST"]
# Cron wrappers and browsers (fetch from a page) both ping; allow any origin like healthchecks.
_HEADERS = {"Access-Control-Allow-Origin": "*"}

_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Awaitable[PlainTextResponse]])


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: _text("No heartbeat check has this key"),
    429: _text("Too many pings for this check or from this address; see Retry-After"),
    503: _text("The ping could not be stored now (too many waiting); see Retry-After"),
}


async def _ping(request: Request, *segments: str) -> PlainTextResponse:
    """What the API routes answer (a ping reaches them only without `PingPath`)."""
    services = get_services(request)
    source = request.client.host if request.client else None

    async def body() -> bytes:
        return await _read_body(request.receive)

    answer = await services.heartbeats.ping(
        segments, source, body if request.method == "POST" else None
    )
    headers = dict(_HEADERS)
    if answer.retry_after is not None:
        headers["Retry-After"] = retry_after(answer.retry_after)
    return PlainTextResponse(answer.text, status_code=answer.status, headers=headers)


def _route(
    path: str, summary: str, responses: dict[int | str, dict[str, Any]] | None = None
) -> Callable[[_Endpoint], _Endpoint]:
    """One route per method, each with its own operation id (`ping_fail_head`, ...)."""

    def register(endpoint: _Endpoint) -> _Endpoint:
        for method in _METHODS:
            _pings.add_api_route(
                path,
                endpoint,
                methods=[method],
                summary=summary,
                operation_id=f"{endpoint.__name__}_{method.lower()}",
                response_class=PlainTextResponse,
                responses=responses or _RESPONSES,
            )
        return endpoint

    return register


_EXIT = {**_RESPONSES, 400: _text("The exit status is not 0-255")}


@_route("/ping/{key}", "Report success (key: the check's UUID, or its name if enabled)")
async def ping_success(key: str, request: Request) -> PlainTextResponse:
    return await _ping(request, key)


@_route("/ping/{key}/start", "Report that a run started")
async def ping_start(key: str, request: Request) -> PlainTextResponse:
    return await _ping(request, key, "start")


@_route("/ping/{key}/fail", "Report failure")
async def ping_fail(key: str, request: Request) -> PlainTextResponse:
    return await _ping(request, key, "fail")


@_route("/ping/{key}/log", "Attach a log; no state change")
async def ping_log(key: str, request: Request) -> PlainTextResponse:
    return await _ping(request, key, "log")


@_route(
    "/ping/{key}/{exit_code}",
    "Report a job's exit status (0 = success); or, when key is the ping key, success of the "
    "check whose name is the second segment",
    responses=_EXIT,
)
async def ping_exit_code(key: str, exit_code: str, request: Request) -> PlainTextResponse:
    return await _ping(request, key, exit_code)


@_route("/ping/{key}/{slug}/start", "With the ping key: report that a run of slug started")
async def ping_slug_start(key: str, slug: str, request: Request) -> PlainTextResponse:
    return await _ping(request, key, slug, "start")


@_route("/ping/{key}/{slug}/fail", "With the ping key: report failure of slug")
async def ping_slug_fail(key: str, slug: str, request: Request) -> PlainTextResponse:
    return await _ping(request, key, slug, "fail")


@_route("/ping/{key}/{slug}/log", "With the ping key: attach a log to slug")
async def ping_slug_log(key: str, slug: str, request: Request) -> PlainTextResponse:
    return await _ping(request, key, slug, "log")


@_route(
    "/ping/{key}/{slug}/{exit_code}",
    "With the ping key: report slug's exit status (0 = success)",
    responses=_EXIT,
)
async def ping_slug_exit_code(
    key: str,
    slug: str,
    exit_code: str,
    request: Request,
) -> PlainTextResponse:
    return await _ping(request, key, slug, exit_code)


class PingKeyOut(BaseModel):
    ping_key: str
    """The secret of `/ping/<ping_key>/<check name>`."""
    source: str
    """`config` (heartbeats.ping_key) or `generated` (made on the first start, kept in the DB)."""
    ping_url_template: str
    """Replace `{name}` with a heartbeat's name."""
    ping_by_name: bool
    """Whether `/ping/<check name>` (no secret) is accepted too."""


@_admin.get(
    "/ping-key",
    response_model=PingKeyOut,
    responses=problems.responses(503),
    summary="The install's heartbeat ping key (admins only)",
)
async def ping_key(services: Services = Depends(get_services)) -> PingKeyOut:
    return PingKeyOut.model_validate(services.heartbeats.ping_key(), from_attributes=True)


class PingPath:
    """Pure ASGI middleware that answers `GET|HEAD|POST /ping/<1 to 3 segments>` itself.

    Pings are the busiest route by far (every cron job of a fleet pings, each on a new
    connection), and what they need is small: the path's segments, the client's address,
    at most MAX_LOG_BYTES of the body. Routing them through FastAPI (route matching, the
    request/response wrappers, the exception and exit-stack middleware) cost more than the
    ping itself. Installed inside the edge (security headers, body limits, authentication
    before bodies, JSON depth: see watchkeeper.http.edge), so those apply to pings as to
    any request; what it skips does nothing for a ping (gzip leaves answers under 2 KiB
    alone, the audit log records no ping). Any other path, method or shape goes on to the
    app, where the API routes above answer it the same way.
    """

    def __init__(self, app: ASGIApp, services: Callable[[], Services]) -> None:
        self.app = app
        self.services = services
        """The services of the current run (a runtime started again builds new ones)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if (
            not path.startswith("/ping/")
            or scope["method"] not in _METHOD_SET
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        segments = path[6:].split("/")
        if len(segments) > 3 or "" in segments:
            await self.app(scope, receive, send)  # the router's answer (404, redirect)
            return
        client = scope.get("client")

        async def body() -> bytes:
            return await _read_body(receive)

        try:
            answer = await self.services().heartbeats.ping(
                segments, client[0] if client else None, body if scope["method"] == "POST" else None
            )
        except ClientDisconnect:
            return  # the client left while sending its log: nobody to answer
        text = answer.text.encode()
        headers = [
            (b"access-control-allow-origin", b"*"),
            (b"content-length", str(len(text)).encode()),
            (b"content-type", b"text/plain; charset=utf-8"),
        ]
        if answer.retry_after is not None:
            headers.append((b"retry-after", retry_after(answer.retry_after).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": text})


async def _read_body(receive: Receive) -> bytes:
    """At most MAX_LOG_BYTES of the body; the rest is read and dropped."""
    kept = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        if len(kept) < MAX_LOG_BYTES:
            kept.extend(message.get("body", b"")[: MAX_LOG_BYTES - len(kept)])
        if not message.get("more_body", False):
            return bytes(kept)


_METHOD_SET = frozenset(_METHODS)

router = APIRouter()
for _router in (_pings, _admin):
    router.include_router(_router)
