"""`/api/v1/alerts`: list and read alerts (viewer); act on them and post them (operator)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from watchkeeper.alerting import external as ext
from watchkeeper.alerting.external import InvalidAlerts
from watchkeeper.core.domain import Alert, Severity
from watchkeeper.http import problems
from watchkeeper.http.api.schemas import (
    MAX_OFFSET,
    AlertDetailOut,
    AlertEventOut,
    AlertOut,
    Page,
    Text,
)
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Principal, Role, require
from watchkeeper.notify.payload import alert_record
from watchkeeper.services import Services

router = APIRouter(
    prefix="/api/v1/alerts", tags=["alerts"], dependencies=[Depends(require(Role.VIEWER))]
)
OPERATOR = Depends(require(Role.OPERATOR))


def _out(alert: Alert) -> AlertOut:
    return AlertOut.model_validate(alert_record(alert))


@router.get("", response_model=Page[AlertOut], summary="List alerts, newest first")
async def list_alerts(
    services: Services = Depends(get_services),
    status: Annotated[
        Literal["open", "firing", "acknowledged", "resolved", "silenced"] | None,
        Query(description="`open`: not resolved; `silenced`: open and muted"),
    ] = None,
    check: str | None = None,
    severity: Severity | None = None,
    source: Annotated[
        Literal["check", "rule", "external", "flapping"] | None,
        Query(description="where it came from"),
    ] = None,
    silenced: Annotated[
        bool | None,
        Query(description="muted by a silence or suppressed (maintenance, a dependency)"),
    ] = None,
    q: Annotated[
        Text | None,
        Query(max_length=200, description="case-insensitive substring of name or summary"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page[AlertOut]:
    alerts, total = await services.alerts.list_alerts(
        status=status,
        check=check,
        severity=severity.value if severity else None,
        source=source,
        silenced=silenced,
        q=q,
        limit=limit,
        offset=offset,
    )
    items = [_out(a) for a in alerts]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{alert_id}", response_model=AlertDetailOut, summary="One alert and its events")
async def get_alert(alert_id: str, services: Services = Depends(get_services)) -> AlertDetailOut:
    alert, events = await services.alerts.get(alert_id)
    return AlertDetailOut.model_validate(
        {
            **alert_record(alert),
            "events": [
                AlertEventOut(kind=e.kind, at=e.at, actor=e.actor, comment=e.comment)
                for e in events
            ],
        }
    )


class AlertAction(BaseModel):
    comment: Text | None = Field(default=None, max_length=4000)
    actor: Text | None = Field(default=None, min_length=1, max_length=255)
    """Whom an API token acts for (e.g. a chat bot naming the person); a logged-in user
    always acts as themselves. Default: the token's name."""


class AlertComment(BaseModel):
    comment: Text = Field(min_length=1, max_length=4000)
    actor: Text | None = Field(default=None, min_length=1, max_length=255)


_STATE_CONFLICT = problems.responses(409)  # acknowledging or resolving a resolved alert


@router.post(
    "/{alert_id}/ack",
    response_model=AlertOut,
    summary="Acknowledge: stop escalation",
    responses=_STATE_CONFLICT,
)
async def acknowledge(
    alert_id: str,
    body: AlertAction = Body(default_factory=AlertAction),
    principal: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> AlertOut:
    actor = principal.acting_as(body.actor)
    return _out(await services.alerts.acknowledge(alert_id, actor, body.comment))


@router.post(
    "/{alert_id}/resolve",
    response_model=AlertOut,
    summary="Resolve by hand",
    responses=_STATE_CONFLICT,
)
async def resolve(
    alert_id: str,
    body: AlertAction = Body(default_factory=AlertAction),
    principal: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> AlertOut:
    actor = principal.acting_as(body.actor)
    return _out(await services.alerts.resolve(alert_id, actor, body.comment))


@router.post(
    "/{alert_id}/comment",
    response_model=AlertOut,
    summary="Add a comment",
)
async def comment(
    alert_id: str,
    body: AlertComment,
    principal: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> AlertOut:
    actor = principal.acting_as(body.actor)
    return _out(await services.alerts.comment(alert_id, actor, body.comment))


@router.post(
    "",
    response_model=list[AlertOut],
    summary="Create or resolve alerts (Watchkeeper's shape or Alertmanager's webhook v4)",
    description=(
        f"Text must hold no NUL character; at most {ext.MAX_ALERTS} alerts, each with at most "
        f"{ext.MAX_LABELS} labels (names up to {ext.MAX_LABEL_NAME} characters, values up to "
        f"{ext.MAX_LABEL_VALUE}) and {ext.MAX_LABELS} annotations (values up to "
        f"{ext.MAX_TEXT}), a summary up to {ext.MAX_TEXT} and a name up to {ext.MAX_NAME}. "
        "Anything else is a 422 naming the field."
    ),
    dependencies=[OPERATOR],
)
async def post_alerts(
    body: Annotated[dict[str, Any] | list[dict[str, Any]], Body()],
    services: Services = Depends(get_services),
) -> list[AlertOut]:
    try:
        touched = await services.alerts.ingest(body)
    except InvalidAlerts as exc:
        errors = [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors]
        raise RequestValidationError(errors) from None
    return [_out(a) for a in touched]
