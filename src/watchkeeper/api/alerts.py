"""Read-only alert views: `/api/v1/alerts` and one alert with its timeline."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from watchkeeper.api.deps import get_runtime
from watchkeeper.api.schemas import AlertDetailOut, AlertEventOut, AlertOut, Page
from watchkeeper.app import Runtime
from watchkeeper.domain import Alert
from watchkeeper.store import alerts as alert_store

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


def _alert_out(alert: Alert) -> dict[str, object]:
    return {
        "id": alert.id,
        "fingerprint": alert.fingerprint,
        "name": alert.name,
        "check": alert.check,
        "rule": alert.rule,
        "severity": alert.severity.value,
        "status": alert.status.value,
        "started_at": alert.started_at,
        "resolved_at": alert.resolved_at,
        "summary": alert.summary,
        "labels": alert.labels,
        "suppressed": alert.suppressed_reason,
    }


@router.get("", response_model=Page[AlertOut], summary="List alerts, newest first")
async def list_alerts(
    rt: Runtime = Depends(get_runtime),
    status: Literal["open", "firing", "acknowledged", "resolved"] | None = None,
    check: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[AlertOut]:
    alerts, total = await alert_store.list_alerts(
        rt.db, status=status, check=check, limit=limit, offset=offset
    )
    items = [AlertOut.model_validate(_alert_out(a)) for a in alerts]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{alert_id}", response_model=AlertDetailOut, summary="One alert and its events")
async def get_alert(alert_id: str, rt: Runtime = Depends(get_runtime)) -> AlertDetailOut:
    found = await alert_store.get_alert(rt.db, alert_id)
    if found is None:
        raise HTTPException(404, "no such alert")
    alert, events = found
    return AlertDetailOut.model_validate(
        {
            **_alert_out(alert),
            "events": [
                AlertEventOut(kind=e.kind, at=e.at, actor=e.actor, comment=e.comment)
                for e in events
            ],
        }
    )
