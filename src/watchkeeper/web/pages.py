"""Dashboard pages (GET): overview, checks, alerts, metrics, silences, maintenance."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from watchkeeper.alerting.silences import list_silences
from watchkeeper.api.deps import get_runtime
from watchkeeper.api.status import alert_counts
from watchkeeper.app import Runtime
from watchkeeper.auth.roles import Principal, Role
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import rollups
from watchkeeper.store.maintenance import load_windows
from watchkeeper.store.results import recent_results
from watchkeeper.web import views
from watchkeeper.web.access import page
from watchkeeper.web.sparkline import timeline

router = APIRouter(prefix="/dashboard", include_in_schema=False)
VIEWER = Depends(page(Role.VIEWER))

AlertTab = Literal["firing", "acknowledged", "silenced", "resolved"]
TABS: tuple[AlertTab, ...] = ("firing", "acknowledged", "silenced", "resolved")


def render(request: Request, name: str, principal: Principal, **context: Any) -> HTMLResponse:
    rt = get_runtime(request)
    template = request.app.state.templates.get_template(name)
    html = template.render(
        user=principal,
        can_act=principal.role.allows(Role.OPERATOR),
        csrf=principal.csrf_token or "",
        path=request.url.path,
        notice=request.query_params.get("notice"),
        now=rt.clock.now(),
        **context,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("", response_class=HTMLResponse)
async def overview(
    request: Request,
    state: str | None = None,
    q: str | None = None,
    rt: Runtime = Depends(get_runtime),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    now = rt.clock.now()
    if rt.writer is not None:
        await rt.writer.flush()  # rows show the results that made their state
    configs = views.select_checks(rt, state if state in views.STATES else None, q)
    rows = views.sort_rows(await views.check_rows(rt, configs, now))
    return render(
        request,
        "overview.html",
        principal,
        rows=rows,
        summary=await views.summary(rt, now),
        state=state,
        q=q or "",
        states=views.STATES,
    )


def _config_or_404(rt: Runtime, name: str) -> Any:
    config = rt.check_configs.get(name)
    if config is None:
        raise HTTPException(404, f"no check named {name!r}")
    return config


async def _check_context(rt: Runtime, name: str) -> dict[str, Any]:
    config = _config_or_404(rt, name)
    state = rt.pipeline.states.get(name) if rt.pipeline else None
    return {"check": config, "state": state, "status": views.check_status(rt, name)}


@router.get("/checks/{name}", response_class=HTMLResponse)
async def check_page(
    request: Request,
    name: str,
    range: str = "24h",
    rt: Runtime = Depends(get_runtime),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    context = await _check_context(rt, name)
    if range not in rollups.RANGES:
        range = "24h"
    if rt.writer is not None:
        await rt.writer.flush()
    since, until, step = rollups.window(range, rt.clock.now())
    series = (await rollups.load_series(rt.db, [name], since, until, step)).get(name, [])
    count = sum(p.count for p in series)
    alerts, _ = await alert_store.list_alerts(rt.db, status="open", check=name, limit=20)
    return render(
        request,
        "check.html",
        principal,
        **context,
        range=range,
        ranges=list(rollups.RANGES),
        timeline=timeline(series),
        uptime=sum(p.available for p in series) / count if count else None,
        results=await recent_results(rt.db, name, 30),
        alerts=alerts,
    )


@router.get("/checks/{name}/header", response_class=HTMLResponse)
async def check_header(
    request: Request, name: str, rt: Runtime = Depends(get_runtime), principal: Principal = VIEWER
) -> HTMLResponse:
    return render(request, "_check_header.html", principal, **await _check_context(rt, name))


async def _alert_list(rt: Runtime, tab: AlertTab) -> list[Any]:
    status = "resolved" if tab == "resolved" else "open"
    alerts, _ = await alert_store.list_alerts(rt.db, status=status, limit=200)
    if tab == "resolved":
        return alerts
    if tab == "silenced":
        return [a for a in alerts if a.silenced_by or a.suppressed_reason]
    return [
        a for a in alerts if a.status.value == tab and not (a.silenced_by or a.suppressed_reason)
    ]


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(
    request: Request,
    tab: AlertTab = "firing",
    rt: Runtime = Depends(get_runtime),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    counts = await alert_counts(rt)
    totals = {
        "firing": sum(counts.firing.values()),
        "acknowledged": sum(counts.acknowledged.values()),
        "silenced": sum(counts.silenced.values()),
    }
    return render(
        request,
        "alerts.html",
        principal,
        tab=tab,
        tabs=TABS,
        totals=totals,
        alerts=await _alert_list(rt, tab),
    )


@router.get("/alerts/list", response_class=HTMLResponse)
async def alerts_fragment(
    request: Request,
    tab: AlertTab = "firing",
    rt: Runtime = Depends(get_runtime),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    return render(
        request, "_alert_list.html", principal, tab=tab, alerts=await _alert_list(rt, tab)
    )


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
async def alert_page(
    request: Request,
    alert_id: str,
    rt: Runtime = Depends(get_runtime),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    found = await alert_store.get_alert(rt.db, alert_id)
    if found is None:
        raise HTTPException(404, "no such alert")
    alert, events = found
    return render(request, "alert.html", principal, alert=alert, events=events)


@router.get("/metrics", response_class=HTMLResponse)
async def metrics_page(
    request: Request,
    range: str = "24h",
    name: str | None = None,
    rt: Runtime = Depends(get_runtime),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    system = [c.name for c in rt.check_configs.values() if c.type == "system"]
    return render(
        request,
        "metrics.html",
        principal,
        system_checks=system,
        range=range if range in rollups.RANGES else "24h",
        ranges=list(rollups.RANGES),
        series_name=name or "",
    )


@router.get("/silences", response_class=HTMLResponse)
async def silences_page(
    request: Request, rt: Runtime = Depends(get_runtime), principal: Principal = VIEWER
) -> HTMLResponse:
    now = rt.clock.now()
    silences = await list_silences(rt.db, include_expired_since=now)
    return render(request, "silences.html", principal, silences=silences)


@router.get("/maintenance", response_class=HTMLResponse)
async def maintenance_page(
    request: Request, rt: Runtime = Depends(get_runtime), principal: Principal = VIEWER
) -> HTMLResponse:
    now = rt.clock.now()
    windows = [(w, "config") for w in rt.config.maintenance] + [
        (w, "api") for w in await load_windows(rt.db)
    ]
    return render(
        request,
        "maintenance.html",
        principal,
        windows=[(w, source, w.active_at(now), w.next_change(now)) for w, source in windows],
        check_names=sorted(rt.check_configs),
    )
