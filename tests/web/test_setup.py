"""First run in the browser: while no user exists, the one-time setup URL of the latest start
creates the first admin account, once, within an hour, and only with its token; the dashboard
sends browsers there instead of to a login nobody can pass."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import httpx
import pytest

from tests.support.auth import bearer, token_for
from tests.support.browser import CHROMIUM_ARGS, artifact, require_chromium
from tests.support.clock import FakeClock
from tests.support.process import WatchkeeperProcess
from tests.web.test_dashboard_browser import csp_violations
from watchkeeper.app import NO_CREDENTIALS_HINT, SETUP_HINT, Runtime
from watchkeeper.auth import users
from watchkeeper.config.loader import Config
from watchkeeper.http import audit
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
HTML = {"Accept": "text/html"}
SETUP_URL = re.compile(r"(http://\S+/setup\?token=(\S+))")


@dataclass
class FirstRun:
    runtime: Runtime
    clock: FakeClock
    urls: list[str] = field(default_factory=list)
    """Every setup URL the runtime announced, oldest first."""

    @property
    def token(self) -> str:
        return parse_qs(urlsplit(self.urls[-1]).query)["token"][0]

    def client(self, ip: str = "127.0.0.1") -> httpx.AsyncClient:
        app = create_app(self.runtime.config, runtime=self.runtime)
        transport = httpx.ASGITransport(app=app, client=(ip, 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://wk")

    async def restart(self) -> None:
        await self.runtime.stop()
        await self.runtime.start()


@contextlib.asynccontextmanager
async def first_run(tmp_path: Path, **config: Any) -> AsyncIterator[FirstRun]:
    clock = FakeClock(T0)
    cfg = Config.model_validate({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}, **config})
    urls: list[str] = []
    runtime = Runtime(cfg, clock=clock, on_setup_url=urls.append)
    await runtime.start()
    try:
        yield FirstRun(runtime, clock, urls)
    finally:
        await runtime.stop()


@pytest.fixture
async def fresh(tmp_path: Path) -> AsyncIterator[FirstRun]:
    async with first_run(tmp_path) as run:
        yield run


def form(token: str, username: str = "root", password: str = PASSWORD, **more: str) -> Any:
    return {
        "token": token,
        "username": username,
        "password": password,
        "confirm": more.get("confirm", password),
    }


async def test_the_setup_url_works_once_and_only_with_its_token(fresh: FirstRun) -> None:
    (url,) = fresh.urls
    assert url.startswith("http://127.0.0.1:8080/setup?token=")
    assert len(fresh.token) >= 43  # 32 random bytes, URL-safe
    async with fresh.client() as client:
        page = await client.get(f"/setup?token={fresh.token}", headers=HTML)
        assert page.status_code == 200
        assert f'name="token" value="{fresh.token}"' in page.text
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "nonce-" in page.headers["content-security-policy"]

        wrong = await client.post("/setup", data=form(fresh.token[:-2] + "xx"))
        assert wrong.status_code == 403
        assert "This setup link is not valid" in wrong.text
        assert "watchkeeper run" in wrong.text
        assert not await fresh.runtime.services.users.list()

        made = await client.post("/setup", data=form(fresh.token, username="Root"))
        assert made.status_code == 303
        assert made.headers["location"] == "/dashboard"
        (user,) = await fresh.runtime.services.users.list()
        assert (user.username, user.role) == ("root", Role.ADMIN)
        # Logged in as the new admin straight away.
        dashboard = await client.get("/dashboard", headers=HTML)
        assert dashboard.status_code == 200
        assert "root" in dashboard.text

        again = await client.post("/setup", data=form(fresh.token, username="mallory"))
        assert again.status_code == 404
        assert (await client.get(f"/setup?token={fresh.token}", headers=HTML)).status_code == 404
        assert (await client.get("/setup", headers=HTML)).status_code == 404
    assert [u.username for u in await fresh.runtime.services.users.list()] == ["root"]

    entries, _total = await audit.list_entries(fresh.runtime.db, action="POST /setup")
    by_status = {e.status: e for e in entries}
    assert by_status[303].detail == {"username": "root", "role": "admin"}
    assert by_status[303].target == "/setup"
    assert by_status[403].detail == {"outcome": "wrong"}
    everything = json.dumps([[e.target, e.detail] for e in entries])
    assert fresh.token not in everything and PASSWORD not in everything


async def test_the_token_expires_after_an_hour_and_each_start_makes_a_new_one(
    fresh: FirstRun,
) -> None:
    first = fresh.token
    fresh.clock.advance(timedelta(minutes=59))
    async with fresh.client() as client:
        weak = await client.post("/setup", data=form(first, password="short"))
        assert weak.status_code == 422  # checked with the token still valid
        fresh.clock.advance(timedelta(minutes=1))
        expired = await client.post("/setup", data=form(first))
        assert expired.status_code == 403
        assert "This setup link has expired" in expired.text
        assert not await fresh.runtime.services.users.list()

    await fresh.restart()
    assert len(fresh.urls) == 2 and fresh.token != first
    async with fresh.client() as client:
        stale = await client.post("/setup", data=form(first))
        assert stale.status_code == 403 and "not valid" in stale.text
        assert (await client.post("/setup", data=form(fresh.token))).status_code == 303

    await fresh.restart()  # a user exists: no new URL
    assert len(fresh.urls) == 2


async def test_a_rejected_name_or_password_leaves_the_token_usable(fresh: FirstRun) -> None:
    async with fresh.client() as client:
        differ = await client.post("/setup", data=form(fresh.token, confirm=PASSWORD + "!"))
        assert differ.status_code == 422
        assert "The two passwords differ." in differ.text
        assert f'value="{fresh.token}"' in differ.text  # the form keeps the link's token
        bad_name = await client.post("/setup", data=form(fresh.token, username="-x"))
        assert bad_name.status_code == 422 and "Username must be" in bad_name.text
        assert (await client.post("/setup", data=form(fresh.token))).status_code == 303


async def test_of_two_concurrent_uses_of_the_token_one_creates_the_admin(
    fresh: FirstRun,
) -> None:
    async with fresh.client() as client:
        answers = await asyncio.gather(
            client.post("/setup", data=form(fresh.token, username="ann")),
            client.post("/setup", data=form(fresh.token, username="bob")),
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] == 303 and statuses[1] in (403, 404), statuses
    assert len(await fresh.runtime.services.users.list()) == 1


async def test_setup_attempts_are_throttled_per_address_like_logins(tmp_path: Path) -> None:
    throttle = {"login_throttle": {"max_failures": 3, "window": "15m"}}
    async with first_run(tmp_path, auth=throttle) as run:
        async with run.client("10.0.0.1") as guesser:
            for n in range(3):
                refused = await guesser.post("/setup", data=form(f"guess-{n}"))
                assert refused.status_code == 403
            throttled = await guesser.post("/setup", data=form(run.token))
            assert throttled.status_code == 429
            assert int(throttled.headers["retry-after"]) > 0
            assert "Too many failed setup attempts" in throttled.text
        async with run.client("10.0.0.2") as operator:  # not locked out by the guesser
            assert (await operator.post("/setup", data=form(run.token))).status_code == 303
    entries, _total = await audit.list_entries(run.runtime.db, action="POST /setup")
    assert sorted(e.status for e in entries) == [303, 403, 403, 403, 429]


async def test_the_dashboard_sends_browsers_to_setup_while_no_user_exists(
    fresh: FirstRun,
) -> None:
    admin = bearer(await token_for(fresh.runtime, Role.ADMIN))
    async with fresh.client() as client:
        page = await client.get("/dashboard/alerts?status=open", headers=HTML)
        assert page.status_code == 303
        assert page.headers["location"] == "/setup"  # never the token
        hint = await client.get("/setup", headers=HTML)
        assert hint.status_code == 200
        assert "see the output of" in hint.text and "<code>watchkeeper run</code>" in hint.text
        assert "watchkeeper user create --username NAME --role admin" in hint.text
        assert 'name="token" type="password"' in hint.text  # to paste it
        login = await client.get("/dashboard/login", headers=HTML)
        assert login.status_code == 200
        assert 'data-testid="setup-hint"' in login.text and 'href="/setup"' in login.text
        # Machines go on as before: probes, /metrics, API tokens; the API answers 401.
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/api/v1/checks", headers=admin)).status_code == 200
        assert (await client.get("/api/v1/checks")).status_code == 401
        assert (await client.get("/dashboard")).status_code == 401  # not a browser

        await users.create_user(fresh.runtime.db, "ops", PASSWORD, Role.VIEWER, T0)
        page = await client.get("/dashboard", headers=HTML)
        assert page.headers["location"] == "/dashboard/login?next=%2Fdashboard"
        assert 'data-testid="setup-hint"' not in (await client.get("/dashboard/login")).text
        assert (await client.post("/setup", data=form(fresh.token))).status_code == 404


async def test_without_authentication_there_is_nothing_to_set_up(tmp_path: Path) -> None:
    async with first_run(tmp_path, auth={"enabled": False}) as run:
        assert run.urls == []
        async with run.client() as client:
            assert (await client.get("/setup", headers=HTML)).status_code == 404
            assert (await client.get("/dashboard", headers=HTML)).status_code == 200


async def test_the_log_says_where_the_setup_url_is_but_never_holds_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with first_run(tmp_path) as run:
            token = run.token
            # Should the URL ever reach a log line, the token is masked there.
            assert token not in run.runtime.redactor(run.urls[0])
            await token_for(run.runtime, Role.ADMIN)
            await run.restart()
    hints = [m for m in caplog.messages if "one-time setup URL" in m]
    assert hints == [NO_CREDENTIALS_HINT, SETUP_HINT]  # once per start
    assert not [r for r in caplog.records if token in r.getMessage()]


async def test_watchkeeper_run_prints_the_setup_url_on_stdout_and_logs_only_a_hint(
    tmp_path: Path,
) -> None:
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{tmp_path / 'wk.db'}'}}\n")
    wk = WatchkeeperProcess(config, tmp_path, args=("--log-format", "json"), split_stdout=True)
    await wk.start()
    try:
        found = SETUP_URL.search(await asyncio.to_thread(wk.stdout.read_text))
        assert found, wk.stdout.read_text()
        url, token = found.groups()
        assert url.startswith(f"{wk.url}/setup?token=")
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address
        async with aiohttp.ClientSession(cookie_jar=jar, headers=HTML) as http:
            async with http.get(url) as page:
                assert page.status == 200
            async with http.post(f"{wk.url}/setup", data=form(token)) as made:
                assert made.status == 200  # followed to the dashboard, logged in
                assert str(made.url) == f"{wk.url}/dashboard"
            async with http.get(url) as used:
                assert used.status == 404
    finally:
        assert await wk.stop() == 0
    log = await asyncio.to_thread(wk.log_text)
    assert token not in log
    messages = [json.loads(line)["message"] for line in log.splitlines() if line.startswith("{")]
    assert any("one-time setup URL" in m for m in messages), log


async def test_first_run_in_a_real_browser(tmp_path: Path) -> None:
    chromium = require_chromium()
    from playwright.async_api import async_playwright, expect

    config = tmp_path / "watchkeeper.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{tmp_path / 'wk.db'}'}}\n")
    wk = await WatchkeeperProcess(config, tmp_path, split_stdout=True).start()
    try:
        found = SETUP_URL.search(await asyncio.to_thread(wk.stdout.read_text))
        assert found, wk.stdout.read_text()
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = await browser.new_page()
            blocked = csp_violations(page)
            await page.goto(f"{wk.url}/dashboard")
            await expect(page).to_have_url(f"{wk.url}/setup")
            await expect(page.get_by_test_id("setup-hint")).to_contain_text("watchkeeper run")
            await page.screenshot(path=artifact("setup-hint.png"), full_page=True)
            await page.goto(found.group(1))
            await page.get_by_label("Username").fill("root")
            await page.get_by_label("Password (at least 8 characters)").fill(PASSWORD)
            await page.get_by_label("Password again").fill(PASSWORD)
            await page.get_by_role("button", name="Create the admin account").click()
            await expect(page).to_have_url(f"{wk.url}/dashboard")
            await expect(page.get_by_test_id("current-user")).to_contain_text("root")
            await page.screenshot(path=artifact("setup-done.png"), full_page=True)
            await browser.close()
        assert blocked == []
    finally:
        await wk.stop()
