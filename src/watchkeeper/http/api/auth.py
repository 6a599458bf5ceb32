"""`/auth`: browser login (a session cookie and its CSRF token), logout, who am I, and
changing one's own password."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from watchkeeper.auth import sessions
from watchkeeper.auth.credentials import client_ip
from watchkeeper.http import audit, problems
from watchkeeper.http.api.schemas import Text
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import PUBLIC, Principal, Role, require
from watchkeeper.services import Services

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginIn(BaseModel):
    username: Text = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=4096)


class LoginOut(BaseModel):
    username: str
    role: Role
    csrf_token: str
    """Send it back on every write: `X-CSRF-Token` header or `csrf_token` form field."""
    expires_at: datetime


class LoginFormOut(BaseModel):
    csrf_token: str
    """Put it in the login form's `csrf_token` field (its cookie was just set)."""


class PasswordChangeIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=4096)
    new_password: str = Field(min_length=1, max_length=4096)
    """At least 8 characters (at most 1024)."""


class PasswordChangeOut(BaseModel):
    username: str
    other_sessions_ended: int
    """This session stays; every other one of the user's has ended."""


class MeOut(BaseModel):
    name: str
    role: Role
    kind: Literal["user", "token", "anonymous"]
    csrf_token: str | None = None


_CREDENTIALS = {
    "username": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[^\\x00]*$"},
    "password": {"type": "string", "minLength": 1, "maxLength": 4096},
}
_LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": _CREDENTIALS,
                }
            },
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password", "csrf_token"],
                    "properties": {**_CREDENTIALS, "csrf_token": {"type": "string"}},
                }
            },
        },
    }
}


def _secure(request: Request, services: Services) -> bool:
    return sessions.cookie_secure(request, services.sessions.public_url)


async def _credentials(request: Request) -> LoginIn:
    """Username and password from JSON, or from a form that carries its login CSRF token."""
    if sessions.is_form(request):
        form = await request.form()
        given = form.get(sessions.CSRF_FIELD)
        expected = request.cookies.get(sessions.LOGIN_CSRF_COOKIE)
        if not sessions.tokens_match(expected, given if isinstance(given, str) else None):
            raise HTTPException(
                403, "the login form needs its csrf_token (GET /auth/login issues one)"
            )
        data: Any = {"username": form.get("username"), "password": form.get("password")}
    else:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise HTTPException(415, "send application/json or a form")
        try:
            data = await request.json()
        except ValueError:
            raise HTTPException(400, "the body is not valid JSON") from None
    try:
        return LoginIn.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


async def sign_in(
    request: Request, services: Services, credentials: LoginIn
) -> tuple[str, sessions.Session]:
    """Check a login (the sessions service: throttle, audit of refusals); a new session
    (cookie value, session), and the caller's principal set for the audit entry. Shared by
    `POST /auth/login` and the dashboard's login form."""
    ip = client_ip(request)
    session_id, session = await services.sessions.login(
        credentials.username, credentials.password, source_ip=ip, where=request.url.path
    )
    user = session.user
    request.state.principal = Principal(user.username, user.role, "user", ip, id=user.id)
    return session_id, session


async def change_own_password(
    request: Request, services: Services, principal: Principal, current: str, new: str
) -> int:
    """Change the logged-in user's password (see `SessionService.change_password`); the
    number of other sessions ended. Shared by `POST /auth/password` and the dashboard's
    account page."""
    user, ended = await services.sessions.change_password(
        principal,
        request.cookies.get(sessions.COOKIE),
        current,
        new,
        source_ip=client_ip(request),
        where=request.url.path,
    )
    audit.add_detail(request, id=user.id, username=user.username, other_sessions_ended=ended)
    return ended


@router.get(
    "/login",
    response_model=LoginFormOut,
    dependencies=[Depends(PUBLIC)],
    summary="A CSRF token for a login form (sets its cookie)",
)
async def login_form(
    request: Request, response: Response, services: Services = Depends(get_services)
) -> LoginFormOut:
    return LoginFormOut(csrf_token=sessions.issue_login_csrf(response, _secure(request, services)))


@router.post(
    "/login",
    response_model=LoginOut,
    dependencies=[Depends(PUBLIC)],
    summary="Log in: sets the session cookie and returns its CSRF token",
    openapi_extra=_LOGIN_BODY,
    responses={
        **problems.responses(400, 415, 429),
        401: problems.response(401, "Wrong username or password"),
        403: problems.response(403, "A login form without its csrf_token"),
    },
)
async def login(
    request: Request, response: Response, services: Services = Depends(get_services)
) -> LoginOut:
    credentials = await _credentials(request)
    session_id, session = await sign_in(request, services, credentials)
    sessions.set_session_cookie(
        response, session_id, services.sessions.ttl, _secure(request, services)
    )
    user = session.user
    return LoginOut(
        username=user.username,
        role=user.role,
        csrf_token=session.csrf_token,
        expires_at=session.expires_at,
    )


@router.post("/logout", status_code=204, summary="End this browser session")
async def logout(
    request: Request,
    principal: Principal = Depends(require(Role.VIEWER)),
    services: Services = Depends(get_services),
) -> Response:
    session_id = request.cookies.get(sessions.COOKIE)
    if principal.kind == "user" and session_id:
        await services.sessions.logout(session_id)
    response = Response(status_code=204)
    sessions.clear_session_cookie(response, _secure(request, services))
    return response


@router.post(
    "/password",
    response_model=PasswordChangeOut,
    summary="Change your own password; your other sessions end",
    responses={
        **problems.responses(429),
        403: problems.response(
            403,
            "The current password is wrong, the caller is an API token, or a CSRF token is missing",
        ),
    },
)
async def change_password(
    body: PasswordChangeIn,
    request: Request,
    principal: Principal = Depends(require(Role.VIEWER)),
    services: Services = Depends(get_services),
) -> PasswordChangeOut:
    ended = await change_own_password(
        request, services, principal, body.current_password, body.new_password
    )
    return PasswordChangeOut(username=principal.name, other_sessions_ended=ended)


@router.get("/me", response_model=MeOut, summary="Who the caller is, with a session's CSRF token")
async def me(principal: Principal = Depends(require(Role.VIEWER))) -> MeOut:
    return MeOut(
        name=principal.name,
        role=principal.role,
        kind=principal.kind,
        csrf_token=principal.csrf_token,
    )
