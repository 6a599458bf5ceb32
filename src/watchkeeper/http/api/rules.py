"""`/api/v1/rules` (rules and the state of each series) and `POST /api/v1/metrics`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, Field

from watchkeeper.http.api.schemas import Limit, Offset, Page, Text
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Role, require
from watchkeeper.services import Services
from watchkeeper.services import rules as rule_service

router = APIRouter(prefix="/api/v1", tags=["rules"], dependencies=[Depends(require(Role.VIEWER))])


class SeriesOut(BaseModel):
    labels: dict[str, str]
    value: float | None
    sampled_at: datetime | None
    state: str
    """inactive, pending, firing, or failed: the database refused its alert (see `error`)."""
    severity: str | None
    active_since: datetime | None
    error: str | None = None
    """Why the database refused the series' alert; it is tried again when the value changes."""


class RuleOut(BaseModel):
    name: str
    metric: str
    op: str
    levels: dict[str, float]
    for_: str = Field(alias="for")
    series: list[SeriesOut]
    source: str = "config"
    broken: str | None = None
    """Why the rule cannot be evaluated (it is then ignored, and an alert says so)."""
    """`config` (read-only over the API) or `api` (see `/api/v1/rules/{name}`)."""

    model_config = {"populate_by_name": True}


class Sample(BaseModel):
    metric: Text = Field(min_length=1, max_length=200)
    value: float = Field(allow_inf_nan=False)
    labels: dict[Text, Text] = Field(default_factory=dict)
    timestamp: AwareDatetime | None = None
    """Default: now. With its UTC offset, e.g. `2027-01-01T00:00:00Z`."""


class Samples(BaseModel):
    samples: list[Sample] = Field(min_length=1, max_length=10_000)


class Accepted(BaseModel):
    accepted: int
    watched: int
    """How many samples belong to a metric some rule watches."""


@router.get("/rules", response_model=Page[RuleOut], summary="Rules and their series' states")
async def list_rules(
    services: Services = Depends(get_services), limit: Limit = 100, offset: Offset = 0
) -> Page[Any]:
    return Page.of(services.rules.list_rules(), limit, offset)


@router.post(
    "/metrics",
    response_model=Accepted,
    summary="Push metric samples (feed rules)",
    dependencies=[Depends(require(Role.OPERATOR))],
)
async def push_metrics(body: Samples, services: Services = Depends(get_services)) -> Accepted:
    accepted, watched = services.rules.push(
        rule_service.Sample(s.metric, s.value, s.labels, s.timestamp) for s in body.samples
    )
    return Accepted(accepted=accepted, watched=watched)
