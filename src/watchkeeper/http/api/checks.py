"""Checks: list, one check, its result history; pause, resume, run now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, StringConstraints

from watchkeeper.http import problems
from watchkeeper.http.api.schemas import CheckOut, Page, ResultOut
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Role, require
from watchkeeper.services import Services
from watchkeeper.services.checks import CheckChange, CheckView

LabelMatch = Annotated[str, StringConstraints(pattern=r"^[^=\x00]+=[^\x00]*$")]
"""`key=value`, as `?label=team=core` spells it."""

router = APIRouter(
    prefix="/api/v1/checks", tags=["checks"], dependencies=[Depends(require(Role.VIEWER))]
)


def check_out(view: CheckView) -> CheckOut:
    """The API's shape of a check as the service sees it."""
    return CheckOut.model_validate(view, from_attributes=True)


@router.get("", response_model=Page[CheckOut], summary="List checks with their current state")
async def list_checks(
    services: Services = Depends(get_services),
    state: Annotated[str | None, Query(description="only checks in this state")] = None,
    component: str | None = None,
    label: Annotated[
        list[LabelMatch] | None,
        Query(description="`key=value`: only checks with this label (repeat: all must match)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[CheckOut]:
    wanted = [(key, value) for key, value in (item.split("=", 1) for item in label or ())]
    views = services.checks.list_checks(state=state, component=component, labels=wanted)
    items = [check_out(v) for v in views]
    return Page.of(items, limit, offset)


@router.get("/{name}", response_model=CheckOut, summary="One check with its current state")
async def get_check(name: str, services: Services = Depends(get_services)) -> CheckOut:
    return check_out(services.checks.get(name))


@router.get(
    "/{name}/results", response_model=list[ResultOut], summary="Recent results, newest first"
)
async def check_results(
    name: str,
    services: Services = Depends(get_services),
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ResultOut]:
    rows = await services.checks.history(name, limit)
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


def _action(change: CheckChange) -> CheckAction:
    return CheckAction(check=change.check, status=change.status, queued=change.queued)


@router.post(
    "/{name}/pause",
    response_model=CheckAction,
    dependencies=[Depends(require(Role.OPERATOR))],
    responses=problems.responses(503),
    summary="Pause a check: it stops running until resumed",
)
async def pause_check(name: str, services: Services = Depends(get_services)) -> CheckAction:
    return _action(await services.checks.pause(name))


@router.post(
    "/{name}/resume",
    response_model=CheckAction,
    dependencies=[Depends(require(Role.OPERATOR))],
    responses=problems.responses(503),
    summary="Resume a paused check",
)
async def resume_check(name: str, services: Services = Depends(get_services)) -> CheckAction:
    return _action(await services.checks.resume(name))


@router.post(
    "/{name}/run",
    response_model=CheckAction,
    status_code=202,
    dependencies=[Depends(require(Role.OPERATOR))],
    responses=problems.responses(409),
    summary="Run a check now (its schedule is kept)",
)
async def run_check(name: str, services: Services = Depends(get_services)) -> CheckAction:
    return _action(services.checks.run_now(name))
