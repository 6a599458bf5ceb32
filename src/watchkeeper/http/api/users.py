"""`/api/v1/users` (admin): the people who log in.

At least one admin *user* remains once there is one: deleting or demoting the last is a 409
(admin API tokens do not count: they cannot log in to the dashboard, and they expire)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from watchkeeper.app import Runtime
from watchkeeper.auth import users as user_store
from watchkeeper.http import audit, problems
from watchkeeper.http.api.schemas import Limit, Offset, Page
from watchkeeper.http.deps import get_runtime
from watchkeeper.http.roles import Role, require

router = APIRouter(
    prefix="/api/v1/users", tags=["users"], dependencies=[Depends(require(Role.ADMIN))]
)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=4096)
    role: Role


class UserPatch(BaseModel):
    role: Role
    """Takes effect on the user's next request, in sessions already open too."""


class PasswordResetIn(BaseModel):
    new_password: str = Field(min_length=1, max_length=4096)
    """At least 8 characters (at most 1024)."""


class UserOut(BaseModel):
    id: str
    username: str
    role: Role
    created_at: datetime
    last_login_at: datetime | None


def _out(user: user_store.User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        role=user.role,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


@router.get("", response_model=Page[UserOut], summary="List users")
async def list_users(
    rt: Runtime = Depends(get_runtime), limit: Limit = 100, offset: Offset = 0
) -> Page[UserOut]:
    return Page.of([_out(u) for u in await user_store.list_users(rt.db)], limit, offset)


@router.post(
    "",
    response_model=UserOut,
    status_code=201,
    summary="Create a user",
    responses=problems.responses(409),  # the username is taken
)
async def create_user(
    body: UserIn, request: Request, rt: Runtime = Depends(get_runtime)
) -> UserOut:
    try:
        user = await user_store.create_user(
            rt.db, body.username, body.password, body.role, rt.clock.now(), run=rt.passwords.run
        )
    except user_store.UserExists:
        raise HTTPException(409, f"a user named {body.username.strip().lower()!r} exists") from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    audit.add_detail(request, id=user.id, username=user.username, role=user.role.value)
    return _out(user)


@router.patch(
    "/{username}",
    response_model=UserOut,
    summary="Change a user's role",
    responses={409: problems.response(409, "It would demote the last admin user")},
)
async def update_user(
    username: str, body: UserPatch, request: Request, rt: Runtime = Depends(get_runtime)
) -> UserOut:
    try:
        changed = await user_store.set_role(rt.db, username, body.role)
    except user_store.LastAdmin as exc:
        raise HTTPException(409, str(exc)) from None
    if changed is None:
        raise HTTPException(404, "no such user")
    user, before = changed
    audit.add_detail(
        request, id=user.id, username=user.username, role=user.role.value, previous=before.value
    )
    return _out(user)


@router.put(
    "/{username}/password",
    response_model=UserOut,
    summary="Reset a user's password; ends all their sessions",
)
async def reset_password(
    username: str, body: PasswordResetIn, request: Request, rt: Runtime = Depends(get_runtime)
) -> UserOut:
    try:
        changed = await user_store.set_password(
            rt.db, username, body.new_password, run=rt.passwords.run
        )
    except ValueError as exc:
        raise HTTPException(422, f"new_password: {exc}") from None
    if changed is None:
        raise HTTPException(404, "no such user")
    user, ended = changed
    audit.add_detail(request, id=user.id, username=user.username, sessions_ended=ended)
    return _out(user)


@router.delete(
    "/{username}",
    response_model=UserOut,
    summary="Delete a user; ends their sessions",
    responses={409: problems.response(409, "It would delete the last admin user")},
)
async def delete_user(
    username: str, request: Request, rt: Runtime = Depends(get_runtime)
) -> UserOut:
    try:
        user = await user_store.delete_user(rt.db, username)
    except user_store.LastAdmin as exc:
        raise HTTPException(409, str(exc)) from None
    if user is None:
        raise HTTPException(404, "no such user")
    audit.add_detail(request, id=user.id, username=user.username)
    return _out(user)
