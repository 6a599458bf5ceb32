"""Day-two user management: changing one's own password, admin resets, role changes and the
last admin user, through the real app and storage (a fake clock for the throttle window)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.test_auth import PASSWORD, T0, Service, assert_problem, login, started
from watchkeeper.auth import sessions, users
from watchkeeper.http import audit
from watchkeeper.http.roles import Role
from watchkeeper.store.database import Database

NEW_PASSWORD = "a new and longer passphrase"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with started(tmp_path) as svc:
        yield svc


@contextlib.asynccontextmanager
async def logged_in(service: Service) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client with a session of alice's, and its CSRF token."""
    async with service.client() as client:
        response = await login(client)
        assert response.status_code == 200, response.text
        yield client, response.json()["csrf_token"]


async def change(
    client: httpx.AsyncClient, csrf: str, current: str, new: str = NEW_PASSWORD
) -> httpx.Response:
    return await client.post(
        "/auth/password",
        json={"current_password": current, "new_password": new},
        headers={"X-CSRF-Token": csrf},
    )


# --- your own password --------------------------------------------------------------------------


async def test_changing_your_password_ends_your_other_sessions_and_keeps_this_one(
    service: Service,
) -> None:
    async with logged_in(service) as (laptop, csrf), logged_in(service) as (phone, _):
        changed = await change(laptop, csrf, PASSWORD)
        assert changed.status_code == 200, changed.text
        assert changed.json() == {"username": "alice", "other_sessions_ended": 1}
        assert (await laptop.get("/auth/me")).json()["name"] == "alice"
        assert_problem(await phone.get("/auth/me"), 401)
        assert (await change(laptop, csrf, NEW_PASSWORD, "and yet another one")).status_code == 200

    async with service.client() as c:
        assert_problem(await login(c, PASSWORD), 401)
        assert (await login(c, "and yet another one")).status_code == 200
    entries, _ = await audit.list_entries(service.runtime.db, action="POST /auth/password")
    assert [(e.actor, e.actor_kind, e.status) for e in entries] == [("alice", "user", 200)] * 2
    assert entries[-1].detail is not None
    assert entries[-1].detail["other_sessions_ended"] == 1
    assert PASSWORD not in str(entries) and NEW_PASSWORD not in str(entries)


async def test_a_wrong_current_password_counts_as_a_failed_login_and_throttles_after_ten(
    service: Service,
) -> None:
    async with logged_in(service) as (client, csrf):
        for _ in range(10):
            wrong = assert_problem(await change(client, csrf, "a guess at it"), 403)
            assert wrong["detail"] == "the current password is wrong"
        assert (await client.get("/auth/me")).status_code == 200  # the session itself stays
        held = await change(client, csrf, PASSWORD)  # even the right one, until the window ends
        assert_problem(held, 429)
        assert held.headers["retry-after"] == "900"
        async with service.client() as other:
            assert (await login(other)).status_code == 429  # the same throttle as logins

        service.clock.advance(timedelta(minutes=15))
        assert (await change(client, csrf, PASSWORD)).status_code == 200
    failed, _ = await audit.list_entries(service.runtime.db, actor="alice")
    outcomes = [e.detail.get("outcome") for e in failed if e.status == 403 and e.detail]
    assert outcomes == ["the current password is wrong"] * 10
    assert "a guess at it" not in str(failed)


async def test_a_weak_new_password_is_a_422_and_costs_no_attempt(service: Service) -> None:
    async with logged_in(service) as (client, csrf):
        for _ in range(12):
            weak = assert_problem(await change(client, csrf, "a guess at it", "short"), 422)
        assert "at least 8" in weak["detail"]
        assert (await change(client, csrf, PASSWORD)).status_code == 200


async def test_only_a_users_session_with_its_csrf_token_can_change_a_password(
    service: Service,
) -> None:
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    async with service.client() as c:
        as_token = await c.post("/auth/password", json=body, headers=service.admin)
        assert "API tokens have none" in assert_problem(as_token, 403)["detail"]
    async with logged_in(service) as (client, _csrf):
        refused = await client.post("/auth/password", json=body)
        assert "CSRF" in assert_problem(refused, 403)["detail"]
    async with service.client() as c:
        assert (await login(c)).status_code == 200  # nothing changed


# --- admins: resets, roles, the last admin ------------------------------------------------------


async def test_an_admin_reset_ends_all_the_users_sessions_and_lifts_their_lockout(
    service: Service,
) -> None:
    async with logged_in(service) as (client, _), service.client() as admin:
        for _ in range(10):
            await login(admin, "forgotten it")
        assert (await login(admin)).status_code == 429

        admin.headers.update(service.admin)
        reset = await admin.put("/api/v1/users/Alice/password", json={"new_password": NEW_PASSWORD})
        assert reset.status_code == 200, reset.text
        assert reset.json()["username"] == "alice"
        assert_problem(await client.get("/auth/me"), 401)
        assert_problem(await login(admin, PASSWORD), 401)
        assert (await login(admin, NEW_PASSWORD)).status_code == 200

        weak = {"new_password": "short"}
        assert_problem(await admin.put("/api/v1/users/alice/password", json=weak), 422)
        nobody = {"new_password": NEW_PASSWORD}
        assert_problem(await admin.put("/api/v1/users/nobody/password", json=nobody), 404)
        log = await admin.get("/api/v1/audit")
    assert NEW_PASSWORD not in log.text
    (entry,) = [e for e in log.json()["items"] if e["action"].startswith("PUT")]
    assert entry["detail"]["username"] == "alice" and entry["detail"]["sessions_ended"] == 1


