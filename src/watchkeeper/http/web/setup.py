"""First run in the browser: `/setup?token=…` (the URL `watchkeeper run` prints while no user
exists) creates the first admin account and logs them in. Not found once a user exists.

The token travels in the query of the printed link and then in a hidden field of the form
(the form posts to plain `/setup`): it is never part of a redirect, and the page asks browsers
not to send it on as a referrer nor to cache it. The token is the form's protection: a forged
post cannot know it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from watchkeeper.auth import passwords, sessions
from watchkeeper.auth.credentials import client_ip
from watchkeeper.core.errors import DomainError, NotFound, Throttled
from watchkeeper.http.audit import add_detail
from watchkeeper.http.deps import get_services
from watchkeeper.http.edge.headers import csp_nonce
from watchkeeper.http.roles import PUBLIC
from watchkeeper.http.web.access import SETUP_PATH
from watchkeeper.services import Services
from watchkeeper.services.setup import SETUP_DONE

router = APIRouter(include_in_schema=False, dependencies=[Depends(PUBLIC)])

MAX_FIELD = 4096
"""Longer form fields are refused unread (the password's own limit is lower)."""


def _page(
    request: Request,
    token: str | None,
    error: str | None = None,
    status: int = 200,
    username: str = "",
) -> HTMLResponse:
    html = request.app.state.templates.get_template("setup.html").render(
        token=token,
        error=error,
        username=username,
        min_length=passwords.MIN_LENGTH,
        nonce=csp_nonce(request),
    )
    return HTMLResponse(
        html,
        status_code=status,
        # The URL carries a credential: kept out of caches and other sites' Referer headers.
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@router.get(SETUP_PATH, response_class=HTMLResponse)
async def setup_page(
    request: Request, token: str | None = None, services: Services = Depends(get_services)
) -> Response:
    if not await services.setup.needed():
        raise NotFound(SETUP_DONE)
    # Not checked here: only the form's post is counted by the throttle.
    return _page(request, token if token and len(token) <= MAX_FIELD else None)


@router.post(SETUP_PATH, response_class=HTMLResponse)
async def setup(request: Request, services: Services = Depends(get_services)) -> Response:
    if not await services.setup.needed():
        raise NotFound(SETUP_DONE)
    if not sessions.is_form(request):
        return _page(request, None, "Create the account with the form.", 400)
    form = await request.form()
    fields = {
        name: value if isinstance(value := form.get(name), str) else ""
        for name in ("token", "username", "password", "confirm")
    }
    if any(len(value) > MAX_FIELD for value in fields.values()):
        return _page(request, None, "A field is too long.", 400)
    token = fields["token"]
    try:
        user, session_id, _session = await services.setup.create_admin(
            token,
            fields["username"],
            fields["password"],
            fields["confirm"],
            source_ip=client_ip(request),
        )
    except NotFound:
        raise
    except DomainError as exc:
        # A refused token is not shown again: the one pasted or linked did not work.
        keep = token if exc.status == 422 else None
        response = _page(request, keep, _sentence(exc.detail), exc.status, fields["username"])
        if isinstance(exc, Throttled):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    add_detail(request, username=user.username, role=user.role.value)
    done = RedirectResponse("/dashboard", 303)
    sessions.set_session_cookie(
        done,
        session_id,
        services.sessions.ttl,
        sessions.cookie_secure(request, services.sessions.public_url),
    )
    return done


def _sentence(detail: str) -> str:
    return detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else ".")
