"""`/api/v1/maintenances`: windows in which alerts are held (config-file ones are read-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException
from pydantic import BaseModel, ValidationError

from watchkeeper.alerting.broken import describe
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.alerting.stored_windows import (
    delete_window,
    load_stored_windows,
    load_windows,
    save_window,
)
from watchkeeper.app import Runtime
from watchkeeper.http import problems
from watchkeeper.http.api.schemas import Limit, Offset, Page
from watchkeeper.http.deps import get_runtime
from watchkeeper.http.roles import Principal, Role, require

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


def _out(window: MaintenanceWindow, source: str, now: datetime) -> MaintenanceOut:
    return MaintenanceOut(
        name=window.name,
        source=source,
        active=window.active_at(now),
        next_change=window.next_change(now),
        definition=window.model_dump(mode="json", exclude_unset=True),
    )


def _listed(rt: Runtime, name: str, source: str, definition: Any, now: datetime) -> MaintenanceOut:
    """A window as listed: a stored one that does not validate, or cannot be evaluated, is
    shown with `broken` (never a 500 for the whole list)."""
    if isinstance(definition, MaintenanceWindow):
        try:
            out = _out(definition, source, now)
            out.broken = rt.broken.error("maintenance", name)
            return out
        except Exception as exc:
            error = describe(exc)
        shown = definition.model_dump(mode="json", exclude_unset=True)
    else:
        error, shown = definition.error, definition.definition
    if not isinstance(shown, dict):
        shown = {"definition": shown}
    return MaintenanceOut(
        name=name, source=source, active=False, next_change=None, definition=shown, broken=error
    )


async def _all(rt: Runtime) -> list[tuple[MaintenanceWindow, str]]:
    stored = await load_windows(rt.db)
    return [(w, "config") for w in rt.config.maintenance] + [(w, "api") for w in stored]


@router.get("", response_model=Page[MaintenanceOut], summary="Maintenance windows")
async def list_windows(
    rt: Runtime = Depends(get_runtime), limit: Limit = 100, offset: Offset = 0
) -> Page[MaintenanceOut]:
    now = rt.clock.now()
    items = [_listed(rt, w.name, "config", w, now) for w in rt.config.maintenance]
    for stored in await load_stored_windows(rt.db):
        items.append(_listed(rt, stored.name, "api", stored.window or stored, now))
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
    rt: Runtime = Depends(get_runtime),
    who: Principal = OPERATOR,
) -> MaintenanceOut:
    try:
        window = MaintenanceWindow.model_validate(body)
    except ValidationError as exc:
        raise HTTPException(422, exc.errors(include_url=False, include_input=False)) from None
    if any(w.name == window.name for w, _ in await _all(rt)):
        raise HTTPException(409, f"a maintenance window named {window.name!r} exists")
    now = rt.clock.now()
    try:
        await save_window(rt.db, window, who.name, now)
    except KeyError:
        raise HTTPException(409, f"a maintenance window named {window.name!r} exists") from None
    rt.wake_dispatcher()
    return _listed(rt, window.name, "api", window, now)


@router.delete("/{name}", status_code=204, summary="Delete an API-managed maintenance window")
async def remove_window(
    name: str, rt: Runtime = Depends(get_runtime), _who: Principal = OPERATOR
) -> None:
    if any(w.name == name for w in rt.config.maintenance):
        raise HTTPException(409, "this window comes from the config file; edit it there")
    if not await delete_window(rt.db, name):
        raise HTTPException(404, "no such maintenance window")
    rt.wake_dispatcher()
