"""UserService on a real SQLite database: each refusal is the domain error the API, the
dashboard and the CLI show."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.clock import FakeClock
from watchkeeper.auth import sessions, users
from watchkeeper.auth.principals import Role
from watchkeeper.core.errors import Conflict, Invalid, NotFound
from watchkeeper.services.users import UserService
from watchkeeper.store.database import Database

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@pytest.fixture
def service(sqlite_db: Database) -> UserService:
    return UserService(sqlite_db, FakeClock(T0))


async def test_create_stores_a_normalized_user_stamped_with_the_clock(
    service: UserService,
) -> None:
    user = await service.create("  Alice ", PASSWORD, Role.OPERATOR)
    assert (user.username, user.role, user.created_at) == ("alice", Role.OPERATOR, T0)
    assert [u.username for u in await service.list()] == ["alice"]
    assert await service.count() == 1
    assert await users.check_password(service.db, "alice", PASSWORD) == user


async def test_a_taken_name_is_a_conflict_whatever_its_case(service: UserService) -> None:
    await service.create("alice", PASSWORD, Role.VIEWER)
    with pytest.raises(Conflict) as refused:
        await service.create("ALICE", PASSWORD, Role.ADMIN)
    assert refused.value.detail == "a user named 'alice' exists"
    assert refused.value.status == 409


async def test_a_bad_username_or_a_short_password_is_invalid(service: UserService) -> None:
    with pytest.raises(Invalid, match=r"^username must be 1-100 characters"):
        await service.create("no spaces", PASSWORD, Role.VIEWER)
    with pytest.raises(Invalid) as short:
        await service.create("bob", "short", Role.VIEWER)
    assert short.value.detail == "password must be at least 8 characters"
    assert short.value.field is None  # the API's 422 body has no `errors`, as before
    assert await service.list() == []


async def test_set_role_returns_the_user_and_the_role_before(service: UserService) -> None:
    await service.create("root", PASSWORD, Role.ADMIN)
    await service.create("alice", PASSWORD, Role.VIEWER)
    user, before = await service.set_role("Alice", Role.ADMIN)
    assert (user.username, user.role, before) == ("alice", Role.ADMIN, Role.VIEWER)
    assert {u.username: u.role for u in await service.list()}["alice"] is Role.ADMIN


async def test_set_role_of_nobody_is_not_found(service: UserService) -> None:
    with pytest.raises(NotFound) as missing:
        await service.set_role("nobody", Role.ADMIN)
    assert missing.value.detail == "no such user"


async def test_the_last_admin_user_can_be_neither_demoted_nor_deleted(
    service: UserService,
) -> None:
    await service.create("root", PASSWORD, Role.ADMIN)
    with pytest.raises(Conflict, match=r"^root is the last admin user"):
        await service.set_role("root", Role.VIEWER)
    with pytest.raises(Conflict, match=r"^root is the last admin user"):
        await service.delete("root")
    assert [(u.username, u.role) for u in await service.list()] == [("root", Role.ADMIN)]


async def test_reset_password_ends_every_session_of_the_user(service: UserService) -> None:
    user = await service.create("alice", PASSWORD, Role.VIEWER)
    for _ in range(2):
        await sessions.create_session(service.db, user, T0, timedelta(hours=1), None)
    changed, ended = await service.reset_password("alice", "a new long password")
    assert (changed.id, ended) == (user.id, 2)
    assert await users.check_password(service.db, "alice", "a new long password") is not None
    assert await users.check_password(service.db, "alice", PASSWORD) is None


async def test_reset_password_refuses_a_weak_one_and_nobody(service: UserService) -> None:
    await service.create("alice", PASSWORD, Role.VIEWER)
    with pytest.raises(Invalid) as weak:
        await service.reset_password("alice", "short")
    assert weak.value.detail == "new_password: password must be at least 8 characters"
    with pytest.raises(NotFound, match=r"^no such user$"):
        await service.reset_password("nobody", PASSWORD)


async def test_delete_removes_the_user_and_refuses_nobody(service: UserService) -> None:
    await service.create("root", PASSWORD, Role.ADMIN)
    await service.create("alice", PASSWORD, Role.VIEWER)
    deleted = await service.delete("ALICE")
    assert deleted.username == "alice"
    assert [u.username for u in await service.list()] == ["root"]
    with pytest.raises(NotFound, match=r"^no such user$"):
        await service.delete("alice")


async def test_argon2_runs_where_the_service_is_told(sqlite_db: Database) -> None:
    ran: list[str] = []

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        ran.append(fn.__name__)
        return fn(*args)

    service = UserService(sqlite_db, FakeClock(T0), run=run)
    await service.create("alice", PASSWORD, Role.VIEWER)
    await service.reset_password("alice", "a new long password")
    assert ran == ["hash_password", "hash_password"]
