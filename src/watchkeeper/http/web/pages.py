"""Dashboard pages (GET): overview, checks, alerts, metrics, silences, maintenance."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from watchkeeper.http.deps import get_services
from watchkeeper.http.edge.headers import csp_nonce
from watchkeeper.http.roles import Principal, Role
from watchkeeper.http.web import views
from watchkeeper.http.web.access import page
from watchkeeper.http.web.sparkline import timeline
from watchkeeper.services import Services
from watchkeeper.services.alerts import SEVERITIES
from watchkeeper.services.series import DEFAULT_RANGE, RANGES

router = APIRouter(prefix="/dashboard", include_in_schema=False)
VIEWER = Depends(page(Role.VIEWER))

AlertTab = Literal["firing", "acknowledged", "silenced", "resolved"]
TABS: tuple[AlertTab, ...] = ("firing", "acknowledged", "silenced", "resolved")


def render(request: Request, name: str, principal: Principal, **context: Any) -> HTMLResponse:
    services = get_services(request)
    template = request.app.state.templates.get_template(name)
    html = template.render(
        user=principal,
        can_act=principal.role.allows(Role.OPERATOR),
        csrf=principal.csrf_token or "",
        nonce=csp_nonce(request),
        path=request.url.path,
        notice=request.query_params.get("notice"),
        now=services.dashboard.now(),
        **context,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("", response_class=HTMLResponse)
async def overview(
    request: Request,
    state: str | None = None,
    q: str | None = None,
    services: Services = Depends(get_services),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    now = services.dashboard.now()
    await services.checks.flush()  # rows show the results that made their state
    configs = views.select_checks(services, state if state in views.STATES else None, q)
    rows = views.sort_rows(await views.check_rows(services, configs, now))
    return render(
        request,
        "overview.html",
        principal,
        rows=rows,
        summary=await views.summary(services, now),
        state=state,
        q=q or "",
        states=views.STATES,
    )


def _check_context(services: Services, name: str) -> dict[str, Any]:
    config = services.checks.config(name)
    state = services.checks.state(name)
    return {"check": config, "state": state, "status": services.checks.status(name)}


@router.get("/checks/{name}", response_class=HTMLResponse)
async def check_page(
    request: Request,
    name: str,
    range: str = "24h",
    services: Services = Depends(get_services),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    context = _check_context(services, name)
    if range not in RANGES:
        range = DEFAULT_RANGE
    window = await services.series.window(range)
    found = await services.series.buckets([name], window.since, window.until, window.step)
    series = found.get(name, [])
    count = sum(p.count for p in series)
    alerts, _ = await services.alerts.list_alerts(status="open", check=name, limit=20)
    return render(
        request,
        "check.html",
        principal,
        **context,
        **await _recovery_of_check(services, context["check"]),
        range=range,
        ranges=list(RANGES),
        timeline=timeline(series),
        uptime=sum(p.available for p in series) / count if count else None,
        results=await services.checks.history(name, 30),
        alerts=alerts,
    )


RECOVERY_RUNS_SHOWN = 20


async def _recovery_of_check(services: Services, config: Any) -> dict[str, Any]:
    """The check page's recovery section: its action's state and the runs for it."""
    action = None
    if getattr(config, "recovery", None) is not None:
        action = next((a for a in services.recovery.actions() if a.name == config.recovery), None)
    runs, _ = await services.recovery.runs(
        action=None, check=config.name, limit=RECOVERY_RUNS_SHOWN, offset=0
    )
    return {
        "recovery_action": action,
        **_runs_context(runs, f"/dashboard/recovery/runs?check={config.name}"),
    }


def _runs_context(runs: list[dict[str, Any]], src: str) -> dict[str, Any]:
    # While a run is in progress the table reloads itself, showing its output as it grows.
    return {"runs": runs, "runs_src": src, "live": any(r["status"] == "running" for r in runs)}


@router.get("/recovery", response_class=HTMLResponse)
async def recovery_page(
    request: Request, services: Services = Depends(get_services), principal: Principal = VIEWER
) -> HTMLResponse:
    runs, _ = await services.recovery.runs(
        action=None, check=None, limit=RECOVERY_RUNS_SHOWN, offset=0
    )
    return render(
        request,
        "recovery.html",
        principal,
        actions=services.recovery.actions(),
        pending=await services.recovery.pending(),
        **_runs_context(runs, "/dashboard/recovery/runs"),
    )


@router.get("/recovery/runs", response_class=HTMLResponse)
async def recovery_runs(
    request: Request,
    check: str | None = Query(default=None, max_length=100),
    services: Services = Depends(get_services),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    """The runs table alone (it reloads itself while a run is in progress)."""
    runs, _ = await services.recovery.runs(
        action=None, check=check, limit=RECOVERY_RUNS_SHOWN, offset=0
    )
    src = "/dashboard/recovery/runs" + (f"?{urlencode({'check': check})}" if check else "")
    return render(request, "_recovery_runs.html", principal, **_runs_context(runs, src))


@router.get("/checks/{name}/header", response_class=HTMLResponse)
async def check_header(
    request: Request,
    name: str,
    services: Services = Depends(get_services),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    return render(request, "_check_header.html", principal, **_check_context(services, name))


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


async def _alert_list(services: Services, query: AlertQuery) -> dict[str, Any]:
    alerts, total = await services.alerts.list_alerts(
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
    services: Services = Depends(get_services),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    counts = await services.alerts.counts()
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
        **await _alert_list(services, query),
    )


@router.get("/alerts/list", response_class=HTMLResponse)
async def alerts_fragment(
    request: Request,
    query: AlertQuery = Depends(_alert_query),
    services: Services = Depends(get_services),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    return render(request, "_alert_list.html", principal, **await _alert_list(services, query))


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
async def alert_page(
    request: Request,
    alert_id: str,
    services: Services = Depends(get_services),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    alert, events = await services.alerts.get(alert_id)
    return render(request, "alert.html", principal, alert=alert, events=events)


@router.get("/metrics", response_class=HTMLResponse)
async def metrics_page(
    request: Request,
    range: str = "24h",
    name: str | None = None,
    services: Services = Depends(get_services),
    principal: Principal = VIEWER,
) -> HTMLResponse:
    system = [c.name for c in services.checks.configs.values() if c.type == "system"]
    return render(
        request,
        "metrics.html",
        principal,
        system_checks=system,
        range=range if range in RANGES else DEFAULT_RANGE,
        ranges=list(RANGES),
        series_name=name or "",
    )


@router.get("/silences", response_class=HTMLResponse)
async def silences_page(
    request: Request, services: Services = Depends(get_services), principal: Principal = VIEWER
) -> HTMLResponse:
    now = services.dashboard.now()
    silences = await services.silences.list_silences(ended_since=now)
    return render(request, "silences.html", principal, silences=silences)


@router.get("/incidents", response_class=HTMLResponse)
async def incidents_page(
    request: Request, services: Services = Depends(get_services), principal: Principal = VIEWER
) -> HTMLResponse:
    incidents, _total = await services.incidents.list_incidents(limit=200)
    incidents.sort(key=lambda i: i.resolved)  # open ones first, each group newest first
    pages = services.incidents.configured_pages()
    return render(
        request,
        "incidents.html",
        principal,
        incidents=incidents,
        pages=pages,
        page_urls={
            p.slug: "/status" if i == 0 else f"/status/{p.slug}" for i, p in enumerate(pages)
        },
    )


@router.get("/maintenance", response_class=HTMLResponse)
async def maintenance_page(
    request: Request, services: Services = Depends(get_services), principal: Principal = VIEWER
) -> HTMLResponse:
    windows = await services.maintenance.timed_windows()
    return render(
        request,
        "maintenance.html",
        principal,
        windows=[(t.window, t.source, t.active, t.next_change) for t in windows],
        check_names=sorted(services.checks.configs),
    )
