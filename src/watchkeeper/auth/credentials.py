"""Who is calling: a Bearer token or a session cookie turned into a Principal."""

from __future__ import annotations

from fastapi import HTTPException, Request

from watchkeeper.auth import sessions, tokens
from watchkeeper.auth.config import AuthConfig
from watchkeeper.auth.principals import CHALLENGE, SAFE_METHODS, Principal, Role
from watchkeeper.core.clock import Clock
from watchkeeper.store.database import Database

CSRF_MISSING = (
    f"a browser session needs its CSRF token on every write: send the {sessions.CSRF_HEADER} "
    f"header or a {sessions.CSRF_FIELD} form field (from POST /auth/login or GET /auth/me)"
)


def client_ip(request: Request) -> str:
    """The peer address: uvicorn has already replaced it with `X-Forwarded-For`'s client when
    the peer is one of `server.trusted_proxies`, and only then."""
    return request.client.host if request.client else "unknown"


class Authenticator:
    def __init__(self, db: Database, config: AuthConfig, clock: Clock) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.verified = tokens.VerifiedTokens(clock)
        """Tokens verified in the last few seconds; the token service forgets revoked ones."""

    async def authenticate(self, request: Request) -> Principal | None:
        """The caller, or None when the request carries no credentials at all.

        A Bearer token wins over a cookie. Bad credentials are a 401, not None: a client
        that sent a token learns it is wrong. A cookie-authenticated write without its
        session's CSRF token is a 403.
        """
        principal = await self.identify(request)
        if (
            principal is not None
            and principal.kind == "user"
            and request.method not in SAFE_METHODS
        ):
            given = await sessions.submitted_csrf(request)
            if not sessions.tokens_match(principal.csrf_token, given):
                raise HTTPException(403, CSRF_MISSING)
        return principal

    async def identify(self, request: Request) -> Principal | None:
        """`authenticate` without a session write's CSRF check (whose token may be in a form
        body): what can be known from the headers alone, before any body is read."""
        ip = client_ip(request)
        if not self.config.enabled:
            return Principal("anonymous", Role.ADMIN, "anonymous", ip)
        now = self.clock.now()
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, value = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise HTTPException(401, "expected `Authorization: Bearer <token>`", CHALLENGE)
            token = await tokens.authenticate_token(self.db, value.strip(), now, self.verified)
            if token is None:
                raise HTTPException(401, "the token is unknown, expired or revoked", CHALLENGE)
            return Principal(token.name, token.role, "token", ip, id=token.id)
        session_id = request.cookies.get(sessions.COOKIE)
        if not session_id:
            return None
        session = await sessions.lookup_session(self.db, session_id, now)
        if session is None:
            raise HTTPException(401, "the session has ended; log in again", CHALLENGE)
        user = session.user
        return Principal(
            user.username, user.role, "user", ip, id=user.id, csrf_token=session.csrf_token
        )
