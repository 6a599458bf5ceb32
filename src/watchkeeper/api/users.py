"""`/api/v1/users` (admin): the people who log in."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from watchkeeper.api import problems
from watchkeeper.api.deps import get_runtime
from watchkeeper.api.schemas import Limit, Offset, Page
from watchkeeper.app import Runtime
from watchkeeper.auth import audit
from watchkeeper.auth import users as user_store
from watchkeeper.auth.roles import Role, require

router = APIRouter(
    prefix="/api/v1/users", tags=["users"], dependencies=[Depends(require(Role.ADMIN))]
)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=4096)
    role: Role


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
            rt.db, body.username, body.password, body.role, rt.clock.now()
        )
    except user_store.UserExists:
        raise HTTPException(409, f"a user named {body.username.strip().lower()!r} exists") from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    audit.add_detail(request, id=user.id, username=user.username, role=user.role.value)
    return _out(user)


@router.delete("/{username}", response_model=UserOut, summary="Delete a user; ends their sessions")
async def delete_user(
    username: str, request: Request, rt: Runtime = Depends(get_runtime)
) -> UserOut:
    user = await user_store.delete_user(rt.db, username)
    if user is None:
        raise HTTPException(404, "no such user")
    audit.add_detail(request, id=user.id, username=user.username)
    return _out(user)
