"""Dashboard actions (POST forms): the same core calls as the API, then back to the page.

Plain forms with a `csrf_token` field work without JavaScript; htmx (`hx-boost`) sends them
in the background and swaps the page it is redirected to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.alerting.matchers import Matcher, parse_matcher
from watchkeeper.alerting.silences import create_silence, expire_silence
from watchkeeper.alerting.stored_windows import delete_window, save_window
from watchkeeper.app import Runtime
from watchkeeper.core.durations import LONG_SPAN
from watchkeeper.http.api.alerts import change_alert
from watchkeeper.http.api.checks import set_paused
from watchkeeper.http.deps import get_runtime
from watchkeeper.http.roles import Principal, Role
from watchkeeper.http.web.access import page, safe_next
from watchkeeper.store import alerts as alert_store

# One route per action (not `/{action}`), so the audit log names each one.
router = APIRouter(prefix="/dashboard", include_in_schema=False)
OPERATOR = Depends(page(Role.OPERATOR))


def back(next_url: str | None, notice: str | None = None) -> RedirectResponse:
    target = safe_next(next_url)
    if notice:
        target += ("&" if "?" in target else "?") + "notice=" + quote(notice)
    return RedirectResponse(target, 303)


def _duration(text: str, field: str) -> timedelta:
    try:
        return LONG_SPAN.parse(text)  # the bounds of the API's and the config file's silences
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


async def _alert_action(
    rt: Runtime,
    alert_id: str,
    action: Callable[..., Awaitable[Any]],
    *args: Any,
) -> str | None:
    """Apply a lifecycle action; an error message for the page, or None."""
    try:
        await change_alert(rt, alert_id, action, *args)
    except KeyError:
        return "no such alert"
    except lifecycle.AlertStateError as exc:
        return str(exc)
    return None


@router.post("/alerts/{alert_id}/ack")
async def acknowledge(
    alert_id: str,
    next: str = Form("/dashboard/alerts"),
    comment: str = Form("", max_length=4000),
    principal: Principal = OPERATOR,
    rt: Runtime = Depends(get_runtime),
) -> RedirectResponse:
    error = await _alert_action(
        rt, alert_id, lifecycle.acknowledge, principal.name, comment or None
    )
    return back(next, error or "acknowledged")


@router.post("/alerts/{alert_id}/resolve")
async def resolve(
    alert_id: str,
    next: str = Form("/dashboard/alerts"),
    comment: str = Form("", max_length=4000),
    principal: Principal = OPERATOR,
    rt: Runtime = Depends(get_runtime),
) -> RedirectResponse:
    error = await _alert_action(
        rt, alert_id, lifecycle.resolve_by_id, principal.name, comment or None
    )
    return back(next, error or "resolved")


@router.post("/alerts/{alert_id}/comment")
async def comment(
    alert_id: str,
    comment: str = Form(min_length=1, max_length=4000),
    next: str = Form("/dashboard/alerts"),
    principal: Principal = OPERATOR,
    rt: Runtime = Depends(get_runtime),
) -> RedirectResponse:
    error = await _alert_action(rt, alert_id, lifecycle.add_comment, principal.name, comment)
    return back(next, error or "comment added")


@router.post("/alerts/{alert_id}/silence")
async def silence_alert(
    alert_id: str,
    duration: str = Form("1h", max_length=20),
    next: str = Form("/dashboard/alerts"),
    principal: Principal = OPERATOR,
    rt: Runtime = Depends(get_runtime),
) -> RedirectResponse:
    found = await alert_store.get_alert(rt.db, alert_id)
    if found is None:
        return back(next, "no such alert")
    alert = found[0]
    matchers = [Matcher("alertname", alert.name)]
    if alert.check:
        matchers.append(Matcher("check", alert.check))
    try:
        length = _duration(duration, "duration")
    except ValueError as exc:
        return back(next, str(exc))
    now = rt.clock.now()
    await create_silence(
        rt.db, matchers, now, now + length, principal.name, f"silenced from alert {alert.id}", now
    )
    rt.wake_dispatcher()
    return back(next, f"silenced for {duration}")


@router.post("/checks/{name}/pause")
async def pause(
    name: str,
    next: str = Form("/dashboard"),
    _p: Principal = OPERATOR,
    rt: Runtime = Depends(get_runtime),
) -> RedirectResponse:
    await set_paused(rt, name, True)
    return back(next, f"{name} paused")


@router.post("/checks/{name}/resume")
async def resume(
    name: str,
    next: str = Form("/dashboard"),
    _p: Principal = OPERATOR,
    rt: Runtime = Depends(get_runtime),
) -> RedirectResponse:
    await set_paused(rt, name, False)
    return back(next, f"{name} resumed")


@router.post("/checks/{name}/run")
async def run_now(
    name: str,
    next: str = Form("/dashboard"),
    _p: Principal = OPERATOR,
    rt: Runtime = Depends(get_runtime),
) -> RedirectResponse:
    if name not in rt.check_configs:
        raise HTTPException(404, f"no check named {name!r}")
    queued = rt.scheduler.run_now(name)
    return back(next, f"{name} queued to run" if queued else f"{name} is not scheduled")


@router.post("/silences")
async def create_silence_form(
    matchers: str = Form(min_length=1, max_length=4000),
    duration: str = Form("1h", max_length=20),
    comment: str = Form("", max_length=4000),
    next: str = Form("/dashboard/silences"),
    principal: Principal = OPERATOR,
    rt: Runtime = Depends(get_runtime),
) -> RedirectResponse:
    try:
        parsed = [
            parse_matcher(line.strip())
            for line in matchers.replace(",", "\n").splitlines()
            if line.strip()
        ]
        length = _duration(duration, "duration")
        now = rt.clock.now()
        await create_silence(rt.db, parsed, now, now + length, principal.name, comment, now)
    except ValueError as exc:
        return back(next, f"not created: {exc}")
    rt.wake_dispatcher()
    return back(next, "silence created")


@router.post("/silences/{silence_id}/expire")
async def expire(
    silence_id: str,
    next: str = Form("/dashboard/silences"),
    _p: Principal = OPERATOR,
    rt: Runtime = Depends(get_runtime),
) -> RedirectResponse:
    if await expire_silence(rt.db, silence_id, rt.clock.now()) is None:
        return back(next, "no such silence")
    rt.wake_dispatcher()
    return back(next, "silence expired")


@router.post("/maintenance")
async def create_window(
    name: str = Form(max_length=100),
    duration: str = Form("1h", max_length=20),
    checks: list[str] = Form(default_factory=list),
    comment: str = Form("", max_length=4000),
    next: str = Form("/dashboard/maintenance"),
    principal: Principal = OPERATOR,
    rt: Runtime = Depends(get_runtime),
) -> RedirectResponse:
    now = rt.clock.now()
    try:
        length = _duration(duration, "duration")
        window = MaintenanceWindow.model_validate(
            {
                "name": name,
                "starts_at": now,
                "ends_at": now + length,
                "checks": checks,
                "comment": comment,
            }
        )
    except (ValueError, ValidationError) as exc:
        return back(next, f"not created: {_first_error(exc)}")
    if any(w.name == window.name for w in rt.config.maintenance):
        return back(next, f"a maintenance window named {name!r} exists")
    try:
        await save_window(rt.db, window, principal.name, now)
    except KeyError:
        return back(next, f"a maintenance window named {name!r} exists")
    rt.wake_dispatcher()
    return back(next, f"maintenance {name} started")


@router.post("/maintenance/{name}/delete")
async def delete_maintenance(
    name: str,
    next: str = Form("/dashboard/maintenance"),
    _p: Principal = OPERATOR,
    rt: Runtime = Depends(get_runtime),
) -> RedirectResponse:
    if any(w.name == name for w in rt.config.maintenance):
        return back(next, "this window comes from the config file; edit it there")
    if not await delete_window(rt.db, name):
        return back(next, "no such maintenance window")
    rt.wake_dispatcher()
    return back(next, f"maintenance {name} ended")


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in error["loc"])
        return f"{where}: {error['msg']}" if where else str(error["msg"])
    return str(exc)
