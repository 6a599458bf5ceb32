"""API tokens: `wk_<random>`, shown once; only a SHA-256 and a short display prefix are kept."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from watchkeeper.auth.principals import Role
from watchkeeper.core.clock import Clock
from watchkeeper.store import tokens as token_store
from watchkeeper.store.database import Database

TOKEN_PREFIX = "wk_"
_DISPLAY_CHARS = 8  # after "wk_": enough to tell tokens apart in a list, useless to an attacker
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is written at most this often per token, not on every request."""


VERIFIED_FOR = 5.0
"""Seconds a token found valid in the database is believed without asking it again."""
VERIFIED_MAX = 1024
"""Tokens remembered as verified at once (the least recently verified go first)."""


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: str
    name: str
    role: Role
    prefix: str
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def state(self, now: datetime) -> Literal["active", "expired", "revoked"]:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def generate() -> str:
    """A new token: `wk_` and 32 random bytes, URL-safe base64 (43 characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 hex. Enough for 256-bit random secrets: no salt or slow hash is needed, and
    a lookup by hash stays a single indexed query."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _row(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        prefix=row.prefix,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


async def create_token(
    db: Database,
    *,
    name: str,
    role: Role,
    now: datetime,
    expires_at: datetime | None = None,
    created_by: str | None = None,
) -> tuple[ApiToken, str]:
    """Store a new token; returns it and its plaintext (which is not kept anywhere)."""
    if expires_at is not None and expires_at <= now:
        raise ValueError("expiry must be in the future")
    plaintext = generate()
    token = ApiToken(
        id=str(uuid.uuid4()),
        name=name,
        role=role,
        prefix=plaintext[: len(TOKEN_PREFIX) + _DISPLAY_CHARS],
        created_by=created_by,
        created_at=now,
        expires_at=expires_at,
        revoked_at=None,
        last_used_at=None,
    )
    await token_store.insert(
        db,
        id=token.id,
        name=name,
        role=role.value,
        token_hash=hash_token(plaintext),
        prefix=token.prefix,
        created_by=created_by,
        created_at=now,
        expires_at=expires_at,
    )
    return token, plaintext


async def list_tokens(db: Database) -> list[ApiToken]:
    return [_row(r) for r in await token_store.list_all(db)]


async def get_token(db: Database, token_id: str) -> ApiToken | None:
    row = await token_store.by_id(db, token_id)
    return _row(row) if row is not None else None


async def revoke_token(db: Database, token_id: str, now: datetime) -> ApiToken | None:
    """Revoke at once (idempotent); None if there is no such token."""
    row = await token_store.revoke(db, token_id, now)
    return _row(row) if row is not None else None


class VerifiedTokens:
    """Tokens the database said were valid in the last `seconds` (by digest), so a client
    posting many requests a second (Prometheus) costs one query per token per `seconds`.

    What the cache may get wrong is bounded: a token revoked through this process is
    forgotten at once (`forget`); one revoked by another process (the CLI, another node)
    stops working within `seconds`; expiry is judged on every request from the cached
    `expires_at`. Only valid tokens are kept: an unknown one always asks the database.
    One instance per runtime (the Authenticator's), shared with the token service.
    """

    def __init__(
        self, clock: Clock, *, seconds: float = VERIFIED_FOR, size: int = VERIFIED_MAX
    ) -> None:
        self._clock = clock
        self._seconds = seconds
        self._size = size
        self._known: OrderedDict[str, tuple[ApiToken, float]] = OrderedDict()
        self.generation = 0
        """Counts `forget`s: a lookup that began before one does not `put` what it read."""

    def get(self, digest: str) -> ApiToken | None:
        """The token verified under `digest` less than `seconds` ago, or None."""
        found = self._known.get(digest)
        if found is None:
            return None
        token, verified_at = found
        if self._clock.monotonic() - verified_at >= self._seconds:
            del self._known[digest]
            return None
        return token

    def put(self, digest: str, token: ApiToken, generation: int) -> None:
        """Remember that the database found `token` valid, in a lookup begun at
        `generation` (if a token was revoked since, the lookup may predate it: not kept)."""
        if generation != self.generation:
            return
        self._known[digest] = (token, self._clock.monotonic())
        self._known.move_to_end(digest)
        while len(self._known) > self._size:
            self._known.popitem(last=False)

    def forget(self, token_id: str) -> None:
        """The token changed (revoked): the next request asks the database."""
        self.generation += 1
        for digest in [d for d, (t, _) in self._known.items() if t.id == token_id]:
            del self._known[digest]


async def authenticate_token(
    db: Database, plaintext: str, now: datetime, verified: VerifiedTokens | None = None
) -> ApiToken | None:
    """The active token matching `plaintext`, or None (unknown, revoked or expired). With
    `verified`, a token verified in the last few seconds is not looked up again (see
    VerifiedTokens for how soon a revocation takes effect)."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    digest = hash_token(plaintext)
    if verified is not None and (cached := verified.get(digest)) is not None:
        return cached if cached.state(now) == "active" else None
    generation = verified.generation if verified is not None else 0
    row = await token_store.by_hash(db, digest)
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    token = _row(row)
    if token.state(now) != "active":
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        await token_store.used(db, token.id, now)
    if verified is not None:
        verified.put(digest, token, generation)
    return token


async def count_active(db: Database, now: datetime) -> int:
    return await token_store.count_active(db, now)
