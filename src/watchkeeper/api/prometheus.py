"""`GET /metrics` in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from watchkeeper.api.deps import get_runtime
from watchkeeper.app import Runtime

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(rt: Runtime = Depends(get_runtime)) -> Response:
    if rt.outbox is not None:
        rt.metrics.outbox_depth.set(rt.outbox.depth)
    return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)
