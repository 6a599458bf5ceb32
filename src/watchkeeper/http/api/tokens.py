"""`/api/v1/tokens` (admin): API tokens, shown once when made, revocable."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from watchkeeper.app import Runtime
from watchkeeper.auth import tokens as token_store
from watchkeeper.core.durations import TokenLifetime
from watchkeeper.http import audit
from watchkeeper.http.api.schemas import Limit, Offset, Page, Text
from watchkeeper.http.deps import get_runtime
from watchkeeper.http.roles import Principal, Role, require

router = APIRouter(
    prefix="/api/v1/tokens", tags=["tokens"], dependencies=[Depends(require(Role.ADMIN))]
)


class TokenIn(BaseModel):
    name: Text = Field(min_length=1, max_length=100)
    role: Role
    expires_in: TokenLifetime | None = None
    """e.g. "30d" (at most 100 years); or give `expires_at`; neither: the token does not
    expire."""
    expires_at: AwareDatetime | None = None
    """With its UTC offset, e.g. `2027-01-01T00:00:00Z`."""

    @model_validator(mode="after")
    def _one_expiry(self) -> TokenIn:
        if self.expires_in is not None and self.expires_at is not None:
            raise ValueError("give expires_in or expires_at, not both")
        return self


class TokenOut(BaseModel):
    id: str
    name: str
    role: Role
    prefix: str
    """The token's first characters, to recognise it; the token itself is never shown again."""
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    state: Literal["active", "expired", "revoked"]


class NewTokenOut(TokenOut):
    token: str
    """The secret: shown this once, stored only hashed."""


def _out(token: token_store.ApiToken, now: datetime) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        role=token.role,
        prefix=token.prefix,
        created_by=token.created_by,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
        state=token.state(now),
    )


@router.get("", response_model=Page[TokenOut], summary="List API tokens (never their secrets)")
async def list_tokens(
    rt: Runtime = Depends(get_runtime), limit: Limit = 100, offset: Offset = 0
) -> Page[TokenOut]:
    now = rt.clock.now()
    return Page.of([_out(t, now) for t in await token_store.list_tokens(rt.db)], limit, offset)


@router.post("", response_model=NewTokenOut, status_code=201, summary="Make a token (shown once)")
async def create_token(
    body: TokenIn,
    request: Request,
    principal: Principal = Depends(require(Role.ADMIN)),
    rt: Runtime = Depends(get_runtime),
) -> NewTokenOut:
    now = rt.clock.now()
    expires_at = now + body.expires_in if body.expires_in is not None else body.expires_at
    try:
        token, secret = await token_store.create_token(
            rt.db,
            name=body.name,
            role=body.role,
            now=now,
            expires_at=expires_at,
            created_by=principal.name,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    audit.add_detail(request, id=token.id, name=token.name, role=token.role.value)
    return NewTokenOut(**_out(token, now).model_dump(), token=secret)


@router.delete("/{token_id}", response_model=TokenOut, summary="Revoke a token now")
async def revoke_token(
    token_id: str, request: Request, rt: Runtime = Depends(get_runtime)
) -> TokenOut:
    now = rt.clock.now()
    token = await token_store.revoke_token(rt.db, token_id, now)
    if token is None:
        raise HTTPException(404, "no such token")
    audit.add_detail(request, id=token.id, name=token.name)
    return _out(token, now)
