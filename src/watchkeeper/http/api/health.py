"""Probes: liveness, readiness, and the IETF health-check draft document."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import HEALTH_DETAILS, PUBLIC
from watchkeeper.services import Services

# Probes answer anyone: load balancers and orchestrators hold no credentials.
router = APIRouter(tags=["health"], dependencies=[Depends(PUBLIC)])
# The detailed documents: a viewer's, unless `server.health_details: public`.
details = APIRouter(tags=["health"], dependencies=[Depends(HEALTH_DETAILS)])

HEALTH_JSON = "application/health+json"


class HealthJSONResponse(JSONResponse):
    media_type = HEALTH_JSON


Status = Literal["pass", "warn", "fail"]


class ProbeOut(BaseModel):
    status: Status


class HealthOut(BaseModel):
    """draft-inadarei-api-health-check: the service's status and each component's."""

    model_config = ConfigDict(extra="allow")

    status: Status
    version: str
    releaseId: str  # the draft's field names
    serviceId: str
    description: str
    checks: dict[str, list[dict[str, Any]]]
    """`storage:responseTime`, `scheduler:lag`, `outbox:depth`: `status`, `observedValue`…"""


_UNHEALTHY = {"description": "Not ready / failing", "model": ProbeOut}


@router.get(
    "/health/live",
    summary="Liveness: the process answers",
    response_class=HealthJSONResponse,
    response_model=ProbeOut,
)
async def live() -> JSONResponse:
    return JSONResponse({"status": "pass"}, media_type=HEALTH_JSON)


@router.get(
    "/health/ready",
    summary="Readiness: storage migrated and the scheduler running",
    response_class=HealthJSONResponse,
    response_model=ProbeOut,
    responses={503: _UNHEALTHY},
)
async def ready(services: Services = Depends(get_services)) -> JSONResponse:
    ok = services.status.ready()
    return JSONResponse(
        {"status": "pass" if ok else "fail"}, status_code=200 if ok else 503, media_type=HEALTH_JSON
    )


@router.get(
    "/health",
    summary="Health of each component (IETF health-check response format)",
    response_class=HealthJSONResponse,
    response_model=HealthOut,
    responses={503: {"description": "A component fails", "model": HealthOut}},
)
async def health(services: Services = Depends(get_services)) -> JSONResponse:
    body = await services.status.health()
    failing = body["status"] == "fail"
    return JSONResponse(body, status_code=503 if failing else 200, media_type=HEALTH_JSON)


def _answer(body: dict[str, Any]) -> JSONResponse:
    failing = body["status"] == "fail"
    return JSONResponse(body, status_code=503 if failing else 200, media_type=HEALTH_JSON)


_DETAILED = {
    "response_class": HealthJSONResponse,
    "response_model": HealthOut,
    "responses": {503: {"description": "A component fails", "model": HealthOut}},
}


@details.get(
    "/health/detailed",
    summary="Every component, the database, the process, self-alerts and the watchdog",
    **_DETAILED,  # type: ignore[arg-type]
)
async def detailed(services: Services = Depends(get_services)) -> JSONResponse:
    return _answer(await services.health.detailed())


@details.get(
    "/health/database",
    summary="The database: reachable, read and write times, revision, size, masked URL",
    **_DETAILED,  # type: ignore[arg-type]
)
async def database(services: Services = Depends(get_services)) -> JSONResponse:
    return _answer(await services.health.database())


@details.get(
    "/health/system",
    summary="The process: event-loop lag, memory, open files, CPU time, uptime, load",
    **_DETAILED,  # type: ignore[arg-type]
)
async def system(services: Services = Depends(get_services)) -> JSONResponse:
    return _answer(await services.health.system())
