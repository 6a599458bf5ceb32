"""The sessions table: browser sessions by the SHA-256 of their cookie (see `auth.sessions`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from watchkeeper.store.database import Database
from watchkeeper.store.errors import translated
from watchkeeper.store.tables import sessions, users

Record = sa.Row[Any]
"""A session's `id_hash`, `csrf_token`, `created_at`, `expires_at` and its user's columns
(but the password hash)."""


async def insert(
    db: Database,
    *,
    id_hash: str,
    user_id: str,
    csrf_token: str,
    created_at: datetime,
    expires_at: datetime,
    source_ip: str | None,
) -> None:
    """Store a session, deleting the expired ones in the same transaction (the table stays
    the size of the live ones)."""
    async with translated(), db.begin() as conn:
        await conn.execute(sessions.delete().where(sessions.c.expires_at <= created_at))
        await conn.execute(
            sessions.insert().values(
                id_hash=id_hash,
                user_id=user_id,
                csrf_token=csrf_token,
                created_at=created_at,
                expires_at=expires_at,
                source_ip=source_ip,
            )
        )


async def with_user(db: Database, id_hash: str) -> Record | None:
    """The session and its user, or None (unknown, or the user was deleted)."""
    async with translated(), db.connect() as conn:
        return (
            await conn.execute(
                sa.select(
                    sessions.c.id_hash,
                    sessions.c.csrf_token,
                    sessions.c.created_at,
                    sessions.c.expires_at,
                    *[c for c in users.c if c.name != "password_hash"],
                )
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.id_hash == id_hash)
            )
        ).first()


async def delete(db: Database, id_hash: str) -> None:
    async with translated(), db.begin() as conn:
        await conn.execute(sessions.delete().where(sessions.c.id_hash == id_hash))
