"""Dashboard pages and forms in-process: login, rendering for each role, CSRF, actions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.servers import FlippingTarget, wait_until
from watchkeeper.app import Runtime
from watchkeeper.auth.users import create_user
from watchkeeper.config.loader import Config
from watchkeeper.core.domain import Alert
from watchkeeper.http import audit
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role
from watchkeeper.store import alerts as alert_store

PASSWORD = "correct horse battery staple"
HTML = {"Accept": "text/html"}
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Dashboard:
    runtime: Runtime
    app: object
    target: FlippingTarget

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),  # type: ignore[arg-type]
            base_url="http://wk",
        )

    async def check_is(self, name: str, status: str) -> None:
        assert self.runtime.scheduler is not None and self.runtime.pipeline is not None
        self.runtime.scheduler.run_now(name)
        states = self.runtime.pipeline.states
        await wait_until(
            lambda: name in states and states[name].status.value == status, 10, f"{name} {status}"
        )

    async def open_alerts(self) -> list[Alert]:
        """The open alerts, once there is one: the state is shown before the alert commits."""

        async def listed() -> list[Alert]:
            return (await alert_store.list_alerts(self.runtime.db, status="open"))[0]

        result: list[Alert] = await wait_until(listed, 10, "an open alert")
        return result


@pytest.fixture
async def dash(tmp_path: Path, target: FlippingTarget) -> AsyncIterator[Dashboard]:
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
            "checks": [
                {"name": "api", "type": "http", "url": f"{target.url}/health", "interval": "1h"},
                {
                    "name": "db",
                    "type": "tcp",
                    "host": "127.0.0.1",
                    "port": 1,
                    "interval": "1h",
                    "component": "Database",
                },
            ],
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    for role in Role:
        await create_user(runtime.db, role.value, PASSWORD, role, runtime.clock.now())
    try:
        yield Dashboard(runtime, create_app(config, runtime=runtime), target)
    finally:
        await runtime.stop()


async def log_in(client: httpx.AsyncClient, username: str, next_url: str = "") -> httpx.Response:
    form = await client.get("/dashboard/login", headers=HTML)
    token = CSRF_FIELD.search(form.text)
    assert token, form.text
    return await client.post(
        "/dashboard/login",
        data={
            "username": username,
            "password": PASSWORD,
            "csrf_token": token.group(1),
            "next": next_url,
        },
    )


def csrf_of(page: httpx.Response) -> str:
    found = CSRF_FIELD.search(page.text)
    assert found, "the page carries no CSRF token"
    return found.group(1)


async def test_an_anonymous_browser_is_sent_to_the_login_page_and_an_api_client_gets_401(
    dash: Dashboard,
) -> None:
    async with dash.client() as client:
        page = await client.get("/dashboard/checks/api?range=7d", headers=HTML)
        assert page.status_code == 303
        assert (
            page.headers["location"]
            == "/dashboard/login?next=%2Fdashboard%2Fchecks%2Fapi%3Frange%3D7d"
        )
        plain = await client.get("/dashboard")
        assert plain.status_code == 401
        assert plain.headers["content-type"] == "application/problem+json"


async def test_login_sets_a_hardened_session_cookie_and_returns_to_the_page_asked_for(
    dash: Dashboard,
) -> None:
    async with dash.client() as client:
        response = await log_in(client, "viewer", "/dashboard/alerts")
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/alerts"
        cookie = next(
            v for k, v in response.headers.multi_items() if k == "set-cookie" and "wk_session" in v
        )
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        page = await client.get("/dashboard/alerts")
        assert page.status_code == 200
        assert "viewer" in page.text


async def test_login_refuses_open_redirects_forms_without_csrf_and_wrong_passwords(
    dash: Dashboard,
) -> None:
    async with dash.client() as client:
        response = await log_in(client, "viewer", "//evil.example/")
        assert response.headers["location"] == "/dashboard"
    async with dash.client() as client:
        forged = await client.post(
            "/dashboard/login", data={"username": "admin", "password": PASSWORD}
        )
        assert forged.status_code == 403
        assert "form expired" in forged.text
        assert "wk_session" not in forged.headers.get("set-cookie", "")
        form = await client.get("/dashboard/login")
        wrong = await client.post(
            "/dashboard/login",
            data={"username": "admin", "password": "nope", "csrf_token": csrf_of(form)},
        )
        assert wrong.status_code == 401
        assert "Wrong username or password." in wrong.text
        assert 'value="admin"' in wrong.text  # typed once is enough
        assert PASSWORD not in wrong.text and "nope" not in wrong.text


async def test_ten_failed_logins_throttle_the_account_even_for_the_right_password(
    dash: Dashboard,
) -> None:
    async with dash.client() as client:
        form = await client.get("/dashboard/login")
        for _ in range(10):
            # Each answer is a fresh form with a fresh token, as a browser would resubmit it.
            form = await client.post(
                "/dashboard/login",
                data={"username": "operator", "password": "guess", "csrf_token": csrf_of(form)},
            )
            assert form.status_code == 401
        right = await client.post(
            "/dashboard/login",
            data={"username": "operator", "password": PASSWORD, "csrf_token": csrf_of(form)},
        )
        assert right.status_code == 429
        assert "too many failed logins" in right.text
        assert "wk_session" not in right.headers.get("set-cookie", "")


async def test_the_overview_lists_checks_problems_first_with_counts_and_open_alerts(
    dash: Dashboard,
) -> None:
    await dash.check_is("api", "up")
    await dash.check_is("db", "down")
    async with dash.client() as client:
        await log_in(client, "viewer")
        page = await client.get("/dashboard")
    assert page.status_code == 200
    rows = re.findall(r'<tr id="check-([a-z0-9_-]+)" class="check st-([a-z]+)"', page.text)
    assert rows == [("db", "down"), ("api", "up")]
    assert re.search(r"<strong>1</strong> down", page.text)
    assert re.search(r"<strong>1</strong> up", page.text)
    assert "Open alerts" in page.text and "connect to 127.0.0.1:1 failed" in page.text
    # The headline, as GET /api/v1/status has it: a critical alert is firing.
    assert 'data-overall="major_outage">Major outage' in page.text
    assert '<svg class="spark"' in page.text
    filtered = await _get(dash, "viewer", "/dashboard?state=up")
    assert 'id="check-api"' in filtered.text and 'id="check-db"' not in filtered.text


async def _get(dash: Dashboard, username: str, path: str) -> httpx.Response:
    async with dash.client() as client:
        await log_in(client, username)
        return await client.get(path)


async def test_every_page_renders_for_a_viewer_without_action_buttons(dash: Dashboard) -> None:
    await dash.check_is("db", "down")
    alerts = await dash.open_alerts()
    async with dash.client() as client:
        await log_in(client, "viewer")
        for path in (
            "/dashboard",
            "/dashboard/checks/db",
            "/dashboard/checks/db?range=1h",
            "/dashboard/checks/db/header",
            "/dashboard/alerts",
            "/dashboard/alerts?tab=resolved",
            f"/dashboard/alerts/{alerts[0].id}",
            "/dashboard/alerts/list?tab=firing",
            "/dashboard/metrics",
            "/dashboard/silences",
            "/dashboard/maintenance",
        ):
            page = await client.get(path)
            assert page.status_code == 200, (path, page.text)
            assert "Acknowledge" not in page.text and "Pause" not in page.text, path
        missing = await client.get("/dashboard/checks/nope")
        assert missing.status_code == 404


async def test_an_operator_acknowledges_from_the_alerts_page_as_themselves_and_it_is_audited(
    dash: Dashboard,
) -> None:
    await dash.check_is("db", "down")
    (alert,) = await dash.open_alerts()
    async with dash.client() as client:
        await log_in(client, "operator")
        page = await client.get("/dashboard/alerts")
        assert f"/dashboard/alerts/{alert.id}/ack" in page.text
        assert re.search(r'firing <span class="tab-count">1</span>', page.text)
        forged = await client.post(f"/dashboard/alerts/{alert.id}/ack", data={"next": "/x"})
        assert forged.status_code == 403  # no CSRF token: refused
        done = await client.post(
            f"/dashboard/alerts/{alert.id}/ack",
            data={"csrf_token": csrf_of(page), "next": "/dashboard/alerts?tab=acknowledged"},
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/dashboard/alerts?tab=acknowledged&notice=acknowledged"
        listed = await client.get(done.headers["location"])
    assert "by operator" in listed.text
    found = await alert_store.get_alert(dash.runtime.db, alert.id)
    assert found is not None and found[0].acknowledged_by == "operator"
    entries, _ = await audit.list_entries(dash.runtime.db, actor="operator")
    assert [e.action for e in entries] == [  # newest first
        "POST /dashboard/alerts/{alert_id}/ack",
        "POST /dashboard/login",
    ]


async def test_a_viewer_session_cannot_act_even_with_its_csrf_token(dash: Dashboard) -> None:
    await dash.check_is("db", "down")
    (alert,) = await dash.open_alerts()
    async with dash.client() as client:
        await log_in(client, "viewer")
        page = await client.get("/dashboard")
        token = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)
        assert token
        response = await client.post(
            f"/dashboard/alerts/{alert.id}/ack", data={"csrf_token": token.group(1)}
        )
    assert response.status_code == 403


async def test_silence_maintenance_and_pause_forms_change_what_the_api_reports(
    dash: Dashboard,
) -> None:
    await dash.check_is("db", "down")
    (alert,) = await dash.open_alerts()
    async with dash.client() as client:
        await log_in(client, "operator")
        token = csrf_of(await client.get("/dashboard/silences"))
        silenced = await client.post(
            f"/dashboard/alerts/{alert.id}/silence", data={"csrf_token": token, "duration": "4h"}
        )
        assert silenced.status_code == 303 and "silenced" in silenced.headers["location"]
        bad = await client.post(
            "/dashboard/silences",
            data={"csrf_token": token, "matchers": "no matcher here", "duration": "1h"},
        )
        assert (
            "not+created" in bad.headers["location"] or "not%20created" in bad.headers["location"]
        )
        made = await client.post(
            "/dashboard/silences",
            data={"csrf_token": token, "matchers": "check=api\nseverity=~crit.*", "duration": "2h"},
        )
        assert "silence%20created" in made.headers["location"]
        page = await client.get("/dashboard/silences")
        assert "check=" in page.text and "crit.*" in page.text

        window = await client.post(
            "/dashboard/maintenance",
            data={"csrf_token": token, "name": "db-upgrade", "duration": "30m", "checks": ["db"]},
        )
        assert "maintenance%20db-upgrade%20started" in window.headers["location"]
        listed = await client.get("/dashboard/maintenance")
        assert "db-upgrade" in listed.text and "active" in listed.text
        bad_window = await client.post(
            "/dashboard/maintenance",
            data={"csrf_token": token, "name": "Bad Name", "duration": "30m"},
        )
        assert "not%20created%3A%20name" in bad_window.headers["location"]
        ended = await client.post(
            "/dashboard/maintenance/db-upgrade/delete", data={"csrf_token": token}
        )
        assert "ended" in ended.headers["location"]

        paused = await client.post("/dashboard/checks/api/pause", data={"csrf_token": token})
        assert paused.status_code == 303
        assert dash.runtime.pipeline is not None
        assert dash.runtime.pipeline.states["api"].paused
        overview = await client.get("/dashboard?state=paused")
        assert 'id="check-api"' in overview.text
        await client.post("/dashboard/checks/api/resume", data={"csrf_token": token})
        assert not dash.runtime.pipeline.states["api"].paused


async def test_text_from_targets_is_escaped(dash: Dashboard) -> None:
    dash.target.status = 500
    await dash.check_is("api", "down")
    # Paused, so its first scheduled run cannot replace the reason planted here.
    await dash.runtime.services.checks.pause("api")
    dash.runtime.pipeline.states["api"].last_reason = "<script>alert(1)</script>"  # type: ignore[union-attr]
    page = await _get(dash, "viewer", "/dashboard")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_the_alerts_tabs_page_search_and_filter_by_severity(dash: Dashboard) -> None:
    await dash.check_is("db", "down")  # its (critical) alert is the 61st, whenever it ran
    async with dash.client() as client:
        await log_in(client, "operator")
        token = re.search(r'"X-CSRF-Token": "([^"]+)"', (await client.get("/dashboard")).text)
        assert token
        alerts = [
            {
                "name": f"disk-{i:02d}",
                "summary": f"disk {i} is full" if i % 2 else f"queue {i} is stuck",
                "severity": "critical" if i < 5 else "low",
            }
            for i in range(60)
        ]
        posted = await client.post(
            "/api/v1/alerts", json=alerts, headers={"X-CSRF-Token": token.group(1)}
        )
        assert posted.status_code == 200, posted.text

        first = await client.get("/dashboard/alerts?tab=firing")
        assert first.text.count('<tr id="alert-') == 50
        assert "page 1 of 2 (61 alerts)" in first.text
        assert 'href="/dashboard/alerts?tab=firing&amp;page=2" rel="next"' in first.text
        assert 'firing <span class="tab-count">61</span>' in first.text
        second = await client.get("/dashboard/alerts?tab=firing&page=2")
        assert second.text.count('<tr id="alert-') == 11
        assert 'rel="prev"' in second.text and 'rel="next"' not in second.text

        stuck = await client.get("/dashboard/alerts?tab=firing&q=STUCK")
        assert stuck.text.count('<tr id="alert-') == 30 and "page 1" not in stuck.text
        critical = await client.get("/dashboard/alerts?tab=firing&severity=critical")
        assert critical.text.count('<tr id="alert-') == 6
        nothing = await client.get("/dashboard/alerts?tab=resolved&q=disk")
        assert "No resolved alerts match." in nothing.text
