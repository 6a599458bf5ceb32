"""`/api/v1/recovery`: the configured recovery actions, their runs, run and reset by hand.

There is no route that creates or changes an action: actions (and above all those that run
programs: command, process, systemd, docker, python) come only from the config file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from watchkeeper.http.api.schemas import Limit, Offset, Page
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Principal, Role, require
from watchkeeper.recovery.coordinator import ActionStatus
from watchkeeper.services import Services

router = APIRouter(
    prefix="/api/v1/recovery", tags=["recovery"], dependencies=[Depends(require(Role.VIEWER))]
)
OPERATOR = Depends(require(Role.OPERATOR))


class ProgramOut(BaseModel):
    """A supervised program (`process` actions)."""

    state: str
    pid: int | None
    uptime_seconds: float | None
    restarts: int
    last_exit: int | None


class ActionOut(BaseModel):
    name: str
    type: str
    state: Literal["ready", "running", "cooling_down", "exhausted"]
    attempts: int
    """Attempts within the current window."""
    max_attempts: int
    cooldown_left_seconds: float
    program: ProgramOut | None = None


class RunOut(BaseModel):
    id: str
    action: str
    check: str | None
    trigger: str
    """check, manual or resolved (`on_resolved`)."""
    actor: str | None
    attempt: int
    status: str
    """running, succeeded, failed, timed_out, error, exhausted or interrupted."""
    started_at: datetime
    finished_at: datetime | None
    output: str
    """Redacted, at most 64 KiB."""
    exit_code: int | None
    http_status: int | None
    reason: str


def _action(status: ActionStatus) -> ActionOut:
    program = status.program
    return ActionOut(
        name=status.name,
        type=status.type,
        state=status.state.value,  # type: ignore[arg-type]
        attempts=status.attempts,
        max_attempts=status.max_attempts,
        cooldown_left_seconds=round(status.cooldown_left, 3),
        program=None
        if program is None
        else ProgramOut(
            state=program.state.value,
            pid=program.pid,
            uptime_seconds=program.uptime,
            restarts=program.restarts,
            last_exit=program.last_exit,
        ),
    )


@router.get("", response_model=Page[ActionOut], summary="Recovery actions and their state")
async def list_actions(
    services: Services = Depends(get_services), limit: Limit = 100, offset: Offset = 0
) -> Page[ActionOut]:
    return Page.of([_action(s) for s in services.recovery.actions()], limit, offset)


@router.get("/runs", response_model=Page[RunOut], summary="Recovery runs, newest first")
async def list_runs(
    services: Services = Depends(get_services),
    action: str | None = Query(default=None, max_length=100),
    check: str | None = Query(default=None, max_length=100),
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[RunOut]:
    items, total = await services.recovery.runs(
        action=action, check=check, limit=limit, offset=offset
    )
    return Page(items=[RunOut(**r) for r in items], total=total, limit=limit, offset=offset)


@router.get("/runs/{run_id}", response_model=RunOut, summary="One recovery run")
async def get_run(run_id: str, services: Services = Depends(get_services)) -> RunOut:
    return RunOut(**await services.recovery.run(run_id))


@router.get("/{name}", response_model=ActionOut, summary="One recovery action and its state")
async def get_action(name: str, services: Services = Depends(get_services)) -> ActionOut:
    return _action(services.recovery.action(name))


@router.post(
    "/{name}/run",
    response_model=RunOut,
    status_code=202,
    summary="Run a recovery action now (its guard still applies: 409 when it refuses)",
)
async def run_action(
    name: str, principal: Principal = OPERATOR, services: Services = Depends(get_services)
) -> RunOut:
    return RunOut(**await services.recovery.start(name, actor=principal.name))


@router.post(
    "/{name}/reset",
    response_model=ActionOut,
    summary="Lift an action's lock-out and forget its attempts",
    dependencies=[OPERATOR],
)
async def reset_action(name: str, services: Services = Depends(get_services)) -> ActionOut:
    return _action(await services.recovery.reset(name))
