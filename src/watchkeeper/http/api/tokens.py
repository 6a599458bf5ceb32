"""`/api/v1/tokens` (admin): API tokens, shown once when made, revocable."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from watchkeeper.core.durations import TokenLifetime
from watchkeeper.http import audit
from watchkeeper.http.api.schemas import Limit, Offset, Page, Text
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Principal, Role, require
from watchkeeper.services import Services
from watchkeeper.services.tokens import ApiToken

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


def _out(token: ApiToken, now: datetime) -> TokenOut:
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
    services: Services = Depends(get_services), limit: Limit = 100, offset: Offset = 0
) -> Page[TokenOut]:
    now = services.tokens.now()
    return Page.of([_out(t, now) for t in await services.tokens.list()], limit, offset)


@router.post("", response_model=NewTokenOut, status_code=201, summary="Make a token (shown once)")
async def create_token(
    body: TokenIn,
    request: Request,
    principal: Principal = Depends(require(Role.ADMIN)),
    services: Services = Depends(get_services),
) -> NewTokenOut:
    token, secret = await services.tokens.create(
        name=body.name,
        role=body.role,
        expires_in=body.expires_in,
        expires_at=body.expires_at,
        created_by=principal.name,
    )
    audit.add_detail(request, id=token.id, name=token.name, role=token.role.value)
    return NewTokenOut(**_out(token, token.created_at).model_dump(), token=secret)


@router.delete("/{token_id}", response_model=TokenOut, summary="Revoke a token now")
async def revoke_token(
    token_id: str, request: Request, services: Services = Depends(get_services)
) -> TokenOut:
    token = await services.tokens.revoke(token_id)
    audit.add_detail(request, id=token.id, name=token.name)
    return _out(token, services.tokens.now())
