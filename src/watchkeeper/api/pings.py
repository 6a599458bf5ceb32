"""healthchecks.io-compatible ping endpoints for heartbeat checks."""

from __future__ import annotations

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


@router.api_route("/ping/{key}", methods=_METHODS, summary="Report success")
async def ping_success(
    key: str, request: Request, rt: Runtime = Depends(get_runtime)
) -> PlainTextResponse:
    return await _ping(rt, request, key, PingKind.SUCCESS)


@router.api_route("/ping/{key}/start", methods=_METHODS, summary="Report that a run started")
async def ping_start(
    key: str, request: Request, rt: Runtime = Depends(get_runtime)
) -> PlainTextResponse:
    return await _ping(rt, request, key, PingKind.START)


@router.api_route("/ping/{key}/fail", methods=_METHODS, summary="Report failure")
async def ping_fail(
    key: str, request: Request, rt: Runtime = Depends(get_runtime)
) -> PlainTextResponse:
    return await _ping(rt, request, key, PingKind.FAIL)


@router.api_route("/ping/{key}/log", methods=_METHODS, summary="Attach a log; no state change")
async def ping_log(
    key: str, request: Request, rt: Runtime = Depends(get_runtime)
) -> PlainTextResponse:
    return await _ping(rt, request, key, PingKind.LOG)


@router.api_route(
    "/ping/{key}/{exit_code}", methods=_METHODS, summary="Report a job's exit status (0 = success)"
)
async def ping_exit_code(
    key: str, exit_code: int, request: Request, rt: Runtime = Depends(get_runtime)
) -> PlainTextResponse:
    if not 0 <= exit_code <= 255:
        return PlainTextResponse("exit status must be 0-255", status_code=400, headers=_HEADERS)
    kind = PingKind.SUCCESS if exit_code == 0 else PingKind.FAIL
    return await _ping(rt, request, key, kind, exit_code)
