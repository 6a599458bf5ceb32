"""`GET /dashboard/events`: server-sent events that keep open pages current.

Events: `check-<name>` (data: the overview row, rendered), `summary` (the state counts and
open alerts), `alerts` (something about alerts changed: pages re-fetch what they show),
`checks` (a check was added or removed: the overview re-fetches its table). Each change is
rendered once for every open stream (`web.streams`), and how many may be open is capped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse
from jinja2 import Environment
from starlette.types import Receive, Scope, Send

from watchkeeper.core.changes import ALERTS, CHECKS
from watchkeeper.http.roles import Principal, Role
from watchkeeper.http.web import views
from watchkeeper.http.web.access import page
from watchkeeper.http.web.streams import Event, LiveUpdates, TooManyStreams
from watchkeeper.services import Services

router = APIRouter(prefix="/dashboard", include_in_schema=False)
KEEPALIVE_S = 15.0
"""Quiet connections get a comment this often, so proxies do not close them."""


def event(name: str, data: str) -> str:
    lines = data.splitlines() or [""]
    return f"event: {name}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


async def render_changes(templates: Environment, services: Services, keys: set[str]) -> list[Event]:
    """The events that tell open pages about `keys` (rendered once for every stream)."""
    now = services.dashboard.now()
    names = sorted(k.split(":", 1)[1] for k in keys if k.startswith("check:"))
    configs = [services.checks.configs[n] for n in names if n in services.checks.configs]
    out = []
    if configs:
        await services.checks.flush()  # the result that changed the state counts in its row
        row_template = templates.get_template("_check_row.html")
        for row in await views.check_rows(services, configs, now):
            out.append((f"check-{row.name}", row_template.render(r=row, now=now)))
    if names or ALERTS in keys or CHECKS in keys:
        summary = await views.summary(services, now)
        html = templates.get_template("_summary.html").render(summary=summary, now=now)
        out.append(("summary", html))
    if ALERTS in keys:
        out.append(("alerts", "changed"))
    if CHECKS in keys:
        out.append(("checks", "changed"))
    return out


async def render_events(
    templates: Environment, services: Callable[[], Services], keys: set[str]
) -> list[Event]:
    """`render_changes` as the text each stream sends (formatted once, for all of them), with
    the services of the current run."""
    changes = await render_changes(templates, services(), keys)
    return [(name, event(name, data)) for name, data in changes]


def live_updates(templates: Environment, services: Callable[[], Services]) -> LiveUpdates:
    """The app's open streams, capped as `server:` says. `services` gives those of the
    current run (a runtime started again builds new ones; its change feed stays)."""
    dashboard = services().dashboard
    return LiveUpdates(
        dashboard.changes,
        partial(render_events, templates, services),
        max_streams=dashboard.max_streams,
        max_per_owner=dashboard.max_streams_per_owner,
    )


def owner(principal: Principal) -> str:
    """Whose streams count together: a user's or token's; without auth, an address's."""
    if principal.kind == "anonymous":
        return f"address:{principal.source_ip}"
    return f"{principal.kind}:{principal.id or principal.name}"


class EventStreamResponse(StreamingResponse):
    """Frees the stream's slot when the response ends, however it ends (the body's generator
    may never start if the client leaves at once)."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


@router.get("/events", response_class=StreamingResponse)
async def events(
    request: Request, principal: Principal = Depends(page(Role.VIEWER))
) -> StreamingResponse:
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise HTTPException(406, "this is an event stream: send Accept: text/event-stream")
    live: LiveUpdates = request.app.state.live
    try:
        stream = live.open(owner(principal))
    except TooManyStreams as exc:
        raise HTTPException(exc.status, exc.detail, headers={"Retry-After": "30"}) from None

    async def body() -> AsyncIterator[str]:
        try:
            yield "retry: 2000\n\n"
            while True:
                pending = await stream.next(KEEPALIVE_S)
                if pending is None:
                    return
                yield "".join(text for _, text in pending) if pending else ": keepalive\n\n"
        finally:
            live.close(stream)

    return EventStreamResponse(body(), release=lambda: live.close(stream))
