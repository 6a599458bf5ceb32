"""Dashboard actions (POST forms): the same core calls as the API, then back to the page.

Plain forms with a `csrf_token` field work without JavaScript; htmx (`hx-boost`) sends them
in the background and swaps the page it is redirected to.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from watchkeeper.core.errors import Conflict, Invalid, NotFound
from watchkeeper.http.audit import add_detail
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Principal, Role
from watchkeeper.http.web.access import page, safe_next
from watchkeeper.services import Services
from watchkeeper.services.recovery import Verdict

# One route per action (not `/{action}`), so the audit log names each one.
router = APIRouter(prefix="/dashboard", include_in_schema=False)
OPERATOR = Depends(page(Role.OPERATOR))


def back(next_url: str | None, notice: str | None = None) -> RedirectResponse:
    target = safe_next(next_url)
    if notice:
        target += ("&" if "?" in target else "?") + "notice=" + quote(notice)
    return RedirectResponse(target, 303)


async def _alert_action(change: Awaitable[Any]) -> str | None:
    """Apply a change to an alert; an error message for the page, or None."""
    try:
        await change
    except (NotFound, Conflict) as exc:
        return exc.detail
    return None


@router.post("/alerts/{alert_id}/ack")
async def acknowledge(
    alert_id: str,
    next: str = Form("/dashboard/alerts"),
    comment: str = Form("", max_length=4000),
    principal: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    error = await _alert_action(
        services.alerts.acknowledge(alert_id, principal.name, comment or None)
    )
    return back(next, error or "acknowledged")


@router.post("/alerts/{alert_id}/resolve")
async def resolve(
    alert_id: str,
    next: str = Form("/dashboard/alerts"),
    comment: str = Form("", max_length=4000),
    principal: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    error = await _alert_action(services.alerts.resolve(alert_id, principal.name, comment or None))
    return back(next, error or "resolved")


@router.post("/alerts/{alert_id}/comment")
async def comment(
    alert_id: str,
    comment: str = Form(min_length=1, max_length=4000),
    next: str = Form("/dashboard/alerts"),
    principal: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    error = await _alert_action(services.alerts.comment(alert_id, principal.name, comment))
    return back(next, error or "comment added")


@router.post("/alerts/{alert_id}/silence")
async def silence_alert(
    alert_id: str,
    duration: str = Form("1h", max_length=20),
    next: str = Form("/dashboard/alerts"),
    principal: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    try:
        await services.silences.silence_alert(alert_id, duration, created_by=principal.name)
    except (NotFound, Invalid) as exc:
        return back(next, exc.detail)
    return back(next, f"silenced for {duration}")


@router.post("/checks/{name}/pause")
async def pause(
    name: str,
    next: str = Form("/dashboard"),
    _p: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    await services.checks.pause(name)
    return back(next, f"{name} paused")


@router.post("/checks/{name}/resume")
async def resume(
    name: str,
    next: str = Form("/dashboard"),
    _p: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    await services.checks.resume(name)
    return back(next, f"{name} resumed")


@router.post("/checks/{name}/run")
async def run_now(
    name: str,
    next: str = Form("/dashboard"),
    _p: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    try:
        services.checks.run_now(name)
    except Conflict:
        return back(next, f"{name} is not scheduled")
    return back(next, f"{name} queued to run")


@router.post("/silences")
async def create_silence_form(
    matchers: str = Form(min_length=1, max_length=4000),
    duration: str = Form("1h", max_length=20),
    comment: str = Form("", max_length=4000),
    next: str = Form("/dashboard/silences"),
    principal: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    lines = [line.strip() for line in matchers.replace(",", "\n").splitlines() if line.strip()]
    try:
        await services.silences.create_for(
            lines, duration, created_by=principal.name, comment=comment
        )
    except Invalid as exc:
        return back(next, f"not created: {exc.detail}")
    return back(next, "silence created")


@router.post("/silences/{silence_id}/expire")
async def expire(
    silence_id: str,
    next: str = Form("/dashboard/silences"),
    _p: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    try:
        await services.silences.expire(silence_id)
    except NotFound as exc:
        return back(next, exc.detail)
    return back(next, "silence expired")


@router.post("/maintenance")
async def create_window(
    name: str = Form(max_length=100),
    duration: str = Form("1h", max_length=20),
    checks: list[str] = Form(default_factory=list),
    comment: str = Form("", max_length=4000),
    next: str = Form("/dashboard/maintenance"),
    principal: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    try:
        await services.maintenance.start_now(
            name, duration, checks=checks, comment=comment, created_by=principal.name
        )
    except Invalid as exc:
        return back(next, f"not created: {exc.detail}")
    except Conflict as exc:
        return back(next, exc.detail)
    return back(next, f"maintenance {name} started")


@router.post("/incidents")
async def create_incident(
    name: str = Form(max_length=200),
    page: str = Form(max_length=64),
    impact: str = Form("minor", max_length=16),
    components: list[str] = Form(default_factory=list),
    body: str = Form("", max_length=20000),
    draft: str = Form(""),
    next: str = Form("/dashboard/incidents"),
    principal: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    try:
        await services.incidents.create(
            name=name,
            actor=principal.name,
            page=page,
            impact=impact,
            body=body or None,
            components=dict.fromkeys(components, ""),
            draft=bool(draft),
        )
    except Invalid as exc:
        return back(next, f"not opened: {exc.detail}")
    return back(next, "incident opened")


@router.post("/incidents/{incident_id}/update")
async def update_incident(
    incident_id: str,
    status: str = Form(max_length=16),
    body: str = Form("", max_length=20000),
    publish: str = Form(""),
    next: str = Form("/dashboard/incidents"),
    principal: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    try:
        await services.incidents.update(
            incident_id,
            actor=principal.name,
            status=status,
            body=body or None,
            draft=False if publish else None,
        )
    except (Invalid, Conflict, NotFound) as exc:
        return back(next, f"not updated: {exc.detail}")
    return back(next, f"incident {status}")


@router.post("/maintenance/{name}/delete")
async def delete_maintenance(
    name: str,
    next: str = Form("/dashboard/maintenance"),
    _p: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    try:
        await services.maintenance.delete(name)
    except (Conflict, NotFound) as exc:
        return back(next, exc.detail)
    return back(next, f"maintenance {name} ended")


@router.post("/recovery/{name}/run")
async def run_recovery(
    name: str,
    next: str = Form("/dashboard/recovery"),
    principal: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    try:
        run = await services.recovery.start(name, actor=principal.name)
    except (NotFound, Conflict) as exc:
        return back(next, exc.detail)
    if run["status"] == "pending_approval":
        return back(next, f"{name} is waiting for approval")
    return back(next, f"{name} started")


@router.post("/recovery/{name}/reset")
async def reset_recovery(
    name: str,
    next: str = Form("/dashboard/recovery"),
    _p: Principal = OPERATOR,
    services: Services = Depends(get_services),
) -> RedirectResponse:
    try:
        await services.recovery.reset(name)
    except NotFound as exc:
        return back(next, exc.detail)
    return back(next, f"{name} reset")


class _RunDecision:
    """Approving and rejecting a recovery run read the same form: one dependency for both."""

    def __init__(
        self,
        run_id: str,
        request: Request,
        comment: str = Form("", max_length=1000),
        next: str = Form("/dashboard/recovery"),
        principal: Principal = OPERATOR,
        services: Services = Depends(get_services),
    ) -> None:
        self.run_id = run_id
        self.request = request
        self.comment = comment
        self.next = next
        self.actor = principal.name
        self.services = services

    async def __call__(self, verdict: Verdict) -> RedirectResponse:
        add_detail(self.request, run=self.run_id, decision=verdict, comment=self.comment)
        try:
            run = await self.services.recovery.decide(
                self.run_id, verdict, actor=self.actor, comment=self.comment
            )
        except (NotFound, Conflict) as exc:
            return back(self.next, exc.detail)
        return back(self.next, f"{run['action']} {verdict}")


@router.post("/recovery/runs/{run_id}/approve")
async def approve_recovery(decide: _RunDecision = Depends()) -> RedirectResponse:
    return await decide("approved")


@router.post("/recovery/runs/{run_id}/reject")
async def reject_recovery(decide: _RunDecision = Depends()) -> RedirectResponse:
    return await decide("rejected")
