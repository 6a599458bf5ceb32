"""SessionService on a real SQLite database: logins under the throttle with every refusal
audited, logout, and changing one's own password."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.clock import FakeClock
from watchkeeper.auth import passwords, sessions, users
from watchkeeper.auth.principals import Principal, Role
from watchkeeper.auth.throttle import LoginThrottle
from watchkeeper.config.loader import LoginThrottleConfig
from watchkeeper.core.errors import Forbidden, Invalid, Throttled, Unauthenticated
from watchkeeper.services.audit import AuditService
from watchkeeper.services.sessions import SessionService
from watchkeeper.store.database import Database

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
IP = "203.0.113.7"
TTL = timedelta(hours=12)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def service(sqlite_db: Database, clock: FakeClock) -> SessionService:
    await users.create_user(sqlite_db, "alice", PASSWORD, Role.OPERATOR, T0)
    throttle = LoginThrottle(sqlite_db, LoginThrottleConfig(max_failures=3), clock)
    audit = AuditService(sqlite_db, clock)
    return SessionService(sqlite_db, clock, throttle=throttle, audit=audit, ttl=TTL)


def alice() -> Principal:
    return Principal("alice", Role.OPERATOR, "user", IP)


async def test_login_makes_a_session_for_the_normalized_user(service: SessionService) -> None:
    session_id, session = await service.login(" Alice", PASSWORD, source_ip=IP, where="/x")
    assert session.user.username == "alice"
    assert (session.created_at, session.expires_at) == (T0, T0 + TTL)
    found = await sessions.lookup_session(service.db, session_id, T0)
    assert found is not None and found.id_hash == session.id_hash


async def test_a_wrong_password_is_unauthenticated_and_audited(service: SessionService) -> None:
    with pytest.raises(Unauthenticated) as refused:
        await service.login("ALICE", "wrong guess", source_ip=IP, where="/auth/login")
    assert refused.value.detail == "wrong username or password"
    (entry,), total = await service.audit.query()
    assert total == 1
    assert (entry.actor, entry.actor_kind, entry.action, entry.target, entry.status) == (
        "anonymous",
        "anonymous",
        "POST /auth/login",
        "/auth/login",
        401,
    )
    assert entry.detail == {"username": "alice", "outcome": "wrong username or password"}
    assert (entry.source_ip, entry.at) == (IP, T0)


async def test_over_the_limit_even_the_right_password_is_throttled(
    service: SessionService,
) -> None:
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await service.login("alice", "wrong guess", source_ip=IP, where="/auth/login")
    with pytest.raises(Throttled) as throttled:
        await service.login("alice", PASSWORD, source_ip=IP, where="/auth/login")
    wait = throttled.value.retry_after
    assert wait == 15 * 60
    assert throttled.value.detail == f"too many failed logins; try again in {wait} s"
    entries, _ = await service.audit.query()
    assert [e.status for e in entries] == [429, 401, 401, 401]
    assert entries[0].detail == {"username": "alice", "outcome": "throttled", "retry_after": wait}


async def test_a_correct_login_clears_the_accounts_failures(service: SessionService) -> None:
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await service.login("alice", "wrong guess", source_ip=IP, where="/auth/login")
    await service.login("alice", PASSWORD, source_ip=IP, where="/auth/login")
    for _ in range(2):  # two more would be four in the window without the clearing
        with pytest.raises(Unauthenticated):
            await service.login("alice", "wrong guess", source_ip=IP, where="/auth/login")
    await service.login("alice", PASSWORD, source_ip=IP, where="/auth/login")


async def test_logout_ends_the_session(service: SessionService) -> None:
    session_id, _ = await service.login("alice", PASSWORD, source_ip=IP, where="/auth/login")
    await service.logout(session_id)
    assert await sessions.lookup_session(service.db, session_id, T0) is None


async def test_change_password_keeps_this_session_and_ends_the_others(
    service: SessionService,
) -> None:
    mine, _ = await service.login("alice", PASSWORD, source_ip=IP, where="/auth/login")
    other, _ = await service.login("alice", PASSWORD, source_ip=IP, where="/auth/login")
    user, ended = await service.change_password(
        alice(), mine, PASSWORD, "a new long password", source_ip=IP, where="/auth/password"
    )
    assert (user.username, ended) == ("alice", 1)
    assert await sessions.lookup_session(service.db, mine, T0) is not None
    assert await sessions.lookup_session(service.db, other, T0) is None
    assert await users.check_password(service.db, "alice", "a new long password") is not None


async def test_a_token_or_a_cookieless_caller_has_no_password_to_change(
    service: SessionService,
) -> None:
    token = Principal("ci", Role.ADMIN, "token", IP)
    with pytest.raises(Forbidden, match=r"^only a logged-in user has a password"):
        await service.change_password(token, "x", PASSWORD, "new long pw", source_ip=IP, where="/")
    with pytest.raises(Forbidden, match=r"^only a logged-in user has a password"):
        await service.change_password(
            alice(), None, PASSWORD, "new long pw", source_ip=IP, where="/"
        )


async def test_a_weak_new_password_is_invalid_before_the_current_is_checked(
    service: SessionService,
) -> None:
    mine, _ = await service.login("alice", PASSWORD, source_ip=IP, where="/auth/login")
    with pytest.raises(Invalid) as weak:
        await service.change_password(alice(), mine, "wrong", "short", source_ip=IP, where="/")
    assert weak.value.detail == "new_password: password must be at least 8 characters"
    _, total = await service.audit.query()
    assert total == 0  # nothing was attempted


async def test_a_wrong_current_password_is_forbidden_and_audited_as_the_user(
    service: SessionService,
) -> None:
    mine, _ = await service.login("alice", PASSWORD, source_ip=IP, where="/auth/login")
    with pytest.raises(Forbidden) as wrong:
        await service.change_password(
            alice(), mine, "wrong guess", "a new long password", source_ip=IP, where="/pw"
        )
    assert wrong.value.detail == "the current password is wrong"
    (entry,), _ = await service.audit.query()
    assert (entry.actor, entry.actor_kind, entry.action, entry.status) == (
        "alice",
        "user",
        "POST /pw",
        403,
    )
    assert entry.detail == {"outcome": "the current password is wrong"}
    assert await users.check_password(service.db, "alice", PASSWORD) is not None


async def test_guessing_the_current_password_is_throttled_like_logins(
    service: SessionService,
) -> None:
    mine, _ = await service.login("alice", PASSWORD, source_ip=IP, where="/auth/login")
    for _ in range(3):
        with pytest.raises(Forbidden):
            await service.change_password(
                alice(), mine, "wrong guess", "a new long password", source_ip=IP, where="/pw"
            )
    with pytest.raises(Throttled) as throttled:
        await service.change_password(
            alice(), mine, PASSWORD, "a new long password", source_ip=IP, where="/pw"
        )
    assert throttled.value.detail == "too many failed attempts; try again in 900 s"
    assert await users.check_password(service.db, "alice", PASSWORD) is not None


async def test_a_user_deleted_meanwhile_is_unauthenticated(service: SessionService) -> None:
    mine, _ = await service.login("alice", PASSWORD, source_ip=IP, where="/auth/login")
    await users.create_user(service.db, "root", PASSWORD, Role.ADMIN, T0)

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        if fn is passwords.hash_password:  # after the check, before the change
            await users.delete_user(service.db, "alice")
        return fn(*args)

    service.run = run
    with pytest.raises(Unauthenticated) as ended:
        await service.change_password(
            alice(), mine, PASSWORD, "a new long password", source_ip=IP, where="/pw"
        )
    assert ended.value.detail == "the session has ended; log in again"


async def test_argon2_runs_where_the_service_is_told(service: SessionService) -> None:
    ran: list[str] = []

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        ran.append(fn.__name__)
        return fn(*args)

    service.run = run
    await service.login("alice", PASSWORD, source_ip=IP, where="/auth/login")
    assert "verify_password" in ran
