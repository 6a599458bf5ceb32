"""`/api/v1/incidents`: status page incidents, written by operators (audit-logged)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field

from watchkeeper.http import problems
from watchkeeper.http.api.schemas import Limit, Offset, Text
from watchkeeper.http.audit import add_detail
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Principal, Role, require
from watchkeeper.services import Services
from watchkeeper.statuspage.model import ComponentStatus, Impact, Incident, IncidentStatus

router = APIRouter(
    prefix="/api/v1/incidents",
    tags=["incidents"],
    dependencies=[Depends(require(Role.VIEWER))],
)
OPERATOR = Depends(require(Role.OPERATOR))

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
Body = Annotated[str, Field(max_length=20_000, pattern=r"^[^\x00]*$")]


# A request body: unknown fields are refused, and its fields are the incident service's
# keyword arguments (the routes pass them on whole).
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentCreate(_Strict):
    name: Name
    page: str | None = None
    """The status page's slug (default: the first page)."""
    status: Literal["investigating", "identified", "monitoring"] = "investigating"
    impact: Impact = "none"
    body: Body | None = None
    """The first public update, Markdown (raw HTML is shown as text)."""
    components: dict[Text, ComponentStatus] = Field(default_factory=dict)
    """Affected components and the status each shows while the incident is open."""
    draft: bool = False
    started_at: AwareDatetime | None = None


class IncidentPatch(_Strict):
    status: IncidentStatus | None = None
    body: Body | None = None
    """A public update to the timeline (Markdown)."""
    impact: Impact | None = None
    name: Name | None = None
    components: dict[Text, ComponentStatus] | None = None
    draft: bool | None = None
    postmortem: Body | None = None


class IncidentResolve(_Strict):
    body: Body | None = None


class _FromDomain(BaseModel):
    """Read from the status page's own objects (watchkeeper.statuspage.model), whose
    attributes these mirror; where the API's name differs, the field says which it reads."""

    model_config = ConfigDict(from_attributes=True)


class AffectedOut(_FromDomain):
    name: str
    old_status: str
    new_status: str


class UpdateOut(_FromDomain):
    id: str
    status: str
    body: str
    created_at: datetime
    display_at: datetime
    affected_components: list[AffectedOut] = Field(
        validation_alias=AliasChoices("affected_components", "affected")
    )


class IncidentOut(_FromDomain):
    id: str
    page: str
    name: str
    status: str
    impact: str
    draft: bool
    created_at: datetime
    updated_at: datetime
    started_at: datetime
    monitoring_at: datetime | None
    resolved_at: datetime | None
    components: dict[str, str]
    incident_updates: list[UpdateOut] = Field(
        validation_alias=AliasChoices("incident_updates", "updates")
    )
    """Newest first."""
    postmortem: str | None
    source: str


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    total: int
    limit: int
    offset: int


def _out(incident: Incident) -> IncidentOut:
    return IncidentOut.model_validate(incident)


@router.get("", response_model=IncidentPage, summary="Status page incidents, newest first")
async def list_incidents(
    services: Services = Depends(get_services),
    page: Annotated[str | None, Query(max_length=64)] = None,
    unresolved: bool = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> IncidentPage:
    items, total = await services.incidents.list_incidents(
        page=page, unresolved=unresolved, limit=limit, offset=offset
    )
    return IncidentPage(items=[_out(i) for i in items], total=total, limit=limit, offset=offset)


@router.get(
    "/{incident_id}",
    response_model=IncidentOut,
    responses=problems.responses(404),
    summary="One incident with its timeline",
)
async def get_incident(incident_id: str, services: Services = Depends(get_services)) -> IncidentOut:
    return _out(await services.incidents.get(incident_id))


@router.post(
    "",
    response_model=IncidentOut,
    status_code=201,
    responses=problems.responses(422),
    summary="Open an incident on a status page",
)
async def create_incident(
    body: IncidentCreate,
    request: Request,
    services: Services = Depends(get_services),
    who: Principal = OPERATOR,
) -> IncidentOut:
    incident = await services.incidents.create(actor=who.name, **body.model_dump())
    add_detail(request, incident=incident.id, page=incident.page)
    return _out(incident)


# Adding an update is updating the incident with a new status or body: one handler.
@router.post(
    "/{incident_id}/updates",
    name="add_update",
    response_model=IncidentOut,
    status_code=201,
    responses=problems.responses(404, 409, 422),
    summary="Add a public update to an incident's timeline",
)
@router.patch(
    "/{incident_id}",
    response_model=IncidentOut,
    responses=problems.responses(404, 409, 422),
    summary="Update an incident (a new status or body adds a public update)",
)
async def update_incident(
    incident_id: str,
    body: IncidentPatch,
    request: Request,
    services: Services = Depends(get_services),
    who: Principal = OPERATOR,
) -> IncidentOut:
    incident = await services.incidents.update(incident_id, actor=who.name, **body.model_dump())
    add_detail(request, incident=incident.id, status=incident.status)
    return _out(incident)


@router.post(
    "/{incident_id}/resolve",
    response_model=IncidentOut,
    responses=problems.responses(404, 409),
    summary="Resolve an incident",
)
async def resolve_incident(
    incident_id: str,
    request: Request,
    body: IncidentResolve | None = None,
    services: Services = Depends(get_services),
    who: Principal = OPERATOR,
) -> IncidentOut:
    incident = await services.incidents.resolve(
        incident_id, actor=who.name, body=body.body if body else None
    )
    add_detail(request, incident=incident.id)
    return _out(incident)


@router.delete(
    "/{incident_id}",
    status_code=204,
    responses=problems.responses(404),
    summary="Delete an incident (it disappears from the page)",
)
async def delete_incident(
    incident_id: str,
    request: Request,
    services: Services = Depends(get_services),
    _who: Principal = OPERATOR,
) -> None:
    await services.incidents.delete(incident_id)
    add_detail(request, incident=incident_id)
