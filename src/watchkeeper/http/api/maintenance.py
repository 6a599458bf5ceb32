"""`/api/v1/maintenances`: windows in which alerts are held (config-file ones are read-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException
from pydantic import BaseModel, ValidationError

from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.http import problems
from watchkeeper.http.api.schemas import Limit, Offset, Page
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Principal, Role, require
from watchkeeper.services import Services
from watchkeeper.services.maintenance import WindowView

router = APIRouter(
    prefix="/api/v1/maintenances",
    tags=["maintenance"],
    dependencies=[Depends(require(Role.VIEWER))],
)
OPERATOR = Depends(require(Role.OPERATOR))


class MaintenanceOut(BaseModel):
    name: str
    source: str
    """`config` (read-only here) or `api`."""
    active: bool
    next_change: datetime | None
    definition: dict[str, Any]
    broken: str | None = None
    """Why the window cannot be evaluated: it then holds no alert back (an alert says so)."""


def _out(view: WindowView) -> MaintenanceOut:
    return MaintenanceOut.model_validate(view, from_attributes=True)


@router.get("", response_model=Page[MaintenanceOut], summary="Maintenance windows")
async def list_windows(
    services: Services = Depends(get_services), limit: Limit = 100, offset: Offset = 0
) -> Page[MaintenanceOut]:
    items = [_out(v) for v in await services.maintenance.list_windows()]
    return Page.of(items, limit, offset)


@router.post(
    "",
    response_model=MaintenanceOut,
    status_code=201,
    responses=problems.responses(409),
    summary="Create a maintenance window (same fields as in the config file)",
)
async def create_window(
    body: dict[str, Any] = Body(),
    services: Services = Depends(get_services),
    who: Principal = OPERATOR,
) -> MaintenanceOut:
    try:
        window = MaintenanceWindow.model_validate(body)
    except ValidationError as exc:
        # The body is validated here, as a model parameter would be: pydantic's errors.
        raise HTTPException(422, exc.errors(include_url=False, include_input=False)) from None
    return _out(await services.maintenance.create(window, who.name))


@router.delete("/{name}", status_code=204, summary="Delete an API-managed maintenance window")
async def remove_window(
    name: str, services: Services = Depends(get_services), _who: Principal = OPERATOR
) -> None:
    await services.maintenance.delete(name)
