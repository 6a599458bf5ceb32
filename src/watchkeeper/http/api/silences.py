"""`/api/v1/silences`: mute notifications for alerts matching labels, for a while."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, Field

from watchkeeper.alerting.silences import Silence
from watchkeeper.http.api.schemas import Limit, Offset, Page, Text
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Principal, Role, require
from watchkeeper.services import Services

router = APIRouter(
    prefix="/api/v1/silences", tags=["silences"], dependencies=[Depends(require(Role.VIEWER))]
)
OPERATOR = Depends(require(Role.OPERATOR))


class SilenceIn(BaseModel):
    matchers: list[Text | dict[str, Any]] = Field(min_length=1, max_length=50)
    """`["check=api", "severity=~crit.*"]` or Alertmanager's `{name, value, isRegex, isEqual}`."""
    starts_at: AwareDatetime | None = None
    """Default: now. Times carry their UTC offset, e.g. `2027-01-01T00:00:00Z`."""
    ends_at: AwareDatetime
    comment: Text = Field(default="", max_length=4000)
    created_by: Text | None = Field(default=None, min_length=1, max_length=255)
    """Whom an API token acts for; a logged-in user is always the creator themselves."""


class SilenceOut(BaseModel):
    id: str
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    state: Literal["pending", "active", "expired"]
    broken: str | None = None
    """Why the stored silence cannot be used: it then silences nothing (an alert says so)."""


def _out(silence: Silence, now: datetime) -> SilenceOut:
    return SilenceOut(
        id=silence.id,
        matchers=[str(m) for m in silence.matchers],
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        created_by=silence.created_by,
        comment=silence.comment,
        created_at=silence.created_at,
        state=silence.state(now),  # type: ignore[arg-type]
        broken=silence.error,
    )


@router.get("", response_model=Page[SilenceOut], summary="List silences, newest end first")
async def list_silences(
    services: Services = Depends(get_services),
    state: Literal["pending", "active", "expired"] | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[SilenceOut]:
    silences = services.silences
    now = silences.clock.now()
    items = [_out(s, now) for s in await silences.list_silences()]
    if state:
        items = [s for s in items if s.state == state]
    return Page.of(items, limit, offset)


@router.post("", response_model=SilenceOut, status_code=201, summary="Create a silence")
async def create(
    body: SilenceIn, principal: Principal = OPERATOR, services: Services = Depends(get_services)
) -> SilenceOut:
    silence = await services.silences.create(
        body.matchers,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        created_by=principal.acting_as(body.created_by),
        comment=body.comment,
    )
    return _out(silence, silence.created_at)


@router.get("/{silence_id}", response_model=SilenceOut, summary="One silence")
async def get(silence_id: str, services: Services = Depends(get_services)) -> SilenceOut:
    silence = await services.silences.get(silence_id)
    return _out(silence, services.silences.clock.now())


@router.delete(
    "/{silence_id}",
    response_model=SilenceOut,
    summary="Expire a silence now",
    dependencies=[OPERATOR],
)
async def expire(silence_id: str, services: Services = Depends(get_services)) -> SilenceOut:
    silence = await services.silences.expire(silence_id)
    return _out(silence, services.silences.clock.now())
