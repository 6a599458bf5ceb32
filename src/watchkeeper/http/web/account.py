"""The dashboard's account page: who you are, and changing your own password.

The form posts without htmx (a plain page load, so password managers see it); a refused
change re-renders the page with its error and status, a made one redirects with a notice.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from watchkeeper.core.errors import DomainError, Throttled
from watchkeeper.http.api.auth import change_own_password
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Principal, Role
from watchkeeper.http.web.access import page
from watchkeeper.http.web.actions import back
from watchkeeper.http.web.pages import render
from watchkeeper.services import Services

router = APIRouter(prefix="/dashboard/account", include_in_schema=False)
SELF = Depends(page(Role.VIEWER))
"""Anyone logged in manages their own account."""

ACCOUNT_PATH = "/dashboard/account"


def _account(
    request: Request, principal: Principal, error: str | None = None, status: int = 200
) -> HTMLResponse:
    response = render(request, "account.html", principal, error=error)
    response.status_code = status
    return response


@router.get("", response_class=HTMLResponse)
async def account_page(request: Request, principal: Principal = SELF) -> HTMLResponse:
    return _account(request, principal)


@router.post("/password")
async def change_password(
    request: Request,
    current_password: str = Form(max_length=4096),
    new_password: str = Form(max_length=4096),
    confirm_password: str = Form(max_length=4096),
    principal: Principal = SELF,
    services: Services = Depends(get_services),
) -> Response:
    if new_password != confirm_password:
        return _account(request, principal, "The new passwords do not match.", 422)
    try:
        ended = await change_own_password(
            request, services, principal, current_password, new_password
        )
    except DomainError as exc:
        response = _account(request, principal, _sentence(exc.detail), exc.status)
        if isinstance(exc, Throttled):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    sessions = "session" if ended == 1 else "sessions"
    return back(ACCOUNT_PATH, f"password changed; {ended} other {sessions} ended")


def _sentence(detail: str) -> str:
    return detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else ".")
