"""API tokens: `wk_<random>`, shown once; only a SHA-256 and a short display prefix are kept."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa

from watchkeeper.auth.roles import Role
from watchkeeper.store.database import Database
from watchkeeper.store.tables import api_tokens

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


_COLUMNS = [c for c in api_tokens.c if c.name != "token_hash"]


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
    async with db.begin() as conn:
        await conn.execute(
            api_tokens.insert().values(
                id=token.id,
                name=name,
                role=role.value,
                token_hash=hash_token(plaintext),
                prefix=token.prefix,
                created_by=created_by,
                created_at=now,
                expires_at=expires_at,
            )
        )
    return token, plaintext


async def list_tokens(db: Database) -> list[ApiToken]:
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(*_COLUMNS).order_by(api_tokens.c.created_at.desc()))
        return [_row(r) for r in rows]


async def get_token(db: Database, token_id: str) -> ApiToken | None:
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(*_COLUMNS).where(api_tokens.c.id == token_id))).first()
    return _row(row) if row is not None else None


async def revoke_token(db: Database, token_id: str, now: datetime) -> ApiToken | None:
    """Revoke at once (idempotent); None if there is no such token."""
    async with db.begin() as conn:
        await conn.execute(
            api_tokens.update()
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        row = (await conn.execute(sa.select(*_COLUMNS).where(api_tokens.c.id == token_id))).first()
    return _row(row) if row is not None else None


async def authenticate_token(db: Database, plaintext: str, now: datetime) -> ApiToken | None:
    """The active token matching `plaintext`, or None (unknown, revoked or expired)."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    digest = hash_token(plaintext)
    async with db.connect() as conn:
        row = (
            await conn.execute(
                sa.select(*_COLUMNS, api_tokens.c.token_hash).where(
                    api_tokens.c.token_hash == digest
                )
            )
        ).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    token = _row(row)
    if token.state(now) != "active":
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        async with db.begin() as conn:
            await conn.execute(
                api_tokens.update().where(api_tokens.c.id == token.id).values(last_used_at=now)
            )
    return token


async def count_active(db: Database, now: datetime) -> int:
    async with db.connect() as conn:
        return int(
            await conn.scalar(
                sa.select(sa.func.count())
                .select_from(api_tokens)
                .where(
                    api_tokens.c.revoked_at.is_(None),
                    sa.or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now),
                )
            )
            or 0
        )
