"""`/auth`: browser login (a session cookie and its CSRF token), logout, who am I, and
changing one's own password."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from watchkeeper.app import Runtime
from watchkeeper.auth import passwords, sessions, users
from watchkeeper.auth.credentials import client_ip
from watchkeeper.http import audit, problems
from watchkeeper.http.api.schemas import Text
from watchkeeper.http.deps import get_runtime
from watchkeeper.http.roles import CHALLENGE, PUBLIC, Principal, Role, require

log = logging.getLogger(__name__)

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


def _secure(request: Request, rt: Runtime) -> bool:
    return sessions.cookie_secure(request, rt.config.server.public_url)


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


async def _refused(
    request: Request, rt: Runtime, actor: tuple[str, str], status: int, detail: dict[str, Any]
) -> None:
    """Audit a failed or throttled attempt (the audit middleware records successes only)."""
    try:
        await audit.record(
            rt.db,
            at=rt.clock.now(),
            actor=actor[0],
            actor_kind=actor[1],
            action=f"POST {request.url.path}",
            target=request.url.path,
            status=status,
            detail=detail,
            source_ip=client_ip(request),
        )
    except Exception:
        # The attempt is counted already; the caller still gets its 401/403/429, not a 500.
        log.exception("could not write the audit entry for a refused %s", request.url.path)


def _too_many(wait: int, what: str) -> HTTPException:
    return HTTPException(
        429, f"too many failed {what}; try again in {wait} s", {"Retry-After": str(wait)}
    )


async def sign_in(
    request: Request, rt: Runtime, credentials: LoginIn
) -> tuple[str, sessions.Session]:
    """Check a login under the throttle; a new session (cookie value, session) or a 401/429.
    Shared by `POST /auth/login` and the dashboard's login form.

    The attempt is counted as a failure before the password is verified (see
    auth/throttle.py), and every refused attempt, throttled or wrong, is audited."""
    username = users.normalize_username(credentials.username)
    ip = client_ip(request)
    anonymous = ("anonymous", "anonymous")
    wait = await rt.throttle.attempt(username, ip)
    if wait is not None:
        # Refused without looking at the password: guessing on is pointless until then.
        detail = {"username": username, "outcome": "throttled", "retry_after": wait}
        await _refused(request, rt, anonymous, 429, detail)
        raise _too_many(wait, "logins")
    now = rt.clock.now()
    user = await users.verify_login(
        rt.db, username, credentials.password, now, run=rt.passwords.run
    )
    if user is None:
        detail = {"username": username, "outcome": "wrong username or password"}
        await _refused(request, rt, anonymous, 401, detail)
        raise HTTPException(401, "wrong username or password", CHALLENGE)
    await rt.throttle.record_success(username)
    session_id, session = await sessions.create_session(
        rt.db, user, now, rt.config.auth.session_ttl, ip
    )
    request.state.principal = Principal(user.username, user.role, "user", ip, id=user.id)
    return session_id, session


NO_PASSWORD = (
    "only a logged-in user has a password to change: API tokens have none (an admin "
    "replaces a token by making a new one and revoking this one, and resets a user's password "
    "with PUT /api/v1/users/{username}/password)"
)
WRONG_PASSWORD = "the current password is wrong"


async def change_own_password(
    request: Request, rt: Runtime, principal: Principal, current: str, new: str
) -> int:
    """Change the logged-in user's password: the current one is checked under the login
    throttle (so a borrowed session cannot be used to guess it), every other session of the
    user ends, this one stays. The number of sessions ended; else a 403, 422 or 429.
    Shared by `POST /auth/password` and the dashboard's account page."""
    session_id = request.cookies.get(sessions.COOKIE)
    if principal.kind != "user" or not session_id:
        raise HTTPException(403, NO_PASSWORD)
    try:
        passwords.check_strength(new)
    except ValueError as exc:
        raise HTTPException(422, f"new_password: {exc}") from None
    username = principal.name
    wait = await rt.throttle.attempt(username, client_ip(request))
    if wait is not None:
        detail = {"outcome": "throttled", "retry_after": wait}
        await _refused(request, rt, (username, "user"), 429, detail)
        raise _too_many(wait, "attempts")
    if await users.check_password(rt.db, username, current, run=rt.passwords.run) is None:
        await _refused(request, rt, (username, "user"), 403, {"outcome": WRONG_PASSWORD})
        raise HTTPException(403, WRONG_PASSWORD)
    await rt.throttle.record_success(username)
    try:
        changed = await users.set_password(
            rt.db,
            username,
            new,
            keep_session=sessions.session_hash(session_id),
            run=rt.passwords.run,
        )
    except ValueError as exc:
        raise HTTPException(422, f"new_password: {exc}") from None
    if changed is None:  # deleted between the check and the change
        raise HTTPException(401, "the session has ended; log in again", CHALLENGE)
    user, ended = changed
    audit.add_detail(request, id=user.id, username=user.username, other_sessions_ended=ended)
    return ended


@router.get(
    "/login",
    response_model=LoginFormOut,
    dependencies=[Depends(PUBLIC)],
    summary="A CSRF token for a login form (sets its cookie)",
)
async def login_form(
    request: Request, response: Response, rt: Runtime = Depends(get_runtime)
) -> LoginFormOut:
    return LoginFormOut(csrf_token=sessions.issue_login_csrf(response, _secure(request, rt)))


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
    request: Request, response: Response, rt: Runtime = Depends(get_runtime)
) -> LoginOut:
    credentials = await _credentials(request)
    session_id, session = await sign_in(request, rt, credentials)
    sessions.set_session_cookie(
        response, session_id, rt.config.auth.session_ttl, _secure(request, rt)
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
    rt: Runtime = Depends(get_runtime),
) -> Response:
    session_id = request.cookies.get(sessions.COOKIE)
    if principal.kind == "user" and session_id:
        await sessions.delete_session(rt.db, session_id)
    response = Response(status_code=204)
    sessions.clear_session_cookie(response, _secure(request, rt))
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
    rt: Runtime = Depends(get_runtime),
) -> PasswordChangeOut:
    ended = await change_own_password(
        request, rt, principal, body.current_password, body.new_password
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
