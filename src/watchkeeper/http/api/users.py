"""`/api/v1/users` (admin): the people who log in.

At least one admin *user* remains once there is one: deleting or demoting the last is a 409
(admin API tokens do not count: they cannot log in to the dashboard, and they expire)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from watchkeeper.http import audit, problems
from watchkeeper.http.api.schemas import Limit, Offset, Page
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Role, require
from watchkeeper.services import Services
from watchkeeper.services.users import User

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


def _out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        role=user.role,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


@router.get("", response_model=Page[UserOut], summary="List users")
async def list_users(
    services: Services = Depends(get_services), limit: Limit = 100, offset: Offset = 0
) -> Page[UserOut]:
    return Page.of([_out(u) for u in await services.users.list()], limit, offset)


@router.post(
    "",
    response_model=UserOut,
    status_code=201,
    summary="Create a user",
    responses=problems.responses(409),  # the username is taken
)
async def create_user(
    body: UserIn, request: Request, services: Services = Depends(get_services)
) -> UserOut:
    user = await services.users.create(body.username, body.password, body.role)
    audit.add_detail(request, id=user.id, username=user.username, role=user.role.value)
    return _out(user)


@router.patch(
    "/{username}",
    response_model=UserOut,
    summary="Change a user's role",
    responses={409: problems.response(409, "It would demote the last admin user")},
)
async def update_user(
    username: str, body: UserPatch, request: Request, services: Services = Depends(get_services)
) -> UserOut:
    user, before = await services.users.set_role(username, body.role)
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
    username: str,
    body: PasswordResetIn,
    request: Request,
    services: Services = Depends(get_services),
) -> UserOut:
    user, ended = await services.users.reset_password(username, body.new_password)
    audit.add_detail(request, id=user.id, username=user.username, sessions_ended=ended)
    return _out(user)


@router.delete(
    "/{username}",
    response_model=UserOut,
    summary="Delete a user; ends their sessions",
    responses={409: problems.response(409, "It would delete the last admin user")},
)
async def delete_user(
    username: str, request: Request, services: Services = Depends(get_services)
) -> UserOut:
    user = await services.users.delete(username)
    audit.add_detail(request, id=user.id, username=user.username)
    return _out(user)
