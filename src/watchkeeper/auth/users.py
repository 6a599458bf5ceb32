"""People who log in: a username, an argon2id password hash and a role."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from watchkeeper.auth import passwords
from watchkeeper.auth.principals import Role
from watchkeeper.auth.workers import Runner, in_thread
from watchkeeper.store import users as user_store
from watchkeeper.store.database import Database
from watchkeeper.store.errors import Conflict

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
        await user_store.insert(
            db,
            id=user.id,
            username=name,
            password_hash=password_hash,
            role=role.value,
            created_at=now,
        )
    except Conflict:
        raise UserExists(name) from None
    return user


async def list_users(db: Database) -> list[User]:
    return [_row(r) for r in await user_store.list_all(db)]


async def get_user(db: Database, user_id: str) -> User | None:
    row = await user_store.by_id(db, user_id)
    return _row(row) if row is not None else None


async def delete_user(db: Database, username: str) -> User | None:
    """Delete the account and end its sessions; None if there is no such user. LastAdmin if
    it is the only admin user."""
    try:
        row = await user_store.delete(db, normalize_username(username), admin=Role.ADMIN.value)
    except user_store.NoAdminLeft as exc:
        raise LastAdmin(exc.username) from None
    return _row(row) if row is not None else None


async def set_role(db: Database, username: str, role: Role) -> tuple[User, Role] | None:
    """Give the user `role` (their sessions carry it from their next request on): the user
    and the role they had, or None if there is no such user. LastAdmin if it would demote
    the only admin user."""
    name = normalize_username(username)
    try:
        row = await user_store.set_role(db, name, role.value, admin=Role.ADMIN.value)
    except user_store.NoAdminLeft as exc:
        raise LastAdmin(exc.username) from None
    if row is None:
        return None
    before = _row(row)
    return replace(before, role=role), before.role


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
    changed = await user_store.set_password(db, name, password_hash, keep_session=keep_session)
    if changed is None:
        return None
    row, ended = changed
    return _row(row), ended


async def count_users(db: Database) -> int:
    return await user_store.count(db)


async def _matching(db: Database, username: str, password: str, run: Runner) -> Any | None:
    """The user's row (with its hash) when the password matches, else None. Takes as long
    for unknown usernames."""
    row = await user_store.with_hash(db, normalize_username(username))
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
    rehashed = None
    if passwords.needs_rehash(row.password_hash):
        rehashed = await run(passwords.hash_password, password)
    await user_store.logged_in(db, row.id, now, password_hash=rehashed)
    return _row(row)
