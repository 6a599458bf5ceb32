"""People who log in: create, list, change the role, reset the password, delete.

At least one admin *user* remains once there is one: deleting or demoting the last is a
Conflict (admin API tokens do not count: they cannot log in to the dashboard, and they
expire)."""

from __future__ import annotations

from watchkeeper.auth import users as user_store
from watchkeeper.auth.principals import Role
from watchkeeper.auth.users import User
from watchkeeper.auth.workers import Runner, in_thread
from watchkeeper.core.clock import Clock
from watchkeeper.core.errors import Conflict, Invalid, NotFound
from watchkeeper.store.database import Database

NO_SUCH_USER = "no such user"


class UserService:
    """The user accounts of one database; `run` runs argon2 (the runtime's password workers,
    or a plain thread in the CLI)."""

    def __init__(self, db: Database, clock: Clock, *, run: Runner = in_thread) -> None:
        self.db = db
        self.clock = clock
        self.run = run

    async def list(self) -> list[User]:
        """Every user, by username."""
        return await user_store.list_users(self.db)

    async def count(self) -> int:
        """How many users there are."""
        return await user_store.count_users(self.db)

    async def create(self, username: str, password: str, role: Role) -> User:
        """A new user; Invalid for a bad username or a weak password, Conflict for a taken
        name (usernames compare case-insensitively)."""
        try:
            return await user_store.create_user(
                self.db, username, password, role, self.clock.now(), run=self.run
            )
        except user_store.UserExists:
            name = user_store.normalize_username(username)
            raise Conflict(f"a user named {name!r} exists") from None
        except ValueError as exc:
            raise Invalid(str(exc)) from None

    async def set_role(self, username: str, role: Role) -> tuple[User, Role]:
        """Give the user `role` (open sessions carry it from their next request): the user and
        the role they had. NotFound; Conflict if it would demote the last admin user."""
        try:
            changed = await user_store.set_role(self.db, username, role)
        except user_store.LastAdmin as exc:
            raise Conflict(str(exc)) from None
        if changed is None:
            raise NotFound(NO_SUCH_USER)
        return changed

    async def reset_password(self, username: str, password: str) -> tuple[User, int]:
        """Set the user's password and end all their sessions: the user and the number of
        sessions ended. Invalid for a weak password (checked first), NotFound."""
        try:
            changed = await user_store.set_password(self.db, username, password, run=self.run)
        except ValueError as exc:
            raise Invalid(f"new_password: {exc}") from None
        if changed is None:
            raise NotFound(NO_SUCH_USER)
        return changed

    async def delete(self, username: str) -> User:
        """Delete the user and end their sessions. NotFound; Conflict for the last admin."""
        try:
            user = await user_store.delete_user(self.db, username)
        except user_store.LastAdmin as exc:
            raise Conflict(str(exc)) from None
        if user is None:
            raise NotFound(NO_SUCH_USER)
        return user
