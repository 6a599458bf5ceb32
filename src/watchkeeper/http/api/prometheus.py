"""`GET /metrics` in the Prometheus text format; open, token-only or off per `auth.metrics`."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from watchkeeper.app import Runtime
from watchkeeper.http import problems
from watchkeeper.http.deps import get_runtime
from watchkeeper.http.roles import METRICS

router = APIRouter(tags=["metrics"], dependencies=[Depends(METRICS)])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **problems.responses(404),  # auth.metrics: off
    },
)
async def metrics(rt: Runtime = Depends(get_runtime)) -> Response:
    rt.metrics.outbox_depth.set(rt.outbox.depth)
    # Formatting thousands of checks takes a good part of a second: in a worker thread the
    # event loop keeps running checks meanwhile (the collectors copy their figures under a
    # lock, so reading them from another thread is safe).
    body = await asyncio.to_thread(generate_latest, rt.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
