"""Checks: list, one check, its result history; pause, resume, run now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, StringConstraints

from watchkeeper.app import Runtime
from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.core.changes import check_key
from watchkeeper.http import problems
from watchkeeper.http.api.schemas import CheckOut, LastResult, Page, ResultOut
from watchkeeper.http.deps import get_runtime
from watchkeeper.http.roles import Role, require
from watchkeeper.store import results as result_store
from watchkeeper.store.results import recent_results

LabelMatch = Annotated[str, StringConstraints(pattern=r"^[^=\x00]+=[^\x00]*$")]
"""`key=value`, as `?label=team=core` spells it."""

router = APIRouter(
    prefix="/api/v1/checks", tags=["checks"], dependencies=[Depends(require(Role.VIEWER))]
)


def _check_out(rt: Runtime, config: CheckConfigBase) -> CheckOut:
    state = rt.states.get(config.name)
    last = None
    if state is not None and state.last_status is not None:
        last = LastResult(
            status=state.last_status.value,
            reason=state.last_reason,
            checked_at=state.last_checked_at,
        )
    status = "paused" if state and state.paused else state.status.value if state else "unknown"
    record = rt.heartbeats.record(config.name)
    ping_url = f"{rt.config.server.base_url()}/ping/{record.uuid}" if record else None
    last_ping_at = record.last_ping_at if record else None
    return CheckOut(
        name=config.name,
        type=config.type,
        description=config.description,
        status=status,
        since=state.since if state else None,
        last_result=last,
        interval_seconds=config.interval.total_seconds(),
        timeout_seconds=config.timeout.total_seconds(),
        failure_threshold=config.failure_threshold,
        success_threshold=config.success_threshold,
        severity=config.severity.value,
        component=config.component,
        labels=config.labels,
        depends_on=config.depends_on,
        enabled=config.enabled,
        source="api" if config.name in rt.managed.checks else "config",
        ping_url=ping_url,
        last_ping_at=last_ping_at,
        broken=rt.broken.error("heartbeat", config.name) or rt.broken.error("check", config.name),
    )


def _config_or_404(rt: Runtime, name: str) -> CheckConfigBase:
    config = rt.check_configs.get(name)
    if config is None:
        raise HTTPException(404, f"no check named {name!r}")
    return config


@router.get("", response_model=Page[CheckOut], summary="List checks with their current state")
async def list_checks(
    rt: Runtime = Depends(get_runtime),
    state: Annotated[str | None, Query(description="only checks in this state")] = None,
    component: str | None = None,
    label: Annotated[
        list[LabelMatch] | None,
        Query(description="`key=value`: only checks with this label (repeat: all must match)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[CheckOut]:
    wanted = [tuple(item.split("=", 1)) for item in label or ()]
    configs = [
        c
        for c in rt.check_configs.values()
        if all(c.labels.get(key) == value for key, value in wanted)
    ]
    items = [_check_out(rt, c) for c in configs]
    if state:
        items = [c for c in items if c.status == state]
    if component:
        items = [c for c in items if c.component == component]
    return Page.of(items, limit, offset)


@router.get("/{name}", response_model=CheckOut, summary="One check with its current state")
async def get_check(name: str, rt: Runtime = Depends(get_runtime)) -> CheckOut:
    return _check_out(rt, _config_or_404(rt, name))


@router.get(
    "/{name}/results", response_model=list[ResultOut], summary="Recent results, newest first"
)
async def check_results(
    name: str,
    rt: Runtime = Depends(get_runtime),
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ResultOut]:
    _config_or_404(rt, name)
    await rt.writer.flush()  # so the newest results are visible to the caller
    rows = await recent_results(rt.db, name, limit)
    return [
        ResultOut(
            started_at=r.started_at,
            status=r.status,
            reason=r.reason,
            response_time=r.response_time,
            metrics=r.metrics,
            details=r.details,
        )
        for r in rows
    ]


class CheckAction(BaseModel):
    check: str
    status: str
    queued: bool = False


async def set_paused(rt: Runtime, name: str, paused: bool) -> CheckAction:
    """Pause or resume a check (404 if unknown); shared by the API and the dashboard."""
    config = _config_or_404(rt, name)
    now = rt.clock.now()
    state = rt.pipeline.state_for(config, now)
    if state.paused and not paused and config.push:
        # Before the flag clears, so the deadline never sees the time spent paused.
        await rt.heartbeats.resume(name, now)
    state.paused = paused
    async with rt.db.begin() as conn:
        await result_store.save_state(conn, state.as_row())
    rt.changes.publish(check_key(name))
    return CheckAction(check=name, status="paused" if paused else state.status.value)


@router.post(
    "/{name}/pause",
    response_model=CheckAction,
    dependencies=[Depends(require(Role.OPERATOR))],
    responses=problems.responses(503),
    summary="Pause a check: it stops running until resumed",
)
async def pause_check(name: str, rt: Runtime = Depends(get_runtime)) -> CheckAction:
    return await set_paused(rt, name, True)


@router.post(
    "/{name}/resume",
    response_model=CheckAction,
    dependencies=[Depends(require(Role.OPERATOR))],
    responses=problems.responses(503),
    summary="Resume a paused check",
)
async def resume_check(name: str, rt: Runtime = Depends(get_runtime)) -> CheckAction:
    return await set_paused(rt, name, False)


@router.post(
    "/{name}/run",
    response_model=CheckAction,
    status_code=202,
    dependencies=[Depends(require(Role.OPERATOR))],
    responses=problems.responses(409),
    summary="Run a check now (its schedule is kept)",
)
async def run_check(name: str, rt: Runtime = Depends(get_runtime)) -> CheckAction:
    config = _config_or_404(rt, name)
    if config.push:
        raise HTTPException(409, "a push check runs when its job pings it")
    if not rt.scheduler.run_now(name):
        raise HTTPException(409, "the check is not scheduled (disabled or not started)")
    state = rt.states.get(name)
    return CheckAction(check=name, status=state.status.value if state else "unknown", queued=True)