async def test_a_role_change_takes_effect_on_the_next_request_of_an_open_session(
    service: Service,
) -> None:
    async with logged_in(service) as (alice, csrf), service.client() as admin:
        admin.headers.update(service.admin)
        assert_problem(await alice.get("/api/v1/users"), 403)  # an operator
        promoted = await admin.patch("/api/v1/users/alice", json={"role": "admin"})
        assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
        assert (await alice.get("/api/v1/users")).status_code == 200
        assert (await alice.get("/auth/me")).json()["role"] == "admin"

        # Another admin first: alice is the only admin user now, and the last one stays.
        await users.create_user(service.runtime.db, "root", PASSWORD, Role.ADMIN, T0)
        demoted = await admin.patch("/api/v1/users/alice", json={"role": "viewer"})
        assert demoted.status_code == 200, demoted.text
        silence = {"matchers": ["check=db"], "ends_at": "2030-01-01T13:00:00Z"}
        refused = await alice.post("/api/v1/silences", json=silence, headers={"X-CSRF-Token": csrf})
        assert_problem(refused, 403)

        assert_problem(await admin.patch("/api/v1/users/nobody", json={"role": "admin"}), 404)
        assert_problem(await admin.patch("/api/v1/users/alice", json={"role": "root"}), 422)
        log = (await admin.get("/api/v1/audit")).json()["items"]
    patches = [e["detail"] for e in log if e["action"] == "PATCH /api/v1/users/{username}"]
    assert [(d["role"], d["previous"]) for d in patches] == [
        ("viewer", "admin"),
        ("admin", "operator"),
    ]


async def test_the_last_admin_user_cannot_be_deleted_or_demoted_until_another_admin_exists(
    service: Service,
) -> None:
    async with service.client() as c:
        c.headers.update(service.admin)  # an admin token: tokens do not count as admins
        root = {"username": "root", "password": PASSWORD, "role": "admin"}
        assert (await c.post("/api/v1/users", json=root)).status_code == 201

        deleted = assert_problem(await c.delete("/api/v1/users/root"), 409)
        assert "root is the last admin user" in deleted["detail"]
        demoted = assert_problem(await c.patch("/api/v1/users/root", json={"role": "viewer"}), 409)
        assert "last admin user" in demoted["detail"]
        assert (await c.patch("/api/v1/users/root", json={"role": "admin"})).status_code == 200
        assert (await c.delete("/api/v1/users/alice")).status_code == 200  # not an admin

        assert (await c.post("/api/v1/users", json={**root, "username": "bob"})).status_code == 201
        assert (await c.patch("/api/v1/users/root", json={"role": "viewer"})).status_code == 200
        assert_problem(await c.delete("/api/v1/users/bob"), 409)
        assert (await c.delete("/api/v1/users/root")).status_code == 200
        listed = (await c.get("/api/v1/users")).json()["items"]
    assert [(u["username"], u["role"]) for u in listed] == [("bob", "admin")]


# --- storage, on both engines -------------------------------------------------------------------


async def test_roles_passwords_and_the_last_admin_rule_on_sqlite_and_postgresql(
    db_url: str,
) -> None:
    db = Database(db_url)
    await db.migrate()
    try:
        alice = await users.create_user(db, "alice", PASSWORD, Role.ADMIN, T0)
        with pytest.raises(users.LastAdmin):
            await users.set_role(db, "alice", Role.VIEWER)
        with pytest.raises(users.LastAdmin):
            await users.delete_user(db, "alice")
        assert (await users.get_user(db, alice.id)) == alice  # rolled back: still an admin

        kept, _ = await sessions.create_session(db, alice, T0, timedelta(hours=1), None)
        await sessions.create_session(db, alice, T0, timedelta(hours=1), None)
        changed = await users.set_password(
            db, "ALICE", NEW_PASSWORD, keep_session=sessions.session_hash(kept)
        )
        assert changed is not None and changed[1] == 1
        assert await sessions.lookup_session(db, kept, T0) is not None
        assert await users.check_password(db, "alice", NEW_PASSWORD) == alice
        assert await users.check_password(db, "alice", PASSWORD) is None
        assert await users.set_password(db, "nobody", NEW_PASSWORD) is None
        with pytest.raises(ValueError, match="at least 8"):
            await users.set_password(db, "alice", "short")

        await users.create_user(db, "bob", PASSWORD, Role.ADMIN, T0)
        result = await users.set_role(db, "alice", Role.OPERATOR)
        assert result is not None and result[0].role is Role.OPERATOR and result[1] is Role.ADMIN
        assert await users.set_role(db, "nobody", Role.ADMIN) is None
        with pytest.raises(users.LastAdmin):
            await users.set_role(db, "bob", Role.OPERATOR)
        assert (await users.delete_user(db, "alice")) is not None
        assert [(u.username, u.role) for u in await users.list_users(db)] == [("bob", Role.ADMIN)]

    finally:
        await db.close()
