"""The users table: accounts with their password hash and role (see `auth.users`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.store.database import Database
from watchkeeper.store.errors import translated
from watchkeeper.store.tables import login_failures, sessions, users

Record = sa.Row[Any]
"""A row: `id`, `username`, `role`, `created_at`, `last_login_at` (and `password_hash` where
asked for)."""

COLUMNS = [c for c in users.c if c.name != "password_hash"]
"""Every column but the password hash, which only `with_hash` reads."""


class NoAdminLeft(Exception):
    """The change would leave no user with the admin role (rolled back)."""

    def __init__(self, username: str) -> None:
        super().__init__(username)
        self.username = username


async def insert(
    db: Database,
    *,
    id: str,
    username: str,
    password_hash: str,
    role: str,
    created_at: datetime,
) -> None:
    """Conflict if the username is taken."""
    async with translated(), db.begin() as conn:
        await conn.execute(
            users.insert().values(
                id=id,
                username=username,
                password_hash=password_hash,
                role=role,
                created_at=created_at,
            )
        )


async def list_all(db: Database) -> list[Record]:
    async with translated(), db.connect() as conn:
        return list(await conn.execute(sa.select(*COLUMNS).order_by(users.c.username)))


async def by_id(db: Database, user_id: str) -> Record | None:
    async with translated(), db.connect() as conn:
        return (await conn.execute(sa.select(*COLUMNS).where(users.c.id == user_id))).first()


async def with_hash(db: Database, username: str) -> Record | None:
    """The user's row with its `password_hash`, or None."""
    async with translated(), db.connect() as conn:
        query = sa.select(*COLUMNS, users.c.password_hash).where(users.c.username == username)
        return (await conn.execute(query)).first()


async def count(db: Database) -> int:
    async with translated(), db.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(users)) or 0)


async def delete(db: Database, username: str, *, admin: str) -> Record | None:
    """Delete the account and its sessions, in one transaction; None if there is no such
    user. NoAdminLeft (rolled back) if it was the last one with the role `admin`."""
    async with translated(), db.begin() as conn:
        await _lock_admins(conn, admin)
        row = (await conn.execute(sa.select(*COLUMNS).where(users.c.username == username))).first()
        if row is None:
            return None
        await conn.execute(sessions.delete().where(sessions.c.user_id == row.id))
        await conn.execute(users.delete().where(users.c.id == row.id))
        await _refuse_no_admin_left(conn, row, admin)
    return row


async def set_role(db: Database, username: str, role: str, *, admin: str) -> Record | None:
    """Give the user `role`: their row as it was, or None if there is no such user.
    NoAdminLeft (rolled back) if it would demote the last one with the role `admin`."""
    async with translated(), db.begin() as conn:
        await _lock_admins(conn, admin)
        row = (await conn.execute(sa.select(*COLUMNS).where(users.c.username == username))).first()
        if row is None:
            return None
        await conn.execute(users.update().where(users.c.id == row.id).values(role=role))
        await _refuse_no_admin_left(conn, row, admin)
    return row


async def _lock_admins(conn: AsyncConnection, admin: str) -> None:
    """PostgreSQL: lock the admin rows, so that two concurrent demotions or deletions of
    different admins are serialised and the second sees the first (SQLite has one writer at
    a time anyway, and ignores FOR UPDATE)."""
    await conn.execute(
        sa.select(users.c.id).where(users.c.role == admin).order_by(users.c.id).with_for_update()
    )


async def _refuse_no_admin_left(conn: AsyncConnection, changed: Record, admin: str) -> None:
    """After the write, in its transaction: raise NoAdminLeft (rolling it back) when
    `changed` was an admin and now none is left. Others come and go freely."""
    if changed.role != admin:
        return
    left = await conn.scalar(
        sa.select(sa.func.count()).select_from(users).where(users.c.role == admin)
    )
    if not left:
        raise NoAdminLeft(changed.username)


async def set_password(
    db: Database, username: str, password_hash: str, *, keep_session: str | None
) -> tuple[Record, int] | None:
    """In one transaction: replace the hash, end the user's sessions but `keep_session` (an
    id hash) and forget the account's failed logins. The row and the number of sessions
    ended, or None if there is no such user."""
    async with translated(), db.begin() as conn:
        row = (await conn.execute(sa.select(*COLUMNS).where(users.c.username == username))).first()
        if row is None:
            return None
        await conn.execute(
            users.update().where(users.c.id == row.id).values(password_hash=password_hash)
        )
        ended = sessions.delete().where(sessions.c.user_id == row.id)
        if keep_session is not None:
            ended = ended.where(sessions.c.id_hash != keep_session)
        result = await conn.execute(ended)
        await conn.execute(login_failures.delete().where(login_failures.c.username == username))
    return row, int(result.rowcount or 0)


async def logged_in(
    db: Database, user_id: str, at: datetime, *, password_hash: str | None = None
) -> None:
    """Record a login (and a rehashed password, when given)."""
    values: dict[str, Any] = {"last_login_at": at}
    if password_hash is not None:
        values["password_hash"] = password_hash
    async with translated(), db.begin() as conn:
        await conn.execute(users.update().where(users.c.id == user_id).values(**values))
