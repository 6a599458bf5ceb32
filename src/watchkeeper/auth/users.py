"""People who log in: a username, an argon2id password hash and a role."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from watchkeeper.auth import passwords
from watchkeeper.auth.roles import Role
from watchkeeper.store.database import Database
from watchkeeper.store.tables import sessions, users

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,99}$")


class UserExists(Exception):
    pass


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    role: Role
    created_at: datetime
    last_login_at: datetime | None


def normalize_username(username: str) -> str:
    """Usernames compare case-insensitively: `Alice` and `alice` are one account."""
    return username.strip().lower()


def check_username(username: str) -> str:
    """The normalized username; ValueError if it cannot be one."""
    name = normalize_username(username)
    if not _USERNAME.match(name):
        raise ValueError(
            "username must be 1-100 characters: letters, digits and . _ @ + - "
            "(starting with a letter or digit)"
        )
    return name


def _row(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        role=Role(row.role),
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


_COLUMNS = [c for c in users.c if c.name != "password_hash"]


async def create_user(
    db: Database, username: str, password: str, role: Role, now: datetime
) -> User:
    """Raises ValueError for a bad username or password, UserExists for a taken name."""
    name = check_username(username)
    passwords.check_strength(password)
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    user = User(id=str(uuid.uuid4()), username=name, role=role, created_at=now, last_login_at=None)
    try:
        async with db.begin() as conn:
            await conn.execute(
                users.insert().values(
                    id=user.id,
                    username=name,
                    password_hash=password_hash,
                    role=role.value,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise UserExists(name) from None
    return user


async def list_users(db: Database) -> list[User]:
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(*_COLUMNS).order_by(users.c.username))
        return [_row(r) for r in rows]


async def get_user(db: Database, user_id: str) -> User | None:
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(*_COLUMNS).where(users.c.id == user_id))).first()
    return _row(row) if row is not None else None


async def delete_user(db: Database, username: str) -> User | None:
    """Delete the account and end its sessions; None if there is no such user."""
    name = normalize_username(username)
    async with db.begin() as conn:
        row = (await conn.execute(sa.select(*_COLUMNS).where(users.c.username == name))).first()
        if row is None:
            return None
        await conn.execute(sessions.delete().where(sessions.c.user_id == row.id))
        await conn.execute(users.delete().where(users.c.id == row.id))
    return _row(row)


async def count_users(db: Database) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(users)) or 0)


async def verify_login(db: Database, username: str, password: str, now: datetime) -> User | None:
    """The user when the password matches, else None. Takes as long for unknown usernames."""
    name = normalize_username(username)
    async with db.connect() as conn:
        row = (
            await conn.execute(
                sa.select(*_COLUMNS, users.c.password_hash).where(users.c.username == name)
            )
        ).first()
    if row is None or len(password) > passwords.MAX_LENGTH:
        await asyncio.to_thread(passwords.burn_time, password[: passwords.MAX_LENGTH])
        return None
    if not await asyncio.to_thread(passwords.verify_password, row.password_hash, password):
        return None
    values: dict[str, Any] = {"last_login_at": now}
    if passwords.needs_rehash(row.password_hash):
        values["password_hash"] = await asyncio.to_thread(passwords.hash_password, password)
    async with db.begin() as conn:
        await conn.execute(users.update().where(users.c.id == row.id).values(**values))
    return _row(row)
