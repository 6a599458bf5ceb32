"""`/api/v1/recovery`: the configured recovery actions, their runs, run and reset by hand.

There is no route that creates or changes an action: actions (and above all those that run
programs: command, process, systemd, docker, python) come only from the config file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from watchkeeper.http.api.schemas import Limit, Offset, Page
from watchkeeper.http.audit import add_detail
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Principal, Role, require
from watchkeeper.recovery.coordinator import ActionStatus
from watchkeeper.services import Services
from watchkeeper.services.recovery import Verdict

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
    adopted: bool = False
    """Started by an earlier Watchkeeper (`keep_running`) and adopted at this start."""


class ActionOut(BaseModel):
    name: str
    type: str
    state: Literal["ready", "running", "pending_approval", "cooling_down", "exhausted"]
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
    """check, rule, manual, exit (a supervised program exited) or resolved (`on_resolved`)."""
    actor: str | None
    attempt: int
    status: str
    """pending_approval, running, succeeded, failed, timed_out, error, exhausted,
    interrupted, rejected or expired."""
    started_at: datetime
    """When it was triggered (for a runbook waiting for approval: when it was asked)."""
    finished_at: datetime | None
    output: str
    """Redacted, at most 64 KiB; a running runbook's steps so far."""
    exit_code: int | None
    http_status: int | None
    reason: str
    """How it went; for an approved run `approved by NAME: comment`, for a rejected one
    `rejected by NAME: comment`."""
    expires_at: datetime | None = None
    """A run waiting for approval expires (and escalates) then."""


class Decision(BaseModel):
    """An operator's approval or rejection of a runbook run."""

    comment: str = Field(default="", max_length=1000)


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
            adopted=program.adopted,
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
    status: str | None = Query(default=None, max_length=32),
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[RunOut]:
    items, total = await services.recovery.runs(
        action=action, check=check, status=status, limit=limit, offset=offset
    )
    return Page(items=[RunOut(**r) for r in items], total=total, limit=limit, offset=offset)


@router.get("/runs/{run_id}", response_model=RunOut, summary="One recovery run")
async def get_run(run_id: str, services: Services = Depends(get_services)) -> RunOut:
    return RunOut(**await services.recovery.run(run_id))


class _Decide:
    """Approving and rejecting a run read the same request: one dependency for both."""

    def __init__(
        self,
        run_id: str,
        request: Request,
        decision: Decision | None = None,
        principal: Principal = OPERATOR,
        services: Services = Depends(get_services),
    ) -> None:
        self.run_id = run_id
        self.request = request
        self.comment = decision.comment if decision is not None else ""
        self.actor = principal.name
        self.services = services

    async def __call__(self, verdict: Verdict) -> RunOut:
        add_detail(self.request, run=self.run_id, decision=verdict, comment=self.comment)
        run = await self.services.recovery.decide(
            self.run_id, verdict, actor=self.actor, comment=self.comment
        )
        return RunOut(**run)


@router.post(
    "/runs/{run_id}/approve",
    response_model=RunOut,
    summary="Approve a runbook run waiting for approval: it runs now (409 if not waiting)",
)
async def approve_run(decide: _Decide = Depends()) -> RunOut:
    return await decide("approved")


@router.post(
    "/runs/{run_id}/reject",
    response_model=RunOut,
    summary="Reject a runbook run waiting for approval: it ends without running",
)
async def reject_run(decide: _Decide = Depends()) -> RunOut:
    return await decide("rejected")


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
