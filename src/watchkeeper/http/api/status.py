"""`GET /api/v1/status`: the whole system in one document, for dashboards and scripts.

Overall status, from check states and open alerts (silenced ones excepted):

* `major_outage`: a firing critical alert, or half or more of the active checks down;
* `partial_outage`: any check down, or a firing high alert;
* `degraded`: any check degraded, or a firing medium or low alert;
* `operational`: otherwise (unknown and paused checks and info alerts do not count).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Role, require
from watchkeeper.services import Services
from watchkeeper.services.alerts import SEVERITIES
from watchkeeper.services.status import STATES, Overall, overall_status

router = APIRouter(prefix="/api/v1", tags=["status"], dependencies=[Depends(require(Role.VIEWER))])

__all__ = ["SEVERITIES", "STATES", "overall_status", "router"]


class ComponentOut(BaseModel):
    name: str
    status: str = Field(
        description="the worst state of its checks: down > degraded > unknown > up > paused"
    )
    checks: int
    states: dict[str, int]
    """Checks in each state (every state listed)."""


class PerformanceOut(BaseModel):
    scheduler_lag_seconds: float | None
    """How late the latest check run started; null when the scheduler is not running."""
    checks_per_second: float | None
    """Results recorded over the last minute, per second."""
    storage_ping_ms: float | None
    """A trivial query's round trip; null when storage does not answer."""
    storage_error: str | None = None
    outbox_depth: int | None
    """Notifications queued and not yet delivered."""


class AlertCountsOut(BaseModel):
    """Open alerts by severity (every severity listed)."""

    firing: dict[str, int]
    """Firing, neither acknowledged nor silenced."""
    acknowledged: dict[str, int]
    silenced: dict[str, int]
    """Open and muted: matched by a silence, or suppressed (maintenance, a failing dependency)."""


class StatusOut(BaseModel):
    status: Overall
    at: datetime
    version: str
    started_at: datetime | None
    """When this process started its checks (None while starting)."""
    checks: dict[str, int]
    """Checks in each state (every state listed)."""
    components: list[ComponentOut]
    """By name; checks without a component are under "other", listed last."""
    alerts: AlertCountsOut
    performance: PerformanceOut


@router.get(
    "/status",
    response_model=StatusOut,
    summary="System status: checks, components, alerts, performance",
)
async def system_status(services: Services = Depends(get_services)) -> StatusOut:
    status = await services.status.system_status()
    return StatusOut.model_validate(status, from_attributes=True)
