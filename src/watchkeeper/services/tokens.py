"""API tokens: made (the secret shown once), listed (never their secrets), revoked."""

from __future__ import annotations

from datetime import datetime, timedelta

from watchkeeper.auth import tokens as token_store
from watchkeeper.auth.principals import Role
from watchkeeper.auth.tokens import ApiToken, VerifiedTokens
from watchkeeper.core.clock import Clock
from watchkeeper.core.errors import Invalid, NotFound
from watchkeeper.store.database import Database

NO_SUCH_TOKEN = "no such token"


class TokenService:
    """The API tokens of one database."""

    def __init__(self, db: Database, clock: Clock, verified: VerifiedTokens | None = None) -> None:
        self.db = db
        self.clock = clock
        self.verified = verified
        """The authenticator's cache of verified tokens: a revoked token leaves it at once."""

    def now(self) -> datetime:
        """The time a token's `state` is judged at."""
        return self.clock.now()

    async def list(self) -> list[ApiToken]:
        """Every token, revoked and expired ones too."""
        return await token_store.list_tokens(self.db)

    async def create(
        self,
        *,
        name: str,
        role: Role,
        expires_in: timedelta | None = None,
        expires_at: datetime | None = None,
        created_by: str | None = None,
    ) -> tuple[ApiToken, str]:
        """A new token and its secret (kept nowhere). It expires `expires_in` from now, or at
        `expires_at`, or never; Invalid if that is not in the future."""
        now = self.clock.now()
        if expires_in is not None:
            expires_at = now + expires_in
        try:
            return await token_store.create_token(
                self.db,
                name=name,
                role=role,
                now=now,
                expires_at=expires_at,
                created_by=created_by,
            )
        except ValueError as exc:
            raise Invalid(str(exc)) from None

    async def revoke(self, token_id: str) -> ApiToken:
        """Revoke the token now (again: no change); NotFound."""
        token = await token_store.revoke_token(self.db, token_id, self.clock.now())
        if self.verified is not None:
            self.verified.forget(token_id)
        if token is None:
            raise NotFound(NO_SUCH_TOKEN)
        return token
