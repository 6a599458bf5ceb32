"""Logins under concurrency: the throttle counts a failure before the password is looked at,
argon2 runs in the runtime's small pool (never on the event loop, never unbounded), and every
attempt, throttled ones too, lands in the audit log with the caller's address."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.auth import bearer, token_for
from tests.support.clock import FakeClock
from watchkeeper.app import Runtime
from watchkeeper.auth import passwords, users
from watchkeeper.config.loader import Config
from watchkeeper.http import audit
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@dataclass
class Argon2Calls:
    """Every argon2 verification the service ran: how many, on which threads, how many at once."""

    count: int = 0
    threads: set[str] = field(default_factory=set)
    most_at_once: int = 0
    _running: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, argon2: Callable[..., Any], *, verifies: bool) -> Callable[..., Any]:
        def watched(*args: Any) -> Any:
            with self._lock:
                self.count += verifies
                self._running += 1
                self.most_at_once = max(self.most_at_once, self._running)
                self.threads.add(threading.current_thread().name)
            try:
                return argon2(*args)
            finally:
                with self._lock:
                    self._running -= 1

        return watched


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Argon2Calls]:
    calls = Argon2Calls()
    verify = calls.wrap(passwords.verify_password, verifies=True)
    monkeypatch.setattr(passwords, "verify_password", verify)
    yield calls


@contextlib.asynccontextmanager
async def started(db_url: str) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    config = Config.model_validate({"storage": {"url": db_url}})
    runtime = Runtime(config, clock=FakeClock(T0))
    await runtime.start()
    try:
        await users.create_user(runtime.db, "alice", PASSWORD, Role.OPERATOR, T0)
        app = create_app(config, runtime=runtime)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 41000))
        async with httpx.AsyncClient(transport=transport, base_url="http://wk") as client:
            yield runtime, client
    finally:
        await runtime.stop()


async def logins(client: httpx.AsyncClient, names: list[str], password: str) -> Counter[int]:
    answers = await asyncio.gather(
        *(client.post("/auth/login", json={"username": n, "password": password}) for n in names)
    )
    return Counter(a.status_code for a in answers)


async def login_audit(runtime: Runtime) -> list[audit.AuditEntry]:
    entries, _ = await audit.list_entries(runtime.db, action="POST /auth/login", limit=1000)
    return entries


async def test_forty_concurrent_wrong_passwords_for_one_account_verify_at_most_ten(
    db_url: str, argon2_calls: Argon2Calls
) -> None:
    async with started(db_url) as (runtime, client):
        statuses = await logins(client, ["alice"] * 40, "wrong guess")
        assert set(statuses) <= {401, 429}, statuses
        assert statuses[401] == 10, statuses
        assert argon2_calls.count <= 10
        entries = await login_audit(runtime)
    assert len(entries) == 40
    assert Counter(e.status for e in entries) == statuses
    assert {e.source_ip for e in entries} == {"203.0.113.7"}
    assert {e.detail["username"] for e in entries if e.detail} == {"alice"}


async def test_eighty_concurrent_failures_from_one_address_are_each_answered_and_audited(
    db_url: str, argon2_calls: Argon2Calls
) -> None:
    async with started(db_url) as (runtime, client):
        statuses = await logins(client, [f"user{i}" for i in range(80)], "wrong guess")
        assert set(statuses) <= {401, 429}, statuses
        assert statuses[401] == 50, statuses  # max_failures_per_ip
        assert argon2_calls.count <= 50
        entries = await login_audit(runtime)
        assert len(entries) == 80
        assert Counter(e.status for e in entries) == statuses
        assert {e.source_ip for e in entries} == {"203.0.113.7"}


async def test_argon2_runs_in_the_runtimes_bounded_pool_which_stops_with_it(
    sqlite_url: str, argon2_calls: Argon2Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with started(sqlite_url) as (runtime, client):
        token = bearer(await token_for(runtime, Role.ADMIN))
        # Hashing is watched from here: the fixture's user was made outside the runtime.
        hash_password = argon2_calls.wrap(passwords.hash_password, verifies=False)
        monkeypatch.setattr(passwords, "hash_password", hash_password)
        statuses = await logins(client, ["alice"] * 4 + ["nobody"] * 4, "wrong guess")
        assert statuses == {401: 8}
        assert (await logins(client, ["alice"], PASSWORD)) == {200: 1}
        created = await client.post(
            "/api/v1/users",
            json={"username": "bob", "password": PASSWORD, "role": "viewer"},
            headers=token,
        )
        assert created.status_code == 201, created.text
        pool = runtime.passwords
        assert argon2_calls.count == 9
        assert argon2_calls.threads and all(
            t.startswith(pool.THREAD_PREFIX) for t in argon2_calls.threads
        ), argon2_calls.threads
        assert argon2_calls.most_at_once <= pool.size
    assert not [t for t in threading.enumerate() if t.name.startswith(pool.THREAD_PREFIX)]


async def test_a_password_change_counts_its_attempt_before_checking_the_password(
    sqlite_url: str, argon2_calls: Argon2Calls
) -> None:
    async with started(sqlite_url) as (_runtime, client):
        session = await client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        csrf = {"X-CSRF-Token": session.json()["csrf_token"]}
        argon2_calls.count = 0
        answers = await asyncio.gather(
            *(
                client.post(
                    "/auth/password",
                    json={"current_password": f"guess {i}", "new_password": "n3w password!"},
                    headers=csrf,
                )
                for i in range(20)
            )
        )
        statuses: Counter[int] = Counter(a.status_code for a in answers)
        assert statuses == {403: 10, 429: 10}, statuses
        assert argon2_calls.count <= 10
