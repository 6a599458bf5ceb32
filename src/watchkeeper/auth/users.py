"""People who log in: a username, an argon2id password hash and a role."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.auth import passwords
from watchkeeper.auth.roles import Role
from watchkeeper.auth.workers import Runner, in_thread
from watchkeeper.store.database import Database
from watchkeeper.store.tables import login_failures, sessions, users

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,99}$")


class UserExists(Exception):
    pass


class LastAdmin(Exception):
    """The change would leave no admin user: someone must be able to log in and manage."""

    def __init__(self, username: str) -> None:
        super().__init__(
            f"{username} is the last admin user: make another user an admin first "
            "(API tokens do not count: they cannot log in to the dashboard)"
        )
        self.username = username


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
    db: Database,
    username: str,
    password: str,
    role: Role,
    now: datetime,
    *,
    run: Runner = in_thread,
) -> User:
    """Raises ValueError for a bad username or password, UserExists for a taken name.
    `run` runs the argon2 hashing (the runtime's `PasswordWorkers.run`)."""
    name = check_username(username)
    passwords.check_strength(password)
    password_hash = await run(passwords.hash_password, password)
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
    """Delete the account and end its sessions; None if there is no such user. LastAdmin if
    it is the only admin user."""
    name = normalize_username(username)
    async with db.begin() as conn:
        await _lock_admins(conn)
        row = (await conn.execute(sa.select(*_COLUMNS).where(users.c.username == name))).first()
        if row is None:
            return None
        await conn.execute(sessions.delete().where(sessions.c.user_id == row.id))
        await conn.execute(users.delete().where(users.c.id == row.id))
        await _refuse_no_admin_left(conn, row)
    return _row(row)


async def set_role(db: Database, username: str, role: Role) -> tuple[User, Role] | None:
    """Give the user `role` (their sessions carry it from their next request on): the user
    and the role they had, or None if there is no such user. LastAdmin if it would demote
    the only admin user."""
    name = normalize_username(username)
    async with db.begin() as conn:
        await _lock_admins(conn)
        row = (await conn.execute(sa.select(*_COLUMNS).where(users.c.username == name))).first()
        if row is None:
            return None
        await conn.execute(users.update().where(users.c.id == row.id).values(role=role.value))
        await _refuse_no_admin_left(conn, row)
    before = _row(row)
    return replace(before, role=role), before.role


async def _lock_admins(conn: AsyncConnection) -> None:
    """PostgreSQL: lock the admin rows, so that two concurrent demotions or deletions of
    different admins are serialised and the second sees the first (SQLite has one writer at
    a time anyway, and ignores FOR UPDATE)."""
    await conn.execute(
        sa.select(users.c.id)
        .where(users.c.role == Role.ADMIN.value)
        .order_by(users.c.id)
        .with_for_update()
    )


async def _refuse_no_admin_left(conn: AsyncConnection, changed: sa.Row[Any]) -> None:
    """After the write, in its transaction: raise LastAdmin (rolling it back) when `changed`
    was an admin and now none is left. Users who were never admins come and go freely."""
    if changed.role != Role.ADMIN.value:
        return
    left = await conn.scalar(
        sa.select(sa.func.count()).select_from(users).where(users.c.role == Role.ADMIN.value)
    )
    if not left:
        raise LastAdmin(changed.username)


async def set_password(
    db: Database,
    username: str,
    password: str,
    *,
    keep_session: str | None = None,
    run: Runner = in_thread,
) -> tuple[User, int] | None:
    """Replace the user's password and end their sessions, all but the one whose id hash is
    `keep_session` (the caller's own, when users change their password themselves). Returns
    the user and the number of sessions ended, or None if there is no such user. ValueError
    if the password is not strong enough.

    The account's failed logins are forgotten too: they were guesses at the old password, and
    a user an admin just reset must not stay locked out."""
    passwords.check_strength(password)
    password_hash = await run(passwords.hash_password, password)
    name = normalize_username(username)
    async with db.begin() as conn:
        row = (await conn.execute(sa.select(*_COLUMNS).where(users.c.username == name))).first()
        if row is None:
            return None
        await conn.execute(
            users.update().where(users.c.id == row.id).values(password_hash=password_hash)
        )
        ended = sessions.delete().where(sessions.c.user_id == row.id)
        if keep_session is not None:
            ended = ended.where(sessions.c.id_hash != keep_session)
        result = await conn.execute(ended)
        await conn.execute(login_failures.delete().where(login_failures.c.username == name))
    return _row(row), int(result.rowcount or 0)


async def count_users(db: Database) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(users)) or 0)


async def _matching(db: Database, username: str, password: str, run: Runner) -> Any | None:
    """The user's row (with its hash) when the password matches, else None. Takes as long
    for unknown usernames."""
    name = normalize_username(username)
    async with db.connect() as conn:
        row = (
            await conn.execute(
                sa.select(*_COLUMNS, users.c.password_hash).where(users.c.username == name)
            )
        ).first()
    if row is None or len(password) > passwords.MAX_LENGTH:
        await run(passwords.burn_time, password[: passwords.MAX_LENGTH])
        return None
    if not await run(passwords.verify_password, row.password_hash, password):
        return None
    return row


async def check_password(
    db: Database, username: str, password: str, *, run: Runner = in_thread
) -> User | None:
    """The user when the password is theirs, else None; records nothing (not a login)."""
    row = await _matching(db, username, password, run)
    return _row(row) if row is not None else None


async def verify_login(
    db: Database, username: str, password: str, now: datetime, *, run: Runner = in_thread
) -> User | None:
    """The user when the password matches, else None. Takes as long for unknown usernames."""
    row = await _matching(db, username, password, run)
    if row is None:
        return None
    values: dict[str, Any] = {"last_login_at": now}
    if passwords.needs_rehash(row.password_hash):
        values["password_hash"] = await run(passwords.hash_password, password)
    async with db.begin() as conn:
        await conn.execute(users.update().where(users.c.id == row.id).values(**values))
    return _row(row)
