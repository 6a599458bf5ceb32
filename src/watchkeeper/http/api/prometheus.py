"""`GET /metrics` in the Prometheus text format; open, token-only or off per `auth.metrics`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST

from watchkeeper.http import problems
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import METRICS
from watchkeeper.services import Services

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
async def metrics(services: Services = Depends(get_services)) -> Response:
    body = await services.status.exposition()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
