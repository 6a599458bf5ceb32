"""`POST /api/v1/reload`: re-read the config file and apply what changed (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from watchkeeper.http import problems
from watchkeeper.http.audit import add_detail
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Principal, Role, require
from watchkeeper.services import Services

router = APIRouter(prefix="/api/v1", tags=["config"])


class KindChangesOut(BaseModel):
    added: list[str]
    removed: list[str]
    changed: list[str]
    """Same name, new definition: state, history and open alerts are kept."""
    unchanged: int


class ReloadOut(BaseModel):
    changed: bool
    """Whether anything was applied."""
    checks: KindChangesOut
    notifications: KindChangesOut
    rules: KindChangesOut
    escalation: KindChangesOut
    maintenance: KindChangesOut
    settings: list[str]
    """Other settings applied (`alerting.routes`, `alerting.inhibit_rules`, `defaults`…)."""
    needs_restart: list[str]
    """Settings that changed in the file but take effect only at the next start (kept)."""


@router.post(
    "/reload",
    response_model=ReloadOut,
    summary="Reload the config file",
    description="Re-reads the config file the service was started with and applies what "
    "changed; an invalid file is refused (422, `errors` with each problem's `file` and "
    "`line`) and the running config stays. Same as sending the process `SIGHUP`.",
    responses=problems.responses(409, 503),
)
async def reload_config(
    request: Request,
    principal: Principal = Depends(require(Role.ADMIN)),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    summary = await services.reload.reload(principal.name)
    add_detail(
        request,
        **{
            kind: {k: v for k, v in summary[kind].items() if k != "unchanged" and v}
            for kind in ("checks", "notifications", "rules", "escalation", "maintenance")
            if any(summary[kind][k] for k in ("added", "removed", "changed"))
        },
    )
    return summary
