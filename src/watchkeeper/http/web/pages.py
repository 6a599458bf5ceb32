"""Dashboard pages (GET): overview, checks, alerts, metrics, silences, maintenance."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.alerting.silences import list_silences
from watchkeeper.alerting.stored_windows import load_windows
from watchkeeper.app import Runtime
from watchkeeper.http.api.status import SEVERITIES, alert_counts
from watchkeeper.http.deps import get_runtime
from watchkeeper.http.edge.headers import csp_nonce
from watchkeeper.http.roles import Principal, Role
from watchkeeper.http.web import views
from watchkeeper.http.web.access import page
from watchkeeper.http.web.sparkline import timeline
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import rollups
from watchkeeper.store.results import recent_results

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
        nonce=csp_nonce(request),
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
    state = rt.states.get(name)
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


ALERTS_PER_PAGE = 50
_TAB_FILTERS: dict[str, dict[str, Any]] = {
    "firing": {"status": "firing", "silenced": False},
    "acknowledged": {"status": "acknowledged", "silenced": False},
    "silenced": {"status": "silenced"},
    "resolved": {"status": "resolved"},
}


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """What the alerts page shows: a tab, a page of it, an optional text and severity."""

    tab: AlertTab = "firing"
    page: int = 1
    q: str = ""
    severity: str = ""

    def link(self, **changes: Any) -> str:
        wanted = {**asdict(self), **changes}
        params = {k: v for k, v in wanted.items() if v and not (k == "page" and v == 1)}
        return "?" + urlencode(params)


def _alert_query(
    tab: AlertTab = "firing",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    q: Annotated[str, Query(max_length=200)] = "",
    severity: Annotated[str, Query(max_length=20)] = "",
) -> AlertQuery:
    return AlertQuery(tab, page, q.strip(), severity if severity in SEVERITIES else "")


async def _alert_list(rt: Runtime, query: AlertQuery) -> dict[str, Any]:
    alerts, total = await alert_store.list_alerts(
        rt.db,
        **_TAB_FILTERS[query.tab],
        q=query.q or None,
        severity=query.severity or None,
        limit=ALERTS_PER_PAGE,
        offset=(query.page - 1) * ALERTS_PER_PAGE,
    )
    pages = max(1, -(-total // ALERTS_PER_PAGE))
    return {"alerts": alerts, "total": total, "pages": pages, "query": query, "tab": query.tab}


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(
    request: Request,
    query: AlertQuery = Depends(_alert_query),
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
        tabs=TABS,
        totals=totals,
        severities=SEVERITIES,
        **await _alert_list(rt, query),
    )


@router.get("/alerts/list", response_class=HTMLResponse)
async def alerts_fragment(
    request: Request,
    query: AlertQuery = Depends(_alert_query),
    rt: Runtime = Depends(get_runtime),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    return render(request, "_alert_list.html", principal, **await _alert_list(rt, query))


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
        windows=[(w, source, *_timing(w, now)) for w, source in windows],
        check_names=sorted(rt.check_configs),
    )


def _timing(window: MaintenanceWindow, now: datetime) -> tuple[bool, datetime | None]:
    """Active now, and when that changes; a window that cannot be evaluated is inactive (the
    dispatcher reports it broken) rather than a 500 for the page."""
    try:
        return window.active_at(now), window.next_change(now)
    except Exception:
        return False, None
