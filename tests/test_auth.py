"""Logins, sessions with CSRF, API tokens, throttling, the audit log and problem+json errors:
through the real app and storage, with a fake clock for every window and expiry."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from tests.support.auth import bearer, token_for
from tests.support.clock import FakeClock
from watchkeeper.app import NO_CREDENTIALS_HINT, Runtime
from watchkeeper.auth import users
from watchkeeper.config.loader import Config
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role
from watchkeeper.store import tables

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@dataclass
class Service:
    runtime: Runtime
    app: FastAPI
    clock: FakeClock
    admin: dict[str, str]

    def client(self, ip: str = "127.0.0.1", base_url: str = "http://wk") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 50000))
        return httpx.AsyncClient(transport=transport, base_url=base_url)


@contextlib.asynccontextmanager
async def started(tmp_path: Path, **config: Any) -> AsyncIterator[Service]:
    clock = FakeClock(T0)
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = Config.model_validate({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}, **config})
    runtime = Runtime(cfg, clock=clock)
    await runtime.start()
    try:
        await users.create_user(runtime.db, "alice", PASSWORD, Role.OPERATOR, clock.now())
        admin = bearer(await token_for(runtime, Role.ADMIN, name="admin-bot"))
        yield Service(runtime, create_app(cfg, runtime=runtime), clock, admin)
    finally:
        await runtime.stop()


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with started(tmp_path) as svc:
        yield svc


async def login(client: httpx.AsyncClient, password: str = PASSWORD, user: str = "alice") -> Any:
    return await client.post("/auth/login", json={"username": user, "password": password})


async def an_alert(service: Service) -> str:
    async with service.client() as c:
        created = await c.post(
            "/api/v1/alerts", json={"name": "disk", "summary": "full"}, headers=service.admin
        )
    assert created.status_code == 200, created.text
    return str(created.json()[0]["id"])


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    return body


# --- sessions ---------------------------------------------------------------------------------


async def test_login_sets_an_httponly_samesite_cookie_and_returns_the_csrf_token(
    service: Service,
) -> None:
    async with service.client() as c:
        response = await login(c)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["username"] == "alice" and body["role"] == "operator"
        assert body["expires_at"] == (T0 + timedelta(hours=12)).isoformat().replace("+00:00", "Z")
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("wk_session=")
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http, and no https public_url
        me = (await c.get("/auth/me")).json()
    assert me == {
        "name": "alice",
        "role": "operator",
        "kind": "user",
        "csrf_token": body["csrf_token"],
    }


async def test_the_cookie_is_secure_over_https_or_with_an_https_public_url(
    service: Service, tmp_path: Path
) -> None:
    async with service.client(base_url="https://wk") as c:
        assert "Secure" in (await login(c)).headers["set-cookie"]
    https_url = {"public_url": "https://wk.example.com"}
    async with started(tmp_path / "other", server=https_url) as proxied, proxied.client() as c:
        assert "Secure" in (await login(c)).headers["set-cookie"]


async def test_a_cookie_authenticated_write_needs_the_sessions_csrf_token(
    service: Service,
) -> None:
    alert_id = await an_alert(service)
    async with service.client() as c:
        csrf = (await login(c)).json()["csrf_token"]
        assert (await c.get(f"/api/v1/alerts/{alert_id}")).status_code == 200  # reads need none

        refused = await c.post(f"/api/v1/alerts/{alert_id}/ack", json={})
        assert "CSRF" in assert_problem(refused, 403)["detail"]
        wrong = await c.post(
            f"/api/v1/alerts/{alert_id}/ack", json={}, headers={"X-CSRF-Token": "guess"}
        )
        assert_problem(wrong, 403)

        acked = await c.post(
            f"/api/v1/alerts/{alert_id}/ack",
            json={"actor": "mallory"},  # a person acts as themselves, whatever the body says
            headers={"X-CSRF-Token": csrf},
        )
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "alice"


async def test_a_form_post_carries_the_csrf_token_as_a_field(service: Service) -> None:
    async with service.client() as c:
        csrf = (await login(c)).json()["csrf_token"]
        assert_problem(await c.post("/auth/logout", data={}), 403)
        assert (await c.post("/auth/logout", data={"csrf_token": csrf})).status_code == 204


async def test_logout_ends_the_session_for_good(service: Service) -> None:
    async with service.client() as c:
        csrf = (await login(c)).json()["csrf_token"]
        session_id = c.cookies["wk_session"]
        out = await c.post("/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        assert 'wk_session=""' in out.headers["set-cookie"]
    async with service.client() as replay:
        replay.cookies.set("wk_session", session_id)
        assert_problem(await replay.get("/auth/me"), 401)


async def test_a_session_expires_after_session_ttl(service: Service) -> None:
    async with service.client() as c:
        await login(c)
        session_id = c.cookies["wk_session"]
        service.clock.advance(timedelta(hours=12))
        c.cookies.set("wk_session", session_id)
        assert_problem(await c.get("/api/v1/checks"), 401)


async def test_a_login_form_needs_the_csrf_token_its_page_was_given(service: Service) -> None:
    form = {"username": "alice", "password": PASSWORD}
    async with service.client() as c:
        assert_problem(await c.post("/auth/login", data=form), 403)
        csrf = (await c.get("/auth/login")).json()["csrf_token"]  # sets wk_login_csrf
        response = await c.post("/auth/login", data={**form, "csrf_token": csrf})
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "alice"


async def test_a_wrong_password_is_a_401_problem(service: Service) -> None:
    async with service.client() as c:
        body = assert_problem(await login(c, "wrong password"), 401)
        assert body["detail"] == "wrong username or password"
        unknown = await login(c, PASSWORD, user="nobody")
        assert assert_problem(unknown, 401)["detail"] == body["detail"]  # names not revealed


# --- API tokens -------------------------------------------------------------------------------


async def test_a_token_is_shown_once_and_only_its_hash_is_stored(service: Service) -> None:
    async with service.client() as c:
        created = await c.post(
            "/api/v1/tokens", json={"name": "ci", "role": "viewer"}, headers=service.admin
        )
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        assert token.startswith("wk_") and created.json()["prefix"] == token[:11]

        listed = await c.get("/api/v1/tokens", headers=service.admin)
        assert token not in listed.text
        assert {t["name"]: t["state"] for t in listed.json()["items"]} == {
            "ci": "active",
            "admin-bot": "active",
        }
        assert (await c.get("/api/v1/checks", headers=bearer(token))).status_code == 200

    async with service.runtime.db.connect() as conn:
        rows = (await conn.execute(sa.select(tables.api_tokens))).mappings().all()
    stored = " ".join(str(v) for row in rows for v in row.values())
    assert token not in stored and token[11:] not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored


async def test_revoked_and_expired_tokens_get_401(service: Service) -> None:
    async with service.client() as c:
        made = await c.post(
            "/api/v1/tokens",
            json={"name": "temp", "role": "viewer", "expires_in": "1h"},
            headers=service.admin,
        )
        temp = made.json()["token"]
        assert (await c.get("/api/v1/checks", headers=bearer(temp))).status_code == 200
        service.clock.advance(timedelta(hours=1))
        assert_problem(await c.get("/api/v1/checks", headers=bearer(temp)), 401)

        made = await c.post(
            "/api/v1/tokens", json={"name": "leaked", "role": "admin"}, headers=service.admin
        )
        leaked, leaked_id = made.json()["token"], made.json()["id"]
        assert (await c.get("/api/v1/checks", headers=bearer(leaked))).status_code == 200
        revoked = await c.delete(f"/api/v1/tokens/{leaked_id}", headers=service.admin)
        assert revoked.json()["state"] == "revoked"
        assert_problem(await c.get("/api/v1/checks", headers=bearer(leaked)), 401)
        assert_problem(await c.get("/api/v1/checks", headers=bearer("wk_made_up")), 401)
        assert_problem(await c.get("/api/v1/checks", headers={"Authorization": "Basic eDp5"}), 401)


# --- throttling -------------------------------------------------------------------------------


async def test_ten_failed_logins_hold_off_even_the_right_password_until_the_window_ends(
    service: Service,
) -> None:
    async with service.client() as c:
        for _ in range(10):
            assert (await login(c, "guess")).status_code == 401
        throttled = await login(c, PASSWORD)
        assert_problem(throttled, 429)
        assert throttled.headers["retry-after"] == "900"  # 15 minutes after the first failure
        assert "wk_session" not in throttled.headers.get("set-cookie", "")

        service.clock.advance(timedelta(minutes=10))
        still = await login(c, PASSWORD)
        assert still.status_code == 429 and still.headers["retry-after"] == "300"
        service.clock.advance(timedelta(minutes=5))
        assert (await login(c, PASSWORD)).status_code == 200


async def test_refused_attempts_do_not_extend_the_lock(service: Service) -> None:
    async with service.client() as c:
        for _ in range(10):
            await login(c, "guess")
        service.clock.advance(timedelta(minutes=14))
        assert (await login(c, "guess again")).headers["retry-after"] == "60"
        service.clock.advance(timedelta(minutes=1))
        assert (await login(c, PASSWORD)).status_code == 200


async def test_a_correct_login_clears_the_accounts_failures(service: Service) -> None:
    async with service.client() as c:
        for _ in range(9):
            await login(c, "guess")
        assert (await login(c, PASSWORD)).status_code == 200
        for _ in range(9):
            assert (await login(c, "guess")).status_code == 401
        assert (await login(c, PASSWORD)).status_code == 200


async def test_one_address_guessing_across_accounts_is_throttled(tmp_path: Path) -> None:
    throttle = {"max_failures": 10, "max_failures_per_ip": 5, "window": "10m"}
    async with started(tmp_path, auth={"login_throttle": throttle}) as service:
        async with service.client("203.0.113.9") as attacker:
            for name in ("root", "admin", "bob", "carol", "dave"):
                assert (await login(attacker, "guess", user=name)).status_code == 401
            held = await login(attacker, PASSWORD)
            assert held.status_code == 429 and held.headers["retry-after"] == "600"
        async with service.client("198.51.100.4") as elsewhere:
            assert (await login(elsewhere, PASSWORD)).status_code == 200


# --- audit log --------------------------------------------------------------------------------


async def test_the_audit_log_records_each_write_with_actor_and_source_address(
    service: Service,
) -> None:
    alert_id = await an_alert(service)
    ops_bot = bearer(await token_for(service.runtime, Role.OPERATOR, name="ops-bot"))
    ends = (T0 + timedelta(hours=1)).isoformat()
    async with service.client("10.1.2.3") as bot:
        silence = await bot.post(
            "/api/v1/silences", json={"matchers": ["check=db"], "ends_at": ends}, headers=ops_bot
        )
        assert silence.status_code == 201
        await bot.get("/api/v1/silences", headers=ops_bot)  # reads are not audited
        pushed = await bot.post(
            "/api/v1/metrics", json={"samples": [{"metric": "m", "value": 1}]}, headers=ops_bot
        )
        assert pushed.status_code == 200  # samples are observations: not audited either
    async with service.client("10.9.8.7") as browser:
        await login(browser, "typo")
        csrf = (await login(browser)).json()["csrf_token"]
        acked = await browser.post(
            f"/api/v1/alerts/{alert_id}/ack", json={}, headers={"X-CSRF-Token": csrf}
        )
        assert acked.status_code == 200
        assert_problem(await browser.get("/api/v1/audit"), 403)  # operators cannot read it

    async with service.client() as c:
        page = (await c.get("/api/v1/audit", headers=service.admin)).json()
    entries = [
        (e["actor"], e["actor_kind"], e["action"], e["status"], e["source_ip"])
        for e in page["items"]
    ]
    assert entries == [  # newest first
        ("alice", "user", "POST /api/v1/alerts/{alert_id}/ack", 200, "10.9.8.7"),
        ("alice", "user", "POST /auth/login", 200, "10.9.8.7"),
        ("anonymous", "anonymous", "POST /auth/login", 401, "10.9.8.7"),
        ("ops-bot", "token", "POST /api/v1/silences", 201, "10.1.2.3"),
        ("admin-bot", "token", "POST /api/v1/alerts", 200, "127.0.0.1"),
    ]
    ack, _, failed, silenced, _ = page["items"]
    assert ack["target"] == f"/api/v1/alerts/{alert_id}/ack"
    assert ack["at"] == T0.isoformat().replace("+00:00", "Z")
    assert failed["detail"]["username"] == "alice"
    assert silenced["detail"]["token_id"]
    assert page["total"] == 5


async def test_token_and_user_management_is_audited_without_secrets(service: Service) -> None:
    async with service.client() as c:
        made = await c.post(
            "/api/v1/tokens", json={"name": "ci", "role": "viewer"}, headers=service.admin
        )
        await c.post(
            "/api/v1/users",
            json={"username": "bob", "password": "long enough pw", "role": "viewer"},
            headers=service.admin,
        )
        log = await c.get("/api/v1/audit", headers=service.admin)
    assert made.json()["token"] not in log.text and "long enough pw" not in log.text
    (user, token) = log.json()["items"]
    assert user["detail"] == {
        "id": user["detail"]["id"],
        "username": "bob",
        "role": "viewer",
        "token_id": token["detail"]["token_id"],
    }
    assert token["detail"]["name"] == "ci" and token["detail"]["id"] == made.json()["id"]


# --- users ------------------------------------------------------------------------------------


async def test_admins_create_users_who_can_then_log_in_and_deleting_ends_their_sessions(
    service: Service,
) -> None:
    async with service.client() as c:
        new = {"username": "Bob", "password": "long enough pw", "role": "viewer"}
        created = await c.post("/api/v1/users", json=new, headers=service.admin)
        assert created.status_code == 201 and created.json()["username"] == "bob"
        assert_problem(await c.post("/api/v1/users", json=new, headers=service.admin), 409)
        short = {**new, "username": "carol", "password": "short"}
        assert (
            "at least 8"
            in assert_problem(
                await c.post("/api/v1/users", json=short, headers=service.admin), 422
            )["detail"]
        )
    async with service.client() as bob:
        assert (await login(bob, "long enough pw", user="BOB")).status_code == 200
        assert (await bob.get("/api/v1/checks")).status_code == 200
        async with service.client() as admin:
            await admin.delete("/api/v1/users/bob", headers=service.admin)
        assert_problem(await bob.get("/api/v1/checks"), 401)


# --- errors, /metrics, switches ---------------------------------------------------------------


async def test_errors_are_rfc_9457_problem_details(service: Service) -> None:
    async with service.client() as c:
        missing = assert_problem(await c.get("/api/v1/alerts/nope", headers=service.admin), 404)
        assert missing == {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": "no such alert",
            "instance": "/api/v1/alerts/nope",
        }
        invalid = assert_problem(
            await c.get("/api/v1/alerts", params={"limit": 0}, headers=service.admin), 422
        )
        assert invalid["errors"][0]["loc"] == ["query", "limit"]
        assert invalid["detail"].startswith("limit: ")
        alert_id = await an_alert(service)
        await c.post(f"/api/v1/alerts/{alert_id}/resolve", headers=service.admin)
        conflict = await c.post(f"/api/v1/alerts/{alert_id}/ack", headers=service.admin)
        assert_problem(conflict, 409)
        assert_problem(await c.get("/no/such/page"), 404)


async def test_metrics_can_be_open_token_only_or_off(tmp_path: Path) -> None:
    async with started(tmp_path / "token", auth={"metrics": "token"}) as svc, svc.client() as c:
        assert_problem(await c.get("/metrics"), 401)
        viewer = bearer(await token_for(svc.runtime, Role.VIEWER))
        scraped = await c.get("/metrics", headers=viewer)
        assert scraped.status_code == 200 and "watchkeeper_" in scraped.text
    async with started(tmp_path / "off", auth={"metrics": "off"}) as svc, svc.client() as c:
        assert_problem(await c.get("/metrics", headers=svc.admin), 404)


async def test_with_auth_disabled_every_caller_is_an_anonymous_admin(tmp_path: Path) -> None:
    async with started(tmp_path, auth={"enabled": False}) as service, service.client() as c:
        assert (await c.get("/api/v1/tokens")).status_code == 200
        me = (await c.get("/auth/me")).json()
    assert me["kind"] == "anonymous" and me["role"] == "admin"


async def test_a_fresh_install_says_how_to_make_the_first_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = Config.model_validate({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}})
    with caplog.at_level(logging.WARNING):
        runtime = Runtime(config)
        await runtime.start()
        await token_for(runtime)
        await runtime.stop()
        assert caplog.messages.count(NO_CREDENTIALS_HINT) == 1
        await runtime.start()  # a token exists now: no hint
        await runtime.stop()
    assert caplog.messages.count(NO_CREDENTIALS_HINT) == 1


# --- storage, on both engines -----------------------------------------------------------------


async def test_credentials_throttle_and_audit_storage_work_on_sqlite_and_postgresql(
    db_url: str,
) -> None:
    from watchkeeper.auth import sessions, tokens
    from watchkeeper.auth.throttle import LoginThrottle
    from watchkeeper.config.loader import LoginThrottleConfig
    from watchkeeper.http import audit
    from watchkeeper.store.database import Database

    clock = FakeClock(T0)
    db = Database(db_url)
    await db.migrate()
    try:
        user = await users.create_user(db, "Alice", PASSWORD, Role.ADMIN, T0)
        with pytest.raises(users.UserExists):
            await users.create_user(db, "alice", PASSWORD, Role.VIEWER, T0)
        assert await users.verify_login(db, "ALICE", "nope", T0) is None
        assert (await users.verify_login(db, "alice", PASSWORD, T0)) == user

        token, secret = await tokens.create_token(
            db, name="ci", role=Role.VIEWER, now=T0, expires_at=T0 + timedelta(days=1)
        )
        assert await tokens.authenticate_token(db, secret, T0 + timedelta(hours=1)) == token
        assert await tokens.authenticate_token(db, secret, T0 + timedelta(days=1)) is None
        assert (await tokens.revoke_token(db, token.id, T0)).state(T0) == "revoked"  # type: ignore[union-attr]
        assert await tokens.count_active(db, T0) == 0

        session_id, session = await sessions.create_session(db, user, T0, timedelta(hours=1), "::1")
        found = await sessions.lookup_session(db, session_id, T0)
        assert found is not None and found.user.username == "alice"
        assert (found.csrf_token, found.expires_at) == (session.csrf_token, session.expires_at)
        assert await sessions.lookup_session(db, session_id, T0 + timedelta(hours=1)) is None

        throttle = LoginThrottle(db, LoginThrottleConfig(max_failures=2), clock)
        await throttle.record_failure("alice", "::1")
        clock.advance(60)
        await throttle.record_failure("alice", "::1")
        assert await throttle.retry_after("alice", "::1") == 15 * 60 - 60
        clock.advance(15 * 60 - 60)
        assert await throttle.retry_after("alice", "::1") is None

        await audit.record(
            db, at=T0, actor="alice", actor_kind="user", action="POST /x", target="/x",
            status=200, detail={"n": 1}, source_ip="::1",
        )  # fmt: skip
        (entry,), total = await audit.list_entries(db, actor="alice")
        assert (entry.at, entry.detail, total) == (T0, {"n": 1}, 1)
    finally:
        await db.close()
