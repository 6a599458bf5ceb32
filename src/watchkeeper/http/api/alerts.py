"""`/api/v1/alerts`: list and read alerts (viewer); act on them and post them (operator)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from watchkeeper.alerting import external as ext
from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.external import InvalidAlerts, parse_external
from watchkeeper.app import Runtime
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
from watchkeeper.http.deps import get_runtime
from watchkeeper.http.roles import Principal, Role, require
from watchkeeper.notify.payload import alert_record
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.conflicts import retrying

router = APIRouter(
    prefix="/api/v1/alerts", tags=["alerts"], dependencies=[Depends(require(Role.VIEWER))]
)
OPERATOR = Depends(require(Role.OPERATOR))


@router.get("", response_model=Page[AlertOut], summary="List alerts, newest first")
async def list_alerts(
    rt: Runtime = Depends(get_runtime),
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
    alerts, total = await alert_store.list_alerts(
        rt.db,
        status=status,
        check=check,
        severity=severity.value if severity else None,
        source=source,
        silenced=silenced,
        q=q,
        limit=limit,
        offset=offset,
    )
    items = [AlertOut.model_validate(alert_record(a)) for a in alerts]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{alert_id}", response_model=AlertDetailOut, summary="One alert and its events")
async def get_alert(alert_id: str, rt: Runtime = Depends(get_runtime)) -> AlertDetailOut:
    found = await alert_store.get_alert(rt.db, alert_id)
    if found is None:
        raise HTTPException(404, "no such alert")
    alert, events = found
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


async def change_alert(rt: Runtime, alert_id: str, action: Any, *args: Any) -> Alert:
    """Apply a lifecycle action (acknowledge, resolve_by_id, add_comment) in its own
    transaction, then wake the dispatcher to notify. Raises KeyError for an unknown alert and
    AlertStateError for one in the wrong state. Shared by the API and the dashboard."""
    async with rt.db.begin() as conn:
        alert: Alert = await action(conn, alert_id, *args, rt.clock.now())
    rt.wake_dispatcher()
    return alert


async def _act(rt: Runtime, alert_id: str, action: Any, *args: Any) -> AlertOut:
    try:
        alert = await change_alert(rt, alert_id, action, *args)
    except KeyError:
        raise HTTPException(404, "no such alert") from None
    except lifecycle.AlertStateError as exc:
        raise HTTPException(409, str(exc)) from None
    found = await alert_store.get_alert(rt.db, alert.id)
    assert found is not None
    return AlertOut.model_validate(alert_record(found[0]))


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
    rt: Runtime = Depends(get_runtime),
) -> AlertOut:
    actor = principal.acting_as(body.actor)
    return await _act(rt, alert_id, lifecycle.acknowledge, actor, body.comment)


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
    rt: Runtime = Depends(get_runtime),
) -> AlertOut:
    actor = principal.acting_as(body.actor)
    return await _act(rt, alert_id, lifecycle.resolve_by_id, actor, body.comment)


@router.post(
    "/{alert_id}/comment",
    response_model=AlertOut,
    summary="Add a comment",
)
async def comment(
    alert_id: str,
    body: AlertComment,
    principal: Principal = OPERATOR,
    rt: Runtime = Depends(get_runtime),
) -> AlertOut:
    actor = principal.acting_as(body.actor)
    return await _act(rt, alert_id, lifecycle.add_comment, actor, body.comment)


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
    rt: Runtime = Depends(get_runtime),
) -> list[AlertOut]:
    try:
        items = parse_external(body)
    except InvalidAlerts as exc:
        errors = [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors]
        raise RequestValidationError(errors) from None
    now = rt.clock.now()

    async def apply() -> list[Alert]:
        touched: list[Alert] = []
        async with rt.db.begin() as conn:
            for spec, firing in items:
                if firing:
                    alert, _ = await lifecycle.fire(conn, spec, now)
                    touched.append(alert)
                elif (resolved := await lifecycle.resolve(conn, spec.fingerprint, now)) is not None:
                    touched.append(resolved)
        return touched

    # The same alert posted at once by both Alertmanagers of a pair: the second run finds
    # the first's open alert and refreshes it.
    touched = await retrying(apply)
    rt.wake_dispatcher()
    return [AlertOut.model_validate(alert_record(a)) for a in touched]
