"""The dashboard's login form: a session cookie, then back to the page that asked."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from watchkeeper.auth import sessions
from watchkeeper.core.errors import DomainError
from watchkeeper.http.api.auth import LoginIn, sign_in
from watchkeeper.http.deps import get_services
from watchkeeper.http.edge.headers import csp_nonce
from watchkeeper.http.roles import PUBLIC
from watchkeeper.http.web.access import LOGIN_PATH, safe_next
from watchkeeper.services import Services

router = APIRouter(prefix="/dashboard", include_in_schema=False, dependencies=[Depends(PUBLIC)])


async def _form(
    request: Request,
    services: Services,
    next_url: str,
    error: str | None,
    status: int,
    username: str = "",
) -> Response:
    secure = sessions.cookie_secure(request, services.sessions.public_url)
    response = HTMLResponse("", status_code=status, headers={"Cache-Control": "no-store"})
    token = sessions.issue_login_csrf(response, secure, path=LOGIN_PATH)
    html = request.app.state.templates.get_template("login.html").render(
        csrf=token,
        next=next_url,
        error=error,
        username=username,
        nonce=csp_nonce(request),
        # Nobody can log in yet: say where the first account is made.
        setup=await services.setup.needed(),
    )
    response.body = response.render(html)
    response.headers["content-length"] = str(len(response.body))
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request, next: str | None = None, services: Services = Depends(get_services)
) -> Response:
    return await _form(request, services, safe_next(next), None, 200)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, services: Services = Depends(get_services)) -> Response:
    if not sessions.is_form(request):
        return await _form(request, services, "/dashboard", "Log in with the form.", 400)
    form = await request.form()
    next_url = safe_next(str(form.get("next") or ""))
    given = form.get(sessions.CSRF_FIELD)
    expected = request.cookies.get(sessions.LOGIN_CSRF_COOKIE)
    if not sessions.tokens_match(expected, given if isinstance(given, str) else None):
        return await _form(request, services, next_url, "The form expired; please try again.", 403)
    try:
        credentials = LoginIn.model_validate(
            {"username": form.get("username"), "password": form.get("password")}
        )
        session_id, _session = await sign_in(request, services, credentials)
    except ValidationError:
        return await _form(request, services, next_url, "Enter a username and a password.", 400)
    except DomainError as exc:
        message = "Wrong username or password." if exc.status == 401 else exc.detail
        return await _form(request, services, next_url, message, exc.status, credentials.username)
    response = RedirectResponse(next_url, 303)
    sessions.set_session_cookie(
        response,
        session_id,
        services.sessions.ttl,
        sessions.cookie_secure(request, services.sessions.public_url),
    )
    return response
