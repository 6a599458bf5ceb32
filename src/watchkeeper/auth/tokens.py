"""API tokens: `wk_<random>`, shown once; only a SHA-256 and a short display prefix are kept."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from watchkeeper.auth.principals import Role
from watchkeeper.store import tokens as token_store
from watchkeeper.store.database import Database

TOKEN_PREFIX = "wk_"
_DISPLAY_CHARS = 8  # after "wk_": enough to tell tokens apart in a list, useless to an attacker
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is written at most this often per token, not on every request."""


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


async def authenticate_token(db: Database, plaintext: str, now: datetime) -> ApiToken | None:
    """The active token matching `plaintext`, or None (unknown, revoked or expired)."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    digest = hash_token(plaintext)
    row = await token_store.by_hash(db, digest)
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    token = _row(row)
    if token.state(now) != "active":
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        await token_store.used(db, token.id, now)
    return token


async def count_active(db: Database, now: datetime) -> int:
    return await token_store.count_active(db, now)
