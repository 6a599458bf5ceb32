"""`GET /dashboard/events`: server-sent events that keep open pages current.

Events: `check-<name>` (data: the overview row, rendered), `summary` (the state counts and
open alerts), `alerts` (something about alerts changed: pages re-fetch what they show),
`checks` (a check was added or removed: the overview re-fetches its table).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse

from watchkeeper.api.deps import get_runtime
from watchkeeper.app import Runtime
from watchkeeper.auth.roles import Principal, Role
from watchkeeper.events import ALERTS, CHECKS
from watchkeeper.web import views
from watchkeeper.web.access import page

router = APIRouter(prefix="/dashboard", include_in_schema=False)
KEEPALIVE_S = 15.0
"""Quiet connections get a comment this often, so proxies do not close them."""


def event(name: str, data: str) -> str:
    lines = data.splitlines() or [""]
    return f"event: {name}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


async def render_changes(request: Request, rt: Runtime, keys: set[str]) -> str:
    templates = request.app.state.templates
    now = rt.clock.now()
    names = sorted(k.split(":", 1)[1] for k in keys if k.startswith("check:"))
    configs = [rt.check_configs[n] for n in names if n in rt.check_configs]
    out = []
    if configs:
        if rt.writer is not None:
            await rt.writer.flush()  # the result that changed the state counts in its row
        row_template = templates.get_template("_check_row.html")
        for row in await views.check_rows(rt, configs, now):
            out.append(event(f"check-{row.name}", row_template.render(r=row, now=now)))
    if names or ALERTS in keys or CHECKS in keys:
        summary = await views.summary(rt, now)
        html = templates.get_template("_summary.html").render(summary=summary, now=now)
        out.append(event("summary", html))
    if ALERTS in keys:
        out.append(event("alerts", "changed"))
    if CHECKS in keys:
        out.append(event("checks", "changed"))
    return "".join(out)


@router.get("/events", response_class=StreamingResponse)
async def events(
    request: Request,
    rt: Runtime = Depends(get_runtime),
    _principal: Principal = Depends(page(Role.VIEWER)),
) -> StreamingResponse:
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise HTTPException(406, "this is an event stream: send Accept: text/event-stream")

    async def stream() -> AsyncIterator[str]:
        with rt.changes.subscribe() as subscription:
            yield "retry: 2000\n\n"
            while True:
                keys = await subscription.changes(KEEPALIVE_S)
                if keys is None:
                    return
                yield await render_changes(request, rt, keys) if keys else ": keepalive\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
