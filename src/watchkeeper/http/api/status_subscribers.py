"""`/api/v1/status-subscribers`: the status page's subscribers, for admins. Webhook
subscribers are added only here (a public form that makes the server POST anywhere would be
an SSRF); email subscribers subscribe themselves on the page and can be removed here."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, HttpUrl

from watchkeeper.http import problems
from watchkeeper.http.api.schemas import Limit, Offset, Page
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Role, require
from watchkeeper.services import Services
from watchkeeper.services.status_subscriptions import SubscriptionView

router = APIRouter(
    prefix="/api/v1/status-subscribers",
    tags=["status page"],
    dependencies=[Depends(require(Role.ADMIN))],
)


class SubscriberOut(BaseModel):
    id: int
    page: str
    kind: Literal["email", "webhook"]
    address: str
    """The email address, or the webhook URL with its secrets masked."""
    components: list[str] | None
    """The components followed; null: all of them."""
    created_at: datetime
    confirmed_at: datetime | None
    """null: an email address that has not confirmed yet (deleted after `unconfirmed_ttl`)."""


class WebhookIn(BaseModel):
    url: HttpUrl
    page: str | None = Field(default=None, max_length=100)
    """The status page's slug; default: the first page."""
    components: list[str] = Field(default_factory=list, max_length=100)


def _out(view: SubscriptionView) -> SubscriberOut:
    return SubscriberOut.model_validate(view, from_attributes=True)


@router.get("", response_model=Page[SubscriberOut], summary="Status page subscribers")
async def list_subscribers(
    services: Services = Depends(get_services),
    kind: Literal["email", "webhook"] | None = Query(default=None),
    page: str | None = Query(default=None, max_length=100),
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[SubscriberOut]:
    views, total = await services.status_subscriptions.list(
        kind=kind, page=page, limit=limit, offset=offset
    )
    return Page(items=[_out(v) for v in views], total=total, limit=limit, offset=offset)


@router.post(
    "",
    response_model=SubscriberOut,
    status_code=201,
    responses=problems.responses(409, 422),
    summary="Add a webhook subscriber (confirmed at once)",
)
async def add_webhook(body: WebhookIn, services: Services = Depends(get_services)) -> SubscriberOut:
    view = await services.status_subscriptions.add_webhook(
        str(body.url), page=body.page, components=body.components
    )
    return _out(view)


@router.delete(
    "/{subscriber_id}",
    status_code=204,
    responses=problems.responses(404),
    summary="Remove a subscriber (email or webhook)",
)
async def remove_subscriber(subscriber_id: int, services: Services = Depends(get_services)) -> None:
    await services.status_subscriptions.remove(subscriber_id)
