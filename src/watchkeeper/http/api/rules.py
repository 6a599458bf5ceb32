"""`/api/v1/rules` (rules and the state of each series) and `POST /api/v1/metrics`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, Field

from watchkeeper.app import Runtime
from watchkeeper.http.api.schemas import Limit, Offset, Page, Text
from watchkeeper.http.deps import get_runtime
from watchkeeper.http.roles import Role, require

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
    rt: Runtime = Depends(get_runtime), limit: Limit = 100, offset: Offset = 0
) -> Page[Any]:
    rules = rt.rules.snapshot()
    managed = rt.managed.managed_rules
    items = [{**r, "source": "api" if r["name"] in managed else "config"} for r in rules]
    return Page.of(items, limit, offset)


@router.post(
    "/metrics",
    response_model=Accepted,
    summary="Push metric samples (feed rules)",
    dependencies=[Depends(require(Role.OPERATOR))],
)
async def push_metrics(body: Samples, rt: Runtime = Depends(get_runtime)) -> Accepted:
    now = rt.clock.now()
    watched = 0
    names = rt.rules.metrics
    for sample in body.samples:
        if sample.metric in names:
            watched += 1
            rt.rules.observe(sample.metric, sample.labels, sample.value, sample.timestamp or now)
    return Accepted(accepted=len(body.samples), watched=watched)
