"""`/api/v1/audit` (admin): every write, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from watchkeeper.http.api.schemas import MAX_OFFSET, Page
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Role, require
from watchkeeper.services import Services

router = APIRouter(
    prefix="/api/v1/audit", tags=["audit"], dependencies=[Depends(require(Role.ADMIN))]
)


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_kind: str
    """user, token or anonymous (a failed login)."""
    action: str
    """METHOD and route, e.g. `POST /api/v1/alerts/{alert_id}/ack`."""
    target: str
    """The path acted on."""
    status: int
    detail: dict[str, Any] | None
    source_ip: str | None


@router.get("", response_model=Page[AuditOut], summary="The audit log, newest first")
async def list_audit(
    services: Services = Depends(get_services),
    actor: str | None = None,
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page[AuditOut]:
    entries, total = await services.audit.query(
        limit=limit, offset=offset, actor=actor, action=action
    )
    items = [AuditOut.model_validate(e, from_attributes=True) for e in entries]
    return Page(items=items, total=total, limit=limit, offset=offset)
