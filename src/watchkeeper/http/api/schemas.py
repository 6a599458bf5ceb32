"""Response models of the operations API (they are the OpenAPI contract)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from watchkeeper.core import model as _model

T = TypeVar("T")

Text = _model.Text
"""Request text that gets stored: no NUL characters, which PostgreSQL refuses (elsewhere a
refused one is a 422 too, see problems.py; this says so in the OpenAPI document)."""

MAX_OFFSET = 2**31 - 1
"""The largest `offset` a list accepts: beyond any real table, within every database's
integer range (a larger one was a 500 from the database driver)."""


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, items: Sequence[T], limit: int, offset: int) -> Page[T]:
        """One page of a list held in memory (the short ones: tokens, users, windows...)."""
        return cls(
            items=list(items[offset : offset + limit]), total=len(items), limit=limit, offset=offset
        )


Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]


class LastResult(BaseModel):
    status: str
    reason: str | None
    checked_at: datetime | None


class CheckOut(BaseModel):
    name: str
    type: str
    description: str | None
    status: str
    since: datetime | None
    last_result: LastResult | None
    interval_seconds: float
    timeout_seconds: float
    failure_threshold: int
    success_threshold: int
    severity: str
    component: str | None
    labels: dict[str, str]
    depends_on: list[str]
    enabled: bool
    source: str = "config"
    ping_url: str | None = None
    """For heartbeats: the unguessable URL the job pings (`/ping/<uuid>`)."""
    last_ping_at: datetime | None = None
    """For heartbeats: when the last success ping arrived (paused or not)."""
    broken: str | None = None
    """Why the check cannot be evaluated (a heartbeat whose deadline cannot be computed);
    an alert says so too."""


class ResultOut(BaseModel):
    started_at: datetime
    status: str
    reason: str
    response_time: float | None
    metrics: dict[str, float] | None
    details: dict[str, Any] | None


class AlertEventOut(BaseModel):
    kind: str
    at: datetime
    actor: str | None
    comment: str | None


class AlertOut(BaseModel):
    id: str
    fingerprint: str
    name: str
    check: str | None
    rule: str | None
    severity: str
    status: str
    started_at: datetime
    resolved_at: datetime | None
    summary: str
    labels: dict[str, str]
    suppressed: str | None = None
    """Why nobody was paged (e.g. "suppressed: database down"); None when notified."""
    silenced_by: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    source: str = "check"
    escalation_step: int = 0
    paged_channels: list[str] | None = None


class AlertDetailOut(AlertOut):
    events: list[AlertEventOut]
