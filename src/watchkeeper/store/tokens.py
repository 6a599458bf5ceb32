"""The api_tokens table: a SHA-256 of each token, never the token (see `auth.tokens`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from watchkeeper.store.database import Database
from watchkeeper.store.errors import translated
from watchkeeper.store.tables import api_tokens

Record = sa.Row[Any]
"""A row of every column but `token_hash` (which `by_hash` adds)."""

_COLUMNS = [c for c in api_tokens.c if c.name != "token_hash"]


async def insert(db: Database, **values: Any) -> None:
    """Store a token row (the table's columns as keywords)."""
    async with translated(), db.begin() as conn:
        await conn.execute(api_tokens.insert().values(**values))


async def list_all(db: Database) -> list[Record]:
    """Newest first."""
    async with translated(), db.connect() as conn:
        return list(
            await conn.execute(sa.select(*_COLUMNS).order_by(api_tokens.c.created_at.desc()))
        )


async def by_id(db: Database, token_id: str) -> Record | None:
    async with translated(), db.connect() as conn:
        return (await conn.execute(sa.select(*_COLUMNS).where(api_tokens.c.id == token_id))).first()


async def by_hash(db: Database, digest: str) -> Record | None:
    """The row (with its `token_hash`) of the token with this hash, or None."""
    async with translated(), db.connect() as conn:
        query = sa.select(*_COLUMNS, api_tokens.c.token_hash).where(
            api_tokens.c.token_hash == digest
        )
        return (await conn.execute(query)).first()


async def revoke(db: Database, token_id: str, now: datetime) -> Record | None:
    """Revoke unless revoked already, and read the row back, in one transaction."""
    async with translated(), db.begin() as conn:
        await conn.execute(
            api_tokens.update()
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return (await conn.execute(sa.select(*_COLUMNS).where(api_tokens.c.id == token_id))).first()


async def used(db: Database, token_id: str, now: datetime) -> None:
    async with translated(), db.begin() as conn:
        await conn.execute(
            api_tokens.update().where(api_tokens.c.id == token_id).values(last_used_at=now)
        )


async def count_active(db: Database, now: datetime) -> int:
    """Tokens neither revoked nor expired at `now`."""
    async with translated(), db.connect() as conn:
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
