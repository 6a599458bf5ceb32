"""Probes: liveness, readiness, and the IETF health-check draft document."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from watchkeeper.app import Runtime
from watchkeeper.core.version import __version__
from watchkeeper.http.deps import get_runtime
from watchkeeper.http.roles import PUBLIC

# Probes answer anyone: load balancers and orchestrators hold no credentials.
router = APIRouter(tags=["health"], dependencies=[Depends(PUBLIC)])

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

_RANK = {"pass": 0, "warn": 1, "fail": 2}


def _entry(component_type: str, status: str, now: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"componentType": component_type, "status": status, "time": now, **extra}]


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
async def ready(rt: Runtime = Depends(get_runtime)) -> JSONResponse:
    ok = rt.started and rt.db.migrated and rt.scheduler.running
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
async def health(rt: Runtime = Depends(get_runtime)) -> JSONResponse:
    now = rt.clock.now().isoformat().replace("+00:00", "Z")
    checks: dict[str, list[dict[str, Any]]] = {}

    started = time.perf_counter()
    try:
        await rt.db.ping()
        checks["storage:responseTime"] = _entry(
            "datastore",
            "pass",
            now,
            observedValue=round((time.perf_counter() - started) * 1000, 3),
            observedUnit="ms",
            componentId=rt.db.dialect,
        )
    except Exception as exc:
        checks["storage:responseTime"] = _entry(
            "datastore", "fail", now, output=rt.redactor(f"{type(exc).__name__}: {exc}")
        )

    scheduler = rt.scheduler
    if scheduler is None or not scheduler.running:
        checks["scheduler:lag"] = _entry("component", "fail", now, output="scheduler not running")
    else:
        lag = scheduler.last_lag
        checks["scheduler:lag"] = _entry(
            "component",
            "pass" if lag < 1 else "warn" if lag < 10 else "fail",
            now,
            observedValue=round(lag, 4),
            observedUnit="s",
        )

    outbox = rt.outbox
    if outbox is None:
        checks["outbox:depth"] = _entry("component", "fail", now, output="outbox not running")
    else:
        status = "pass" if outbox.depth < 100 else "warn"
        extra: dict[str, Any] = {"observedValue": outbox.depth, "observedUnit": "notifications"}
        if outbox.failed:
            extra["output"] = f"{outbox.failed} notifications failed for good since start"
            status = "warn"
        checks["outbox:depth"] = _entry("component", status, now, **extra)

    if broken := rt.broken.all():
        # Each is ignored (fail-open) and has its own alert; say which they are.
        shown = "; ".join(f"{b.kind} {b.name}: {b.error}" for b in broken[:20])
        more = f"; and {len(broken) - 20} more" if len(broken) > 20 else ""
        checks["objects:broken"] = _entry(
            "component",
            "warn",
            now,
            observedValue=len(broken),
            observedUnit="objects",
            output=shown + more,
        )

    overall = max((e[0]["status"] for e in checks.values()), key=_RANK.__getitem__)
    body = {
        "status": overall,
        "version": __version__.split(".")[0],
        "releaseId": __version__,
        "serviceId": "watchkeeper",
        "description": "Watchkeeper operations monitor",
        "checks": checks,
    }
    return JSONResponse(body, status_code=503 if overall == "fail" else 200, media_type=HEALTH_JSON)
