"""healthchecks.io-compatible ping endpoints for heartbeat checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from watchkeeper.api.deps import get_runtime
from watchkeeper.app import Runtime
from watchkeeper.auth.roles import PUBLIC
from watchkeeper.heartbeat.monitor import MAX_LOG_BYTES, PingKind

# Cron jobs ping without credentials: the unguessable UUID (or the check name) is the key.
router = APIRouter(tags=["heartbeats"], dependencies=[Depends(PUBLIC)])

_METHODS = ["GET", "HEAD", "POST"]
# Cron wrappers and browsers (fetch from a page) both ping; allow any origin like healthchecks.
_HEADERS = {"Access-Control-Allow-Origin": "*"}

_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Awaitable[PlainTextResponse]])


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _text("No heartbeat check has this key")}


async def _body(request: Request) -> bytes:
    """At most MAX_LOG_BYTES of the body; the rest is read and dropped."""
    kept = bytearray()
    async for chunk in request.stream():
        if len(kept) < MAX_LOG_BYTES:
            kept.extend(chunk[: MAX_LOG_BYTES - len(kept)])
    return bytes(kept)


async def _ping(
    rt: Runtime, request: Request, key: str, kind: PingKind, exit_code: int | None = None
) -> PlainTextResponse:
    monitor = rt.heartbeats
    check = monitor.resolve(key) if monitor is not None else None
    if check is None or monitor is None:
        # Same answer for every unknown key: which names exist is not revealed.
        return PlainTextResponse("not found", status_code=404, headers=_HEADERS)
    body = await _body(request) if request.method == "POST" else b""
    source = request.client.host if request.client else None
    await monitor.ping(check, kind, exit_code=exit_code, body=body, source=source)
    return PlainTextResponse("OK", headers=_HEADERS)


def _route(
    path: str, summary: str, responses: dict[int | str, dict[str, Any]] | None = None
) -> Callable[[_Endpoint], _Endpoint]:
    """One route per method, each with its own operation id (`ping_fail_head`, ...)."""

    def register(endpoint: _Endpoint) -> _Endpoint:
        for method in _METHODS:
            router.add_api_route(
                path,
                endpoint,
                methods=[method],
                summary=summary,
                operation_id=f"{endpoint.__name__}_{method.lower()}",
                response_class=PlainTextResponse,
                responses=responses or _NOT_FOUND,
            )
        return endpoint

    return register


@_route("/ping/{key}", "Report success")
async def ping_success(
    key: str, request: Request, rt: Runtime = Depends(get_runtime)
) -> PlainTextResponse:
    return await _ping(rt, request, key, PingKind.SUCCESS)


@_route("/ping/{key}/start", "Report that a run started")
async def ping_start(
    key: str, request: Request, rt: Runtime = Depends(get_runtime)
) -> PlainTextResponse:
    return await _ping(rt, request, key, PingKind.START)


@_route("/ping/{key}/fail", "Report failure")
async def ping_fail(
    key: str, request: Request, rt: Runtime = Depends(get_runtime)
) -> PlainTextResponse:
    return await _ping(rt, request, key, PingKind.FAIL)


@_route("/ping/{key}/log", "Attach a log; no state change")
async def ping_log(
    key: str, request: Request, rt: Runtime = Depends(get_runtime)
) -> PlainTextResponse:
    return await _ping(rt, request, key, PingKind.LOG)


@_route(
    "/ping/{key}/{exit_code}",
    "Report a job's exit status (0 = success)",
    responses={**_NOT_FOUND, 400: _text("The exit status is not 0-255")},
)
async def ping_exit_code(
    key: str, exit_code: int, request: Request, rt: Runtime = Depends(get_runtime)
) -> PlainTextResponse:
    if not 0 <= exit_code <= 255:
        return PlainTextResponse("exit status must be 0-255", status_code=400, headers=_HEADERS)
    kind = PingKind.SUCCESS if exit_code == 0 else PingKind.FAIL
    return await _ping(rt, request, key, kind, exit_code)
