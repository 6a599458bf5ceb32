"""The dashboard's login form: a session cookie, then back to the page that asked."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from watchkeeper.app import Runtime
from watchkeeper.auth import sessions
from watchkeeper.http.api.auth import LoginIn, sign_in
from watchkeeper.http.deps import get_runtime
from watchkeeper.http.edge.headers import csp_nonce
from watchkeeper.http.roles import PUBLIC
from watchkeeper.http.web.access import LOGIN_PATH, safe_next

router = APIRouter(prefix="/dashboard", include_in_schema=False, dependencies=[Depends(PUBLIC)])


def _form(
    request: Request,
    rt: Runtime,
    next_url: str,
    error: str | None,
    status: int,
    username: str = "",
) -> Response:
    secure = sessions.cookie_secure(request, rt.config.server.public_url)
    response = HTMLResponse("", status_code=status, headers={"Cache-Control": "no-store"})
    token = sessions.issue_login_csrf(response, secure, path=LOGIN_PATH)
    html = request.app.state.templates.get_template("login.html").render(
        csrf=token, next=next_url, error=error, username=username, nonce=csp_nonce(request)
    )
    response.body = response.render(html)
    response.headers["content-length"] = str(len(response.body))
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request, next: str | None = None, rt: Runtime = Depends(get_runtime)
) -> Response:
    return _form(request, rt, safe_next(next), None, 200)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, rt: Runtime = Depends(get_runtime)) -> Response:
    if not sessions.is_form(request):
        return _form(request, rt, "/dashboard", "Log in with the form.", 400)
    form = await request.form()
    next_url = safe_next(str(form.get("next") or ""))
    given = form.get(sessions.CSRF_FIELD)
    expected = request.cookies.get(sessions.LOGIN_CSRF_COOKIE)
    if not sessions.tokens_match(expected, given if isinstance(given, str) else None):
        return _form(request, rt, next_url, "The form expired; please try again.", 403)
    try:
        credentials = LoginIn.model_validate(
            {"username": form.get("username"), "password": form.get("password")}
        )
        session_id, _session = await sign_in(request, rt, credentials)
    except ValidationError:
        return _form(request, rt, next_url, "Enter a username and a password.", 400)
    except HTTPException as exc:
        message = "Wrong username or password." if exc.status_code == 401 else str(exc.detail)
        return _form(request, rt, next_url, message, exc.status_code, credentials.username)
    response = RedirectResponse(next_url, 303)
    sessions.set_session_cookie(
        response,
        session_id,
        rt.config.auth.session_ttl,
        sessions.cookie_secure(request, rt.config.server.public_url),
    )
    return response
